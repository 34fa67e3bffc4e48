/**
 * The key hash: MurmurHash3 x86_32 (Austin Appleby, public domain), seed 0 for placement.
 *
 * A key's token is murmur3(keyBytes, 0); its partition is the token's top log2(Q) bits
 * (DESIGN.md §3). The function is frozen: every node of a cluster and every stored SSTable
 * order depends on it. Checked against the published test vectors in test/base.test.ts.
 * Inline because libraries and node:crypto are 4-100x slower per small key.
 */

export function murmur3(bytes: Uint8Array, seed = 0): number {
  return murmur3Range(bytes, 0, bytes.length, seed);
}

/** murmur3 of bytes[start, end), without a view of them (the RESP listener hashes keys in its input). */
export function murmur3Range(bytes: Uint8Array, start: number, end: number, seed: number): number {
  const length = end - start;
  const blocks = start + (length & ~3);
  let h = seed >>> 0;
  for (let i = start; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = length & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= bytes[blocks + 2]! << 16;
    if (tail >= 2) k ^= bytes[blocks + 1]! << 8;
    k ^= bytes[blocks]!;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The placement token of a key's bytes. */
export function tokenOf(key: Uint8Array): number {
  return murmur3(key, 0);
}

/** The partition of a token on a ring of 2^partitionBits partitions. */
export function partitionOfToken(token: number, partitionBits: number): number {
  return partitionBits === 0 ? 0 : token >>> (32 - partitionBits);
}
