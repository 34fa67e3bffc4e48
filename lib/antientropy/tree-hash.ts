/**
 * The hashes of a partition's Merkle tree: an object hash per stored object and an entry hash
 * per (key, object hash). Pure functions, any thread (in practice the shard that owns the
 * partition feeds its tree on every write, and the supervisor compares trees).
 *
 *   object hash  8 bytes  ┌───────────────────────────┬───────────────────────────┐
 *                         │ murmur3(object, seedHi)   │ murmur3(object, seedLo)   │
 *                         │ u32 little-endian         │ u32 little-endian         │
 *                         └───────────────────────────┴───────────────────────────┘
 *   entry hash   (hi, lo) = (murmur3(key, objectHi ^ seedHi), murmur3(key, objectLo ^ seedLo))
 *
 * The entry hash is h(key ‖ object hash) with the object hash as murmur3's initial state: for
 * a fixed key, murmur3 is a bijection of its seed, so two states of one key always differ in
 * their entry hash when their object hashes differ. Leaves and interior nodes are the XOR of
 * the entry hashes below them (partition-tree.ts), so the tree updates in O(depth).
 *
 * Collision argument. Treating entry hashes as independent uniform 64-bit values, two nodes
 * whose entry sets differ hash equal with probability 2^-64 (the XOR of a non-empty set of
 * uniform values is uniform). A node-wide exchange schedule compares at most ~2^32 nodes a day,
 * so an undetected difference is ~2^-32 per day, and it survives only until the next write
 * to its leaf. Not adversarial-proof: murmur3 has seed-independent multicollisions
 * (Aumasson-Bernstein 2012), so a client crafting object bytes could hide a divergence from
 * the tree (never corrupt data; read repair still fixes it). A cryptographic object hash would
 * replace `objectHashOf` and bump `treeHashVersion`. Cost: two murmur3 passes over the object
 * and two over the key, about 0.2 µs for a 100-byte object (node:crypto is ~10x slower per
 * small object, and the shard hashes the old and the new object on every write).
 *
 * Frozen: the seeds, the layout and `treeHashVersion` reach the wire (replicas compare hashes).
 */

import { murmur3 } from '../base/hash.js';

/** Frozen. Bumped when any hash below changes; exchanges between versions are refused. */
export const treeHashVersion = 1;
/** Frozen. */
export const objectHashBytes = 8;
/** Frozen: bytes of one node hash on the wire (hi then lo, each u32 little-endian). */
export const nodeHashBytes = 8;

const seedHi = 0x5bd1e995;
const seedLo = 0x27d4eb2f;

/** A stored object's hash, fed to the tree and listed in leaf listings. */
export type ObjectHash = Uint8Array;

export function objectHashOf(objectBytes: Uint8Array): ObjectHash {
  const out = new Uint8Array(objectHashBytes);
  writeU32(out, 0, murmur3(objectBytes, seedHi));
  writeU32(out, 4, murmur3(objectBytes, seedLo));
  return out;
}

/** The entry hash of (key, objectHash) as [hi, lo] u32 words; `out` is reused by hot callers. */
export function entryHashInto(key: Uint8Array, objectHash: ObjectHash, out: Uint32Array): Uint32Array {
  out[0] = murmur3(key, (readU32(objectHash, 0) ^ seedHi) >>> 0);
  out[1] = murmur3(key, (readU32(objectHash, 4) ^ seedLo) >>> 0);
  return out;
}

/** Whether two 8-byte hashes are equal. */
export function hashesEqual(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset: number): boolean {
  for (let i = 0; i < nodeHashBytes; i++) if (a[aOffset + i] !== b[bOffset + i]) return false;
  return true;
}

export function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

export function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value;
  bytes[offset + 1] = value >>> 8;
  bytes[offset + 2] = value >>> 16;
  bytes[offset + 3] = value >>> 24;
}
