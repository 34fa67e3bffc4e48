/**
 * The embedded Store end to end (frames, mailboxes, shard workers, DVV objects, group commit):
 * fillrandom, overwrite and readrandom with `inFlight` requests outstanding, for S=1 and S=2
 * shards, against LevelDB (classic-level) and LMDB (lmdb) in the same run, alternating, in
 * rounds. Durability: the Store as configured (`--sync fsync` by default: one fdatasync per
 * group commit); LevelDB and LMDB never sync (their fastest, non-durable setting — the bar
 * users compare against). LevelDB gets a 64 MiB write buffer for values over 1 KiB (PERF.md).
 * Each Store call is an async mailbox round trip; LevelDB's get and put are async too; LMDB's
 * put is async (batched transactions) and its get synchronous, as their users call them.
 *
 * Conflict policies: `store S=n` is the default (`conflicts: 'siblings'`, DVV): a blind
 * overwrite keeps the earlier value as a concurrent sibling, so after the overwrite phase a
 * key holds 2-3 values and a read returns them all. `store S=n lww` is `conflicts: 'lww'`: an
 * overwrite supersedes, a read returns one value, as LevelDB's and LMDB's do. Compare reads
 * one value with one value on the lww rows.
 *
 * `raw` (in the default subjects) measures the disk's append + fdatasync rate with `inFlight`
 * records per sync in the same round: the physical limit for durable writes.
 *
 * Prints per-round rows, then per workload and Store subject the median ops/s, median p99 and
 * the median of the per-round ratios against each peer. Appends one JSON line to
 * perf/results/store.jsonl.
 */
import { ClassicLevel } from 'classic-level';
import { open as openLmdb } from 'lmdb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../lib/index.js';
import { closedLoop, formatRow, keyBytes, type Measurement, median, printMachine, randomIndices, rawAppendSync, recordResult, valueBytes } from './harness.js';

export const storeSubjects = ['store S=1', 'store S=1 lww', 'store S=2', 'store S=2 lww', 'leveldb', 'lmdb', 'raw'] as const;
/** The default run: the Store with both conflict policies at S=1, the default policy at S=2, and the peers. */
export const storeSubjectsDefault: readonly Subject[] = ['store S=1', 'store S=1 lww', 'store S=2', 'leveldb', 'lmdb', 'raw'];
export type Subject = (typeof storeSubjects)[number];
export const storeWorkloads = ['fillrandom', 'overwrite', 'readrandom'] as const;

export interface StoreBenchOptions {
  keys: number;
  valueBytes: number;
  inFlight: number;
  reads: number;
  rounds: number;
  sync: 'fsync' | 'none';
  subjects: readonly Subject[];
}

export const storeBenchDefaults: StoreBenchOptions = {
  keys: 100_000,
  valueBytes: 100,
  inFlight: 1000,
  reads: 100_000,
  rounds: 3,
  sync: 'fsync',
  subjects: storeSubjectsDefault,
};

/** A measurement plus the CPU time of the whole process (all its threads) per operation. */
interface CpuMeasurement extends Measurement {
  cpuUsPerOp: number;
}

/**
 * CPU per operation is the figure to trust on a shared machine: throughput falls when other
 * processes take the cores, CPU time per operation much less.
 */
async function withCpu(run: () => Promise<Measurement>): Promise<CpuMeasurement> {
  const before = process.cpuUsage();
  const m = await run();
  const used = process.cpuUsage(before);
  return { ...m, cpuUsPerOp: (used.user + used.system) / m.ops };
}

interface Db {
  put(i: number, v: Uint8Array): Promise<unknown>;
  get(i: number): Promise<unknown>;
  close(): Promise<void>;
}

async function openSubject(subject: Subject, dir: string, o: StoreBenchOptions): Promise<Db> {
  if (subject.startsWith('store')) {
    const shards = subject.startsWith('store S=1') ? 1 : 2;
    const store = await openStore({ dir, shards, sync: o.sync, conflicts: subject.endsWith('lww') ? 'lww' : 'siblings' });
    return { put: (i, v) => store.put(keyBytes(i), v), get: (i) => store.get(keyBytes(i)), close: () => store.close() };
  }
  if (subject === 'lmdb') {
    const db = openLmdb<Uint8Array, Uint8Array>({ path: dir, encoding: 'binary', keyEncoding: 'binary', noSync: true });
    return { put: (i, v) => db.put(keyBytes(i), v), get: (i) => Promise.resolve(db.get(keyBytes(i))), close: () => db.close() };
  }
  const writeBufferSize = o.valueBytes > 1024 ? 64 * 2 ** 20 : undefined;
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view', ...(writeBufferSize ? { writeBufferSize } : {}) });
  await db.open();
  return { put: (i, v) => db.put(keyBytes(i), v), get: (i) => db.get(keyBytes(i)), close: () => db.close() };
}

async function runSubject(subject: Subject, o: StoreBenchOptions, results: Map<string, CpuMeasurement[]>): Promise<void> {
  if (subject === 'raw') {
    // The physical limit for durable writes: append + fdatasync of `inFlight` records per sync.
    const dir = mkdtempSync(join(tmpdir(), 'bench-raw-'));
    const recordBytes = o.valueBytes + 16;
    const m = await withCpu(async () => rawAppendSync(dir, o.keys * recordBytes, o.inFlight * recordBytes, recordBytes));
    rmSync(dir, { recursive: true, force: true });
    for (const w of ['fillrandom', 'overwrite']) results.set(`${w} raw`, [...(results.get(`${w} raw`) ?? []), m]);
    console.log(`${formatRow('raw append+fdatasync (same batch)', m)}  ${((m.ops * recordBytes) / 2 ** 20 / m.seconds).toFixed(0)} MiB/s`);
    return;
  }
  const values = Array.from({ length: 64 }, (_, i) => valueBytes(o.valueBytes, i));
  const record = (w: string, m: CpuMeasurement): void => {
    const key = `${w} ${subject}`;
    results.set(key, [...(results.get(key) ?? []), m]);
    console.log(`${formatRow(key, m)}  cpu ${m.cpuUsPerOp.toFixed(1)} µs/op`);
  };
  const dir = mkdtempSync(join(tmpdir(), 'bench-store-'));
  const db = await openSubject(subject, dir, o);
  try {
    const order = randomIndices(o.keys, o.keys, 777);
    record('fillrandom', await withCpu(() => closedLoop(o.keys, o.inFlight, (i) => db.put(order[i]!, values[i % 64]!))));
    const probes = randomIndices(o.reads, o.keys, 4242);
    record('overwrite', await withCpu(() => closedLoop(o.reads, o.inFlight, (i) => db.put(probes[i]!, values[(i + 7) % 64]!))));
    record('readrandom', await withCpu(() => closedLoop(o.reads, o.inFlight, (i) => db.get(probes[i]!))));
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Median of the per-round ratios ours/peer (rounds where both ran). */
function ratio(ours: Measurement[] | undefined, peer: Measurement[] | undefined): number {
  if (!ours || !peer) return Number.NaN;
  const n = Math.min(ours.length, peer.length);
  return median(Array.from({ length: n }, (_, i) => ours[i]!.opsPerSec / peer[i]!.opsPerSec));
}

function summarize(o: StoreBenchOptions, results: Map<string, CpuMeasurement[]>): Record<string, unknown> {
  const summary: Record<string, unknown> = {};
  console.log('-- medians (ratio = median of per-round ratios)');
  for (const w of storeWorkloads) {
    for (const s of o.subjects) {
      const ours = results.get(`${w} ${s}`) ?? [];
      const row = {
        opsPerSec: median(ours.map((m) => m.opsPerSec)),
        p99Us: median(ours.map((m) => m.p99Us)),
        cpuUsPerOp: median(ours.map((m) => m.cpuUsPerOp)),
        vsLeveldb: ratio(ours, results.get(`${w} leveldb`)),
        vsLmdb: ratio(ours, results.get(`${w} lmdb`)),
        vsRaw: ratio(ours, results.get(`${w} raw`)),
        p50Us: median(ours.map((m) => m.p50Us)),
        roundsOpsPerSec: ours.map((m) => Math.round(m.opsPerSec)),
      };
      summary[`${w} ${s}`] = row;
      if (ours.length === 0) continue;
      const vsRaw = Number.isNaN(row.vsRaw) ? '' : `  vs raw append+fdatasync ${(row.vsRaw * 100).toFixed(0)}%`;
      const rounds = `  rounds ${row.roundsOpsPerSec.map((r) => `${(r / 1e3).toFixed(1)}k`).join(' ')}`;
      const ratios = s.startsWith('store') ? `  vs leveldb ${row.vsLeveldb.toFixed(2)}x  vs lmdb ${row.vsLmdb.toFixed(2)}x${vsRaw}${rounds}` : rounds;
      const cpu = `cpu ${row.cpuUsPerOp.toFixed(1).padStart(5)} µs/op`;
      console.log(`${`${w} ${s}`.padEnd(26)} ${(row.opsPerSec / 1e3).toFixed(1).padStart(7)}k/s  p50 ${row.p50Us.toFixed(0).padStart(7)} µs  p99 ${row.p99Us.toFixed(0).padStart(7)} µs  ${cpu}${ratios}`);
    }
  }
  return summary;
}

export async function runStoreBench(options: Partial<StoreBenchOptions> = {}): Promise<void> {
  const o = { ...storeBenchDefaults, ...options };
  printMachine();
  console.log(
    `store: ${o.keys} keys, ${o.valueBytes} B values, ${o.inFlight} in flight, store sync=${o.sync}; leveldb and lmdb no sync; ` +
      `${o.rounds} rounds; subjects ${o.subjects.join(', ')}`,
  );
  const results = new Map<string, CpuMeasurement[]>();
  for (let round = 0; round < o.rounds; round++) {
    console.log(`-- round ${round + 1}`);
    const ordered = round % 2 === 0 ? o.subjects : [...o.subjects].reverse();
    for (const subject of ordered) await runSubject(subject, o, results);
  }
  recordResult('store', { options: o, summary: summarize(o, results) });
}
