/**
 * Partition faults against a real 3-node cluster (issue 5 §5 (a); RELIABILITY.md A2/C2 with
 * the features of issue 4: strict quorums, no hints, no anti-entropy). Nodes are processes in
 * network namespaces (root) or behind fault proxies (RINGKV_FAULTS=proxy); the same test runs
 * either way and prints which. Every operation is recorded and the history is checked
 * (history.ts): read-after-ack with R+W>N, siblings bounded by concurrent writers, no acked
 * write missing from the final reads at R=2 and ALL. Bounded in time: every wait has a
 * deadline and the workload stops itself.
 */

import t, { type Test } from 'tap';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { connect, type Client } from '../lib/client/index.js';
import { startFaultCluster, type FaultNet } from './fixtures/fault-net.js';
import { ClusterHistory, finalReads, runRegisterWorkload } from './fixtures/history.js';

// Run directly with node, tap's default budget (30 s) is below this file's; tap's runner allows 300 s.
t.setTimeout(90_000);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const isolationMs = 10_000;

/** Final reads at R=2 then ALL (recorded), then every history check; keeps the history on failure. */
async function checkAfterHeal(t: Test, h: ClusterHistory, reader: Client, keys: readonly string[]): Promise<void> {
  const atTwo = await finalReads(h, reader, keys, { r: 2 });
  const atAll = await finalReads(h, reader, keys, { consistency: 'ALL' });
  t.equal(atAll.size, keys.length, 'every key is readable at ALL after heal');
  const anomalies = h.check((key) => atAll.get(key) ?? atTwo.get(key) ?? []);
  const siblingsMax = Math.max(0, ...h.history.ops.map((op) => op.values?.length ?? 0));
  t.comment(`history: ${JSON.stringify(h.counts())}; most siblings in one read: ${siblingsMax}`);
  if (anomalies.length > 0) {
    const path = join(tmpdir(), `ringkv-faults-partition-${process.pid}-${Math.round(h.nowMs())}.jsonl`);
    h.save(path);
    t.comment(`history kept in ${path}; first anomalies: ${JSON.stringify(anomalies.slice(0, 10))}`);
  }
  t.same(anomalies, [], 'no anomaly: no stale read after an ack, no lost acknowledged write, siblings within concurrent writers');
}

interface Run {
  h: ClusterHistory;
  clients: Client[];
  keys: string[];
  stop(): Promise<void>;
}

/** Three clients (each knowing every node), 8 single-writer keys, 2 keys with two writers, 3 readers. */
async function startWorkload(t: Test, urls: string[], attach: FaultNet, seed: number): Promise<Run> {
  const clients: Client[] = await Promise.all([0, 1, 2].map(() => connect(urls, { timeoutMs: 2_000, ringRefreshMs: 250 })));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const h = new ClusterHistory();
  h.attachFaults(attach.actions);
  const keys = Array.from({ length: 10 }, (_, i) => `part-${i}`);
  let done = false;
  const common = { clients, done: () => done, read: { r: 2 }, write: { w: 2 } };
  const running = Promise.all([
    runRegisterWorkload(h, { ...common, keys: keys.slice(0, 8), writersPerKey: 1, readers: 3, seed }),
    runRegisterWorkload(h, { ...common, keys: keys.slice(8), writersPerKey: 2, readers: 0, seed: seed + 1 }),
  ]);
  return {
    h,
    clients,
    keys,
    stop: async () => {
      done = true;
      await running;
    },
  };
}

const okWritesBetween = (h: ClusterHistory, fromMs: number, toMs: number): { ok: number; all: number } => {
  const writes = h.history.ops.filter((op) => op.kind === 'put' && op.invokeMs! >= fromMs && op.completeMs! <= toMs);
  return { ok: writes.filter((op) => op.outcome === 'ok').length, all: writes.length };
};

t.test('a node isolated for 10 s under load: quorum writes keep succeeding, it is marked down and back up, no acknowledged write is lost', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed} (RINGKV_SEED replays the workload's choices; the fault schedule is fixed)`);
  const { cluster, net } = await startFaultCluster(t, { nodes: 3 });
  const run = await startWorkload(t, cluster.urls, net, seed);
  const { h } = run;
  try {
    await sleep(1_500);
    const isolatedAtMs = h.nowMs();
    await net.isolate(2);
    const downMs = Math.max(await cluster.waitMember(0, 2, false, isolationMs), await cluster.waitMember(1, 2, false, isolationMs));
    const convictedAtMs = h.nowMs();
    t.comment(`node 2 isolated at ${Math.round(isolatedAtMs)} ms; seen down by nodes 0 and 1 after ${Math.round(downMs)} ms`);
    await sleep(Math.max(0, isolatedAtMs + isolationMs - h.nowMs()));
    const healedAtMs = h.nowMs();
    await net.heal();
    const upMs = Math.max(...(await Promise.all([cluster.waitMember(0, 2, true, 15_000), cluster.waitMember(1, 2, true, 15_000), cluster.waitMember(2, 0, true, 15_000)])));
    t.comment(`healed at ${Math.round(healedAtMs)} ms; node 2 and its peers see each other up after ${Math.round(upMs)} ms`);
    await sleep(1_500);
    await run.stop();
    const during = okWritesBetween(h, convictedAtMs, healedAtMs);
    t.comment(`writes while node 2 was down: ${during.ok} ok of ${during.all}`);
    t.ok(during.ok > 0, 'writes at W=2 kept succeeding while node 2 was isolated');
  } finally {
    await run.stop();
  }
  await checkAfterHeal(t, h, run.clients[0]!, run.keys);
});

t.test('partition {0,1} | {2} with clients reaching all: each side convicts the other, the majority keeps writing, no anomaly', async (t) => {
  const seed = seedFromEnvironment() + 7;
  t.comment(`seed ${seed}`);
  const { cluster, net } = await startFaultCluster(t, { nodes: 3 });
  const run = await startWorkload(t, cluster.urls, net, seed);
  const { h } = run;
  try {
    await sleep(1_000);
    await net.partition([0, 1], [2]);
    const downMs = Math.max(...(await Promise.all([cluster.waitMember(0, 2, false, 15_000), cluster.waitMember(1, 2, false, 15_000), cluster.waitMember(2, 0, false, 15_000), cluster.waitMember(2, 1, false, 15_000)])));
    const convictedAtMs = h.nowMs();
    t.comment(`both sides convicted the other after ${Math.round(downMs)} ms; node 2's /status stays reachable: the test host is on neither side`);
    await sleep(3_000);
    const healedAtMs = h.nowMs();
    await net.heal();
    const upMs = Math.max(...(await Promise.all([cluster.waitMember(0, 2, true, 15_000), cluster.waitMember(2, 0, true, 15_000), cluster.waitMember(2, 1, true, 15_000)])));
    t.comment(`healed; all up again after ${Math.round(upMs)} ms`);
    await sleep(1_000);
    await run.stop();
    const during = okWritesBetween(h, convictedAtMs, healedAtMs);
    const refused = h.history.ops.filter((op) => op.kind === 'put' && op.outcome !== 'ok' && op.invokeMs! >= convictedAtMs && op.completeMs! <= healedAtMs);
    t.comment(`writes during the partition: ${during.ok} ok of ${during.all}; not ok: ${JSON.stringify(refused.map((op) => `${op.outcome}:${op.code}`).slice(0, 5))}`);
    t.ok(during.ok > 0, 'writes at W=2 kept succeeding on the majority side');
  } finally {
    await run.stop();
  }
  await checkAfterHeal(t, h, run.clients[0]!, run.keys);
});
