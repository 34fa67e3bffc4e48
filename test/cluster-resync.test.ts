/**
 * Resync after an outage longer than the tombstone grace (issue 5 §2, RELIABILITY.md C10) on
 * real processes: node 2 is stopped, keys are overwritten at W=2 without it, and it comes back
 * after the grace (2 s here). While it resyncs, R=1 reads coordinated by node 2 itself never
 * return its stale values (its own replica refuses to answer, so the others do); `/status`
 * shows the resync under way and then done. A node restarted within the grace does not resync.
 * Scheduled anti-entropy is off, so only the resync (and read repair) brings node 2 back.
 */

import t from 'tap';
import { isRingkvError } from '../lib/base/errors.js';
import { connect, nodeUrlOf, type Client, type ConnectFn } from '../lib/client/index.js';
import { connectClient } from '../lib/transport/index.js';
import { Cluster } from './fixtures/cluster.js';
import { until } from './fixtures/history.js';

t.setTimeout(120_000);

const partitionBits = 6;
const graceMs = 2_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A connect seam that sends every dial to `url`: every request is coordinated there. */
function pinnedTo(url: string): ConnectFn {
  const target = nodeUrlOf(url, 'url');
  return (_url, options) => connectClient(target, options);
}

async function pinnedClient(cluster: Cluster, index: number): Promise<Client> {
  const url = cluster.urls[index]!;
  return connect([url], { connect: pinnedTo(url), timeoutMs: 3_000, ringRefreshMs: 200 });
}

t.test('a replica back after longer than the grace refuses reads until resynced; R=1 reads it coordinates never see its stale values', async (t) => {
  const cluster = new Cluster({ nodes: 3, secret: 'resync', nodeOptions: () => ({ antiEntropyIntervalMs: 0, tombstoneGraceMs: graceMs, partitionBits }) });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const keys = Array.from({ length: 40 }, (_, i) => `resync-${i}`);
  const viaA = await pinnedClient(cluster, 0);
  t.teardown(() => viaA.close());
  for (const key of keys) await viaA.put(key, 'old', { w: 3 });

  await cluster.stopNode(2);
  const stoppedAtMs = Date.now();
  await cluster.waitMember(0, 2, false);
  await cluster.waitMember(1, 2, false);
  for (const key of keys) await viaA.put(key, 'new', { w: 2, context: (await viaA.get(key, { r: 2 })).context });
  const awayMs = Date.now() - stoppedAtMs;
  if (awayMs < graceMs + 1_000) await sleep(graceMs + 1_000 - awayMs);

  await cluster.startNode(2);
  const first = await cluster.status(2);
  t.equal(first.resync?.active, true, 'resyncing right after the restart');
  t.equal(first.resync?.reason, 'down-too-long');
  const viaC = await pinnedClient(cluster, 2);
  t.teardown(() => viaC.close());
  const stale: string[] = [];
  const wrong: string[] = [];
  let served = 0;
  let refused = 0;
  const read = async (key: string): Promise<boolean> => {
    try {
      const result = await viaC.get(key, { r: 1 });
      served++;
      const values = result.values.map((v) => new TextDecoder().decode(v));
      if (values.includes('old')) stale.push(key);
      else if (values.length !== 1 || values[0] !== 'new') wrong.push(key);
      return true;
    } catch (error) {
      if (!isRingkvError(error)) throw error;
      refused++; // before node 2 knows the ring (or its peers): an error, never stale data
      return false;
    }
  };
  const readAll = async (): Promise<void> => void (await Promise.all(keys.map(read)));

  // Node 2 back in the ring as a replica (its resync pending), and serving reads through others.
  await until('node 2 replicates again, still resyncing', async () => {
    const status = await cluster.status(2);
    return status.members.find((m) => m.id === status.node)?.status === 'normal' && (status.resync?.pendingPartitions ?? 0) > 0 && (await read(keys[0]!));
  });
  t.equal((await cluster.status(2)).resync?.active, true, '/status shows the resync under way');
  // With nodes 0 and 1 paused, a read at node 2 could only be answered from its own store:
  // it must wait for them instead (it is answered once they resume).
  for (let i = 0; i < 2; i++) {
    cluster.pause(0);
    cluster.pause(1);
    const reads = readAll();
    await sleep(300);
    cluster.resume(0);
    cluster.resume(1);
    await reads;
  }
  // Then read every key through node 2 in rounds until its resync is over, and one round after.
  await until('node 2 has resynced', async () => {
    const done = (await cluster.status(2)).resync?.active === false;
    await readAll();
    return done;
  }, 60_000);
  t.comment(`${served} reads served through node 2, ${refused} refused`);
  t.same(stale, [], 'no read returned the stale value');
  t.same(wrong, [], 'every served read returned the new value');
  t.ok(served >= keys.length, 'reads were served');
  const last = await cluster.status(2);
  t.same(last.resync, { active: false, pendingPartitions: 0, reason: 'down-too-long' }, '/status shows the resync done');
  t.notOk(last.warnings.some((w) => w.includes('resyncing')));
  for (const key of keys) t.same((await viaC.get(key, { r: 1 })).values.map((v) => new TextDecoder().decode(v)), ['new'], `${key} after the resync`);

  await cluster.stopNode(1);
  await cluster.startNode(1, { tombstoneGraceMs: 60_000 });
  const quick = await cluster.status(1);
  t.same(quick.resync, { active: false, pendingPartitions: 0, reason: 'within-grace' }, 'a node restarted within the grace does not resync');
  await until('node 1 sees node 0 up', async () => (await cluster.status(1)).members.filter((m) => m.up).length === 3);
});
