/**
 * A shard's presence filter: a Bloom filter of the placement tokens of every key its engine
 * holds, in shared memory, written by the shard and read by the node's main thread. It lets
 * the main thread answer "no such key" without a round trip to the shard (a GET of a key
 * never written: Cassandra answers those from its SSTables' Bloom filters without a disk read;
 * we answer them without a thread hop). A "no" is exact; a "maybe" asks the shard.
 *
 * Why a "no" is exact:
 * - The shard is the only writer of its engine, and the engine calls `add` for every key it
 *   puts in a memtable (writes, merges, deletes, replayed commit logs) before the write is
 *   acknowledged. Flushes and compactions only move keys that are already in.
 * - The filter is `ready` only after the shard has added every key its engine held when the
 *   filter was made (a scan, partition by partition, after the engine opened); keys written
 *   meanwhile are added by the engine as they come. Until then, every answer is "maybe".
 * - Memory order: the shard sets the bits before it publishes the write's reply with an
 *   atomic store on the reply mailbox; the main thread reads the reply with an atomic load
 *   before it acts on it, so the bits are visible to it from then on. A write the main thread
 *   has sent but not seen answered is its own business (RowCache tracks changes in flight).
 * - Past its capacity the filter turns itself `off`: every answer is "maybe" until the shard
 *   restarts with a bigger one. Capacity is judged by the bits set (more than `capacity`
 *   random keys would set), which counts keys a plain count of new keys would miss once most
 *   of their bits are already set by others.
 * Deleted keys stay in (a "maybe" costs a shard read, never a wrong answer).
 *
 * Layout: Int32 words; word 0 the state, word 1 the keys added (an add that set a new bit),
 * word 2 the capacity in keys, word 3 the bits set; then 2^b bits. Four probes per token (double hashing from the token: the key is
 * hashed once, by whoever already has its token). About 1% false "maybe" at capacity.
 */

import { limits } from '../base/limits.js';

export const PresenceState = { building: 0, ready: 1, off: 2 } as const;
export type PresenceState = (typeof PresenceState)[keyof typeof PresenceState];

const headerWords = 4;
const bitsPerKey = 10;
const probes = 4;

export class PresenceFilter {
  readonly #words: Int32Array;
  readonly #mask: number;
  readonly #setBitsMax: number;
  readonly capacity: number;

  private constructor(buffer: SharedArrayBuffer) {
    this.#words = new Int32Array(buffer);
    this.#mask = (this.#words.length - headerWords) * 32 - 1;
    this.capacity = this.#words[2]!;
    const bits = this.#mask + 1;
    this.#setBitsMax = Math.floor(bits * (1 - Math.exp((-probes * this.capacity) / bits)));
  }

  /** A new filter, `building`, for about `expectedKeys` keys (bounded by limits.presence*). */
  static create(expectedKeys: number): PresenceFilter {
    const capacity = Math.min(limits.presenceKeysMax, Math.max(limits.presenceKeysMin, Math.ceil(expectedKeys * 2)));
    let bits = 1024;
    while (bits < capacity * bitsPerKey) bits *= 2;
    const buffer = new SharedArrayBuffer(headerWords * 4 + bits / 8);
    const words = new Int32Array(buffer);
    words[2] = capacity;
    const filter = new PresenceFilter(buffer);
    if (expectedKeys > capacity) filter.#setState(PresenceState.off);
    return filter;
  }

  /** The filter a shard made, seen from another thread. */
  static attach(buffer: SharedArrayBuffer): PresenceFilter {
    return new PresenceFilter(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.#words.buffer as SharedArrayBuffer;
  }

  get state(): PresenceState {
    return Atomics.load(this.#words, 0) as PresenceState;
  }

  /** Distinct keys added (an add that set no new bit is not counted). */
  get count(): number {
    return this.#words[1]!;
  }

  /** Shard side: the engine holds a key of this token. */
  add(token: number): void {
    const words = this.#words;
    const mask = this.#mask;
    const step = stepOf(token);
    let fresh = 0;
    for (let i = 0, bit = token; i < probes; i++, bit = (bit + step) | 0) {
      const at = bit & mask;
      const word = headerWords + (at >>> 5);
      const flag = 1 << (at & 31);
      if ((words[word]! & flag) === 0) {
        words[word] = words[word]! | flag;
        fresh++;
      }
    }
    if (fresh === 0) return;
    words[1] = words[1]! + 1;
    const setBits = words[3]! + fresh;
    words[3] = setBits;
    if (setBits > this.#setBitsMax && this.state !== PresenceState.off) this.#setState(PresenceState.off);
  }

  /** Shard side: every key the engine held when the filter was made has been added. */
  markReady(): void {
    if (this.state === PresenceState.building) this.#setState(PresenceState.ready);
  }

  /** Main side: false only if the engine holds no key of this token. */
  mayHold(token: number): boolean {
    const words = this.#words;
    if (Atomics.load(words, 0) !== PresenceState.ready) return true;
    const mask = this.#mask;
    const step = stepOf(token);
    for (let i = 0, bit = token; i < probes; i++, bit = (bit + step) | 0) {
      const at = bit & mask;
      if ((words[headerWords + (at >>> 5)]! & (1 << (at & 31))) === 0) return false;
    }
    return true;
  }

  #setState(state: PresenceState): void {
    Atomics.store(this.#words, 0, state);
  }
}

/** The second hash of double hashing, from the token (odd: every probe lands elsewhere). */
function stepOf(token: number): number {
  let h = Math.imul(token ^ (token >>> 16), 0x85ebca6b);
  h ^= h >>> 13;
  return h | 1;
}
