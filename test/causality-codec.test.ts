/**
 * The causal-context codec (strict: B8) and the frozen stored-object codec: round trips,
 * every rejection, and fuzzing that shows each decoder throws nothing but its own error code.
 */

import t from 'tap';
import fc from 'fast-check';
import { crc32c, maskCrc } from '../lib/base/crc32c.js';
import { ErrorCode, isRingkvError } from '../lib/base/errors.js';
import { limits } from '../lib/base/limits.js';
import { seedFromEnvironment } from '../lib/base/rng.js';
import {
  compareActors,
  counterMax,
  decodeContext,
  decodeObject,
  encodeContext,
  encodeObject,
  readView,
  type DvvSet,
  type VersionVector,
} from '../lib/causality/index.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);
const numRuns = 500;
const text = new TextEncoder();

const actorArb = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
  .filter((s) => text.encode(s).length <= limits.actorIdBytesMax);
const counterArb = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: counterMax }));

const vectorArb: fc.Arbitrary<VersionVector> = fc
  .uniqueArray(fc.tuple(actorArb, counterArb), { selector: ([actor]) => actor, maxLength: limits.contextEntriesMax })
  .map((pairs) => pairs.sort(([a], [b]) => compareActors(a, b)).map(([actor, counter]) => ({ actor, counter })));

/** Rewrites the trailing CRC so that a mutant reaches the structural checks. */
function withCrc(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(out.length - 4, maskCrc(crc32c(out, 0, 0, out.length - 4)), true);
  return out;
}

/** A context built by hand: entries as [id bytes, low, high]. */
function rawContext(entries: [Uint8Array, number, number][], count = entries.length, version = 1): Uint8Array {
  const size = 3 + entries.reduce((n, [id]) => n + 9 + id.length, 0) + 4;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = version;
  view.setUint16(1, count, true);
  let offset = 3;
  for (const [id, low, high] of entries) {
    out[offset] = id.length;
    out.set(id, offset + 1);
    view.setUint32(offset + 1 + id.length, low, true);
    view.setUint32(offset + 5 + id.length, high, true);
    offset += 9 + id.length;
  }
  return withCrc(out);
}

const badContext = { code: ErrorCode.badContext };
const corruption = { code: ErrorCode.corruption };

t.test('contexts round trip', async (t) => {
  t.same(decodeContext(encodeContext([])), []);
  t.equal(encodeContext([]).length, 7);
  t.same(decodeContext(encodeContext([{ actor: 'n1', counter: counterMax }])), [{ actor: 'n1', counter: counterMax }]);
  const odd = [{ actor: 'nœud', counter: 2 }, { actor: '節點🙂', counter: 3 }, { actor: '\uFEFFn1', counter: 1 }];
  t.same(decodeContext(encodeContext(odd)), odd, 'a leading BOM and non-ASCII ids survive');
  fc.assert(
    fc.property(vectorArb, (vector) => {
      t.same(decodeContext(encodeContext(vector)), vector);
      return true;
    }),
    { seed, numRuns },
  );
});

t.test('B8: garbage, truncated, oversized, negative or duplicate contexts are KV_BAD_CONTEXT', async (t) => {
  const good = encodeContext([{ actor: 'n1', counter: 3 }, { actor: 'n2', counter: 1 }]);
  t.throws(() => decodeContext(new Uint8Array(0)), badContext, 'empty');
  t.throws(() => decodeContext(text.encode('garbage!')), badContext, 'garbage');
  t.throws(() => decodeContext('abc' as unknown as Uint8Array), badContext, 'not bytes');
  for (let length = 0; length < good.length; length++) {
    t.throws(() => decodeContext(good.subarray(0, length)), badContext, `truncated to ${length}`);
  }
  const trailing = new Uint8Array(good.length + 1);
  trailing.set(good);
  t.throws(() => decodeContext(trailing), badContext, 'a trailing byte');
  const flipped = good.slice();
  flipped[5]! ^= 1;
  t.throws(() => decodeContext(flipped), badContext, 'a flipped bit fails the CRC');
  const id = (s: string) => text.encode(s);
  t.throws(() => decodeContext(rawContext([[id('a'), 1, 0]], 1, 2)), badContext, 'unknown version');
  t.throws(() => decodeContext(rawContext([[id('a'), 0, 0]])), badContext, 'counter 0');
  t.throws(() => decodeContext(rawContext([[id('a'), 0xffffffff, 0xffffffff]])), badContext, 'a negative (two’s complement) counter');
  t.throws(() => decodeContext(rawContext([[id('a'), 0, 0x200000]])), badContext, 'counter 2^53');
  t.same(decodeContext(rawContext([[id('a'), 0xffffffff, 0x1fffff]])), [{ actor: 'a', counter: counterMax }]);
  t.throws(() => decodeContext(rawContext([[id('a'), 1, 0], [id('a'), 2, 0]])), badContext, 'duplicate actors');
  t.throws(() => decodeContext(rawContext([[id('b'), 1, 0], [id('a'), 2, 0]])), badContext, 'actors out of order');
  t.throws(() => decodeContext(rawContext([[new Uint8Array(0), 1, 0]])), badContext, 'empty actor id');
  t.throws(() => decodeContext(rawContext([[new Uint8Array(limits.actorIdBytesMax + 1).fill(97), 1, 0]])), badContext, 'actor id too long');
  t.throws(() => decodeContext(rawContext([[new Uint8Array([0xc3, 0x28]), 1, 0]])), badContext, 'actor id not UTF-8');
  t.throws(() => decodeContext(rawContext([[new Uint8Array([0x61, 0xc0, 0x80]), 1, 0]])), badContext, 'overlong UTF-8');
  t.throws(() => decodeContext(rawContext([[new Uint8Array([0xed, 0xa0, 0x80]), 1, 0]])), badContext, 'an encoded surrogate');
  t.throws(() => decodeContext(rawContext([[new Uint8Array([0xef, 0xbf, 0xbd, 0xff]), 1, 0]])), badContext, 'U+FFFD then garbage');
  t.same(decodeContext(rawContext([[new Uint8Array([0xef, 0xbf, 0xbd]), 1, 0]])), [{ actor: '\uFFFD', counter: 1 }], 'a real U+FFFD is fine');
  t.throws(() => decodeContext(rawContext([[id('a'), 1, 0]], 2)), badContext, 'count says more entries than there are');
  t.throws(() => decodeContext(rawContext([[id('a'), 1, 0]], 0)), badContext, 'count says fewer entries than there are');
  const many = Array.from({ length: limits.contextEntriesMax + 1 }, (_, i): [Uint8Array, number, number] => [id(`n${String(i).padStart(3, '0')}`), 1, 0]);
  t.throws(() => decodeContext(rawContext(many)), badContext, 'one entry over contextEntriesMax');
  t.equal(decodeContext(rawContext(many.slice(1))).length, limits.contextEntriesMax);
  t.throws(() => decodeContext(rawContext(many.slice(0, 3), 100_000 & 0xffff)), badContext, 'a count of 10^5 (mod 2^16) entries');
  const huge = Array.from({ length: 100_000 }, (_, i): [Uint8Array, number, number] => [id(`n${i}`), 1, 0]);
  t.throws(() => decodeContext(rawContext(huge, 0xffff)), badContext, '10^5 entries: refused by size');
  t.same(decodeContext(rawContext([[id('a'), 1, 0]]), 1), [{ actor: 'a', counter: 1 }], 'a caller may pass its own entry bound');
  try {
    decodeContext(new Uint8Array(1));
  } catch (error) {
    t.ok(isRingkvError(error, ErrorCode.badContext));
    t.match((error as Error).message, /bad causal context/);
  }
});

t.test('decodeContext on random bytes throws nothing but KV_BAD_CONTEXT', async (t) => {
  const onlyBadContext = (bytes: Uint8Array): boolean => {
    try {
      const vector = decodeContext(bytes);
      return Buffer.compare(encodeContext(vector), bytes) === 0; // any accepted context is canonical
    } catch (error) {
      return isRingkvError(error, ErrorCode.badContext);
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), onlyBadContext), { seed, numRuns: 2000 });
  // past the CRC: random bodies with a valid checksum and version byte reach the structural checks
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 3, maxLength: 200 }), fc.nat(4), (body, count) => {
      const bytes = new Uint8Array(body.length + 4);
      bytes.set(body);
      bytes[0] = 1;
      bytes[1] = count;
      bytes[2] = 0;
      return onlyBadContext(withCrc(bytes));
    }),
    { seed, numRuns: 2000 },
  );
  fc.assert(
    fc.property(vectorArb, fc.nat(), fc.nat(255), (vector, at, xor) => {
      const bytes = encodeContext(vector);
      bytes[at % bytes.length]! ^= xor;
      return onlyBadContext(withCrc(bytes));
    }),
    { seed, numRuns: 2000 },
  );
});

// --- stored objects ---

const siblingArb = fc.record({
  value: fc.option(fc.uint8Array({ maxLength: 40 }), { freq: 4 }),
  timestampMs: fc.oneof(fc.nat(), fc.constant(counterMax), fc.constant(1_700_000_000_000)),
});

const entryArb = (actor: string) =>
  fc
    .tuple(fc.oneof(fc.integer({ min: 1, max: 60 }), fc.constant(counterMax)), fc.array(siblingArb, { maxLength: 4 }))
    .map(([counter, siblings]) => ({ actor, counter, siblings: siblings.slice(0, counter) }));

const objectArb: fc.Arbitrary<DvvSet> = fc
  .uniqueArray(actorArb, { maxLength: 5 })
  .chain((ids) => fc.tuple(...ids.sort(compareActors).map(entryArb)) as fc.Arbitrary<DvvSet>);

t.test('stored objects round trip', async (t) => {
  fc.assert(
    fc.property(objectArb, (object) => {
      const bytes = encodeObject(object);
      t.same(decodeObject(bytes), object);
      return Buffer.compare(encodeObject(decodeObject(bytes)), bytes) === 0;
    }),
    { seed, numRuns },
  );
  t.same(decodeObject(encodeObject([])), []);
  const common = encodeObject([{ actor: 'node-001', counter: 7, siblings: [{ value: new Uint8Array(100), timestampMs: 1 }] }]);
  t.equal(common.length, 138, 'the common case is 138 bytes, as the diagram says');
  const decoded = decodeObject(common);
  t.equal((decoded[0]!.siblings[0]!.value as Uint8Array).buffer, common.buffer, 'values are views, not copies');
  t.same(readView(decodeObject(encodeObject([{ actor: 'n', counter: 2, siblings: [] }]))).found, false, 'history without siblings');
});

t.test('malformed stored objects are KV_CORRUPTION', async (t) => {
  const good = encodeObject([
    { actor: 'a', counter: 5, siblings: [{ value: text.encode('x'), timestampMs: 9 }, { value: null, timestampMs: 3 }] },
    { actor: 'b', counter: 1, siblings: [] },
  ]);
  const mutate = (edit: (bytes: Uint8Array, view: DataView) => void): Uint8Array => {
    const bytes = good.slice();
    edit(bytes, new DataView(bytes.buffer));
    return bytes;
  };
  // layout of `good`: header 0..3 | 'a' at 4: id length 4, id 5, counter 6..13, sibling count 14..17
  // | sibling 18: ts 18..25, kind 26, length 27..30, 'x' 31 | sibling 32: ts 32..39, kind 40
  // | 'b' at 41: id length 41, id 42, counter 43..50, sibling count 51..54
  t.equal(good.length, 55);
  t.same(decodeObject(good), [
    { actor: 'a', counter: 5, siblings: [{ value: text.encode('x'), timestampMs: 9 }, { value: null, timestampMs: 3 }] },
    { actor: 'b', counter: 1, siblings: [] },
  ]);
  t.throws(() => decodeObject(mutate((b) => (b[0] = 2))), corruption, 'unknown version');
  t.throws(() => decodeObject(mutate((b) => (b[1] = 1))), corruption, 'non-zero flags');
  for (let length = 0; length < good.length; length++) t.throws(() => decodeObject(good.subarray(0, length)), corruption, `truncated to ${length}`);
  t.throws(() => decodeObject(Uint8Array.of(...good, 0)), corruption, 'a trailing byte');
  t.throws(() => decodeObject(mutate((b) => (b[4] = 0))), corruption, 'empty actor id');
  t.throws(() => decodeObject(mutate((b) => (b[5] = 0xff))), corruption, 'actor id not UTF-8');
  t.throws(() => decodeObject(mutate((b) => (b[42] = 97))), corruption, 'repeated actor');
  t.throws(() => decodeObject(mutate((b) => (b[42] = 32))), corruption, 'actors out of order');
  t.throws(() => decodeObject(mutate((b, v) => v.setUint32(6, 0, true))), corruption, 'counter 0');
  t.throws(() => decodeObject(mutate((b, v) => v.setUint32(10, 0x200000, true))), corruption, 'counter 2^53');
  t.throws(() => decodeObject(mutate((b, v) => v.setUint32(6, 1, true))), corruption, 'more siblings than events');
  t.throws(() => decodeObject(mutate((b, v) => v.setUint32(22, 0x200000, true))), corruption, 'timestamp over 2^53');
  t.throws(() => decodeObject(mutate((b) => (b[26] = 2))), corruption, 'unknown sibling kind');
  t.throws(() => decodeObject(mutate((b, v) => v.setUint32(27, 1000, true))), corruption, 'value longer than the object');
  t.throws(() => decodeObject(mutate((b, v) => v.setUint32(14, 3, true))), corruption, 'more siblings than bytes');
  t.throws(() => decodeObject(mutate((b, v) => v.setUint16(2, 3, true))), corruption, 'more actors than bytes');
  t.throws(() => decodeObject(good.subarray(0, 29)), corruption, 'cut inside the value length');
});

t.test('decodeObject on mutated bytes throws nothing but KV_CORRUPTION', async (t) => {
  const onlyCorruption = (bytes: Uint8Array): boolean => {
    try {
      decodeObject(bytes);
      return true;
    } catch (error) {
      return isRingkvError(error, ErrorCode.corruption);
    }
  };
  fc.assert(
    fc.property(objectArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), (object, flips, cut) => {
      const bytes = encodeObject(object);
      for (const [at, xor] of flips) bytes[at % bytes.length]! ^= xor;
      return onlyCorruption(bytes) && onlyCorruption(bytes.subarray(0, cut % (bytes.length + 1)));
    }),
    { seed, numRuns: 2000 },
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), onlyCorruption), { seed, numRuns: 2000 });
});
