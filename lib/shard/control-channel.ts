/**
 * The control plane between the main thread and one shard worker, over comlink (the one
 * main-side comlink seam; workers/shard-worker.ts is the other end). Control calls are rare
 * and structured-cloned (stats, flush, compact, dropPartition, close); the data plane never goes here.
 *
 * Two channels per shard, each a dedicated MessageChannel (never the worker's parentPort, so
 * comlink messages never mix with the worker's ready/failed status messages):
 * - control: the worker exposes `ShardControlApi`; the main thread wraps it.
 * - background runner: the main thread exposes the process's one shared compaction pool as a
 *   `BackgroundRunner`; the worker wraps it, so every shard's merges share one piscina pool.
 *
 * Owner: the main thread. Errors from the worker arrive as plain Errors (comlink keeps
 * message and name, not the RingkvError code).
 */

import { expose, releaseProxy, wrap, type Remote } from 'comlink';
import type { MessagePort } from 'node:worker_threads';
import type { BackgroundJob, JobResult } from '../storage/background-job.js';
import type { BackgroundRunner, EngineStats } from '../storage/engine.js';
import type { HeaderCacheStats } from './header-cache.js';

/** A shard's statistics: its engine's, and the actor's version-header cache. */
export type ShardStats = EngineStats & { headerCache: HeaderCacheStats };

/** What a shard worker answers on its control channel. */
export interface ShardControlApi {
  stats(): ShardStats;
  flush(): Promise<void>;
  compact(): Promise<void>;
  /** Deletes every entry of a partition this shard no longer replicates; resolves with the count. */
  dropPartition(partition: number): Promise<number>;
  /** Waits for in-flight batches, closes the engine; the worker then exits on its own. */
  close(): Promise<void>;
}

export interface ShardControl {
  stats(): Promise<ShardStats>;
  flush(): Promise<void>;
  compact(): Promise<void>;
  dropPartition(partition: number): Promise<number>;
  close(): Promise<void>;
  /** Drops the proxy and closes the port; pending calls never settle afterwards. */
  release(): void;
}

export function wrapShardControl(port: MessagePort): ShardControl {
  const remote: Remote<ShardControlApi> = wrap<ShardControlApi>(port as unknown as Parameters<typeof wrap>[0]);
  return {
    stats: () => remote.stats(),
    flush: () => remote.flush(),
    compact: () => remote.compact(),
    dropPartition: (partition) => remote.dropPartition(partition),
    close: () => remote.close(),
    release: () => {
      remote[releaseProxy]();
      port.close();
    },
  };
}

/** Serves `runner` (the shared compaction pool) to one shard worker over `port`. */
export function exposeBackgroundRunner(runner: BackgroundRunner, port: MessagePort): void {
  const api = { run: (job: BackgroundJob): Promise<JobResult> => runner.run(job) };
  expose(api, port as unknown as Parameters<typeof expose>[1]);
}
