/**
 * What a shard worker is started with (its `workerData`): plain, structured-clone data plus
 * the two mailboxes and two ports. Shared by the thread that starts shards (lib/store) and the
 * thin worker entry (workers/shard-worker.ts). Status messages on the worker's parentPort are
 * `ShardStatusMessage`s: exactly one `ready` or `failed` per start.
 */

import type { MessagePort } from 'node:worker_threads';
import type { ErrorCode } from '../base/errors.js';
import type { ConflictPolicy } from '../causality/index.js';
import type { SyncMode } from '../storage/engine.js';

export interface ShardWorkerData {
  shardIndex: number;
  /** This shard's engine directory, e.g. `<store>/shard-0`. */
  dir: string;
  sync: SyncMode;
  partitionBits: number;
  actor: string;
  policy: ConflictPolicy;
  /** Requests in (the worker consumes). */
  requestBuffer: SharedArrayBuffer;
  /** Replies out (the worker produces). */
  replyBuffer: SharedArrayBuffer;
  controlPort: MessagePort;
  runnerPort: MessagePort;
  /** True on a restart: the previous worker of this shard died holding the engine lock. */
  reclaimFromDeadThread: boolean;
  memtableBytes: number | undefined;
  /** The actor's version-header cache budget; absent: limits.headerCacheBytesDefault. */
  headerCacheBytes?: number | undefined;
  /** Make a presence filter (presence-filter.ts) and hand it over with `ready`: a node's store, whose row cache asks it. */
  presence?: boolean;
}

export type ShardStatusMessage =
  | { kind: 'ready'; presence?: SharedArrayBuffer }
  | { kind: 'failed'; code: ErrorCode | undefined; message: string };
