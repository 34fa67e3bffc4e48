/**
 * The embedded store's public types (DESIGN.md §5): what `openStore` takes and returns. Pure
 * types, no code; lib/store/store.ts implements them.
 */

import type { RowCacheStats } from './row-cache.js';
import type { Logger } from '../base/log.js';
import type { ConflictPolicy } from '../causality/index.js';
import type { SyncMode } from '../storage/engine.js';
import type { ShardStats } from '../shard/control-channel.js';

export type Key = string | Uint8Array;
export type Value = string | Uint8Array;

export interface StoreOptions {
  /** The store's directory (created if missing). */
  dir: string;
  /** Shard worker threads; default the machine's parallelism for a new store, the stored count for an existing one. */
  shards?: number;
  /** 'fsync' (default): acknowledged writes are on disk. 'none': faster, loses recent writes on power loss. */
  sync?: SyncMode;
  /** 'siblings' (default) keeps concurrent writes; 'lww' keeps the last by timestamp. */
  conflicts?: ConflictPolicy;
  /** Memtable size per shard; default limits.memtableBytesDefault. */
  memtableBytes?: number;
  /** Version-header cache per shard (lib/shard/header-cache.ts); default limits.headerCacheBytesDefault, 0: off. */
  headerCacheBytes?: number;
  logger?: Logger;
}

export interface GetResult {
  found: boolean;
  /** More than one: concurrent siblings. */
  values: Uint8Array[];
  /** Pass to put/delete to supersede exactly what this get saw. */
  context: Uint8Array;
}

export interface WriteResult {
  context: Uint8Array;
}

export interface WriteOptions {
  context?: Uint8Array;
  /** The value expires this many ms after the write (put only); reads never show it after. */
  ttlMs?: number;
}

export type BatchOp =
  | { type: 'get'; key: Key }
  | { type: 'put'; key: Key; value: Value; context?: Uint8Array; ttlMs?: number }
  | { type: 'delete'; key: Key; context?: Uint8Array };

export type BatchResult = GetResult | WriteResult;

export interface ScanPartitionOptions {
  /** Resume after this key (a previous page's `nextAfterKey`). */
  afterKey?: Uint8Array;
  /** Most entries in the page, in [1, limits.scanEntriesMax]. */
  limit: number;
}

export interface ScanPartitionPage {
  /** Keys and their raw stored objects, in (token, key) order. */
  entries: { key: Uint8Array; value: Uint8Array }[];
  /** Set when more entries may follow: pass it as `afterKey`. */
  nextAfterKey?: Uint8Array;
}

export interface Store {
  readonly dir: string;
  readonly shards: number;
  get(key: Key, options?: Record<string, unknown>): Promise<GetResult>;
  put(key: Key, value: Value, options?: WriteOptions): Promise<WriteResult>;
  delete(key: Key, options?: WriteOptions): Promise<WriteResult>;
  batch(ops: readonly BatchOp[]): Promise<BatchResult[]>;
  /**
   * Per shard: its engine's statistics, its version-header cache's (`headerCache`) and its
   * restarts; `rowCache` only for a node's replica store with a row cache (row-cache.ts).
   */
  stats(): Promise<{ shards: (ShardStats & { restarts: number })[]; rowCache?: RowCacheStats }>;
  flush(): Promise<void>;
  compact(): Promise<void>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

