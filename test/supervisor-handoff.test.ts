/**
 * The handoff (lib/supervisor/handoff.ts) in one process: nodes are Handoff instances over
 * in-memory stores whose rpcs call each other's `serve` directly. Join pulls every gained
 * partition and turns normal, a known owner rejoins at once, leave pushes to the new replicas
 * and calls onLeft, removenode checks its target, and stream pages are CRC-checked.
 */

import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { systemClock } from '../lib/base/clock.js';
import { silentLogger } from '../lib/base/log.js';
import type { MemberState } from '../lib/membership/index.js';
import { computeRing, partitionOfKey, type Ring } from '../lib/ring/index.js';
import type { ReplicaStore } from '../lib/store/index.js';
import type { CliIo } from '../lib/cli/cli-io.js';
import { leaveCommand, removeNodeCommand } from '../lib/cli/work-commands.js';
import type { ConnectionFlags } from '../lib/cli/kv-commands.js';
import { Handoff, JOINED_FILE_NAME } from '../lib/supervisor/handoff.js';
import { pageCrc, parsePageReply } from '../lib/supervisor/handoff-page.js';

const partitionBits = 3;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

class FakeStore {
  readonly data = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  async mergeObject(key: Uint8Array, object: Uint8Array): Promise<void> {
    this.data.set(hex(key), { key, value: object });
  }
  async scanPartition(partition: number, options: { afterKey?: Uint8Array; limit: number }) {
    const all = [...this.data.entries()].filter(([, e]) => partitionOfKey(e.key, partitionBits) === partition).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const after = options.afterKey ? hex(options.afterKey) : '';
    const rest = all.filter(([k]) => k > after).map(([, e]) => e);
    const entries = rest.slice(0, options.limit);
    return rest.length > options.limit ? { entries, nextAfterKey: entries[entries.length - 1]!.key } : { entries };
  }
}

interface World {
  members: MemberState[];
  nodes: Map<string, { store: FakeStore; handoff: Handoff; left: boolean; dir: string }>;
  down: Set<string>;
  /** Page requests to lose before answering. */
  failPages: number;
  owners: Set<string>;
  removals: { id: string; generation: number }[];
  exchanges: string[];
}

const member = (id: string, status: MemberState['status']): MemberState => ({ id, address: `${id}:1`, generation: 1, heartbeat: 1, status, statusVersion: 1, weight: 1, dc: 'dc1', rack: 'rack1' });

function ringOf(world: World): Ring | undefined {
  const members = world.members.filter((m) => m.status !== 'left' && !world.removals.some((r) => r.id === m.id));
  return members.some((m) => m.status === 'normal' || m.status === 'leaving') ? computeRing(members, { partitionBits, replication: 2 }) : undefined;
}

function addNode(t: Test, world: World, id: string, status: MemberState['status']): FakeStore {
  const store = new FakeStore();
  const dir = mkdtempSync(join(tmpdir(), 'handoff-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  world.members.push(member(id, status));
  const handoff = new Handoff({
    selfId: id,
    dir,
    store: store as unknown as ReplicaStore,
    partitionBits,
    replication: 2,
    clock: systemClock,
    logger: silentLogger,
    call: async (to, body) => {
      if ((body as { t: string }).t === 'handoff-page' && world.failPages > 0) {
        world.failPages--;
        return undefined;
      }
      const target = world.nodes.get(to);
      if (target === undefined || world.down.has(to)) return undefined;
      if ((body as { t: string }).t === 'replica-write') {
        const { key, object } = body as unknown as { key: Uint8Array; object: Uint8Array };
        await target.store.mergeObject(key, object);
        return { t: 'replica-write-reply' };
      }
      return target.handoff.serve(id, body);
    },
    exchange: async (partition, peer) => {
      world.exchanges.push(`${id}:${partition}:${peer}`);
      return { ok: true };
    },
    members: () => world.members.map((m) => (world.removals.some((r) => r.id === m.id) ? { ...m, status: 'left' as const } : m)),
    isUp: (other) => other === id || (!world.down.has(other) && world.nodes.has(other)),
    ring: () => ringOf(world),
    setStatus: (next) => {
      const at = world.members.findIndex((m) => m.id === id);
      world.members[at] = { ...world.members[at]!, status: next };
      for (const node of world.nodes.values()) node.handoff.onRingChange();
    },
    wasOwner: (other) => world.owners.has(other),
    removals: () => world.removals,
    applyRemoval: (removed, generation) => {
      if (world.removals.some((r) => r.id === removed)) return undefined;
      const before = ringOf(world);
      world.removals.push({ id: removed, generation });
      for (const node of world.nodes.values()) node.handoff.onRingChange();
      return { before, after: ringOf(world) };
    },
    onLeft: () => {
      world.nodes.get(id)!.left = true;
    },
  });
  world.nodes.set(id, { store, handoff, left: false, dir });
  handoff.onRingChange();
  t.teardown(() => handoff.close());
  return store;
}

function newWorld(): World {
  return { members: [], nodes: new Map(), down: new Set(), failPages: 0, owners: new Set(), removals: [], exchanges: [] };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error('condition not reached');
}

function fill(store: FakeStore, count: number): void {
  for (let i = 0; i < count; i++) void store.mergeObject(Buffer.from(`key-${i}`), Buffer.from(`value-${i}`));
}

/** Every node sees the ring as it is now (as onChange would have told it). */
async function settle(world: World): Promise<void> {
  for (const node of world.nodes.values()) node.handoff.onRingChange();
  await until(() => [...world.nodes.values()].every((n) => n.handoff.stats().phase === 'idle'));
}

const statusOf = (world: World, id: string): string => world.members.find((m) => m.id === id)!.status;

/** Keys each node should hold in `ring`, and which it lacks. */
function missing(world: World, ring: Ring, keys: readonly Uint8Array[]): string[] {
  const out: string[] = [];
  for (const key of keys) for (const id of ring.replicasOfKey(key)) if (!world.nodes.get(id)!.store.data.has(hex(key))) out.push(`${id}:${Buffer.from(key).toString()}`);
  return out;
}

t.test('a joining node pulls every partition it will replicate, then turns normal and catches up', async (t) => {
  const world = newWorld();
  const a = addNode(t, world, 'a', 'normal');
  fill(a, 300);
  const b = addNode(t, world, 'b', 'joining');
  world.failPages = 1; // the first page request is lost: the transfer waits and retries
  world.nodes.get('b')!.handoff.onJoinable();
  world.nodes.get('b')!.handoff.onJoinable(); // idempotent while running
  await until(() => world.nodes.get('b')!.handoff.stats().phase === 'idle' && statusOf(world, 'b') === 'normal');
  t.equal(b.data.size, 300, 'every key streamed (N=2 over two nodes: all of them)');
  const stats = world.nodes.get('b')!.handoff.stats();
  t.equal(stats.done, stats.total, `all ${stats.total} partition transfers done`);
  t.equal(stats.keys, 300);
  t.ok(existsSync(join(world.nodes.get('b')!.dir, JOINED_FILE_NAME)), 'the JOINED marker is written');
  t.ok(world.exchanges.some((e) => e.startsWith('b:')), 'catch-up exchanges ran with the old replica');
});

t.test('a node the cluster knew as an owner rejoins at once without streaming', async (t) => {
  const world = newWorld();
  fill(addNode(t, world, 'a', 'normal'), 20);
  world.owners.add('b');
  const b = addNode(t, world, 'b', 'joining');
  const hello = await world.nodes.get('a')!.handoff.serve('b', { t: 'handoff-hello', id: 'b' });
  t.match(hello, { t: 'handoff-hello-reply', owner: true }, 'the seed knew b as an owner');
  world.nodes.get('b')!.handoff.onJoinable();
  await until(() => statusOf(world, 'b') === 'normal');
  t.equal(b.data.size, 0, 'nothing streamed');
});

t.test('a join with no live owner waits and retries', async (t) => {
  const world = newWorld();
  addNode(t, world, 'b', 'joining');
  world.nodes.get('b')!.handoff.onJoinable();
  await new Promise((r) => setTimeout(r, 20));
  t.equal(statusOf(world, 'b'), 'joining', 'still joining');
});

t.test('leaving pushes every partition to its new replicas, then goes left; gainers of a removal pull', async (t) => {
  const world = newWorld();
  for (const id of ['a', 'b', 'c']) addNode(t, world, id, 'normal');
  await settle(world);
  const keys = Array.from({ length: 200 }, (_, i) => Buffer.from(`k-${i}`));
  const ring = ringOf(world)!;
  for (const key of keys) for (const id of ring.replicasOfKey(key)) void world.nodes.get(id)!.store.mergeObject(key, Buffer.from('v'));
  const leaving = world.nodes.get('c')!.handoff.leave();
  t.equal(world.nodes.get('c')!.handoff.leave(), leaving, 'a second leave joins the first');
  await leaving;
  t.equal(statusOf(world, 'c'), 'left');
  t.ok(world.nodes.get('c')!.left, 'onLeft was called');
  t.same(missing(world, ringOf(world)!, keys), [], 'every key is on its new preference list');
  t.equal(world.nodes.get('c')!.handoff.stats().phase, 'left');
});

t.test('removenode refuses unknown and live members, and re-replicates a dead one', async (t) => {
  const world = newWorld();
  for (const id of ['a', 'b', 'c']) addNode(t, world, id, 'normal');
  await settle(world);
  const keys = Array.from({ length: 200 }, (_, i) => Buffer.from(`r-${i}`));
  const ring = ringOf(world)!;
  for (const key of keys) for (const id of ring.replicasOfKey(key)) void world.nodes.get(id)!.store.mergeObject(key, Buffer.from('v'));
  const a = world.nodes.get('a')!.handoff;
  await t.rejects(a.removeNode('zz'), RangeError, 'an unknown id is a RangeError');
  await t.rejects(a.removeNode('b'), { code: 'KV_UNAVAILABLE' }, 'a live member cannot be removed');
  world.down.add('c');
  const result = await a.removeNode('c');
  t.same(result, { removed: 'c', told: ['b'] }, 'the other live member is told');
  await until(() => ['a', 'b'].every((id) => world.nodes.get(id)!.handoff.stats().phase === 'idle'));
  t.same(missing(world, ringOf(world)!, keys), [], "the dead node's partitions are on their new replicas");
  const hello = (await a.serve('x', { t: 'handoff-hello', id: 'x' })) as { removals: unknown[] };
  t.same(hello.removals, [{ id: 'c', generation: 1 }], 'hello carries the removals to later joiners');
  t.match(await a.serve('x', { t: 'handoff-remove', id: 'a', generation: 1 }), { t: 'handoff-error' }, 'a peer cannot remove us');
  t.match(await a.serve('x', { t: 'handoff-ring' }), { t: 'handoff-ring-reply', version: ringOf(world)!.version });
});

t.test('leave is refused unless normal', async (t) => {
  const world = newWorld();
  addNode(t, world, 'a', 'joining');
  t.throws(() => world.nodes.get('a')!.handoff.leave(), { code: 'KV_UNAVAILABLE' });
});

t.test('stream pages are bounded, CRC-checked, and malformed requests are refused', async (t) => {
  const world = newWorld();
  const a = addNode(t, world, 'a', 'normal');
  const big = new Uint8Array(3 * 1024 * 1024);
  const keys = Array.from({ length: 40 }, (_, i) => Buffer.from(`big-${i}`));
  const partition = partitionOfKey(keys[0]!, partitionBits);
  const same = keys.filter((k) => partitionOfKey(k, partitionBits) === partition).slice(0, 2);
  for (const key of same) await a.mergeObject(key, big);
  const handoff = world.nodes.get('a')!.handoff;
  const reply = await handoff.serve('x', { t: 'handoff-page', partition, limit: 10 });
  const page = parsePageReply(reply);
  t.equal(page.entries.length, 1, 'a page stops at its byte bound');
  t.ok(page.nextAfterKey, 'and says where to resume');
  const rest = parsePageReply(await handoff.serve('x', { t: 'handoff-page', partition, afterKey: page.nextAfterKey }));
  t.equal(rest.entries.length, 1);
  t.equal(rest.nextAfterKey, undefined);

  const entries = [{ key: Buffer.from('k'), object: Buffer.from('v') }];
  t.equal(pageCrc(entries), pageCrc([{ key: Buffer.from('k'), object: Buffer.from('v') }]), 'crc is deterministic');
  const corrupt = { t: 'handoff-page-reply', entries, crc: pageCrc(entries) ^ 1 };
  t.throws(() => parsePageReply(corrupt), { code: 'KV_CORRUPTION' }, 'a CRC mismatch is corruption');
  t.throws(() => parsePageReply(undefined), { code: 'KV_UNAVAILABLE' });
  t.throws(() => parsePageReply(null), { code: 'KV_UNAVAILABLE' });
  t.throws(() => parsePageReply({ t: 'handoff-error', code: 'X', message: 'no' }), { code: 'KV_UNAVAILABLE' });
  t.throws(() => parsePageReply({ t: 'other' }), { code: 'KV_BAD_REQUEST' });
  t.throws(() => parsePageReply({ t: 'handoff-page-reply', entries: [{ key: 'k' }], crc: 0 }), { code: 'KV_BAD_REQUEST' });
  t.throws(() => parsePageReply({ t: 'handoff-page-reply', entries: [], crc: 0, nextAfterKey: 'x' }), { code: 'KV_BAD_REQUEST' });
  t.throws(() => parsePageReply({ t: 'handoff-page-reply', entries: new Array(10_000).fill(entries[0]), crc: 0 }), { code: 'KV_TOO_LARGE' });
  t.match(await handoff.serve('x', { t: 'handoff-page', partition: 999 }), { t: 'handoff-error' });
  t.match(await handoff.serve('x', { t: 'handoff-page', partition: 0, afterKey: 'x' }), { t: 'handoff-error' });
  t.match(await handoff.serve('x', { t: 'nope' }), { t: 'handoff-error' });
});

t.test('ringkv leave and removenode POST to the node and report progress', async (t) => {
  const posted: string[] = [];
  const out: string[] = [];
  let polls = 0;
  const transfers = (phase: string) => ({ phase, done: 1, total: 2, keys: 5, bytes: 50, partitions: [] });
  const io = {
    out: (s: string) => out.push(s),
    err: () => undefined,
    sleep: async () => undefined,
    startRepair: async (url: string) => void posted.push(url),
    fetchStatus: async () => {
      polls++;
      if (polls === 1) return { transfers: transfers('leaving') };
      if (polls === 2) return { transfers: transfers('left') };
      throw new Error('gone');
    },
  } as unknown as CliIo;
  const conn = { url: 'ws://127.0.0.1:7070' } as ConnectionFlags;
  t.equal(await leaveCommand(io, conn), 0);
  t.equal(await removeNodeCommand(io, conn, 'n-dead'), 0);
  t.same(posted, ['http://127.0.0.1:7070/leave', 'http://127.0.0.1:7070/removenode?id=n-dead']);
  t.match(out.join(''), /left the cluster[\s\S]*removed n-dead/);
  polls = 10;
  t.equal(await leaveCommand(io, conn), 0, 'a node already gone counts as left');
});
