/**
 * The client's fast failover against fake links (tail at scale): a node that stops answering
 * with its connection open costs a request one hedge delay, not its budget; hedged writes keep
 * their rid and carry their attempt number; a write error stands only once no other attempt
 * is in flight; silent nodes become suspect (attempt timeout, also after a hedge won, or an
 * unanswered ping), are routed last and never hedged to, and recover on their next message; a
 * read with no node left to try keeps waiting to its budget, and past its attempt timeout it
 * tries a suspect node rather than wait. Waits poll for conditions; no
 * timing is asserted.
 */

import t from 'tap';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { connect, type Client, type ClientSeams } from '../lib/client/index.js';
import { computeRing } from '../lib/ring/index.js';
import { checkClientOptions } from '../lib/client/request-options.js';
import { FakeCluster, type FakeNode, settle } from './fixtures/fake-client-cluster.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => Buffer.from(b).toString();

async function clientOf(cluster: FakeCluster, extra: ClientSeams & { timeoutMs?: number; hedgeWrites?: boolean } = {}): Promise<Client> {
  return connect(
    cluster.nodes.map((n) => n.url),
    { connect: cluster.connect, rng: new SeededRng(seed), reconnectBaseMs: 5, reconnectMaxMs: 20, hedgeWrites: true, ...extra },
  );
}

function preferenceOf(cluster: FakeCluster, key: string): readonly string[] {
  return computeRing(cluster.ringView().members, { partitionBits: cluster.partitionBits }).replicasOfKey(utf8(key));
}

/** Makes a node silent for the given tags (its links stay open). */
function silence(node: FakeNode, ...tags: string[]): void {
  node.behaviour = (message) => (tags.includes(message.t) ? 'silent' : undefined);
}

const suspect = (client: Client, node: FakeNode): boolean => client.nodeHealth().some((h) => h.url === node.url && h.suspect);

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(5);
  }
}

t.test('a silent replica costs a request one hedge: gets and puts are answered by the next node, and it becomes suspect', async (t) => {
  const cluster = new FakeCluster(3);
  // No pings here: the suspicion must come from the attempts themselves.
  const client = await clientOf(cluster, { timeoutMs: 30_000, pingIdleMs: 600_000 });
  t.teardown(() => client.close());
  const key = 'hedge';
  const [first, second] = preferenceOf(cluster, key).map((id) => cluster.node(id));
  silence(first!, 'get', 'put');
  t.equal(text((await client.get(key)).values[0]!), second!.id, 'the get is answered by the second replica');
  const put = await client.put(key, 'v');
  t.equal(text(put.context), second!.id, 'so is the put');
  const [firstCopy] = first!.got('put');
  const [hedge] = second!.got('put');
  t.same(hedge!.rid, firstCopy!.rid, 'the hedge carries the same rid');
  t.equal(firstCopy!.attempt, undefined, 'the first attempt carries no attempt number');
  t.equal(hedge!.attempt, 1, 'the hedge says it is attempt 1');

  await until('the silent node is suspect (its abandoned attempts timed out)', () => suspect(client, first!));
  const health = client.nodeHealth().find((h) => h.url === second!.url)!;
  t.ok(health.readHedgeDelayMs > 0 && health.writeHedgeDelayMs > 0, `hedge delays are reported (${health.readHedgeDelayMs}/${health.writeHedgeDelayMs} ms)`);
  const gets = first!.got('get').length;
  for (let i = 0; i < 5; i++) await client.get(key);
  t.equal(first!.got('get').length, gets, 'new requests go to the others first');
});

t.test('write outcomes with two attempts in flight: an error stands only when nothing else is in flight', async (t) => {
  const cluster = new FakeCluster(3);
  const client = await clientOf(cluster, { timeoutMs: 30_000, pingIdleMs: 600_000 });
  t.teardown(() => client.close());
  const key = 'outcomes';
  const [first, second, third] = preferenceOf(cluster, key).map((id) => cluster.node(id));
  // The first node answers late but well; the hedge is refused: the late success wins.
  let release: (() => void) | undefined;
  first!.behaviour = (message, node) => {
    if (message.t !== 'put') return undefined;
    const link = node.links.at(-1)!;
    release = () => link.reply({ t: 'written', id: message.id, context: Buffer.from('late') });
    return 'silent';
  };
  const refuse = (message: { t: string; id?: unknown }): ReturnType<NonNullable<FakeNode['behaviour']>> =>
    message.t === 'put' ? { t: 'error', id: message.id, code: 'KV_OVERLOADED', message: 'busy' } : undefined;
  second!.behaviour = refuse;
  third!.behaviour = refuse;
  const pending = client.put(key, 'v');
  await until('the hedge was refused', () => second!.got('put').length === 1);
  await settle(20);
  t.equal(third!.got('put').length, 0, 'no new attempt after a refusal');
  release!();
  t.equal(text((await pending).context), 'late', 'the refusal of the hedge did not stand while the first attempt was in flight');

  // The hedge is refused, then the first attempt's link dies after sending: indeterminate.
  const key2 = `${key}-2`;
  const [p, q] = preferenceOf(cluster, key2).map((id) => cluster.node(id));
  silence(p!, 'put');
  q!.behaviour = refuse;
  const lost = client.put(key2, 'w');
  await until('the hedge was refused', () => q!.got('put').length === 1);
  p!.killLinks();
  await t.rejects(lost, { code: 'KV_INDETERMINATE' }, 'a definite refusal is not definite when another attempt may have applied the write');

  // Every attempt refused, nothing lost: the refusal stands.
  for (const node of cluster.nodes) node.behaviour = refuse;
  await t.rejects(client.put(`${key}-3`, 'x'), { code: 'KV_OVERLOADED' }, 'a refusal stands once no attempt is in flight');
});

t.test('a read waits for silent nodes when no trusted one is left; a hedge never goes to a suspect node', async (t) => {
  const cluster = new FakeCluster(3);
  const client = await clientOf(cluster, { timeoutMs: 60_000, pingIdleMs: 600_000 });
  t.teardown(() => client.close());
  for (const node of cluster.nodes) silence(node, 'get');
  await t.rejects(client.get('abandon', { timeoutMs: 3_000 }), { code: 'KV_TIMEOUT', message: /got no reply within 3000 ms/ }, 'every node silent: the read waits to its budget');
  t.ok(cluster.nodes.every((n) => n.got('get').length === 1), 'each node was tried once');
  t.ok(cluster.nodes.every((n) => suspect(client, n)), 'and each is suspect now');

  // One node answers again (it is trusted again); the other two stay silent and suspect.
  const [a] = cluster.nodes;
  a!.behaviour = undefined;
  await client.refreshRing();
  await until('a answered and is trusted again', () => !suspect(client, a!));
  // a answers slowly: past its hedge delay, within its attempt timeout.
  a!.behaviour = (message, node) => {
    if (message.t !== 'get') return undefined;
    const link = node.links.at(-1)!;
    setTimeout(() => link.reply(node.defaultReply(message)), 250);
    return 'silent';
  };
  const others = (): number => cluster.nodes.slice(1).reduce((n, node) => n + node.got('get').length, 0);
  const before = others();
  t.equal(text((await client.get('abandon-2')).values[0]!), a!.id, 'the slow healthy node answers');
  t.equal(others(), before, 'no hedge went to the suspect nodes meanwhile');
});

t.test('a read past its attempt timeout with only suspect nodes left tries a suspect one rather than wait', async (t) => {
  const cluster = new FakeCluster(3);
  const client = await clientOf(cluster, { timeoutMs: 60_000, pingIdleMs: 600_000 });
  t.teardown(() => client.close());
  for (const node of cluster.nodes) silence(node, 'get');
  await t.rejects(client.get('suspects', { timeoutMs: 3_000 }), { code: 'KV_TIMEOUT' }, 'every node silent: every node becomes suspect');
  t.ok(cluster.nodes.every((n) => suspect(client, n)), 'all three are suspect');
  // Two answer again but stay suspect (no message from them yet); the first of the key's route stays silent.
  const [a] = cluster.nodes;
  let key = 'suspects-0';
  for (let i = 1; preferenceOf(cluster, key)[0] !== a!.id; i++) key = `suspects-${i}`;
  for (const node of cluster.nodes.slice(1)) node.behaviour = undefined;
  const before = a!.got('get').length;
  const read = await client.get(key, { timeoutMs: 20_000 });
  t.ok(a!.got('get').length > before, 'the silent node was tried first');
  t.not(text(read.values[0]!), a!.id, 'a suspect node that answers took the read, well within the budget');
});

t.test('a ping without an answer makes a node suspect; any message clears it', async (t) => {
  const cluster = new FakeCluster(2);
  const client = await clientOf(cluster, { timeoutMs: 30_000, pingIdleMs: 20, pingTimeoutMs: 40 });
  t.teardown(() => client.close());
  const node = cluster.nodes[1]!;
  const key = Array.from({ length: 200 }, (_, i) => `k${i}`).find((k) => preferenceOf(cluster, k)[0] === node.id)!;
  await client.get(key);
  silence(node, 'ping');
  await until('the silent node is suspect', () => suspect(client, node));
  const before = node.got('get').length;
  await client.get(key);
  t.equal(node.got('get').length, before, 'the suspect node is not asked first even where it is the first replica');
  node.behaviour = undefined;
  await until('it answers a ping and is trusted again', () => !suspect(client, node));
  await client.get(key);
  t.equal(node.got('get').length, before + 1, 'answering again, it is first again');
});

t.test('writes are not hedged unless asked: a slow write waits for its attempt timeout, then fails over with its rid', async (t) => {
  const cluster = new FakeCluster(3);
  // Short hedge delay, long enough attempt timeout to see that no hedge went out meanwhile.
  const hedge = { hedgeDelayMsMin: 10, hedgeDelayMsMax: 10, hedgeDelayMsInitial: 10, attemptTimeoutMsMin: 400, attemptTimeoutMsMax: 400 };
  const client = await clientOf(cluster, { timeoutMs: 30_000, pingIdleMs: 600_000, hedge, hedgeWrites: false });
  t.teardown(() => client.close());
  const key = 'unhedged-write';
  const [first, second] = preferenceOf(cluster, key).map((id) => cluster.node(id));
  silence(first!, 'put');
  const pending = client.put(key, 'v');
  await until('the write reached its first node', () => first!.got('put').length === 1);
  await settle(150);
  t.equal(second!.got('put').length, 0, 'no hedge within the attempt timeout');
  t.equal(text((await pending).context), second!.id, 'past the attempt timeout the second replica took the write');
  t.same(second!.got('put')[0]!.rid, first!.got('put')[0]!.rid, 'with the same rid');
  t.throws(() => checkClientOptions({ hedgeWrites: 'yes' }), TypeError, 'hedgeWrites must be a boolean');
});

t.test('a write whose node stays silent past its attempt timeout fails over even without a hedge', async (t) => {
  const cluster = new FakeCluster(3);
  // Hedges far off; attempt timeouts short: only the failover can save the write.
  const hedge = { hedgeDelayMsMin: 60_000, hedgeDelayMsMax: 60_000, hedgeDelayMsInitial: 60_000, attemptTimeoutMsMin: 100, attemptTimeoutMsMax: 200 };
  const client = await clientOf(cluster, { timeoutMs: 30_000, pingIdleMs: 600_000, hedge });
  t.teardown(() => client.close());
  const key = 'failover-write';
  const [first, second] = preferenceOf(cluster, key).map((id) => cluster.node(id));
  silence(first!, 'put');
  t.equal(text((await client.put(key, 'v')).context), second!.id, 'the second replica took the write');
  t.ok(suspect(client, first!), 'the silent one is suspect');
  t.same(second!.got('put')[0]!.rid, first!.got('put')[0]!.rid, 'with the same rid');
});
