/**
 * The wire codec (frames of msgpack messages) and the client protocol's validation: round
 * trips, every rejection with its stable code, and fuzzing that shows neither ever throws
 * anything but its own error (B3, B10).
 */

import t, { type Test } from 'tap';
import fc from 'fast-check';
import { ErrorCode, isErrorCode, isRingkvError } from '../lib/base/errors.js';
import { limits } from '../lib/base/limits.js';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { encodeContext } from '../lib/causality/index.js';
import {
  errorReply,
  messageId,
  parseClientRequest,
  readReply,
  ringReply,
  welcomeReply,
  writtenReply,
  type ParsedClientRequest,
} from '../lib/protocol/client-messages.js';
import { decodeFrame, encodeFrame, encodeMessage, encodeMessages, frameHeaderBytes, isWireMessage } from '../lib/protocol/codec.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);
const numRuns = 300;
const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const rid = new Uint8Array(16).fill(7);
const context = encodeContext([{ actor: 'node-a', counter: 3 }]);

/** Buffers as plain Uint8Arrays, so deep equality compares contents only. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

function badRequest(t: Test, fn: () => unknown, pattern: RegExp): void {
  t.throws(fn, { code: ErrorCode.badRequest, message: pattern });
}

t.test('frames round-trip messages with byte fields as Uint8Array', async (t) => {
  const messages = [
    { t: 'put', id: 1, key: bytes(1, 2), value: new Uint8Array(70_000).fill(9) },
    { t: 'get', id: 4294967295, key: bytes(), nested: { list: [1, 'two', null, true] } },
  ];
  const decoded = decodeFrame(encodeMessages(messages)) as Array<Record<string, unknown>>;
  t.ok(decoded[0]!.key instanceof Uint8Array);
  t.same(plain(decoded), plain(messages));
});

t.test('array headers grow at 16 and 65536 messages and decode back', async (t) => {
  t.equal(frameHeaderBytes(15), 1);
  t.equal(frameHeaderBytes(16), 3);
  t.equal(frameHeaderBytes(65_535), 3);
  t.equal(frameHeaderBytes(65_536), 5);
  for (const count of [1, 15, 16, 70_000]) {
    const encoded = Array.from({ length: count }, (_, i) => encodeMessage({ t: 'x', i }));
    const frame = encodeFrame(encoded);
    const decoded = decodeFrame(frame, 100_000);
    t.equal(decoded.length, count);
    t.ok(decoded.every((m, i) => (m as { i: number }).i === i), `all ${count} messages intact`);
  }
  t.throws(() => encodeFrame([]), RangeError);
});

t.test('frames that are not an array of 1..max messages are KV_BAD_REQUEST', async (t) => {
  badRequest(t, () => decodeFrame(bytes()), /not a msgpack array/);
  badRequest(t, () => decodeFrame(encodeMessage({ t: 'get' })), /not a msgpack array/);
  badRequest(t, () => decodeFrame(bytes(0x90)), /0 messages/);
  badRequest(t, () => decodeFrame(bytes(0xdc, 0)), /not a msgpack array/);
  badRequest(t, () => decodeFrame(bytes(0xdd, 0, 0)), /not a msgpack array/);
  badRequest(t, () => decodeFrame(encodeMessages([{ t: 'a' }, { t: 'b' }]), 1), /2 messages/);
  badRequest(t, () => decodeFrame(bytes(0xdd, 0xff, 0xff, 0xff, 0xff, 1)), /4294967295 messages/);
  badRequest(t, () => decodeFrame(bytes(0x92, 0x01)), /undecodable/);
  badRequest(t, () => decodeFrame(bytes(0x91, 0x01, 0x02)), /undecodable/);
  badRequest(t, () => decodeFrame(new Uint8Array(200_000).fill(0x91)), /undecodable/);
});

t.test('decodeFrame throws nothing but KV_BAD_REQUEST on random and mutated bytes', async (t) => {
  const valid = encodeMessages([{ t: 'put', id: 3, key: bytes(1), value: bytes(2, 3), rid }]);
  const mutated = fc
    .tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.nat({ max: valid.length }))
    .map(([at, value, cut]) => {
      const out = valid.slice(0, Math.max(cut, 1));
      if (at < out.length) out[at] = value;
      return out;
    });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), mutated), (frame) => {
      try {
        const items = decodeFrame(frame);
        return Array.isArray(items) && items.length >= 1;
      } catch (error) {
        return isRingkvError(error, ErrorCode.badRequest);
      }
    }),
    { seed, numRuns: 2_000 },
  );
});

t.test('isWireMessage accepts only plain objects with an own string t', async (t) => {
  t.ok(isWireMessage({ t: 'x' }));
  t.ok(isWireMessage(Object.assign(Object.create(null), { t: 'x' })));
  for (const value of [null, 1, 'x', [], ['t'], { t: 1 }, {}, Object.create({ t: 'x' }), new Date(), bytes(1)]) {
    t.notOk(isWireMessage(value), `rejects ${String(value)}`);
  }
});

t.test('a __proto__ key in a frame pollutes no prototype', async (t) => {
  const frame = bytes(0x91, 0x82, 0xa9, ...new TextEncoder().encode('__proto__'), 0x81, 0xa1, 0x74, 0xa1, 0x78, 0xa1, 0x74, 0xa1, 0x79);
  const [item] = decodeFrame(frame);
  t.ok(isWireMessage(item));
  t.equal((item as { t: string }).t, 'y');
  t.equal(({} as { t?: unknown }).t, undefined);
  t.equal(Object.getPrototypeOf(item), Object.prototype);
});

function refused(t: Test, raw: unknown, code: string, pattern: RegExp, id = 0): void {
  const parsed: ParsedClientRequest = parseClientRequest(raw);
  if (parsed.ok) return void t.fail(`accepted ${JSON.stringify(raw, (_k, v) => (v instanceof Uint8Array ? [...v] : v))}`);
  t.equal(parsed.code, code, parsed.message);
  t.match(parsed.message, pattern);
  t.equal(parsed.id, id);
}

t.test('valid client requests parse to typed requests', async (t) => {
  t.same(parseClientRequest({ t: 'hello', v: 1 }), { ok: true, request: { t: 'hello', v: 1, token: undefined } });
  t.same(parseClientRequest({ t: 'hello', v: 1, token: 's3cret' }), { ok: true, request: { t: 'hello', v: 1, token: 's3cret' } });
  t.same(parseClientRequest({ t: 'ring', id: 9 }), { ok: true, request: { t: 'ring', id: 9 } });
  t.same(parseClientRequest({ t: 'get', id: 0, key: bytes(), extra: 'ignored' }), {
    ok: true,
    request: { t: 'get', id: 0, key: bytes(), r: undefined, consistency: undefined, timeoutMs: undefined },
  });
  const put = { t: 'put', id: 5, rid, key: bytes(1), value: bytes(2), context, w: 3, consistency: 'LOCAL_QUORUM', timeoutMs: 250 };
  t.same(parseClientRequest(put), { ok: true, request: put });
  const del = { t: 'delete', id: 6, rid, key: bytes(1), context: null, w: null, consistency: 'ALL', timeoutMs: null };
  t.same(parseClientRequest(del), {
    ok: true,
    request: { t: 'delete', id: 6, rid, key: bytes(1), context: undefined, w: undefined, consistency: 'ALL', timeoutMs: undefined },
  });
  const maxed = { t: 'put', id: 1, rid, key: new Uint8Array(limits.keyBytesMax), value: new Uint8Array(limits.valueBytesMax) };
  t.ok(parseClientRequest(maxed).ok, 'keys and values at their bound are accepted');
  t.ok(parseClientRequest({ t: 'get', id: 1, key: bytes(1) }, { keyBytesMax: 0, valueBytesMax: 0, contextEntriesMax: 1 }).ok === false);
});

t.test('every malformed field is refused with a stable code and the request id', async (t) => {
  refused(t, null, ErrorCode.badRequest, /must be a map/);
  refused(t, [1], ErrorCode.badRequest, /must be a map/);
  refused(t, 'get', ErrorCode.badRequest, /must be a map/);
  refused(t, { id: 3 }, ErrorCode.badRequest, /t must be a string/, 3);
  refused(t, { t: 'scan', id: 3 }, ErrorCode.badRequest, /unknown message type/, 3);
  refused(t, { t: 'get', key: bytes() }, ErrorCode.badRequest, /id must be an integer/);
  refused(t, { t: 'get', id: -1, key: bytes() }, ErrorCode.badRequest, /id must be/);
  refused(t, { t: 'get', id: 2 ** 32, key: bytes() }, ErrorCode.badRequest, /id must be/);
  refused(t, { t: 'get', id: 1.5, key: bytes() }, ErrorCode.badRequest, /id must be/);
  refused(t, { t: 'get', id: 1, key: 'text' }, ErrorCode.badRequest, /key must be bytes/, 1);
  refused(t, { t: 'get', id: 1 }, ErrorCode.badRequest, /key must be bytes/, 1);
  refused(t, { t: 'get', id: 1, key: new Uint8Array(limits.keyBytesMax + 1) }, ErrorCode.tooLarge, /key of 1025 bytes/, 1);
  refused(t, { t: 'get', id: 1, key: bytes(), r: 0 }, ErrorCode.badRequest, /r must be an integer within \[1, 16\]/, 1);
  refused(t, { t: 'get', id: 1, key: bytes(), r: '2' }, ErrorCode.badRequest, /r must be/, 1);
  refused(t, { t: 'get', id: 1, key: bytes(), r: Number.NaN }, ErrorCode.badRequest, /r must be/, 1);
  refused(t, { t: 'get', id: 1, key: bytes(), consistency: 'MOST' }, ErrorCode.badRequest, /consistency must be one of/, 1);
  refused(t, { t: 'get', id: 1, key: bytes(), timeoutMs: 0 }, ErrorCode.badRequest, /timeoutMs must be/, 1);
  refused(t, { t: 'get', id: 1, key: bytes(), timeoutMs: Infinity }, ErrorCode.badRequest, /timeoutMs must be/, 1);
  const put = { t: 'put', id: 2, rid, key: bytes(1), value: bytes(2) };
  refused(t, { ...put, rid: undefined }, ErrorCode.badRequest, /rid must be 16 bytes/, 2);
  refused(t, { ...put, rid: new Uint8Array(15) }, ErrorCode.badRequest, /rid must be 16 bytes/, 2);
  refused(t, { ...put, value: 'v' }, ErrorCode.badRequest, /value must be bytes/, 2);
  refused(t, { ...put, value: new Uint8Array(limits.valueBytesMax + 1) }, ErrorCode.tooLarge, /value of/, 2);
  refused(t, { ...put, context: 'ctx' }, ErrorCode.badRequest, /context must be bytes/, 2);
  refused(t, { ...put, context: bytes(1, 2, 3) }, ErrorCode.badContext, /bad causal context/, 2);
  refused(t, { ...put, w: 17 }, ErrorCode.badRequest, /w must be/, 2);
  refused(t, { t: 'delete', id: 4, rid, key: bytes(), context: bytes(9) }, ErrorCode.badContext, /bad causal context/, 4);
  refused(t, { t: 'delete', id: 4, key: bytes() }, ErrorCode.badRequest, /rid must be/, 4);
  refused(t, { t: 'hello', v: 2 }, ErrorCode.incompatible, /version 2/);
  refused(t, { t: 'hello' }, ErrorCode.incompatible, /version undefined/);
  refused(t, { t: 'hello', v: 1, token: 42 }, ErrorCode.badRequest, /token must be a string/);
});

t.test('inherited names are never taken for fields', async (t) => {
  const proto = { t: 'get', id: 1, key: bytes() };
  refused(t, Object.create(proto), ErrorCode.badRequest, /t must be a string/);
  refused(t, Object.assign(Object.create({ id: 7 }), { t: 'ring' }), ErrorCode.badRequest, /id must be/);
  t.equal(messageId(Object.create({ id: 7 })), 0);
  t.equal(messageId({ id: 7 }), 7);
  t.equal(messageId({ id: -7 }), 0);
  t.equal(messageId(undefined), 0);
});

const fieldValue = fc.oneof(
  fc.anything(),
  fc.uint8Array({ maxLength: 40 }),
  fc.constant(rid),
  fc.constant(context),
  fc.integer({ min: -2, max: 2 ** 32 + 1 }),
  fc.constantFrom('ONE', 'QUORUM', 'EACH_QUORUM', 'get', 'put', 'delete', 'ring', 'hello'),
);
const messageLike = fc.dictionary(
  fc.constantFrom('t', 'id', 'v', 'rid', 'key', 'value', 'context', 'r', 'w', 'consistency', 'timeoutMs', 'token', '__proto__'),
  fieldValue,
);

t.test('parseClientRequest never throws and answers ok or a stable error code with a u32 id', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.anything(), messageLike), (raw) => {
      const parsed = parseClientRequest(raw);
      if (parsed.ok) return typeof parsed.request.t === 'string';
      return isErrorCode(parsed.code) && Number.isInteger(parsed.id) && parsed.id >= 0 && parsed.id <= 0xffffffff && parsed.message.length > 0;
    }),
    { seed, numRuns },
  );
});

t.test('requests survive a trip through a frame and still validate', async (t) => {
  const put = { t: 'put', id: 77, rid, key: bytes(1, 2), value: bytes(3), context, w: 2 };
  const [decoded] = decodeFrame(encodeMessages([put]));
  const parsed = parseClientRequest(decoded);
  t.ok(parsed.ok);
  if (parsed.ok) t.same(plain(parsed.request), plain({ ...put, consistency: undefined, timeoutMs: undefined }));
});

t.test('reply builders produce the wire shapes', async (t) => {
  t.same(welcomeReply('n1'), { t: 'welcome', v: 1, node: 'n1' });
  t.same(readReply(1, true, [bytes(1)], context), { t: 'read', id: 1, found: true, values: [bytes(1)], context });
  t.same(writtenReply(2, context), { t: 'written', id: 2, context });
  const ring = { partitionBits: 4, replication: 3, members: [] };
  t.same(ringReply(3, ring), { t: 'ring', id: 3, ring });
  t.same(errorReply(4, ErrorCode.overloaded, 'busy'), { t: 'error', id: 4, code: 'KV_OVERLOADED', message: 'busy' });
});
