/**
 * The embedded Store end to end (frames, mailboxes, shard workers, DVV objects, group commit):
 * fillrandom, overwrite and readrandom with `inFlight` requests outstanding, for S=1 and S=2
 * shards, against LevelDB (classic-level, no sync) in the same run, alternating, in rounds.
 * Each Store read is an async mailbox round trip; LevelDB's `get` is async too, so the
 * comparison is like for like. Appends one JSON line to perf/results/store.jsonl.
 */
import { ClassicLevel } from 'classic-level';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../lib/index.js';
import { closedLoop, formatRow, keyBytes, type Measurement, median, printMachine, randomIndices, recordResult, valueBytes } from './harness.js';

export interface StoreBenchOptions {
  keys: number;
  valueBytes: number;
  inFlight: number;
  reads: number;
  rounds: number;
  sync: 'fsync' | 'none';
}

export const storeBenchDefaults: StoreBenchOptions = { keys: 100_000, valueBytes: 100, inFlight: 1000, reads: 100_000, rounds: 3, sync: 'fsync' };

type Subject = 'store S=1' | 'store S=2' | 'leveldb';
interface Db {
  put(i: number, v: Uint8Array): Promise<unknown>;
  get(i: number): Promise<unknown>;
  close(): Promise<void>;
}

async function openSubject(subject: Subject, dir: string, o: StoreBenchOptions): Promise<Db> {
  if (subject !== 'leveldb') {
    const store = await openStore({ dir, shards: subject === 'store S=1' ? 1 : 2, sync: o.sync });
    return { put: (i, v) => store.put(keyBytes(i), v), get: (i) => store.get(keyBytes(i)), close: () => store.close() };
  }
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  return { put: (i, v) => db.put(keyBytes(i), v), get: (i) => db.get(keyBytes(i)), close: () => db.close() };
}

async function runSubject(subject: Subject, o: StoreBenchOptions, results: Map<string, Measurement[]>): Promise<void> {
  const values = Array.from({ length: 64 }, (_, i) => valueBytes(o.valueBytes, i));
  const record = (w: string, m: Measurement): void => {
    const key = `${w} ${subject}`;
    results.set(key, [...(results.get(key) ?? []), m]);
    console.log(formatRow(key, m));
  };
  const dir = mkdtempSync(join(tmpdir(), 'bench-store-'));
  const db = await openSubject(subject, dir, o);
  try {
    const order = randomIndices(o.keys, o.keys, 777);
    record('fillrandom', await closedLoop(o.keys, o.inFlight, (i) => db.put(order[i]!, values[i % 64]!)));
    const probes = randomIndices(o.reads, o.keys, 4242);
    record('overwrite', await closedLoop(o.reads, o.inFlight, (i) => db.put(probes[i]!, values[(i + 7) % 64]!)));
    record('readrandom', await closedLoop(o.reads, o.inFlight, (i) => db.get(probes[i]!)));
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runStoreBench(options: Partial<StoreBenchOptions> = {}): Promise<void> {
  const o = { ...storeBenchDefaults, ...options };
  printMachine();
  console.log(`store: ${o.keys} keys, ${o.valueBytes} B values, ${o.inFlight} in flight, sync=${o.sync}; leveldb no sync; ${o.rounds} rounds`);
  const subjects: Subject[] = ['store S=1', 'store S=2', 'leveldb'];
  const results = new Map<string, Measurement[]>();
  for (let round = 0; round < o.rounds; round++) {
    console.log(`-- round ${round + 1}`);
    const ordered = round % 2 === 0 ? subjects : [...subjects].reverse();
    for (const subject of ordered) await runSubject(subject, o, results);
  }
  const summary: Record<string, unknown> = {};
  console.log('-- medians');
  for (const w of ['fillrandom', 'overwrite', 'readrandom']) {
    const peer = median((results.get(`${w} leveldb`) ?? []).map((m) => m.opsPerSec));
    for (const s of ['store S=1', 'store S=2']) {
      const ours = results.get(`${w} ${s}`) ?? [];
      const row = { opsPerSec: median(ours.map((m) => m.opsPerSec)), p99Us: median(ours.map((m) => m.p99Us)), leveldbOpsPerSec: peer };
      summary[`${w} ${s}`] = { ...row, ratio: row.opsPerSec / peer };
      console.log(`${`${w} ${s}`.padEnd(22)} ${(row.opsPerSec / 1e3).toFixed(1)}k/s  leveldb ${(peer / 1e3).toFixed(1)}k/s  ratio ${(row.opsPerSec / peer).toFixed(2)}x  p99 ${row.p99Us.toFixed(0)} µs`);
    }
  }
  recordResult('store', { options: o, summary });
}
