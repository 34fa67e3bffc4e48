/**
 * Merkle anti-entropy on real processes (issue 5 §2 and §5): a replica whose store is wiped
 * (its identity kept; a wholly lost directory needs `--replace`, issue 10) is rebuilt by `repair` alone and then serves every acknowledged write at R=1 with
 * the other replicas dead; deletes made while a replica was away stay deleted after it
 * returns and is repaired.
 */

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { connect } from '../lib/client/index.js';
import { until as waitUntil, repairNode } from './fixtures/history.js';
import { Cluster } from './fixtures/cluster.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

const until = (what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<number> => waitUntil(what, check, timeoutMs);


t.test('a replica whose store was wiped is rebuilt by anti-entropy alone and serves every acknowledged write at R=1', async (t) => {
  const cluster = new Cluster({ nodes: 3, secret: 'repair', nodeOptions: () => ({ antiEntropyIntervalMs: 0 }) });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const client = await connect(cluster.urls);
  t.teardown(() => client.close());
  const keys = Array.from({ length: 150 }, (_, i) => `wiped-${i}`);
  for (const key of keys) await client.put(key, `v-${key}`, { w: 3 });
  const deleted = keys.slice(0, 20);
  for (const key of deleted) await client.delete(key, { context: (await client.get(key, { consistency: 'ALL' })).context, w: 3 });

  const wiped = cluster.nodes[2]!;
  const id = wiped.id;
  await cluster.kill(2);
  // Only the store: the node keeps its identity and membership view and restarts as an owner
  // with no data (a whole lost data directory is refused instead, naming --replace:
  // lifecycle-replace.test.ts). Its new store gets a new version-vector actor.
  rmSync(join(wiped.dir, 'store'), { recursive: true, force: true });
  await cluster.startNode(2);
  await cluster.waitConverged(3);
  t.equal((await cluster.status(2)).node, id, 'the node restarts under its id');

  await repairNode(cluster, 2);
  const stats = (await cluster.status(2)).antiEntropy;
  t.ok(stats.keysRepaired >= keys.length, `repair moved the missing keys (${stats.keysRepaired} repaired, ${stats.bytesSent + stats.bytesReceived} bytes)`);

  await Promise.all([cluster.kill(0), cluster.kill(1)]);
  await until('the rebuilt node sees the others down', async () => (await cluster.status(2)).members.filter((m) => m.up).length === 1);
  const alone = await connect([cluster.urls[2]!]);
  t.teardown(() => alone.close());
  const lost: string[] = [];
  const revived: string[] = [];
  for (const key of keys) {
    const result = await alone.get(key, { r: 1 });
    if (deleted.includes(key)) {
      if (result.found) revived.push(key);
    } else if (!result.values.map(text).includes(`v-${key}`)) {
      lost.push(key);
    }
  }
  t.same(lost, [], 'every acknowledged write is served by the rebuilt replica alone');
  t.same(revived, [], 'no deleted key came back');
});

t.test('deletes made while a replica was away do not come back after it returns and is repaired', async (t) => {
  const cluster = new Cluster({ nodes: 3, secret: 'tombstones', nodeOptions: () => ({ antiEntropyIntervalMs: 0 }) });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const client = await connect(cluster.urls.slice(0, 2));
  t.teardown(() => client.close());
  const keys = Array.from({ length: 40 }, (_, i) => `doomed-${i}`);
  for (const key of keys) await client.put(key, 'alive', { w: 3 });
  await cluster.kill(2);
  await until('node 2 is down', async () => (await cluster.status(0)).members.some((m) => m.id === cluster.nodes[2]!.id && !m.up));
  for (const key of keys) await client.delete(key, { context: (await client.get(key)).context });
  await cluster.startNode(2);
  await cluster.waitConverged(3);
  await repairNode(cluster, 2);
  await repairNode(cluster, 0);
  for (const key of keys) {
    const result = await client.get(key, { consistency: 'ALL' });
    if (result.found) t.fail(`${key} came back: ${result.values.map(text)}`);
  }
  t.pass(`none of the ${keys.length} deleted keys came back`);
});
