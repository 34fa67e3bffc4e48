/**
 * Failover latency (issue 10 "fast failover"; PERF.md "any one node paused or killed";
 * RELIABILITY.md A12): three real nodes (N=3, W=2, R=2, the defaults) on loopback, loaded by
 * `--loops` closed loops in this process, each doing one get at R=2 and one put at W=2 (with
 * the key's last context) at a time over `--keys` keys. Each round runs three phases on a
 * fresh cluster: idle (no fault), paused (one node SIGSTOPped for the whole phase, its
 * connections open), killed (one node SIGKILLed for the whole phase); the faulty node moves
 * round to round. Each phase prints read and write p50/p99/max (hdr-histogram-js), the count
 * over 2 s and the errors. The goal: every operation ≤ 2 s, p99 ≤ hedge delay + 100 ms.
 *
 *   npm run bench -- failover [--rounds 3] [--seconds 10] [--loops 4] [--keys 1000]
 *                             [--record yes|no]   (no: do not append to perf/results/failover.jsonl)
 *
 * The nodes and the load generator share the machine; on 2 cores the generator's own event
 * loop is part of every figure.
 */

import * as hdr from 'hdr-histogram-js';
import { limits } from '../lib/base/limits.js';
import { connect, type Client } from '../lib/client/index.js';
import { Cluster } from '../test/fixtures/cluster.js';
import { printMachine, recordResult } from './harness.js';

interface PhaseFigures {
  phase: string;
  round: number;
  faulty: number | undefined;
  reads: Figures;
  writes: Figures;
  errors: Record<string, number>;
  /** The client's largest read and write hedge delays over the nodes it trusts, at the phase's end. */
  hedgeMs: { read: number; write: number };
}

interface Figures {
  ops: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  over2s: number;
}

function flag(argv: readonly string[], name: string): string | undefined {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? argv[at + 1] : undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

class Recorder {
  readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  over2s = 0;

  record(latencyMs: number): void {
    this.histogram.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
    if (latencyMs > 2_000) this.over2s++;
  }

  figures(): Figures {
    const h = this.histogram;
    const ms = (us: number): number => Math.round(us / 10) / 100;
    return { ops: h.totalCount, p50Ms: ms(h.getValueAtPercentile(50)), p99Ms: ms(h.getValueAtPercentile(99)), maxMs: ms(h.maxValue), over2s: this.over2s };
  }
}

/** Runs the closed loops for `seconds` and returns their figures. */
async function phase(client: Client, keys: number, loops: number, seconds: number): Promise<Omit<PhaseFigures, 'phase' | 'round' | 'faulty'>> {
  const reads = new Recorder();
  const writes = new Recorder();
  const errors: Record<string, number> = {};
  const contexts = new Map<number, Uint8Array>();
  const endMs = performance.now() + seconds * 1000;
  const timed = async (recorder: Recorder, op: () => Promise<void>): Promise<void> => {
    const startMs = performance.now();
    try {
      await op();
      recorder.record(performance.now() - startMs);
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'other';
      errors[code] = (errors[code] ?? 0) + 1;
      recorder.record(performance.now() - startMs);
    }
  };
  const loop = async (seed: number): Promise<void> => {
    let n = seed;
    while (performance.now() < endMs) {
      n = (n * 1103515245 + 12345) % 2 ** 31;
      const key = n % keys;
      await timed(reads, async () => void contexts.set(key, (await client.get(`f-${key}`, { r: 2 })).context));
      const context = contexts.get(key);
      await timed(writes, async () => void contexts.set(key, (await client.put(`f-${key}`, `v-${n}`, { w: 2, ...(context ? { context } : {}) })).context));
    }
  };
  await Promise.all(Array.from({ length: loops }, (_, i) => loop(i + 1)));
  const trusted = client.nodeHealth().filter((h) => h.state === 'open' && !h.suspect);
  const hedgeMs = { read: Math.max(0, ...trusted.map((h) => h.readHedgeDelayMs)), write: Math.max(0, ...trusted.map((h) => h.writeHedgeDelayMs)) };
  return { reads: reads.figures(), writes: writes.figures(), errors, hedgeMs };
}

function format(f: PhaseFigures): string {
  const side = (name: string, x: Figures): string => `${name} ${x.ops} ops p50 ${x.p50Ms} ms p99 ${x.p99Ms} ms max ${x.maxMs} ms (>2 s: ${x.over2s})`;
  const errors = Object.entries(f.errors).map(([code, n]) => `${code} ${n}`).join(', ') || 'none';
  const what = f.faulty === undefined ? f.phase : `${f.phase} (node ${f.faulty})`;
  return `  round ${f.round} ${what.padEnd(18)} ${side('reads', f.reads)} | ${side('writes', f.writes)} | hedge r/w ${f.hedgeMs.read}/${f.hedgeMs.write} ms | errors: ${errors}`;
}

async function round(index: number, o: { seconds: number; loops: number; keys: number }): Promise<PhaseFigures[]> {
  const cluster = new Cluster({ nodes: 3, secret: 'failover-bench' });
  const out: PhaseFigures[] = [];
  try {
    await cluster.start();
    const client = await connect(cluster.urls);
    try {
      for (let k = 0; k < o.keys; k += 100) await client.batch(Array.from({ length: Math.min(100, o.keys - k) }, (_, i) => ({ type: 'put' as const, key: `f-${k + i}`, value: 'v' })));
      const faulty = 1 + (index % 2); // node 0 is the seed of the others; the fault moves between 1 and 2
      out.push({ phase: 'idle', round: index + 1, faulty: undefined, ...(await phase(client, o.keys, o.loops, o.seconds)) });
      console.log(format(out.at(-1)!));
      cluster.pause(faulty);
      out.push({ phase: 'paused', round: index + 1, faulty, ...(await phase(client, o.keys, o.loops, o.seconds)) });
      console.log(format(out.at(-1)!));
      cluster.resume(faulty);
      await cluster.waitConverged(3, 60_000);
      await sleep(1_000);
      await cluster.kill(faulty);
      out.push({ phase: 'killed', round: index + 1, faulty, ...(await phase(client, o.keys, o.loops, o.seconds)) });
      console.log(format(out.at(-1)!));
    } finally {
      await client.close();
    }
  } finally {
    await cluster.stop();
  }
  return out;
}

export async function runFailoverBench(argv: readonly string[]): Promise<void> {
  const rounds = Number(flag(argv, 'rounds') ?? 3);
  const o = { seconds: Number(flag(argv, 'seconds') ?? 10), loops: Number(flag(argv, 'loops') ?? 4), keys: Number(flag(argv, 'keys') ?? 1000) };
  const record = (flag(argv, 'record') ?? 'yes') !== 'no';
  printMachine();
  console.log(
    `failover: 3 nodes, N=3 R=2 W=2, ${o.loops} loops of get+put over ${o.keys} keys, ${o.seconds} s per phase, ${rounds} rounds; ` +
      `hedge delay within [${limits.hedgeDelayMsMin}, ${limits.hedgeDelayMsMax}] ms, goal: max ≤ 2000 ms, p99 ≤ hedge delay + 100 ms`,
  );
  for (let r = 0; r < rounds; r++) {
    const figures = await round(r, o);
    if (record) for (const f of figures) recordResult('failover', { ...f });
  }
}
