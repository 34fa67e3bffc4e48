/**
 * Key-value separation: large values stay in the commit log they were written to, tables hold
 * pointers (value-pointer.ts), and value-log GC (value-log-gc*.ts) rewrites live values and
 * deletes mostly dead files. Crash-simulating file system throughout: a crash after every
 * file-system step of GC, a torn tail, a flipped bit.
 */
import t, { type Test } from 'tap';
import { ErrorCode, isRingkvError } from '../lib/base/errors.js';
import { limits } from '../lib/base/limits.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { Engine, type EngineOptions } from '../lib/storage/engine.js';
import { MemoryFileSystem } from '../lib/storage/memory-file-system.js';
import { parseFileName } from '../lib/storage/manifest.js';
import { liveValuesOf, slicesOfLive } from '../lib/storage/value-log-gc.js';
import { decodeValuePointer, encodeValuePointer, pointerNames, VALUE_POINTER_BYTES } from '../lib/storage/value-pointer.js';
import { ProcessFileSystem } from './fixtures/process-file-system.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const key = (i: number): Uint8Array => enc.encode(`key-${i}`);
/** A value of `size` bytes that names its key and generation. */
const valueOf = (i: number, generation: number, size: number): string => `v${i}.${generation}:`.padEnd(size, String.fromCharCode(97 + ((i + generation) % 26)));

function options(fs: ProcessFileSystem | MemoryFileSystem, extra: Partial<EngineOptions> = {}): EngineOptions {
  // GC only when a test asks (collectValueLog), so every run sees the same files.
  return { fs, dir: '/db', memtableBytes: 64 * 1024, valueSeparationBytes: 256, valueLogGcBytesPerSecond: 0, autoCompact: false, ...extra };
}

function valueLogFiles(fs: MemoryFileSystem): number[] {
  return fs
    .list('/db')
    .map(parseFileName)
    .filter((p) => p?.kind === 'wal')
    .map((p) => p!.fileNumber)
    .sort((a, b) => a - b);
}

async function expectAll(t: Test, db: Engine, model: Map<number, string>, where: string): Promise<void> {
  let bad = 0;
  for (const [i, want] of model) {
    const got = db.get(key(i));
    if ((got === undefined ? undefined : dec.decode(got)) !== want) bad++;
  }
  t.equal(bad, 0, `${where}: every key reads its latest value`);
}

/** Writes `keys` large values, overwrites all but every `keepEvery`-th, and flushes each step. */
async function fillAndOverwrite(db: Engine, model: Map<number, string>, keys: number, keepEvery: number): Promise<void> {
  for (let i = 0; i < keys; i++) {
    const v = valueOf(i, 0, 600 + (i % 7) * 100);
    await db.put(key(i), enc.encode(v));
    model.set(i, v);
  }
  await db.flush();
  for (let i = 0; i < keys; i++) {
    if (i % keepEvery === 0) continue;
    const v = valueOf(i, 1, 700);
    await db.put(key(i), enc.encode(v));
    model.set(i, v);
  }
  await db.flush();
}

t.test('a value pointer round-trips, names its file and offset, and refuses anything else', async (t) => {
  const value = enc.encode('x'.repeat(300));
  const bytes = encodeValuePointer(12, 4096, value);
  t.equal(bytes.length, VALUE_POINTER_BYTES);
  t.same(decodeValuePointer(bytes), { fileNumber: 12, offset: 4096, length: 300, crc: decodeValuePointer(bytes).crc });
  t.ok(pointerNames(bytes, 12, 4096));
  t.notOk(pointerNames(bytes, 12, 4097));
  t.notOk(pointerNames(bytes, 13, 4096));
  t.notOk(pointerNames(bytes.subarray(1), 12, 4096));
  const wrongVersion = Uint8Array.from(bytes);
  wrongVersion[0] = 9;
  t.throws(() => decodeValuePointer(wrongVersion), { code: ErrorCode.corruption });
  t.throws(() => decodeValuePointer(bytes.subarray(0, 10)), { code: ErrorCode.corruption });
  t.throws(() => encodeValuePointer(2 ** 32, 0, value), RangeError);
  t.throws(() => encodeValuePointer(1, 2 ** 32 - 10, value), RangeError);
  const slices = slicesOfLive(
    [100, 100, 100, 500].map((n, i) => ({ key: new Uint8Array([i]), value: new Uint8Array(n), offset: i })),
    250,
  );
  t.same(slices.map((s) => s.length), [2, 1, 1], 'GC slices hold about sliceBytes, at least one value');
});

t.test('large values become pointers at flush; compaction moves pointers; reads, scans and reopen see the values', async (t) => {
  const disk = new MemoryFileSystem();
  const db = Engine.open(options(disk));
  const model = new Map<number, string>();
  for (let i = 0; i < 300; i++) {
    const v = valueOf(i, 0, i % 3 === 0 ? 100 : 2000);
    await db.put(key(i), enc.encode(v));
    model.set(i, v);
  }
  await db.flush();
  let s = db.stats();
  t.ok(s.valueLog.files >= 1, `value-log files after flush: ${s.valueLog.files}`);
  t.ok(s.liveTableBytes < 100 * 2000, `tables hold pointers, not the 2000-byte values (${s.liveTableBytes} bytes)`);
  await expectAll(t, db, model, 'after flush');
  t.ok(db.stats().valueLog.reads > 0, 'reads went through pointers');
  await db.compact();
  s = db.stats();
  t.ok(s.compactionBytesWritten < 100 * 2000, `compaction rewrote ${s.compactionBytesWritten} bytes, not the values`);
  await expectAll(t, db, model, 'after compaction');
  const memory = db.stats().memory;
  t.ok(memory.filterBytes > 0 && memory.indexBytes > 0, `resident filter ${memory.filterBytes} B and index ${memory.indexBytes} B are reported`);
  t.ok(memory.memtableBytes <= memory.memtableBudgetBytes, 'memtables within their budget');
  t.ok(memory.blockCacheBytes <= memory.blockCacheBudgetBytes, 'block cache within its budget');
  let scanned = 0;
  for (let p = 0; p < 2 ** limits.partitionBitsDefault; p++) {
    for (const e of db.scanPartition(p).entries) {
      const i = Number(dec.decode(e.key).slice(4));
      if (dec.decode(e.value) === model.get(i)) scanned++;
    }
  }
  t.equal(scanned, model.size, 'a partition scan returns the pointed values');
  await db.close();
  const again = Engine.open(options(disk));
  await expectAll(t, again, model, 'after reopen');
  await again.close();
});

t.test('values read through pointers stay intact while later reads fill the read slab, small and large alike', async (t) => {
  const disk = new MemoryFileSystem();
  const db = Engine.open(options(disk, { memtableBytes: 8 * 1024 * 1024 }));
  const model = new Map<number, string>();
  // Sizes from a few hundred bytes to past a quarter of the read slab (own arrays).
  const sizes = [300, 1000, 4000, 10_240, 30_000, 70_000];
  for (let i = 0; i < 120; i++) {
    const v = valueOf(i, 0, sizes[i % sizes.length]!);
    await db.put(key(i), enc.encode(v));
    model.set(i, v);
  }
  await db.flush();
  // Hold every value read (many slabs' worth), then check them all after the last read.
  const held: [number, Uint8Array][] = [];
  for (let round = 0; round < 3; round++) for (const i of model.keys()) held.push([i, db.get(key(i))!]);
  let bad = 0;
  for (const [i, bytes] of held) if (dec.decode(bytes) !== model.get(i)) bad++;
  t.equal(bad, 0, `each of ${held.length} held values is still its own`);
  t.ok(db.stats().valueLog.reads >= held.length, 'every read went through a pointer');
  await db.close();
});

t.test('GC collects a mostly dead file, keeps live values, and leaves mostly live files alone', async (t) => {
  const disk = new MemoryFileSystem();
  const db = Engine.open(options(disk));
  const model = new Map<number, string>();
  await fillAndOverwrite(db, model, 200, 5);
  const before = db.stats().valueLog.files;
  const collected = await db.collectValueLog();
  const s = db.stats();
  t.ok(collected >= 1, `collected ${collected} file(s)`);
  t.ok(s.valueLog.gcBytesRewritten > 0, 'live values were rewritten');
  t.equal(s.valueLog.gcCollections, collected, 'stats count the collections');
  t.ok(s.valueLog.gcChecks >= collected);
  await expectAll(t, db, model, 'after GC');
  await db.flush();
  t.ok(s.valueLog.files <= before, 'no more value-log files than before');
  const second = await db.collectValueLog();
  t.equal(second, 0, 'a second pass finds nothing mostly dead');
  await db.close();
  const again = Engine.open(options(disk));
  await expectAll(t, again, model, 'after GC and reopen');
  await again.close();
});

t.test('a write that lands while GC runs wins over the rewrite of the value it replaced', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed}`);
  const rng = new SeededRng(seed);
  const disk = new MemoryFileSystem();
  const db = Engine.open(options(disk, { valueLogGcBytesPerSecond: 2 * 1024 * 1024 }));
  const model = new Map<number, string>();
  await fillAndOverwrite(db, model, 200, 3);
  const gc = db.collectValueLog();
  const writes: Promise<void>[] = [];
  for (let n = 0; n < 100; n++) {
    const i = rng.int(200);
    const v = valueOf(i, 2 + n, 900);
    model.set(i, v);
    writes.push(db.put(key(i), enc.encode(v)));
    if (n % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(writes);
  t.ok((await gc) >= 1, 'GC collected while writes went on');
  await expectAll(t, db, model, 'after concurrent GC');
  await db.flush();
  await db.collectValueLog();
  await expectAll(t, db, model, 'after a second GC');
  await db.close();
});

/** The same disk state every time: one mostly dead value-log file and its model. */
async function prepared(): Promise<{ disk: MemoryFileSystem; model: Map<number, string> }> {
  const disk = new MemoryFileSystem();
  const db = Engine.open(options(disk));
  const model = new Map<number, string>();
  await fillAndOverwrite(db, model, 120, 4);
  await db.close();
  return { disk, model };
}

t.test('a crash after every file-system step of GC loses no value a live pointer names', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed}`);
  let step = 1;
  let completed = false;
  for (; !completed && step < 500; step++) {
    const { disk, model } = await prepared();
    const proc = new ProcessFileSystem(disk);
    const db = Engine.open(options(proc));
    disk.failAfter(step);
    let error: unknown;
    await db.collectValueLog().catch((e: unknown) => {
      error = e;
    });
    completed = error === undefined && !disk.failing;
    proc.kill();
    disk.crash(new SeededRng(seed + step));
    const again = Engine.open(options(new ProcessFileSystem(disk)));
    let bad = 0;
    for (const [i, want] of model) {
      const got = again.get(key(i));
      if ((got === undefined ? undefined : dec.decode(got)) !== want) bad++;
    }
    if (bad > 0) t.fail(`crash after GC step ${step}: ${bad} keys lost or wrong`);
    // A later GC (after the crash) still finishes the job and loses nothing.
    await again.collectValueLog();
    await expectAll(t, again, model, `GC after the crash at step ${step}`);
    await again.close();
  }
  t.ok(completed, `GC completed without failing after ${step - 1} steps; every earlier step was crashed`);
});

t.test('a flipped bit in a value-log file is KV_CORRUPTION on read, and the file is never collected', async (t) => {
  const { disk, model } = await prepared();
  // Damage the live value of key 1 where it lies in the value log.
  const wanted = Buffer.from(model.get(1)!);
  let victim = '';
  let bytes: Uint8Array = new Uint8Array(0);
  for (const n of valueLogFiles(disk)) {
    const path = `/db/${String(n).padStart(6, '0')}.wal`;
    const at = Buffer.from(disk.readFile(path)).indexOf(wanted);
    if (at < 0) continue;
    victim = path;
    bytes = disk.readFile(path);
    bytes[at + 10] = bytes[at + 10]! ^ 0x10;
  }
  t.not(victim, '', 'the value was found in a value-log file');
  disk.remove(victim);
  const file = disk.createExclusive(victim);
  file.append(bytes);
  file.sync();
  file.close();
  const db = Engine.open(options(disk));
  let corrupt = 0;
  let good = 0;
  for (const [i, want] of model) {
    try {
      const got = db.get(key(i));
      if (got !== undefined && dec.decode(got) === want) good++;
    } catch (error) {
      if (isRingkvError(error) && error.code === ErrorCode.corruption) corrupt++;
      else throw error;
    }
  }
  t.equal(corrupt, 1, 'the one damaged value reads as KV_CORRUPTION');
  t.equal(good, model.size - 1, 'every other value still reads');
  await db.collectValueLog();
  t.ok(disk.exists(victim), 'the damaged file is kept');
  t.equal(db.stats().failed, undefined, 'the engine keeps running');
  await db.close();
});

t.test('liveValuesOf refuses a file with a torn tail: a value a pointer names may sit in it', async (t) => {
  const { disk } = await prepared();
  const files = valueLogFiles(disk);
  const path = `/db/${String(files[0]).padStart(6, '0')}.wal`;
  const bytes = disk.readFile(path);
  const torn = bytes.subarray(0, bytes.length - 5);
  t.throws(() => liveValuesOf(torn, path, 256, () => true), { code: ErrorCode.corruption });
  const whole = liveValuesOf(bytes, path, 256, () => true);
  t.ok(whole.live.length > 0 && whole.liveBytes === whole.separatedBytes, 'an intact file scans whole');
  t.equal(liveValuesOf(bytes, path, 256, () => false).liveBytes, 0);
});

t.test('a torn commit-log tail before the flush leaves pointers only to acknowledged values', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed}`);
  const disk = new MemoryFileSystem();
  let proc = new ProcessFileSystem(disk);
  const db = Engine.open(options(proc, { sync: 'none' }));
  const model = new Map<number, string>();
  for (let i = 0; i < 40; i++) {
    const v = valueOf(i, 0, 800);
    await db.put(key(i), enc.encode(v));
  }
  proc.kill();
  disk.crash(new SeededRng(seed));
  proc = new ProcessFileSystem(disk);
  const again = Engine.open(options(proc));
  // Whatever survived the crash is what the engine now holds; flushing makes it pointers.
  for (let i = 0; i < 40; i++) {
    const got = again.get(key(i));
    if (got !== undefined) model.set(i, dec.decode(got));
  }
  for (const [i, v] of model) t.equal(v, valueOf(i, 0, 800), `k${i} recovered whole or not at all`);
  await again.flush();
  await expectAll(t, again, model, 'after flush of a recovered log');
  await again.collectValueLog();
  await expectAll(t, again, model, 'after GC');
  t.equal(again.stats().failed, undefined);
  await again.close();
});

t.test('value-log options are checked', async (t) => {
  const disk = new MemoryFileSystem();
  t.throws(() => Engine.open(options(disk, { valueSeparationBytes: 0 })), RangeError);
  t.throws(() => Engine.open(options(disk, { valueLogGcLiveRatio: 1 })), RangeError);
  t.throws(() => Engine.open(options(disk, { valueLogGcBytesPerSecond: -1 })), RangeError);
  const off = Engine.open(options(disk, { valueSeparationBytes: Infinity }));
  await off.put(key(1), new Uint8Array(5000));
  await off.flush();
  t.equal(off.stats().valueLog.files, 0, 'Infinity keeps every value in the tables');
  await off.close();
});

t.test('GC after the threshold was raised keeps values that older pointers still name', async (t) => {
  const disk = new MemoryFileSystem();
  const db = Engine.open(options(disk));
  const model = new Map<number, string>();
  await fillAndOverwrite(db, model, 120, 4);
  await db.close();
  // Reopened with a threshold above every value: the existing pointers still name the log.
  const raised = Engine.open(options(disk, { valueSeparationBytes: 64 * 1024 }));
  t.ok((await raised.collectValueLog()) >= 1, 'mostly dead files are still collected');
  await expectAll(t, raised, model, 'after GC under a raised threshold');
  await raised.close();
  const again = Engine.open(options(disk));
  await expectAll(t, again, model, 'after reopen');
  await again.close();
});
