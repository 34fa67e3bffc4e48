/**
 * Process pause against a real 3-node cluster (issue 5 §5 (b); RELIABILITY.md A3 with the
 * features of issue 4). A node is SIGSTOPped past the failure detector's conviction (gossip
 * every 100 ms, so phi convicts within seconds) and resumed with SIGCONT: the cluster routes
 * around it at W=2/R=2, sees it up again, and it serves reads afterwards (reads at ALL need
 * its answer). Runs in netns or proxy mode (RINGKV_FAULTS=proxy) and prints which; the
 * history is checked as in faults-partition. Bounded: every wait has a deadline.
 */

import t from 'tap';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { connect, type Client } from '../lib/client/index.js';
import { startFaultCluster } from './fixtures/fault-net.js';
import { ClusterHistory, finalReads, runRegisterWorkload } from './fixtures/history.js';

// Run directly with node, tap's default budget (30 s) is below this file's; tap's runner allows 300 s.
t.setTimeout(60_000);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

t.test('a SIGSTOPped node is routed around at W=2/R=2, seen up again after SIGCONT, and serves reads afterwards', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed} (RINGKV_SEED replays the workload's choices; the fault schedule is fixed)`);
  const { cluster, net } = await startFaultCluster(t, { nodes: 3, gossipIntervalMs: 100 });
  const clients: Client[] = await Promise.all([0, 1, 2].map(() => connect(cluster.urls, { timeoutMs: 2_000, ringRefreshMs: 250 })));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));

  const h = new ClusterHistory();
  h.attachFaults(net.actions);
  const keys = Array.from({ length: 8 }, (_, i) => `pause-${i}`);
  let stop = false;
  const workload = runRegisterWorkload(h, { clients, keys, writersPerKey: 1, readers: 3, seed, done: () => stop, read: { r: 2 }, write: { w: 2 } });
  let convictedAtMs = 0;
  let resumedAtMs = 0;
  try {
    await sleep(1_500);
    const pausedAtMs = h.nowMs();
    cluster.pause(2);
    const downMs = Math.max(await cluster.waitMember(0, 2, false, 20_000), await cluster.waitMember(1, 2, false, 20_000));
    convictedAtMs = h.nowMs();
    t.comment(`node 2 SIGSTOPped at ${Math.round(pausedAtMs)} ms; convicted by nodes 0 and 1 after ${Math.round(downMs)} ms`);
    await sleep(3_000);
    resumedAtMs = h.nowMs();
    cluster.resume(2);
    const upMs = Math.max(...(await Promise.all([cluster.waitMember(0, 2, true, 15_000), cluster.waitMember(1, 2, true, 15_000)])));
    t.comment(`SIGCONT at ${Math.round(resumedAtMs)} ms (paused ${Math.round(resumedAtMs - pausedAtMs)} ms); seen up again after ${Math.round(upMs)} ms`);
    await sleep(1_000);
  } finally {
    stop = true;
    await workload;
  }

  const during = h.history.ops.filter((op) => op.invokeMs! >= convictedAtMs && op.completeMs! <= resumedAtMs);
  const okWrites = during.filter((op) => op.kind === 'put' && op.outcome === 'ok').length;
  const okReads = during.filter((op) => op.kind === 'get' && op.outcome === 'ok').length;
  t.comment(`while node 2 was convicted and stopped: ${okWrites} writes and ${okReads} reads ok of ${during.length} operations`);
  t.ok(okWrites > 0 && okReads > 0, 'writes at W=2 and reads at R=2 kept succeeding around the stopped node');

  const own = await cluster.status(2);
  t.equal(own.members.filter((m) => m.up).length, 3, 'the resumed node sees all three members up');
  const atAll = await finalReads(h, clients[1]!, keys, { consistency: 'ALL' });
  t.equal(atAll.size, keys.length, 'reads at ALL, which need the resumed node to answer, succeed for every key');
  const anomalies = h.check((key) => atAll.get(key) ?? []);
  t.comment(`history: ${JSON.stringify(h.counts())}`);
  if (anomalies.length > 0) {
    const path = join(tmpdir(), `ringkv-faults-pause-${process.pid}.jsonl`);
    h.save(path);
    t.comment(`history kept in ${path}; first anomalies: ${JSON.stringify(anomalies.slice(0, 10))}`);
  }
  t.same(anomalies, [], 'no anomaly: no stale read after an ack, no lost acknowledged write, siblings within concurrent writers');
});
