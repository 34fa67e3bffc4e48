/**
 * Coordinator-held hints (issue 10, RELIABILITY.md A11): a put settles only when every target
 * answered or its deadline passed, and then reports each replica of the preference list that
 * did not acknowledge the write itself as a `missed` action — down with no stand-in, a stand-in
 * that failed, an error reply, a send that never left, or silence — so the supervisor keeps a
 * hint for it. Also the pure `missedReplicas` rule and the bound on answered puts that wait.
 */

import t from 'tap';
import { limits } from '../lib/base/limits.js';
import { encodeContext } from '../lib/causality/index.js';
import {
  Coordinator,
  missedReplicas,
  sloppyTargets,
  type CoordinatorAction,
  type CoordinatorOptions,
  type ReplicaInfo,
} from '../lib/replication/index.js';

const enc = new TextEncoder();
const key = enc.encode('k');
const rid = (n: number): Uint8Array => new Uint8Array(16).fill(n % 256).map((b, i) => (i < 4 ? (n >> (8 * i)) & 0xff : b));
const up = (id: string, dc = 'dc1'): ReplicaInfo => ({ id, dc, up: true });
const down = (id: string, dc = 'dc1'): ReplicaInfo => ({ id, dc, up: false });
const context = encodeContext([]);
const object = enc.encode('object-bytes');

function coordinator(replicas: () => readonly ReplicaInfo[], options: Partial<CoordinatorOptions> = {}, fallbacks: readonly ReplicaInfo[] = []): Coordinator {
  return new Coordinator({ self: { id: 'a', dc: 'dc1' }, placementOf: () => ({ replication: 3, replicas: replicas(), fallbacks }), ...options });
}

const missed = (actions: readonly CoordinatorAction[]): { to: string; standIn: string | undefined }[] =>
  actions.filter((a): a is Extract<CoordinatorAction, { type: 'missed' }> => a.type === 'missed').map((a) => ({ to: a.to, standIn: a.standIn }));
const answered = (actions: readonly CoordinatorAction[]): string[] =>
  actions.filter((a): a is Extract<CoordinatorAction, { type: 'complete' }> => a.type === 'complete').map((a) => (a.result.type === 'error' ? a.result.code : a.result.type));

/** Starts a put and applies it locally; returns the actions of the local answer. */
function begin(c: Coordinator, id: number, nowMs = 0): CoordinatorAction[] {
  c.startPut(id, { key, value: enc.encode('v'), rid: rid(id) }, nowMs);
  return c.onLocalResult(id, { ok: true, context, object }, nowMs);
}

t.test('a replica silent past the deadline is reported missed, with the written object, after the client had its answer', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), up('c')]);
  begin(c, 1);
  const ack = c.onReply(1, 'b', { t: 'replica-write-reply' }, 10);
  t.same(answered(ack), ['written'], 'W=2 answers at once');
  t.same(missed(ack), [], 'nothing is missed while c may still answer');
  const late = c.onTimeout(1, limits.coordinatorTimeoutMsDefault);
  t.same(missed(late), [{ to: 'c', standIn: undefined }]);
  const action = late.find((a) => a.type === 'missed') as Extract<CoordinatorAction, { type: 'missed' }>;
  t.same(action.object, object, 'the hint carries the object the coordinator wrote');
  t.same(action.key, key);
  t.same(answered(late), [], 'the client is not answered twice');
  t.equal(c.inflight, 0);
  t.equal(c.stats().missed, 1);
  t.equal(c.stats().written, 1);
});

t.test('a replica that acks late is not missed', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), up('c')]);
  begin(c, 1);
  c.onReply(1, 'b', { t: 'replica-write-reply' }, 10);
  const last = c.onReply(1, 'c', { t: 'replica-write-reply' }, 20);
  t.same(missed(last), []);
  t.same(last, [{ type: 'clear-timer', requestId: 1 }]);
  t.equal(c.inflight, 0);
});

t.test('a down replica with no stand-in (three nodes, N=3) is missed as soon as the others answered', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), down('c')], { targetsOf: sloppyTargets });
  const fan = begin(c, 1);
  t.same(fan.filter((a) => a.type === 'send').map((a) => (a as { to: string }).to), ['b'], 'nothing is sent to the down replica');
  const done = c.onReply(1, 'b', { t: 'replica-write-reply' }, 5);
  t.same(answered(done), ['written']);
  t.same(missed(done), [{ to: 'c', standIn: undefined }]);
});

t.test('a stand-in that acked holds the hint (missed, with standIn); one that failed leaves the hint to the coordinator', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), down('c')], { targetsOf: sloppyTargets }, [up('d')]);
  begin(c, 1);
  c.onReply(1, 'b', { t: 'replica-write-reply' }, 5);
  t.same(missed(c.onReply(1, 'd', { t: 'replica-write-reply' }, 6)), [{ to: 'c', standIn: 'd' }]);
  begin(c, 2);
  c.onReply(2, 'b', { t: 'replica-write-reply' }, 5);
  t.same(missed(c.onReply(2, 'd', { t: 'replica-error', code: 'KV_OVERLOADED', message: 'full' }, 6)), [{ to: 'c', standIn: undefined }]);
});

t.test('an error reply and a send that never left are missed; a write short of W is answered indeterminate and still hinted', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), up('c')]);
  begin(c, 1);
  c.onReply(1, 'b', { t: 'replica-write-reply' }, 5);
  t.same(missed(c.onReply(1, 'c', { t: 'replica-error', code: 'KV_IO', message: 'disk' }, 6)), [{ to: 'c', standIn: undefined }]);
  begin(c, 2);
  c.onReply(2, 'b', { t: 'replica-write-reply' }, 5);
  t.same(missed(c.onSendFailed(2, 'c', 6)), [{ to: 'c', standIn: undefined }]);
  begin(c, 3);
  const first = c.onSendFailed(3, 'b', 5);
  t.same(answered(first), [], 'W=2 may still be met by c');
  const second = c.onSendFailed(3, 'c', 6);
  t.same(answered(second), ['KV_INDETERMINATE']);
  t.same(missed(second), [{ to: 'b', standIn: undefined }, { to: 'c', standIn: undefined }], 'the local copy exists, so both others are owed it');
});

t.test('a write that failed locally reports nothing missed: nothing was sent', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), down('c')]);
  c.startPut(1, { key, value: enc.encode('v'), rid: rid(1) }, 0);
  const actions = c.onLocalResult(1, { ok: false, code: 'KV_TOO_LARGE', message: 'big' }, 1);
  t.same(answered(actions), ['KV_TOO_LARGE']);
  t.same(missed(actions), []);
  t.equal(c.inflight, 0);
});

t.test('answered puts that wait for acks do not count toward requestsMax, and are bounded', async (t) => {
  const c = coordinator(() => [up('a'), up('b'), up('c')], { requestsMax: 2, ridEntriesMax: limits.coordinatorLingeringPutsMax + 10 });
  for (let id = 1; id <= 3; id++) {
    begin(c, id);
    t.same(answered(c.onReply(id, 'b', { t: 'replica-write-reply' }, 1)), ['written']);
  }
  t.equal(c.inflight, 3, 'three answered puts wait for c');
  t.equal(c.stats().overloaded, 0, 'and none of them refused the next');
  const read = c.startGet(10, { key }, 2);
  t.notOk(read.some((a) => a.type === 'complete'), 'nor do they refuse a read');
  t.equal(c.stats().overloaded, 0);
  const big = coordinator(() => [up('a'), up('b'), up('c')], { ridEntriesMax: limits.coordinatorLingeringPutsMax + 10 });
  let early: { to: string; standIn: string | undefined }[] = [];
  for (let id = 1; id <= limits.coordinatorLingeringPutsMax + 1; id++) {
    begin(big, id);
    early = missed(big.onReply(id, 'b', { t: 'replica-write-reply' }, 1));
  }
  t.same(early, [{ to: 'c', standIn: undefined }], 'past the bound a put settles at once and hints its silent replica');
  t.equal(big.inflight, limits.coordinatorLingeringPutsMax);
});

t.test('missedReplicas: every replica that did not ack itself, once, never the coordinator', async (t) => {
  const targets: ReplicaInfo[] = [up('a'), up('b'), { id: 'd', dc: 'dc1', up: true, hintFor: 'c' }];
  const replicas = [up('a'), up('b'), down('c')];
  t.same(missedReplicas(targets, new Set(['a', 'b', 'd']), replicas, 'a'), [{ to: 'c', standIn: 'd' }]);
  t.same(missedReplicas(targets, new Set(['a']), replicas, 'a'), [
    { to: 'b', standIn: undefined },
    { to: 'c', standIn: undefined },
  ]);
  t.same(missedReplicas([up('a'), up('b')], new Set(['a', 'b']), [up('a'), up('b'), down('c'), down('e')], 'a'), [
    { to: 'c', standIn: undefined },
    { to: 'e', standIn: undefined },
  ]);
  t.same(missedReplicas([up('a')], new Set(), [up('a')], 'a'), [], 'the coordinator itself is never reported');
});
