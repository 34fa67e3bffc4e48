/**
 * The row cache of a node's replica store (Cassandra's row cache): recently read stored
 * objects, by key, on the thread that owns the store (the node's main thread), so that a read
 * of a hot key costs no mailbox round trip and no shard work. Off in the embedded Store (the
 * shard's block cache serves it); a node gives it `rowCacheBytes`.
 *
 * Coherence. The store is the only way into its shards, so every change of a key passes
 * through it: puts, deletes, batches, coordinated writes, merges (replication, read repair,
 * hints, handoff, anti-entropy), purges and partition drops. Each one calls `changing` before
 * it is sent and `changed` when its reply arrives (whatever the outcome: a write that failed
 * may still have landed), and both drop the key's entry. A read fills the cache only if
 * nothing changed its key between the read's send (`readStarted`, a sequence number) and its
 * reply, and no change of the key is in flight: an entry is therefore always the state the
 * shard holds. Changes are remembered per key by sequence number in a bounded map; when it
 * is full it is cleared and every read started before is barred from filling (the floor).
 * What the shard changes on its own (compaction dropping expired values, value-log GC moving
 * them) leaves every read's answer the same: readers judge expiry at read time.
 *
 * Bounds: `budgetBytes` of keys and objects (plus a fixed estimate per entry); past it the
 * oldest entries go first, with a second chance for the ones read since they were filled
 * (CLOCK). Absence is cached too (a GET of a missing key is common). `memo` lets the reader
 * keep what it derived from the entry's object (the read view) with the entry, so it is
 * dropped with it.
 */

import { Buffer } from 'node:buffer';
import { murmur3 } from '../base/hash.js';

export interface RowCacheStats {
  entries: number;
  bytes: number;
  budgetBytes: number;
  hits: number;
  misses: number;
  fills: number;
  evictions: number;
}

export interface RowEntry {
  /** The stored object's bytes; undefined: the shard holds no record of the key. */
  readonly object: Uint8Array | undefined;
  /** Whatever the reader derived from `object` (a read view); dropped with the entry. */
  memo: unknown;
}

interface Slot extends RowEntry {
  /** The key's bytes are `slab[keyAt, keyAt + keyLength)`: compared in place, no view per entry. */
  slab: Uint8Array;
  keyAt: number;
  readonly keyLength: number;
  object: Uint8Array | undefined;
  readonly size: number;
  referenced: boolean;
}

/** Per-entry overhead counted against the budget (Map slot, entry object, key string). */
export const rowEntryOverheadBytes = 96;
/** The cache's own memory comes in slabs of this size; larger objects get their own. */
const slabBytes = 64 * 1024;
/** Keys whose last change is remembered; past it the memory is cleared (see the floor). */
const changesRemembered = 65_536;
/** Not the placement seed (0): keys of one partition should not crowd one slot range. */
const slotSeed = 0x52c0ffee;

export class RowCache {
  readonly budgetBytes: number;
  /**
   * Entries by a 30-bit hash of the key (a small integer: no string to make and hash per
   * lookup); the entry's own key bytes decide a hit. Two keys with one hash share the slot:
   * the later fill replaces the earlier (a cache may forget).
   */
  readonly #entries = new Map<number, Slot>();
  /** Key (latin1 name) → sequence number of its last change start or end. */
  readonly #changes = new Map<string, number>();
  /** Key → changes in flight. */
  readonly #inflight = new Map<string, number>();
  #seq = 0;
  /** Reads started before this sequence number never fill. */
  #floor = 0;
  #bytes = 0;
  #slab = new Uint8Array(0);
  #slabUsed = 0;
  readonly #stats = { hits: 0, misses: 0, fills: 0, evictions: 0 };
  /** Where the last `#own` copy went. */
  #ownSlab = new Uint8Array(0);
  #ownAt = 0;
  /**
   * Derives an entry's `memo` when it is filled (the reader's read view, made by the write or
   * read that fills rather than by the first hit); undefined: memos are left to the reader.
   */
  derive: ((key: Uint8Array, object: Uint8Array | undefined) => unknown) | undefined;

  constructor(budgetBytes: number) {
    if (!Number.isInteger(budgetBytes) || budgetBytes < 0) throw new RangeError('rowCacheBytes must be a non-negative integer');
    this.budgetBytes = budgetBytes;
  }

  /** The entry of `key`, counting a hit or a miss. */
  get(key: Uint8Array): RowEntry | undefined {
    const slot = this.#entries.get(slotOf(key));
    if (slot === undefined || !holdsKey(slot, key)) {
      this.#stats.misses++;
      return undefined;
    }
    this.#stats.hits++;
    slot.referenced = true;
    return slot;
  }

  /** A read of some key is about to be sent: the sequence number to hand to `fill`. */
  readStarted(): number {
    return this.#seq;
  }

  /** A read of `key` sent at `startedSeq` answered `object`: cached unless a change may have raced it. */
  fill(key: Uint8Array, startedSeq: number, object: Uint8Array | undefined): void {
    if (this.budgetBytes === 0 || startedSeq < this.#floor) return;
    const name = rowKeyOf(key);
    if (this.#inflight.has(name)) return;
    const changedSeq = this.#changes.get(name);
    if (changedSeq !== undefined && changedSeq > startedSeq) return;
    this.#insert(key, object);
  }

  /** A change of `key` (named `name`, rowKeyOf) is about to be sent: returns its sequence number, for `changed`. */
  changing(key: Uint8Array, name: string): number {
    this.#drop(key);
    this.#inflight.set(name, (this.#inflight.get(name) ?? 0) + 1);
    return this.#noteChange(name);
  }

  /**
   * A change of `key` begun at `startedSeq` was answered (or failed). `object`: the key's
   * stored object right after it (a coordinated write's reply), cached when no other change
   * of the key overlapped this one (so nothing else can be later than it).
   */
  changed(key: Uint8Array, name: string, startedSeq: number, object?: Uint8Array): void {
    this.#drop(key);
    const count = this.#inflight.get(name) ?? 1;
    const alone = object !== undefined && count === 1 && this.#changes.get(name) === startedSeq && startedSeq >= this.#floor;
    if (count <= 1) this.#inflight.delete(name);
    else this.#inflight.set(name, count - 1);
    this.#noteChange(name);
    if (alone) this.#insert(key, object);
  }

  /** Something changed keys this cache cannot name (a partition drop): forget everything. */
  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
    this.#changes.clear();
    this.#seq++;
    this.#floor = this.#seq;
  }

  stats(): RowCacheStats {
    return { entries: this.#entries.size, bytes: this.#bytes, budgetBytes: this.budgetBytes, ...this.#stats };
  }

  #insert(key: Uint8Array, object: Uint8Array | undefined): void {
    if (this.budgetBytes === 0) return;
    const size = key.length + (object?.length ?? 0) + rowEntryOverheadBytes;
    if (size > this.budgetBytes / 8) return;
    const hash = slotOf(key);
    this.#remove(hash);
    this.#own(key);
    const slab = this.#ownSlab;
    const keyAt = this.#ownAt;
    const own = this.#own(object);
    const memo = this.derive === undefined ? undefined : this.derive(key, own);
    this.#entries.set(hash, { slab, keyAt, keyLength: key.length, object: own, memo, size, referenced: false });
    this.#bytes += size;
    this.#stats.fills++;
    if (this.#bytes > this.budgetBytes) this.#evict();
  }

  #noteChange(name: string): number {
    if (this.#changes.size >= changesRemembered) {
      this.#changes.clear();
      this.#floor = this.#seq + 1;
    }
    this.#changes.set(name, ++this.#seq);
    return this.#seq;
  }

  /** Drops `key`'s entry, if the slot holds it. */
  #drop(key: Uint8Array): void {
    const hash = slotOf(key);
    const slot = this.#entries.get(hash);
    if (slot !== undefined && holdsKey(slot, key)) this.#remove(hash);
  }

  #remove(hash: number): void {
    const slot = this.#entries.get(hash);
    if (slot === undefined) return;
    this.#entries.delete(hash);
    this.#bytes -= slot.size;
  }

  /**
   * A copy of `bytes` in the cache's own slab. A reply shares its memory with other
   * allocations (Node's pool, reply slabs): kept as it is, each entry would pin all of it.
   * Slabs are filled in insertion order and eviction goes in insertion order (an entry given
   * a second chance is copied again, to the current slab), so old slabs empty out whole.
   */
  #own(bytes: Uint8Array | undefined): Uint8Array | undefined {
    if (bytes === undefined) return undefined;
    const length = bytes.length;
    if (length > slabBytes >>> 2) {
      const own = new Uint8Array(bytes);
      this.#ownSlab = own;
      this.#ownAt = 0;
      return own;
    }
    if (this.#slabUsed + length > this.#slab.length) {
      this.#slab = new Uint8Array(slabBytes);
      this.#slabUsed = 0;
    }
    const at = this.#slabUsed;
    const copy = this.#slab.subarray(at, at + length);
    copy.set(bytes);
    this.#ownSlab = this.#slab;
    this.#ownAt = at;
    this.#slabUsed = (at + length + 7) & ~7;
    return copy;
  }

  /** CLOCK over insertion order: a referenced entry goes to the back once, the others go. */
  #evict(): void {
    for (const [hash, slot] of this.#entries) {
      if (this.#bytes <= this.budgetBytes) return;
      this.#entries.delete(hash);
      if (slot.referenced) {
        slot.referenced = false;
        this.#own(slot.slab.subarray(slot.keyAt, slot.keyAt + slot.keyLength));
        slot.slab = this.#ownSlab;
        slot.keyAt = this.#ownAt;
        slot.object = this.#own(slot.object);
        slot.memo = undefined; // it held views of the old copy
        this.#entries.set(hash, slot);
        continue;
      }
      this.#bytes -= slot.size;
      this.#stats.evictions++;
    }
  }
}

/** The entry slot of a key: its murmur3 hash cut to a small integer. */
function slotOf(key: Uint8Array): number {
  return murmur3(key, slotSeed) & 0x3fffffff;
}

function holdsKey(slot: Slot, key: Uint8Array): boolean {
  const length = key.length;
  if (slot.keyLength !== length) return false;
  const slab = slot.slab;
  const at = slot.keyAt;
  for (let i = 0; i < length; i++) if (slab[at + i] !== key[i]) return false;
  return true;
}

/** The cache's name of a key: its bytes as a latin1 string (one byte, one char). */
export function rowKeyOf(key: Uint8Array): string {
  return Buffer.prototype.latin1Slice.call(key, 0, key.length) as string;
}

/** Tracks a change of `key` on `cache` while `change` runs; returns `change`. A result carrying the new stored object (`object`) fills the cache. */
export function changeTracked<T>(cache: RowCache, key: Uint8Array, change: Promise<T>): Promise<T> {
  const name = rowKeyOf(key);
  const startedSeq = cache.changing(key, name);
  change.then(
    (result) => cache.changed(key, name, startedSeq, objectOf(result)),
    () => cache.changed(key, name, startedSeq),
  );
  return change;
}

function objectOf(result: unknown): Uint8Array | undefined {
  if (typeof result !== 'object' || result === null || !('object' in result)) return undefined;
  const object = (result as { object: unknown }).object;
  return object instanceof Uint8Array ? object : undefined;
}
