/**
 * The Ring: Q partitions, their owners and their preference lists, computed once from a
 * membership view and then read in O(1) (DESIGN.md §2 "ring", §3 "Hashing and placement").
 *
 * `computeRing(members, options)` is a pure function of the members' (id, weight, dc, rack,
 * status) set, the partition bits and the replication: every node that sees the same members
 * computes the same ring, whatever order they arrive in, and `ring.version` (a digest of exactly
 * those inputs) lets nodes compare rings by one string. The current ring counts `normal` and
 * `leaving` members as owners; `computeTargetRing` (joining in, leaving out) is the ring a
 * membership change is heading to, and `diffRings(current, target)` lists, per partition, the
 * replicas handoff must add and remove.
 *
 * A Ring is immutable once built and may be shared freely on the main thread; workers receive
 * what they need (their partitions), not the object. Memory: Q·(N + 1) small ints plus one
 * frozen id array per partition — about 1 MB at Q = 2^16, N = 3.
 */

import { murmur3 } from '../base/hash.js';
import { limits } from '../base/limits.js';
import { claimPartitions } from './claim.js';
import { compareIds, normalizeMembers, ownsPartitions, type Member, type MemberInput, type OwnershipOptions } from './member.js';
import { partitionOfKey, validatePartition, validatePartitionBits } from './partition.js';
import { preferenceLists, presentNodes, validateReplication, walkFrom, type Replication } from './preference-list.js';

/** Frozen: bumped whenever the placement of the same inputs changes (claim, selection rules). */
export const placementVersion = 1;

export interface RingOptions extends OwnershipOptions {
  /** log2 of Q; default limits.partitionBitsDefault. Fixed at cluster creation. */
  readonly partitionBits?: number;
  /** N or per-datacenter counts; default limits.replicationDefault. */
  readonly replication?: Replication;
}

export interface Ring {
  readonly partitionBits: number;
  /** Q = 2^partitionBits. */
  readonly partitionCount: number;
  /** The canonical (validated, defaulted, frozen) replication. */
  readonly replication: Replication;
  /** Replicas per partition after capping by the nodes that exist. */
  readonly replicaCount: number;
  /** Every member given, validated, in canonical (id) order. */
  readonly members: readonly Member[];
  /** The members that own partitions in this ring, in canonical order. */
  readonly owners: readonly Member[];
  /** A digest of the inputs that determine the ring: equal versions, equal rings. */
  readonly version: string;
  /** The primary owner of a partition. */
  ownerOf(partition: number): string;
  /** The partitions a node owns as primary (ascending); empty for a non-owner. */
  partitionsOf(nodeId: string): readonly number[];
  /** The partitions whose preference list includes a node (ascending): what it stores. */
  replicaPartitionsOf(nodeId: string): readonly number[];
  /** A partition's preference list, in walk order. */
  replicasOf(partition: number): readonly string[];
  /** The partition of a key's bytes. */
  partitionOfKey(key: Uint8Array): number;
  /** The preference list of a key's bytes. */
  replicasOfKey(key: Uint8Array): readonly string[];
  /** Every owning node clockwise from a partition, each at its first appearance (fallbacks). */
  walk(partition: number): readonly string[];
}

/** The replicas one partition gains and loses between two rings (what handoff streams). */
export interface PartitionChange {
  readonly partition: number;
  readonly from: readonly string[];
  readonly to: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

class ComputedRing implements Ring {
  readonly partitionCount: number;
  readonly replicaCount: number;
  readonly #ownerIndex: Int32Array;
  readonly #replicas: (readonly string[])[];
  readonly #partitions = new Map<string, readonly number[]>();
  readonly #replicaPartitions = new Map<string, readonly number[]>();
  readonly #presentCount: number;

  constructor(
    readonly partitionBits: number,
    readonly replication: Replication,
    readonly members: readonly Member[],
    readonly owners: readonly Member[],
    readonly version: string,
  ) {
    this.partitionCount = 2 ** partitionBits;
    const ids = owners.map((member) => member.id);
    this.#ownerIndex = claimPartitions(
      ids,
      owners.map((member) => member.weight),
      this.partitionCount,
    );
    const { width, lists } = preferenceLists(this.#ownerIndex, owners, replication);
    this.replicaCount = width;
    this.#presentCount = presentNodes(this.#ownerIndex, owners.length).filter(Boolean).length;
    this.#replicas = new Array<readonly string[]>(this.partitionCount);
    const primary: number[][] = ids.map(() => []);
    const replica: number[][] = ids.map(() => []);
    for (let p = 0; p < this.partitionCount; p++) {
      primary[this.#ownerIndex[p]!]!.push(p);
      const list: string[] = [];
      for (let r = 0; r < width; r++) {
        const j = lists[p * width + r]!;
        list.push(ids[j]!);
        replica[j]!.push(p);
      }
      this.#replicas[p] = Object.freeze(list);
    }
    ids.forEach((id, j) => {
      this.#partitions.set(id, Object.freeze(primary[j]!));
      this.#replicaPartitions.set(id, Object.freeze(replica[j]!));
    });
    Object.freeze(this);
  }

  ownerOf(partition: number): string {
    return this.owners[this.#ownerIndex[validatePartition(partition, this.partitionCount)]!]!.id;
  }

  partitionsOf(nodeId: string): readonly number[] {
    return this.#partitions.get(nodeId) ?? none;
  }

  replicaPartitionsOf(nodeId: string): readonly number[] {
    return this.#replicaPartitions.get(nodeId) ?? none;
  }

  replicasOf(partition: number): readonly string[] {
    return this.#replicas[validatePartition(partition, this.partitionCount)]!;
  }

  partitionOfKey(key: Uint8Array): number {
    return partitionOfKey(key, this.partitionBits);
  }

  replicasOfKey(key: Uint8Array): readonly string[] {
    return this.#replicas[partitionOfKey(key, this.partitionBits)]!;
  }

  walk(partition: number): readonly string[] {
    validatePartition(partition, this.partitionCount);
    return walkFrom(this.#ownerIndex, this.#presentCount, partition).map((j) => this.owners[j]!.id);
  }
}

const none: readonly number[] = Object.freeze([]);

/**
 * The digest behind `ring.version`: murmur3 under four seeds (128 bits, hex) of the canonical
 * JSON of everything the placement depends on. Not a security hash: rings are compared between
 * authenticated peers, and a collision needs 2^64 distinct rings.
 */
function ringVersion(partitionBits: number, replication: Replication, owners: readonly Member[]): string {
  const replicationKey =
    typeof replication === 'number' ? replication : Object.entries(replication).sort((a, b) => compareIds(a[0], b[0]));
  const canonical = JSON.stringify([
    'ringkv-placement',
    placementVersion,
    partitionBits,
    replicationKey,
    owners.map((member) => [member.id, member.weight, member.dc, member.rack]),
  ]);
  const bytes = new TextEncoder().encode(canonical);
  let hex = '';
  for (let seed = 1; seed <= 4; seed++) hex += murmur3(bytes, seed).toString(16).padStart(8, '0');
  return hex;
}

/**
 * The ring of a membership view. Throws TypeError/RangeError naming the field for bad members
 * or options, and RangeError when no member owns partitions under these options.
 */
export function computeRing(members: readonly MemberInput[], options: RingOptions = {}): Ring {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const partitionBits = validatePartitionBits(options.partitionBits ?? limits.partitionBitsDefault, 'options.partitionBits');
  const replication = validateReplication(options.replication ?? limits.replicationDefault, 'options.replication');
  const all = normalizeMembers(members);
  const owners = Object.freeze(all.filter((member) => ownsPartitions(member.status, options)));
  if (owners.length === 0) {
    throw new RangeError('members: no member owns partitions (need status normal or leaving, or joining with includeJoining)');
  }
  return new ComputedRing(partitionBits, replication, all, owners, ringVersion(partitionBits, replication, owners));
}

/** The ring a membership change is heading to: joining members in, leaving members out. */
export function computeTargetRing(members: readonly MemberInput[], options: Omit<RingOptions, keyof OwnershipOptions> = {}): Ring {
  return computeRing(members, { ...options, includeJoining: true, excludeLeaving: true });
}

/**
 * Per partition, the replicas `to` adds and `from` loses (only partitions whose replica set
 * changes, ascending). Both rings must have the same partition count.
 */
export function diffRings(from: Ring, to: Ring): PartitionChange[] {
  if (from.partitionCount !== to.partitionCount) {
    throw new RangeError(`rings differ in partition count: ${from.partitionCount} vs ${to.partitionCount}`);
  }
  const changes: PartitionChange[] = [];
  if (from.version === to.version) return changes;
  for (let p = 0; p < from.partitionCount; p++) {
    const before = from.replicasOf(p);
    const after = to.replicasOf(p);
    const added = after.filter((id) => !before.includes(id));
    const removed = before.filter((id) => !after.includes(id));
    if (added.length > 0 || removed.length > 0) changes.push({ partition: p, from: before, to: after, added, removed });
  }
  return changes;
}
