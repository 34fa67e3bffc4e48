/**
 * The tail-at-scale parts of replication, driven by hand: latency estimates (hedge delay and
 * attempt timeout within their bounds), speculative reads at the coordinator (R replicas, one
 * more per hedge delay, slow peers asked last until they answer), rids known on every replica
 * (a second coordinator replicates the write it holds instead of minting a sibling), hedged
 * writes told to down replicas, and the driver waiting for the merge that brought a rid.
 */
import t from 'tap';
import { Buffer } from 'node:buffer';
import { ManualClock } from '../lib/base/clock.js';
import { silentLogger } from '../lib/base/log.js';
import { limits } from '../lib/base/limits.js';
import { applyClientWrite, decodeObject, encodeContext, encodeObject, join, mergeReplicas, readView, type DvvSet } from '../lib/causality/index.js';
import {
  Coordinator,
  dropDuplicateDots,
  HedgeBudget,
  LatencyEstimator,
  parseReplicaRequest,
  ReplicaRids,
  winnerOf,
  type CoordinatorAction,
  type CoordinatorResult,
  type ReplicaInfo,
} from '../lib/replication/index.js';
import type { ReplicaStore } from '../lib/store/index.js';
import { CoordinatorDriver } from '../lib/supervisor/coordinator-driver.js';
import type { PutRequest as ClientPut } from '../lib/protocol/client-messages.js';

const enc = new TextEncoder();
const key = enc.encode('k');
const rid = (n: number): Uint8Array => new Uint8Array(16).fill(n);
const up = (id: string): ReplicaInfo => ({ id, dc: 'dc1', up: true });
const down = (id: string): ReplicaInfo => ({ id, dc: 'dc1', up: false });
const objectOf = (actor: string, value: string): Uint8Array =>
  encodeObject(applyClientWrite(undefined, { value: enc.encode(value), context: undefined, actor, timestampMs: 1, policy: 'siblings', siblingsMax: 100 }));

const ofType = <T extends CoordinatorAction['type']>(actions: readonly CoordinatorAction[], type: T) =>
  actions.filter((a): a is Extract<CoordinatorAction, { type: T }> => a.type === type);
const sendsTo = (actions: readonly CoordinatorAction[]): string[] => ofType(actions, 'send').map((a) => a.to);
const results = (actions: readonly CoordinatorAction[]): CoordinatorResult[] => ofType(actions, 'complete').map((a) => a.result);
const codes = (actions: readonly CoordinatorAction[]): string[] => results(actions).map((r) => (r.type === 'error' ? r.code : r.type));

t.test('latency estimates: initial delay, floor and ceiling, attempt timeouts within bounds, bounded node count', async (t) => {
  const e = new LatencyEstimator({}, 2);
  t.equal(e.hedgeDelayMs('a'), limits.hedgeDelayMsInitial, 'a node never measured gets the initial delay');
  t.equal(e.smoothedMs('a'), undefined);
  for (let i = 0; i < 50; i++) e.sample('a', 1);
  t.equal(e.hedgeDelayMs('a'), limits.hedgeDelayMsMin, 'a fast steady node is hedged at the floor');
  t.equal(e.attemptTimeoutMs('a'), limits.attemptTimeoutMsMin, 'and suspected at the attempt floor');
  for (let i = 0; i < 50; i++) e.sample('b', 10_000);
  t.equal(e.hedgeDelayMs('b'), limits.hedgeDelayMsMax, 'a slow node is hedged at the ceiling');
  t.equal(e.attemptTimeoutMs('b'), limits.attemptTimeoutMsMax, 'and suspected at the attempt ceiling');
  for (let i = 0; i < 50; i++) e.sample('c', i % 2 === 0 ? 40 : 80);
  const jittery = e.hedgeDelayMs('c');
  t.ok(jittery > 80 && jittery < limits.hedgeDelayMsMax, `a node jittering between 40 and 80 ms is hedged above its worst case (${jittery} ms)`);
  t.equal(e.smoothedMs('a'), undefined, 'tracking a third node forgot the least recently sampled');
  e.sample('c', Number.NaN);
  e.sample('c', -1);
  t.equal(e.hedgeDelayMs('c'), jittery, 'nonsense samples are ignored');
  const bounded = new LatencyEstimator({ hedgeDelayMsMin: 5, hedgeDelayMsInitial: 7 });
  t.equal(bounded.hedgeDelayMs('x'), 7, 'bounds can be given');
});

t.test('replica rids: bounded, expiring, bound to the key they came with', async (t) => {
  const rids = new ReplicaRids({ entriesMax: 2, retentionMs: 100 });
  rids.note(rid(1), 11, 0);
  rids.note(rid(2), 22, 10);
  t.match(rids.lookup(rid(1), 50), { keyHash: 11, claimedBy: undefined, expiresAtMs: 100, dots: [] });
  rids.note(rid(3), 33, 20);
  t.equal(rids.size, 2);
  t.equal(rids.lookup(rid(1), 50), undefined, 'the oldest is forgotten beyond the bound');
  t.equal(rids.lookup(rid(3), 119)?.keyHash, 33);
  t.equal(rids.lookup(rid(3), 120), undefined, 'and each expires after the retention');
  t.equal(rids.size, 0, 'expired entries are swept');
  t.match(parseReplicaRequest({ t: 'replica-write', key, object: objectOf('a', 'v'), rid: rid(1) }), { ok: true, value: { rid: rid(1) } });
  t.match(parseReplicaRequest({ t: 'replica-write', key, object: objectOf('a', 'v'), rid: new Uint8Array(3) }), { ok: false, reason: /rid/ });
});

t.test('a read asks R replicas and hedges to a spare after the hedge delay; the silent peer is asked last until it answers', async (t) => {
  const c = new Coordinator({ self: { id: 'a', dc: 'dc1' }, placementOf: () => ({ replication: 3, replicas: [up('a'), up('b'), up('c')] }) });
  const start = c.startGet(1, { key }, 0);
  t.same(sendsTo(start), ['b'], 'quorum fan-out is the default: this node and b');
  const timer = ofType(start, 'set-timer')[0]!;
  t.equal(timer.atMs, limits.hedgeDelayMsInitial, 'woken at the hedge delay, not the deadline');
  const valid = objectOf('a', 'v');
  t.same(c.onLocalResult(1, { ok: true, object: valid }, 1), []);
  const hedged = c.onTimeout(1, timer.atMs);
  t.same(sendsTo(hedged), ['c'], 'b is silent past the hedge delay: c is asked too');
  t.same(ofType(hedged, 'set-timer').map((a) => a.atMs), [limits.coordinatorTimeoutMsDefault], 'no spare left: the next wake-up is the deadline');
  t.same(codes(c.onReply(1, 'c', { t: 'replica-read-reply', object: valid }, timer.atMs + 2)), ['read'], 'R reached without b');
  t.equal(c.stats().hedgedReads, 1);

  t.same(sendsTo(c.startGet(2, { key }, 1_000)), ['c'], 'the next read asks c, not the slow b');
  t.same(c.onReply(1, 'b', { t: 'replica-read-reply', object: valid }, 1_001).length > 0, true, 'b finally answers the first read (read repair may follow)');
  t.same(sendsTo(c.startGet(3, { key }, 1_002)), ['b'], 'any answer from b puts it back in order');

  c.startGet(4, { key }, 2_000);
  c.onLocalResult(4, { ok: true, object: valid }, 2_001);
  t.same(codes(c.onReply(4, 'b', { t: 'replica-read-reply', object: valid }, 2_002)), ['read']);
  t.equal(c.inflight, 2, 'reads 2 and 3 still wait for their answers; 4 is settled and gone');
  t.ok(c.hedgeDelayMs('b') >= limits.hedgeDelayMsMin, 'the hedge delay stays within its bounds');
});

t.test('hedges are rationed: out of budget, a read waits for its replicas', async (t) => {
  const budget = new HedgeBudget(0.5, 1);
  t.ok(budget.spend(), 'the saved hedge');
  t.notOk(budget.spend(), 'then none');
  budget.earn();
  t.notOk(budget.spend(), 'half a hedge is not one');
  budget.earn();
  t.ok(budget.spend(), 'two requests earn one');
  const c = new Coordinator({ self: { id: 'a', dc: 'dc1' }, placementOf: () => ({ replication: 3, replicas: [up('a'), up('b'), up('c')] }) });
  let hedged = 0;
  for (let id = 1; id <= 20; id++) {
    c.startGet(id, { key }, 0);
    hedged += sendsTo(c.onTimeout(id, limits.hedgeDelayMsInitial)).length;
  }
  t.ok(hedged >= limits.hedgeBudgetBurst && hedged < 20, `every read ran late; ${hedged} of 20 were hedged`);
});

t.test('out of hedges, a read still asks a spare once a replica is past its attempt timeout (a failover, not a hedge)', async (t) => {
  const c = new Coordinator({ self: { id: 'a', dc: 'dc1' }, placementOf: () => ({ replication: 3, replicas: [up('a'), up('b'), up('c')] }) });
  const valid = objectOf('a', 'v');
  // Spend the whole hedge budget on reads whose peer b is silent.
  let id = 1;
  for (; id <= limits.hedgeBudgetBurst + 5; id++) {
    c.startGet(id, { key }, 0);
    c.onTimeout(id, limits.hedgeDelayMsInitial);
  }
  const start = c.startGet(id, { key }, 1);
  c.onLocalResult(id, { ok: true, object: valid }, 2);
  const timer = ofType(start, 'set-timer')[0]!;
  const rationed = c.onTimeout(id, timer.atMs);
  t.same(sendsTo(rationed), [], 'at the hedge delay, with no hedge left, nothing more is asked');
  const wake = ofType(rationed, 'set-timer')[0]!.atMs;
  t.ok(wake < limits.coordinatorTimeoutMsDefault, `it wakes at b's attempt timeout (${wake} ms), not the deadline`);
  t.same(sendsTo(c.onTimeout(id, wake)), ['c'], 'past it, c is asked anyway');
  t.same(codes(c.onReply(id, 'c', { t: 'replica-read-reply', object: valid }, wake + 1)), ['read'], 'and the read completes without b');
});

t.test('a hedge that comes due after the read completed only re-arms the deadline', async (t) => {
  const c = new Coordinator({ self: { id: 'a', dc: 'dc1' }, placementOf: () => ({ replication: 3, replicas: [up('a'), up('b'), up('c')] }) });
  c.startGet(1, { key, timeoutMs: 1_000 }, 0);
  c.onLocalResult(1, { ok: true, object: objectOf('a', 'v') }, 1);
  t.same(sendsTo(c.onTimeout(1, limits.hedgeDelayMsInitial)), ['c'], 'b is slow: c is asked');
  t.same(codes(c.onReply(1, 'c', { t: 'replica-read-reply', object: objectOf('a', 'v') }, 150)), ['read'], 'R met without b');
  t.same(c.onTimeout(1, 300), [{ type: 'set-timer', requestId: 1, atMs: 1_000 }], 'no hedge once complete');
  t.same(codes(c.onTimeout(1, 1_000)), [], 'the deadline ends the wait for read repair');
  t.equal(c.inflight, 0);
});

t.test('a coordinator that holds a rid from a replica write replicates that write: no second sibling', async (t) => {
  const c = new Coordinator({ self: { id: 'b', dc: 'dc1' }, placementOf: () => ({ replication: 3, replicas: [up('a'), up('b'), up('c')] }) });
  c.noteReplicaWrite(rid(7), key, 0);
  const start = c.startPut(1, { key, value: enc.encode('v'), rid: rid(7) }, 10);
  t.same(ofType(start, 'local'), [{ type: 'local', requestId: 1, op: 'read-rid-object', key, rid: rid(7) }], 'it reads what it holds instead of writing');
  const held = objectOf('a', 'v');
  const fanOut = c.onLocalResult(1, { ok: true, object: held }, 11);
  t.same(ofType(fanOut, 'send').map((s) => [s.to, s.message]), [
    ['a', { t: 'replica-write', key, object: held, rid: rid(7) }],
    ['c', { t: 'replica-write', key, object: held, rid: rid(7) }],
  ], 'and replicates it with its rid');
  const done = c.onReply(1, 'c', { t: 'replica-write-reply' }, 12);
  t.same(results(done), [{ type: 'written', context: encodeContext(join(decodeObject(held))) }], 'written, with the context of the object held');
  t.equal(c.stats().adoptedWrites, 1);
  t.same(codes(c.startPut(2, { key, value: enc.encode('v'), rid: rid(7) }, 13)), ['written'], 'a later retry replays the outcome');

  c.noteReplicaWrite(rid(8), enc.encode('other'), 0);
  t.same(codes(c.startPut(3, { key, value: enc.encode('v'), rid: rid(8) }, 14)), ['KV_BAD_REQUEST'], 'a rid used for another key is refused');
  c.noteReplicaWrite(rid(9), key, 0);
  c.startPut(4, { key, value: enc.encode('v'), rid: rid(9) }, 15);
  t.same(codes(c.onLocalResult(4, { ok: true, object: undefined }, 16)), ['KV_INDETERMINATE'], 'nothing to read: indeterminate');
  c.noteReplicaWrite(rid(10), key, 0);
  c.startPut(5, { key, value: enc.encode('v'), rid: rid(10) }, 15);
  t.same(codes(c.onLocalResult(5, { ok: true, object: new Uint8Array([9, 9]) }, 16)), ['KV_INDETERMINATE'], 'an unreadable object: indeterminate');
});

t.test('a hedged write asks the other replicas about its rid, then is also sent, unawaited, to the replicas marked down', async (t) => {
  const c = new Coordinator({ self: { id: 'a', dc: 'dc1' }, placementOf: () => ({ replication: 3, replicas: [up('a'), up('b'), down('c')] }) });
  const asked = c.startPut(1, { key, value: enc.encode('v'), rid: rid(1), hedged: true }, 0);
  t.same(ofType(asked, 'send').map((s) => [s.to, s.message.t, s.requestId]), [['b', 'rid-query', 1], ['c', 'rid-query', undefined]], 'every other replica is asked; the down one is not waited for');
  t.same(ofType(asked, 'local'), [], 'nothing minted yet');
  const minted = c.onReply(1, 'b', { t: 'rid-query-reply', state: 'unknown' }, 1);
  t.same(ofType(minted, 'local').map((a) => a.op), ['coordinate-write'], 'nobody else has it: minted here');
  const fanOut = c.onLocalResult(1, { ok: true, context: encodeContext([]), object: objectOf('a', 'v') }, 3);
  t.same(ofType(fanOut, 'send').map((s) => [s.to, s.requestId]), [['b', 1], ['c', undefined]], 'c, down, gets the write with its rid and no request id');
  c.startPut(2, { key, value: enc.encode('w'), rid: rid(2) }, 0);
  t.same(sendsTo(c.onLocalResult(2, { ok: true, context: encodeContext([]), object: objectOf('a', 'w') }, 1)), ['b'], 'a first attempt is not');
});

t.test('driver: a replica write with a rid is noted on receipt, and coordinating that rid waits for its merge', async (t) => {
  const held = objectOf('a', 'v');
  let finishMerge!: () => void;
  let stored: Uint8Array | undefined;
  const calls: string[] = [];
  const store = {
    mergeObject: (_key: Uint8Array, object: Uint8Array) =>
      new Promise<void>((resolve) => {
        calls.push('merge');
        finishMerge = () => ((stored = object), resolve());
      }),
    readObject: async () => (calls.push('read'), stored),
    coordinateWrite: async () => {
      throw new Error('must not mint');
    },
  } as unknown as ReplicaStore;
  const sent: unknown[] = [];
  const coordinator = new Coordinator({ self: { id: 'b', dc: 'dc1' }, placementOf: () => ({ replication: 2, replicas: [up('a'), up('b')] }) });
  const driver = new CoordinatorDriver({ coordinator, store, clock: new ManualClock(), logger: silentLogger, selfId: 'b', sendToNode: (_id, m) => (sent.push(m), true) });
  t.teardown(() => driver.close());
  const served = driver.serve({ t: 'replica-write', key, object: held, rid: rid(5) });
  const put = driver.write({ t: 'put', id: 1, key, value: enc.encode('v'), rid: rid(5), w: 1, attempt: 1 } as ClientPut);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(calls, ['merge'], 'the hedged copy waits for the merge of the replica write');
  finishMerge();
  t.same(await served, { t: 'replica-write-reply' });
  const written = await put;
  t.same(Buffer.from(written.context), Buffer.from(encodeContext(join(decodeObject(held)))), 'then answers with the context of the merged object');
  t.same(calls, ['merge', 'read'], 'read after the merge; nothing minted');
  t.ok(sent.length === 1, 'and re-replicated it to a');
  t.same(await driver.serve({ t: 'rid-query', rid: rid(5), key }, 'a'), { t: 'rid-query-reply', state: 'coordinating' }, 'asked about it, this node says it coordinated it');
  t.same(await driver.serve({ t: 'rid-query', rid: rid(6), key }, 'a'), { t: 'rid-query-reply', state: 'unknown' });
});

t.test('tied hedges: a replica that coordinates or holds the rid gets the write; one that knows nothing keeps the claim', async (t) => {
  const placementOf = () => ({ replication: 3, replicas: [up('a'), up('b'), up('c')] });
  const a = new Coordinator({ self: { id: 'a', dc: 'dc1' }, placementOf });
  const b = new Coordinator({ self: { id: 'b', dc: 'dc1' }, placementOf });
  const value = enc.encode('v');

  // a coordinates rid 1 (its disk is slow); b gets the hedge, asks, and forwards to a.
  a.startPut(1, { key, value, rid: rid(1) }, 0);
  t.equal(a.ridQuery(rid(1), key, 'b', 1), 'coordinating');
  t.equal(a.ridQuery(rid(1), enc.encode('other'), 'b', 1), 'unknown', 'a rid of another key is not this write');
  b.startPut(1, { key, value, rid: rid(1), hedged: true }, 0);
  const tied = b.onReply(1, 'a', { t: 'rid-query-reply', state: 'coordinating' }, 5);
  t.same(ofType(tied, 'send').map((s) => [s.to, s.message.t, (s.message as { hops?: number }).hops]), [['a', 'forward-put', 1]], 'forwarded to a, one hop');
  t.same(b.onReply(1, 'c', { t: 'rid-query-reply', state: 'unknown' }, 6), [], 'later answers are ignored');
  const context = encodeContext([]);
  t.same(codes(b.onReply(1, 'a', { t: 'forward-put-reply', context }, 7)), ['written'], 'a\'s outcome is b\'s');
  t.equal(b.stats().tiedWrites, 1);
  t.same(codes(b.startPut(2, { key, value, rid: rid(1), hedged: true }, 8)), ['written'], 'a retry at b replays it');

  // c asks b about rid 2 before minting a hedge: b keeps c's claim and forwards its own copy to c.
  t.equal(b.ridQuery(rid(2), key, 'c', 10), 'unknown');
  const forwarded = b.startPut(3, { key, value, rid: rid(2) }, 11);
  t.same(ofType(forwarded, 'send').map((s) => [s.to, s.message.t]), [['c', 'forward-put']], 'the first copy goes to the claimer, not minted');
  t.same(ofType(b.onSendFailed(3, 'c', 12), 'local').map((x) => x.op), ['coordinate-write'], 'the claimer unreachable: minted here after all');
  t.equal(b.stats().untiedWrites, 1);

  // A tie whose holder stops answering is minted here at the holder's attempt timeout; late answers are ignored.
  t.equal(a.ridQuery(rid(9), key, 'b', 50), 'unknown');
  const tiedToB = a.startPut(9, { key, value, rid: rid(9) }, 51);
  const untieAt = ofType(tiedToB, 'set-timer')[0]!.atMs;
  t.ok(untieAt < 51 + limits.coordinatorTimeoutMsDefault, 'woken before the deadline');
  const untied = a.onTimeout(9, untieAt);
  t.same(ofType(untied, 'local').map((x) => x.op), ['coordinate-write'], 'minted here after all');
  t.same(a.onReply(9, 'b', { t: 'forward-put-reply', context }, untieAt + 1), [], 'a late answer of the holder is ignored');
  const replicated = a.onLocalResult(9, { ok: true, context, object: objectOf('a', 'v') }, untieAt + 2);
  t.same(a.onReply(9, 'b', { t: 'rid-query-reply', state: 'unknown' }, untieAt + 3), [], 'so is a stray query answer while replicating');
  t.same(codes(a.onReply(9, 'c', { t: 'replica-write-reply' }, untieAt + 4)), ['written'], 'and the write completes on its own');
  void replicated;

  // A held rid is 'held'; a claim never replaces it.
  b.noteReplicaWrite(rid(4), key, 20);
  t.equal(b.ridQuery(rid(4), key, 'c', 21), 'held');
  t.equal(b.ridQuery(rid(4), enc.encode('other'), 'c', 21), 'unknown');
  t.same(ofType(b.startPut(4, { key, value, rid: rid(4) }, 22), 'local').map((x) => x.op), ['read-rid-object'], 'still adopted, not forwarded');

  // Nobody answers before the wait ends: minted; the deadline still holds afterwards.
  const start = b.startPut(5, { key, value, rid: rid(5), hedged: true, timeoutMs: 1_000 }, 100);
  const waitAt = ofType(start, 'set-timer')[0]!.atMs;
  t.ok(waitAt < 1_100, 'the wait is shorter than the deadline');
  const minted = b.onTimeout(5, waitAt);
  t.same(ofType(minted, 'local').map((x) => x.op), ['coordinate-write']);
  t.same(ofType(minted, 'set-timer').map((x) => x.atMs), [1_100]);

  // A waited-for replica whose link is gone counts as 'unknown'; with every other replica down, nothing is waited for.
  b.startPut(7, { key, value, rid: rid(7), hedged: true }, 200);
  t.same(b.onSendFailed(7, 'a', 201), []);
  t.same(ofType(b.onReply(7, 'c', { t: 'rid-query-reply', state: 'unknown' }, 202), 'local').map((x) => x.op), ['coordinate-write']);
  const lonely = new Coordinator({ self: { id: 'b', dc: 'dc1' }, placementOf: () => ({ replication: 3, replicas: [down('a'), up('b'), down('c')] }) });
  const alone = lonely.startPut(1, { key, value, rid: rid(8), hedged: true, w: 1 }, 0);
  t.same(ofType(alone, 'local').map((x) => x.op), ['coordinate-write'], 'minted at once');
  t.equal(ofType(alone, 'send').filter((x) => x.message.t === 'rid-query').length, 2, 'the down replicas still hear the claim');

  // Too many hops: the holder cannot be reached through forwarding any more, so it is minted here.
  t.equal(a.ridQuery(rid(6), key, 'c', 30), 'unknown');
  t.same(ofType(a.startPut(6, { key, value, rid: rid(6), hops: 2 }, 31), 'local').map((x) => x.op), ['coordinate-write']);
  t.match(parseReplicaRequest({ t: 'rid-query', key, rid: rid(1) }), { ok: true });
  t.match(parseReplicaRequest({ t: 'rid-query', key, rid: new Uint8Array(2) }), { ok: false });
});

t.test('a client write minted by two coordinators: the losing mint is voided, and merging the result voids it everywhere', async (t) => {
  const v = enc.encode('v');
  const mint = (before: DvvSet | undefined, actor: string, value = v): DvvSet =>
    applyClientWrite(before, { value, context: undefined, actor, timestampMs: 1, policy: 'siblings', siblingsMax: 100 });
  const both = mergeReplicas(mint(undefined, 'a'), mint(undefined, 'b'));
  t.equal(readView(both).values.length, 2, 'two siblings of one write');
  const at = (set: DvvSet, actor: string): number => set.find((e) => e.actor === actor)!.counter;
  const dots = [{ actor: 'a', counter: at(both, 'a'), attempt: 0 }, { actor: 'b', counter: at(both, 'b'), attempt: 1 }];
  t.same(winnerOf(dots), dots[1], 'the latest attempt wins');
  t.same(winnerOf([{ actor: 'a', counter: 1, attempt: 1 }, { actor: 'b', counter: 3, attempt: 1 }]).actor, 'b', 'ties go to the larger actor');
  const edited = dropDuplicateDots(encodeObject(both), dots)!;
  t.same(readView(decodeObject(edited)).values.map((x) => Buffer.from(x!).toString()), ['v'], 'one sibling left');
  const elsewhere = mint(undefined, 'a');
  const merged = mergeReplicas(elsewhere, decodeObject(edited));
  t.same(readView(merged).values.length, 1, 'a replica still holding the loser drops it when the result arrives');
  t.same(readView(mergeReplicas(decodeObject(edited), elsewhere)).values.length, 1, 'in either merge order');
  t.same(join(decodeObject(edited)), join(both), 'the history is kept: both events stay seen');

  t.equal(dropDuplicateDots(encodeObject(mint(undefined, 'a')), dots), undefined, 'the winner not here yet: nothing dropped');
  t.equal(dropDuplicateDots(encodeObject(mergeReplicas(mint(undefined, 'a'), mint(undefined, 'b', enc.encode('other')))), dots), undefined, 'different values are never dropped');
  const older = mint(undefined, 'a');
  const newer = mergeReplicas(mint(older, 'a', enc.encode('w')), mint(undefined, 'b'));
  const loserFirst = [{ actor: 'a', counter: at(older, 'a'), attempt: 0 }, { actor: 'b', counter: at(newer, 'b'), attempt: 1 }];
  t.equal(readView(newer).values.length, 3, 'a holds two siblings: the loser and a newer concurrent write');
  t.ok(dropDuplicateDots(encodeObject(newer), loserFirst) !== undefined, 'a loser that is its entry\'s oldest sibling goes');
  const loserNewest = [{ actor: 'a', counter: at(newer, 'a'), attempt: 0 }, { actor: 'b', counter: at(newer, 'b'), attempt: 1 }];
  const voided = dropDuplicateDots(encodeObject(mergeReplicas(mint(older, 'a'), mint(undefined, 'b'))), loserNewest);
  t.ok(voided !== undefined, 'a loser that is not its entry\'s oldest sibling is voided in place');
  t.equal(readView(decodeObject(voided!)).values.length, 2, 'leaving the older write of a and the winner');
  t.equal(dropDuplicateDots(edited, dots), undefined, 'dropping twice changes nothing');
});

t.test('a replica that hears of two mints of one rid asks once to drop the loser', async (t) => {
  const c = new Coordinator({ self: { id: 'a', dc: 'dc1' }, actor: 'a~1', placementOf: () => ({ replication: 3, replicas: [up('a'), up('b'), up('c')] }) });
  c.startPut(1, { key, value: enc.encode('v'), rid: rid(1) }, 0);
  const minted = c.onLocalResult(1, { ok: true, context: encodeContext([{ actor: 'a~1', counter: 1 }]), object: objectOf('a~1', 'v') }, 1);
  const sent = ofType(minted, 'send').map((s) => s.message as { dot?: unknown });
  t.same(sent.map((m) => m.dot), [{ actor: 'a~1', counter: 1, attempt: 0 }, { actor: 'a~1', counter: 1, attempt: 0 }], 'replica writes name the mint, by the store\'s actor');
  const found = c.noteReplicaWrite(rid(1), key, 2, { actor: 'b', counter: 4, attempt: 1 });
  t.same(found, [{ type: 'local', requestId: undefined, op: 'drop-duplicates', key, rid: rid(1), dots: [{ actor: 'a~1', counter: 1, attempt: 0 }, { actor: 'b', counter: 4, attempt: 1 }] }]);
  t.same(c.noteReplicaWrite(rid(1), key, 3, { actor: 'b', counter: 4, attempt: 1 }), [], 'reported once');
  t.equal(c.stats().duplicateMints, 1);
  t.same(sendsTo(c.spread(key, objectOf('a', 'v'))), ['b', 'c'], 'the result goes to the other replicas');

  // The other order: the other mint is heard of while this coordinator's own write is in flight.
  c.startPut(2, { key, value: enc.encode('w'), rid: rid(2), attempt: 1 }, 10);
  t.same(c.noteReplicaWrite(rid(2), key, 11, { actor: 'c', counter: 2, attempt: 0 }), []);
  const late = c.onLocalResult(2, { ok: true, context: encodeContext([{ actor: 'a~1', counter: 2 }]), object: objectOf('a~1', 'w') }, 12);
  t.same(ofType(late, 'local').map((x) => x.op), ['drop-duplicates'], 'found when its own mint completes');
  t.match(parseReplicaRequest({ t: 'replica-write', key, object: objectOf('a', 'v'), rid: rid(1), dot: { actor: 'a', counter: 1, attempt: 0 } }), { ok: true, value: { dot: { actor: 'a' } } });
  t.match(parseReplicaRequest({ t: 'replica-write', key, object: objectOf('a', 'v'), dot: { actor: 'a', counter: 1, attempt: 0 } }), { ok: false }, 'a dot needs a rid');
  t.match(parseReplicaRequest({ t: 'replica-write', key, object: objectOf('a', 'v'), rid: rid(1), dot: { actor: 'a', counter: 0, attempt: 0 } }), { ok: false });
});

t.test('driver: a duplicate mint is dropped from the store once the replica write is merged, and the result is spread', async (t) => {
  const v = enc.encode('v');
  const mine = applyClientWrite(undefined, { value: v, context: undefined, actor: 'a', timestampMs: 1, policy: 'siblings', siblingsMax: 100 });
  const theirs = applyClientWrite(undefined, { value: v, context: undefined, actor: 'b', timestampMs: 1, policy: 'siblings', siblingsMax: 100 });
  let stored: DvvSet = mine;
  const store = {
    mergeObject: async (_key: Uint8Array, object: Uint8Array) => void (stored = mergeReplicas(stored, decodeObject(object))),
    readObject: async () => encodeObject(stored),
    coordinateWrite: async () => ({ context: encodeContext(join(mine)), object: encodeObject(mine) }),
  } as unknown as ReplicaStore;
  const sent: { to: string; body: { t: string } }[] = [];
  const coordinator = new Coordinator({ self: { id: 'a', dc: 'dc1' }, placementOf: () => ({ replication: 2, replicas: [up('a'), up('b')] }) });
  const driver = new CoordinatorDriver({ coordinator, store, clock: new ManualClock(), logger: silentLogger, selfId: 'a', sendToNode: (to, m) => (sent.push({ to, body: m.body as { t: string } }), true) });
  t.teardown(() => driver.close());
  const put = driver.write({ t: 'put', id: 1, key, value: v, rid: rid(3), w: 1 } as ClientPut);
  await new Promise((resolve) => setImmediate(resolve));
  await put;
  const dot = { actor: 'b', counter: theirs[0]!.counter, attempt: 1 };
  t.same(await driver.serve({ t: 'replica-write', key, object: encodeObject(theirs), rid: rid(3), dot }, 'b'), { t: 'replica-write-reply' });
  for (let i = 0; i < 20 && readView(stored).values.length > 1; i++) await new Promise((resolve) => setImmediate(resolve));
  t.same(readView(stored).values.length, 1, 'one sibling left in the store');
  t.ok(sent.some((s) => s.to === 'b' && s.body.t === 'replica-write'), 'and the result went to b');
});
