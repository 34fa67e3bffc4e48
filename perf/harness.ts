/**
 * Shared pieces of the benchmarks (PERF.md "Method"): machine description, latency
 * percentiles, closed-loop drivers with a fixed number of requests in flight, alternating
 * rounds with medians, and the JSON line each run appends to perf/results/.
 */
import { appendFileSync, closeSync, fdatasyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '../../perf/results');

export function machine(): Record<string, unknown> {
  const cpu = cpus();
  return { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
}

export function printMachine(): void {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; node ${m.node}`);
}

export interface Measurement {
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  peakRssMiB: number;
}

/** Latencies recorded in microseconds, with percentiles. */
export class Latencies {
  #samples: Float64Array;
  #count = 0;
  constructor(capacity: number) {
    this.#samples = new Float64Array(capacity);
  }
  add(us: number): void {
    if (this.#count < this.#samples.length) this.#samples[this.#count++] = us;
  }
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const sorted = this.#samples.slice(0, this.#count).sort();
    return sorted[Math.min(this.#count - 1, Math.floor((p / 100) * this.#count))]!;
  }
}

let peakRss = 0;
const rssTimer = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
}, 100);
rssTimer.unref();

export function measurement(ops: number, startedNs: bigint, latencies: Latencies): Measurement {
  const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  return {
    ops,
    seconds,
    opsPerSec: ops / seconds,
    p50Us: latencies.percentile(50),
    p99Us: latencies.percentile(99),
    p999Us: latencies.percentile(99.9),
    peakRssMiB: Math.round(peakRss / 2 ** 20),
  };
}

/** Runs `op(i)` for i in [0, count) with `inFlight` outstanding at a time. */
export async function closedLoop(count: number, inFlight: number, op: (i: number) => Promise<unknown>): Promise<Measurement> {
  const latencies = new Latencies(Math.min(count, 2_000_000));
  const started = process.hrtime.bigint();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      await op(i);
      latencies.add(Number(process.hrtime.bigint() - t0) / 1000);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
  return measurement(count, started, latencies);
}

/** Runs a synchronous op `count` times, timing each. */
export function syncLoop(count: number, op: (i: number) => unknown): Measurement {
  const latencies = new Latencies(Math.min(count, 2_000_000));
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    op(i);
    latencies.add(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return measurement(count, started, latencies);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function formatRow(label: string, m: Measurement): string {
  const rate = m.opsPerSec >= 1e6 ? `${(m.opsPerSec / 1e6).toFixed(2)}M` : `${(m.opsPerSec / 1e3).toFixed(1)}k`;
  return `${label.padEnd(44)} ${rate.padStart(8)} ops/s  p50 ${m.p50Us.toFixed(1).padStart(8)} µs  p99 ${m.p99Us.toFixed(1).padStart(9)} µs  p999 ${m.p999Us.toFixed(0).padStart(7)} µs  rss ${m.peakRssMiB} MiB`;
}

export function recordResult(bench: string, result: Record<string, unknown>): void {
  mkdirSync(resultsDir, { recursive: true });
  appendFileSync(join(resultsDir, `${bench}.jsonl`), `${JSON.stringify({ bench, at: new Date().toISOString(), machine: machine(), ...result })}\n`);
}

/** Deterministic pseudo-random permutation-ish index stream (xorshift), no Math.random. */
export function randomIndices(count: number, bound: number, seed = 12345): Uint32Array {
  const out = new Uint32Array(count);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x % bound;
  }
  return out;
}

/** Incompressible bytes of the given size, different per index. */
export function valueBytes(size: number, i: number): Uint8Array {
  const v = new Uint8Array(size);
  let x = (i * 2654435761) >>> 0 || 1;
  for (let j = 0; j < size; j++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    v[j] = x & 0xff;
  }
  return v;
}

export function keyBytes(i: number): Uint8Array {
  return Buffer.from(`key${String(i).padStart(12, '0')}`);
}

/**
 * The disk's physical limit for a durable log at a given batch size, measured in the same run
 * as the stores it bounds: `totalBytes` appended in writes of `batchBytes`, one fdatasync after
 * each, into a fresh file in `dir`. `ops` counts records of `recordBytes` (a key and a value),
 * so the rate compares directly with a store's durable puts; latency is per batch.
 */
export function rawAppendSync(dir: string, totalBytes: number, batchBytes: number, recordBytes: number): Measurement & { mibPerSec: number } {
  const path = join(dir, `raw-append-${process.pid}.log`);
  const fd = openSync(path, 'w');
  const batch = valueBytes(batchBytes, 7);
  const latencies = new Latencies(Math.ceil(totalBytes / batchBytes) + 1);
  const started = process.hrtime.bigint();
  try {
    for (let written = 0; written < totalBytes; written += batchBytes) {
      const t0 = process.hrtime.bigint();
      for (let done = 0; done < batchBytes; ) done += writeSync(fd, batch, done, batchBytes - done);
      fdatasyncSync(fd);
      latencies.add(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  const m = measurement(Math.round(totalBytes / recordBytes), started, latencies);
  return { ...m, mibPerSec: totalBytes / 2 ** 20 / m.seconds };
}
