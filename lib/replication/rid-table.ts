/**
 * The coordinator's table of recent client write ids (rids): a retried put or delete is not
 * applied twice. Pure, owned by the coordinator (supervisor main thread).
 *
 * A client picks 16 random bytes per logical write and keeps them across retries (wire.md).
 * The coordinator records each rid when the write starts and its outcome when it ends:
 *  - a retry of a write still in flight joins it and gets the same outcome;
 *  - a retry of a finished write gets the recorded outcome (the same context for an acked
 *    write) without applying anything. Failures are recorded too: a duplicate of a write that
 *    was refused (KV_UNAVAILABLE, KV_OVERLOADED) must not be applied later, or a definite
 *    failure would become a success behind the client's back.
 * The rid is bound to the key it was first used with (by hash): reusing it for another key
 * is refused by the caller.
 *
 * Bounds: at most `entriesMax` entries (the oldest finished entry is evicted first; entries
 * in flight are never evicted, and there are fewer of them than `entriesMax`), finished
 * entries expire `retentionMs` after they finish, and at most `waitersMax` retries wait on one
 * entry. Cost: O(1) amortized per call; expiry sweeps a bounded number of entries per call.
 */

import { Buffer } from 'node:buffer';
import { assert } from '../base/assert.js';
import type { MintDot } from './duplicate-dots.js';
import { StampQueue } from './stamp-queue.js';

export interface RidEntry<R> {
  readonly keyHash: number;
  /** The request that applies the write. */
  readonly requestId: number;
  /** Retries waiting on it while in flight. */
  readonly waiters: number[];
  /** Set once the write has ended. */
  result: R | undefined;
  expiresAtMs: number;
  /** Its item in the table's order (stamp-queue.ts). */
  stamp: number;
}

const sweepStepsMax = 64;

export class RidTable<R> {
  readonly #entries = new Map<string, RidEntry<R>>();
  /** Begin order, then finish order (an entry is re-stamped when it finishes). */
  readonly #order = new StampQueue();
  readonly #entriesMax: number;
  readonly #retentionMs: number;
  readonly #waitersMax: number;
  #inflight = 0;

  constructor(options: { entriesMax: number; retentionMs: number; waitersMax: number }) {
    this.#entriesMax = options.entriesMax;
    this.#retentionMs = options.retentionMs;
    this.#waitersMax = options.waitersMax;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The live entry of a rid, if any. */
  get(rid: Uint8Array, nowMs: number): RidEntry<R> | undefined {
    this.#sweep(nowMs);
    const name = nameOf(rid);
    const entry = this.#entries.get(name);
    if (entry === undefined || entry.result === undefined || entry.expiresAtMs > nowMs) return entry;
    this.#entries.delete(name);
    return undefined;
  }

  /** Records a write that starts now; the rid must not have a live entry. */
  begin(rid: Uint8Array, keyHash: number, requestId: number, nowMs: number): void {
    const name = nameOf(rid);
    assert(!this.#entries.has(name), 'rid already recorded');
    this.#sweep(nowMs);
    if (this.#entries.size >= this.#entriesMax) this.#evictOldestFinished();
    this.#entries.set(name, { keyHash, requestId, waiters: [], result: undefined, expiresAtMs: Infinity, stamp: this.#order.push(name) });
    this.#inflight++;
    this.#compact();
  }

  /** Adds a retry to an entry in flight; false when too many already wait. */
  join(entry: RidEntry<R>, requestId: number): boolean {
    assert(entry.result === undefined, 'joining a finished rid');
    if (entry.waiters.length >= this.#waitersMax) return false;
    entry.waiters.push(requestId);
    return true;
  }

  /** Records the outcome; returns the retries that waited on it. */
  finish(rid: Uint8Array, result: R, nowMs: number): number[] {
    const name = nameOf(rid);
    const entry = this.#entries.get(name);
    assert(entry !== undefined && entry.result === undefined, 'finishing a rid that is not in flight');
    this.#inflight--;
    entry.result = result;
    entry.expiresAtMs = nowMs + this.#retentionMs;
    // Re-stamped: the order becomes finish order, so the oldest finished entries lead.
    entry.stamp = this.#order.push(name);
    return entry.waiters.splice(0);
  }

  /**
   * The oldest finished entry's name, dropping stale items from the front (entries re-stamped
   * or gone, and the begin items of writes in flight: their finish stamps them again).
   */
  #front(): string | undefined {
    const order = this.#order;
    for (let name = order.frontName; name !== undefined; name = order.frontName) {
      const entry = this.#entries.get(name);
      if (entry !== undefined && entry.stamp === order.frontStamp && entry.result !== undefined) return name;
      order.shift();
    }
    return undefined;
  }

  /** Drops expired finished entries from the front, a bounded number per call. */
  #sweep(nowMs: number): void {
    for (let steps = 0; steps < sweepStepsMax; steps++) {
      const name = this.#front();
      if (name === undefined || this.#entries.get(name)!.expiresAtMs > nowMs) return;
      this.#entries.delete(name);
      this.#order.shift();
    }
  }

  #evictOldestFinished(): void {
    assert(this.#inflight < this.#entriesMax, 'rid table full of writes in flight');
    const name = this.#front();
    if (name === undefined) return;
    this.#entries.delete(name);
    this.#order.shift();
  }

  /** Bounds the stale items of the order. */
  #compact(): void {
    if (this.#order.length <= 4 * this.#entries.size + 1024) return;
    this.#order.compact((name, stamp) => this.#entries.get(name)?.stamp === stamp);
  }
}

/** Most mints of one rid remembered (one per client attempt). */
const dotsMax = 8;

export interface RidHeld {
  readonly keyHash: number;
  readonly expiresAtMs: number;
  readonly claimedBy: string | undefined;
  readonly dots: MintDot[];
  reported: boolean;
  /** Its item in the table's order (stamp-queue.ts). */
  readonly stamp: number;
}

/**
 * A rid's name, the tables' key: its bytes as a latin1 string (one char per byte, lossless,
 * half the length of hex, so cheaper to make and to hash in tables of 100k entries). The last
 * rid named is remembered: one write names its rid several times in a row (the coordinator's
 * table and the replica's). A copy of its bytes is kept and compared, so a caller reusing the
 * array is still named right.
 */
let lastRid: Uint8Array | undefined;
const lastBytes = new Uint8Array(64);
let lastName = '';

function nameOf(rid: Uint8Array): string {
  if (rid === lastRid && rid.length <= lastBytes.length && sameBytes(rid, lastBytes)) return lastName;
  lastName = Buffer.from(rid.buffer, rid.byteOffset, rid.byteLength).toString('latin1');
  lastRid = rid;
  if (rid.length <= lastBytes.length) lastBytes.set(rid);
  else lastRid = undefined;
  return lastName;
}

function sameBytes(rid: Uint8Array, copy: Uint8Array): boolean {
  for (let i = 0; i < rid.length; i++) if (rid[i] !== copy[i]) return false;
  return true;
}

/**
 * The rids this node holds as a replica: every client write it applied, whichever coordinator
 * minted it (the coordinator's own writes and the replica writes of others, which carry the
 * rid). A coordinator that is handed a rid found here (a hedged or retried write that reached
 * another coordinator first) must not mint a second event for it: it re-replicates what it
 * holds instead (coordinator.ts), so a write applied on two coordinators stays one sibling.
 * A rid may also be claimed (`claimedBy`): another coordinator asked about it before minting
 * a hedge (rid-query), so this node forwards that write to it instead of minting. A claim
 * never replaces a held rid; a held rid replaces a claim. The mints of a held rid that this
 * node has heard of (its own, and those named by replica writes) are kept with it:
 * `duplicates` reports, once, a rid minted by more than one coordinator (duplicate-dots.ts).
 *
 * Bounds: at most `entriesMax` rids (the oldest recorded is forgotten first), each for
 * `retentionMs`. Cost: O(1) amortized per call, as RidTable.
 */
export class ReplicaRids {
  readonly #entries = new Map<string, RidHeld>();
  /** Order of the last note of each rid. */
  readonly #order = new StampQueue();
  readonly #entriesMax: number;
  readonly #retentionMs: number;

  constructor(options: { entriesMax: number; retentionMs: number }) {
    this.#entriesMax = options.entriesMax;
    this.#retentionMs = options.retentionMs;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Records that the write `rid` of the key with hash `keyHash` is (being) applied here, with
   * the mint it came from when known, or that node `claimedBy` claimed it.
   */
  note(rid: Uint8Array, keyHash: number, nowMs: number, options: { claimedBy?: string; dot?: MintDot } = {}): void {
    const name = nameOf(rid);
    const known = this.lookup(rid, nowMs);
    if (options.claimedBy !== undefined && known !== undefined && known.claimedBy === undefined) return;
    const dots = known?.claimedBy === undefined ? (known?.dots ?? []) : [];
    const dot = options.dot;
    if (dot !== undefined && !dots.some((d) => d.actor === dot.actor && d.counter === dot.counter) && dots.length < dotsMax) dots.push(dot);
    this.#entries.delete(name);
    if (this.#entries.size >= this.#entriesMax) {
      const oldest = this.#front();
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    const stamp = this.#order.push(name);
    this.#entries.set(name, { keyHash, expiresAtMs: nowMs + this.#retentionMs, claimedBy: options.claimedBy, dots, reported: known?.reported ?? false, stamp });
    if (this.#order.length > 4 * this.#entries.size + 1024) this.#order.compact((n, st) => this.#entries.get(n)?.stamp === st);
  }

  /** The mints of `rid` when more than one coordinator minted it, reported once. */
  duplicates(rid: Uint8Array, nowMs: number): MintDot[] | undefined {
    const entry = this.lookup(rid, nowMs);
    if (entry === undefined || entry.reported || new Set(entry.dots.map((d) => d.actor)).size < 2) return undefined;
    entry.reported = true;
    return [...entry.dots];
  }

  /** What this node knows of `rid`: its key hash, the claiming node unless the write is held here, the mints heard of. */
  lookup(rid: Uint8Array, nowMs: number): RidHeld | undefined {
    this.#sweep(nowMs);
    const entry = this.#entries.get(nameOf(rid));
    return entry === undefined || entry.expiresAtMs <= nowMs ? undefined : entry;
  }

  #sweep(nowMs: number): void {
    for (let steps = 0; steps < sweepStepsMax; steps++) {
      const name = this.#front();
      if (name === undefined || this.#entries.get(name)!.expiresAtMs > nowMs) return;
      this.#entries.delete(name);
      this.#order.shift();
    }
  }

  /** The least recently noted rid, dropping stale items from the front. */
  #front(): string | undefined {
    const order = this.#order;
    for (let name = order.frontName; name !== undefined; name = order.frontName) {
      if (this.#entries.get(name)?.stamp === order.frontStamp) return name;
      order.shift();
    }
    return undefined;
  }
}
