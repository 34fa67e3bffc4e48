/**
 * The Coordinator's state machines, driven by hand: write outcomes (written / unavailable /
 * indeterminate) never blurred, forwarding with bounded hops, retried writes by rid, reads
 * that merge and read-repair, overload, and hostile replies.
 */
import t from 'tap';
import { ManualClock } from '../lib/base/clock.js';
import { silentLogger } from '../lib/base/log.js';
import type { ReplicaStore } from '../lib/store/index.js';
import { CoordinatorDriver } from '../lib/supervisor/coordinator-driver.js';
import { applyClientWrite, encodeContext, encodeObject, readView, type StoredObject } from '../lib/causality/index.js';
import {
  Coordinator,
  parseReplicaRequest,
  sloppyTargets,
  type CoordinatorAction,
  type CoordinatorOptions,
  type CoordinatorResult,
  type ReplicaInfo,
} from '../lib/replication/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const key = enc.encode('k');
const rid = (n: number): Uint8Array => new Uint8Array(16).fill(n);
const up = (id: string, dc = 'dc1'): ReplicaInfo => ({ id, dc, up: true });
const down = (id: string, dc = 'dc1'): ReplicaInfo => ({ id, dc, up: false });
const context = encodeContext([]);
const object = enc.encode('object-bytes');

function coordinator(replicas: () => readonly ReplicaInfo[], options: Partial<CoordinatorOptions> = {}): Coordinator {
  return new Coordinator({ self: { id: 'a', dc: 'dc1' }, placementOf: () => ({ replication: 3, replicas: replicas() }), ...options });
}

const ofType = <T extends CoordinatorAction['type']>(actions: readonly CoordinatorAction[], type: T) =>
  actions.filter((a): a is Extract<CoordinatorAction, { type: T }> => a.type === type);
const results = (actions: readonly CoordinatorAction[]): CoordinatorResult[] => ofType(actions, 'complete').map((a) => a.result);
const codes = (actions: readonly CoordinatorAction[]): string[] => results(actions).map((r) => (r.type === 'error' ? r.code : r.type));
const sendsTo = (actions: readonly CoordinatorAction[]): string[] => ofType(actions, 'send').map((a) => a.to);

function stored(actor: string, value: string, before?: StoredObject): StoredObject {
  const ctx = before === undefined ? undefined : readView(before).context;
  return applyClientWrite(before, { value: enc.encode(value), context: ctx, actor, timestampMs: 1, policy: 'siblings', siblingsMax: 100 });
}

t.test('a replica coordinates a write: local apply first, then replica-writes, written at W acks', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), up('c')]);
  const start = c.startPut(1, { key, value: enc.encode('v'), rid: rid(1), context }, 1_000);
  t.same(start, [
    { type: 'local', requestId: 1, op: 'coordinate-write', key, value: enc.encode('v'), context, flags: { mint: { rid: rid(1), attempt: 0 } } },
    { type: 'set-timer', requestId: 1, atMs: 6_000 },
  ]);
  t.equal(c.inflight, 1);
  const fanOut = c.onLocalResult(1, { ok: true, context, object }, 1_001);
  t.same(fanOut, [
    { type: 'send', to: 'b', requestId: 1, message: { t: 'replica-write', key, object, rid: rid(1) } },
    { type: 'send', to: 'c', requestId: 1, message: { t: 'replica-write', key, object, rid: rid(1) } },
  ]);
  t.same(c.onLocalResult(1, { ok: true, context, object }, 1_001), [], 'a repeated local answer is ignored');
  t.same(c.onReply(1, 'z', { t: 'replica-write-reply' }, 1_002), [], 'a stranger does not count');
  const done = c.onReply(1, 'c', { t: 'replica-write-reply' }, 1_002);
  t.same(done, [{ type: 'complete', requestId: 1, result: { type: 'written', context } }]);
  t.equal(c.inflight, 1, 'the answered write waits for its last replica (missed writes are hinted)');
  t.same(c.onReply(1, 'b', { t: 'replica-write-reply' }, 1_003), [{ type: 'clear-timer', requestId: 1 }], 'the last ack settles it: nobody missed it');
  t.equal(c.inflight, 0);
  t.same(c.onReply(1, 'b', { t: 'replica-write-reply' }, 1_003), [], 'late acks are ignored');
  t.same(c.onTimeout(1, 6_000), [], 'and so is the late timer');
  t.equal(c.stats().written, 1);
});

t.test('W=1 completes on the local apply alone, still sending to the others', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), up('c')]);
  c.startPut(1, { key, value: null, rid: rid(1), w: 1 }, 0);
  const actions = c.onLocalResult(1, { ok: true, context, object }, 0);
  t.same(sendsTo(actions), ['b', 'c']);
  t.same(codes(actions), ['written']);
});

t.test('nodes gaining the partition in a join get every write, never waited for and never counted', async (t) => {
  const c = new Coordinator({
    self: { id: 'a', dc: 'dc1' },
    placementOf: () => ({ replication: 2, replicas: [up('a'), up('b')], pending: [up('j'), down('k'), up('a')] }),
  });
  c.startPut(1, { key, value: enc.encode('v'), rid: rid(1), context, w: 2 }, 0);
  const fanOut = c.onLocalResult(1, { ok: true, context, object }, 1);
  t.same(ofType(fanOut, 'send'), [
    { type: 'send', to: 'b', requestId: 1, message: { t: 'replica-write', key, object, rid: rid(1) } },
    { type: 'send', to: 'j', requestId: undefined, message: { t: 'replica-write', key, object, rid: rid(1) } },
  ], 'the up pending node gets the write without a request id; a down one and this node do not');
  t.same(c.onReply(1, 'j', { t: 'replica-write-reply' }, 2), [], 'an ack from a pending node does not count toward W');
  t.same(codes(c.onReply(1, 'b', { t: 'replica-write-reply' }, 2)), ['written']);
});

t.test('fewer than W replicas up: KV_UNAVAILABLE before anything is applied or sent', async (t) => {
  const c = coordinator(() => [up('a'), down('b'), down('c')]);
  const actions = c.startPut(1, { key, value: enc.encode('v'), rid: rid(1) }, 0);
  t.same(codes(actions), ['KV_UNAVAILABLE']);
  t.same(ofType(actions, 'local'), []);
  t.same(ofType(actions, 'send'), []);
  t.match(results(actions)[0], { message: /default needs 2 replicas; 1 up/ });
  const each = new Coordinator({
    self: { id: 'a', dc: 'dc1' },
    placementOf: () => ({ replication: { dc1: 2, dc2: 2 }, replicas: [up('a'), up('b'), up('x', 'dc2'), down('y', 'dc2')] }),
  });
  const perDc = each.startPut(2, { key, value: enc.encode('v'), rid: rid(2), consistency: 'EACH_QUORUM' }, 0);
  t.same(codes(perDc), ['KV_UNAVAILABLE'], 'EACH_QUORUM needs 2 in dc2, only 1 is up');
  t.match(results(perDc)[0], { message: /per datacenter: dc1=2, dc2=2/ });
  t.equal(c.stats().unavailable, 1);
});

t.test('W not reached after sending is KV_INDETERMINATE: by nacks, lost links or the deadline', async (t) => {
  const replicas = () => [up('a'), up('b'), up('c')];
  const nacks = coordinator(replicas);
  nacks.startPut(1, { key, value: enc.encode('v'), rid: rid(1), w: 3 }, 0);
  nacks.onLocalResult(1, { ok: true, context, object }, 0);
  const nacked = nacks.onReply(1, 'b', { t: 'replica-error', code: 'KV_IO', message: 'disk' }, 1);
  t.same(codes(nacked), ['KV_INDETERMINATE'], 'W=3 is out of reach after one nack');
  t.match(results(nacked)[0], { message: /reached 1 of 3 replicas/ });

  const garbage = coordinator(replicas);
  garbage.startPut(1, { key, value: enc.encode('v'), rid: rid(1), w: 3 }, 0);
  garbage.onLocalResult(1, { ok: true, context, object }, 0);
  t.same(codes(garbage.onReply(1, 'b', { t: 'replica-write-reply', junk: 1 }, 1)), [], 'extra fields are dropped, the ack counts');
  t.same(codes(garbage.onReply(1, 'c', 'garbage', 1)), ['KV_INDETERMINATE'], 'a malformed reply is a nack');
  t.equal(garbage.stats().rejectedReplies, 1);

  const lost = coordinator(replicas);
  lost.startPut(1, { key, value: enc.encode('v'), rid: rid(1) }, 0);
  lost.onLocalResult(1, { ok: true, context, object }, 0);
  t.same(lost.onSendFailed(1, 'b', 1), []);
  t.same(codes(lost.onSendFailed(1, 'c', 1)), ['KV_INDETERMINATE'], 'the local apply happened: not a definite failure');

  const slow = coordinator(replicas);
  slow.startPut(1, { key, value: enc.encode('v'), rid: rid(1), timeoutMs: 50 }, 0);
  slow.onLocalResult(1, { ok: true, context, object }, 0);
  slow.onReply(1, 'b', { t: 'replica-error', code: 'KV_IO', message: '' }, 1);
  t.same(codes(slow.onTimeout(1, 50)), ['KV_INDETERMINATE']);

  const stuck = coordinator(replicas);
  stuck.startPut(1, { key, value: enc.encode('v'), rid: rid(1) }, 0);
  t.same(stuck.onSendFailed(1, 'b', 1), [], 'nothing was sent yet');
  t.same(stuck.onReply(1, 'b', { t: 'replica-write-reply' }, 1), [], 'no ack counts before the local apply');
  const timedOut = stuck.onTimeout(1, 5_000);
  t.same(codes(timedOut), ['KV_INDETERMINATE'], 'the local apply may have happened');
  t.same(stuck.onLocalResult(1, { ok: true, context, object }, 5_001), [], 'its late answer is ignored');
  t.equal(stuck.stats().indeterminate, 1);
});

t.test('a failed local apply is definite only when the store refused before storing', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), up('c')]);
  c.startPut(1, { key, value: enc.encode('v'), rid: rid(1) }, 0);
  t.same(codes(c.onLocalResult(1, { ok: false, code: 'KV_TOO_MANY_SIBLINGS', message: 'many' }, 0)), ['KV_TOO_MANY_SIBLINGS']);
  c.startPut(2, { key, value: enc.encode('v'), rid: rid(2) }, 0);
  const io = c.onLocalResult(2, { ok: false, code: 'KV_IO', message: 'fsync' }, 0);
  t.same(codes(io), ['KV_INDETERMINATE']);
  t.match(results(io)[0], { message: /local write failed \(KV_IO\): fsync/ });
  c.startPut(3, { key, value: enc.encode('v'), rid: rid(3) }, 0);
  t.same(codes(c.onLocalResult(3, { ok: true, object: undefined }, 0)), ['KV_INDETERMINATE'], 'a read-shaped answer to a write');
});

t.test('a non-replica forwards the write to the first up replica, with bounded hops', async (t) => {
  const c = coordinator(() => [down('b'), up('c'), up('d')]);
  const actions = c.startPut(1, { key, value: enc.encode('v'), rid: rid(1), context, consistency: 'QUORUM', timeoutMs: 1_000 }, 0);
  t.same(actions, [
    {
      type: 'send',
      to: 'c',
      requestId: 1,
      message: { t: 'forward-put', rid: rid(1), key, value: enc.encode('v'), context, consistency: 'QUORUM', dc: 'dc1', hops: 1, timeoutMs: 900 },
    },
    { type: 'set-timer', requestId: 1, atMs: 1_000 },
  ]);
  t.same(c.onReply(1, 'd', { t: 'forward-put-reply', context }, 1), [], 'only the target answers');
  t.same(results(c.onReply(1, 'c', { t: 'forward-put-reply', context }, 1)), [{ type: 'written', context }]);

  c.startPut(2, { key, value: enc.encode('v'), rid: rid(2), w: 2 }, 0);
  t.same(results(c.onReply(2, 'c', { t: 'replica-error', code: 'KV_UNAVAILABLE', message: 'down' }, 1)), [{ type: 'error', code: 'KV_UNAVAILABLE', message: 'down' }], 'the coordinator’s definite failure passes through');
  c.startPut(3, { key, value: enc.encode('v'), rid: rid(3) }, 0);
  t.same(codes(c.onReply(3, 'c', { t: 'replica-read-reply' }, 1)), ['KV_INDETERMINATE'], 'a wrong answer is no answer');
  c.startPut(4, { key, value: enc.encode('v'), rid: rid(4) }, 0);
  t.same(codes(c.onTimeout(4, 5_000)), ['KV_INDETERMINATE']);
  c.startPut(5, { key, value: enc.encode('v'), rid: rid(5) }, 0);
  t.same(c.onLocalResult(5, { ok: true, object: undefined }, 0), [], 'forwards have no local step');
  t.same(c.onSendFailed(5, 'x', 0), [], 'a send to someone else is not ours');
  t.same(sendsTo(c.onSendFailed(5, 'c', 0)), ['d'], 'a send that never left: try the next replica');
  t.same(codes(c.onSendFailed(5, 'd', 0)), ['KV_UNAVAILABLE'], 'none could be reached: nothing was sent');
  t.same(codes(c.startPut(6, { key, value: enc.encode('v'), rid: rid(6), hops: 2 }, 0)), ['KV_UNAVAILABLE'], 'hop limit');
  t.equal(c.stats().forwarded, 5);

  const alone = coordinator(() => [down('b'), down('c')]);
  t.same(codes(alone.startPut(1, { key, value: enc.encode('v'), rid: rid(1) }, 0)), ['KV_UNAVAILABLE'], 'no replica up');
  const remote = new Coordinator({ self: { id: 'a', dc: 'dc9' }, placementOf: () => ({ replication: 3, replicas: [up('b'), up('c')] }) });
  const message = ofType(remote.startPut(1, { key, value: null, rid: rid(1), dc: 'dc1', timeoutMs: 50, hops: 1 }, 0), 'send')[0]!.message;
  t.match(message, { t: 'forward-put', value: null, dc: 'dc1', hops: 2, timeoutMs: 1 }, 'the client’s datacenter travels; the deadline shrinks');
});

t.test('retried writes: same rid replays the outcome, joins one in flight, never applies twice', async (t) => {
  const replicas = [up('a'), up('b'), up('c')];
  let now = 0;
  const c = coordinator(() => replicas, { ridRetentionMs: 1_000 });
  const put = (id: number, n: number, k = key) => c.startPut(id, { key: k, value: enc.encode('v'), rid: rid(n) }, now);
  put(1, 1);
  t.same(put(2, 1), [], 'a retry in flight joins');
  c.onLocalResult(1, { ok: true, context, object }, now);
  const done = c.onReply(1, 'b', { t: 'replica-write-reply' }, now);
  t.same(ofType(done, 'complete').map((a) => a.requestId), [1, 2], 'both complete with one outcome');
  t.same(put(3, 1), [{ type: 'complete', requestId: 3, result: { type: 'written', context } }], 'a retry after the ack replays the context');
  t.same(codes(put(4, 1, enc.encode('other'))), ['KV_BAD_REQUEST'], 'a rid is bound to its key');
  now = 2_000;
  t.same(ofType(put(5, 1), 'local').length, 1, 'after retention the rid is forgotten');

  replicas[1] = down('b');
  replicas[2] = down('c');
  t.same(codes(put(6, 7)), ['KV_UNAVAILABLE']);
  replicas[1] = up('b');
  replicas[2] = up('c');
  t.same(codes(put(7, 7)), ['KV_UNAVAILABLE'], 'a duplicate of a refused write stays refused (never applied later)');

  put(8, 8);
  for (let i = 0; i < 16; i++) put(100 + i, 8);
  t.same(codes(put(200, 8)), ['KV_INDETERMINATE'], 'past ridWaitersMax a retry cannot claim failure');
  t.equal(c.stats().deduplicated, 20);
});

t.test('requests past requestsMax are refused with KV_OVERLOADED; request ids are checked', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), up('c')], { requestsMax: 1, ridEntriesMax: 10 });
  c.startGet(1, { key }, 0);
  t.same(codes(c.startGet(2, { key }, 0)), ['KV_OVERLOADED']);
  t.same(codes(c.startPut(3, { key, value: null, rid: rid(3) }, 0)), ['KV_OVERLOADED']);
  const forwarder = coordinator(() => [up('b'), up('c')], { requestsMax: 1, ridEntriesMax: 10 });
  forwarder.startPut(1, { key, value: null, rid: rid(1) }, 0);
  t.same(codes(forwarder.startPut(2, { key, value: null, rid: rid(2) }, 0)), ['KV_OVERLOADED']);
  t.equal(c.stats().overloaded, 2);
  t.throws(() => c.startGet(1, { key }, 0), { name: 'RangeError', message: /already in flight/ });
  t.throws(() => c.startGet(-1, { key }, 0), RangeError);
  t.throws(() => coordinator(() => [], { requestsMax: 10, ridEntriesMax: 10 }), { message: /ridEntriesMax must exceed/ });
});

t.test('malformed client requests end in KV_BAD_REQUEST, KV_TOO_LARGE or KV_BAD_CONTEXT', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), up('c')]);
  let id = 0;
  const put = (fields: Record<string, unknown>) => codes(c.startPut(++id, { key, value: enc.encode('v'), rid: rid(1), ...fields } as never, 0));
  t.same(put({ key: 'k' }), ['KV_BAD_REQUEST']);
  t.same(put({ key: new Uint8Array(1025) }), ['KV_TOO_LARGE']);
  t.same(put({ value: 'v' }), ['KV_BAD_REQUEST']);
  t.same(put({ value: new Uint8Array(1024 * 1024 + 1) }), ['KV_TOO_LARGE']);
  t.same(put({ rid: new Uint8Array(8) }), ['KV_BAD_REQUEST']);
  t.same(put({ context: 'ctx' }), ['KV_BAD_REQUEST']);
  t.same(put({ context: new Uint8Array(10_000) }), ['KV_BAD_CONTEXT']);
  t.same(put({ hops: 7 }), ['KV_BAD_REQUEST']);
  t.same(put({ dc: '' }), ['KV_BAD_REQUEST']);
  t.same(put({ timeoutMs: 0 }), ['KV_BAD_REQUEST']);
  t.same(put({ w: 4 }), ['KV_BAD_REQUEST']);
  t.same(put({ consistency: 'SERIAL' }), ['KV_BAD_REQUEST']);
  t.same(codes(c.startGet(++id, { key, r: 0 }, 0)), ['KV_BAD_REQUEST']);
  t.same(codes(c.startGet(++id, { key, timeoutMs: 1e9 }, 0)), ['KV_BAD_REQUEST']);
  const broken = coordinator(() => {
    throw new Error('ring exploded');
  });
  t.throws(() => broken.startGet(1, { key }, 0), { message: 'ring exploded' }, 'our own bugs are not bad requests');
});

t.test('a read merges R answers, then read-repairs every replica behind the merge', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), up('c')], { readFanout: 'all' });
  const start = c.startGet(1, { key }, 0);
  t.same(start, [
    { type: 'local', requestId: 1, op: 'read-object', key },
    { type: 'send', to: 'b', requestId: 1, message: { t: 'replica-read', key } },
    { type: 'send', to: 'c', requestId: 1, message: { t: 'replica-read', key } },
    { type: 'set-timer', requestId: 1, atMs: 5_000 },
  ]);
  const v1 = stored('b', 'v1');
  const v2 = stored('b', 'v2', v1);
  const sibling = stored('c', 's1');
  t.same(c.onLocalResult(1, { ok: true, object: encodeObject(v1) }, 1), []);
  const answered = c.onReply(1, 'b', { t: 'replica-read-reply', object: encodeObject(v2) }, 2);
  const [result] = results(answered);
  t.equal(result?.type, 'read');
  if (result?.type === 'read') t.same(result.values.map((v) => dec.decode(v)), ['v2'], 'the newer version wins');
  t.same(c.onReply(1, 'b', { t: 'replica-read-reply', object: encodeObject(v2) }, 2), [], 'a duplicate answer is ignored');
  const repaired = c.onReply(1, 'c', { t: 'replica-read-reply', object: encodeObject(sibling) }, 3);
  const merged = encodeObject(stored('b', 'v2', v1).concat(sibling).sort((x, y) => (x.actor < y.actor ? -1 : 1)));
  t.same(repaired, [
    { type: 'clear-timer', requestId: 1 },
    { type: 'local', requestId: undefined, op: 'merge-object', key, object: merged },
    { type: 'send', to: 'b', requestId: undefined, message: { t: 'replica-write', key, object: merged } },
    { type: 'send', to: 'c', requestId: undefined, message: { t: 'replica-write', key, object: merged } },
  ], 'self, b and c each lack part of the merge; repairs want no reply');
  t.equal(c.stats().readRepairs, 3);
  t.equal(c.inflight, 0);
});

t.test('reads: not found, corrupt or failed answers, unavailable and timeouts', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), up('c')], { readFanout: 'all' });
  c.startGet(1, { key, consistency: 'ONE' }, 0);
  t.same(results(c.onReply(1, 'b', { t: 'replica-read-reply' }, 1)), [{ type: 'read', found: false, values: [], context }], 'nothing stored: not found');
  t.same(c.onTimeout(1, 5_000), [{ type: 'clear-timer', requestId: 1 }], 'the deadline ends the wait for read repair');

  c.startGet(2, { key, r: 3 }, 0);
  const corrupt = c.onReply(2, 'b', { t: 'replica-read-reply', object: new Uint8Array([7, 7, 7, 7]) }, 1);
  t.equal(c.stats().rejectedReplies, 1, 'a corrupt object is refused and counted');
  t.same(codes(corrupt), ['KV_UNAVAILABLE'], 'R=3 is out of reach once one replica failed');
  t.same(c.onLocalResult(2, { ok: false, code: 'KV_IO', message: 'eio' }, 1), [], 'answered already; still waiting on c');
  t.same(ofType(c.onReply(2, 'c', { t: 'replica-error', code: 'KV_IO', message: '' }, 2), 'clear-timer').length, 1, 'settled: gone');

  c.startGet(3, { key }, 0);
  t.same(c.onSendFailed(3, 'b', 0), []);
  t.same(codes(c.onReply(3, 'c', { t: 'replica-write-reply' }, 0)), ['KV_UNAVAILABLE'], 'a lost link and a wrong answer leave R=2 out of reach');
  t.equal(c.inflight, 1, 'the local answer is still awaited');
  const v = encodeObject(stored('a', 'v'));
  t.same(c.onLocalResult(3, { ok: true, object: v }, 0), [{ type: 'clear-timer', requestId: 3 }], 'the only answer is the merge: nothing to repair');

  c.startGet(4, { key }, 0);
  c.onReply(4, 'b', { t: 'replica-read-reply', object: v }, 1);
  const timedOut = c.onTimeout(4, 5_000);
  t.same(codes(timedOut), ['KV_TIMEOUT'], 'R not reached by the deadline');
  t.same(sendsTo(timedOut), [], 'b holds the merge already: nothing to repair');

  const alone = coordinator(() => [up('a'), down('b'), down('c')]);
  const refused = alone.startGet(1, { key }, 0);
  t.same(codes(refused), ['KV_UNAVAILABLE'], 'R=2 with one replica up');
  t.same(ofType(refused, 'send'), [], 'nothing sent');
  const nonReplica = coordinator(() => [up('b'), up('c'), down('d')], { readFanout: 'all' });
  t.same(sendsTo(nonReplica.startGet(1, { key, consistency: 'ONE' }, 0)), ['b', 'c'], 'any node coordinates reads');
  t.equal(nonReplica.stats().started, 1);
});

t.test('a node with no ring yet (empty preference list) answers KV_UNAVAILABLE, not a bad request', async (t) => {
  const c = coordinator(() => []);
  t.same(codes(c.startGet(1, { key }, 0)), ['KV_UNAVAILABLE']);
  t.same(codes(c.startPut(2, { key, value: enc.encode('v'), rid: rid(2) }, 0)), ['KV_UNAVAILABLE']);
  t.equal(c.inflight, 0, 'nothing is left in flight');
});

t.test('sloppy quorum: a stand-in in the down replica\'s datacenter takes a hint and counts toward W', async (t) => {
  const placement = { replication: 3, replicas: [up('a'), down('b'), up('c')], fallbacks: [down('d'), up('e'), up('f', 'dc2')] };
  t.same(sloppyTargets(placement, 'a'), [up('a'), up('c'), { id: 'e', dc: 'dc1', up: true, hintFor: 'b' }], 'the first up fallback of dc1 stands in for b');
  t.same(sloppyTargets({ ...placement, fallbacks: [up('f', 'dc2')] }, 'a'), [up('a'), up('c')], 'no stand-in from another datacenter');
  t.same(sloppyTargets({ replication: 3, replicas: [up('a'), down('b'), down('c')], fallbacks: [up('e')] }, 'a').map((r) => r.hintFor ?? r.id), ['a', 'b'], 'one fallback stands in once');

  const c = new Coordinator({ self: { id: 'a', dc: 'dc1' }, placementOf: () => ({ replication: 3, replicas: [up('a'), down('b'), down('c')], fallbacks: [up('e')] }), targetsOf: sloppyTargets });
  c.startPut(1, { key, value: enc.encode('v'), rid: rid(1), w: 2 }, 0);
  const fanOut = c.onLocalResult(1, { ok: true, context, object }, 1);
  const sends = ofType(fanOut, 'send');
  t.same(sends.map((s) => [s.to, (s.message as { hintFor?: string }).hintFor]), [['e', 'b']], 'the hint goes to e, for b');
  t.same(codes(c.onReply(1, 'e', { t: 'replica-write-reply' }, 2)), ['written'], 'W=2 reached with the stand-in');
  t.equal(c.stats().hinted, 1);
  t.same(codes(c.startGet(2, { key, r: 2 }, 3)), ['KV_UNAVAILABLE'], 'reads never count stand-ins');
});

t.test('replica-write carries a valid hintFor or is refused', async (t) => {
  t.match(parseReplicaRequest({ t: 'replica-write', key, object, hintFor: 'b' }), { ok: true, value: { hintFor: 'b' } });
  t.match(parseReplicaRequest({ t: 'replica-write', key, object, hintFor: 7 }), { ok: false });
  t.match(parseReplicaRequest({ t: 'replica-write', key, object, hintFor: 'x'.repeat(65) }), { ok: false });
});

t.test('with quorum fan-out a read asks R replicas, this node first, and one more only when an asked one fails', async (t) => {
  const c = coordinator(() => [up('b'), up('a'), up('c')], { readFanout: 'quorum' });
  const valid = encodeObject(stored('a', 'v'));
  const start = c.startGet(1, { key, r: 2 }, 0);
  t.same(ofType(start, 'local').map((a) => a.op), ['read-object'], 'this node reads locally');
  t.same(sendsTo(start), ['b'], 'and asks one peer: R=2 in all');
  t.same(c.onLocalResult(1, { ok: true, object: valid }, 1), [], 'one answer is not R');
  const failed = c.onReply(1, 'b', { t: 'replica-error', code: 'KV_UNAVAILABLE', message: 'down' }, 2);
  t.same(sendsTo(failed), ['c'], 'b failed: the spare c is asked');
  t.same(codes(c.onReply(1, 'c', { t: 'replica-read-reply', object: valid }, 3)), ['read']);
  const perDc = new Coordinator({
    readFanout: 'quorum',
    self: { id: 'a', dc: 'dc1' },
    placementOf: () => ({ replication: { dc1: 2, dc2: 1 }, replicas: [up('a'), up('b'), up('c', 'dc2')] }),
  });
  t.same(sendsTo(perDc.startGet(2, { key, consistency: 'EACH_QUORUM' }, 0)).sort(), ['b', 'c'], 'per-datacenter levels ask every replica');
});

t.test('a sole write comes down to one local write: which writes qualify, and their outcomes as the request path answers them', async (t) => {
  let sole = true;
  const c = coordinator(() => [up('a')], { soleReplicaOfToken: () => sole });
  const put = { key, value: enc.encode('v'), rid: rid(1), sole: true, ttlMs: 5_000, overwrite: true };
  t.same(c.soleWrite(put), { flags: { ttlMs: 5_000, overwrite: true } }, 'a RESP write on its only replica: the local write and its flags, no mint');
  t.same(c.soleWrite({ ...put, ttlMs: undefined, overwrite: undefined }), { flags: undefined });
  t.equal(c.soleWrite({ ...put, sole: undefined }), undefined, 'a client write (retried by rid) takes the request path');
  t.equal(c.soleWrite({ ...put, hops: 1 }), undefined, 'so does a forwarded one');
  t.equal(c.soleWrite({ ...put, w: 1 }), undefined, 'and one with its own level');
  t.equal(c.soleWrite({ ...put, consistency: 'ONE' }), undefined);
  t.equal(c.soleWrite({ ...put, hedged: true }), undefined);
  sole = false;
  t.equal(c.soleWrite(put), undefined, 'a key with other replicas, or one a node is gaining, takes the request path');
  t.equal(coordinator(() => [up('a')]).soleWrite(put), undefined, 'a coordinator told nothing of sole replicas never takes it');
  sole = true;
  const tooLarge = c.soleWrite({ ...put, value: new Uint8Array(2 * 1024 * 1024) });
  t.match(tooLarge, { type: 'error', code: 'KV_TOO_LARGE' }, 'an invalid write is answered at once, as the request path would');

  t.same(c.soleWritten({ ok: true, context, object }), { type: 'written', context });
  t.match(c.soleWritten({ ok: false, code: 'KV_OVERLOADED', message: 'busy' }), { type: 'error', code: 'KV_OVERLOADED' }, 'a definite local failure stays definite');
  t.match(c.soleWritten({ ok: false, code: 'KV_CLOSED', message: 'gone' }), { type: 'error', code: 'KV_INDETERMINATE' }, 'any other may have landed');
  t.match(c.soleWritten({ ok: true, object }), { type: 'error', code: 'KV_INDETERMINATE' });
  const stats = c.stats();
  t.equal(stats.started, 3, 'counted as started: the two that qualified and the invalid one');
  t.equal(stats.written, 1);
  t.equal(stats.indeterminate, 2);
  t.equal(c.inflight, 0, 'no request state');
});

t.test('a sole write through the driver: written, timed out (indeterminate) and cut by a close, as the request path answers them', async (t) => {
  const writes: { resolve: (written: { context: Uint8Array; object: Uint8Array }) => void }[] = [];
  const store = {
    coordinateWrite: () => new Promise((resolve) => writes.push({ resolve })),
    cachedRow: () => undefined,
  } as unknown as ReplicaStore;
  const c = coordinator(() => [up('a')], { soleReplicaOfToken: () => true });
  const driver = new CoordinatorDriver({ coordinator: c, store, clock: new ManualClock(), logger: silentLogger, sendToNode: () => false });
  const put = { key, value: enc.encode('v'), rid: rid(1), sole: true };

  const written = driver.put(put);
  t.equal(writes.length, 1, 'one local write, at once');
  writes[0]!.resolve({ context, object });
  t.same(await written, { context });

  const slow = driver.put({ ...put, timeoutMs: 50 });
  t.equal(driver.inflight, 1);
  const timedOut = await slow.then(
    () => undefined,
    (error: unknown) => error,
  );
  t.match(timedOut, { code: 'KV_INDETERMINATE' }, 'no answer within its timeout: indeterminate, as the request path says');
  writes[1]!.resolve({ context, object }); // the late answer changes nothing
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(c.stats().written, 1, 'the late local write is not counted as written');
  t.equal(c.stats().indeterminate, 1);

  const cut = driver.put(put);
  driver.close();
  t.match(await cut.then(() => undefined, (error: unknown) => error), { code: 'KV_INDETERMINATE' }, 'a close answers a write in flight');
  t.equal(driver.inflight, 0);
});
