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
 * shard holds. Changes are remembered in a fixed table of slots by key hash (the sequence
 * number of the last change started or ended, and the changes in flight): keys that share a
 * slot bar each other's fills, which costs a fill now and then and is never wrong.
 * What the shard changes on its own (compaction dropping expired values, value-log GC moving
 * them) leaves every read's answer the same: readers judge expiry at read time.
 *
 * Layout: no object per entry, so that a hit costs a few cache lines and a node holding a
 * million entries gives the garbage collector nothing to trace.
 * - Records live in one arena used as a ring: a 48-byte header (id, length, key and object
 *   lengths, the view: value offset and length and its window, the CLOCK bit), then the key
 *   and object bytes, 8-byte aligned, written at the head and reclaimed at the tail. The arena starts small, grows by
 *   doubling up to half again the budget (dropped entries leave holes until the tail passes),
 *   and is compacted when it grows.
 * - The index is open addressing with linear probing over one Int32Array of (the key's
 *   token, entry id + 1) pairs, deleted by backward shift; per entry id, typed arrays hold
 *   where its record is, its token and its size. A GET reads the probed pair, the record's
 *   offset, and the record (header, key and value side by side): about four cache lines.
 * Bounds: `budgetBytes` of keys and objects plus `rowEntryOverheadBytes` per entry; past it the
 * entries at the tail go, oldest first, except that an entry read since it was written is
 * copied to the head once instead (CLOCK). Absence is cached too (a GET of a missing key is
 * common).
 *
 * Views. `derive` computes, when an entry is filled, what a plain read of it answers (the
 * sole replica's read view, lib/replication/sole-read.ts) and the expiry-clock window in which
 * that holds; the answer is kept as a position inside the entry's own object bytes, so
 * `plainRead` answers a GET by pointing at the arena (the RESP listener copies the value
 * straight into its reply). Views the arena's bytes are never handed out to be kept: `get`
 * and `objectOf` return copies, since the arena's space is reused.
 */

import { Buffer } from 'node:buffer';
import { murmur3Range } from '../base/hash.js';
import { limits } from '../base/limits.js';

export interface RowCacheStats {
  entries: number;
  bytes: number;
  budgetBytes: number;
  /** Reads answered from the cache (no shard involved). */
  hits: number;
  /** Reads of keys the cache did not hold (sent to the shard). */
  misses: number;
  fills: number;
  evictions: number;
}

/** A lookup's result: the stored object (a copy; undefined: the shard holds no record of the key). */
export interface RowEntry {
  readonly object: Uint8Array | undefined;
}

/**
 * What a plain read of an entry answers, from `derive`: `latest` the value (null: none;
 * undefined: the cache cannot answer, ask the usual way), holding for expiry-clock instants in
 * [fromMs, untilMs). `latest` is answered from the cache only if it is a view of the object
 * `derive` was given (no copy is kept).
 */
export interface RowView {
  readonly latest: Uint8Array | null | undefined;
  readonly fromMs: number;
  readonly untilMs: number;
}

export type RowDerive = (key: Uint8Array, object: Uint8Array | undefined) => RowView | undefined;

/** Per-entry overhead counted against the budget (record header, index and per-entry arrays). */
export const rowEntryOverheadBytes = 96;
/** The arena's first size; it doubles as needed up to `budgetBytes * 1.5`. */
const arenaInitialBytes = 64 * 1024;
const recordHeaderBytes = 48;
// Int32 words of a record's header, from its start; fromMs and untilMs are Float64 words 3 and 4.
const wKeyLength = 2;
const wObjectLength = 3; // -1: absent
const wHotAt = 4; // offset of the value from the record's start, or a hot* code
const wHotLength = 5;
const fFromMs = 3;
const fUntilMs = 4;
const wReferenced = 10;
/** Entries set aside for a second chance at once, at most: past it the tail evicts (bounds the copies one fill can cause). */
const movesPerSettleMax = 1024;
/** log2 of the slots of the change table (2 MiB + 1 MiB). */
const changeSlotBits = 18;
/** Fibonacci hashing: spreads tokens of one partition (same top bits) over the index. */
const golden = 0x9e3779b1;
/** `#hotAt` codes: the read answers nil; nothing derived (or the window passed); derive said the cache cannot answer. */
const hotNil = -1;
const hotUnknown = -2;
const hotNone = -3;

export class RowCache {
  readonly budgetBytes: number;
  /**
   * Computes an entry's view when it is filled (and again once its window has passed); its
   * arguments are views of the arena, valid only during the call. Undefined: no views.
   */
  derive: RowDerive | undefined;
  /**
   * Whether the shards may hold a key of this placement token (the store's presence filters,
   * lib/shard/presence-filter.ts); false lets the cache answer "none" for a key it does not
   * hold. Undefined: they may.
   */
  mayHold: ((token: number) => boolean) | undefined;
  /** After a `plainRead` hit: the value is `arena[plainAt, plainAt + plainLength)`; plainLength -1: nil. */
  plainAt = 0;
  plainLength = 0;

  // The index: slot i is table[2i] (the entry's token) and table[2i + 1] (entry id + 1; 0: empty).
  #table: Int32Array = new Int32Array(2048);
  #mask = 1023;
  #shift = 22;
  #count = 0;

  // Per entry id.
  #capacity = 0;
  #at: Int32Array = new Int32Array(0); // the record's offset in the arena; -1: the id is free
  #token: Int32Array = new Int32Array(0);
  #size: Int32Array = new Int32Array(0);
  /** What a reader derived from an entry (memoOf/setMemo), by id; only for entries read that way. */
  #memos: unknown[] = [];
  #freeIds: number[] = [];
  #nextId = 0;

  // The arena ring.
  readonly #arenaMax: number;
  #arena: Buffer;
  #words: Int32Array;
  #f64: Float64Array;
  #head = 0;
  #tail = 0;
  /** Bytes between tail and head: records, holes and the padding before a wrap. */
  #used = 0;
  /** Entries taken out of the ring at the tail for a second chance, waiting to be written at the head. */
  #moving: { id: number; record: Uint8Array }[] = [];

  /** By slot (changeSlotOf): the sequence number of the last change started or ended of a key there. */
  readonly #changeSeq = new Float64Array(1 << changeSlotBits);
  /** By slot: changes in flight of keys there. */
  readonly #changesInFlight = new Int32Array(1 << changeSlotBits);
  #seq = 0;
  /** Reads started before this sequence number never fill. */
  #floor = 0;
  #bytes = 0;
  readonly #stats = { hits: 0, misses: 0, fills: 0, evictions: 0 };

  constructor(budgetBytes: number) {
    if (!Number.isInteger(budgetBytes) || budgetBytes < 0) throw new RangeError('rowCacheBytes must be a non-negative integer');
    this.budgetBytes = Math.min(budgetBytes, limits.rowCacheBytesHeldMax);
    this.#arenaMax = Math.min(2 ** 30, align8(this.budgetBytes + Math.floor(this.budgetBytes / 2)));
    const initial = Math.min(this.#arenaMax, arenaInitialBytes);
    this.#arena = Buffer.allocUnsafeSlow(initial);
    this.#words = new Int32Array(this.#arena.buffer, this.#arena.byteOffset, initial >>> 2);
    this.#f64 = new Float64Array(this.#arena.buffer, this.#arena.byteOffset, initial >>> 3);
  }

  /** The arena `plainRead` positions refer to (valid until the next call that fills). */
  get arena(): Buffer {
    return this.#arena;
  }

  /** The entry of `key` (its object copied out), counting a hit or a miss. */
  get(key: Uint8Array): RowEntry | undefined {
    const id = this.#find(key, 0, key.length, tokenOfKey(key, 0, key.length));
    if (id < 0) {
      // Not counted: the caller asks knownAbsent next, or the shard.
      return undefined;
    }
    this.#stats.hits++;
    this.#words[(this.#at[id]! >>> 2) + wReferenced] = 1;
    return { object: this.#objectCopy(id) };
  }

  /**
   * The view a plain read of bytes[start, end) answers at expiry-clock instant `nowMs`, if the
   * cache holds the key and its view covers `nowMs`: true, with the value at
   * `arena[plainAt, plainAt + plainLength)` (plainLength -1: nil), counted as a hit. False:
   * ask the usual way (nothing counted; a miss is counted where the shard is asked).
   */
  plainRead(bytes: Uint8Array, start: number, end: number, token: number, nowMs: number): boolean {
    const id = this.#find(bytes, start, end, token | 0);
    if (id < 0) {
      if (!this.#knownAbsent(bytes, start, end, token)) return false;
      this.#stats.hits++;
      this.plainLength = -1;
      return true;
    }
    let at = this.#at[id]!;
    const w = at >>> 2;
    const f = at >>> 3;
    if (this.#words[w + wHotAt] === hotUnknown || nowMs < this.#f64[f + fFromMs]! || nowMs >= this.#f64[f + fUntilMs]!) {
      this.#deriveView(id);
      at = this.#at[id]!; // derive runs the reader's code: nothing in it moves records, but be exact
      if (nowMs < this.#f64[(at >>> 3) + fFromMs]! || nowMs >= this.#f64[(at >>> 3) + fUntilMs]!) return false;
    }
    const words = this.#words;
    const hotAt = words[(at >>> 2) + wHotAt]!;
    if (hotAt < hotNil) return false;
    words[(at >>> 2) + wReferenced] = 1;
    this.#stats.hits++;
    if (hotAt === hotNil) {
      this.plainLength = -1;
    } else {
      this.plainAt = at + hotAt;
      this.plainLength = words[(at >>> 2) + wHotLength]!;
    }
    return true;
  }

  /**
   * Whether `key`, which the cache does not hold, is known to be absent: no shard may hold it
   * (mayHold) and no change of it is in flight. Counts a hit if so, a miss if not (the caller
   * then reads the shard).
   */
  knownAbsent(key: Uint8Array): boolean {
    const absent = this.#knownAbsent(key, 0, key.length, tokenOfKey(key, 0, key.length));
    if (absent) this.#stats.hits++;
    else this.#stats.misses++;
    return absent;
  }

  #knownAbsent(bytes: Uint8Array, start: number, end: number, token: number): boolean {
    const mayHold = this.mayHold;
    if (mayHold === undefined || mayHold(token | 0)) return false;
    return this.#changesInFlight[changeSlotOf(token)] === 0;
  }

  /** The entry id of `key` for a reader that keeps what it derives from it (memoOf, setMemo); -1: none. Counts nothing. */
  idOf(key: Uint8Array): number {
    return this.#find(key, 0, key.length, tokenOfKey(key, 0, key.length));
  }

  /** The stored object of entry `id` (a copy: the arena's space is reused). */
  objectOf(id: number): Uint8Array | undefined {
    return this.#objectCopy(id);
  }

  /** What a reader kept with entry `id` (setMemo); dropped with the entry. */
  memoOf(id: number): unknown {
    return this.#memos[id];
  }

  setMemo(id: number, memo: unknown): void {
    this.#memos[id] = memo;
    this.#words[(this.#at[id]! >>> 2) + wReferenced] = 1;
  }

  /** A read answered from an entry by its caller (its own view of `objectOf`): counted as a hit. */
  countHit(): void {
    this.#stats.hits++;
  }

  /** A read of some key is about to be sent: the sequence number to hand to `fill`. */
  readStarted(): number {
    return this.#seq;
  }

  /** A read of `key` sent at `startedSeq` answered `object`: cached unless a change may have raced it. */
  fill(key: Uint8Array, startedSeq: number, object: Uint8Array | undefined): void {
    if (this.budgetBytes === 0 || startedSeq < this.#floor) return;
    const token = tokenOfKey(key, 0, key.length);
    const slot = changeSlotOf(token);
    if (this.#changesInFlight[slot]! > 0 || this.#changeSeq[slot]! > startedSeq) return;
    this.#insert(key, object, token);
  }

  /** A change of `key` is about to be sent: returns its sequence number, for `changed`. */
  changing(key: Uint8Array): number {
    const token = tokenOfKey(key, 0, key.length);
    this.#drop(key, token);
    const slot = changeSlotOf(token);
    this.#changesInFlight[slot]!++;
    this.#changeSeq[slot] = ++this.#seq;
    return this.#seq;
  }

  /**
   * A change of `key` begun at `startedSeq` was answered (or failed). `object`: the key's
   * stored object right after it (a coordinated write's reply), cached when no other change
   * of the key (or of a key sharing its slot) overlapped this one, so nothing else can be
   * later than it.
   */
  changed(key: Uint8Array, startedSeq: number, object?: Uint8Array): void {
    const token = tokenOfKey(key, 0, key.length);
    this.#drop(key, token);
    const slot = changeSlotOf(token);
    const count = this.#changesInFlight[slot]!;
    const alone = object !== undefined && count === 1 && this.#changeSeq[slot] === startedSeq && startedSeq >= this.#floor;
    this.#changesInFlight[slot] = count > 0 ? count - 1 : 0;
    this.#changeSeq[slot] = ++this.#seq;
    if (alone) this.#insert(key, object, token);
  }

  /** Something changed keys this cache cannot name (a partition drop): forget everything. */
  clear(): void {
    this.#table.fill(0);
    this.#count = 0;
    this.#at.fill(-1);
    this.#memos = [];
    this.#freeIds = [];
    this.#nextId = 0;
    this.#head = 0;
    this.#tail = 0;
    this.#used = 0;
    this.#moving = [];
    this.#bytes = 0;
    this.#seq++;
    this.#floor = this.#seq;
  }

  stats(): RowCacheStats {
    return { entries: this.#count, bytes: this.#bytes, budgetBytes: this.budgetBytes, ...this.#stats };
  }

  // ---- lookups ----

  /** The entry id of bytes[start, end) (token: its placement token as an int32), or -1. */
  #find(bytes: Uint8Array, start: number, end: number, token: number): number {
    const table = this.#table;
    const mask = this.#mask;
    let i = Math.imul(token, golden) >>> this.#shift;
    for (;;) {
      const ref = table[2 * i + 1]!;
      if (ref === 0) return -1;
      if (table[2 * i] === token && this.#holds(ref - 1, bytes, start, end)) return ref - 1;
      i = (i + 1) & mask;
    }
  }

  #holds(id: number, bytes: Uint8Array, start: number, end: number): boolean {
    const length = end - start;
    const record = this.#at[id]!;
    if (this.#words[(record >>> 2) + wKeyLength] !== length) return false;
    const arena = this.#arena;
    const at = record + recordHeaderBytes - start;
    for (let i = start; i < end; i++) if (arena[at + i] !== bytes[i]) return false;
    return true;
  }

  #objectCopy(id: number): Uint8Array | undefined {
    const record = this.#at[id]!;
    const length = this.#words[(record >>> 2) + wObjectLength]!;
    if (length < 0) return undefined;
    const at = record + recordHeaderBytes + this.#words[(record >>> 2) + wKeyLength]!;
    return new Uint8Array(this.#arena.subarray(at, at + length));
  }

  /** Computes the entry's view (its window passed, or it was never derived). */
  #deriveView(id: number): void {
    const derive = this.derive;
    let view: RowView | undefined;
    try {
      view = derive === undefined ? undefined : derive(...this.#recordViews(id));
    } catch {
      view = undefined; // the reader's bug or a corrupt object: such an entry is read the usual way, which reports it
    }
    const at = this.#at[id]!;
    const w = at >>> 2;
    const f = at >>> 3;
    const words = this.#words;
    if (view === undefined) {
      words[w + wHotAt] = hotNone;
      this.#f64[f + fFromMs] = -Infinity;
      this.#f64[f + fUntilMs] = Infinity;
      return;
    }
    this.#f64[f + fFromMs] = view.fromMs;
    this.#f64[f + fUntilMs] = view.untilMs;
    const latest = view.latest;
    if (latest === null) {
      words[w + wHotAt] = hotNil;
      return;
    }
    const objectAt = at + recordHeaderBytes + words[w + wKeyLength]!;
    const arena = this.#arena;
    const inside = latest !== undefined && latest.buffer === arena.buffer && latest.byteOffset >= arena.byteOffset + objectAt && latest.byteOffset + latest.length <= arena.byteOffset + objectAt + words[w + wObjectLength]!;
    if (inside) {
      words[w + wHotAt] = latest.byteOffset - arena.byteOffset - at;
      words[w + wHotLength] = latest.length;
    } else {
      words[w + wHotAt] = hotNone;
    }
  }

  #recordViews(id: number): [Uint8Array, Uint8Array | undefined] {
    const arena = this.#arena;
    const record = this.#at[id]!;
    const keyAt = record + recordHeaderBytes;
    const objectAt = keyAt + this.#words[(record >>> 2) + wKeyLength]!;
    const objectLength = this.#words[(record >>> 2) + wObjectLength]!;
    return [arena.subarray(keyAt, objectAt), objectLength < 0 ? undefined : arena.subarray(objectAt, objectAt + objectLength)];
  }

  // ---- changes ----

  #insert(key: Uint8Array, object: Uint8Array | undefined, token: number): void {
    if (this.budgetBytes === 0) return;
    const objectLength = object === undefined ? 0 : object.length;
    const size = key.length + objectLength + rowEntryOverheadBytes;
    if (size > this.budgetBytes / 8) return;
    const old = this.#find(key, 0, key.length, token);
    if (old >= 0) this.#remove(old);
    const length = align8(recordHeaderBytes + key.length + objectLength);
    const at = this.#reserve(length);
    const id = this.#allocateId();
    const w = at >>> 2;
    const words = this.#words;
    words[w] = id;
    words[w + 1] = length;
    words[w + wKeyLength] = key.length;
    words[w + wObjectLength] = object === undefined ? -1 : objectLength;
    words[w + wHotAt] = hotUnknown;
    words[w + wReferenced] = 0;
    this.#arena.set(key, at + recordHeaderBytes);
    if (object !== undefined) this.#arena.set(object, at + recordHeaderBytes + key.length);
    this.#at[id] = at;
    this.#memos[id] = undefined;
    this.#token[id] = token;
    this.#size[id] = size;
    this.#index(id, token);
    this.#bytes += size;
    this.#stats.fills++;
    this.#settle();
    if (this.#at[id] >= 0 && this.derive !== undefined) this.#deriveView(id);
  }

  /** Drops `key`'s entry (token: its tokenOfKey), if there is one. */
  #drop(key: Uint8Array, token: number): void {
    const id = this.#find(key, 0, key.length, token);
    if (id >= 0) this.#remove(id);
  }

  #remove(id: number): void {
    this.#unindex(id);
    this.#at[id] = -1;
    this.#memos[id] = undefined;
    this.#bytes -= this.#size[id]!;
    this.#freeIds.push(id);
  }

  #allocateId(): number {
    const free = this.#freeIds.pop();
    if (free !== undefined) return free;
    if (this.#nextId === this.#capacity) this.#growIds();
    return this.#nextId++;
  }

  #growIds(): void {
    const capacity = Math.max(1024, this.#capacity * 2);
    const int32 = (old: Int32Array): Int32Array => {
      const next = new Int32Array(capacity);
      next.set(old);
      return next;
    };
    this.#at = int32(this.#at);
    this.#at.fill(-1, this.#capacity);
    this.#token = int32(this.#token);
    this.#size = int32(this.#size);
    this.#capacity = capacity;
  }

  // ---- the index ----

  #index(id: number, token: number): void {
    if ((this.#count + 1) * 2 > this.#mask + 1) this.#growTable();
    this.#place(id, token);
    this.#count++;
  }

  #place(id: number, token: number): void {
    const table = this.#table;
    const mask = this.#mask;
    let i = Math.imul(token, golden) >>> this.#shift;
    while (table[2 * i + 1] !== 0) i = (i + 1) & mask;
    table[2 * i] = token;
    table[2 * i + 1] = id + 1;
  }

  #growTable(): void {
    const old = this.#table;
    const slots = (this.#mask + 1) * 2;
    this.#table = new Int32Array(2 * slots);
    this.#mask = slots - 1;
    this.#shift = 32 - Math.log2(slots);
    for (let i = 1; i < old.length; i += 2) {
      const ref = old[i]!;
      if (ref !== 0) this.#place(ref - 1, old[i - 1]!);
    }
  }

  /** Removes entry `id` from the index (backward shift: no tombstones). */
  #unindex(id: number): void {
    const table = this.#table;
    const mask = this.#mask;
    const shift = this.#shift;
    let i = Math.imul(this.#token[id]!, golden) >>> shift;
    while (table[2 * i + 1] !== id + 1) i = (i + 1) & mask;
    this.#count--;
    for (;;) {
      table[2 * i + 1] = 0;
      let j = i;
      for (;;) {
        j = (j + 1) & mask;
        if (table[2 * j + 1] === 0) return;
        const home = Math.imul(table[2 * j]!, golden) >>> shift;
        // Slot j may move to i unless its home lies cyclically in (i, j].
        const stays = i <= j ? i < home && home <= j : i < home || home <= j;
        if (stays) continue;
        table[2 * i] = table[2 * j]!;
        table[2 * i + 1] = table[2 * j + 1]!;
        i = j;
        break;
      }
    }
  }

  // ---- the arena ring ----

  /** Room for a record of `length` bytes at the head: its offset. */
  #reserve(length: number): number {
    for (;;) {
      if (this.#used === 0) {
        this.#head = 0;
        this.#tail = 0;
      }
      const head = this.#head;
      const tail = this.#tail;
      const capacity = this.#arena.length;
      if (this.#used === 0 || head > tail) {
        if (capacity - head >= length) return this.#take(length);
        if (tail >= length) {
          if (capacity > head) this.#hole(head, capacity - head);
          this.#head = 0;
          return this.#take(length);
        }
      } else if (head < tail && tail - head >= length) {
        return this.#take(length);
      }
      if (this.#growArena(length)) continue;
      if (this.#used === 0) throw new Error(`row cache: a record of ${length} bytes cannot fit an arena of ${capacity}`);
      this.#reclaim();
    }
  }

  #take(length: number): number {
    const at = this.#head;
    this.#head = at + length;
    this.#used += length;
    return at;
  }

  #hole(at: number, length: number): void {
    this.#words[at >>> 2] = -1;
    this.#words[(at >>> 2) + 1] = length;
    this.#used += length;
  }

  /** Frees the record at the tail: a hole goes, an unread entry is evicted, a read one is set aside to move. */
  #reclaim(): void {
    const at = this.#tail;
    const id = this.#words[at >>> 2]!;
    const length = this.#words[(at >>> 2) + 1]!;
    this.#tail = at + length === this.#arena.length ? 0 : at + length;
    this.#used -= length;
    if (id < 0 || this.#at[id] !== at) return;
    if (this.#words[(at >>> 2) + wReferenced] === 1 && this.#moving.length < movesPerSettleMax) {
      this.#words[(at >>> 2) + wReferenced] = 0;
      this.#at[id] = -2; // out of the ring until it is written back (#settle)
      this.#moving.push({ id, record: new Uint8Array(this.#arena.subarray(at, at + length)) });
      return;
    }
    this.#unindex(id);
    this.#at[id] = -1;
    this.#memos[id] = undefined;
    this.#bytes -= this.#size[id]!;
    this.#freeIds.push(id);
    this.#stats.evictions++;
  }

  /**
   * Back under the budget, with every entry set aside for a second chance written back. Ends:
   * a second chance is given once per pass of the tail, so a full pass evicts.
   */
  #settle(): void {
    for (;;) {
      const moving = this.#moving.pop();
      if (moving !== undefined) {
        const at = this.#reserve(moving.record.length);
        this.#arena.set(moving.record, at);
        this.#at[moving.id] = at;
        continue;
      }
      if (this.#bytes <= this.budgetBytes || this.#used === 0) return;
      this.#reclaim();
    }
  }

  /** A bigger arena, the live records copied over in ring order (holes dropped): false at its maximum. */
  #growArena(need: number): boolean {
    const capacity = this.#arena.length;
    if (capacity >= this.#arenaMax) return false;
    const next = Math.min(this.#arenaMax, Math.max(capacity * 2, align8(need) * 2));
    if (next < need) return false;
    const arena = Buffer.allocUnsafeSlow(next);
    const words = new Int32Array(arena.buffer, arena.byteOffset, next >>> 2);
    let write = 0;
    let at = this.#tail;
    let left = this.#used;
    while (left > 0) {
      if (at === capacity) at = 0;
      const id = this.#words[at >>> 2]!;
      const length = this.#words[(at >>> 2) + 1]!;
      if (id >= 0 && this.#at[id] === at) {
        this.#arena.copy(arena, write, at, at + length);
        this.#at[id] = write;
        write += length;
      }
      at += length;
      left -= length;
    }
    this.#arena = arena;
    this.#words = words;
    this.#f64 = new Float64Array(arena.buffer, arena.byteOffset, next >>> 3);
    this.#head = write;
    this.#tail = 0;
    this.#used = write;
    return true;
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** The placement token of bytes[start, end), as an int32 (the index stores int32s). */
function tokenOfKey(bytes: Uint8Array, start: number, end: number): number {
  return murmur3Range(bytes, start, end, 0) | 0;
}

/** The change-table slot of a token. */
function changeSlotOf(token: number): number {
  return Math.imul(token, golden) >>> (32 - changeSlotBits);
}

/** Tracks a change of `key` on `cache` while `change` runs; returns `change`. A result carrying the new stored object (`object`) fills the cache. */
export function changeTracked<T>(cache: RowCache, key: Uint8Array, change: Promise<T>): Promise<T> {
  const startedSeq = cache.changing(key);
  change.then(
    (result) => cache.changed(key, startedSeq, objectOf(result)),
    () => cache.changed(key, startedSeq),
  );
  return change;
}

function objectOf(result: unknown): Uint8Array | undefined {
  if (typeof result !== 'object' || result === null || !('object' in result)) return undefined;
  const object = (result as { object: unknown }).object;
  return object instanceof Uint8Array ? object : undefined;
}
