/**
 * Bloom filters for SSTables: one filter per table over every key in it (a "full" filter,
 * RocksDB style, rather than LevelDB's one filter per 2 KiB of data), so a point read of an
 * absent key costs one hash and k bit probes instead of an index search and a block read.
 *
 * Owned by the thread that builds or reads the table; a built filter is immutable.
 *
 * Hashing follows LevelDB's bloom.cc (Kirsch and Mitzenmacher, "Less hashing, same
 * performance", 2006): one 32-bit hash h per key, then k probes at h, h+delta, h+2·delta ...
 * (mod the bit count) with delta = rotr(h, 17). The hash is murmur3 x86_32 with seed
 * BLOOM_HASH_SEED, not 0: keys already start with their seed-0 placement token, and a filter
 * hash independent of placement keeps the probes uniform.
 *
 * Serialized layout (frozen, it is the table's filter block):
 *
 *   [bit array: ceil(max(64, n·bitsPerKey) / 8) bytes, bit i at byte i>>3, mask 1<<(i&7)][k u8]
 *
 * k = round(bitsPerKey · ln 2) clamped to 1..30. An empty filter (bitsPerKey 0) and a filter
 * whose last byte is above 30 (reserved for other encodings, as in LevelDB) match every key.
 * Cost: bitsPerKey bits per key; at 10 bits ~1% false positives, at 16 bits ~0.05%.
 */

import { murmur3 } from '../base/hash.js';

/** Frozen: changing it changes every stored filter's meaning. */
export const BLOOM_HASH_SEED = 0xbc9f1d34;
const PROBES_MAX = 30;
const BITS_MIN = 64;

export function bloomHash(key: Uint8Array): number {
  return murmur3(key, BLOOM_HASH_SEED);
}

export function bloomProbeCount(bitsPerKey: number): number {
  return Math.min(PROBES_MAX, Math.max(1, Math.round(bitsPerKey * Math.LN2)));
}

/** Collects key hashes (4 bytes per key) and lays the filter out once the count is known. */
export class BloomFilterBuilder {
  readonly bitsPerKey: number;
  #hashes = new Uint32Array(256);
  #count = 0;

  constructor(bitsPerKey: number) {
    if (!(bitsPerKey >= 0 && bitsPerKey <= 64)) throw new RangeError(`bloomBitsPerKey must be in 0..64, got ${bitsPerKey}`);
    this.bitsPerKey = bitsPerKey;
  }

  get keyCount(): number {
    return this.#count;
  }

  /** Bytes the filter will take if no more keys are added. */
  get estimatedBytes(): number {
    return this.bitsPerKey === 0 ? 0 : Math.ceil(Math.max(BITS_MIN, this.#count * this.bitsPerKey) / 8) + 1;
  }

  addKey(key: Uint8Array): void {
    if (this.bitsPerKey === 0) return;
    if (this.#count === this.#hashes.length) {
      const grown = new Uint32Array(this.#hashes.length * 2);
      grown.set(this.#hashes);
      this.#hashes = grown;
    }
    this.#hashes[this.#count++] = bloomHash(key);
  }

  finish(): Uint8Array {
    if (this.bitsPerKey === 0) return new Uint8Array(0);
    const byteCount = Math.ceil(Math.max(BITS_MIN, this.#count * this.bitsPerKey) / 8);
    const bitCount = byteCount * 8;
    const probes = bloomProbeCount(this.bitsPerKey);
    const out = new Uint8Array(byteCount + 1);
    const hashes = this.#hashes;
    for (let i = 0; i < this.#count; i++) {
      let h = hashes[i]!;
      const delta = ((h >>> 17) | (h << 15)) >>> 0;
      for (let j = 0; j < probes; j++) {
        const bit = h % bitCount;
        out[bit >>> 3]! |= 1 << (bit & 7);
        h = (h + delta) >>> 0;
      }
    }
    out[byteCount] = probes;
    return out;
  }
}

/** A serialized filter, ready for probes. Holds a reference to `bytes`, which must not change. */
export class BloomFilter {
  readonly bytes: Uint8Array;
  readonly #bitCount: number;
  readonly #probes: number;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    const probes = bytes.length < 2 ? 0 : bytes[bytes.length - 1]!;
    // 0 probes marks "matches everything": empty, too short, or a reserved encoding.
    this.#probes = probes > PROBES_MAX ? 0 : probes;
    this.#bitCount = bytes.length < 2 ? 0 : (bytes.length - 1) * 8;
  }

  /** False means the key is certainly absent; true means it may be present. */
  mayContain(key: Uint8Array): boolean {
    return this.mayContainHash(bloomHash(key));
  }

  mayContainHash(hash: number): boolean {
    const probes = this.#probes;
    if (probes === 0) return true;
    const bits = this.bytes;
    const bitCount = this.#bitCount;
    let h = hash >>> 0;
    const delta = ((h >>> 17) | (h << 15)) >>> 0;
    for (let j = 0; j < probes; j++) {
      const bit = h % bitCount;
      if ((bits[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
      h = (h + delta) >>> 0;
    }
    return true;
  }
}
