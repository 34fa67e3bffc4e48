import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, isRingkvError, limits, SeededRng, seedFromEnvironment } from '../lib/base/index.js';
import { Engine, type EngineOptions } from '../lib/storage/engine.js';
import { MemoryFileSystem } from '../lib/storage/memory-file-system.js';
import { NodeFileSystem } from '../lib/storage/node-file-system.js';
import { partitionOfToken, tokenOf } from '../lib/base/hash.js';
import { CompactionPool } from '../lib/storage/compaction-pool.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const k = (s: string | number): Uint8Array => enc.encode(`key-${s}`);
const v = (s: string | number, size = 0): Uint8Array => enc.encode(`value-${s}`.padEnd(size, '.'));
const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : dec.decode(b));

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

function small(fs: MemoryFileSystem, extra: Partial<EngineOptions> = {}): Engine {
  return Engine.open({ fs, dir: '/db', memtableBytes: limits.memtableBytesMin, targetTableBytes: 32 * 1024, level1BytesMax: 128 * 1024, ...extra });
}

t.test('put, get, overwrite, delete and batch', async (t) => {
  const fs = new MemoryFileSystem();
  const db = small(fs);
  t.equal(db.get(k(1)), undefined, 'missing key is undefined');
  await db.put(k(1), v(1));
  t.equal(text(db.get(k(1))), 'value-1');
  await db.put(k(1), v('1b'));
  t.equal(text(db.get(k(1))), 'value-1b', 'overwrite wins');
  await db.delete(k(1));
  t.equal(db.get(k(1)), undefined, 'deleted');
  await db.write([
    { type: 'put', key: k(2), value: v(2) },
    { type: 'put', key: k(3), value: v(3) },
    { type: 'delete', key: k(2) },
  ]);
  t.equal(db.get(k(2)), undefined, 'last op in a batch wins');
  t.equal(text(db.get(k(3))), 'value-3');
  await db.put(new Uint8Array(0), new Uint8Array(0));
  t.same(db.get(new Uint8Array(0)), new Uint8Array(0), 'empty key and empty value round-trip');
  await db.close();
});

t.test('a data set many times the memtable is read back exactly through flushes and compactions', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed}`);
  const rng = new SeededRng(seed);
  const fs = new MemoryFileSystem();
  const db = small(fs);
  const model = new Map<string, string>();
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 20_000; i++) {
    const key = String(rng.int(8000));
    if (rng.next() < 0.1) {
      model.delete(key);
      writes.push(db.delete(k(key)));
    } else {
      const value = `${i}-${key}`;
      model.set(key, value);
      writes.push(db.put(k(key), v(value, 100)));
    }
    if (writes.length === 500) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
  const stats = db.stats();
  t.ok(stats.flushes > 10, `flushed ${stats.flushes} times`);
  t.ok(stats.compactions > 0, `compacted ${stats.compactions} times`);
  t.ok(stats.levels[0]!.tables < limits.level0StopTrigger, 'level 0 is bounded');
  const check = (label: string): void => {
    let wrong = 0;
    for (let i = 0; i < 8000; i++) {
      const want = model.get(String(i));
      const got = text(db.get(k(i)));
      if ((want === undefined ? undefined : `value-${want}`.padEnd(100, '.')) !== got) wrong++;
    }
    t.equal(wrong, 0, `${label}: every key reads back its last write`);
  };
  check('live');
  await db.close();
  const reopened = small(fs);
  Object.assign(db, {});
  const again = reopened;
  const wrongAfter = [...Array(8000).keys()].filter((i) => {
    const want = model.get(String(i));
    return (want === undefined ? undefined : `value-${want}`.padEnd(100, '.')) !== text(again.get(k(i)));
  }).length;
  t.equal(wrongAfter, 0, 'after reopen every key reads back its last write');
  await again.compact();
  const s = again.stats();
  t.equal(s.levels.reduce((n, l) => n + (l.tables > 0 ? 1 : 0), 0), 1, 'a full compaction leaves one level');
  const live = [...model.values()].reduce((n, val) => n + 100 + 8 + val.length, 0);
  t.ok(s.liveTableBytes <= 2 * live + 64 * 1024, `space amplification ${(s.liveTableBytes / live).toFixed(2)}x <= 2x`);
  t.ok(s.bloom.checks > 0 || s.cache.hits + s.cache.misses > 0, 'stats count table reads');
  await again.close();
});

t.test('scanPartition pages through one partition in token order and dropPartition empties it', async (t) => {
  const fs = new MemoryFileSystem();
  const db = small(fs, { partitionBits: 4 });
  const byPartition = new Map<number, string[]>();
  for (let i = 0; i < 3000; i++) {
    const key = k(i);
    const p = partitionOfToken(tokenOf(key), 4);
    byPartition.set(p, [...(byPartition.get(p) ?? []), dec.decode(key)]);
    await db.put(key, v(i));
    if (i === 1500) await db.flush();
  }
  await db.delete(k(7));
  const p7 = partitionOfToken(tokenOf(k(7)), 4);
  const expected = byPartition.get(p7)!.filter((s) => s !== 'key-7').sort();
  const seen: string[] = [];
  let afterKey: Uint8Array | undefined;
  let lastToken = -1;
  do {
    const page = db.scanPartition(p7, afterKey ? { afterKey, limit: 37 } : { limit: 37 });
    for (const e of page.entries) {
      seen.push(dec.decode(e.key));
      const token = tokenOf(e.key);
      t.ok(token >= lastToken, 'entries come in token order');
      lastToken = token;
      t.equal(partitionOfToken(token, 4), p7);
    }
    afterKey = page.nextAfterKey;
  } while (afterKey);
  t.same(seen.sort(), expected, 'the scan returns exactly the live keys of the partition');
  t.throws(() => db.scanPartition(16), RangeError);
  t.throws(() => db.scanPartition(0, { limit: 0 }), RangeError);
  const dropped = await db.dropPartition(p7);
  t.equal(dropped, expected.length);
  t.same(db.scanPartition(p7).entries, []);
  const other = (p7 + 1) % 16;
  t.equal(db.scanPartition(other).entries.length, byPartition.get(other)!.length, 'other partitions untouched');
  await db.close();
});

t.test('bad input is refused whole with a clear error', async (t) => {
  const fs = new MemoryFileSystem();
  const db = small(fs);
  await t.rejects(db.put(new Uint8Array(limits.keyBytesMax + 1), v(1)), { code: ErrorCode.tooLarge });
  await t.rejects(db.put(k(1), new Uint8Array(limits.valueBytesMax + 1)), { code: ErrorCode.tooLarge });
  await t.rejects(
    db.write([
      { type: 'put', key: k('ok'), value: v(1) },
      { type: 'put', key: new Uint8Array(limits.keyBytesMax + 1), value: v(2) },
    ]),
    { code: ErrorCode.tooLarge },
  );
  t.equal(db.get(k('ok')), undefined, 'nothing of a refused batch is written');
  await t.rejects(db.put('x' as unknown as Uint8Array, v(1)), TypeError);
  await t.rejects(db.write([{ type: 'nope', key: k(1) } as never]), TypeError);
  await t.rejects(db.write(Array.from({ length: limits.batchOpsMax + 1 }, () => ({ type: 'delete' as const, key: k(1) }))), {
    code: ErrorCode.tooLarge,
  });
  t.throws(() => db.get('x' as unknown as Uint8Array), TypeError);
  t.throws(() => Engine.open({ fs, dir: '/other', memtableBytes: 1 }), RangeError);
  t.throws(() => Engine.open({ fs, dir: '/other', partitionBits: 40 }), RangeError);
  t.throws(() => Engine.open({ fs, dir: '/other', sync: 'sometimes' as never }), TypeError);
  await db.close();
  await t.rejects(db.put(k(1), v(1)), { code: ErrorCode.closed });
  t.throws(() => db.get(k(1)), { code: ErrorCode.closed });
});

t.test('the directory lock refuses a second engine and is released on close', async (t) => {
  const fs = new MemoryFileSystem();
  const db = small(fs);
  const locked = catchError(() => small(fs));
  t.ok(isRingkvError(locked, ErrorCode.locked) && locked.details.pid === process.pid, 'KV_LOCKED names the holder pid');
  await db.close();
  const again = small(fs);
  await again.close();
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-lock-'));
  try {
    const nodeFs = new NodeFileSystem();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'LOCK'), '1 0\n');
    t.throws(() => Engine.open({ fs: nodeFs, dir }), { code: ErrorCode.locked }, 'pid 1 is alive: locked');
    writeFileSync(join(dir, 'LOCK'), '999999999 0\n');
    const taken = Engine.open({ fs: nodeFs, dir });
    t.pass('a lock left by a dead process is replaced');
    await taken.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.test('reopening with another partition count is refused', async (t) => {
  const fs = new MemoryFileSystem();
  const db = small(fs, { partitionBits: 4 });
  await db.put(k(1), v(1));
  await db.close();
  t.throws(() => small(fs, { partitionBits: 5 }), { code: ErrorCode.incompatible });
});

t.test('an fsync failure fails the waiting writes as indeterminate and stops the engine; reopen recovers', async (t) => {
  const fs = new MemoryFileSystem();
  const db = small(fs);
  await db.put(k(1), v(1));
  fs.failNextSync('EIO');
  const failed = db.put(k(2), v(2));
  const failure = await failed.then(() => undefined, (e: unknown) => e);
  t.ok(isRingkvError(failure, ErrorCode.io) && failure.details.indeterminate === true, 'KV_IO marked indeterminate');
  await t.rejects(db.put(k(3), v(3)), { code: ErrorCode.io }, 'later writes fail: no retry after a failed fsync');
  t.equal(text(db.get(k(1))), 'value-1', 'reads keep working');
  t.match(db.stats().failed, /IO failure/);
  await db.close();
  const again = small(fs);
  t.equal(text(again.get(k(1))), 'value-1', 'acknowledged write survives');
  await again.put(k(4), v(4));
  t.equal(text(again.get(k(4))), 'value-4');
  await again.close();
});

t.test('a full disk fails writes with KV_DISK_FULL, reads keep working, writes resume when space returns', async (t) => {
  const fs = new MemoryFileSystem();
  const db = small(fs);
  await db.put(k(1), v(1));
  fs.setCapacityBytes(0);
  await t.rejects(db.put(k(2), v(2, 1000)), { code: ErrorCode.diskFull });
  t.equal(text(db.get(k(1))), 'value-1');
  t.equal(db.get(k(2)), undefined);
  fs.setCapacityBytes(Infinity);
  await db.put(k(3), v(3));
  t.equal(text(db.get(k(3))), 'value-3', 'writes resume without a restart');
  await db.close();
  fs.crash(new SeededRng(1));
  const again = small(fs);
  t.equal(text(again.get(k(3))), 'value-3');
  t.equal(again.get(k(2)), undefined);
  await again.close();
});

/** Runs `procedure` once to count its file-system steps, then crashes after each step in turn. */
async function crashAtEveryStep(
  t: Test,
  label: string,
  setup: (db: Engine) => Promise<Map<string, string | undefined>>,
  procedure: (db: Engine) => Promise<void>,
): Promise<void> {
  const seed = seedFromEnvironment();
  t.comment(`${label}: seed ${seed}`);
  const rng = new SeededRng(seed);
  const probe = new MemoryFileSystem();
  const probeDb = small(probe, { autoCompact: false });
  await setup(probeDb);
  const before = probe.operationCount;
  await procedure(probeDb);
  const steps = probe.operationCount - before;
  await probeDb.close();
  t.ok(steps > 3, `${label} takes ${steps} file-system steps`);
  for (let step = 1; step <= steps; step++) {
    const fs = new MemoryFileSystem();
    const db = small(fs, { autoCompact: false });
    const acked = await setup(db);
    fs.failAfter(step);
    await procedure(db).catch(() => undefined);
    fs.crash(rng);
    const again = small(fs, { autoCompact: false });
    let wrong = 0;
    for (const [key, want] of acked) if (text(again.get(enc.encode(key))) !== want) wrong++;
    t.equal(wrong, 0, `${label}: crash after step ${step}/${steps} keeps the acknowledged state`);
    await again.compact();
    for (const [key, want] of acked) if (text(again.get(enc.encode(key))) !== want) wrong++;
    t.equal(wrong, 0, `${label}: step ${step}: the recovered engine flushes and compacts cleanly`);
    await again.close();
  }
}

async function fill(db: Engine, from: number, to: number, acked: Map<string, string | undefined>): Promise<void> {
  await Promise.all(
    Array.from({ length: to - from }, (_, i) => {
      const key = `key-${(from + i) % 300}`;
      if ((from + i) % 7 === 0) {
        acked.set(key, undefined);
        return db.delete(enc.encode(key));
      }
      const value = `value-${from + i}`;
      acked.set(key, value);
      return db.put(enc.encode(key), enc.encode(value));
    }),
  );
}

t.test('a crash after any step of a flush recovers the acknowledged state', async (t) => {
  await crashAtEveryStep(
    t,
    'flush',
    async (db) => {
      const acked = new Map<string, string | undefined>();
      await fill(db, 0, 400, acked);
      return acked;
    },
    (db) => db.flush(),
  );
});

t.test('a crash after any step of a compaction recovers the acknowledged state', async (t) => {
  await crashAtEveryStep(
    t,
    'compaction',
    async (db) => {
      const acked = new Map<string, string | undefined>();
      for (let round = 0; round < 3; round++) {
        await fill(db, round * 250, round * 250 + 250, acked);
        await db.flush();
      }
      return acked;
    },
    (db) => db.compact(),
  );
});

t.test('a corrupted table block is reported as KV_CORRUPTION, never as data', async (t) => {
  const fs = new MemoryFileSystem();
  const db = small(fs, { compression: 'none' });
  for (let i = 0; i < 200; i++) await db.put(k(i), v(i, 50));
  await db.flush();
  await db.close();
  const table = fs.list('/db').find((n) => n.endsWith('.sst'))!;
  const bytes = fs.readFile(`/db/${table}`);
  bytes[100]! ^= 0x10;
  fs.remove(`/db/${table}`);
  const file = fs.createExclusive(`/db/${table}`);
  file.append(bytes);
  file.sync();
  file.close();
  fs.syncDir('/db');
  const again = small(fs, { compression: 'none' });
  let corrupt = 0;
  let wrong = 0;
  for (let i = 0; i < 200; i++) {
    try {
      if (text(again.get(k(i))) !== dec.decode(v(i, 50))) wrong++;
    } catch (e) {
      if (isRingkvError(e, ErrorCode.corruption)) corrupt++;
      else throw e;
    }
  }
  t.ok(corrupt > 0, `${corrupt} reads reported corruption`);
  t.equal(wrong, 0, 'no read returned wrong bytes');
  await again.close();
});

t.test('the piscina pool runs flushes and compactions on the real disk', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-pool-'));
  const pool = new CompactionPool({ threads: 1 });
  try {
    const db = Engine.open({ fs: new NodeFileSystem(), dir, runner: pool, memtableBytes: limits.memtableBytesMin, sync: 'none' });
    for (let i = 0; i < 5000; i++) await db.put(k(i), v(i, 100));
    await db.compact();
    t.ok(db.stats().flushes > 0);
    t.ok(db.stats().compactions > 0);
    for (let i = 0; i < 5000; i += 97) t.equal(text(db.get(k(i))), dec.decode(v(i, 100)));
    await db.close();
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
