/**
 * Lost disks, removed nodes and `--replace` on real processes (issue 10, case 4; RELIABILITY.md
 * V2): a node wiped and started again at its old address is refused with a message naming
 * `--replace`; started with `--replace` it takes the dead member's place, streams exactly its
 * partitions from the survivors (nothing else moves) and serves every acknowledged write
 * alone. A node removed with `removenode` that comes back with its old data is refused.
 */

import { rmSync } from 'node:fs';
import t from 'tap';
import { connect } from '../lib/client/index.js';
import { Cluster } from './fixtures/cluster.js';
import { until } from './fixtures/history.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

async function writeKeys(cluster: Cluster, count: number, prefix: string): Promise<string[]> {
  const client = await connect(cluster.urls);
  const keys = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const acked: string[] = [];
  for (let i = 0; i < keys.length; i += 100) {
    const batch = keys.slice(i, i + 100);
    const results = await Promise.allSettled(batch.map((key) => client.put(key, `value-${key}`, { w: 2 })));
    results.forEach((r, j) => r.status === 'fulfilled' && acked.push(batch[j]!));
  }
  await client.close();
  return acked;
}

async function waitDown(cluster: Cluster, viewers: readonly number[], id: string): Promise<void> {
  await until(`nodes ${viewers.join(',')} see ${id} down`, async () => {
    const views = await Promise.all(viewers.map((i) => cluster.status(i)));
    return views.every((v) => v.members.some((m) => m.id === id && !m.up));
  });
}

t.test('a wiped node is refused at its old address, then --replace rebuilds it from the survivors', async (t) => {
  const cluster = new Cluster({ nodes: 3, secret: 'replace' });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const acked = await writeKeys(cluster, 2_000, 'replace');
  t.equal(acked.length, 2_000, 'every write is acknowledged');
  const dead = cluster.nodes[2]!;
  const deadId = dead.id;
  await cluster.kill(2);
  rmSync(dead.dir, { recursive: true, force: true });
  await waitDown(cluster, [0, 1], deadId);

  const refused = await cluster.startNode(2).then(() => undefined, (error: Error) => error);
  t.ok(refused, 'the wiped node does not start');
  t.match(refused?.message ?? '', /exited with 1/, 'it exits with a non-zero status');
  t.match(refused?.message ?? '', new RegExp(`--replace ${dead.address.replace('.', '\\.')}`), 'its message names --replace and the address');
  t.match(refused?.message ?? '', new RegExp(deadId), 'and the dead member');
  const before = await Promise.all([0, 1].map((i) => cluster.status(i)));
  t.equal(before[0]!.members.length, 3, 'the refused node never joined as a stranger');
  const movedBefore = before.map((v) => v.transfers?.total ?? 0); // node 1's own join, from the cluster's start

  // A writer keeps going through the replace: the replacement gets these as a pending replica.
  let writing = true;
  const during: string[] = [];
  const writer = (async () => {
    const client = await connect(cluster.urls.slice(0, 2));
    for (let i = 0; writing; i++) {
      const key = `during-${i}`;
      await client.put(key, `value-${key}`, { w: 2 }).then(() => during.push(key), () => undefined);
    }
    await client.close();
  })();
  const startedMs = performance.now();
  await cluster.startNode(2, { replace: dead.address });
  t.equal(cluster.nodes[2]!.id, deadId, 'the replacement took the dead member\'s id');
  await cluster.waitConverged(3, 120_000);
  const replaceMs = performance.now() - startedMs;
  await until('the replacement finished its last catch-up', async () => (await cluster.status(2)).transfers?.phase === 'idle', 60_000);
  writing = false;
  await writer;
  t.ok(during.length > 0, `${during.length} writes acknowledged during the replace`);
  t.comment(`replacing a node holding ${acked.length} keys took ${Math.round(replaceMs)} ms (start to every node seeing it normal), ${during.length} writes made meanwhile`);
  const views = await Promise.all([0, 1, 2].map((i) => cluster.status(i)));
  t.ok((views[2]!.transfers?.done ?? 0) > 0 && views[2]!.transfers?.done === views[2]!.transfers?.total, 'the replacement finished every partition');
  t.ok((views[2]!.transfers?.keys ?? 0) >= acked.length, `it streamed ${views[2]!.transfers?.keys} keys`);
  t.same([0, 1].map((i) => views[i]!.transfers?.total ?? 0), movedBefore, 'the survivors moved nothing during the replace');
  t.same(views.map((v) => v.members.filter((m) => m.status !== 'left').length), [3, 3, 3], 'the dead incarnation is gone: three members');
  t.same(views.map((v) => v.members.find((m) => m.id === deadId)?.address), [dead.address, dead.address, dead.address], 'at the replacement\'s address');

  const all = await connect(cluster.urls);
  t.teardown(() => all.close());
  const lostR2: string[] = [];
  for (const key of [...acked, ...during]) if (!(await all.get(key, { r: 2 })).values.map(text).includes(`value-${key}`)) lostR2.push(key);
  t.same(lostR2, [], 'every acknowledged write reads back at R=2');

  await Promise.all([0, 1].map((i) => cluster.kill(i)));
  await until('the replacement sees the others down', async () => (await cluster.status(2)).members.filter((m) => m.up).length === 1);
  const alone = await connect([cluster.urls[2]!]);
  t.teardown(() => alone.close());
  const lostAlone: string[] = [];
  for (const key of [...acked, ...during]) if (!(await alone.get(key, { r: 1 })).values.map(text).includes(`value-${key}`)) lostAlone.push(key);
  t.same(lostAlone, [], 'the replaced node alone serves every acknowledged write at R=1, those made during the replace included');
});

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
