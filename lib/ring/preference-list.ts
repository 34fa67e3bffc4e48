/**
 * Preference lists: the nodes that hold a partition's replicas (DESIGN.md §2, §3).
 *
 * Walk clockwise from the partition over the partitions' owners, taking each node at its
 * first appearance (the "walk"), and pick replicas from it as Cassandra's
 * NetworkTopologyStrategy does:
 *  - replication N (a number): N distinct nodes, any datacenter; a rack is a (dc, rack) pair.
 *  - replication { dc1: 3, dc2: 2 }: that many distinct nodes from each named datacenter
 *    (N = the sum); datacenters not named hold no replicas.
 *  - Within each group a node on a rack not yet used is taken at once; a node on a used rack
 *    is skipped until every rack of the group is used, then skipped nodes are taken in walk
 *    order before later ones. So racks are distinct whenever the group has enough of them.
 *  - Effective counts never exceed the nodes that exist (that own at least one partition)
 *    in the group. The list is in walk order, so a plain-N list starts with the owner.
 *
 * `preferenceLists` computes every partition's list in one pass: walking partitions
 * counter-clockwise and moving each owner to the front of a linked list keeps the list in
 * walk order for the current partition (the walk from p is owner(p) followed by the walk from
 * p+1 without it), so each partition costs only the prefix its selection reads:
 * O(Q·(N + skipped)) total, not O(Q²).
 *
 * Pure functions, any thread.
 */

import { assert } from '../base/assert.js';
import { limits } from '../base/limits.js';
import type { Member } from './member.js';
import type { Ring } from './ring.js';

/** A replica count N, or per-datacenter counts such as { dc1: 3, dc2: 2 }. */
export type Replication = number | Readonly<Record<string, number>>;

function validateCount(value: unknown, field: string, min: number): number {
  if (typeof value !== 'number') throw new TypeError(`${field} must be a number`);
  if (!Number.isInteger(value) || value < min || value > limits.replicationMax) {
    throw new RangeError(`${field} must be an integer in [${min}, ${limits.replicationMax}], got ${value}`);
  }
  return value;
}

/**
 * A validated, canonical replication: a number, or a frozen object with datacenters in sorted
 * order and zero counts dropped (they place nothing, so { dc1: 3, dc2: 0 } equals { dc1: 3 }).
 */
export function validateReplication(value: unknown, field = 'replication'): Replication {
  if (typeof value === 'number') return validateCount(value, field, 1);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${field} must be a number or an object of per-datacenter counts`);
  }
  const dcs = Object.keys(value).sort();
  if (dcs.length > limits.membersMax) throw new RangeError(`${field} names more datacenters than membersMax`);
  const entries: [string, number][] = [];
  let total = 0;
  for (const dc of dcs) {
    if (dc.length === 0) throw new RangeError(`${field}: datacenter names must not be empty`);
    const count = validateCount((value as Record<string, unknown>)[dc], `${field}.${dc}`, 0);
    if (count > 0) entries.push([dc, count]);
    total += count;
  }
  if (total < 1 || total > limits.replicationMax) {
    throw new RangeError(`${field} must total between 1 and ${limits.replicationMax} replicas, got ${total}`);
  }
  // fromEntries defines own properties, so a datacenter named "__proto__" stays data.
  return Object.freeze(Object.fromEntries(entries));
}

/**
 * Replica selection over a walk, for one ring and one replication. Feed a partition's walk to
 * `offer` node by node (after `begin`) until it returns true, then `finish`.
 */
export class ReplicaSelector {
  /** Replicas per partition: the sum of the effective per-group counts. */
  readonly width: number;
  readonly #group: Int32Array;
  readonly #rack: Int32Array;
  readonly #target: Int32Array;
  readonly #racksTotal: Int32Array;
  readonly #chosen: Int32Array;
  readonly #racksSeen: Int32Array;
  readonly #rackStamp: Int32Array;
  readonly #skipped: number[][];
  #stamp = 0;
  #position = 0;
  #remaining = 0;
  readonly #picked: number[] = [];

  /** `present[j]`: whether node j owns at least one partition (only those hold replicas). */
  constructor(nodes: readonly Member[], present: ArrayLike<boolean>, replication: Replication) {
    const dcs = typeof replication === 'number' ? [] : Object.keys(replication);
    const groups = typeof replication === 'number' ? 1 : dcs.length;
    this.#group = new Int32Array(nodes.length).fill(-1);
    this.#rack = new Int32Array(nodes.length);
    this.#target = new Int32Array(groups);
    this.#racksTotal = new Int32Array(groups);
    const rackIds = new Map<string, number>();
    const available = new Int32Array(groups);
    nodes.forEach((node, j) => {
      const group = typeof replication === 'number' ? 0 : dcs.indexOf(node.dc);
      const rackKey = `${node.dc}\u0000${node.rack}`;
      if (!present[j] || group < 0) return;
      this.#group[j] = group;
      available[group]! += 1;
      if (!rackIds.has(rackKey)) {
        rackIds.set(rackKey, rackIds.size);
        this.#racksTotal[group]! += 1;
      }
      this.#rack[j] = rackIds.get(rackKey)!;
    });
    let width = 0;
    for (let g = 0; g < groups; g++) {
      const requested = typeof replication === 'number' ? replication : replication[dcs[g]!]!;
      this.#target[g] = Math.min(requested, available[g]!);
      width += this.#target[g]!;
    }
    this.width = width;
    this.#chosen = new Int32Array(groups);
    this.#racksSeen = new Int32Array(groups);
    this.#rackStamp = new Int32Array(rackIds.size);
    this.#skipped = Array.from({ length: groups }, () => []);
  }

  begin(): void {
    this.#stamp++;
    this.#position = 0;
    this.#remaining = this.width;
    this.#chosen.fill(0);
    this.#racksSeen.fill(0);
    for (const skipped of this.#skipped) skipped.length = 0;
    this.#picked.length = 0;
  }

  /** Offers the walk's next node; true once every group has its replicas. */
  offer(node: number): boolean {
    const position = this.#position++;
    const g = this.#group[node]!;
    if (g < 0 || this.#chosen[g]! >= this.#target[g]!) return this.#remaining === 0;
    const rack = this.#rack[node]!;
    if (this.#rackStamp[rack] !== this.#stamp) {
      this.#rackStamp[rack] = this.#stamp;
      this.#racksSeen[g]! += 1;
      this.#take(g, node, position);
      if (this.#racksSeen[g] === this.#racksTotal[g]) this.#flushSkipped(g);
    } else if (this.#racksSeen[g] === this.#racksTotal[g]) {
      this.#take(g, node, position);
    } else {
      this.#skipped[g]!.push(node, position);
    }
    return this.#remaining === 0;
  }

  #take(g: number, node: number, position: number): void {
    this.#picked.push(node, position);
    this.#chosen[g]! += 1;
    this.#remaining--;
  }

  #flushSkipped(g: number): void {
    const skipped = this.#skipped[g]!;
    for (let i = 0; i < skipped.length && this.#chosen[g]! < this.#target[g]!; i += 2) {
      this.#take(g, skipped[i]!, skipped[i + 1]!);
    }
    skipped.length = 0;
  }

  /** Writes the chosen nodes, in walk order, to out[offset .. offset + width). */
  finish(out: Int32Array, offset: number): void {
    assert(this.#remaining === 0, 'walk ended before every group had its replicas');
    const picked = this.#picked;
    const count = picked.length / 2;
    for (let i = 0; i < count; i++) {
      // Insertion sort by walk position: lists are short (N ≤ replicationMax).
      let k = i;
      while (k > 0 && picked[2 * (k - 1) + 1]! > picked[2 * i + 1]!) k--;
      const node = picked[2 * i]!;
      const position = picked[2 * i + 1]!;
      picked.copyWithin(2 * k + 2, 2 * k, 2 * i);
      picked[2 * k] = node;
      picked[2 * k + 1] = position;
    }
    for (let i = 0; i < count; i++) out[offset + i] = picked[2 * i]!;
  }
}

/** Whether each node owns at least one partition. */
export function presentNodes(owners: Int32Array, nodeCount: number): boolean[] {
  const present: boolean[] = new Array<boolean>(nodeCount).fill(false);
  for (let p = 0; p < owners.length; p++) present[owners[p]!] = true;
  return present;
}

/** Every partition's preference list: node indices, `width` per partition, partition-major. */
export function preferenceLists(
  owners: Int32Array,
  nodes: readonly Member[],
  replication: Replication,
): { readonly width: number; readonly lists: Int32Array } {
  const partitionCount = owners.length;
  const selector = new ReplicaSelector(nodes, presentNodes(owners, nodes.length), replication);
  const width = selector.width;
  const lists = new Int32Array(partitionCount * width);
  // Move-to-front list of node indices; -1 ends it. A node is linked at its first sight.
  const next = new Int32Array(nodes.length).fill(-1);
  const prev = new Int32Array(nodes.length).fill(-1);
  const linked = new Uint8Array(nodes.length);
  let head = -1;
  const moveToFront = (j: number): void => {
    if (head === j) return;
    if (linked[j] === 1) {
      next[prev[j]!] = next[j]!;
      if (next[j]! >= 0) prev[next[j]!] = prev[j]!;
    }
    linked[j] = 1;
    prev[j] = -1;
    next[j] = head;
    if (head >= 0) prev[head] = j;
    head = j;
  };
  // A warm-up lap leaves the list in walk order from partition 0, which is the order the
  // nodes not yet met on the second lap need for the wrap-around.
  for (let p = partitionCount - 1; p >= 0; p--) moveToFront(owners[p]!);
  for (let p = partitionCount - 1; p >= 0; p--) {
    moveToFront(owners[p]!);
    selector.begin();
    for (let j = head; j >= 0 && !selector.offer(j); j = next[j]!);
    selector.finish(lists, p * width);
  }
  return { width, lists };
}

/**
 * The walk from `partition`: owner indices clockwise, each at its first appearance; stops
 * once all `presentCount` owning nodes are seen.
 */
export function walkFrom(owners: Int32Array, presentCount: number, partition: number): number[] {
  const seen = new Set<number>();
  const order: number[] = [];
  for (let i = 0; i < owners.length && order.length < presentCount; i++) {
    const j = owners[(partition + i) % owners.length]!;
    if (!seen.has(j)) {
      seen.add(j);
      order.push(j);
    }
  }
  return order;
}

/**
 * One partition's preference list for any replication, computed from the ring by walking
 * (O(Q)); `ring.replicasOf` is the O(1) lookup for the ring's own replication.
 */
export function preferenceList(ring: Ring, partition: number, replication: Replication): string[] {
  const canonical = validateReplication(replication);
  const nodes = ring.owners;
  const indexOf = new Map(nodes.map((node, j) => [node.id, j]));
  const present = nodes.map((node) => ring.partitionsOf(node.id).length > 0);
  const selector = new ReplicaSelector(nodes, present, canonical);
  selector.begin();
  for (const id of ring.walk(partition)) if (selector.offer(indexOf.get(id)!)) break;
  const out = new Int32Array(selector.width);
  selector.finish(out, 0);
  return Array.from(out, (j) => nodes[j]!.id);
}
