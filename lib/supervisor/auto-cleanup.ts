/**
 * Automatic cleanup (issue 5 §3): an old owner drops a partition it no longer replicates, but
 * only after the new owners have it. Riak drops a partition when its ownership handoff is
 * done; Cassandra leaves it to `nodetool cleanup`. We do both: `ringkv cleanup` runs it now,
 * and this schedule runs it by itself once the cluster has settled. Owned by the supervisor's
 * main thread; every wait is a timer.
 *
 * What "the new owners have it" means is `AntiEntropy.cleanupPartition`: one Merkle exchange
 * with every current replica of the partition (which pushes whatever they lack), and the drop
 * only when every replica is up and every exchange completed; otherwise the partition is kept
 * and tried again later. So a wrong or early ring view can cost work, never data.
 *
 * Which partitions: those a ring change took away from this node (the replica sets before and
 * after), plus, once after start, every partition this node does not replicate (data left
 * over from before a restart). A partition that becomes this node's again leaves the list.
 *
 * When: every `intervalMs`, only while `settled()` (the supervisor: this node and every member
 * `normal` or gone, no transfer of this node in progress) and at least `settleMs` after the
 * last ring change, so the joining node's own pull and catch-up go first, one partition at a
 * time. Nothing runs while a previous pass is still going.
 */

import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';

export type CleanupOutcome =
  | { readonly outcome: 'dropped'; readonly entries: number }
  | { readonly outcome: 'empty' | 'mine' }
  | { readonly outcome: 'kept'; readonly reason: string };

export interface AutoCleanupOptions {
  readonly partitionCount: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The partitions this node replicates in its current ring (empty while it knows no ring). */
  readonly myPartitions: () => readonly number[];
  /** Whether the ring is known and no membership change is in progress. */
  readonly settled: () => boolean;
  /** Hands `partition` to its replicas and drops it (AntiEntropy.cleanupPartition). */
  readonly cleanupPartition: (partition: number) => Promise<CleanupOutcome>;
  readonly intervalMs: number;
  readonly settleMs: number;
}

export interface AutoCleanupStats {
  /** Partitions waiting to be handed over and dropped. */
  pending: number;
  dropped: number;
  entriesDropped: number;
  lastKept?: string;
}

export class AutoCleanup {
  readonly #o: AutoCleanupOptions;
  readonly #pending = new Set<number>();
  #mine: Set<number> | undefined;
  #changedAtMs: number;
  #swept = false;
  #running = false;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #stats: AutoCleanupStats = { pending: 0, dropped: 0, entriesDropped: 0 };

  constructor(options: AutoCleanupOptions) {
    if (!(options.intervalMs > 0) || !(options.settleMs >= 0)) throw new RangeError('intervalMs must be positive and settleMs non-negative');
    this.#o = options;
    this.#changedAtMs = options.clock.monotonicMs();
  }

  start(): void {
    this.#timer = setInterval(() => void this.tick(), this.#o.intervalMs);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  stats(): AutoCleanupStats {
    return { ...this.#stats, pending: this.#pending.size };
  }

  /** The ring changed: partitions it took from this node wait for cleanup; the clock restarts. */
  onRingChange(): void {
    const mine = new Set(this.#o.myPartitions());
    if (this.#mine !== undefined) for (const p of this.#mine) if (!mine.has(p)) this.#pending.add(p);
    for (const p of mine) this.#pending.delete(p);
    this.#mine = mine;
    this.#changedAtMs = this.#o.clock.monotonicMs();
  }

  /** One pass (the timer calls it): cleans up pending partitions while the cluster is settled. */
  async tick(): Promise<void> {
    if (this.#running || this.#closed || this.#o.myPartitions().length === 0 || !this.#ready()) return;
    this.#running = true;
    try {
      if (!this.#swept) {
        // Once: whatever this node holds outside its partitions (cleanupPartition skips empty ones).
        const mine = new Set(this.#o.myPartitions());
        for (let p = 0; p < this.#o.partitionCount; p++) if (!mine.has(p)) this.#pending.add(p);
        this.#swept = true;
      }
      for (const partition of [...this.#pending].sort((a, b) => a - b)) {
        if (this.#closed || !this.#ready()) break;
        const result = await this.#o.cleanupPartition(partition);
        if (result.outcome === 'kept') {
          this.#stats.lastKept = `${partition}: ${result.reason}`;
          continue;
        }
        this.#pending.delete(partition);
        if (result.outcome === 'dropped') {
          this.#stats.dropped++;
          this.#stats.entriesDropped += result.entries;
          this.#o.logger.info({ partition, entries: result.entries }, 'dropped a partition this node no longer replicates');
        }
      }
    } catch (error) {
      this.#o.logger.warn({ err: error }, 'automatic cleanup pass failed');
    } finally {
      this.#running = false;
    }
  }

  /** Settled, and for long enough (checked before each partition: a change stops the pass). */
  #ready(): boolean {
    return this.#o.settled() && this.#o.clock.monotonicMs() - this.#changedAtMs >= this.#o.settleMs;
  }
}
