/**
 * Data larger than memory budgets: random reads at 1M keys against 10M keys (100 B values),
 * engine alone, in the same run (PERF.md: loss at most 30%), with memory against the
 * configured budgets from `stats().memory` and the process's RSS.
 *
 *   npm run bench -- scale [--keys 1000000,10000000] [--reads 200000] [--rounds 1] [--store]
 *
 * `--store`: the same through the embedded Store (`openStore`, one shard, DVV objects, the
 * mailbox round trip), loaded and read with 1000 requests in flight; memory is the shard's
 * `stats().shards[0].memory` and the process's RSS (main thread plus the shard worker).
 *
 * Loading is durable (fsync per group commit, 1000 in flight) and followed by a full
 * compaction, so each data set is read in its settled shape (one sorted run).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactionPool } from '../lib/storage/compaction-pool.js';
import { Engine, type EngineStats } from '../lib/storage/engine.js';
import { openStore } from '../lib/index.js';
import { NodeFileSystem } from '../lib/storage/node-file-system.js';
import { closedLoop, formatRow, keyBytes, type Measurement, median, printMachine, randomIndices, recordResult, syncLoop, valueBytes } from './harness.js';

export interface ScaleBenchOptions {
  keys: number[];
  reads: number;
  rounds: number;
  valueBytes: number;
  /** Through the embedded Store instead of the engine alone. */
  store: boolean;
}

/** What the bench needs of either subject. */
interface Subject {
  put(i: number, value: Uint8Array): Promise<unknown>;
  /** Random reads of `probes`, timed. */
  readAll(probes: Uint32Array): Promise<Measurement>;
  compact(): Promise<void>;
  stats(): Promise<EngineStats>;
  close(): Promise<void>;
}

async function openSubject(dir: string, o: ScaleBenchOptions, pool: CompactionPool): Promise<Subject> {
  if (o.store) {
    const store = await openStore({ dir, shards: 1, memtableBytes: 16 * MiB });
    return {
      put: (i, value) => store.put(keyBytes(i), value),
      readAll: (probes) => closedLoop(probes.length, 1000, (i) => store.get(keyBytes(probes[i]!))),
      compact: () => store.compact(),
      stats: async () => (await store.stats()).shards[0]!,
      close: () => store.close(),
    };
  }
  const db = Engine.open({ fs: new NodeFileSystem(), dir, runner: pool, memtableBytes: 16 * MiB, blockCacheBytes: 64 * MiB });
  return {
    put: (i, value) => db.put(keyBytes(i), value),
    readAll: async (probes) => syncLoop(probes.length, (i) => db.get(keyBytes(probes[i]!))),
    compact: () => db.compact(),
    stats: async () => db.stats(),
    close: () => db.close(),
  };
}

const MiB = 2 ** 20;

async function runOne(keys: number, o: ScaleBenchOptions, pool: CompactionPool): Promise<{ opsPerSec: number; row: Record<string, unknown> }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-scale-'));
  const db = await openSubject(dir, o, pool);
  try {
    const values = Array.from({ length: 1024 }, (_, i) => valueBytes(o.valueBytes, i));
    // A stall past writeStallTimeoutMs (compaction behind on a loaded machine) is retried:
    // loading is not what this bench measures.
    const put = async (i: number): Promise<void> => {
      for (;;) {
        try {
          return void (await db.put(i, values[i % 1024]!));
        } catch (error) {
          if ((error as { code?: string }).code !== 'KV_OVERLOADED') throw error;
        }
      }
    };
    const load = await closedLoop(keys, 1000, put);
    console.log(formatRow(`load ${keys} keys`, load));
    await db.compact();
    const probes = randomIndices(o.reads, keys, 4242);
    const read = await db.readAll(probes);
    console.log(formatRow(`readrandom ${keys} keys`, read));
    const stats = await db.stats();
    const m = stats.memory;
    const row = {
      keys,
      readOpsPerSec: read.opsPerSec,
      readP99Us: read.p99Us,
      memtableMiB: m.memtableBytes / MiB,
      memtableBudgetMiB: m.memtableBudgetBytes / MiB,
      blockCacheMiB: m.blockCacheBytes / MiB,
      blockCacheBudgetMiB: m.blockCacheBudgetBytes / MiB,
      filterMiB: m.filterBytes / MiB,
      indexMiB: m.indexBytes / MiB,
      rssMiB: process.memoryUsage.rss() / MiB,
      tableMiB: stats.liveTableBytes / MiB,
    };
    console.log(
      `  memory: memtables ${row.memtableMiB.toFixed(1)}/${row.memtableBudgetMiB} MiB, block cache ${row.blockCacheMiB.toFixed(1)}/${row.blockCacheBudgetMiB} MiB, ` +
        `filters ${row.filterMiB.toFixed(1)} MiB, indexes ${row.indexMiB.toFixed(1)} MiB, tables ${row.tableMiB.toFixed(0)} MiB on disk, rss ${row.rssMiB.toFixed(0)} MiB`,
    );
    return { opsPerSec: read.opsPerSec, row };
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runScaleBench(o: ScaleBenchOptions): Promise<void> {
  printMachine();
  console.log(`scale${o.store ? ' (embedded Store, 1 shard)' : ' (engine alone)'}: ${o.keys.join(' vs ')} keys, ${o.valueBytes} B values, ${o.reads} random reads each, ${o.rounds} round(s)`);
  const pool = new CompactionPool({ threads: 1 });
  const results = new Map<number, number[]>();
  const rows: Record<string, unknown>[] = [];
  try {
    for (let round = 0; round < o.rounds; round++) {
      const order = round % 2 === 0 ? o.keys : [...o.keys].reverse();
      for (const keys of order) {
        const { opsPerSec, row } = await runOne(keys, o, pool);
        results.set(keys, [...(results.get(keys) ?? []), opsPerSec]);
        rows.push(row);
      }
    }
  } finally {
    await pool.close();
  }
  const base = median(results.get(o.keys[0]!)!);
  for (const keys of o.keys) {
    const rate = median(results.get(keys)!);
    console.log(`readrandom ${String(keys).padStart(9)} keys ${(rate / 1e3).toFixed(1)}k/s  vs ${o.keys[0]} keys ${((rate / base) * 100).toFixed(0)}%`);
  }
  recordResult('scale', { options: o, rows });
}
