/**
 * The partition snapshots Merkle anti-entropy runs on: one partition's tree (lib/antientropy
 * PartitionTree) and its entries in leaf order, built on demand from a paged partition scan, as
 * Cassandra's repair builds its validation trees, rather than kept per shard (a scan of one
 * partition is a short, paged range read over the shard mailboxes). Owned by the AntiEntropy
 * driver (anti-entropy.ts) on the supervisor's main thread.
 *
 * Invariants:
 * - a snapshot's tree and its leaf listing describe the same entries: `merge` moves both by the
 *   change, from what the snapshot holds for the key (not the store's state just before the
 *   merge, which a client write after the scan may have changed) to the merged object.
 * - the cache holds at most `limits.antiEntropySnapshotsMax` snapshots (least recently built
 *   evicted first), each reused for `limits.antiEntropySnapshotTtlMs`, so the requests of one
 *   exchange a responder serves see one tree.
 * - with a tombstone grace (purging on), a merge never stores a tombstone-only object past its
 *   grace for a key this node does not hold (`isExpiredTombstone`, issue 5 §2): absence already
 *   means deleted, and storing it would re-seed a purged tombstone forever.
 */

import { RingkvError } from '../base/errors.js';
import { tokenOf } from '../base/hash.js';
import type { Clock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import { isExpiredTombstone, objectHashOf, PartitionTree, type LeafEntry } from '../antientropy/index.js';
import { decodeObject } from '../causality/index.js';
import type { ReplicaStore } from '../store/index.js';

export interface Snapshot {
  readonly partition: number;
  readonly tree: PartitionTree;
  /** Entries per leaf, in the engine's (token, key) order. */
  readonly leaves: Map<number, LeafEntry[]>;
  readonly builtAtMs: number;
}

export interface PartitionSnapshotsOptions {
  readonly store: ReplicaStore;
  readonly partitionBits: number;
  readonly clock: Clock;
  /** Tombstone grace when purging is on; undefined: purging is off and every merge is stored. */
  readonly tombstoneGraceMs: number | undefined;
}

export class PartitionSnapshots {
  readonly #options: PartitionSnapshotsOptions;
  readonly #cached = new Map<number, Snapshot>();

  constructor(options: PartitionSnapshotsOptions) {
    this.#options = options;
  }

  /** The cached snapshot of `partition`, whatever its age. */
  get(partition: number): Snapshot | undefined {
    return this.#cached.get(partition);
  }

  /** Drops the cached snapshot of `partition` (its data changed outside a merge). */
  forget(partition: number): void {
    this.#cached.delete(partition);
  }

  /** The partition's snapshot: built fresh, or a cached one still within its time to live. */
  async snapshot(partition: number, fresh: boolean): Promise<Snapshot> {
    const nowMs = this.#options.clock.monotonicMs();
    const cached = this.#cached.get(partition);
    if (!fresh && cached !== undefined && nowMs - cached.builtAtMs < limits.antiEntropySnapshotTtlMs) return cached;
    const snapshot = await this.#build(partition, nowMs);
    this.#cached.delete(partition);
    this.#cached.set(partition, snapshot);
    while (this.#cached.size > limits.antiEntropySnapshotsMax) this.#cached.delete(this.#cached.keys().next().value!);
    return snapshot;
  }

  /**
   * Each partition's Merkle root over this node's data now: built from a fresh scan and not
   * cached, so exchanges in flight keep their trees.
   */
  async roots(partitions: readonly number[]): Promise<{ partition: number; root: string; keys: number }[]> {
    const out: { partition: number; root: string; keys: number }[] = [];
    for (const partition of partitions) {
      const { tree, leaves } = await this.#build(partition, this.#options.clock.monotonicMs());
      let keys = 0;
      for (const entries of leaves.values()) keys += entries.length;
      out.push({ partition, root: Buffer.from(tree.rootHash()).toString('hex'), keys });
    }
    return out;
  }

  /** Merges a replica's object here and moves the snapshot's tree by the change. */
  async merge(snapshot: Snapshot, key: Uint8Array, object: Uint8Array): Promise<void> {
    const store = this.#options.store;
    if (this.#isExpired(object) && (await store.readObject(key)) === undefined) return;
    await store.mergeObject(key, object);
    const after = await store.readObject(key);
    if (after === undefined) return;
    const newHash = objectHashOf(after);
    const leaf = snapshot.tree.leafOfToken(tokenOf(key));
    const entries = snapshot.leaves.get(leaf) ?? [];
    const at = entries.findIndex((e) => Buffer.compare(e.key, key) === 0);
    snapshot.tree.update(key, at >= 0 ? entries[at]!.objectHash : undefined, newHash);
    if (at >= 0) entries[at] = { key, objectHash: newHash };
    else {
      entries.push({ key, objectHash: newHash });
      entries.sort((a, b) => tokenOf(a.key) - tokenOf(b.key) || Buffer.compare(a.key, b.key));
    }
    snapshot.leaves.set(leaf, entries);
  }

  /** Merges into the cached snapshot of `partition`, or straight into the store when none is cached. */
  async mergeInto(partition: number, key: Uint8Array, object: Uint8Array): Promise<void> {
    const snapshot = this.#cached.get(partition);
    if (snapshot !== undefined) await this.merge(snapshot, key, object);
    else if (!(await this.#skipsExpired(key, object))) await this.#options.store.mergeObject(key, object);
  }

  /** Whether `object` is an expired tombstone for a key not held here (so it is not stored). */
  async #skipsExpired(key: Uint8Array, object: Uint8Array): Promise<boolean> {
    return this.#isExpired(object) && (await this.#options.store.readObject(key)) === undefined;
  }

  #isExpired(object: Uint8Array): boolean {
    const graceMs = this.#options.tombstoneGraceMs;
    if (graceMs === undefined) return false;
    let decoded;
    try {
      decoded = decodeObject(object);
    } catch (error) {
      // Malformed: not ours to judge here; mergeObject rejects it with KV_BAD_REQUEST.
      if (error instanceof RingkvError) return false;
      throw error;
    }
    return isExpiredTombstone(decoded, this.#options.clock.wallMs(), graceMs);
  }

  /** A tree and leaf listing of one partition from a paged scan of the store. */
  async #build(partition: number, nowMs: number): Promise<Snapshot> {
    const tree = new PartitionTree({ partition, partitionBits: this.#options.partitionBits });
    const leaves = new Map<number, LeafEntry[]>();
    let afterKey: Uint8Array | undefined;
    do {
      const page = await this.#options.store.scanPartition(partition, { limit: limits.antiEntropyScanPageEntries, ...(afterKey ? { afterKey } : {}) });
      for (const { key, value } of page.entries) {
        const objectHash = objectHashOf(value);
        tree.insert(key, objectHash);
        const leaf = tree.leafOfToken(tokenOf(key));
        const list = leaves.get(leaf);
        if (list === undefined) leaves.set(leaf, [{ key, objectHash }]);
        else list.push({ key, objectHash });
      }
      afterKey = page.nextAfterKey;
    } while (afterKey !== undefined);
    return { partition, tree, leaves, builtAtMs: nowMs };
  }
}
