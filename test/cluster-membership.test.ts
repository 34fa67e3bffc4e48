/**
 * Membership changes on real processes (issue 5 §3, RELIABILITY.md A5): a node joins while a
 * client writes and reads, then a node leaves, then a dead node is removed. After each change
 * no acknowledged write is lost, reads kept succeeding, and every partition's replicas on its
 * NEW preference list hold the same data (equal Merkle roots from GET /merkle) — checked
 * before any read, so read repair cannot hide a missed transfer. Replication N=2 and 64
 * partitions keep it quick while every change still moves partitions.
 */

import t, { type Test } from 'tap';
import { connect, type Client } from '../lib/client/index.js';
import { computeRing, type Ring } from '../lib/ring/index.js';
import { until as waitUntil } from './fixtures/history.js';
import { Cluster } from './fixtures/cluster.js';

const partitionBits = 6;
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const until = (what: string, check: () => Promise<boolean>, timeoutMs = 40_000): Promise<number> => waitUntil(what, check, timeoutMs);

/** A client writing fresh keys and reading acknowledged ones until stopped. */
class Load {
  readonly acked = new Map<string, string>();
  writeErrors = 0;
  readErrors: string[] = [];
  readMisses: string[] = [];
  reads = 0;
  #running = true;
  readonly #done: Promise<void>;

  constructor(
    readonly client: Client,
    prefix: string,
  ) {
    this.#done = Promise.all([this.#write(prefix), this.#write(`${prefix}b`), this.#read()]).then(() => undefined);
  }

  async #write(prefix: string): Promise<void> {
    for (let i = 0; this.#running; i++) {
      const key = `${prefix}-${i}`;
      try {
        await this.client.put(key, `v-${key}`);
        this.acked.set(key, `v-${key}`);
      } catch {
        this.writeErrors++;
      }
    }
  }

  async #read(): Promise<void> {
    for (let i = 0; this.#running; i++) {
      const keys = [...this.acked.keys()];
      if (keys.length === 0) {
        await sleep(5);
        continue;
      }
      const key = keys[(i * 7919) % keys.length]!;
      try {
        const result = await this.client.get(key);
        this.reads++;
        if (!result.values.map(text).includes(this.acked.get(key)!)) this.readMisses.push(key);
      } catch (error) {
        this.readErrors.push(`${key}: ${(error as Error).message}`);
      }
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}

/** The ring as node `viewer` sees it. */
async function ringOf(cluster: Cluster, viewer: number): Promise<Ring> {
  const status = await cluster.status(viewer);
  return computeRing(
    status.members.filter((m) => m.status !== 'left'),
    { partitionBits: status.partitionBits, replication: status.replication },
  );
}

/** Per partition, the replicas of its preference list (in the ring of `viewer`) that differ or lack it. */
async function divergentPartitions(cluster: Cluster, viewer: number, running: number[]): Promise<string[]> {
  const ring = await ringOf(cluster, viewer);
  const all = Array.from({ length: 2 ** partitionBits }, (_, p) => p).join(',');
  const roots = new Map<string, Map<number, string>>();
  for (const index of running) {
    const node = cluster.nodes[index]!;
    const response = await fetch(`http://${node.address}/merkle?partition=${all}`);
    const list = (await response.json()) as { partition: number; root: string }[];
    roots.set(node.id, new Map(list.map((r) => [r.partition, r.root])));
  }
  const problems: string[] = [];
  for (let p = 0; p < 2 ** partitionBits; p++) {
    const seen = ring.replicasOf(p).map((id) => roots.get(id)?.get(p));
    if (seen.some((root) => root === undefined) || new Set(seen).size !== 1) problems.push(`${p}: ${ring.replicasOf(p).join(',')} → ${seen.map((r) => r?.slice(0, 8)).join(',')}`);
  }
  return problems;
}

/**
 * The divergent partitions after at most one anti-entropy pass over them: a write coordinated
 * under the previous ring while the change spread may land only on the old replicas; the
 * guarantee is that every key ENDS on its new preference list, which one exchange settles.
 */
async function settledDivergence(t: Test, cluster: Cluster, viewer: number, running: number[]): Promise<string[]> {
  const first = await divergentPartitions(cluster, viewer, running);
  if (first.length === 0) return first;
  t.comment(`settling ${first.length} partition(s) written under the previous ring: ${first.join('; ')}`);
  const byAddress = new Map(cluster.nodes.map((n) => [n.id, n]));
  for (const problem of first) {
    const [partition, replicas] = problem.split(/: | → /);
    const node = replicas!.split(',').map((id) => byAddress.get(id)).find((n) => n !== undefined && running.includes(n.index));
    if (node === undefined) continue;
    await fetch(`http://${node.address}/repair?partition=${partition}`, { method: 'POST' });
    for (let i = 0; i < 100; i++) {
      const { repair } = (await cluster.status(node.index)).antiEntropy;
      if (!repair.running) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return divergentPartitions(cluster, viewer, running);
}

/** "node: partition" for every partition a running node holds keys of but does not replicate (in the ring of `viewer`). */
async function misplacedPartitions(cluster: Cluster, viewer: number, running: number[]): Promise<string[]> {
  const ring = await ringOf(cluster, viewer);
  const all = Array.from({ length: 2 ** partitionBits }, (_, p) => p).join(',');
  const misplaced: string[] = [];
  for (const index of running) {
    const node = cluster.nodes[index]!;
    const list = (await (await fetch(`http://${node.address}/merkle?partition=${all}&held=1`)).json()) as { partition: number; keys: number }[];
    for (const { partition, keys } of list) if (keys > 0 && !ring.replicasOf(partition).includes(node.id)) misplaced.push(`${index}: ${partition}`);
  }
  return misplaced;
}

async function missingKeys(client: Client, acked: Map<string, string>): Promise<string[]> {
  const lost: string[] = [];
  for (const [key, value] of acked) {
    const result = await client.get(key, { consistency: 'ALL' });
    if (!result.values.map(text).includes(value)) lost.push(key);
  }
  return lost;
}

/** Every listed node has finished its transfers (and `moved`, when given, moved at least one partition). */
async function transfersIdle(cluster: Cluster, indices: number[], moved?: number): Promise<boolean> {
  for (const index of indices) {
    const transfers = (await cluster.status(index)).transfers;
    if (transfers === undefined || transfers.phase !== 'idle' || transfers.done !== transfers.total) return false;
    if (index === moved && transfers.total === 0) return false;
  }
  return true;
}

t.test('join, leave and removenode under load keep every acknowledged write on its new replicas', async (t) => {
  // Automatic cleanup runs every second, 3 s after the last ring change (60 s by default).
  const nodeOptions = () => ({ partitionBits, antiEntropyIntervalMs: 0, autoCleanupIntervalMs: 1_000, autoCleanupSettleMs: 3_000 });
  const cluster = new Cluster({ nodes: 3, secret: 'members', replication: 2, nodeOptions });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const client = await connect(cluster.urls);
  t.teardown(() => client.close());

  // --- join
  const joinLoad = new Load(client, 'join');
  await until('some writes were acknowledged', async () => joinLoad.acked.size >= 50);
  await cluster.startNode(3);
  await cluster.waitConverged(4, 40_000);
  await until('the new node streamed and every node caught up', () => transfersIdle(cluster, [0, 1, 2, 3], 3));
  await joinLoad.stop();
  const joined = (await cluster.status(3)).transfers!;
  t.ok(joined.partitions.every((p) => p.direction === 'in'), `the new node pulled ${joined.total} partitions (${joined.keys} keys)`);
  t.same(await settledDivergence(t, cluster, 0, [0, 1, 2, 3]), [], 'after the join every partition is the same on each replica of its new preference list');
  t.same(joinLoad.readErrors, [], `reads kept succeeding during the join (${joinLoad.reads} reads, ${joinLoad.readMisses.length} stale)`);
  t.same(await missingKeys(client, joinLoad.acked), [], `no acknowledged write lost across the join (${joinLoad.acked.size} keys, ${joinLoad.writeErrors} failed writes)`);

  // --- cleanup: the old owners drop what they no longer replicate by themselves, after handing it over
  await until('every node holds only the partitions it replicates', async () => (await misplacedPartitions(cluster, 0, [0, 1, 2, 3])).length === 0, 60_000);
  let droppedPartitions = 0;
  for (const index of [0, 1, 2]) droppedPartitions += (await cluster.status(index)).cleanup!.dropped;
  t.ok(droppedPartitions > 0, `the old owners dropped ${droppedPartitions} partitions they no longer replicate`);
  t.same(await missingKeys(client, joinLoad.acked), [], 'no acknowledged write lost after the cleanup');
  t.same(await divergentPartitions(cluster, 0, [0, 1, 2, 3]), [], 'every replica still agrees after the cleanup');
  const response0 = await fetch(`http://${cluster.nodes[0]!.address}/cleanup`, { method: 'POST' });
  t.same(await response0.json(), { dropped: [], entries: 0, kept: [] }, '`ringkv cleanup` afterwards finds nothing left to drop');

  // --- leave
  const leaver = cluster.nodes[1]!;
  const leaveLoad = new Load(client, 'leave');
  await until('some writes were acknowledged', async () => leaveLoad.acked.size >= 50);
  const exited = new Promise<number | null>((resolve) => leaver.child!.once('exit', resolve));
  const response = await fetch(`http://${leaver.address}/leave`, { method: 'POST' });
  t.equal(response.status, 202, 'POST /leave is accepted');
  t.equal(await exited, 0, 'the leaving node hands off and exits 0 by itself');
  leaver.child = undefined;
  await leaveLoad.stop();
  await until('the others see it left', async () => (await cluster.status(0)).members.find((m) => m.id === leaver.id)?.status === 'left');
  await until('every node caught up', () => transfersIdle(cluster, [0, 2, 3]));
  t.same(await settledDivergence(t, cluster, 0, [0, 2, 3]), [], 'after the leave every partition is the same on each replica of its new preference list');
  await until('and every node holds only the partitions it replicates', async () => (await misplacedPartitions(cluster, 0, [0, 2, 3])).length === 0, 60_000);
  t.same(leaveLoad.readErrors, [], `reads kept succeeding during the leave (${leaveLoad.reads} reads, ${leaveLoad.readMisses.length} stale)`);
  const everything = new Map([...joinLoad.acked, ...leaveLoad.acked]);
  t.same(await missingKeys(client, everything), [], `no acknowledged write lost across the leave (${leaveLoad.acked.size} new keys)`);

  // --- removenode of a dead node
  const dead = cluster.nodes[3]!;
  await cluster.kill(3);
  await until('node 0 sees it down', async () => (await cluster.status(0)).members.some((m) => m.id === dead.id && !m.up));
  const bad = await fetch(`http://${cluster.nodes[0]!.address}/removenode`, { method: 'POST' });
  t.equal(bad.status, 400, 'removenode without an id is a bad request');
  const up = await fetch(`http://${cluster.nodes[0]!.address}/removenode?id=${cluster.nodes[2]!.id}`, { method: 'POST' });
  t.equal(up.status, 409, 'removing a live member is refused');
  const removed = await fetch(`http://${cluster.nodes[0]!.address}/removenode?id=${dead.id}`, { method: 'POST' });
  t.equal(removed.status, 202, 'removenode of the dead node is accepted');
  await until('both survivors re-replicated', () => transfersIdle(cluster, [0, 2], 0));
  t.equal((await cluster.status(2)).members.find((m) => m.id === dead.id)?.status, 'left', 'the other survivor learned of the removal');
  t.same(await settledDivergence(t, cluster, 2, [0, 2]), [], "the dead node's partitions are re-replicated on the survivors");
  t.same(await missingKeys(client, everything), [], 'no acknowledged write lost after the removal');
});
