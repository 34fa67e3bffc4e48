/**
 * One client write, one sibling, on every merge path (lib/causality mint-records.ts): a write
 * minted by a coordinator that went silent and again by the one the client retried with
 * collapses to one sibling however the two copies travel and meet — including after the
 * client wrote over the retry's copy, the case that made a returning copy an old sibling
 * beside newer writes. Also: the stored-object codec with mints, and convergence of every
 * merge order (seeded).
 */

import t from 'tap';
import { Buffer } from 'node:buffer';
import { ErrorCode } from '../lib/base/errors.js';
import { limits } from '../lib/base/limits.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { dropDuplicateDots, type MintDot } from '../lib/replication/index.js';
import {
  applyClientWrite,
  decodeObject,
  encodeContext,
  encodeObject,
  join,
  mergeReplicas,
  readView,
  type ClientWrite,
  type Mint,
  type StoredObject,
} from '../lib/causality/index.js';

const rid = (n: number): Uint8Array => Buffer.alloc(16, n);
const bytes = (s: string): Uint8Array => Buffer.from(s);
const text = (v: Uint8Array | null): string => (v === null ? '<deleted>' : Buffer.from(v).toString());

function write(before: StoredObject | undefined, actor: string, value: string, timestampMs: number, mint?: Mint, context?: StoredObject): StoredObject {
  const w: ClientWrite = { value: bytes(value), context: context === undefined ? undefined : encodeContext(join(context)), actor, timestampMs, policy: 'siblings', siblingsMax: 100, ...(mint ? { mint } : {}) };
  return applyClientWrite(before, w);
}

const live = (object: StoredObject): string[] => readView(object, 'siblings', 0).values.map((v) => text(v)).sort();
const same = (a: StoredObject, b: StoredObject): boolean => Buffer.compare(encodeObject(a), encodeObject(b)) === 0;

t.test('stored objects with mints and records round trip, and old objects still decode', async (t) => {
  const a = write(undefined, 'node-a', 'x', 1_000, { rid: rid(1), attempt: 0 });
  t.same(decodeObject(encodeObject(a)), a, 'one minted sibling');
  const b = write(undefined, 'node-b', 'x', 1_001, { rid: rid(1), attempt: 1 });
  const over = write(b, 'node-b', 'y', 1_002, { rid: rid(2), attempt: 0 }, b);
  t.equal(over[0]!.records?.length, 1, 'the superseded retry is recorded');
  t.same(decodeObject(encodeObject(over)), over, 'records round trip');
  const plain = write(undefined, 'node-a', 'x', 1_000);
  t.equal(encodeObject(plain)[1], 0, 'an object without mints keeps the old encoding (no flag)');
  t.equal(encodeObject(a)[1], 2, 'the mints flag is set exactly when a mint is present');
  const encoded = encodeObject(over);
  for (let cut = 4; cut < encoded.length; cut++) {
    t.throws(() => decodeObject(encoded.subarray(0, cut)), { code: ErrorCode.corruption }, `truncated at ${cut}`);
  }
  t.throws(() => applyClientWrite(undefined, { value: bytes('x'), context: undefined, actor: 'a', timestampMs: 1, policy: 'siblings', siblingsMax: 1, mint: { rid: new Uint8Array(0), attempt: 0 } }), RangeError, 'an empty rid is refused');
});

t.test('the partition case: the silent coordinator copy returns after the client wrote over its retry', async (t) => {
  // A applied X (first attempt) and went silent; B minted the retry; the client wrote Y with B's context.
  const atA = write(undefined, 'node-a', 'x', 1_000, { rid: rid(1), attempt: 0 });
  const atB = write(undefined, 'node-b', 'x', 1_100, { rid: rid(1), attempt: 1 });
  const afterY = write(atB, 'node-b', 'y', 1_200, { rid: rid(2), attempt: 0 }, atB);
  t.same(live(afterY), ['y']);
  // A's copy comes back by anti-entropy, a hint or read repair: a plain merge.
  const atReplica = mergeReplicas(afterY, atA);
  t.same(live(atReplica), ['y'], 'the returning copy of X is not an old sibling beside Y');
  const atAAfter = mergeReplicas(atA, afterY);
  t.same(live(atAAfter), ['y'], 'and A drops its own copy when it hears of Y');
  t.ok(same(atReplica, atAAfter), 'both orders converge on the same bytes');
  // Without mints the same history leaves X beside Y: the test can tell the difference.
  const strip = (o: StoredObject): StoredObject => o.map((e) => ({ actor: e.actor, counter: e.counter, siblings: e.siblings.map(({ value, timestampMs }) => ({ value, timestampMs })) }));
  t.same(live(mergeReplicas(strip(afterY), strip(atA))), ['x', 'y'], 'control: without mints X would come back');
});

t.test('the hedge case: a reader wrote over the first copy before the hedge copy arrived', async (t) => {
  const atA = write(undefined, 'node-a', 'x', 1_000, { rid: rid(1), attempt: 0 });
  const afterY = write(atA, 'node-a', 'y', 1_050, { rid: rid(2), attempt: 0 }, atA);
  t.equal(afterY[0]!.records?.[0]?.attempt, 0, 'the superseded first attempt is recorded too');
  const hedge = write(undefined, 'node-b', 'x', 1_020, { rid: rid(1), attempt: 1 });
  t.same(live(mergeReplicas(afterY, hedge)), ['y'], 'the hedge copy of X does not come back beside Y');
  t.same(live(mergeReplicas(hedge, afterY)), ['y'], 'in either order');
  const late = write(afterY, 'node-a', 'z', 1_050 + limits.mintRecordFirstRetentionMs + 10, { rid: rid(3), attempt: 0 }, afterY);
  t.notOk(late[0]!.records?.some((r) => r.rid[0] === 1), "a first attempt's record goes after its shorter retention");
});

t.test('a coordinator that re-mints a write after losing its first copy does not lose the write', async (t) => {
  const first = write(undefined, 'node-a', 'x', 1_000, { rid: rid(5), attempt: 0 });
  const atB = mergeReplicas(undefined, first); // replicated before node-a lost it
  // node-a restarts without the first copy and mints the write again (a forwarded retry):
  // its counter starts above the first copy's, so its history covers that dot.
  const again = write(undefined, 'node-a', 'x', 2_000, { rid: rid(5), attempt: 1 });
  t.ok(again[0]!.counter > first[0]!.counter, 'the new dot is above the first');
  for (const [name, merged] of [
    ['B merges A', mergeReplicas(atB, again)],
    ['A merges B', mergeReplicas(again, atB)],
  ] as const) {
    t.same(live(merged), ['x'], `${name}: the write is still there`);
    t.equal(merged[0]!.records, undefined, `${name}: no record of the covered copy while its twin lives`);
  }
});

t.test('a reader that saw only the first copy writes over it where the retry already voided it: the retry goes too', async (t) => {
  const atA = write(undefined, 'node-a', 'x', 1_000, { rid: rid(1), attempt: 0 });
  const atB = write(undefined, 'node-b', 'x', 1_010, { rid: rid(1), attempt: 1 });
  const afterY = write(undefined, 'node-c', 'y', 1_050, { rid: rid(2), attempt: 0 }, atA); // its context saw only A's copy
  t.same(live(mergeReplicas(mergeReplicas(atA, afterY), atB)), ['y'], 'Y first, then the retry: X stays gone');
  t.same(live(mergeReplicas(mergeReplicas(atA, atB), afterY)), ['y'], 'the retry first (A voided), then Y: X stays gone too');
  t.same(live(mergeReplicas(mergeReplicas(atB, afterY), atA)), ['y'], 'a replica with the retry takes Y, then A arrives: gone');
});

t.test('two live copies of one write keep the retry, in every order', async (t) => {
  const atA = write(undefined, 'node-a', 'x', 1_000, { rid: rid(1), attempt: 0 });
  const atB = write(undefined, 'node-b', 'x', 1_100, { rid: rid(1), attempt: 1 });
  const ab = mergeReplicas(atA, atB);
  const ba = mergeReplicas(atB, atA);
  t.same(live(ab), ['x'], 'one sibling');
  t.ok(same(ab, ba), 'order does not matter');
  const voided = ab.find((e) => e.actor === 'node-a')!;
  t.same(voided.siblings.map((s) => [s.value, s.expiresAtMs]), [[null, 1]], "the first attempt's copy is voided: a tombstone expired long ago");
  t.equal(voided.counter, atA[0]!.counter, 'its dot stays in the history');
  t.same(live(mergeReplicas(atA, ab)), ['x'], 'a replica still holding the dropped copy gives it up');
  const other = write(undefined, 'node-c', 'x', 1_050, { rid: rid(9), attempt: 0 });
  t.same(live(mergeReplicas(ab, other)), ['x', 'x'], 'an equal value from another write stays a sibling');
});

t.test('records are bounded by count and by retention', async (t) => {
  let object: StoredObject | undefined;
  const writes = limits.mintRetryRecordsPerActor + 10;
  for (let i = 0; i < writes; i++) object = write(object, 'node-b', `v${i}`, 1_000 + i, { rid: rid(i + 1), attempt: 1 }, object);
  t.equal(object![0]!.records?.length, limits.mintRetryRecordsPerActor, 'at most mintRetryRecordsPerActor retries');
  for (let i = 0; i < 10; i++) object = write(object, 'node-b', `f${i}`, 2_000 + i, { rid: rid(200 + i), attempt: 0 }, object);
  const records = object![0]!.records!;
  t.equal(records.filter((r) => r.attempt === 0).length, limits.mintRecordsPerActor, 'and at most mintRecordsPerActor first attempts');
  t.equal(records.length, limits.mintRetryRecordsPerActor + limits.mintRecordsPerActor, 'each class has its own cap');
  t.same(decodeObject(encodeObject(object!)), object, 'a full record list round trips');
  const later = write(object, 'node-b', 'late', 2_100 + limits.mintRecordRetentionMs, { rid: rid(250), attempt: 0 }, object);
  t.equal(later[0]!.records, undefined, 'records older than their retention are dropped');
});

t.test('random merge orders of copies of retried writes converge (seeded)', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed}`);
  const rng = new SeededRng(seed);
  const actors = ['node-a', 'node-b', 'node-c'];
  interface ClientWrite {
    n: number;
    context: StoredObject | undefined;
    tried: Set<number>;
  }
  for (let round = 0; round < 1_000; round++) {
    const states: StoredObject[] = actors.map(() => []);
    const writes: ClientWrite[] = [];
    for (let step = 0; step < 8; step++) {
      const at = rng.int(3);
      const action = rng.int(3);
      if (action === 0 || writes.length === 0) {
        // A client write: its context is what the client read (here: one replica's state, or none).
        const w: ClientWrite = { n: writes.length, context: rng.int(2) === 0 ? states[at] : undefined, tried: new Set([at]) };
        writes.push(w);
        states[at] = write(states[at], actors[at]!, `w${w.n}`, 1_000 + step, { rid: rid(w.n + 1), attempt: 0 }, w.context);
      } else if (action === 1) {
        // A retry of an earlier client write at a coordinator it has not tried: same rid, same context.
        const w = writes[rng.int(writes.length)]!;
        if (w.tried.has(at)) continue;
        w.tried.add(at);
        states[at] = write(states[at], actors[at]!, `w${w.n}`, 1_000 + step, { rid: rid(w.n + 1), attempt: w.tried.size - 1 }, w.context);
      } else {
        states[at] = mergeReplicas(states[at], states[rng.int(3)]!);
      }
    }
    const orders = [
      [0, 1, 2],
      [2, 1, 0],
      [1, 0, 2],
    ];
    const merged = orders.map((order) => order.reduce<StoredObject | undefined>((acc, k) => mergeReplicas(acc, states[k]!), undefined)!);
    // Replicas that merged in different orders may have voided different twins on the way
    // (records are bounded); voids are one-way, so one exchange of the results converges.
    const results = merged.map((r) => merged.reduce((acc, o) => mergeReplicas(acc, o), r));
    const ok = results.every((r) => same(r, results[0]!));
    if (!ok) {
      t.fail(`round ${round}: merge orders diverged: ${results.map((r) => live(r).join(',')).join(' | ')}`);
      return;
    }
    // Every client write that no later write superseded shows once at most.
    const shown = live(results[0]!);
    if (new Set(shown).size !== shown.length) {
      t.fail(`round ${round}: one client write shows twice: ${shown.join(',')}`);
      return;
    }
  }
  t.pass('every merge order converged, and no client write showed twice');
});

t.test('a write minted several times is never lost, whatever merges, re-mints and duplicate drops run (seeded)', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed}`);
  const rng = new SeededRng(seed);
  const actors = ['node-a', 'node-b', 'node-c'];
  for (let round = 0; round < 500; round++) {
    let states: StoredObject[] = actors.map(() => []);
    const dots: MintDot[] = [];
    const attempts = 1 + rng.int(3);
    for (let attempt = 0; attempt < attempts; attempt++) {
      const at = (attempt + rng.int(3)) % 3;
      if (dots.some((d) => d.actor === actors[at])) continue;
      states[at] = write(states[at], actors[at]!, 'x', 1_000 + attempt, { rid: rid(7), attempt });
      dots.push({ actor: actors[at]!, counter: states[at]!.find((e) => e.actor === actors[at])!.counter, attempt });
    }
    for (let step = 0; step < 6; step++) {
      const at = rng.int(3);
      if (rng.int(8) === 0 && dots.some((d) => d.actor === actors[at])) {
        // This coordinator loses its copy and mints the write again (a forwarded retry after a restart).
        const attempt = Math.max(...dots.map((d) => d.attempt)) + 1;
        states[at] = write(undefined, actors[at]!, 'x', 2_000 + step, { rid: rid(7), attempt });
        dots.push({ actor: actors[at]!, counter: states[at]![0]!.counter, attempt });
      } else if (rng.int(3) === 0 && states[at]!.length > 0 && dots.length > 1) {
        const edited = dropDuplicateDots(encodeObject(states[at]!), dots);
        if (edited !== undefined) states[at] = decodeObject(edited);
      } else {
        states[at] = mergeReplicas(states[at], states[rng.int(3)]!);
      }
    }
    states = states.map((s) => states.reduce((acc, o) => mergeReplicas(acc, o), s));
    const shown = live(states[0]!);
    if (shown.length !== 1) {
      t.fail(`round ${round}: the write shows ${shown.length} times after every merge (${dots.length} mints)`);
      return;
    }
  }
  t.pass('one copy of the write stays, every time');
});
