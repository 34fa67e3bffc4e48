/**
 * The remote client against fake links (issue 4 §5): pipelining, failover when a node is
 * unreachable, the retry rules (gets anywhere; writes only with the same rid and only when
 * the link died before any reply; KV_INDETERMINATE surfaced, never retried), KV_TIMEOUT
 * (indeterminate for writes), error codes from replies, malformed replies, ring pushes,
 * background reconnection, the per-connection in-flight cap and queue bound, and close.
 */

import t from 'tap';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { connect, type Client, type ClientSeams } from '../lib/client/index.js';
import { computeRing } from '../lib/ring/index.js';
import type { WireMessage } from '../lib/transport/index.js';
import { FakeCluster, settle } from './fixtures/fake-client-cluster.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => Buffer.from(b).toString();

async function clientOf(cluster: FakeCluster, extra: ClientSeams & { timeoutMs?: number } = {}, seeds = [cluster.nodes[0]!.url]): Promise<Client> {
  let ridCounter = 0;
  return connect(seeds, {
    connect: cluster.connect,
    rng: new SeededRng(seed),
    ridOf: () => {
      const rid = new Uint8Array(16);
      rid[15] = ++ridCounter;
      return rid;
    },
    reconnectBaseMs: 5,
    reconnectMaxMs: 20,
    // Routing and retry rules without hedges or pings (client-hedge.test.ts covers those).
    pingIdleMs: 600_000,
    hedge: { hedgeDelayMsMin: 600_000, hedgeDelayMsMax: 600_000, hedgeDelayMsInitial: 600_000, attemptTimeoutMsMin: 600_000, attemptTimeoutMsMax: 600_000 },
    ...extra,
  });
}

/** The preference list of a key in the fake cluster's ring. */
function preferenceOf(cluster: FakeCluster, key: string): readonly string[] {
  return computeRing(cluster.ringView().members, { partitionBits: cluster.partitionBits }).replicasOfKey(utf8(key));
}

t.test('many requests are pipelined on one connection and resolve in order', async (t) => {
  const cluster = new FakeCluster(3);
  const client = await clientOf(cluster);
  const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`);
  const results = await Promise.all(keys.map((k) => client.get(k)));
  results.forEach((r, i) => t.equal(text(r.values[0]!), preferenceOf(cluster, keys[i]!)[0]));
  const ids = cluster.nodes.flatMap((n) => n.links.map((l) => n.got('get').map((m) => m.id)));
  t.ok(ids.every((list) => new Set(list).size === list.length), 'ids unique per connection');
  t.equal(cluster.connectCalls.filter((u) => u === cluster.nodes[1]!.url).length, 1, 'one connection per node');
  const batch = await client.batch([
    { type: 'put', key: 'a', value: 'x', w: 3, consistency: 'ALL' },
    { type: 'get', key: 'a', r: 1 },
    { type: 'delete', key: 'a', context: new Uint8Array([9]) },
  ]);
  t.equal(batch.length, 3);
  t.ok('found' in batch[1]!);
  const put = cluster.nodes.flatMap((n) => n.got('put'))[0]!;
  t.equal(put.w, 3);
  t.equal(put.consistency, 'ALL');
  t.equal(put.timeoutMs, undefined, 'no timeout sent unless one was asked for');
  t.equal((put.rid as Uint8Array).length, 16);
  t.same(cluster.nodes.flatMap((n) => n.got('delete'))[0]!.context, new Uint8Array([9]));
  t.equal(cluster.nodes.flatMap((n) => n.got('get')).at(-1)!.r, 1);
  await client.close();
});

t.test('an unreachable replica is skipped: the request fails over to the next one', async (t) => {
  const cluster = new FakeCluster(4);
  const client = await clientOf(cluster);
  const key = 'failover';
  const [first, second] = preferenceOf(cluster, key);
  cluster.node(first!).reachable = false;
  t.equal(text((await client.get(key)).values[0]!), second, 'get served by the second replica');
  const put = await client.put(key, 'v');
  t.equal(text(put.context), second, 'put goes to the second replica while the first is down');
  t.equal(cluster.node(first!).received.length, 0);
  await client.close();
});

t.test('a get whose link dies after sending is retried on another node', async (t) => {
  const cluster = new FakeCluster(3);
  const client = await clientOf(cluster);
  const [first, second] = preferenceOf(cluster, 'g');
  cluster.node(first!).behaviour = (m) => (m.t === 'get' ? 'die' : undefined);
  t.equal(text((await client.get('g')).values[0]!), second);
  await client.close();
});

t.test('a write whose link died before any reply is retried elsewhere with the same rid', async (t) => {
  const cluster = new FakeCluster(3);
  const client = await clientOf(cluster);
  const [first, second] = preferenceOf(cluster, 'w');
  cluster.node(first!).behaviour = (m) => (m.t === 'put' ? 'die' : undefined);
  const result = await client.put('w', 'v');
  t.equal(text(result.context), second);
  const sent = cluster.node(first!).got('put')[0]!;
  const retried = cluster.node(second!).got('put')[0]!;
  t.same(retried.rid, sent.rid, 'same rid on the retry');
  t.not(retried.id, undefined);
  await client.close();
});

t.test('a reply stands: KV_INDETERMINATE is surfaced and a write is never retried after a reply', async (t) => {
  const cluster = new FakeCluster(3);
  const client = await clientOf(cluster);
  const [first] = preferenceOf(cluster, 'i');
  cluster.node(first!).behaviour = (m) =>
    m.t === 'put' || m.t === 'delete' ? { t: 'error', id: m.id, code: 'KV_INDETERMINATE', message: 'W not reached' } : undefined;
  await t.rejects(client.put('i', 'v'), { code: 'KV_INDETERMINATE', message: 'W not reached' });
  await t.rejects(client.delete('i'), { code: 'KV_INDETERMINATE' });
  cluster.node(first!).behaviour = (m) => (m.t === 'put' ? { t: 'error', id: m.id, code: 'KV_UNAVAILABLE', message: 'too few' } : undefined);
  await t.rejects(client.put('i', 'v'), { code: 'KV_UNAVAILABLE' });
  t.equal(cluster.nodes.filter((n) => n.id !== first).flatMap((n) => [...n.got('put'), ...n.got('delete')]).length, 0, 'no retry');
  await client.close();
});

t.test('a write whose link died with no other node to retry on is KV_INDETERMINATE', async (t) => {
  const cluster = new FakeCluster(1);
  const client = await clientOf(cluster);
  cluster.nodes[0]!.behaviour = (m) => (m.t === 'put' ? 'die' : undefined);
  await t.rejects(client.put('x', 'v'), { code: 'KV_INDETERMINATE' });
  await client.close();
});

t.test('gets are retried after KV_UNAVAILABLE, KV_OVERLOADED or KV_TIMEOUT replies; other codes surface', async (t) => {
  const cluster = new FakeCluster(3);
  const client = await clientOf(cluster);
  const [first, second, third] = preferenceOf(cluster, 'r');
  cluster.node(first!).behaviour = (m) => (m.t === 'get' ? { t: 'error', id: m.id, code: 'KV_UNAVAILABLE', message: 'R' } : undefined);
  cluster.node(second!).behaviour = (m) => (m.t === 'get' ? { t: 'error', id: m.id, code: 'KV_OVERLOADED', message: 'busy' } : undefined);
  t.equal(text((await client.get('r')).values[0]!), third);
  cluster.node(second!).behaviour = (m) => (m.t === 'get' ? { t: 'error', id: m.id, code: 'KV_TIMEOUT', message: 'a replica went silent' } : undefined);
  t.equal(text((await client.get('r')).values[0]!), third, 'a coordinator whose read timed out is not the last word');
  cluster.node(third!).behaviour = (m) => (m.t === 'get' ? { t: 'error', id: m.id, code: 'KV_UNAVAILABLE', message: 'R' } : undefined);
  await t.rejects(client.get('r'), { code: 'KV_UNAVAILABLE', details: { node: third } }, 'the last error when every node failed');
  cluster.node(first!).behaviour = (m) => (m.t === 'get' ? { t: 'error', id: m.id, code: 'KV_CORRUPTION', message: 'bad block' } : undefined);
  await t.rejects(client.get('r'), { code: 'KV_CORRUPTION', message: 'bad block' });
  await client.close();
});

t.test('malformed replies are errors: bad request for reads, indeterminate for writes', async (t) => {
  const cluster = new FakeCluster(1);
  const client = await clientOf(cluster);
  const node = cluster.nodes[0]!;
  const cases: [Record<string, unknown>, string][] = [
    [{ t: 'error', code: 'KV_NEW', message: 'x' }, 'unknown error code'],
    [{ t: 'written' }, 'expected read'],
    [{ t: 'read', found: 1, values: [], context: Buffer.alloc(0) }, 'found'],
    [{ t: 'read', found: true, values: ['s'], context: Buffer.alloc(0) }, 'values'],
    [{ t: 'read', found: true, values: [], context: 'c' }, 'context'],
  ];
  for (const [reply, what] of cases) {
    node.behaviour = (m) => (m.t === 'get' ? ({ ...reply, id: m.id } as unknown as WireMessage) : undefined);
    await t.rejects(client.get('m'), { code: 'KV_BAD_REQUEST', message: new RegExp(what) });
  }
  for (const [reply, what] of [
    [{ t: 'read' }, 'expected written'],
    [{ t: 'written', context: 5 }, 'context'],
    [{ t: 'error', code: 7 }, 'unknown error code'],
  ] as const) {
    node.behaviour = (m) => (m.t === 'put' ? { ...reply, id: m.id } : undefined);
    await t.rejects(client.put('m', 'v'), { code: 'KV_INDETERMINATE', message: new RegExp(what) });
  }
  await client.close();
});

t.test('no reply within timeoutMs is KV_TIMEOUT, indeterminate for writes; a late reply is dropped', async (t) => {
  const cluster = new FakeCluster(1);
  const client = await clientOf(cluster, { timeoutMs: 30 });
  const node = cluster.nodes[0]!;
  const held: (() => void)[] = [];
  node.behaviour = (m, n) => {
    if (m.t === 'ring') return undefined;
    held.push(() => n.links[0]!.reply(n.defaultReply(m)));
    return 'silent';
  };
  await t.rejects(client.get('t', { timeoutMs: 20 }), { code: 'KV_TIMEOUT', details: { indeterminate: false } });
  await t.rejects(client.put('t', 'v'), { code: 'KV_TIMEOUT', details: { indeterminate: true } });
  t.equal(node.got('put')[0]!.timeoutMs, 30, 'the client timeout is passed to the node');
  t.equal(node.got('get')[0]!.timeoutMs, 20);
  for (const release of held) release();
  node.behaviour = undefined;
  t.equal((await client.get('t')).found, true, 'the connection still works after late replies');
  await client.close();
});

t.test('connect fails when no seed answers, and surfaces KV_AUTH', async (t) => {
  const cluster = new FakeCluster(2);
  for (const n of cluster.nodes) n.reachable = false;
  await t.rejects(clientOf(cluster, {}, cluster.nodes.map((n) => n.url)), { code: 'KV_UNAVAILABLE' });
  cluster.nodes[0]!.reachable = true;
  cluster.nodes[0]!.authRefused = true;
  await t.rejects(clientOf(cluster), { code: 'KV_AUTH' });
});

t.test('a node that refuses the ring request leaves the client routing through its seeds', async (t) => {
  const cluster = new FakeCluster(3);
  cluster.nodes[0]!.behaviour = (m) => (m.t === 'ring' ? { t: 'error', id: m.id, code: 'KV_BAD_REQUEST', message: 'no' } : undefined);
  const client = await clientOf(cluster);
  t.equal(client.ringView(), undefined);
  t.equal(text((await client.get('s')).values[0]!), 'node-0');
  cluster.nodes[0]!.behaviour = (m) => (m.t === 'ring' ? { t: 'ring', id: m.id, ring: { bogus: true } } : undefined);
  await client.refreshRing();
  t.equal(client.ringView(), undefined, 'a malformed view is ignored');
  cluster.nodes[0]!.behaviour = (m) => (m.t === 'ring' ? { t: 'read', id: m.id } : undefined);
  await t.rejects(client.refreshRing(), /unexpected read reply/);
  cluster.nodes[0]!.behaviour = undefined;
  await client.refreshRing();
  t.equal(client.ringView()!.members.length, 3);
  await client.close();
});

t.test('a pushed ring replaces the view; connections to nodes that left are closed', async (t) => {
  const cluster = new FakeCluster(4);
  const client = await clientOf(cluster);
  await Promise.all(Array.from({ length: 50 }, (_, i) => client.get(`p${i}`)));
  const leaving = cluster.nodes[3]!;
  t.equal(leaving.links.length, 1);
  leaving.status = 'left';
  cluster.nodes[0]!.links[0]!.reply({ t: 'ring', id: 0, ring: cluster.ringView() });
  t.equal(client.ringView()!.members.find((m) => m.id === 'node-3')!.status, 'left');
  t.notOk(leaving.links[0]!.isOpen, 'the link to the node that left is closed');
  cluster.nodes[0]!.links[0]!.reply({ t: 'error', id: 0, code: 'KV_BAD_REQUEST', message: 'bad frame' });
  const before = leaving.received.length;
  await Promise.all(Array.from({ length: 20 }, (_, i) => client.get(`q${i}`)));
  t.equal(leaving.received.length, before, 'nothing more goes to the node that left');
  await client.close();
});

t.test('a dead connection reconnects in the background and requests return to the primary', async (t) => {
  const cluster = new FakeCluster(3);
  const client = await clientOf(cluster);
  const [first, second] = preferenceOf(cluster, 'back');
  await client.get('back');
  const node = cluster.node(first!);
  node.reachable = false;
  node.killLinks();
  t.equal(text((await client.get('back')).values[0]!), second);
  node.reachable = true;
  for (let i = 0; i < 50 && node.links.filter((l) => l.isOpen).length === 0; i++) await settle(10);
  t.ok(node.links.some((l) => l.isOpen), 'reconnected without a request asking');
  t.equal(text((await client.get('back')).values[0]!), first);
  await client.close();
});

t.test('the in-flight cap holds requests in a bounded queue; overflow is KV_OVERLOADED', async (t) => {
  const cluster = new FakeCluster(1);
  const client = await clientOf(cluster, { inflightMax: 2, queueMax: 3 });
  const node = cluster.nodes[0]!;
  const held: (() => void)[] = [];
  node.behaviour = (m, n) => {
    held.push(() => n.links[0]!.reply(n.defaultReply(m)));
    return 'silent';
  };
  const pending = Array.from({ length: 5 }, (_, i) => client.get(`c${i}`));
  const overflow = client.get('c5');
  await t.rejects(overflow, { code: 'KV_OVERLOADED' });
  // Delivery to the fake node takes a few timer turns on a busy machine: wait for the first
  // two, then a little longer, so that a third one (the bug) would have arrived too.
  for (let i = 0; i < 100 && held.length < 2; i++) await settle(5);
  await settle(20);
  t.equal(held.length, 2, 'only two in flight');
  node.behaviour = undefined;
  held.splice(0).forEach((release) => release());
  const results = await Promise.all(pending);
  t.equal(results.length, 5);
  await client.close();
});

t.test('a send that throws is not-sent: overload from the link fails over or surfaces', async (t) => {
  const cluster = new FakeCluster(1);
  const client = await clientOf(cluster);
  cluster.nodes[0]!.sendThrows = new Error('boom');
  await t.rejects(client.put('x', 'v'), { code: 'KV_UNAVAILABLE', message: /send to/ });
  await client.close();
});

t.test('close fails what is pending with KV_CLOSED and refuses new requests', async (t) => {
  const cluster = new FakeCluster(1);
  const client = await clientOf(cluster);
  cluster.nodes[0]!.behaviour = () => 'silent';
  const pending = client.get('z');
  await settle();
  await client[Symbol.asyncDispose]();
  await t.rejects(pending, { code: 'KV_CLOSED' });
  await t.rejects(client.get('z'), { code: 'KV_CLOSED' });
  await client.close();
});
