/**
 * Storage engine benchmarks, db_bench style: fillseq, fillrandom, overwrite, readrandom,
 * readmissing, against LevelDB (classic-level) in the same run, alternating, >= 3 rounds,
 * medians and median ratios (PERF.md). Engine alone: one thread, no mailbox.
 *
 *   npm run bench -- storage [--keys 1000000] [--value 100] [--rounds 3] [--inflight 1000]
 *
 * Ours is durable (group commit, one fdatasync per batch) unless --sync none; LevelDB runs
 * without sync (its default), so the headline ratio is ours-durable vs peer-not-durable.
 * Each round also measures the disk's raw append + fdatasync rate at the group-commit batch
 * size (`inFlight` records per sync), the physical limit our durable writes are judged against.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { Engine, type SyncMode } from '../lib/storage/engine.js';
import { CompactionPool } from '../lib/storage/compaction-pool.js';
import { NodeFileSystem } from '../lib/storage/node-file-system.js';
import {
  closedLoop,
  formatRow,
  keyBytes,
  type Measurement,
  median,
  printMachine,
  randomIndices,
  rawAppendSync,
  recordResult,
  syncLoop,
  valueBytes,
} from './harness.js';

export interface StorageBenchOptions {
  keys: number;
  valueBytes: number;
  rounds: number;
  inFlight: number;
  reads: number;
  sync: SyncMode;
  workloads: string[];
}

type Subject = 'ringkv' | 'leveldb' | 'raw';
/** A measurement plus the process's CPU time (all threads) per operation. */
interface CpuMeasurement extends Measurement {
  cpuUsPerOp: number;
}
type Results = Map<string, CpuMeasurement[]>;

/**
 * CPU per operation is the figure to trust on a shared machine: throughput falls when other
 * processes take the cores, CPU time per operation much less. It counts every thread of the
 * process (compactions on the pool included; LevelDB's background thread likewise).
 */
async function withCpu(run: () => Measurement | Promise<Measurement>): Promise<CpuMeasurement> {
  const before = process.cpuUsage();
  const m = await run();
  const used = process.cpuUsage(before);
  return { ...m, cpuUsPerOp: (used.user + used.system) / m.ops };
}

interface Store {
  put(i: number, value: Uint8Array): Promise<unknown>;
  get(i: number): unknown;
  close(): Promise<void>;
  /** Amplification figures (ours only): they are how the leveled-compaction choice is judged. */
  shape?(): string;
}

const VALUE_POOL = 1024;

async function openSubject(subject: Subject, dir: string, o: StorageBenchOptions, pool: CompactionPool): Promise<Store> {
  if (subject === 'ringkv') {
    const db = Engine.open({
      fs: new NodeFileSystem(),
      dir,
      sync: o.sync,
      runner: pool,
      memtableBytes: o.valueBytes > 1024 ? 64 * 2 ** 20 : 16 * 2 ** 20,
      blockCacheBytes: 64 * 2 ** 20,
    });
    return {
      put: (i, v) => db.put(keyBytes(i), v),
      get: (i) => db.get(keyBytes(i)),
      close: () => db.close(),
      shape: () => {
        const s = db.stats();
        const logical = o.keys * (o.valueBytes + 15);
        const levels = s.levels.map((l) => l.tables).join('/');
        return (
          `write amplification ${s.writeAmplification.toFixed(2)}x, space amplification ` +
          `${((s.liveTableBytes + s.valueLog.bytes) / logical).toFixed(2)}x of ${(logical / 2 ** 20).toFixed(0)} MiB (tables and value log), tables per level ${levels}, ` +
          `stalls ${s.writeStalls.slowdowns} slowdowns / ${s.writeStalls.stops} stops (${s.writeStalls.stallMs.toFixed(0)} ms), ` +
          `bloom negatives ${s.bloom.negatives}/${s.bloom.checks}, cache hit rate ${(s.cache.hitRate * 100).toFixed(0)}%, ` +
          `value log ${s.valueLog.files} files ${(s.valueLog.bytes / 2 ** 20).toFixed(0)} MiB, GC ${s.valueLog.gcCollections} files / ` +
          `${(s.valueLog.gcBytesRewritten / 2 ** 20).toFixed(0)} MiB rewritten`
        );
      },
    };
  }
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    writeBufferSize: o.valueBytes > 1024 ? 64 * 2 ** 20 : 4 * 2 ** 20,
    cacheSize: 64 * 2 ** 20,
  });
  await db.open();
  return { put: (i, v) => db.put(keyBytes(i), v), get: (i) => db.getSync(keyBytes(i)), close: () => db.close() };
}

async function runSubject(subject: Subject, o: StorageBenchOptions, pool: CompactionPool, results: Results): Promise<void> {
  if (subject === 'raw') {
    // The physical limit: append + fdatasync of what one group commit of `inFlight` puts holds.
    const dir = mkdtempSync(join(tmpdir(), 'bench-raw-'));
    const recordBytes = o.valueBytes + 16;
    const m = await withCpu(() => rawAppendSync(dir, o.keys * recordBytes, o.inFlight * recordBytes, recordBytes));
    rmSync(dir, { recursive: true, force: true });
    const key = 'fillrandom raw';
    results.set(key, [...(results.get(key) ?? []), m]);
    console.log(`${formatRow('raw append+fdatasync (same batch)', m)}  ${((m.ops * recordBytes) / 2 ** 20 / m.seconds).toFixed(0)} MiB/s`);
    return;
  }
  const values = Array.from({ length: VALUE_POOL }, (_, i) => valueBytes(o.valueBytes, i));
  const want = (w: string): boolean => o.workloads.includes(w);
  const record = (w: string, m: CpuMeasurement): void => {
    const key = `${w} ${subject}`;
    results.set(key, [...(results.get(key) ?? []), m]);
    console.log(`${formatRow(key, m)}  cpu ${m.cpuUsPerOp.toFixed(1)} µs/op`);
  };
  const order = randomIndices(o.keys, o.keys, 777);
  if (want('fillseq')) {
    const dir = mkdtempSync(join(tmpdir(), `bench-${subject}-`));
    const db = await openSubject(subject, dir, o, pool);
    record('fillseq', await withCpu(() => closedLoop(o.keys, o.inFlight, (i) => db.put(i, values[i % VALUE_POOL]!))));
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const dir = mkdtempSync(join(tmpdir(), `bench-${subject}-`));
  const db = await openSubject(subject, dir, o, pool);
  // fillrandom loads the data set the later workloads use (every key, in random order).
  const fill = await withCpu(() => closedLoop(o.keys, o.inFlight, (i) => db.put(order[i]!, values[i % VALUE_POOL]!)));
  if (want('fillrandom')) record('fillrandom', fill);
  const probes = randomIndices(o.reads, o.keys, 4242);
  if (want('overwrite')) {
    record('overwrite', await withCpu(() => closedLoop(o.reads, o.inFlight, (i) => db.put(probes[i]!, values[(i + 7) % VALUE_POOL]!))));
  }
  if (want('readrandom')) record('readrandom', await withCpu(() => syncLoop(o.reads, (i) => db.get(probes[i]!))));
  if (want('readmissing')) record('readmissing', await withCpu(() => syncLoop(o.reads, (i) => db.get(o.keys + probes[i]!))));
  if (db.shape) console.log(`  ${subject} after the run: ${db.shape()}`);
  await db.close();
  rmSync(dir, { recursive: true, force: true });
}

export async function runStorageBench(o: StorageBenchOptions): Promise<void> {
  printMachine();
  console.log(
    `storage: ${o.keys} keys, ${o.valueBytes} B values, ${o.inFlight} writes in flight, ${o.reads} reads/overwrites, ` +
      `ringkv sync=${o.sync === 'fsync' ? 'fsync per group commit' : 'none'}, leveldb no sync; ${o.rounds} rounds`,
  );
  const pool = new CompactionPool({ threads: 1 });
  const results: Results = new Map();
  try {
    for (let round = 0; round < o.rounds; round++) {
      console.log(`-- round ${round + 1}`);
      const order: Subject[] = round % 2 === 0 ? ['ringkv', 'leveldb', 'raw'] : ['raw', 'leveldb', 'ringkv'];
      for (const subject of order) await runSubject(subject, o, pool, results);
    }
  } finally {
    await pool.close();
  }
  summarize(o, results);
}

function summarize(o: StorageBenchOptions, results: Results): void {
  console.log('-- medians');
  const summary: Record<string, unknown> = {};
  for (const w of o.workloads) {
    const ours = results.get(`${w} ringkv`);
    const peer = results.get(`${w} leveldb`);
    if (!ours || !peer) continue;
    const ratios = ours.map((m, i) => m.opsPerSec / peer[i]!.opsPerSec);
    const raw = results.get('fillrandom raw');
    const isWrite = w === 'fillrandom' || w === 'overwrite' || w === 'fillseq';
    const row = {
      vsRawAppendSync: isWrite && raw ? median(ours.map((m, i) => m.opsPerSec / raw[i]!.opsPerSec)) : undefined,
      rawOpsPerSec: isWrite && raw ? median(raw.map((m) => m.opsPerSec)) : undefined,
      ringkvP50Us: median(ours.map((m) => m.p50Us)),
      ringkvOpsPerSec: median(ours.map((m) => m.opsPerSec)),
      leveldbOpsPerSec: median(peer.map((m) => m.opsPerSec)),
      ratio: median(ratios),
      ringkvP99Us: median(ours.map((m) => m.p99Us)),
      leveldbP99Us: median(peer.map((m) => m.p99Us)),
      ringkvCpuUsPerOp: median(ours.map((m) => m.cpuUsPerOp)),
      leveldbCpuUsPerOp: median(peer.map((m) => m.cpuUsPerOp)),
    };
    summary[w] = row;
    console.log(
      `${w.padEnd(12)} ringkv ${(row.ringkvOpsPerSec / 1e3).toFixed(1)}k/s  leveldb ${(row.leveldbOpsPerSec / 1e3).toFixed(1)}k/s  ` +
        `ratio ${row.ratio.toFixed(2)}x (rounds ${ratios.map((r) => r.toFixed(2)).join(' ')})  ` +
        `p50 ${row.ringkvP50Us.toFixed(0)} µs  p99 ${row.ringkvP99Us.toFixed(0)} vs ${row.leveldbP99Us.toFixed(0)} µs  ` +
        `cpu ${row.ringkvCpuUsPerOp.toFixed(1)} vs ${row.leveldbCpuUsPerOp.toFixed(1)} µs/op` +
        (row.vsRawAppendSync === undefined ? '' : `  vs raw append+fdatasync ${(row.vsRawAppendSync * 100).toFixed(0)}% of ${(row.rawOpsPerSec! / 1e3).toFixed(1)}k/s`),
    );
  }
  recordResult('storage', { options: o, summary });
}
