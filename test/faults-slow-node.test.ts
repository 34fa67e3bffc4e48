/**
 * Fast failover on real processes (issue 10 "a paused replica"; RELIABILITY.md A12, C2): three
 * nodes, N=3; one node is SIGSTOPped (its TCP connections stay open and silent) or SIGKILLed
 * while one writer does one put at a time at W=2 and one reader gets at R=2. Every operation
 * must succeed within a budget of 5 s (2.5 times the goal, shorter than the 7 s fault) —
 * before hedging, puts and gets routed to the paused node hung until it resumed or their
 * budget ran out, and ended KV_TIMEOUT. Latencies are printed, never asserted (the machine is
 * shared; perf/failover.ts measures them). After the paused node resumes, every key holds one
 * sibling: the writes queued at the paused node while their hedges were applied elsewhere
 * did not become second siblings; likewise when the node pauses and resumes twenty times,
 * 150-450 ms each (GC-like: writes caught mid-flight at it are hedged elsewhere). Also: the
 * same rid sent to two coordinators one after the other is one sibling (rids are known
 * wherever the write was applied).
 */

import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { seedFromEnvironment, SeededRng } from '../lib/base/rng.js';
import { connect, type Client } from '../lib/client/index.js';
import { connectClient, type Link, type WireMessage } from '../lib/transport/index.js';
import { Cluster } from './fixtures/cluster.js';

// Four 3-node clusters one after the other: a loaded machine needs most of tap's 300 s per file.
t.setTimeout(290_000);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

interface Op {
  kind: 'put' | 'get';
  startMs: number;
  latencyMs: number;
  error: string | undefined;
}

/** One writer (one put at a time, with its last context per key) and one reader, until `done()`. */
async function workload(client: Client, keys: readonly string[], rng: SeededRng, done: () => boolean): Promise<{ ops: Op[]; written: Map<string, string> }> {
  const ops: Op[] = [];
  const contexts = new Map<string, Uint8Array>();
  const written = new Map<string, string>();
  const timed = async (kind: Op['kind'], run: () => Promise<void>): Promise<void> => {
    const startMs = performance.now();
    let error: string | undefined;
    try {
      await run();
    } catch (e) {
      error = `${(e as { code?: string }).code ?? 'other'}: ${(e as Error).message}`;
    }
    ops.push({ kind, startMs, latencyMs: performance.now() - startMs, error });
  };
  let n = 0;
  const writer = async (): Promise<void> => {
    while (!done()) {
      const key = keys[rng.int(keys.length)]!;
      const value = `v${n++}`;
      const context = contexts.get(key);
      await timed('put', async () => {
        const result = await client.put(key, value, { w: 2, ...(context ? { context } : {}) });
        contexts.set(key, result.context);
        written.set(key, value);
      });
    }
  };
  const reader = async (): Promise<void> => {
    while (!done()) await timed('get', async () => void (await client.get(keys[rng.int(keys.length)]!, { r: 2 })));
  };
  await Promise.all([writer(), reader()]);
  return { ops, written };
}

function summary(ops: readonly Op[], kind: Op['kind']): string {
  const latencies = ops.filter((o) => o.kind === kind).map((o) => o.latencyMs).sort((a, b) => a - b);
  if (latencies.length === 0) return `${kind}: none`;
  const at = (p: number): string => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1);
  return `${kind}: ${latencies.length} ops, p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`;
}

type Fault = 'pause' | 'kill' | 'flap';

/** Applies the fault to node 2 for several seconds; 'flap' is GC-like: 20 short pauses. */
async function injectFault(cluster: Cluster, fault: Fault, rng: SeededRng): Promise<void> {
  if (fault === 'kill') return cluster.kill(2).then(() => sleep(7_000));
  if (fault === 'pause') {
    cluster.pause(2);
    await sleep(7_000);
    return cluster.resume(2);
  }
  for (let i = 0; i < 20; i++) {
    cluster.pause(2);
    await sleep(150 + rng.int(300));
    cluster.resume(2);
    await sleep(100 + rng.int(300));
  }
}

async function faultRun(t: Test, fault: Fault): Promise<void> {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed} (RINGKV_SEED replays the keys chosen)`);
  const cluster = new Cluster({ nodes: 3, secret: `slow-${fault}` });
  t.teardown(() => cluster.stop());
  await cluster.start();
  // A 5 s budget per operation: 2.5 times the 2 s goal, and shorter than the fault, so an
  // operation that waits on the faulty node instead of failing over ends KV_TIMEOUT.
  const client = await connect(cluster.urls, { timeoutMs: 5_000 });
  t.teardown(() => client.close());
  const keys = Array.from({ length: 24 }, (_, i) => `slow-${fault}-${i}`);
  const rng = new SeededRng(seed);
  let stop = false;
  const running = workload(client, keys, rng, () => stop);
  await sleep(1_500);
  const faultAtMs = performance.now();
  await injectFault(cluster, fault, rng);
  const healAtMs = performance.now();
  await sleep(1_000);
  stop = true;
  const { ops, written } = await running;

  const during = ops.filter((o) => o.startMs >= faultAtMs && o.startMs < healAtMs);
  const what = { pause: 'SIGSTOPped', kill: 'SIGKILLed', flap: 'SIGSTOPped and SIGCONTed 20 times' }[fault];
  t.comment(`node 2 ${what} over ${Math.round(healAtMs - faultAtMs)} ms; while it was: ${summary(during, 'put')}; ${summary(during, 'get')}`);
  t.comment(`whole run: ${summary(ops, 'put')}; ${summary(ops, 'get')}`);
  t.ok(during.filter((o) => o.kind === 'put').length > 0 && during.filter((o) => o.kind === 'get').length > 0, 'writes and reads ran during the fault');
  const failed = ops.filter((o) => o.error !== undefined);
  t.same(failed.map((o) => `${o.kind} after ${Math.round(o.latencyMs)} ms: ${o.error}`).slice(0, 10), [], 'every write at W=2 and read at R=2 succeeded (no KV_TIMEOUT)');

  if (fault !== 'kill') await cluster.waitConverged(3);
  const level = fault !== 'kill' ? 'ALL' : 'QUORUM';
  const doubled: string[] = [];
  for (const [key, value] of written) {
    const read = await client.get(key, { consistency: level });
    const values = read.values.map(text);
    if (values.length !== 1 || values[0] !== value) doubled.push(`${key}: ${JSON.stringify(values)} (last acked ${value})`);
  }
  t.same(doubled, [], `read at ${level}, every key holds exactly its last acknowledged write, one sibling`);
}

t.test('with one node SIGSTOPped, every put at W=2 and get at R=2 succeeds, and hedged writes leave one sibling', (t) => faultRun(t, 'pause'));

t.test('with one node SIGKILLed, every put at W=2 and get at R=2 succeeds', (t) => faultRun(t, 'kill'));

t.test('with one node pausing and resuming like a collector, every operation succeeds and hedged writes leave one sibling', (t) => faultRun(t, 'flap'));

async function send(link: Link, message: Record<string, unknown>): Promise<WireMessage> {
  const id = Math.floor(Math.random() * 1e9) + 1;
  return new Promise((resolve) => {
    link.onMessage = (reply) => {
      if (reply.id === id) resolve(reply);
    };
    link.send({ ...message, id } as unknown as WireMessage);
  });
}

t.test('the same rid sent to two coordinators in turn is applied once: one sibling, one context', async (t) => {
  const cluster = new Cluster({ nodes: 3, secret: 'rid' });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const [a, b] = await Promise.all([connectClient(cluster.urls[0]!, {}), connectClient(cluster.urls[1]!, {})]);
  t.teardown(() => (a.close(), b.close()));
  const key = new TextEncoder().encode('rid-twice');
  const rid = randomBytes(16);
  const first = await send(a, { t: 'put', key, value: new TextEncoder().encode('once'), rid, w: 3 });
  t.equal(first.t, 'written', 'the first coordinator applies the write at W=3');
  const second = await send(b, { t: 'put', key, value: new TextEncoder().encode('once'), rid, w: 2 });
  t.equal(second.t, 'written', 'the second coordinator answers the same rid as written');
  t.same(Buffer.from(second.context as Uint8Array), Buffer.from(first.context as Uint8Array), 'with the context of the first: it minted nothing new');
  const read = await send(b, { t: 'get', key, consistency: 'ALL' });
  t.same((read.values as Uint8Array[]).map(text), ['once'], 'a read at ALL sees one sibling');
});
