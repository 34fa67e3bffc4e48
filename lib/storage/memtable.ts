/**
 * The memtable: the newest writes of one engine, in memory, bounded in bytes.
 *
 * Owned by the shard thread. A hash map keyed by the internal key's placement token (its first
 * 4 bytes, already a murmur3 hash of the user key) with chaining on the rare token collision:
 * a point read or write costs one Map probe on a small integer and a byte comparison, and
 * never builds a string from the key (a latin1-string-keyed Map cost a Buffer, a string and its
 * hash per operation). The sorted view needed by flushes and scans is an array sorted by
 * (token, key bytes) — internal-key byte order — cached until the next insert of a new key.
 * Overwrites replace in place (no sequence numbers: recency between memtable, frozen memtable
 * and tables is positional, as in the merging iterator).
 *
 * Ownership and layout: an entry is ONE small object holding offsets into the encoded write
 * batch it came in (write-batch.ts; engine.ts keeps the batch), not a key and a value view:
 * memtable entries live until the flush, so every object per entry is copied by each young-
 * generation GC it survives, and three objects per entry made the GC a fifth of the shard
 * thread. Views are made only when asked for (a get's result, a scan's range). Batch bytes are
 * never modified. `approximateBytes` charges every add its
 * key, value and a fixed per-entry overhead and never credits an overwrite (LevelDB's arena
 * does the same): a view can keep its whole batch buffer alive, and charging every add bounds
 * that retained memory by the charge. The engine freezes the memtable when it reaches its
 * budget.
 */

import { type BatchEntry, decodeBatchLayout, EntryKind } from './write-batch.js';

/** Rough cost of one Map entry and its objects, in bytes. */
export const MEMTABLE_ENTRY_OVERHEAD_BYTES = 96;

const TOKEN_BYTES = 4;
const EMPTY = new Uint8Array(0);

class MemEntry {
  constructor(
    /** The key's token as a signed 32-bit integer (a V8 small integer): the Map key. */
    readonly hash: number,
    public kind: EntryKind,
    /** The encoded batch holding the key and the value. */
    public batch: Uint8Array,
    public keyStart: number,
    public keyEnd: number,
    public valueStart: number,
    public valueEnd: number,
    /** The next entry whose key has the same token. */
    public next: MemEntry | undefined,
  ) {}
}

function view(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return start === end ? EMPTY : bytes.subarray(start, end);
}

function entryOf(e: MemEntry): BatchEntry {
  return { kind: e.kind, key: view(e.batch, e.keyStart, e.keyEnd), value: view(e.batch, e.valueStart, e.valueEnd) };
}

/** The first 4 bytes of an internal key at bytes[start], big-endian, as a signed 32-bit integer. */
function hashAt(bytes: Uint8Array, start: number, end: number): number {
  if (end - start < TOKEN_BYTES) return 0; // only a malformed key; compared in full anyway
  return (bytes[start]! << 24) | (bytes[start + 1]! << 16) | (bytes[start + 2]! << 8) | bytes[start + 3]!;
}

/** Bytewise order of a[aStart, aEnd) and b[bStart, bEnd). */
function compareRanges(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array, bStart: number, bEnd: number): number {
  const aLength = aEnd - aStart;
  const bLength = bEnd - bStart;
  const n = aLength < bLength ? aLength : bLength;
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i]! - b[bStart + i]!;
    if (d !== 0) return d;
  }
  return aLength - bLength;
}

/** Internal-key byte order: the token (compared unsigned), then the remaining bytes. */
function compareEntries(a: MemEntry, b: MemEntry): number {
  if (a.hash !== b.hash) return (a.hash ^ 0x80000000) < (b.hash ^ 0x80000000) ? -1 : 1;
  return compareRanges(a.batch, a.keyStart, a.keyEnd, b.batch, b.keyStart, b.keyEnd);
}

/** Whether the entry's key is [token][userKey]; the token is already known to match. */
function holdsUserKey(e: MemEntry, userKey: Uint8Array): boolean {
  const n = userKey.length;
  if (e.keyEnd - e.keyStart !== n + TOKEN_BYTES) return false;
  const bytes = e.batch;
  const start = e.keyStart + TOKEN_BYTES;
  for (let i = 0; i < n; i++) if (bytes[start + i] !== userKey[i]) return false;
  return true;
}

export class Memtable {
  /** Told the token of every key added (the shard's presence filter); set by the engine. */
  onAdd: ((token: number) => void) | undefined;
  readonly #buckets = new Map<number, MemEntry>();
  #size = 0;
  #sorted: MemEntry[] | undefined = [];
  #bytes = 0;

  get approximateBytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#size;
  }

  /** Adds or replaces every entry of an encoded write batch (write-batch.ts), which it keeps. */
  addBatch(batch: Uint8Array): void {
    decodeBatchLayout(batch, (kind, keyStart, keyEnd, valueStart, valueEnd) => this.#add(kind, batch, keyStart, keyEnd, valueStart, valueEnd));
  }

  #add(kind: EntryKind, batch: Uint8Array, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number): void {
    this.#bytes += keyEnd - keyStart + valueEnd - valueStart + MEMTABLE_ENTRY_OVERHEAD_BYTES;
    const hash = hashAt(batch, keyStart, keyEnd);
    this.onAdd?.(hash);
    const head = this.#buckets.get(hash);
    for (let e = head; e !== undefined; e = e.next) {
      if (compareRanges(e.batch, e.keyStart, e.keyEnd, batch, keyStart, keyEnd) !== 0) continue;
      e.kind = kind;
      e.batch = batch;
      e.keyStart = keyStart;
      e.keyEnd = keyEnd;
      e.valueStart = valueStart;
      e.valueEnd = valueEnd;
      return;
    }
    this.#buckets.set(hash, new MemEntry(hash, kind, batch, keyStart, keyEnd, valueStart, valueEnd, head));
    this.#size++;
    this.#sorted = undefined;
  }

  /**
   * The point read, for a user key whose token is `token` (as tokenOf returns it), without
   * building its internal key: the value (a view into a batch; do not mutate), null for a
   * tombstone, undefined if this memtable has no entry.
   */
  getByToken(token: number, userKey: Uint8Array): Uint8Array | null | undefined {
    for (let e = this.#buckets.get(token | 0); e !== undefined; e = e.next) {
      if (!holdsUserKey(e, userKey)) continue;
      return e.kind === EntryKind.value ? view(e.batch, e.valueStart, e.valueEnd) : null;
    }
    return undefined;
  }

  /** Entries in key order (fresh views; the entries are not live). */
  sortedEntries(): BatchEntry[] {
    return this.#sortedEntries().map(entryOf);
  }

  /** Entries with start <= key < end (internal keys), in order. */
  range(start: Uint8Array, end: Uint8Array | undefined): BatchEntry[] {
    const entries = this.#sortedEntries();
    const out: BatchEntry[] = [];
    for (let i = lowerBound(entries, start); i < entries.length; i++) {
      const e = entries[i]!;
      if (end !== undefined && compareRanges(e.batch, e.keyStart, e.keyEnd, end, 0, end.length) >= 0) break;
      out.push(entryOf(e));
    }
    return out;
  }

  #sortedEntries(): MemEntry[] {
    if (this.#sorted === undefined) {
      const all = new Array<MemEntry>(this.#size);
      let i = 0;
      for (const head of this.#buckets.values()) for (let e: MemEntry | undefined = head; e !== undefined; e = e.next) all[i++] = e;
      this.#sorted = all.sort(compareEntries);
    }
    return this.#sorted;
  }
}

function lowerBound(entries: readonly MemEntry[], target: Uint8Array): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const e = entries[mid]!;
    if (compareRanges(e.batch, e.keyStart, e.keyEnd, target, 0, target.length) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
