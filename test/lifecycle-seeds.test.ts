/**
 * The seed convention on real processes (issue 10, "Restarts"): every node gets the same seed
 * list, with no special first node; a node that finds its own address in its seeds may found
 * the cluster. Founders wait to meet the other seeds (or `foundingWaitMs`), and a write taken
 * by a founder that founded alone reaches the seeds that join later by streaming: it is never
 * stranded on a node that ends up owning none of its partitions.
 */

import { createServer } from 'node:net';
import t, { type Test } from 'tap';
import { connect } from '../lib/client/index.js';
import { limits } from '../lib/base/limits.js';
import { Cluster } from './fixtures/cluster.js';
import { until } from './fixtures/history.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

/** A port free now on 127.0.0.1 (the nodes' seed lists need their ports before they start). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function seededCluster(t: Test, secret: string): Promise<{ cluster: Cluster; ports: number[]; seeds: string[] }> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const seeds = ports.map((port) => `127.0.0.1:${port}`);
  const cluster = new Cluster({ nodes: 3, secret, nodeOptions: (i) => ({ port: ports[i], seeds }) });
  t.teardown(() => cluster.stop());
  return { cluster, ports, seeds };
}

t.test('nodes given the same seed list, themselves included, found one cluster together', async (t) => {
  const { cluster } = await seededCluster(t, 'same-seeds');
  await Promise.all([0, 1, 2].map((i) => cluster.startNode(i)));
  const formedMs = await until('all three are normal and up everywhere', async () => {
    await cluster.waitConverged(3, 1_000);
    return true;
  }, 60_000);
  t.comment(`three founders formed the cluster ${Math.round(formedMs)} ms after the last start`);
  const views = await Promise.all([0, 1, 2].map((i) => cluster.status(i)));
  const rings = views.map((v) => [...new Set(v.ring.owners)].sort().join(','));
  t.equal(new Set(rings).size, 1, 'every node computes the same ring');
  t.equal(rings[0]!.split(',').length, 3, 'with all three owners');
  const client = await connect(cluster.urls);
  t.teardown(() => client.close());
  await client.put('founded', 'yes', { w: 2 });
  t.same([...new Set((await client.get('founded', { r: 2 })).values.map(text))], ['yes'], 'writes and reads at quorum work');
});

t.test('a founder alone founds after the wait; seeds that come later stream what it took', async (t) => {
  const { cluster } = await seededCluster(t, 'lonely-founder');
  await cluster.startNode(0);
  const first = await connect([cluster.urls[0]!]);
  t.teardown(() => first.close());
  await t.rejects(first.put('early', 'x', { w: 1 }), { code: 'KV_UNAVAILABLE' }, 'no writes before the cluster is founded');
  const foundedMs = await until('node 0 founds alone', async () => (await cluster.status(0)).members[0]?.status === 'normal', limits.foundingWaitMs + 20_000);
  t.comment(`a lone founder waited ${Math.round(foundedMs)} ms (foundingWaitMs ${limits.foundingWaitMs})`);
  const keys = Array.from({ length: 200 }, (_, i) => `lonely-${i}`);
  for (const key of keys) await first.put(key, `value-${key}`, { w: 1 });
  t.pass('a founder alone takes writes at W=1');

  await cluster.startNode(1);
  await cluster.startNode(2);
  await cluster.waitConverged(3, 60_000);
  await until('the later seeds finished streaming', async () => {
    const views = await Promise.all([1, 2].map((i) => cluster.status(i)));
    return views.every((v) => v.transfers?.phase === 'idle');
  }, 60_000);
  await cluster.kill(0);
  await until('node 1 sees node 0 down', async () => (await cluster.status(1)).members.some((m) => m.id === cluster.nodes[0]!.id && !m.up));
  const later = await connect(cluster.urls.slice(1));
  t.teardown(() => later.close());
  const stranded: string[] = [];
  for (const key of keys) if (!(await later.get(key, { r: 2 })).values.map(text).includes(`value-${key}`)) stranded.push(key);
  t.same(stranded, [], 'with the founder dead, the later seeds serve every write it took at R=2');
});
