/**
 * Cursors over sorted entries, and the merging cursor that presents several of them as one
 * sorted stream with the newest version of each key.
 *
 * A source's position in the list is its recency: source 0 is the newest (the memtable), then
 * the frozen memtable, then level-0 tables newest first, then levels 1..n. When several
 * sources hold the same key, the lowest-numbered wins and the others are stepped past, so
 * older versions are shadowed without sequence numbers. Tombstones are yielded like values;
 * the caller decides whether to skip or keep them.
 *
 * All cursors are synchronous and owned by the thread that created them. Keys and values
 * may be views (into cached blocks, memtable batches), but no cursor ever modifies bytes it
 * returned: a table cursor makes a fresh key per entry and blocks and memtable entries are
 * immutable, so a key or value stays valid after the cursor moves (a kept view keeps its
 * block alive: copy what is kept long).
 */

import { compareBytes } from './internal-key.js';
import type { BatchEntry, EntryKind } from './write-batch.js';

export interface EntryCursor {
  readonly valid: boolean;
  readonly key: Uint8Array;
  readonly kind: EntryKind;
  readonly value: Uint8Array;
  seekToFirst(): void;
  /** Positions at the first entry with key >= target. */
  seek(target: Uint8Array): void;
  next(): void;
}

/** A cursor over an in-memory sorted array (a memtable's sorted view). */
export class ArrayCursor implements EntryCursor {
  #entries: readonly BatchEntry[];
  #index = 0;

  constructor(entries: readonly BatchEntry[]) {
    this.#entries = entries;
  }

  get valid(): boolean {
    return this.#index < this.#entries.length;
  }
  get key(): Uint8Array {
    return this.#entries[this.#index]!.key;
  }
  get kind(): EntryKind {
    return this.#entries[this.#index]!.kind;
  }
  get value(): Uint8Array {
    return this.#entries[this.#index]!.value;
  }
  seekToFirst(): void {
    this.#index = 0;
  }
  seek(target: Uint8Array): void {
    let lo = 0;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.#entries[mid]!.key, target) < 0) lo = mid + 1;
      else hi = mid;
    }
    this.#index = lo;
  }
  next(): void {
    this.#index++;
  }
}

/** Cursors over a level's non-overlapping tables in key order, opened one at a time. */
export class ConcatenatingCursor implements EntryCursor {
  #open: (index: number) => EntryCursor;
  #largest: readonly Uint8Array[];
  #index = -1;
  #current: EntryCursor | undefined;

  /** `largest[i]` is the largest key of table i; `open(i)` returns a cursor over table i. */
  constructor(largest: readonly Uint8Array[], open: (index: number) => EntryCursor) {
    this.#largest = largest;
    this.#open = open;
  }

  get valid(): boolean {
    return this.#current !== undefined && this.#current.valid;
  }
  get key(): Uint8Array {
    return this.#current!.key;
  }
  get kind(): EntryKind {
    return this.#current!.kind;
  }
  get value(): Uint8Array {
    return this.#current!.value;
  }
  seekToFirst(): void {
    this.#moveTo(0);
    this.#current?.seekToFirst();
    this.#skipExhausted();
  }
  seek(target: Uint8Array): void {
    let i = 0;
    while (i < this.#largest.length && compareBytes(this.#largest[i]!, target) < 0) i++;
    this.#moveTo(i);
    this.#current?.seek(target);
    this.#skipExhausted();
  }
  next(): void {
    this.#current!.next();
    this.#skipExhausted();
  }
  #moveTo(index: number): void {
    this.#index = index;
    this.#current = index < this.#largest.length ? this.#open(index) : undefined;
  }
  #skipExhausted(): void {
    while (this.#current !== undefined && !this.#current.valid) {
      this.#moveTo(this.#index + 1);
      this.#current?.seekToFirst();
    }
  }
}

/** The newest version of each key across sources ordered newest first. */
export class MergingCursor implements EntryCursor {
  #sources: EntryCursor[];
  #current = -1;
  readonly #onShadowed: ((kind: EntryKind, value: Uint8Array) => void) | undefined;

  /** `onShadowed` sees each older version `next()` steps over (compaction counts dead value pointers). */
  constructor(sources: EntryCursor[], onShadowed?: (kind: EntryKind, value: Uint8Array) => void) {
    this.#sources = sources;
    this.#onShadowed = onShadowed;
  }

  get valid(): boolean {
    return this.#current >= 0;
  }
  get key(): Uint8Array {
    return this.#sources[this.#current]!.key;
  }
  get kind(): EntryKind {
    return this.#sources[this.#current]!.kind;
  }
  get value(): Uint8Array {
    return this.#sources[this.#current]!.value;
  }
  seekToFirst(): void {
    for (const s of this.#sources) s.seekToFirst();
    this.#pick();
  }
  seek(target: Uint8Array): void {
    for (const s of this.#sources) s.seek(target);
    this.#pick();
  }
  next(): void {
    // Step every source past the current key (which stays valid as they move: see above).
    const current = this.key;
    const winner = this.#sources[this.#current];
    for (const s of this.#sources) {
      if (!s.valid || compareBytes(s.key, current) !== 0) continue;
      if (s !== winner && this.#onShadowed !== undefined) this.#onShadowed(s.kind, s.value);
      s.next();
    }
    this.#pick();
  }
  #pick(): void {
    let best = -1;
    for (let i = 0; i < this.#sources.length; i++) {
      const s = this.#sources[i]!;
      if (!s.valid) continue;
      if (best < 0 || compareBytes(s.key, this.#sources[best]!.key) < 0) best = i;
    }
    this.#current = best;
  }
}
