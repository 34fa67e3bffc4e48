/**
 * lib/store: the embedded, multi-shard, durable store — `openStore({ dir })` (DESIGN.md §1,
 * use 1). Layer 5: wires worker threads, mailboxes and the compaction pool.
 */
export {
  openStore,
  type BatchOp,
  type BatchResult,
  type GetResult,
  type Key,
  type Store,
  type StoreOptions,
  type Value,
  type WriteOptions,
  type WriteResult,
} from './store.js';
export { openReplicaStore, type ReplicaStore, type ReplicaStoreOptions, type ScanPartitionOptions, type ScanPartitionPage } from './replica-store.js';
export { storeFormatVersion, type StoreMetadata } from './store-metadata.js';
