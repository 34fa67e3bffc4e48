/**
 * Tokens, partitions and shards: where a key lands (DESIGN.md §3 "Hashing and placement").
 *
 * A key's token is murmur3 x86_32 of its bytes with seed 0 (lib/base/hash.ts, frozen); the
 * ring has Q = 2^partitionBits fixed, equal partitions, and a token's partition is its top
 * partitionBits bits, so partition p is the token arc [p·2^(32-bits), (p+1)·2^(32-bits)) and
 * partitions are numbered clockwise. Inside a node, partition p belongs to shard p mod S.
 *
 * Pure functions, any thread. Frozen: changing the key hash, the seed or the bit order moves
 * every key of every cluster.
 */

import { limits } from '../base/limits.js';
import { partitionOfToken, tokenOf } from '../base/hash.js';

export { murmur3, partitionOfToken, tokenOf } from '../base/hash.js';

/** Throws a RangeError naming `field` unless `bits` is an integer in [partitionBitsMin, partitionBitsMax]. */
export function validatePartitionBits(bits: unknown, field = 'partitionBits'): number {
  if (typeof bits !== 'number') throw new TypeError(`${field} must be a number`);
  if (!Number.isInteger(bits) || bits < limits.partitionBitsMin || bits > limits.partitionBitsMax) {
    throw new RangeError(`${field} must be an integer in [${limits.partitionBitsMin}, ${limits.partitionBitsMax}], got ${bits}`);
  }
  return bits;
}

/** Q, the number of partitions of a ring with `partitionBits` bits. */
export function partitionCountOf(partitionBits: number): number {
  return 2 ** validatePartitionBits(partitionBits);
}

/** The partition of a key's bytes on a ring of 2^partitionBits partitions. */
export function partitionOfKey(key: Uint8Array, partitionBits: number): number {
  if (!(key instanceof Uint8Array)) throw new TypeError('key must be a Uint8Array');
  return partitionOfToken(tokenOf(key), validatePartitionBits(partitionBits));
}

/** The first token of partition p: the arc it covers starts here (inclusive). */
export function firstTokenOf(partition: number, partitionBits: number): number {
  validatePartition(partition, 2 ** validatePartitionBits(partitionBits));
  return (partition * 2 ** (32 - partitionBits)) >>> 0;
}

/** The shard (worker) of a node that holds partition p: p mod S. */
export function shardOfPartition(partition: number, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shards must be a positive integer, got ${shards}`);
  if (!Number.isInteger(partition) || partition < 0) throw new RangeError(`partition must be a non-negative integer, got ${partition}`);
  return partition % shards;
}

/** Throws a RangeError unless `partition` is an integer in [0, partitionCount). */
export function validatePartition(partition: unknown, partitionCount: number, field = 'partition'): number {
  if (typeof partition !== 'number' || !Number.isInteger(partition) || partition < 0 || partition >= partitionCount) {
    throw new RangeError(`${field} must be an integer in [0, ${partitionCount}), got ${String(partition)}`);
  }
  return partition;
}
