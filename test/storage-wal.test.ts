/**
 * The commit log: format round trip, group commit, torn tails (RELIABILITY.md D4), mid-log
 * corruption (D5), crashes on the simulated file system (D3), fsync failure (D7), disk full (D8).
 */

import t, { type Test } from 'tap';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, RingkvError } from '../lib/base/errors.js';
import { limits } from '../lib/base/limits.js';
import { createLogger, silentLogger } from '../lib/base/log.js';
import { SeededRng, seedFromEnvironment, type Rng } from '../lib/base/rng.js';
import type { FileHandle, FileSystem } from '../lib/storage/file-system.js';
import { MemoryFileSystem } from '../lib/storage/memory-file-system.js';
import { NodeFileSystem } from '../lib/storage/node-file-system.js';
import { encodeWalFileHeader, walFileHeaderBytes, walRecordHeaderBytes } from '../lib/storage/wal-format.js';
import { recoverWal, scanWal } from '../lib/storage/wal-reader.js';
import { parentDir, WalWriter } from '../lib/storage/wal-writer.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);

function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line) => void lines.push(JSON.parse(line)) } });
  return { logger, lines };
}

function randomBatches(rng: Rng, count: number, sizeBytesMax = 300): Uint8Array[][] {
  const batches: Uint8Array[][] = [];
  for (let i = 0; i < count; i++) {
    const records: Uint8Array[] = [];
    const recordCount = 1 + rng.int(5);
    for (let j = 0; j < recordCount; j++) records.push(rng.bytes(rng.int(sizeBytesMax + 1)));
    batches.push(records);
  }
  return batches;
}

/** Writes `payloads` as one log and returns the file bytes and each record's start offset. */
function logBytes(payloads: Uint8Array[]): { bytes: Uint8Array; starts: number[] } {
  const fs = new MemoryFileSystem();
  const writer = WalWriter.create(fs, 'log');
  const starts: number[] = [];
  for (const payload of payloads) {
    starts.push(writer.sizeBytes);
    writer.appendRecords([payload]);
  }
  writer.close();
  return { bytes: fs.readFile('log'), starts };
}

function writeRaw(fs: FileSystem, path: string, bytes: Uint8Array): void {
  fs.remove(path);
  const file = fs.createExclusive(path);
  file.append(bytes);
  file.close();
}

function corruptionOf(fn: () => unknown): RingkvError {
  try {
    fn();
  } catch (error) {
    if (error instanceof RingkvError) return error;
    throw error;
  }
  throw new Error('expected a RingkvError');
}

/** Wraps a FileSystem to count appends and syncs and to inject faults into appends/truncates. */
class ProbeFileSystem implements FileSystem {
  appends = 0;
  syncs = 0;
  appendFault: ((inner: FileHandle, data: Uint8Array) => void) | undefined;
  truncateFault: Error | undefined;
  readonly inner: FileSystem;

  constructor(inner: FileSystem) {
    this.inner = inner;
  }

  #wrap(file: FileHandle): FileHandle {
    return {
      path: file.path,
      read: (buffer, offset, length, position) => file.read(buffer, offset, length, position),
      append: (data) => {
        this.appends++;
        if (this.appendFault) this.appendFault(file, data);
        else file.append(data);
      },
      sync: () => {
        this.syncs++;
        file.sync();
      },
      size: () => file.size(),
      truncate: (length) => {
        if (this.truncateFault) throw this.truncateFault;
        file.truncate(length);
      },
      close: () => file.close(),
    };
  }

  openAppend(path: string): FileHandle {
    return this.#wrap(this.inner.openAppend(path));
  }
  createExclusive(path: string): FileHandle {
    return this.#wrap(this.inner.createExclusive(path));
  }
  openRead(path: string): FileHandle {
    return this.#wrap(this.inner.openRead(path));
  }
  readFile(path: string): Uint8Array {
    return this.inner.readFile(path);
  }
  exists(path: string): boolean {
    return this.inner.exists(path);
  }
  list(dir: string): string[] {
    return this.inner.list(dir);
  }
  rename(from: string, to: string): void {
    this.inner.rename(from, to);
  }
  remove(path: string): void {
    this.inner.remove(path);
  }
  mkdirp(dir: string): void {
    this.inner.mkdirp(dir);
  }
  syncDir(dir: string): void {
    this.inner.syncDir(dir);
  }
}

const errno = (code: string): Error => Object.assign(new Error(code), { code });

function onBothFileSystems(name: string, body: (t: Test, fs: FileSystem, dir: string) => void): void {
  t.test(`${name} (MemoryFileSystem)`, async (t) => {
    const fs = new MemoryFileSystem();
    fs.mkdirp('/db');
    body(t, fs, '/db');
  });
  t.test(`${name} (NodeFileSystem)`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ringkv-wal-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    body(t, new NodeFileSystem(), dir);
  });
}

onBothFileSystems('records round-trip in order across many group commits and a reopen', (t, fs, dir) => {
  const path = `${dir}/000001.wal`;
  const rng = new SeededRng(seed);
  const batches = randomBatches(rng, 60);
  batches.push([new Uint8Array(0)]);
  const writer = WalWriter.create(fs, path);
  for (const batch of batches.slice(0, 40)) {
    writer.appendRecords(batch);
    writer.sync();
  }
  writer.close();
  const first = recoverWal(fs, path, silentLogger);
  t.same(first.payloads, batches.slice(0, 40).flat());
  t.equal(first.validBytes, writer.sizeBytes);
  t.equal(first.droppedBytes, 0);

  const reopened = WalWriter.open(fs, path);
  t.equal(reopened.sizeBytes, writer.sizeBytes);
  for (const batch of batches.slice(40)) reopened.appendRecords(batch);
  reopened.appendRecords([]);
  reopened.sync();
  reopened.close();
  const { logger, lines } = captureLogger();
  const second = recoverWal(fs, path, logger);
  t.same(second.payloads, batches.flat());
  t.equal(second.validBytes, reopened.sizeBytes);
  t.same(lines, [], 'a clean log logs nothing');
});

onBothFileSystems('a torn tail at every byte offset inside the last record drops just that record', (t, fs, dir) => {
  const path = `${dir}/torn.wal`;
  const payloads = [...randomBatches(new SeededRng(seed), 4).flat(), new SeededRng(seed).bytes(40)];
  const { bytes, starts } = logBytes(payloads);
  const lastStart = starts[starts.length - 1]!;
  for (let cut = lastStart + 1; cut < bytes.length; cut++) {
    writeRaw(fs, path, bytes.subarray(0, cut));
    const { logger, lines } = captureLogger();
    const recovery = recoverWal(fs, path, logger);
    t.same(recovery.payloads, payloads.slice(0, -1));
    t.equal(recovery.validBytes, lastStart);
    t.equal(recovery.droppedBytes, cut - lastStart);
    t.equal(lines.length, 1, 'exactly one WARN');
    t.match(lines[0], { level: 40, file: path, offset: lastStart, bytesDropped: cut - lastStart });
    t.equal(fs.readFile(path).length, lastStart, 'the tail is cut off the file');

    const writer = WalWriter.open(fs, path);
    writer.appendRecords([Uint8Array.of(7, 7, 7)]);
    writer.sync();
    writer.close();
    t.same(recoverWal(fs, path, logger).payloads, [...payloads.slice(0, -1), Uint8Array.of(7, 7, 7)]);
    t.equal(lines.length, 1, 'new appends land after valid data');
  }
});

t.test('1 to 4096 bytes of random garbage after the last record are a torn tail', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
      fc.uint8Array({ minLength: 1, maxLength: 4096 }),
      (payloads, garbage) => {
        const { bytes } = logBytes(payloads);
        const fs = new MemoryFileSystem();
        const file = fs.createExclusive('log');
        file.append(bytes);
        file.append(garbage);
        file.close();
        const { logger, lines } = captureLogger();
        const recovery = recoverWal(fs, 'log', logger);
        t.same(recovery.payloads, payloads);
        t.equal(recovery.droppedBytes, garbage.length);
        t.equal(lines.length, 1);
        t.equal(fs.readFile('log').length, bytes.length);
      },
    ),
    { seed, numRuns: 150 },
  );
});

t.test('a bit flip in any record but the last is KV_CORRUPTION naming the file and offset', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 2, maxLength: 8 }),
      fc.nat(),
      fc.nat(),
      (payloads, recordChoice, bitChoice) => {
        const { bytes, starts } = logBytes(payloads);
        const index = recordChoice % (payloads.length - 1);
        const start = starts[index]!;
        const recordBits = (walRecordHeaderBytes + payloads[index]!.length) * 8;
        const bit = start * 8 + (bitChoice % recordBits);
        const damaged = bytes.slice();
        damaged[bit >>> 3]! ^= 1 << (bit & 7);
        const fs = new MemoryFileSystem();
        writeRaw(fs, 'dir-less.wal', damaged);
        const error = corruptionOf(() => recoverWal(fs, 'dir-less.wal', silentLogger));
        t.equal(error.code, ErrorCode.corruption);
        t.match(error.details, { file: 'dir-less.wal', offset: start });
        t.match(error.message, /dir-less\.wal.*offset/);
        t.same(fs.readFile('dir-less.wal'), damaged, 'a corrupt log is left untouched');
      },
    ),
    { seed, numRuns: 150 },
  );
});

t.test('file header: torn is an empty log, wrong is corruption or incompatible', async (t) => {
  const fs = new MemoryFileSystem();
  const header = encodeWalFileHeader();
  const { bytes } = logBytes([Uint8Array.of(1, 2, 3)]);

  writeRaw(fs, 'h', header.subarray(0, 5));
  const { logger, lines } = captureLogger();
  const torn = recoverWal(fs, 'h', logger);
  t.same(torn, { payloads: [], validBytes: walFileHeaderBytes, droppedBytes: 5 });
  t.match(lines, [{ level: 40, file: 'h', offset: 0, bytesDropped: 5 }]);
  t.same(fs.readFile('h'), header, 'the header is rewritten so the log can be appended to');

  writeRaw(fs, 'h', new Uint8Array(0));
  t.same(recoverWal(fs, 'h', logger).validBytes, walFileHeaderBytes);
  t.equal(lines.length, 1, 'an empty file drops nothing and logs nothing');

  writeRaw(fs, 'h', new Uint8Array(40));
  t.same(recoverWal(fs, 'h', logger), { payloads: [], validBytes: walFileHeaderBytes, droppedBytes: 40 });
  t.equal(lines.length, 2, 'a zero-filled file is a never-written log');

  const zeroHeaded = bytes.slice();
  zeroHeaded.fill(0, 0, walFileHeaderBytes);
  t.equal(corruptionOf(() => scanWal(zeroHeaded, 'z')).code, ErrorCode.corruption, 'zero header before valid records');

  const cases: [number, number, ErrorCode][] = [
    [0, 0x41, ErrorCode.corruption],
    [4, 2, ErrorCode.incompatible],
    [6, 1, ErrorCode.corruption],
  ];
  for (const [offset, value, code] of cases) {
    const wrong = bytes.slice();
    wrong[offset] = value;
    const error = corruptionOf(() => scanWal(wrong, 'w'));
    t.equal(error.code, code, `byte ${offset} = ${value}`);
    t.equal(error.details.file, 'w');
  }
});

t.test('a crash keeps exactly the synced records, plus possibly whole unsynced ones', async (t) => {
  fc.assert(
    fc.property(fc.integer(), fc.nat(5), fc.nat(4), (runSeed, syncedCount, unsyncedCount) => {
      const rng = new SeededRng(runSeed);
      const fs = new MemoryFileSystem();
      fs.mkdirp('/db');
      const synced = randomBatches(rng, syncedCount);
      const unsynced = randomBatches(rng, unsyncedCount);
      const writer = WalWriter.create(fs, '/db/wal');
      for (const batch of synced) {
        writer.appendRecords(batch);
        writer.sync();
      }
      for (const batch of unsynced) writer.appendRecords(batch);
      fs.crash(rng);
      if (!fs.exists('/db/wal')) {
        t.equal(syncedCount, 0, 'only a never-synced log can vanish');
        return;
      }
      const recovered = recoverWal(fs, '/db/wal', silentLogger).payloads;
      const acked = synced.flat();
      t.same(recovered.slice(0, acked.length), acked, 'every acknowledged record survives');
      t.same(recovered.slice(acked.length), unsynced.flat().slice(0, recovered.length - acked.length));
      const again = WalWriter.open(fs, '/db/wal');
      again.appendRecords([Uint8Array.of(9)]);
      again.sync();
      t.same(recoverWal(fs, '/db/wal', silentLogger).payloads, [...recovered, Uint8Array.of(9)]);
    }),
    { seed, numRuns: 200 },
  );
});

t.test('a crash at every file-system operation of a log recovers an acknowledged prefix', async (t) => {
  const batches = randomBatches(new SeededRng(seed), 4);
  let acked = 0;
  const procedure = (fs: MemoryFileSystem): void => {
    const writer = WalWriter.create(fs, '/db/wal');
    for (const batch of batches.slice(0, 3)) {
      writer.appendRecords(batch);
      writer.sync();
      acked += batch.length;
    }
    writer.appendRecords(batches[3]!);
    writer.close();
  };
  const fresh = (): MemoryFileSystem => {
    const fs = new MemoryFileSystem();
    fs.mkdirp('/db');
    return fs;
  };
  const counter = fresh();
  const before = counter.operationCount;
  procedure(counter);
  const steps = counter.operationCount - before;
  t.equal(steps, 10, 'create, header, 3 x (append, sync), 1 syncDir, 1 append');
  const rng = new SeededRng(seed);
  for (let step = 1; step <= steps; step++) {
    const fs = fresh();
    acked = 0;
    fs.failAfter(step);
    t.throws(() => procedure(fs), `step ${step} crashes`);
    fs.crash(rng);
    if (!fs.exists('/db/wal')) {
      t.equal(acked, 0, `step ${step}: only a never-synced log vanishes`);
      continue;
    }
    const recovered = recoverWal(fs, '/db/wal', silentLogger).payloads;
    t.ok(recovered.length >= acked, `step ${step}: all ${acked} acknowledged records survive`);
    t.same(recovered, batches.flat().slice(0, recovered.length), 'and nothing but whole records in order');
  }
});

t.test('a failed fsync poisons the writer: every later append and sync is KV_IO', async (t) => {
  const fs = new MemoryFileSystem();
  const writer = WalWriter.create(fs, 'wal');
  writer.appendRecords([Uint8Array.of(1)]);
  fs.failNextSync('EIO');
  const error = corruptionOf(() => writer.sync());
  t.equal(error.code, ErrorCode.io);
  t.equal(error.details.errno, 'EIO');
  t.ok(writer.poisoned);
  t.throws(() => writer.sync(), { code: ErrorCode.io }, 'the fsync is never retried');
  t.throws(() => writer.appendRecords([Uint8Array.of(2)]), { code: ErrorCode.io });
  writer.close();
  writer.close();
  t.throws(() => writer.appendRecords([Uint8Array.of(2)]), { code: ErrorCode.closed });

  const dirFailure = new MemoryFileSystem();
  const second = WalWriter.create(dirFailure, 'wal');
  dirFailure.failAfter(2); // the file sync succeeds, the directory sync fails
  t.throws(() => second.sync(), { code: ErrorCode.io });
  t.ok(second.poisoned, 'a failed directory sync poisons too');
});

t.test('disk full: KV_DISK_FULL, no partial record, writes resume when space is freed', async (t) => {
  const memory = new MemoryFileSystem();
  const writer = WalWriter.create(memory, 'wal');
  writer.appendRecords([Uint8Array.of(1)]);
  memory.setCapacityBytes(writer.sizeBytes + 12);
  t.throws(() => writer.appendRecords([new Uint8Array(100)]), { code: ErrorCode.diskFull });
  t.notOk(writer.poisoned);
  memory.setCapacityBytes();
  writer.appendRecords([Uint8Array.of(2)]);
  writer.sync();
  t.same(recoverWal(memory, 'wal', silentLogger).payloads, [Uint8Array.of(1), Uint8Array.of(2)]);

  const probe = new ProbeFileSystem(new MemoryFileSystem());
  const partial = WalWriter.create(probe, 'wal');
  partial.appendRecords([Uint8Array.of(3)]);
  probe.appendFault = (inner, data) => {
    inner.append(data.subarray(0, 5));
    throw errno('ENOSPC');
  };
  t.throws(() => partial.appendRecords([new Uint8Array(50)]), { code: ErrorCode.diskFull });
  t.equal(probe.readFile('wal').length, partial.sizeBytes, 'a half-written record is cut off');
  probe.appendFault = undefined;
  partial.appendRecords([Uint8Array.of(4)]);
  t.same(scanWal(probe.readFile('wal'), 'wal').payloads, [Uint8Array.of(3), Uint8Array.of(4)]);

  probe.appendFault = (inner, data) => {
    inner.append(data.subarray(0, 5));
    throw errno('ENOSPC');
  };
  probe.truncateFault = errno('EIO');
  t.throws(() => partial.appendRecords([new Uint8Array(50)]), { code: ErrorCode.io });
  t.ok(partial.poisoned, 'a half-written record that cannot be cut off poisons');

  probe.appendFault = undefined;
  const other = WalWriter.create(probe, 'wal2');
  probe.appendFault = () => {
    throw errno('EIO');
  };
  t.throws(() => other.appendRecords([Uint8Array.of(5)]), { code: ErrorCode.io });
  t.ok(other.poisoned, 'a write error other than ENOSPC poisons');
});

t.test('group commit: one appendRecords is one append, one sync is one fdatasync', async (t) => {
  const probe = new ProbeFileSystem(new MemoryFileSystem());
  const writer = WalWriter.create(probe, 'wal');
  const rng = new SeededRng(seed);
  for (const batch of randomBatches(rng, 20)) {
    const appends = probe.appends;
    const syncs = probe.syncs;
    writer.appendRecords(batch);
    writer.sync();
    t.equal(probe.appends - appends, 1);
    t.equal(probe.syncs - syncs, 1);
  }
});

t.test('limits and misuse: oversized record, existing file, missing header, missing log', async (t) => {
  const fs = new MemoryFileSystem();
  const writer = WalWriter.create(fs, 'wal');
  t.throws(() => writer.appendRecords([new Uint8Array(limits.walRecordBytesMax + 1)]), { code: ErrorCode.tooLarge });
  t.equal(writer.sizeBytes, walFileHeaderBytes, 'nothing was written');
  t.throws(() => WalWriter.create(fs, 'wal'), { code: 'EEXIST' });
  writeRaw(fs, 'short', Uint8Array.of(1, 2));
  t.throws(() => WalWriter.open(fs, 'short'), { code: ErrorCode.corruption });
  t.throws(() => recoverWal(fs, 'missing', silentLogger), { code: 'ENOENT' });
  fs.setCapacityBytes(3);
  t.throws(() => WalWriter.create(fs, 'full'), { code: ErrorCode.io });
  t.equal(parentDir('wal'), '.');
  t.equal(parentDir('/wal'), '/');
  t.equal(parentDir('/a/b/wal'), '/a/b');
});
