/**
 * Sloppy quorum and hinted handoff on real processes (issue 5 §1): with one replica killed,
 * writes go to a stand-in as durable hints; when the replica is back the hints are delivered
 * and deleted; then, with every other node dead, the replica alone serves every write it
 * missed at R=1.
 */

import t from 'tap';
import { connect } from '../lib/client/index.js';
import { computeRing } from '../lib/ring/index.js';
import { until } from './fixtures/history.js';
import { Cluster } from './fixtures/cluster.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');


t.test('a killed replica gets the writes it missed through hints, and serves them alone', async (t) => {
  const cluster = new Cluster({ nodes: 4, secret: 'handoff' });
  t.teardown(() => cluster.stop());
  await cluster.start();
  await cluster.kill(3);
  const missing = cluster.nodes[3]!.id;
  await until('the others see node 3 down', async () => {
    const views = await Promise.all([0, 1, 2].map((i) => cluster.status(i)));
    return views.every((v) => v.members.some((m) => m.id === missing && !m.up));
  });

  const client = await connect(cluster.urls.slice(0, 3));
  t.teardown(() => client.close());
  const keys = Array.from({ length: 120 }, (_, i) => `handoff-${i}`);
  for (const key of keys) await client.put(key, `value-${key}`, { w: 3 });
  t.pass('W=3 writes succeed with a replica down (sloppy quorum: a stand-in counts)');
  const held = (await Promise.all([0, 1, 2].map((i) => cluster.status(i)))).flatMap((s) => s.hints).filter((h) => h.target === missing);
  t.ok(held.reduce((sum, h) => sum + h.hints, 0) > 0, `stand-ins hold hints for ${missing}`);

  await cluster.startNode(3);
  await until('every hint is delivered', async () => {
    const views = await Promise.all([0, 1, 2].map((i) => cluster.status(i)));
    return views.every((v) => v.hints.every((h) => h.hints === 0));
  });
  const delivered = (await Promise.all([0, 1, 2].map((i) => cluster.status(i)))).reduce((sum, s) => sum + s.hintsDelivered, 0);
  t.ok(delivered > 0, `${delivered} hints delivered and deleted`);

  const view = (await cluster.status(3)).members.map((m) => ({ id: m.id, weight: m.weight, dc: m.dc, rack: m.rack, status: m.status }));
  const ring = computeRing(view, { partitionBits: (await cluster.status(3)).partitionBits, replication: 3 });
  const mine = keys.filter((key) => ring.replicasOfKey(new TextEncoder().encode(key)).includes(missing));
  t.ok(mine.length > 30, `${mine.length} keys have the restarted node as a replica`);
  await Promise.all([0, 1, 2].map((i) => cluster.kill(i)));
  await until('node 3 sees the others down', async () => (await cluster.status(3)).members.filter((m) => m.up).length === 1);
  const alone = await connect([cluster.urls[3]!]);
  t.teardown(() => alone.close());
  const lost: string[] = [];
  for (const key of mine) {
    const result = await alone.get(key, { r: 1 });
    if (!result.values.map(text).includes(`value-${key}`)) lost.push(key);
  }
  t.same(lost, [], 'the replica alone serves every write it missed while it was down');
});
