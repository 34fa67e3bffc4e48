/**
 * Nodes whose data directory does not fit the cluster are refused at start, on real processes
 * (issue 10): a node removed with `removenode` that comes back with its old data (also when
 * its peers answer only after it started), a wiped node given its old id (the message names
 * `--replace`), and a dead node's old disk after another node replaced it elsewhere.
 */

import { rmSync } from 'node:fs';
import t from 'tap';
import { Cluster } from './fixtures/cluster.js';
import { until } from './fixtures/history.js';

async function waitDown(cluster: Cluster, viewers: readonly number[], id: string): Promise<void> {
  await until(`nodes ${viewers.join(',')} see ${id} down`, async () => {
    const views = await Promise.all(viewers.map((i) => cluster.status(i)));
    return views.every((v) => v.members.some((m) => m.id === id && !m.up));
  });
}

t.test('a node removed with removenode is refused when it comes back with its old data', async (t) => {
  const cluster = new Cluster({ nodes: 3, secret: 'removed' });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const removed = cluster.nodes[2]!;
  await cluster.kill(2);
  await waitDown(cluster, [0, 1], removed.id);
  const response = await fetch(`http://${cluster.nodes[0]!.address}/removenode?id=${removed.id}`, { method: 'POST' });
  t.equal(response.status, 202, 'removenode accepted');
  await until('node 1 sees the removal', async () => (await cluster.status(1)).members.find((m) => m.id === removed.id)?.status === 'left');

  const refused = await cluster.startNode(2).then(() => undefined, (error: Error) => error);
  t.match(refused?.message ?? '', /exited with 1/, 'it exits with a non-zero status');
  t.match(refused?.message ?? '', /was removed from the cluster/, 'saying it was removed');
  const view = await cluster.status(0);
  t.notOk(view.ring.owners.includes(removed.id), 'it never re-entered the ring');

  // Its peers paused: nobody answers the start check in its window, so it starts; once they
  // answer it is refused all the same, and exits 1.
  cluster.pause(0);
  cluster.pause(1);
  await cluster.startNode(2);
  const child = cluster.nodes[2]!.child!;
  const exited = new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
  cluster.resume(0);
  cluster.resume(1);
  t.equal(await exited, 1, 'started unchecked, it exits 1 once a peer answers');
  t.match(cluster.nodes[2]!.stderr, /was removed from the cluster/, 'saying it was removed');
  cluster.nodes[2]!.child = undefined;
  const after = await cluster.status(1);
  t.notOk(after.ring.owners.includes(removed.id), 'and it never re-entered the ring meanwhile');
});

t.test('a wiped node given its old id is refused too, naming --replace', async (t) => {
  const cluster = new Cluster({ nodes: 2, secret: 'wiped-id', replication: 2 });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const node = cluster.nodes[1]!;
  const id = node.id;
  await cluster.kill(1);
  rmSync(node.dir, { recursive: true, force: true });
  await waitDown(cluster, [0], id);
  // Another port: the id, not the address, gives it away.
  const refused = await cluster.startNode(1, { id, port: 0 }).then(() => undefined, (error: Error) => error);
  t.match(refused?.message ?? '', new RegExp(`--replace ${id}`), 'its message names --replace and the id');
});

t.test('a dead node replaced elsewhere is refused when its old disk comes back', async (t) => {
  const cluster = new Cluster({ nodes: 2, secret: 'replaced', replication: 2 });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const old = cluster.nodes[1]!;
  const oldAddress = old.address;
  await cluster.kill(1);
  await waitDown(cluster, [0], old.id);
  // The replacement runs on another port and directory (another machine), found by address.
  const replacement = await cluster.startNode(2, { replace: oldAddress, seeds: [cluster.nodes[0]!.address], port: 0 });
  t.equal(replacement.id, old.id, 'it took the dead member\'s id');
  t.not(replacement.address, oldAddress, 'at its own address');
  await until('node 0 sees the replacement normal at its address', async () => {
    const member = (await cluster.status(0)).members.find((m) => m.id === old.id);
    return member?.status === 'normal' && member.up && member.address === replacement.address;
  }, 60_000);
  const refused = await cluster.startNode(1).then(() => undefined, (error: Error) => error);
  t.match(refused?.message ?? '', /exited with 1/, 'the old disk does not start');
  t.match(refused?.message ?? '', new RegExp(`was replaced: the cluster knows it at ${replacement.address.replace('.', '\\.')}`), 'saying where its replacement runs');
  const member = (await cluster.status(0)).members.find((m) => m.id === old.id);
  t.equal(member?.address, replacement.address, 'the cluster still knows the replacement');
});
