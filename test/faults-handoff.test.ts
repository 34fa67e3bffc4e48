/**
 * Hinted handoff under faults on real processes (issue 5 §5; RELIABILITY.md A1, §2.4
 * convergence): sloppy quorum (the default), N=3, W=2.
 *  1. One node of 4 cut off (fault-net isolate) under concurrent writes: writes keep
 *     succeeding through stand-ins, which hold hints (/status); after heal every hint is
 *     delivered; after `POST /repair` on each node every replica of every touched partition
 *     has the same Merkle root (GET /merkle); no acknowledged write is lost (final reads at
 *     ALL checked against the history). Sloppy mode promises no fresh reads (§0.5), so stale
 *     reads are counted and printed, not failed.
 *  2. A hint holder SIGKILLed before it could deliver: its hints survive the restart and are
 *     delivered, and the once-down replica alone then serves every acknowledged write at R=1.
 * Scheduled anti-entropy is off (antiEntropyIntervalMs 0) so hints and `repair` are what is
 * tested. Bounded: every wait has a deadline, the workload stops itself.
 */

import t, { type Test } from 'tap';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { connect, type Client } from '../lib/client/index.js';
import { computeRing } from '../lib/ring/index.js';
import { Cluster } from './fixtures/cluster.js';
import { startFaultCluster } from './fixtures/fault-net.js';
import { ClusterHistory, finalReads, hintCounts, merkleDisagreements, merkleRoots, partitionsOfKeys, repairNode, runRegisterWorkload, until } from './fixtures/history.js';

// Run directly with node, tap's default budget (30 s) is below this file's; tap's runner allows 300 s.
t.setTimeout(200_000);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
// As the issue asks: spans many hint batches (delivery runs every
// limits.hintDeliveryIntervalMs = 1 s) and is far past conviction.
const isolationMs = 30_000;
/** Anomalies that are staleness, which sloppy quorums allow (RELIABILITY.md §0.5): measured, not failed. */
const staleness = new Set(['stale-read', 'superseded-sibling']);

/** Checks the final state (ALL reads) against the history; keeps the history on failure. */
function checkHistory(t: Test, h: ClusterHistory, atAll: Map<string, string[]>, keys: readonly string[], name: string): void {
  t.equal(atAll.size, keys.length, 'every key is readable at ALL after heal and repair');
  const anomalies = h.check((key) => atAll.get(key) ?? []);
  const stale = anomalies.filter((a) => staleness.has(a.kind));
  const hard = anomalies.filter((a) => !staleness.has(a.kind));
  t.comment(`history: ${JSON.stringify(h.counts())}; stale reads (allowed in sloppy mode): ${stale.length}`);
  if (hard.length > 0) {
    const path = join(tmpdir(), `ringkv-${name}-${process.pid}.jsonl`);
    h.save(path);
    t.comment(`history kept in ${path}; first anomalies: ${JSON.stringify(hard.slice(0, 10))}`);
  }
  t.same(hard, [], 'no lost acknowledged write, no garbage or failed write visible, siblings within concurrent writers');
}

t.test('a node isolated for 30 s: writes go on through stand-ins, hints are delivered after heal, repair makes every replica agree, no acked write lost', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed} (RINGKV_SEED replays the workload's choices; the fault schedule is fixed)`);
  const { cluster, net } = await startFaultCluster(t, { nodes: 4, nodeOptions: () => ({ antiEntropyIntervalMs: 0 }) });
  const clients: Client[] = await Promise.all([0, 1, 2].map(() => connect(cluster.urls, { timeoutMs: 2_000, ringRefreshMs: 250 })));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const h = new ClusterHistory();
  h.attachFaults(net.actions);
  const keys = Array.from({ length: 14 }, (_, i) => `handoff-${i}`);
  let done = false;
  const common = { clients, done: () => done, read: { r: 2 }, write: { w: 2 } };
  const workload = Promise.all([
    runRegisterWorkload(h, { ...common, keys: keys.slice(0, 12), writersPerKey: 1, readers: 2, seed }),
    runRegisterWorkload(h, { ...common, keys: keys.slice(12), writersPerKey: 2, readers: 0, seed: seed + 1 }),
  ]);
  const isolated = 3;
  const others = [0, 1, 2];
  const target = cluster.nodes[isolated]!.id;
  let convictedAtMs = 0;
  let healedAtMs = 0;
  let hintsHeldMax = 0;
  try {
    await sleep(1_500);
    const isolatedAtMs = h.nowMs();
    await net.isolate(isolated);
    const downMs = Math.max(...(await Promise.all(others.map((i) => cluster.waitMember(i, isolated, false, isolationMs)))));
    convictedAtMs = h.nowMs();
    t.comment(`${net.mode}: node ${isolated} isolated at ${Math.round(isolatedAtMs)} ms, seen down by the others after ${Math.round(downMs)} ms`);
    while (h.nowMs() < isolatedAtMs + isolationMs) {
      hintsHeldMax = Math.max(hintsHeldMax, (await hintCounts(cluster, others)).byTarget.get(target) ?? 0);
      await sleep(500);
    }
    healedAtMs = h.nowMs();
    await net.heal();
    const upMs = Math.max(...(await Promise.all(others.map((i) => cluster.waitMember(i, isolated, true, 20_000)))));
    t.comment(`healed at ${Math.round(healedAtMs)} ms; seen up again after ${Math.round(upMs)} ms`);
    await sleep(1_000);
  } finally {
    done = true;
    await workload;
  }
  const writes = h.history.ops.filter((op) => op.kind === 'put' && op.invokeMs! >= convictedAtMs && op.completeMs! <= healedAtMs);
  const okWrites = writes.filter((op) => op.outcome === 'ok').length;
  t.comment(`writes while node ${isolated} was convicted: ${okWrites} ok of ${writes.length}; most hints held for it: ${hintsHeldMax}`);
  t.ok(okWrites > 0 && okWrites >= writes.length * 0.9, 'writes at W=2 kept succeeding (>= 90 %) while a replica was cut off');
  t.ok(hintsHeldMax > 0, 'stand-ins held hints for the isolated node');

  const drainMs = await until('every hint for the healed node is delivered', async () => (await hintCounts(cluster, others)).held === 0, 30_000);
  const { delivered } = await hintCounts(cluster, others);
  t.comment(`hints drained ${Math.round(drainMs)} ms after the workload stopped (T_hint); ${delivered} delivered`);
  t.ok(delivered > 0, 'hints were delivered to the healed node');

  const { partitionBits } = await cluster.status(0);
  const all = [0, 1, 2, 3];
  const refused = await Promise.all(['partition=-1', 'partition=', `partition=${2 ** partitionBits}`].map(async (query) => (await fetch(`http://${cluster.nodes[0]!.address}/merkle?${query}`)).status));
  t.same(refused, [400, 400, 400], 'GET /merkle refuses partitions outside the ring');
  const before = await merkleDisagreements(cluster, all, keys, partitionBits, 3);
  // Repair of the touched partitions only: a full `POST /repair` of 4 x 768 partitions took
  // 5 s in netns mode and 34 s in proxy mode with another file running, too long for the suite.
  const touched = partitionsOfKeys(keys, partitionBits);
  const repairStartMs = performance.now();
  const repaired: number[] = [];
  for (const i of all) repaired.push(await repairNode(cluster, i, 30_000, [...(await merkleRoots(cluster, i, touched)).keys()]));
  const after = await merkleDisagreements(cluster, all, keys, partitionBits, 3);
  t.comment(`touched partitions whose replicas differed before repair: ${before.length}; repair of the ${touched.length} touched partitions on 4 nodes took ${Math.round(performance.now() - repairStartMs)} ms (T_conv), keys repaired per node ${JSON.stringify(repaired)}`);
  t.same(after, [], 'after repair every replica of every touched partition has the same Merkle root and key count');

  const atAll = await finalReads(h, clients[0]!, keys, { consistency: 'ALL' });
  checkHistory(t, h, atAll, keys, 'faults-handoff');
});

t.test('hints survive their holder being SIGKILLed: delivered after its restart, and the replica alone serves every acked write', async (t) => {
  const cluster = new Cluster({ nodes: 4, secret: 'handoff-kill', nodeOptions: () => ({ antiEntropyIntervalMs: 0 }) });
  t.teardown(() => cluster.stop());
  const startMs = performance.now();
  await cluster.start();
  const replica = 3;
  const missing = cluster.nodes[replica]!.id;
  // Kill only once the others have sampled its heartbeats for a while: a member killed within
  // its first second is not convicted for 30 s or more (reported: the phi detector's bootstrap
  // interval does not scale with gossipIntervalMs).
  await until('the others have seen 30 heartbeats of the replica', async () => {
    const views = await Promise.all([0, 1, 2].map((i) => cluster.status(i)));
    return views.every((v) => (v.members.find((m) => m.id === missing)?.heartbeat ?? 0) >= 30);
  });
  await cluster.kill(replica);
  await until('the others see the replica down', async () => {
    const views = await Promise.all([0, 1, 2].map((i) => cluster.status(i)));
    return views.every((v) => v.members.some((m) => m.id === missing && !m.up));
  });
  const client = await connect(cluster.urls.slice(0, 3), { timeoutMs: 5_000 });
  t.teardown(() => client.close());
  const keys = Array.from({ length: 90 }, (_, i) => `held-${i}`);
  // W=3: the stand-in's ack counts, so every acknowledged write is durable there as a hint.
  for (const key of keys) await client.put(key, `v-${key}`, { w: 3 });
  const held = await Promise.all([0, 1, 2].map(async (i) => (await hintCounts(cluster, [i])).byTarget.get(missing) ?? 0));
  const holder = held.indexOf(Math.max(...held));
  t.comment(`hints for the down replica per node: ${JSON.stringify(held)}; SIGKILLing node ${holder}`);
  t.ok(held[holder]! > 0, 'a stand-in holds hints for the down replica');

  await cluster.kill(holder);
  await cluster.startNode(replica);
  const alive = [0, 1, 2].filter((i) => i !== holder);
  await until('hints of the surviving stand-ins are delivered', async () => (await hintCounts(cluster, alive)).byTarget.get(missing) === undefined, 30_000);
  await cluster.startNode(holder);
  const restartedAtMs = performance.now();
  const drained = await until('the restarted holder delivered its hints', async () => {
    const s = await cluster.status(holder);
    return s.hints.every((h) => h.target !== missing || h.hints === 0) && s.hintsDelivered > 0;
  }, 30_000).then(
    () => true,
    (error: unknown) => {
      t.comment(String(error));
      return false;
    },
  );
  const afterRestart = await cluster.status(holder);
  t.comment(`holder restarted; delivered ${afterRestart.hintsDelivered} hints within ${Math.round(performance.now() - restartedAtMs)} ms`);
  t.ok(drained && afterRestart.hintsDelivered >= held[holder]!, `the restarted holder delivered the ${held[holder]} hints it held before the SIGKILL`);
  if (!drained) t.comment(`hints did not survive; repair keyed ${await repairNode(cluster, replica)} keys`);

  const status = await cluster.status(replica);
  const view = status.members.map((m) => ({ id: m.id, weight: m.weight, dc: m.dc, rack: m.rack, status: m.status }));
  const ring = computeRing(view, { partitionBits: status.partitionBits, replication: 3 });
  const mine = keys.filter((key) => ring.replicasOfKey(new TextEncoder().encode(key)).includes(missing));
  t.ok(mine.length > 20, `${mine.length} keys have the once-down node as a replica`);
  await Promise.all([0, 1, 2].map((i) => cluster.kill(i)));
  await until('the replica sees the others down', async () => (await cluster.status(replica)).members.filter((m) => m.up).length === 1);
  const alone = await connect([cluster.urls[replica]!], { timeoutMs: 5_000 });
  t.teardown(() => alone.close());
  const lost: string[] = [];
  for (const key of mine) {
    const result = await alone.get(key, { r: 1 });
    if (!result.values.some((v) => Buffer.from(v).toString('utf8') === `v-${key}`)) lost.push(key);
  }
  t.same(lost, [], 'the replica alone serves every write acknowledged while it was down');
  t.comment(`test took ${Math.round(performance.now() - startMs)} ms`);
});
