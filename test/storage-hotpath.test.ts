// The engine's hot-path pieces: write batches encoded straight from user keys, the
// token-keyed memtable, views returned by get, lz4 skipping, and interned actor ids.
import t from 'tap';
import fc from 'fast-check';
import { ErrorCode, isRingkvError } from '../lib/base/errors.js';
import { tokenOf } from '../lib/base/hash.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { decodeActorId, encodeActorId } from '../lib/causality/actor-id.js';
import { BlockCompressor, CompressionType, SAMPLE_BLOCK_BYTES_MIN } from '../lib/storage/compression.js';
import { Engine } from '../lib/storage/engine.js';
import { internalKeyOf } from '../lib/storage/internal-key.js';
import { MemoryFileSystem } from '../lib/storage/memory-file-system.js';
import { Memtable } from '../lib/storage/memtable.js';
import { BATCH_HEADER_BYTES, batchEntryBytes, decodeBatchLayout, EntryKind, writeBatchHeader, writeUserKeyEntry } from '../lib/storage/write-batch.js';

const enc = new TextEncoder();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A batch of (kind, internal key, value) built by hand, so keys may share a token. */
function rawBatch(entries: [EntryKind, Uint8Array, Uint8Array][]): Uint8Array {
  const parts: number[] = [entries.length, 0, 0, 0];
  for (const [kind, key, value] of entries) parts.push(kind, key.length, ...key, value.length, ...value);
  return Uint8Array.from(parts);
}

function corruptionOf(bytes: Uint8Array): string {
  try {
    decodeBatchLayout(bytes, () => {});
  } catch (error) {
    return isRingkvError(error, ErrorCode.corruption) ? error.message : `not corruption: ${String(error)}`;
  }
  return 'decoded';
}

t.test('a batch written from user keys holds their internal keys; malformed batches are KV_CORRUPTION', async (t) => {
  const ops: [EntryKind, Uint8Array, Uint8Array][] = [
    [EntryKind.value, enc.encode('alpha'), enc.encode('one')],
    [EntryKind.tombstone, enc.encode('beta'), new Uint8Array(0)],
    [EntryKind.value, new Uint8Array(0), new Uint8Array(100).fill(7)],
  ];
  let size = BATCH_HEADER_BYTES;
  for (const [, key, value] of ops) size += batchEntryBytes(key.length + 4, value.length);
  const batch = new Uint8Array(size);
  writeBatchHeader(batch, ops.length);
  let pos = BATCH_HEADER_BYTES;
  for (const [kind, key, value] of ops) pos = writeUserKeyEntry(batch, pos, kind, tokenOf(key), key, value);
  t.equal(pos, size, 'sizes agree');
  const seen: string[] = [];
  const count = decodeBatchLayout(batch, (kind, ks, ke, vs, ve) => seen.push(`${kind}:${hex(batch.subarray(ks, ke))}:${hex(batch.subarray(vs, ve))}`));
  t.equal(count, 3);
  t.same(seen, ops.map(([kind, key, value]) => `${kind}:${hex(internalKeyOf(key))}:${hex(value)}`), 'internal keys and values');
  t.same(hex(batch), hex(rawBatch(ops.map(([kind, key, value]) => [kind, internalKeyOf(key), value]))), 'the frozen layout');

  t.match(corruptionOf(Uint8Array.of(1, 0)), /short header/);
  t.match(corruptionOf(Uint8Array.of(1, 0, 0, 0, 9)), /bad entry kind/);
  t.match(corruptionOf(Uint8Array.of(1, 0, 0, 0, 0)), /truncated varint/);
  t.match(corruptionOf(Uint8Array.of(1, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 1)), /overlong varint/);
  t.match(corruptionOf(Uint8Array.of(1, 0, 0, 0, 0, 5, 1)), /key past end/);
  t.match(corruptionOf(Uint8Array.of(1, 0, 0, 0, 0, 1, 1, 4, 1)), /value past end/);
  t.match(corruptionOf(Uint8Array.of(0, 0, 0, 0, 1)), /trailing bytes/);
});

t.test('the memtable behaves like a sorted map of internal keys, colliding tokens included', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed}`);
  // Few tokens (some above 2^31, to check the unsigned order) and few user keys: many collisions.
  const tokens = [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe];
  const op = fc.record({
    token: fc.constantFrom(...tokens),
    user: fc.uint8Array({ maxLength: 3 }),
    tombstone: fc.boolean(),
    value: fc.uint8Array({ maxLength: 6 }),
  });
  fc.assert(
    fc.property(fc.array(fc.array(op, { minLength: 1, maxLength: 8 }), { maxLength: 20 }), (batches) => {
      const memtable = new Memtable();
      const model = new Map<string, { kind: EntryKind; value: Uint8Array }>();
      let charged = 0;
      for (const batch of batches) {
        const entries = batch.map((o): [EntryKind, Uint8Array, Uint8Array] => {
          const key = new Uint8Array(4 + o.user.length);
          new DataView(key.buffer).setUint32(0, o.token);
          key.set(o.user, 4);
          const value = o.tombstone ? new Uint8Array(0) : o.value;
          model.set(hex(key), { kind: o.tombstone ? EntryKind.tombstone : EntryKind.value, value });
          charged += key.length + value.length + 96;
          return [o.tombstone ? EntryKind.tombstone : EntryKind.value, key, value];
        });
        memtable.addBatch(rawBatch(entries));
      }
      if (memtable.size !== model.size || memtable.approximateBytes !== charged) return false;
      const sorted = [...model.keys()].sort();
      if (memtable.sortedEntries().map((e) => hex(e.key)).join() !== sorted.join()) return false;
      for (const token of tokens) {
        for (const user of [new Uint8Array(0), Uint8Array.of(1), Uint8Array.of(1, 2)]) {
          const key = new Uint8Array(4 + user.length);
          new DataView(key.buffer).setUint32(0, token);
          key.set(user, 4);
          const want = model.get(hex(key));
          const got = memtable.getByToken(token, user);
          const expected = want === undefined ? undefined : want.kind === EntryKind.tombstone ? null : hex(want.value);
          if ((got instanceof Uint8Array ? hex(got) : got) !== expected) return false;
        }
      }
      const start = Uint8Array.of(0x7f, 0xff, 0xff, 0xff);
      const end = Uint8Array.of(0xff, 0xff, 0xff, 0xfe);
      const inRange = sorted.filter((k) => k >= hex(start) && k < hex(end));
      return memtable.range(start, end).map((e) => hex(e.key)).join() === inRange.join() &&
        memtable.range(start, undefined).length === sorted.filter((k) => k >= hex(start)).length;
    }),
    { seed, numRuns: 200 },
  );
  const odd = new Memtable();
  odd.addBatch(rawBatch([[EntryKind.value, Uint8Array.of(9, 9), Uint8Array.of(1)]]));
  t.same(odd.sortedEntries().map((e) => [...e.key]), [[9, 9]], 'a key shorter than a token is kept (only a damaged log makes one)');
});

t.test('get returns read-only views that stay valid through overwrites, flushes and compactions', async (t) => {
  const fs = new MemoryFileSystem();
  const db = Engine.open({ fs, dir: '/db', memtableBytes: 64 * 1024 });
  const value = new Uint8Array(300).fill(1);
  const write = db.put(enc.encode('k'), value);
  value.fill(2); // the caller may reuse its buffer once write() returned
  await write;
  const fromMemtable = db.get(enc.encode('k'))!;
  t.same([...new Set(fromMemtable)], [1], 'the engine copied the value at write()');
  await db.put(enc.encode('k'), new Uint8Array(300).fill(3));
  await db.flush();
  const fromTable = db.get(enc.encode('k'))!;
  for (let i = 0; i < 500; i++) await db.put(enc.encode(`other-${i}`), new Uint8Array(200).fill(i));
  await db.delete(enc.encode('k'));
  await db.compact();
  t.equal(db.get(enc.encode('k')), undefined, 'deleted');
  t.same([...new Set(fromMemtable)], [1], 'a memtable view outlives the overwrite and the flush');
  t.same([...new Set(fromTable)], [3], 'a block view outlives the compaction that dropped its table');
  t.equal(db.get(enc.encode('other-7'))![0], 7);
  await db.close();
});

t.test('lz4 is skipped on a failed sample after a block that did not compress', async (t) => {
  const rng = new SeededRng(seedFromEnvironment());
  const blockBytes = 2 * SAMPLE_BLOCK_BYTES_MIN;
  const compressor = new BlockCompressor(CompressionType.lz4);
  t.equal(compressor.compress(rng.bytes(blockBytes)).type, CompressionType.none, 'random data is tried and stays raw');
  t.equal(compressor.skippedBlocks, 0);
  const random = rng.bytes(blockBytes);
  t.equal(compressor.compress(random).bytes, random, 'the next random block is stored raw ...');
  t.equal(compressor.skippedBlocks, 1, '... on a failed sample, without a whole-block attempt');
  t.equal(compressor.compress(rng.bytes(SAMPLE_BLOCK_BYTES_MIN - 1)).type, CompressionType.none, 'a small block is tried whole');
  t.equal(compressor.skippedBlocks, 1);
  t.equal(compressor.compress(new Uint8Array(blockBytes)).type, CompressionType.lz4, 'a compressible sample lets lz4 run');
  t.equal(compressor.compress(rng.bytes(blockBytes)).type, CompressionType.none);
  t.equal(compressor.skippedBlocks, 1, 'after a compressed block, the next is tried whole again');
  t.equal(new BlockCompressor(CompressionType.none).compress(new Uint8Array(blockBytes)).type, CompressionType.none);
});

t.test('decoded actor ids are interned without mixing up ids that share a slot', async (t) => {
  const ids = Array.from({ length: 2000 }, (_, i) => `node-${i}`);
  ids.push('nœud-☃', 'x');
  for (let round = 0; round < 2; round++) {
    const wrong = ids.filter((id) => {
      const bytes = new Uint8Array([0xee, ...encodeActorId(id), 0xee]);
      return decodeActorId(bytes, 1, bytes.length - 1) !== id;
    });
    t.same(wrong, [], `round ${round}: every id decodes to itself`);
  }
  const invalid = Uint8Array.of(0xc3, 0x28);
  t.equal(decodeActorId(invalid, 0, 2), undefined, 'invalid UTF-8 is refused');
  t.equal(decodeActorId(invalid, 0, 2), undefined, '... and not interned');
  const buffer = Buffer.from('node-buffer');
  t.equal(decodeActorId(buffer, 0, buffer.length), 'node-buffer');
  buffer.fill(0x41);
  t.equal(decodeActorId(Buffer.from('node-buffer'), 0, 11), 'node-buffer', 'the interned bytes are a copy, not a view of the input');
});
