/**
 * lib/replication's pure parts: consistency levels against plain and per-datacenter
 * replication, the quorum tally, the replica RPC validators against hostile input, the rid
 * table's bounds and expiry, and the read merge with its repairs.
 */
import t from 'tap';
import fc from 'fast-check';
import { limits } from '../lib/base/limits.js';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { applyClientWrite, encodeObject, readView, type StoredObject } from '../lib/causality/index.js';
import {
  canMeet,
  contextBytesMax,
  forwardReply,
  parseReplicaReply,
  parseReplicaRequest,
  QuorumTally,
  ReadMerge,
  replicaError,
  resolveRequirement,
  RidTable,
  strictTargets,
  type Placement,
  type ReplicaInfo,
} from '../lib/replication/index.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);

const node = (id: string, dc = 'dc1', up = true): ReplicaInfo => ({ id, dc, up });
const plain = (n: number, count = n): Placement => ({ replication: n, replicas: Array.from({ length: count }, (_, i) => node(`n${i}`)) });
const twoDcs: Placement = {
  replication: { dc1: 3, dc2: 2 },
  replicas: [node('a'), node('x', 'dc2'), node('b'), node('c'), node('y', 'dc2')],
};

t.test('consistency levels resolve to totals and per-datacenter counts', async (t) => {
  const of = (field: 'r' | 'w', request: { count?: unknown; consistency?: unknown }, placement: Placement, dc = 'dc1') => {
    const { total, perDc, underReplicated, level } = resolveRequirement(field, request, placement, dc);
    return { total, perDc: Object.fromEntries(perDc), underReplicated, level };
  };
  t.same(of('r', {}, plain(3)), { total: 2, perDc: {}, underReplicated: false, level: 'default' }, 'default R=2 with N=3');
  t.same(of('w', {}, plain(3)).total, 2, 'default W=2');
  t.same(of('w', {}, plain(3, 1)), { total: 1, perDc: {}, underReplicated: true, level: 'default' }, 'one node: clamped, under-replicated');
  const levels = ['ONE', 'TWO', 'QUORUM', 'ALL', 'LOCAL_QUORUM', 'EACH_QUORUM'];
  t.same(levels.map((consistency) => of('r', { consistency }, plain(3)).total), [1, 2, 2, 3, 2, 2], 'N=3');
  t.same(levels.map((consistency) => of('r', { consistency }, plain(5)).total), [1, 2, 3, 5, 3, 3], 'N=5');
  t.same(of('w', { consistency: 'TWO' }, plain(3, 1)).total, 1, 'TWO capped at the nodes that exist');
  t.same(of('w', { count: 3, consistency: 'ONE' }, plain(3)), { total: 3, perDc: {}, underReplicated: false, level: 'w=3' }, 'explicit w wins');
  t.same(of('w', { count: 3 }, plain(3, 2)).total, 2, 'explicit w capped at the nodes that exist');
  t.same(of('w', { consistency: 'QUORUM' }, twoDcs), { total: 3, perDc: {}, underReplicated: false, level: 'QUORUM' }, 'QUORUM over all five');
  t.same(of('w', { consistency: 'LOCAL_QUORUM' }, twoDcs), { total: 2, perDc: { dc1: 2 }, underReplicated: false, level: 'LOCAL_QUORUM' });
  t.same(of('w', { consistency: 'LOCAL_QUORUM' }, twoDcs, 'dc2').perDc, { dc2: 2 }, 'LOCAL refers to the given datacenter');
  t.same(of('w', { consistency: 'EACH_QUORUM' }, twoDcs), { total: 4, perDc: { dc1: 2, dc2: 2 }, underReplicated: false, level: 'EACH_QUORUM' });
  t.same(of('r', { consistency: 'ALL' }, twoDcs).total, 5);
  const shortDc2: Placement = { replication: { dc1: 3, dc2: 2 }, replicas: twoDcs.replicas.slice(0, 4) };
  t.same(of('w', { consistency: 'EACH_QUORUM' }, shortDc2), { total: 3, perDc: { dc1: 2, dc2: 1 }, underReplicated: true, level: 'EACH_QUORUM' });
});

t.test('invalid levels and counts throw TypeError or RangeError naming the field', async (t) => {
  const resolve = (request: { count?: unknown; consistency?: unknown }, placement = plain(3), dc = 'dc1') => () => resolveRequirement('w', request, placement, dc);
  t.throws(resolve({ count: 4 }), { name: 'RangeError', message: /^w must be an integer in \[1, 3\]/ });
  t.throws(resolve({ count: 0 }), RangeError);
  t.throws(resolve({ count: 1.5 }), RangeError);
  t.throws(resolve({ count: '2' }), { name: 'TypeError', message: /^w must be a number/ });
  t.throws(resolve({ consistency: 'SERIAL' }), { name: 'RangeError', message: /^consistency must be one of/ });
  t.throws(resolve({ consistency: 2 }), { name: 'TypeError', message: /^consistency/ });
  t.throws(resolve({ consistency: 'LOCAL_QUORUM' }, twoDcs, 'dc3'), { name: 'RangeError', message: /LOCAL_QUORUM: datacenter "dc3"/ });
  t.throws(resolve({}, { replication: 3, replicas: [] }), { message: /preference list is empty/ });
  t.throws(() => resolveRequirement('r', { count: 6 }, twoDcs, 'dc1'), { message: /^r must be an integer in \[1, 5\]/ });
});

t.test('the quorum tally counts each target once, per datacenter, and knows when W is out of reach', async (t) => {
  const requirement = resolveRequirement('w', { consistency: 'EACH_QUORUM' }, twoDcs, 'dc1');
  const tally = new QuorumTally(requirement, [...twoDcs.replicas, node('a')]);
  t.equal(tally.pendingCount, 5, 'a repeated target counts once');
  t.ok(tally.ack('a') && tally.ack('b') && tally.ack('c'));
  t.notOk(tally.ack('a'), 'a duplicate ack is ignored');
  t.notOk(tally.ack('stranger'), 'a non-target is ignored');
  t.notOk(tally.fail('b'), 'an acked target cannot fail');
  t.equal(tally.acked.size, 3);
  t.notOk(tally.met, 'three acks in dc1 do not meet EACH_QUORUM');
  t.ok(tally.possible);
  t.ok(tally.fail('x'));
  t.notOk(tally.possible, 'dc2 can no longer reach 2');
  t.same(tally.pendingTargets(), ['y']);
  t.notOk(tally.settled);
  tally.ack('y');
  t.ok(tally.settled);
  t.notOk(tally.met);
  t.notOk(canMeet(resolveRequirement('w', {}, plain(3), 'dc1'), [node('n0')]), 'W=2 cannot be met by one target');
  t.ok(canMeet(resolveRequirement('w', {}, plain(3), 'dc1'), [node('n0'), node('n1')]));
  const lone = [node('a'), node('b', 'dc1', false), node('c', 'dc1', false)];
  t.same(strictTargets({ replication: 3, replicas: lone }, 'b').map((r) => r.id), ['a', 'b'], 'self counts as up; down replicas are left out');
});

const key = new Uint8Array([1, 2, 3]);
const rid = new Uint8Array(16).fill(7);
const goodForward = { t: 'forward-put', rid, key, value: new Uint8Array([9]), w: 2, consistency: 'QUORUM', dc: 'dc1', hops: 1, timeoutMs: 1000 };

t.test('replica requests are validated: well-formed ones come back as fresh copies', async (t) => {
  t.same(parseReplicaRequest({ t: 'replica-read', key }), { ok: true, value: { t: 'replica-read', key } });
  t.same(parseReplicaRequest({ t: 'replica-write', key, object: new Uint8Array(4), extra: 1 }), { ok: true, value: { t: 'replica-write', key, object: new Uint8Array(4) } });
  t.same(parseReplicaRequest(goodForward), { ok: true, value: goodForward });
  const deleteForward = parseReplicaRequest({ ...goodForward, value: null, w: undefined, consistency: undefined, dc: undefined, context: new Uint8Array(7) });
  t.same(deleteForward, { ok: true, value: { t: 'forward-put', rid, key, value: null, context: new Uint8Array(7), hops: 1, timeoutMs: 1000 } });
  t.ok(parseReplicaRequest({ t: 'replica-read', key: Buffer.from('k') }).ok, 'Buffers (from msgpackr) are bytes');
});

t.test('hostile replica requests are refused with a reason, never thrown', async (t) => {
  const bad: [unknown, RegExp][] = [
    [null, /not an object/],
    [[1, 2], /not an object/],
    [new Uint8Array(3), /not an object/],
    [{ t: 'replica-read' }, /key missing/],
    [{ t: 'replica-read', key: 'abc' }, /key missing/],
    [{ t: 'replica-read', key: new Uint8Array(limits.keyBytesCeiling + 1) }, /keyBytesCeiling/],
    [{ t: 'replica-nuke', key }, /unknown request type/],
    [{ t: 'replica-write', key }, /object missing/],
    [{ t: 'replica-write', key, object: [1, 2] }, /object missing/],
    [{ ...goodForward, rid: new Uint8Array(15) }, /rid must be 16 bytes/],
    [{ ...goodForward, key: new Uint8Array(limits.keyBytesMax + 1) }, /key over keyBytesMax/],
    [{ ...goodForward, value: 'v' }, /value must be bytes/],
    [{ ...goodForward, value: undefined }, /value must be bytes/],
    [{ ...goodForward, value: new Uint8Array(limits.valueBytesMax + 1) }, /value must be bytes/],
    [{ ...goodForward, context: new Uint8Array(contextBytesMax + 1) }, /context/],
    [{ ...goodForward, w: 0 }, /w out of range/],
    [{ ...goodForward, w: limits.replicationMax + 1 }, /w out of range/],
    [{ ...goodForward, consistency: 'quorum' }, /consistency must be one of/],
    [{ ...goodForward, dc: '' }, /dc must be/],
    [{ ...goodForward, dc: 'x'.repeat(limits.memberLabelBytesMax + 1) }, /dc must be/],
    [{ ...goodForward, hops: 0 }, /hops out of range/],
    [{ ...goodForward, hops: limits.forwardHopsMax + 1 }, /hops out of range/],
    [{ ...goodForward, timeoutMs: 0 }, /timeoutMs out of range/],
    [{ ...goodForward, timeoutMs: Infinity }, /timeoutMs out of range/],
  ];
  for (const [raw, reason] of bad) {
    const parsed = parseReplicaRequest(raw);
    t.notOk(parsed.ok, JSON.stringify(raw)?.slice(0, 80) ?? String(raw));
    if (!parsed.ok) t.match(parsed.reason, reason);
  }
  const huge = new Uint8Array(limits.entryBytesMax + 1);
  t.notOk(parseReplicaRequest({ t: 'replica-write', key, object: huge }).ok, 'object over entryBytesMax');
  t.notOk(parseReplicaReply({ t: 'replica-read-reply', object: huge }).ok, 'reply object over entryBytesMax');
});

t.test('replica replies are validated and forward replies built from results', async (t) => {
  t.same(parseReplicaReply({ t: 'replica-read-reply' }), { ok: true, value: { t: 'replica-read-reply' } });
  t.same(parseReplicaReply({ t: 'replica-read-reply', object: new Uint8Array(2) }), { ok: true, value: { t: 'replica-read-reply', object: new Uint8Array(2) } });
  t.same(parseReplicaReply({ t: 'replica-write-reply' }), { ok: true, value: { t: 'replica-write-reply' } });
  t.same(parseReplicaReply({ t: 'forward-put-reply', context: new Uint8Array(7) }).ok, true);
  t.same(parseReplicaReply({ t: 'replica-error', code: 'KV_IO', message: 'disk' }), { ok: true, value: { t: 'replica-error', code: 'KV_IO', message: 'disk' } });
  const bad: [unknown, RegExp][] = [
    [undefined, /not an object/],
    [{ t: 'replica-read-reply', object: 'x' }, /object must be bytes/],
    [{ t: 'forward-put-reply' }, /context must be bytes/],
    [{ t: 'replica-error', code: 'EVIL', message: '' }, /not an ErrorCode/],
    [{ t: 'replica-error', code: 'KV_IO', message: 'x'.repeat(limits.replicaMessageCharsMax + 1) }, /short string/],
    [{ t: 'replica-error', code: 'KV_IO' }, /short string/],
    [{ t: 'pwned' }, /unknown reply type/],
  ];
  for (const [raw, reason] of bad) {
    const parsed = parseReplicaReply(raw);
    t.notOk(parsed.ok);
    if (!parsed.ok) t.match(parsed.reason, reason);
  }
  t.same(forwardReply({ type: 'written', context: new Uint8Array(7) }), { t: 'forward-put-reply', context: new Uint8Array(7) });
  t.same(forwardReply({ type: 'error', code: 'KV_UNAVAILABLE', message: 'm' }), { t: 'replica-error', code: 'KV_UNAVAILABLE', message: 'm' });
  t.throws(() => forwardReply({ type: 'read', found: false, values: [], context: new Uint8Array(7) }), { name: 'AssertionError' });
  t.equal(replicaError('KV_IO', 'y'.repeat(5000)).message.length, limits.replicaMessageCharsMax);
});

t.test('property: the validators never throw on arbitrary input', async (t) => {
  const numRuns = 2_000;
  t.comment(`fast-check seed ${seed}, ${numRuns} runs`);
  const tags = fc.constantFrom('replica-read', 'replica-write', 'forward-put', 'replica-read-reply', 'replica-write-reply', 'forward-put-reply', 'replica-error');
  const field = fc.oneof(fc.anything(), fc.uint8Array({ maxLength: 20 }), fc.constant(null));
  const message = fc.record(
    { t: tags, key: field, object: field, rid: field, value: field, context: field, w: field, consistency: field, dc: field, hops: field, timeoutMs: field, code: field, message: field },
    { requiredKeys: ['t'] },
  );
  fc.assert(
    fc.property(fc.oneof(fc.anything(), message), (raw) => {
      const request = parseReplicaRequest(raw);
      const reply = parseReplicaReply(raw);
      return typeof request.ok === 'boolean' && typeof reply.ok === 'boolean';
    }),
    { seed, numRuns },
  );
  t.pass('no throw');
});

t.test('the rid table joins, replays, expires and evicts the oldest finished entry first', async (t) => {
  const table = new RidTable<string>({ entriesMax: 3, retentionMs: 100, waitersMax: 1 });
  const ridOf = (n: number) => new Uint8Array(16).fill(n);
  table.begin(ridOf(1), 11, 1, 0);
  const entry = table.get(ridOf(1), 0)!;
  t.equal(entry.result, undefined, 'in flight');
  t.ok(table.join(entry, 2));
  t.notOk(table.join(entry, 3), 'waitersMax');
  t.same(table.finish(ridOf(1), 'ok-1', 10), [2], 'the waiter is handed back');
  t.equal(table.get(ridOf(1), 109)?.result, 'ok-1', 'replayed before expiry');
  t.equal(table.get(ridOf(1), 110), undefined, 'expired at finish + retention');
  table.begin(ridOf(2), 0, 4, 200);
  table.finish(ridOf(2), 'two', 200);
  table.begin(ridOf(3), 0, 5, 201);
  table.begin(ridOf(4), 0, 6, 202);
  t.equal(table.size, 3);
  table.begin(ridOf(5), 0, 7, 203);
  t.equal(table.size, 3, 'bounded');
  t.equal(table.get(ridOf(2), 203), undefined, 'the oldest finished entry was evicted');
  t.ok(table.get(ridOf(3), 203), 'entries in flight are kept');
  t.throws(() => table.begin(ridOf(3), 0, 8, 203), { name: 'AssertionError' });
  t.throws(() => table.finish(ridOf(9), 'x', 203), { name: 'AssertionError' });
  table.finish(ridOf(3), 'three', 300);
  t.equal(table.get(ridOf(4), 1_000)?.result, undefined, 'the sweep passes entries in flight');
  t.equal(table.get(ridOf(3), 1_000), undefined, 'and drops expired ones');
});

function stored(actor: string, value: string, before?: StoredObject): StoredObject {
  const context = before === undefined ? undefined : readView(before).context;
  const write = { value: new TextEncoder().encode(value), context, actor, timestampMs: 1, policy: 'siblings' as const, siblingsMax: 100 };
  return applyClientWrite(before, write);
}

t.test('the read merge joins answers, refuses corrupt objects, and repairs replicas behind the merge', async (t) => {
  const older = stored('a', 'v1');
  const newer = stored('a', 'v2', older);
  const concurrent = stored('b', 'w1');
  const merge = new ReadMerge();
  t.same(merge.repairs(), [], 'nothing to repair before any object');
  t.ok(merge.add('a', encodeObject(newer)));
  t.ok(merge.add('b', encodeObject(older)));
  t.ok(merge.add('c', undefined));
  t.notOk(merge.add('d', new Uint8Array([9, 9, 9, 9, 9])), 'corrupt object refused');
  t.ok(merge.add('e', encodeObject(concurrent)));
  t.equal(merge.answerCount, 4);
  const view = merge.view('siblings');
  t.same(view.values.map((v) => new TextDecoder().decode(v)).sort(), ['v2', 'w1'], 'concurrent writes are siblings, the older one is gone');
  t.same(merge.repairs().map((r) => r.to), ['a', 'b', 'c', 'e'], 'every answer differs from the merge here');
  const same = new ReadMerge();
  same.add('a', encodeObject(newer));
  same.add('b', encodeObject(newer));
  t.same(same.repairs(), [], 'replicas equal to the merge get nothing');
  const empty = new ReadMerge();
  empty.add('a', undefined);
  t.same(empty.repairs(), [], 'a key no replica holds needs no repair');
  t.equal(empty.view('siblings').found, false);
});

t.test('a plain tally keeps its targets in order and takes spares; canMeet counts distinct targets', async (t) => {
  const requirement = resolveRequirement('r', {}, plain(3), 'dc1');
  t.equal(requirement.total, 2);
  t.equal(requirement.perDc.size, 0);
  const tally = new QuorumTally(requirement, [node('n0'), node('n1')]);
  t.same(tally.pendingTargets(), ['n0', 'n1']);
  t.ok(tally.fail('n0'));
  t.notOk(tally.possible, 'one target left cannot make two');
  t.notOk(tally.add(node('n0')), 'a failed target is not asked again');
  t.ok(tally.add(node('n2')), 'a spare joins');
  t.ok(tally.possible);
  t.ok(tally.ack('n2') && tally.ack('n1'));
  t.ok(tally.met);
  t.equal(tally.ackedCount, 2);
  t.same([...tally.acked].sort(), ['n1', 'n2']);
  t.notOk(canMeet(requirement, [node('n0'), node('n0')]), 'a repeated target counts once');
  t.ok(canMeet(requirement, [node('n0'), node('n0'), node('n1')]));
});

t.test('a replica answering a read twice counts with its last answer', async (t) => {
  const first = stored('a', 'v1');
  const merge = new ReadMerge();
  merge.add('a', undefined);
  merge.add('a', encodeObject(first));
  merge.add('b', encodeObject(first));
  t.equal(merge.answerCount, 2);
  t.same(merge.repairs(), [], 'both hold the merge');
});
