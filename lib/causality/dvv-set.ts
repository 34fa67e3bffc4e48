/**
 * Dotted version vector sets: a key's concurrent siblings together with their causal history.
 * Pure values and functions, any thread (in practice the shard that owns the key).
 *
 * Follows Almeida, Baquero, Gonçalves, Preguiça, Fonte, "Scalable and Accurate Causality
 * Tracking for Eventually Consistent Stores" (DAIS 2014) and Riak's dvvset.erl. A set holds
 * one entry per actor (the replica that coordinated writes): a counter n — that actor's events
 * 1..n are in the causal history — and the siblings its latest events still hold, newest
 * first: siblings[k] was written by event (actor, n − k), its "dot". `join` is the version
 * vector; `sync` merges two replicas' states; `update` is a new event coordinated by a replica
 * with a client's context; `discard` drops what a context saw.
 *
 * `sync` keeps a dot if both sides hold it or if the other side has not seen it — the join of
 * causal dot stores, a semilattice (commutative, associative, idempotent) that never drops a
 * concurrent sibling and never revives one the other side superseded.
 *
 * Invariants (checked by `checkSet`): entries sorted by `compareActors`, actors unique;
 * counters in [1, counterMax]; an entry holds at most `counter` siblings. One dot is one event,
 * so two states holding the same dot hold the same sibling. If a reused actor id ever breaks
 * that (see actor-id.ts), `sync` still picks the same sibling whatever the merge order, so
 * replicas converge.
 *
 * Cost: every operation is linear in the number of actors plus siblings, with no allocation
 * for entries that do not change.
 */

import { Buffer } from 'node:buffer';
import { assert } from '../base/assert.js';
import { compareActors } from './actor-id.js';
import { counterMax, type VersionVector, type VersionVectorEntry } from './version-vector.js';

/** One version of a value. `value === null` is a tombstone (a delete). */
export interface Sibling {
  readonly value: Uint8Array | null;
  /** Wall-clock time of the write at its coordinator; only last-writer-wins reads it. */
  readonly timestampMs: number;
  /**
   * Wall-clock time (the coordinator's clock) from which the value is expired (expiry.ts);
   * absent: it never expires. A tombstone carries one when it is an expired value whose bytes
   * compaction dropped.
   */
  readonly expiresAtMs?: number;
  /** The client write this sibling was minted for (mint-records.ts); absent for the embedded Store's writes. */
  readonly mint?: Mint;
}

/** Which client write (rid) and which of its attempts (0: the first) an event was minted for. */
export interface Mint {
  readonly rid: Uint8Array;
  readonly attempt: number;
}

/** A superseded event minted for a retried client write, remembered by its actor's entry (mint-records.ts). */
export interface MintRecord extends Mint {
  readonly counter: number;
  readonly timestampMs: number;
}

export interface DvvEntry {
  readonly actor: string;
  readonly counter: number;
  /** Newest first: siblings[k] is the value of event (actor, counter − k). */
  readonly siblings: readonly Sibling[];
  /** Superseded retry mints of this actor, newest first (mint-records.ts); absent: none. */
  readonly records?: readonly MintRecord[];
}

/** Sorted by actor. The empty set is the state of a key never written. */
export type DvvSet = readonly DvvEntry[];

export const emptySet: DvvSet = Object.freeze([]);

/**
 * The expiry of a voided sibling: the duplicate mint of a client write (mint-records.ts). An
 * instant long past, so every read treats it as expired; clients cannot set it (an expiry in
 * the past deletes instead).
 */
export const voidExpiresAtMs = 1;

/** The causal history as a version vector (the context a read returns). */
export function join(set: DvvSet): VersionVector {
  return set.map((entry): VersionVectorEntry => ({ actor: entry.actor, counter: entry.counter }));
}

/** Every sibling, actors in order, newest first within an actor. */
export function values(set: DvvSet): Sibling[] {
  const out: Sibling[] = [];
  for (const entry of set) for (const sibling of entry.siblings) out.push(sibling);
  return out;
}

export function siblingCount(set: DvvSet): number {
  let count = 0;
  for (const entry of set) count += entry.siblings.length;
  return count;
}

/** Merges two replicas' states of one key: the least state that has seen both. */
export function sync(a: DvvSet, b: DvvSet): DvvSet {
  if (a === b || b.length === 0) return a;
  if (a.length === 0) return b;
  const out: DvvEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const order = x === undefined ? 1 : y === undefined ? -1 : compareActors(x.actor, y.actor);
    if (order < 0) out.push(x!);
    else if (order > 0) out.push(y!);
    else out.push(syncEntry(x!, y!));
    if (order <= 0) i++;
    if (order >= 0) j++;
  }
  return out;
}

/**
 * One actor's entry. With `high` the side with the larger counter, the other side cannot hold
 * dots above its own counter, so the result is high's dots down to the higher of the two
 * lowest dots (dvvset.erl merge/5).
 */
function syncEntry(x: DvvEntry, y: DvvEntry): DvvEntry {
  if (x === y) return x;
  const [high, low] = x.counter >= y.counter ? [x, y] : [y, x];
  const highFloor = high.counter - high.siblings.length;
  const lowFloor = low.counter - low.siblings.length;
  const keep = highFloor >= lowFloor ? high.siblings.length : high.counter - lowFloor;
  let siblings: Sibling[] | undefined;
  // dots both sides hold: (max(floors), low.counter]
  for (let dot = low.counter; dot > Math.max(highFloor, lowFloor); dot--) {
    const mine = high.siblings[high.counter - dot]!;
    const chosen = sameDot(mine, low.siblings[low.counter - dot]!);
    if (chosen !== mine) (siblings ??= high.siblings.slice(0, keep))[high.counter - dot] = chosen;
  }
  if (siblings === undefined && keep === high.siblings.length) return high;
  return { actor: high.actor, counter: high.counter, siblings: siblings ?? high.siblings.slice(0, keep) };
}

/**
 * Both sides hold one dot. They are one event, so normally equal siblings; if a reused actor
 * id made them differ, pick by (timestamp, value over tombstone, bytes), so that every replica
 * picks the same one whatever the merge order.
 */
function sameDot(a: Sibling, b: Sibling): Sibling {
  if (a === b) return a;
  if (a.timestampMs !== b.timestampMs) return a.timestampMs > b.timestampMs ? a : b;
  // An expiring value and the tombstone compaction left of it (expiry.ts) are one event:
  // the tombstone wins, so replicas converge on the dropped bytes.
  if ((a.expiresAtMs !== undefined || b.expiresAtMs !== undefined) && (a.value === null) !== (b.value === null)) return a.value === null ? a : b;
  if (a.value === null && b.value === null) {
    // Two tombstones of one event: the one that expired first (a voided twin, mint-records.ts), then the one with a mint.
    const ax = a.expiresAtMs ?? Infinity;
    const bx = b.expiresAtMs ?? Infinity;
    if (ax !== bx) return ax < bx ? a : b;
    return a.mint !== undefined || b.mint === undefined ? a : b;
  }
  if (a.value === null || b.value === null) return a.value === null ? b : a;
  const order = Buffer.compare(a.value, b.value);
  if (order !== 0) return order > 0 ? a : b;
  // One event seen with and without its mint: keep the mint, whatever the order.
  return a.mint !== undefined || b.mint === undefined ? a : b;
}

/** Drops the siblings `context` has seen (the paper's discard); counters are unchanged. */
export function discard(set: DvvSet, context: VersionVector): DvvSet {
  let k = 0;
  let changed = false;
  const out = set.map((entry) => {
    while (k < context.length && compareActors(context[k]!.actor, entry.actor) < 0) k++;
    const seen = k < context.length && context[k]!.actor === entry.actor ? context[k]!.counter : 0;
    const keep = Math.max(0, entry.counter - seen);
    if (keep >= entry.siblings.length) return entry;
    changed = true;
    return { actor: entry.actor, counter: entry.counter, siblings: entry.siblings.slice(0, keep) };
  });
  return changed ? out : set;
}

/**
 * A new event at replica `actor` writing `sibling` with a client's `context`: the result
 * supersedes exactly the siblings the context covers, keeps the others as concurrent, and its
 * history covers both the replica's state and the context.
 *
 * `freshFloor`: when `set` holds no entry of `actor`, the new dot is above it (and above the
 * context's counter). A replica's own entry is always its highest for the key, so an entry
 * missing here means the key's history at this actor was purged (or never existed), and a
 * counter restarted at 1 would reuse dots that the purged tombstone still covers on other
 * replicas: the new write would be shadowed there (Riak's kv679). stored-object.ts derives the
 * floor from the write's time; 0 keeps the paper's plain counter.
 */
export function update(set: DvvSet, context: VersionVector, sibling: Sibling, actor: string, freshFloor = 0): DvvSet {
  const discarded = discard(set, context);
  const out: DvvEntry[] = [];
  let placed = false;
  const pushEvent = (counter: number, kept: readonly Sibling[]): void => {
    assert(counter < counterMax, 'counter overflow');
    out.push({ actor, counter: counter + 1, siblings: [sibling, ...kept] });
    placed = true;
  };
  let i = 0;
  let j = 0;
  while (i < discarded.length || j < context.length) {
    const x = discarded[i];
    const y = context[j];
    const order = x === undefined ? 1 : y === undefined ? -1 : compareActors(x.actor, y.actor);
    const entryActor = order <= 0 ? x!.actor : y!.actor;
    if (!placed && compareActors(actor, entryActor) < 0) pushEvent(freshFloor, []);
    const counter = order < 0 ? x!.counter : order > 0 ? y!.counter : Math.max(x!.counter, y!.counter);
    const kept = order <= 0 ? x!.siblings : [];
    if (entryActor === actor) pushEvent(order > 0 ? Math.max(counter, freshFloor) : counter, kept);
    else if (order < 0 || (order === 0 && counter === x!.counter)) out.push(x!);
    else out.push({ actor: entryActor, counter, siblings: kept });
    if (order <= 0) i++;
    if (order >= 0) j++;
  }
  if (!placed) pushEvent(freshFloor, []);
  return out;
}

/** Whether the sibling of dot (actorA, dotA) beats that of (actorB, dotB) under lww. */
function newerThan(a: Sibling, actorA: string, dotA: number, b: Sibling, actorB: string, dotB: number): boolean {
  if (a.timestampMs !== b.timestampMs) return a.timestampMs > b.timestampMs;
  const order = compareActors(actorA, actorB);
  return order !== 0 ? order > 0 : dotA > dotB;
}

/** The last writer: the sibling with the highest (timestamp, actor, counter), voided twins aside; undefined if none. */
export function lwwWinner(set: DvvSet): Sibling | undefined {
  let winner: Sibling | undefined;
  let winnerActor = '';
  let winnerDot = 0;
  for (const entry of set) {
    for (let k = 0; k < entry.siblings.length; k++) {
      const sibling = entry.siblings[k]!;
      if (sibling.expiresAtMs === voidExpiresAtMs && sibling.value === null) continue; // a voided twin (mint-records.ts)
      if (winner === undefined || newerThan(sibling, entry.actor, entry.counter - k, winner, winnerActor, winnerDot)) {
        winner = sibling;
        winnerActor = entry.actor;
        winnerDot = entry.counter - k;
      }
    }
  }
  return winner;
}

/**
 * Last-writer-wins reconcile at replica `actor`: one sibling, the last writer, re-written as a
 * new event that has seen everything (like dvvset.erl's reconcile/2), so the result is an
 * ordinary causal state that any replica can sync. Loses concurrent writes by design.
 */
export function lww(set: DvvSet, actor: string): DvvSet {
  if (siblingCount(set) <= 1) return set;
  const winner = lwwWinner(set);
  return winner === undefined ? set : update(set, join(set), winner, actor);
}

/** Asserts the invariants above; O(size), for tests and `invariantsEnabled()` paths. */
export function checkSet(set: DvvSet): void {
  for (let k = 0; k < set.length; k++) {
    const entry = set[k]!;
    assert(k === 0 || compareActors(set[k - 1]!.actor, entry.actor) < 0, 'dvv entries not sorted');
    assert(Number.isInteger(entry.counter) && entry.counter >= 1 && entry.counter <= counterMax, 'dvv counter out of range');
    assert(entry.siblings.length <= entry.counter, 'dvv entry holds more siblings than events');
    for (const { timestampMs, value } of entry.siblings) {
      assert(Number.isInteger(timestampMs) && timestampMs >= 0 && timestampMs <= counterMax, 'dvv timestamp out of range');
      assert(value === null || value instanceof Uint8Array, 'dvv sibling value is not bytes');
    }
  }
}
