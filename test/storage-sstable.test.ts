/**
 * SSTables: format round trip (property), point reads of present and absent keys, cursors,
 * compression, bloom filter false-positive rate, the block cache, and corruption (RELIABILITY.md
 * D10): a damaged table answers correctly or throws KV_CORRUPTION, never returns garbage.
 */

import t, { type Test } from 'tap';
import fc from 'fast-check';
import { AssertionError } from '../lib/base/assert.js';
import { crc32c, maskCrc } from '../lib/base/crc32c.js';
import { ErrorCode, RingkvError, isRingkvError } from '../lib/base/errors.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { BlockCache, blockChargeBytes } from '../lib/storage/block-cache.js';
import { BloomFilter, BloomFilterBuilder, bloomProbeCount } from '../lib/storage/bloom-filter.js';
import { CompressionType, compressBlock, compressionTypeOf, uncompressBlock } from '../lib/storage/compression.js';
import type { FileHandle, FileSystem } from '../lib/storage/file-system.js';
import { MemoryFileSystem } from '../lib/storage/memory-file-system.js';
import {
  BLOCK_TRAILER_BYTES, Block, EntryView, FOOTER_BYTES, FieldReader, type TableProperties, decodeEntry, decodeFooter,
  decodeProperties, encodeFooter, encodeProperties, encodeTrailer, SSTABLE_FORMAT_VERSION, varintBytes, writeVarint,
} from '../lib/storage/sstable-format.js';
import { type TableBuilderOptions, TableBuilder, tableBuilderDefaults } from '../lib/storage/table-builder.js';
import { TableReader } from '../lib/storage/table-reader.js';
import type { EntryKind } from '../lib/storage/write-batch.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);

interface Entry {
  key: Uint8Array;
  kind: EntryKind;
  value: Uint8Array;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const cmp = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);

function sortUnique(entries: Entry[]): Entry[] {
  const seen = new Map<string, Entry>();
  for (const e of entries) seen.set(hex(e.key), e);
  return [...seen.values()].sort((a, b) => cmp(a.key, b.key));
}

function options(overrides: Partial<TableBuilderOptions> = {}): TableBuilderOptions {
  return { ...tableBuilderDefaults, ...overrides };
}

function build(fs: FileSystem, path: string, entries: Entry[], opts: TableBuilderOptions) {
  const builder = new TableBuilder(fs, path, opts);
  for (const e of entries) builder.add(e.key, e.kind, e.value);
  return builder.finish();
}

function writeRaw(fs: FileSystem, path: string, bytes: Uint8Array): void {
  fs.remove(path);
  const file = fs.createExclusive(path);
  file.append(bytes);
  file.close();
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

function expectCode(tt: Test, fn: () => unknown, code: string, message: string): void {
  const error = errorOf(fn);
  tt.ok(isRingkvError(error) && error.code === code, `${message}: ${String(error)}`);
}

/** Lower bound of `target` in sorted entries. */
function lowerBound(entries: Entry[], target: Uint8Array): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(entries[mid]!.key, target) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Checks every read path of `reader` against `entries`; returns a failure message or ''. */
function verify(reader: TableReader, entries: Entry[], probes: Uint8Array[]): string {
  const byKey = new Map(entries.map((e) => [hex(e.key), e]));
  for (const e of entries) {
    const found = reader.get(e.key);
    if (!found || found.kind !== e.kind || cmp(found.value, e.value) !== 0) return `get ${hex(e.key)}`;
  }
  for (const probe of probes) {
    const expected = byKey.get(hex(probe));
    const found = reader.get(probe);
    if (expected === undefined ? found !== undefined : !found || cmp(found.value, expected.value) !== 0) return `probe ${hex(probe)}`;
  }
  const it = reader.iterator();
  let i = 0;
  for (it.seekToFirst(); it.valid; it.next(), i++) {
    const e = entries[i];
    if (!e || cmp(it.key, e.key) !== 0 || it.kind !== e.kind || cmp(it.value, e.value) !== 0) return `iterate at ${i}`;
  }
  if (i !== entries.length) return `iterated ${i} of ${entries.length}`;
  for (const probe of probes) {
    const at = lowerBound(entries, probe);
    it.seek(probe);
    for (let step = 0; step < 3; step++, it.next()) {
      const e = entries[at + step];
      if (!e) {
        if (it.valid) return `seek ${hex(probe)} past the end is valid`;
        break;
      }
      if (!it.valid || cmp(it.key, e.key) !== 0 || cmp(it.value, e.value) !== 0) return `seek ${hex(probe)} step ${step}`;
    }
  }
  return '';
}

/** Keys with many shared prefixes, random bytes, and long keys (past the 64-byte scratch buffer). */
const smallKey = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 10 }).map((a) => Uint8Array.from(a));
const keyArb = fc.oneof(
  smallKey,
  fc.uint8Array({ maxLength: 6 }),
  fc.tuple(fc.nat(2), smallKey).map(([fill, tail]) => Uint8Array.from([...new Uint8Array(90).fill(fill), ...tail])),
);
const entryArb = fc.record({
  key: keyArb,
  kind: fc.constantFrom<EntryKind>(0, 0, 0, 1),
  value: fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 6 }), weight: 4 },
    { arbitrary: fc.uint8Array({ maxLength: 80 }), weight: 1 },
    { arbitrary: fc.nat(300).map((n) => new Uint8Array(n).fill(n & 0xff)), weight: 1 },
  ),
}).map((e): Entry => (e.kind === 1 ? { ...e, value: new Uint8Array(0) } : e));

t.test('round trip: every key is found, absent keys are not, cursors visit and seek in order', (tt) => {
  let run = 0;
  fc.assert(
    fc.property(
      fc.array(entryArb, { minLength: 1, maxLength: 400, size: 'max' }),
      fc.array(keyArb, { maxLength: 40, size: 'max' }),
      fc.record({
        blockBytes: fc.oneof(fc.integer({ min: 1, max: 512 }), fc.integer({ min: 512, max: 8192 })),
        bloomBitsPerKey: fc.constantFrom(0, 3, 10),
        compression: fc.constantFrom<'none' | 'lz4'>('none', 'lz4'),
      }),
      (raw, probes, opts) => {
        const entries = sortUnique(raw);
        const fs = new MemoryFileSystem();
        const path = `t${run++}.sst`;
        const built = build(fs, path, entries, opts);
        const reader = TableReader.open(fs, path, run, new BlockCache(64 * 1024));
        const failure = verify(reader, entries, [...probes, new Uint8Array([9, 9]), new Uint8Array(0)]);
        reader.close();
        return (
          failure === '' &&
          built.entryCount === entries.length &&
          built.fileBytes === fs.readFile(path).length &&
          built.tombstoneCount === entries.filter((e) => e.kind === 1).length &&
          cmp(built.smallestKey, entries[0]!.key) === 0 &&
          cmp(built.largestKey, entries[entries.length - 1]!.key) === 0
        );
      },
    ),
    { seed, numRuns: 120 },
  );
  tt.end();
});

t.test('random 16-byte keys over many blocks, with and without lz4', (tt) => {
  const rng = new SeededRng(seed);
  const entries = sortUnique(
    Array.from({ length: 5000 }, () => ({ key: rng.bytes(16), kind: 0 as EntryKind, value: rng.bytes(rng.int(120)) })),
  );
  for (const compression of ['none', 'lz4'] as const) {
    const fs = new MemoryFileSystem();
    const built = build(fs, 'a.sst', entries, options({ compression }));
    const reader = TableReader.open(fs, 'a.sst', 1, new BlockCache(1 << 20));
    const { fileBytes, ...stored } = built;
    tt.same(reader.properties, stored, 'properties read back');
    tt.equal(reader.fileBytes, fileBytes);
    tt.ok(built.dataBlockCount > 50, `${built.dataBlockCount} data blocks`);
    const probes = Array.from({ length: 300 }, () => rng.bytes(1 + rng.int(17)));
    tt.equal(verify(reader, entries, probes), '', `all reads agree (${compression})`);
    reader.close();
  }
  tt.end();
});

t.test('zero-length keys and values, and tombstones, are stored and read back', (tt) => {
  const fs = new MemoryFileSystem();
  const entries: Entry[] = [
    { key: new Uint8Array(0), kind: 0, value: new Uint8Array(0) },
    { key: Uint8Array.of(0), kind: 1, value: new Uint8Array(0) },
    { key: Uint8Array.of(0, 0), kind: 0, value: Uint8Array.of(5) },
    { key: Uint8Array.of(1), kind: 1, value: new Uint8Array(0) },
  ];
  const built = build(fs, 'z.sst', entries, options({ blockBytes: 1 }));
  tt.equal(built.dataBlockCount, 4, 'one entry per block at blockBytes 1');
  tt.equal(built.tombstoneCount, 2);
  const reader = TableReader.open(fs, 'z.sst', 1, new BlockCache(4096));
  tt.same(reader.get(new Uint8Array(0)), { kind: 0, value: new Uint8Array(0) }, 'empty key with empty value');
  tt.same(reader.get(Uint8Array.of(1)), { kind: 1, value: new Uint8Array(0) }, 'tombstone');
  tt.equal(reader.get(Uint8Array.of(2)), undefined, 'after the last key');
  tt.equal(verify(reader, entries, [Uint8Array.of(0, 0, 0), Uint8Array.of(0, 1)]), '');
  tt.end();
});

t.test('1 MiB values each fill a block of their own; lz4 applies only when it saves 12.5%', (tt) => {
  const rng = new SeededRng(seed ^ 0x55);
  const MiB = 1024 * 1024;
  const entries: Entry[] = [
    { key: Uint8Array.of(1), kind: 0, value: rng.bytes(MiB) },
    { key: Uint8Array.of(2), kind: 0, value: new Uint8Array(MiB).fill(42) },
    { key: Uint8Array.of(3), kind: 0, value: Uint8Array.of(7) },
    { key: Uint8Array.of(4), kind: 0, value: rng.bytes(MiB) },
  ];
  const sizes: Record<string, number> = {};
  for (const compression of ['none', 'lz4'] as const) {
    const fs = new MemoryFileSystem();
    const built = build(fs, 'big.sst', entries, options({ compression }));
    sizes[compression] = built.fileBytes;
    tt.equal(built.dataBlockCount, 3, 'a large entry closes its block');
    const reader = TableReader.open(fs, 'big.sst', 1, new BlockCache(8 * MiB));
    tt.equal(verify(reader, entries, [Uint8Array.of(0), Uint8Array.of(2, 0), Uint8Array.of(5)]), '', compression);
  }
  tt.ok(sizes.lz4! < sizes.none! - MiB + 64 * 1024, `the repetitive value compresses (${sizes.lz4} vs ${sizes.none})`);
  tt.ok(sizes.lz4! > 2 * MiB, 'random values stay raw');

  tt.equal(compressBlock(rng.bytes(1000), CompressionType.lz4).type, CompressionType.none, 'incompressible stays raw');
  tt.equal(compressBlock(new Uint8Array(1000), CompressionType.none).type, CompressionType.none);
  const packed = compressBlock(new Uint8Array(1000), CompressionType.lz4);
  tt.equal(packed.type, CompressionType.lz4);
  tt.equal(cmp(uncompressBlock(packed.type, packed.bytes), new Uint8Array(1000)), 0, 'lz4 round trip');
  tt.throws(() => uncompressBlock(7, packed.bytes), /unknown compression type/);
  tt.throws(() => uncompressBlock(1, Uint8Array.of(1, 2)), /shorter than its size prefix/);
  tt.throws(() => uncompressBlock(1, Uint8Array.of(0xff, 0xff, 0xff, 0x7f, 0)), /declares/);
  const lying = Uint8Array.from(packed.bytes);
  lying[0] = lying[0]! - 1;
  tt.throws(() => uncompressBlock(1, lying), 'a wrong size prefix is refused');
  tt.throws(() => compressionTypeOf('zstd' as 'lz4'), RangeError);
  tt.end();
});

t.test('bloom filter: false positives within 2x of the configured rate, no false negatives', (tt) => {
  const rng = new SeededRng(seed ^ 0xb100);
  const builder = new BloomFilterBuilder(10);
  const keys = new Set<string>();
  while (keys.size < 10_000) keys.add(hex(rng.bytes(12)));
  for (const k of keys) builder.addKey(Buffer.from(k, 'hex'));
  tt.equal(builder.keyCount, 10_000);
  const filter = new BloomFilter(builder.finish());
  tt.equal(filter.bytes.length, builder.estimatedBytes, 'estimate is exact once all keys are in');
  let missing = 0;
  for (const k of keys) if (!filter.mayContain(Buffer.from(k, 'hex'))) missing++;
  tt.equal(missing, 0, 'every added key may be present');
  let falsePositives = 0;
  const probes = 100_000;
  for (let i = 0; i < probes; i++) {
    const probe = rng.bytes(13);
    if (filter.mayContain(probe)) falsePositives++;
  }
  const rate = falsePositives / probes;
  tt.comment(`false-positive rate ${rate}`);
  tt.ok(rate < 0.02, `rate ${rate} < 2%`);
  tt.ok(rate > 0.002, `rate ${rate} is a real filter, not a stub`);

  tt.equal(bloomProbeCount(10), 7);
  tt.equal(bloomProbeCount(0.1), 1);
  tt.equal(bloomProbeCount(64), 30);
  tt.equal(new BloomFilterBuilder(0).finish().length, 0, 'bits 0 writes no filter');
  tt.ok(new BloomFilter(new Uint8Array(0)).mayContain(Uint8Array.of(1)), 'an empty filter matches all');
  tt.ok(new BloomFilter(Uint8Array.of(0, 0, 0, 31)).mayContain(Uint8Array.of(1)), 'a reserved k matches all');
  tt.notOk(new BloomFilter(Uint8Array.of(0, 0, 0, 3)).mayContain(Uint8Array.of(1)), 'all-zero bits match nothing');
  tt.throws(() => new BloomFilterBuilder(-1), RangeError);
  tt.throws(() => new BloomFilterBuilder(Number.NaN), RangeError);
  tt.end();
});

t.test('table reader counts bloom checks, negatives and false positives', (tt) => {
  const rng = new SeededRng(seed ^ 0xb101);
  const entries = sortUnique(Array.from({ length: 2000 }, () => ({ key: rng.bytes(8), kind: 0 as EntryKind, value: rng.bytes(4) })));
  const fs = new MemoryFileSystem();
  build(fs, 'b.sst', entries, options());
  const reader = TableReader.open(fs, 'b.sst', 1, new BlockCache(1 << 20));
  let found = 0;
  for (let i = 0; i < 5000; i++) if (reader.get(rng.bytes(9))) found++;
  for (const e of entries.slice(0, 100)) if (reader.get(e.key)) found++;
  const s = reader.stats;
  tt.equal(found, 100);
  tt.equal(s.bloomChecks, 5100);
  tt.equal(s.bloomNegatives + s.bloomFalsePositives, 5000, 'each absent key is a negative or a false positive');
  tt.ok(s.bloomFalsePositives < 150, `${s.bloomFalsePositives} false positives`);

  build(fs, 'nobloom.sst', entries, options({ bloomBitsPerKey: 0 }));
  const plain = TableReader.open(fs, 'nobloom.sst', 2, undefined);
  tt.equal(plain.get(Uint8Array.of(1, 2, 3)), undefined);
  tt.equal(plain.stats.bloomChecks, 0, 'no filter, no checks');
  tt.ok(plain.stats.blockReads > 0, 'without a cache, blocks come from disk');
  tt.end();
});

function fakeBlock(sizeBytes: number): Block {
  const data = new Uint8Array(sizeBytes);
  data[sizeBytes - 4] = 1; // one restart at offset 0, then the count
  return Block.parse(data, 'fake', 0);
}

t.test('block cache: LRU eviction by bytes, hit and miss counters, evictFile', (tt) => {
  const charge = blockChargeBytes(fakeBlock(1000));
  const cache = new BlockCache(3 * charge);
  const blocks = [0, 1, 2, 3].map(() => fakeBlock(1000));
  cache.insert(1, 0, blocks[0]!);
  cache.insert(1, 100, blocks[1]!);
  cache.insert(2, 0, blocks[2]!);
  tt.equal(cache.get(1, 0), blocks[0], 'hit');
  cache.insert(2, 100, blocks[3]!);
  tt.equal(cache.get(1, 100), undefined, 'the least recently used block went first');
  tt.equal(cache.get(1, 0), blocks[0], 'a recently read block stays');
  tt.equal(cache.get(2, 0), blocks[2]);
  tt.same(cache.stats, { hits: 3, misses: 1, usedBytes: 3 * charge, capacityBytes: 3 * charge, blockCount: 3 });

  cache.insert(2, 0, blocks[1]!);
  tt.equal(cache.get(2, 0), blocks[1], 're-inserting replaces');
  tt.equal(cache.stats.usedBytes, 3 * charge);
  cache.evictFile(2);
  tt.equal(cache.get(2, 0), undefined);
  tt.equal(cache.get(2, 100), undefined);
  tt.same([cache.stats.blockCount, cache.stats.usedBytes], [1, charge], 'only file 1 remains');
  cache.evictFile(9);
  cache.insert(3, 0, fakeBlock(10 * 1000));
  tt.equal(cache.get(3, 0), undefined, 'a block larger than the cache is not cached');
  cache.insert(4, 0, blocks[0]!);
  cache.insert(4, 8, blocks[1]!);
  cache.insert(4, 16, blocks[2]!);
  tt.equal(cache.get(1, 0), undefined, 'evicting the last block of a file drops the file');
  cache.clear();
  tt.same([cache.stats.blockCount, cache.stats.usedBytes], [0, 0]);
  cache.insert(5, 0, blocks[0]!);
  tt.equal(cache.get(5, 0), blocks[0], 'usable after clear');
  tt.throws(() => new BlockCache(-1), RangeError);

  const fs = new MemoryFileSystem();
  const entries = Array.from({ length: 400 }, (_, i): Entry => ({ key: Uint8Array.of(i >> 8, i & 0xff), kind: 0, value: new Uint8Array(50) }));
  build(fs, 'c.sst', entries, options({ compression: 'none' }));
  const shared = new BlockCache(1 << 20);
  const reader = TableReader.open(fs, 'c.sst', 7, shared);
  for (let round = 0; round < 3; round++) for (const e of entries) reader.get(e.key);
  tt.equal(reader.stats.blockReads, reader.blockCount, 'each block read from disk once');
  tt.equal(shared.stats.misses, reader.blockCount);
  tt.equal(shared.stats.hits, 3 * entries.length - reader.blockCount);
  const scan = reader.iterator({ fillCache: false });
  shared.evictFile(7);
  let n = 0;
  for (scan.seekToFirst(); scan.valid; scan.next()) n++;
  tt.equal(n, entries.length);
  tt.equal(shared.stats.blockCount, 0, 'a fillCache: false cursor does not fill the cache');
  tt.end();
});

/** Builds a small table and returns its bytes, entries and probes. */
function smallTable(compression: 'none' | 'lz4'): { bytes: Uint8Array; entries: Entry[] } {
  const fs = new MemoryFileSystem();
  const entries = Array.from({ length: 40 }, (_, i): Entry => ({
    key: Uint8Array.of(0, 0, i >> 3, i),
    kind: (i % 7 === 3 ? 1 : 0) as EntryKind,
    value: i % 7 === 3 ? new Uint8Array(0) : new Uint8Array(i % 5 === 0 ? 30 : 6).fill(i),
  }));
  build(fs, 's.sst', entries, options({ compression, blockBytes: 200 }));
  return { bytes: fs.readFile('s.sst'), entries };
}

/** Opens and reads a damaged table; returns 'ok', 'corruption', or a description of a wrong answer. */
function readDamaged(bytes: Uint8Array, entries: Entry[]): string {
  const fs = new MemoryFileSystem();
  writeRaw(fs, 'd.sst', bytes);
  const outcome = errorOf(() => {
    const reader = TableReader.open(fs, 'd.sst', 1, new BlockCache(1 << 20));
    const absent = [Uint8Array.of(0, 0, 0, 1, 0), Uint8Array.of(0), Uint8Array.of(1)];
    const failure = verify(reader, entries, absent);
    if (failure !== '') throw new Error(`wrong answer: ${failure}`);
  });
  if (outcome === undefined) return 'ok';
  if (isRingkvError(outcome, ErrorCode.corruption)) {
    const { file, offset } = outcome.details;
    return file === 'd.sst' && typeof offset === 'number' ? 'corruption' : `corruption without file/offset: ${outcome.message}`;
  }
  return String(outcome);
}

t.test('a bit flip anywhere yields KV_CORRUPTION or the right answer, never garbage', (tt) => {
  for (const compression of ['none', 'lz4'] as const) {
    const { bytes, entries } = smallTable(compression);
    tt.equal(readDamaged(bytes, entries), 'ok', 'the intact table reads back');
    const outcomes = new Map<string, number>();
    for (let pos = 0; pos < bytes.length; pos++) {
      const damaged = Uint8Array.from(bytes);
      damaged[pos]! ^= 1 << (pos % 8);
      const outcome = readDamaged(damaged, entries);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    tt.same([...outcomes.keys()], ['corruption'], `${bytes.length} single-bit flips (${compression}) all detected`);
    const rng = new SeededRng(seed ^ 0xf11);
    let wrong = 0;
    for (let trial = 0; trial < 300; trial++) {
      const damaged = Uint8Array.from(bytes);
      for (let k = 1 + rng.int(4); k > 0; k--) damaged[rng.int(bytes.length)] = rng.int(256);
      const outcome = readDamaged(damaged, entries);
      if (outcome !== 'ok' && outcome !== 'corruption') wrong++;
    }
    tt.equal(wrong, 0, `random byte overwrites (${compression}) never give a wrong answer`);
  }
  tt.end();
});

t.test('bad magic, truncation and unknown versions are refused at open', (tt) => {
  const { bytes } = smallTable('lz4');
  const fs = new MemoryFileSystem();
  const open = (b: Uint8Array) => () => {
    writeRaw(fs, 'x.sst', b);
    TableReader.open(fs, 'x.sst', 1, undefined).close();
  };
  const badMagic = Uint8Array.from(bytes);
  badMagic[bytes.length - 1] = 0x58;
  expectCode(tt, open(badMagic), ErrorCode.corruption, 'bad magic');
  for (const length of [0, 10, FOOTER_BYTES, bytes.length - 1, bytes.length >> 1, bytes.length - FOOTER_BYTES]) {
    expectCode(tt, open(bytes.subarray(0, length)), ErrorCode.corruption, `truncated to ${length}`);
  }
  const footerAt = bytes.length - FOOTER_BYTES;
  const footer = decodeFooter(bytes.subarray(footerAt), 'x', footerAt);
  const future = Uint8Array.from(bytes);
  future.set(encodeFooter({ ...footer, version: SSTABLE_FORMAT_VERSION + 1 }), footerAt);
  expectCode(tt, open(future), ErrorCode.incompatible, 'a newer format version');
  const far = Uint8Array.from(bytes);
  far.set(encodeFooter({ ...footer, index: { offset: 2 ** 40, sizeBytes: 1 } }), footerAt);
  expectCode(tt, open(far), ErrorCode.corruption, 'a handle beyond the footer');
  const high = encodeFooter(footer);
  high[7] = 0xff;
  new DataView(high.buffer).setUint32(40, maskCrc(crc32c(high, 0, 0, 40)), true);
  tt.throws(() => decodeFooter(high, 'x', 0), /beyond 2\^53/);
  tt.throws(() => TableReader.open(fs, 'missing.sst', 1, undefined), { code: 'ENOENT' });
  tt.end();
});

/** A block with one restart per entry and no prefix sharing, as the index block is written. */
function encodeBlock(entries: Array<[Uint8Array, Uint8Array]>): Uint8Array {
  const parts: number[] = [];
  const restarts: number[] = [];
  for (const [key, value] of entries) {
    restarts.push(parts.length);
    const head = new Uint8Array(15);
    let pos = writeVarint(head, 0, 0);
    pos = writeVarint(head, pos, key.length);
    pos = writeVarint(head, pos, value.length * 2); // format 1: the hand-made table below is a version 1 table
    parts.push(...head.subarray(0, pos), ...key, ...value);
  }
  const out = new Uint8Array(parts.length + 4 * restarts.length + 4);
  out.set(parts);
  const view = new DataView(out.buffer);
  restarts.forEach((r, i) => view.setUint32(parts.length + 4 * i, r, true));
  view.setUint32(out.length - 4, restarts.length, true);
  return out;
}

function handleBytes(offset: number, size: number): Uint8Array {
  const out = new Uint8Array(varintBytes(offset) + varintBytes(size));
  writeVarint(out, writeVarint(out, 0, offset), size);
  return out;
}

/** Assembles a table file from raw parts, each sealed with a valid trailer. */
function assemble(parts: { data: Array<[Uint8Array, number]>; filter: Uint8Array; index: (offsets: number[], sizes: number[]) => Uint8Array; properties: Uint8Array }): Uint8Array {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const seal = (stored: Uint8Array, type: number) => {
    const handle = { offset, sizeBytes: stored.length };
    chunks.push(stored, encodeTrailer(stored, type));
    offset += stored.length + BLOCK_TRAILER_BYTES;
    return handle;
  };
  const handles = parts.data.map(([stored, type]) => seal(stored, type));
  const filter = seal(parts.filter, 0);
  const index = seal(parts.index(handles.map((h) => h.offset), handles.map((h) => h.sizeBytes)), 0);
  const properties = seal(parts.properties, 0);
  chunks.push(encodeFooter({ index, filter, properties, version: 1 }));
  return Buffer.concat(chunks);
}

t.test('tables with valid checksums but inconsistent contents are KV_CORRUPTION', (tt) => {
  const k = (n: number) => Uint8Array.of(n);
  const props = (o: Partial<TableProperties> = {}) =>
    encodeProperties({ entryCount: 2, tombstoneCount: 0, rawKeyBytes: 2, rawValueBytes: 2, dataBlockCount: 2, smallestKey: k(1), largestKey: k(2), ...o });
  const blocks: Array<[Uint8Array, number]> = [[encodeBlock([[k(1), k(10)]]), 0], [encodeBlock([[k(2), k(20)]]), 0]];
  const goodIndex = (o: number[], s: number[]) => encodeBlock([[k(1), handleBytes(o[0]!, s[0]!)], [k(2), handleBytes(o[1]!, s[1]!)]]);
  const fs = new MemoryFileSystem();
  const readAll = (bytes: Uint8Array) => () => {
    writeRaw(fs, 'h.sst', bytes);
    const reader = TableReader.open(fs, 'h.sst', 1, new BlockCache(1 << 16));
    reader.get(k(1));
    reader.get(k(2));
    reader.get(k(3));
    const it = reader.iterator();
    for (it.seekToFirst(); it.valid; it.next());
    it.seek(k(2));
    it.seek(k(3));
    reader.close();
  };
  tt.equal(errorOf(readAll(assemble({ data: blocks, filter: new Uint8Array(0), index: goodIndex, properties: props() }))), undefined, 'the hand-made table is valid');

  const cases: Record<string, Parameters<typeof assemble>[0]> = {
    'index keys out of order': { data: blocks, filter: new Uint8Array(0), index: (o, s) => encodeBlock([[k(2), handleBytes(o[0]!, s[0]!)], [k(1), handleBytes(o[1]!, s[1]!)]]), properties: props() },
    'index offsets not contiguous': { data: blocks, filter: new Uint8Array(0), index: (o, s) => encodeBlock([[k(1), handleBytes(o[0]!, s[0]!)], [k(2), handleBytes(o[1]! + 1, s[1]!)]]), properties: props() },
    'index with more entries than data blocks': { data: blocks, filter: new Uint8Array(0), index: goodIndex, properties: props({ dataBlockCount: 1 }) },
    'index with fewer entries than data blocks': { data: blocks, filter: new Uint8Array(0), index: (o, s) => encodeBlock([[k(1), handleBytes(o[0]!, s[0]!)]]), properties: props({ dataBlockCount: 1 }) },
    'largest key not the last index key': { data: blocks, filter: new Uint8Array(0), index: goodIndex, properties: props({ largestKey: k(3) }) },
    'index key above its block': { data: blocks, filter: new Uint8Array(0), index: (o, s) => encodeBlock([[k(1), handleBytes(o[0]!, s[0]!)], [k(3), handleBytes(o[1]!, s[1]!)]]), properties: props({ largestKey: k(3) }) },
    'implausible properties': { data: blocks, filter: new Uint8Array(0), index: goodIndex, properties: props({ entryCount: 0 }) },
    'truncated properties': { data: blocks, filter: new Uint8Array(0), index: goodIndex, properties: props().subarray(0, 6) },
    'undecodable lz4 block': { data: [[Uint8Array.of(200, 0, 0, 0, 0xff, 0xff, 0xff), 1], blocks[1]!], filter: new Uint8Array(0), index: goodIndex, properties: props() },
    'unknown compression type': { data: [blocks[0]!, [blocks[1]![0], 9]], filter: new Uint8Array(0), index: goodIndex, properties: props() },
    'malformed data block': { data: [[Uint8Array.of(1, 2, 3), 0], blocks[1]!], filter: new Uint8Array(0), index: goodIndex, properties: props() },
  };
  for (const [name, parts] of Object.entries(cases)) {
    const error = errorOf(readAll(assemble(parts)));
    tt.ok(isRingkvError(error, ErrorCode.corruption), `${name}: ${String(error)}`);
  }
  writeRaw(fs, 'h.sst', assemble(cases['index key above its block']!));
  const lying = TableReader.open(fs, 'h.sst', 1, undefined);
  expectCode(tt, () => lying.iterator().seek(k(3)), ErrorCode.corruption, 'a cursor seek past the block the index names');
  expectCode(tt, () => lying.get(k(3)), ErrorCode.corruption, 'a point read past the block the index names');
  tt.equal(lying.get(k(2))?.value[0], 20, 'keys the block does hold still read');
  lying.close();
  tt.end();
});

t.test('block and entry decoding bounds-check every length', (tt) => {
  const parse = (bytes: number[]) => () => Block.parse(Uint8Array.from(bytes), 'f', 0);
  tt.throws(parse([1, 2]), /shorter than its restart count/);
  tt.throws(parse([0, 0, 0, 0]), /bad restart count 0/);
  tt.throws(parse([0, 0, 0, 0, 9, 0, 0, 0]), /bad restart count/);
  tt.throws(parse([0, 0, 0, 0, 1, 0, 0, 0]), /bad restart offset/, 'a block without entries');
  tt.throws(parse([0, 0, 1, 0, 0, 0, 1, 0, 0, 0]), /bad restart offset/, 'first restart not 0');
  tt.throws(parse([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]), /bad restart offset/, 'restarts not increasing');

  const entry = (bytes: number[], prev = 0) => () => {
    const data = Uint8Array.from([...bytes, 0, 0, 0, 0, 1, 0, 0, 0]);
    decodeEntry(Block.parse(data, 'f', 0), 0, prev, new EntryView());
  };
  tt.throws(entry([1, 0, 0]), /malformed block entry/, 'shares more than the previous key');
  tt.throws(entry([0, 5, 0, 1]), /malformed block entry/, 'key overruns');
  tt.throws(entry([0, 0, 0x80]), /malformed block entry/, 'varint overruns');
  tt.throws(entry([0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), /malformed block entry/, 'varint too long');
  tt.throws(entry([0, 0, 0xff, 0xff, 0xff, 0xff, 0x7f]), /malformed block entry/, 'varint at 2^35');
  const ok = new EntryView();
  const big = Uint8Array.from([0x80, 0, 0x81, 0, 0x84, 0, 7, 7, 0, 0, 0, 0, 1, 0, 0, 0]);
  tt.throws(() => decodeEntry(Block.parse(big, 'f', 0, 1), 0, 0, ok), /malformed/, 'multi-byte varints decode then overrun');
  const two = Uint8Array.from([0x80, 0, 0x81, 0, 0x82, 0, 7, 0, 0, 0, 0, 1, 0, 0, 0]);
  tt.throws(() => decodeEntry(Block.parse(two, 'f', 0, 1), 0, 0, ok));
  const fine = Uint8Array.from([0x80, 0x00, 0x81, 0x00, 0x02, 7, 9, 0, 0, 0, 0, 1, 0, 0, 0]);
  decodeEntry(Block.parse(fine, 'f', 0, 1), 0, 0, ok);
  tt.same([ok.shared, ok.unshared, ok.valueBytes, ok.kind, ok.keyStart, ok.next], [0, 1, 1, 0, 5, 7], 'non-minimal varints are accepted');
  // Format 2: two kind bits. Tag 6 = one value byte of kind 2 (a pointer); kind 3 is malformed.
  const v2 = (tag: number) => Uint8Array.from([0, 1, tag, 7, 9, 0, 0, 0, 0, 1, 0, 0, 0]);
  decodeEntry(Block.parse(v2(6), 'f', 0), 0, 0, ok);
  tt.same([ok.kind, ok.valueBytes], [2, 1], 'format 2 reads the kind from two bits');
  decodeEntry(Block.parse(v2(2), 'f', 0, 1), 0, 0, ok);
  tt.same([ok.kind, ok.valueBytes], [0, 1], 'format 1 reads one kind bit');
  tt.throws(() => decodeEntry(Block.parse(v2(7), 'f', 0), 0, 0, ok), /malformed block entry/, 'kind 3 is malformed');

  const fields = new Uint8Array(16);
  const end = writeVarint(fields, writeVarint(fields, 0, Number.MAX_SAFE_INTEGER), 300);
  const r = new FieldReader(fields, 0, end, 'f', 0);
  tt.equal(r.varint(), Number.MAX_SAFE_INTEGER);
  tt.equal(r.varint(), 300);
  tt.ok(r.atEnd);
  tt.throws(() => r.varint(), /malformed varint/);
  tt.throws(() => new FieldReader(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), 0, 8, 'f', 0).varint(), /malformed varint/);
  tt.throws(() => new FieldReader(Uint8Array.of(1), 0, 1, 'f', 0).bytes(2), /overruns/);
  tt.equal(varintBytes(Number.MAX_SAFE_INTEGER), 8);
  const error = errorOf(() => decodeProperties(Uint8Array.of(1), 'props.sst', 77));
  tt.ok(error instanceof RingkvError && error.details.file === 'props.sst' && error.details.offset === 77, 'names file and offset');
  tt.end();
});

t.test('builder: order and kind invariants, options, abandon, size estimate', (tt) => {
  const fs = new MemoryFileSystem();
  const b = new TableBuilder(fs, 'o.sst', options());
  b.add(Uint8Array.of(1, 2), 0, Uint8Array.of(1));
  tt.throws(() => b.add(Uint8Array.of(1, 2), 0, Uint8Array.of(1)), AssertionError, 'duplicate key');
  tt.throws(() => b.add(Uint8Array.of(1), 0, Uint8Array.of(1)), AssertionError, 'prefix of the previous key');
  tt.throws(() => b.add(Uint8Array.of(1, 1, 9), 0, Uint8Array.of(1)), AssertionError, 'smaller key');
  tt.throws(() => b.add(Uint8Array.of(3), 1, Uint8Array.of(1)), AssertionError, 'tombstone with a value');
  tt.throws(() => b.add(Uint8Array.of(3), 2 as EntryKind, Uint8Array.of(1)), AssertionError, 'unknown kind');
  b.add(Uint8Array.of(1, 2, 0), 1, new Uint8Array(0));
  tt.equal(b.entryCount, 2);
  b.finish();
  tt.throws(() => b.add(Uint8Array.of(9), 0, Uint8Array.of(1)), AssertionError, 'add after finish');
  tt.throws(() => b.finish(), AssertionError, 'finish twice');
  tt.throws(() => new TableBuilder(fs, 'o.sst', options()), { code: 'EEXIST' }, 'never overwrites a table');

  const empty = new TableBuilder(fs, 'e.sst', options());
  tt.throws(() => empty.finish(), /empty table/);
  empty.abandon();
  empty.abandon();
  tt.notOk(fs.exists('e.sst'), 'abandon removes the file');

  const partial = new TableBuilder(fs, 'p.sst', options({ blockBytes: 64 }));
  for (let i = 0; i < 5000; i++) partial.add(Uint8Array.of(i >> 8, i & 0xff), 0, new Uint8Array(40).fill(i));
  tt.ok(fs.readFile('p.sst').length >= 64 * 1024, 'output reaches the file in chunks before finish');
  partial.abandon();
  tt.notOk(fs.exists('p.sst'));

  for (const bad of [0, 1.5, 2 ** 40]) tt.throws(() => new TableBuilder(fs, 'r.sst', options({ blockBytes: bad })), RangeError);
  tt.throws(() => new TableBuilder(fs, 'r.sst', options({ bloomBitsPerKey: -1 })), RangeError);
  tt.throws(() => new TableBuilder(fs, 'r.sst', options({ compression: 'gzip' as 'lz4' })), RangeError);
  tt.notOk(fs.exists('r.sst'), 'bad options create no file');

  const rng = new SeededRng(seed ^ 0xe57);
  const sized = new TableBuilder(fs, 's.sst', options());
  let previous = 0;
  let grew = true;
  for (let i = 0; i < 20_000; i++) {
    sized.add(Uint8Array.of(i >> 16, (i >> 8) & 0xff, i & 0xff), 0, rng.bytes(100));
    if (i % 1000 === 999) {
      grew &&= sized.estimatedSizeBytes > previous;
      previous = sized.estimatedSizeBytes;
    }
  }
  const built = sized.finish();
  tt.ok(grew, 'the estimate grows with the data');
  tt.ok(Math.abs(previous - built.fileBytes) < 0.05 * built.fileBytes, `estimate ${previous} near ${built.fileBytes}`);
  tt.end();
});

t.test('reader: IO errors pass through, closed tables refuse reads, cursors guard misuse', (tt) => {
  const mem = new MemoryFileSystem();
  const entries = Array.from({ length: 300 }, (_, i): Entry => ({ key: Uint8Array.of(i >> 8, i & 0xff), kind: 0, value: new Uint8Array(30) }));
  build(mem, 'io.sst', entries, options({ compression: 'none' }));
  let failReads = false;
  const faulty: FileSystem = Object.create(mem, {
    openRead: {
      value: (path: string): FileHandle => {
        const inner = mem.openRead(path);
        return {
          path: inner.path,
          read: (buffer, offset, length, position) => {
            if (failReads) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
            return inner.read(buffer, offset, length, position);
          },
          append: (data) => inner.append(data),
          sync: () => inner.sync(),
          size: () => inner.size(),
          truncate: (length) => inner.truncate(length),
          close: () => inner.close(),
        };
      },
    },
  });
  const reader = TableReader.open(faulty, 'io.sst', 1, new BlockCache(1 << 20));
  failReads = true;
  tt.throws(() => reader.get(entries[100]!.key), { code: 'EIO' }, 'EIO is not reported as corruption');
  failReads = false;
  tt.same(reader.get(entries[100]!.key)?.value, entries[100]!.value, 'reads work again');

  const it = reader.iterator();
  it.seek(Uint8Array.of(0xff));
  tt.notOk(it.valid, 'seek past the last key');
  tt.throws(() => it.next(), AssertionError, 'next on an invalid cursor');
  tt.same([it.key.length, it.value.length], [0, 0]);
  it.seek(new Uint8Array(0));
  tt.same(it.key, entries[0]!.key, 'seek to the empty key is the first entry');
  tt.equal(it.kind, 0);
  const kept = it.key;
  it.next();
  tt.same(kept, entries[0]!.key, 'a key stays valid after the cursor moves');
  reader.close();
  reader.close();
  tt.throws(() => reader.get(entries[299]!.key), AssertionError);
  tt.throws(() => reader.iterator(), AssertionError);
  tt.end();
});
