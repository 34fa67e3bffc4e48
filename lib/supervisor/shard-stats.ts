/**
 * The per-shard figures of `status` (status.ts): every `statsRefreshMs` this node's shard
 * statistics (replica store `stats`, through the shard mailboxes) are turned into one row per
 * shard (partitions of this node it holds, live bytes, restarts) and the node's load in bytes.
 * Owned by the supervisor (main thread); the only IO is the store call, the only wait a timer.
 *
 * Invariants: the figures are a snapshot at most `statsRefreshMs` (plus one store call) old,
 * empty and undefined until the first refresh; a failed refresh keeps the previous figures and
 * is logged at debug, never thrown. Partition `p` belongs to shard `p % shardCount`.
 */

import type { Logger } from '../base/log.js';
import type { ReplicaStore } from '../store/index.js';
import type { StatusShard } from './status.js';
import type { ShardStats as ShardFigures } from '../shard/control-channel.js';
import type { RowCacheStats } from '../store/row-cache.js';

const statsRefreshMs = 2_000;

export interface ShardStatsOptions {
  readonly store: ReplicaStore;
  readonly logger: Logger;
  /** The partitions this node replicates now. */
  readonly myPartitions: () => readonly number[];
}

export class ShardStats {
  readonly #options: ShardStatsOptions;
  #shards: StatusShard[] = [];
  #loadBytes: number | undefined;
  #engines: ShardFigures[] = [];
  #rowCache: RowCacheStats | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ShardStatsOptions) {
    this.#options = options;
  }

  /** One row per shard, from the last successful refresh. */
  get shards(): StatusShard[] {
    return this.#shards;
  }

  /** Each shard's engine figures from the last successful refresh (for /metrics). */
  get engines(): readonly ShardFigures[] {
    return this.#engines;
  }

  /** The row cache's figures (lib/store/row-cache.ts) from the last refresh; undefined without one. */
  get rowCache(): RowCacheStats | undefined {
    return this.#rowCache;
  }

  /** The node's live bytes over every shard; undefined until the first successful refresh. */
  get loadBytes(): number | undefined {
    return this.#loadBytes;
  }

  /** Refreshes now, then every `statsRefreshMs`. */
  start(): void {
    void this.refresh();
    this.#timer = setInterval(() => void this.refresh(), statsRefreshMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  async refresh(): Promise<void> {
    try {
      const stats = await this.#options.store.stats();
      const mine = this.#options.myPartitions();
      const count = stats.shards.length;
      this.#engines = stats.shards;
      this.#rowCache = stats.rowCache;
      this.#shards = stats.shards.map((s, index) => ({
        index,
        partitions: mine.filter((p) => p % count === index).length,
        liveBytes: s.liveTableBytes + s.walBytes,
        restarts: s.restarts,
      }));
      this.#loadBytes = this.#shards.reduce((sum, s) => sum + s.liveBytes, 0);
    } catch (error) {
      this.#options.logger.debug({ err: error }, 'shard stats unavailable');
    }
  }
}
