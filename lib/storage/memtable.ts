/**
 * The memtable: the newest writes of one engine, in memory, bounded in bytes.
 *
 * Owned by the shard thread. A `Map` keyed by the internal key as a latin1 string gives O(1)
 * point reads and writes; latin1 maps each byte to one UTF-16 unit, so plain string order is
 * byte order and the sorted view needed by flushes and scans is a plain sort, cached until the
 * next insert of a new key. Overwrites replace in place (no sequence numbers: recency between
 * memtable, frozen memtable and tables is positional, as in the merging iterator).
 *
 * `approximateBytes` counts keys, values and a fixed per-entry overhead; the engine freezes
 * the memtable when it reaches its budget.
 */

import { type BatchEntry, EntryKind } from './write-batch.js';
import { keyString } from './internal-key.js';

/** Rough cost of one Map entry and its objects, in bytes. */
export const MEMTABLE_ENTRY_OVERHEAD_BYTES = 96;

export class Memtable {
  #entries = new Map<string, BatchEntry>();
  #sorted: string[] | undefined = [];
  #bytes = 0;

  get approximateBytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  add(kind: EntryKind, key: Uint8Array, value: Uint8Array): void {
    const k = keyString(key);
    const previous = this.#entries.get(k);
    if (previous) {
      this.#bytes += value.length - previous.value.length;
      previous.kind = kind;
      previous.value = value;
      return;
    }
    this.#entries.set(k, { kind, key, value });
    this.#bytes += key.length + value.length + MEMTABLE_ENTRY_OVERHEAD_BYTES;
    this.#sorted = undefined;
  }

  /** The entry for an internal key, tombstones included; undefined if this memtable has none. */
  get(key: Uint8Array): BatchEntry | undefined {
    return this.#entries.get(keyString(key));
  }

  getByString(key: string): BatchEntry | undefined {
    return this.#entries.get(key);
  }

  /** Entries in key order. The array is shared: do not mutate it. */
  sortedEntries(): BatchEntry[] {
    const keys = this.#sortedKeys();
    const out = new Array<BatchEntry>(keys.length);
    for (let i = 0; i < keys.length; i++) out[i] = this.#entries.get(keys[i]!)!;
    return out;
  }

  /** Entries with start <= key < end (latin1 strings), in order. */
  range(start: string, end: string | undefined): BatchEntry[] {
    const keys = this.#sortedKeys();
    let lo = lowerBound(keys, start);
    const out: BatchEntry[] = [];
    for (; lo < keys.length; lo++) {
      const k = keys[lo]!;
      if (end !== undefined && k >= end) break;
      out.push(this.#entries.get(k)!);
    }
    return out;
  }

  #sortedKeys(): string[] {
    this.#sorted ??= [...this.#entries.keys()].sort();
    return this.#sorted;
  }
}

function lowerBound(keys: string[], target: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
