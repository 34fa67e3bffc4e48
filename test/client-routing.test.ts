/**
 * The remote client's arguments and routing (issue 4 §5): TypeError/RangeError naming the
 * field before anything is sent, KV_TOO_LARGE like the embedded Store, node URLs, RingView
 * checks, and that each request goes straight to the first up replica of its key's
 * preference list as lib/ring computes it (a property test; prints its seed).
 */

import t from 'tap';
import fc from 'fast-check';
import { limits } from '../lib/base/limits.js';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { SeededRng } from '../lib/base/rng.js';
import { checkRingView, clusterViewOf, connect, nodeUrlOf, routeKey, type Client } from '../lib/client/index.js';
import { computeRing, partitionOfToken, preferenceList, tokenOf } from '../lib/ring/index.js';
import { FakeCluster } from './fixtures/fake-client-cluster.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

async function clientOf(cluster: FakeCluster, extra: Record<string, unknown> = {}): Promise<Client> {
  // Routing without hedges or pings (client-hedge.test.ts covers those).
  const quiet = { hedgeDelayMsMin: 600_000, hedgeDelayMsMax: 600_000, hedgeDelayMsInitial: 600_000, attemptTimeoutMsMin: 600_000, attemptTimeoutMsMax: 600_000 };
  return connect([cluster.nodes[0]!.url], { connect: cluster.connect, rng: new SeededRng(seed), pingIdleMs: 600_000, hedge: quiet, ...extra });
}

t.test('argument mistakes throw TypeError or RangeError naming the field, before anything is sent', async (t) => {
  const cluster = new FakeCluster(3);
  const client = await clientOf(cluster);
  const bad = client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  await t.rejects(bad.get!(42), new TypeError('key must be a string or a Uint8Array'));
  await t.rejects(bad.put!('k', 42), new TypeError('value must be a Uint8Array or a string'));
  await t.rejects(bad.get!('k', 'fast'), new TypeError('options must be an object'));
  await t.rejects(client.get('k', { r: 0 }), RangeError);
  await t.rejects(client.get('k', { r: 0 }), /options\.r/);
  await t.rejects(client.put('k', 'v', { w: 1.5 }), /options\.w/);
  await t.rejects(bad.get!('k', { consistency: 'MOST' }), /options\.consistency must be one of ONE/);
  await t.rejects(bad.get!('k', { consistency: 3 }), new TypeError('options.consistency must be a string'));
  await t.rejects(bad.put!('k', 'v', { context: 'abc' }), new TypeError('options.context must be a Uint8Array'));
  await t.rejects(client.get('k', { timeoutMs: 0 }), /options\.timeoutMs/);
  await t.rejects(bad.get!('k', { timeoutMs: '5' }), new TypeError('options.timeoutMs must be a number'));
  await t.rejects(client.get('x'.repeat(limits.keyBytesMax + 1)), { code: 'KV_TOO_LARGE' });
  await t.rejects(client.put('k', new Uint8Array(limits.valueBytesMax + 1)), { code: 'KV_TOO_LARGE' });
  await t.rejects(bad.batch!('ops'), new TypeError('ops must be an array'));
  await t.rejects(bad.batch!([{ type: 'get', key: 'a' }, null]), new TypeError('ops[1] must be an object'));
  await t.rejects(bad.batch!([{ type: 'scan', key: 'a' }]), /ops\[0\]\.type/);
  await t.rejects(bad.batch!([{ type: 'put', key: 'a', value: 1 }]), new TypeError('ops[0].value must be a Uint8Array or a string'));
  await t.rejects(bad.batch!([{ type: 'get', key: 1 }]), new TypeError('ops[0].key must be a string or a Uint8Array'));
  await t.rejects(bad.batch!([{ type: 'get', key: 'a', r: 99 }]), /ops\[0\]\.r/);
  await t.rejects(client.batch(Array.from({ length: limits.batchOpsMax + 1 }, () => ({ type: 'get' as const, key: 'a' }))), { code: 'KV_TOO_LARGE' });
  const big = new Uint8Array(limits.valueBytesMax);
  const ops = Array.from({ length: Math.ceil(limits.batchBytesMax / big.length) + 1 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: big }));
  await t.rejects(client.batch(ops), { code: 'KV_TOO_LARGE' });
  t.same(
    cluster.nodes.flatMap((n) => n.received.filter((m) => m.t !== 'ring')),
    [],
    'nothing but the ring request was sent',
  );
  await client.close();
});

t.test('connect checks its urls and options', async (t) => {
  const cluster = new FakeCluster(1);
  const call = connect as unknown as (...args: unknown[]) => Promise<unknown>;
  await t.rejects(call([]), new RangeError('urls must name at least one node'));
  await t.rejects(call(7), new TypeError('urls must be a string or an array of strings'));
  await t.rejects(call(['ws://a:1', 3]), new TypeError('urls[1] must be a string'));
  await t.rejects(call('http://a:1'), /urls must be ws:\/\/host:port/);
  await t.rejects(call(['ws://']), /urls\[0\] must be/);
  await t.rejects(call('a:1', 'opts'), new TypeError('options must be an object'));
  await t.rejects(call('a:1', { token: 1 }), new TypeError('options.token must be a string'));
  await t.rejects(call('a:1', { caFile: '' }), new TypeError('options.caFile must be a non-empty string'));
  await t.rejects(call('a:1', { timeoutMs: -1 }), /options\.timeoutMs/);
  await t.rejects(call(Array.from({ length: limits.membersMax + 1 }, (_, i) => `h:${i + 1}`)), RangeError);
  t.equal(cluster.connectCalls.length, 0);
});

t.test('node urls: host:port becomes ws://, paths and slashes are dropped', async (t) => {
  t.equal(nodeUrlOf('127.0.0.1:7070', 'url'), 'ws://127.0.0.1:7070');
  t.equal(nodeUrlOf('wss://db.example:443/client', 'url'), 'wss://db.example');
  t.equal(nodeUrlOf('ws://[::1]:7071/', 'url'), 'ws://[::1]:7071');
  t.throws(() => nodeUrlOf('ftp://x:1', 'url'), RangeError);
  t.throws(() => nodeUrlOf('ws://a b:1', 'url'), RangeError);
});

t.test('a RingView from the wire is checked field by field', async (t) => {
  const cluster = new FakeCluster(3);
  const good = cluster.ringView();
  t.equal(checkRingView(good).members.length, 3);
  t.throws(() => checkRingView(null), new TypeError('ring must be an object'));
  t.throws(() => checkRingView({ ...good, partitionBits: '6' }), new TypeError('ring.partitionBits must be a number'));
  t.throws(() => checkRingView({ ...good, replication: null }), /ring\.replication/);
  t.throws(() => checkRingView({ ...good, members: {} }), new TypeError('ring.members must be an array'));
  const member = good.members[1]!;
  const withMember = (patch: Record<string, unknown>) => ({ ...good, members: [good.members[0], { ...member, ...patch }] });
  t.throws(() => checkRingView(withMember({ id: 1 })), new TypeError('ring.members[1].id must be a string'));
  t.throws(() => checkRingView(withMember({ dc: 1 })), /members\[1\]\.dc/);
  t.throws(() => checkRingView(withMember({ rack: 1 })), /members\[1\]\.rack/);
  t.throws(() => checkRingView(withMember({ weight: '1' })), /members\[1\]\.weight/);
  t.throws(() => checkRingView(withMember({ up: 'yes' })), /members\[1\]\.up/);
  t.throws(() => checkRingView(withMember({ status: 'gone' })), /members\[1\]\.status/);
  t.throws(() => checkRingView(withMember({ url: 5 })), /members\[1\]\.url/);
  t.throws(() => checkRingView(withMember({ url: 'http://x:1' })), RangeError);
  t.throws(() => checkRingView({ ...good, members: [1] }), new TypeError('ring.members[0] must be an object'));
  t.throws(() => checkRingView({ ...good, members: Array.from({ length: limits.membersMax + 1 }, () => member) }), RangeError);
  t.throws(() => clusterViewOf({ ...good, partitionBits: 99 }), RangeError, 'lib/ring rejects what it cannot place');
});

t.test('a refresh with the same placement reuses the computed ring', async (t) => {
  const cluster = new FakeCluster(4);
  const first = clusterViewOf(cluster.ringView());
  cluster.nodes[2]!.up = false;
  const second = clusterViewOf(cluster.ringView(), first);
  t.equal(second.ring, first.ring, 'only up changed: same ring object');
  t.equal(second.byId.get('node-2')!.up, false);
  cluster.nodes[3]!.status = 'left';
  const third = clusterViewOf(cluster.ringView(), second);
  t.not(third.ring, first.ring, 'a member left: ring recomputed');
});

t.test('routing order: up replicas in preference order, other up members, down members, then known-down links', async (t) => {
  const cluster = new FakeCluster(5);
  cluster.nodes[4]!.status = 'left';
  const view = clusterViewOf(cluster.ringView());
  const key = utf8('routing');
  const preference = view.ring.replicasOfKey(key);
  t.same(routeKey(view, key, () => false).slice(0, 3), preference);
  t.notOk(routeKey(view, key, () => false).includes('node-4'), 'left members are never tried');
  cluster.nodes.find((n) => n.id === preference[0])!.up = false;
  const view2 = clusterViewOf(cluster.ringView(), view);
  const order = routeKey(view2, key, (id) => id === preference[1]);
  t.same(order.slice(0, 1), [preference[2]]);
  t.same(order.slice(-2), [preference[0], preference[1]], 'marked down, then known down, last');
});

t.test('every request goes straight to the first up replica of its preference list (property)', async (t) => {
  const cluster = new FakeCluster(5);
  const client = await clientOf(cluster);
  const members = cluster.ringView().members;
  const ring = computeRing(members, { partitionBits: cluster.partitionBits });
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.integer({ min: -1, max: 4 }), async (key, downIndex) => {
      for (const node of cluster.nodes) node.up = node.id !== `node-${downIndex}`;
      await client.refreshRing();
      const expected = preferenceList(ring, partitionOfToken(tokenOf(key), cluster.partitionBits), cluster.replication).find(
        (id) => id !== `node-${downIndex}`,
      );
      const result = await client.get(key);
      return Buffer.from(result.values[0]!).toString() === expected;
    }),
    { seed, numRuns: 60 },
  );
  t.pass('every request reached the first up replica');
  await client.close();
});

t.test('with localDc the client tries the nodes of its datacenter first, others only after them', async (t) => {
  const cluster = new FakeCluster(6);
  const view = clusterViewOf({ ...cluster.ringView(), members: cluster.ringView().members.map((m, i) => ({ ...m, dc: i % 2 === 0 ? 'dc1' : 'dc2' })) });
  for (const name of ['a', 'b', 'c', 'd', 'e']) {
    const key = utf8(`dc-${name}`);
    const order = routeKey(view, key, () => false, 'dc2');
    const dcs = order.map((id) => view.byId.get(id)!.dc);
    t.same(dcs, [...dcs].sort((x, y) => (x === 'dc2' ? 0 : 1) - (y === 'dc2' ? 0 : 1)), `${name}: every dc2 node before any dc1 node`);
    const plain = routeKey(view, key, () => false);
    t.same(order.filter((id) => view.byId.get(id)!.dc === 'dc2'), plain.filter((id) => view.byId.get(id)!.dc === 'dc2'), 'same order within the datacenter');
  }
  await t.rejects(connect(['ws://127.0.0.1:1'], { localDc: '' }), TypeError);
});
