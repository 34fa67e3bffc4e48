/**
 * The replica face of the embedded store, for a cluster node's supervisor (not part of the
 * public `Store` type): the three shard operations a coordinator needs, plus partition scans.
 *
 * Owner: the thread that opened it (the node's main thread).
 *
 * - `coordinateWrite` is exactly a put (value) or delete (null) with the client path's limits,
 *   whose reply also carries the key's new stored object (lib/causality encodeObject) for the
 *   coordinator to send to the other replicas.
 * - `readObject` is a replica read: the stored object's bytes, no read view (the coordinator
 *   merges the replicas' objects).
 * - `mergeObject` merges another replica's object (mergeReplicas) and resolves once the
 *   merged state is durable; malformed or oversized objects are KV_BAD_REQUEST and never
 *   stored. Never limited by client limits (RELIABILITY.md §2.5): keys up to
 *   limits.keyBytesCeiling, objects up to what the engine and the mailbox frame can carry.
 * - `purgeIf` drops a tombstone: an engine delete of the key in the shard's group commit, only
 *   if the stored object is still byte-for-byte the one the caller scanned (a write or merge
 *   that landed since wins; resolves false). Deciding WHETHER to purge is the caller's
 *   (lib/supervisor/purge.ts, the rule of lib/antientropy/purge-ledger.ts).
 *
 * Failures follow the Store: a shard dying with the request in flight fails writes and merges
 * with KV_INDETERMINATE and reads with KV_UNAVAILABLE. `partitionBits` and `actor` are kept in
 * the STORE file; reopening with another value of either is KV_INCOMPATIBLE.
 */

import { checkActorId } from '../causality/index.js';
import type { LocalWriteFlags } from '../replication/index.js';
import { limits } from '../base/limits.js';
import type { RowCache, RowDerive, RowEntry } from './row-cache.js';
import { openEmbeddedStore, type ScanPartitionOptions, type ScanPartitionPage, type Store, type StoreOptions } from './store.js';

export interface ReplicaStore extends Store {
  readonly partitionBits: number;
  /** The actor id written into version vectors (the node id when given at creation). */
  readonly actor: string;
  /** Partition of a key's bytes is `partitionOfToken(tokenOf(key), partitionBits)`; its shard is that mod `shards`. */
  /** `flags`: TTL, overwrite and keep-TTL of the write (RESP SET; lib/replication WriteFlags), and the mint its event carries. */
  coordinateWrite(key: Uint8Array, value: Uint8Array | null, context: Uint8Array | undefined, flags?: LocalWriteFlags): Promise<{ context: Uint8Array; object: Uint8Array }>;
  readObject(key: Uint8Array): Promise<Uint8Array | undefined>;
  mergeObject(key: Uint8Array, object: Uint8Array): Promise<void>;
  /** Deletes `key` only if its stored object is exactly `expected`; resolves whether it did. */
  purgeIf(key: Uint8Array, expected: Uint8Array): Promise<boolean>;
  scanPartition(partition: number, options: ScanPartitionOptions): Promise<ScanPartitionPage>;
  /** Deletes every entry of a partition this node no longer replicates (cleanup); resolves with the count. */
  dropPartition(partition: number): Promise<number>;
  /** The row cache's entry for `key` (its object copied out), if the store has a row cache and it holds the key (row-cache.ts). */
  cachedRow(key: Uint8Array): RowEntry | undefined;
  /** Publishes this turn's shard requests and delivers replies already published, now (EmbeddedStore.poll). */
  poll?(): void;
  /** The row cache, if the store has one (plain reads straight from it: RowCache.plainRead). */
  readonly rowCache?: RowCache | undefined;
  /** Has each row cache entry's view made when it is filled, by `derive` (row-cache.ts RowView). */
  deriveRows?(derive: RowDerive): void;
}

export interface ReplicaStoreOptions extends StoreOptions {
  /** log2 of the partition count Q; default limits.partitionBitsDefault. Fixed at creation. */
  partitionBits?: number;
  /** The actor id for version vectors (use the node id); default generated. Fixed at creation. */
  actor?: string;
  /** Publish request frames once per event-loop turn, not per microtask checkpoint (a node: many sockets per turn). */
  publishPerTurn?: boolean;
  /** Bytes of recently read stored objects kept on the owning thread (row-cache.ts); 0 (default): none. */
  rowCacheBytes?: number;
}

/** Opens (creating if needed) a store for a cluster node's replicas. */
export function openReplicaStore(options: ReplicaStoreOptions): Promise<ReplicaStore> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const { partitionBits, actor } = options;
  if (partitionBits !== undefined && (!Number.isInteger(partitionBits) || partitionBits < limits.partitionBitsMin || partitionBits > limits.partitionBitsMax)) {
    throw new RangeError(`partitionBits must be an integer within [${limits.partitionBitsMin}, ${limits.partitionBitsMax}]`);
  }
  if (actor !== undefined) checkActorId(actor, 'actor');
  const identity = { ...(partitionBits === undefined ? {} : { partitionBits }), ...(actor === undefined ? {} : { actor }) };
  const { rowCacheBytes } = options;
  if (rowCacheBytes !== undefined && (!Number.isInteger(rowCacheBytes) || rowCacheBytes < 0 || rowCacheBytes > limits.rowCacheBytesMax)) {
    throw new RangeError(`rowCacheBytes must be an integer within [0, ${limits.rowCacheBytesMax}]`);
  }
  return openEmbeddedStore(options, identity, { publishPerTurn: options.publishPerTurn === true, rowCacheBytes: rowCacheBytes ?? 0 });
}

export type { ScanPartitionOptions, ScanPartitionPage };
