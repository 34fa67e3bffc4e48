/**
 * The figures /metrics needs beyond the status document (lib/http/metrics.ts reads both):
 * every shard's engine statistics, the coordinator's counters, the failure detector's phi
 * and the link round trip per peer, and hint counts per target (stored, refused, delivered).
 * Owned by the supervisor (main thread). Pull-based: nothing here runs on a timer, the
 * snapshot is taken at scrape time, so a node nobody scrapes pays nothing; the hint counts
 * are the only push (one map update per hint, from the call sites in supervisor.ts).
 *
 * Invariants: counters only grow (Prometheus counters); a target's counts stay after its
 * hints are gone, so `rate()` over them stays correct.
 */

import type { RowCacheStats } from '../store/row-cache.js';
import type { CoordinatorStats } from '../replication/index.js';
import type { ShardStats } from '../shard/control-channel.js';

export interface PeerTelemetry {
  readonly id: string;
  readonly up: boolean;
  /** The failure detector's suspicion of the peer now (phi accrual). */
  readonly phi: number;
  /** Round trip of the last ping on our link to it; undefined before the first pong. */
  readonly rttMs: number | undefined;
}

export interface HintCounts {
  stored: number;
  /** Refused past the target's size or age bound (left to anti-entropy). */
  dropped: number;
  delivered: number;
}

export interface TelemetrySnapshot {
  readonly engines: readonly ShardStats[];
  readonly coordinator: Readonly<CoordinatorStats>;
  readonly peers: readonly PeerTelemetry[];
  readonly hints: ReadonlyMap<string, Readonly<HintCounts>>;
  /** The row cache (lib/store/row-cache.ts); undefined when the node has none. */
  readonly rowCache?: RowCacheStats | undefined;
}

/** Per-target hint counters, bumped by the supervisor's hint call sites. */
export class HintCounters {
  readonly #byTarget = new Map<string, HintCounts>();

  #of(target: string): HintCounts {
    let counts = this.#byTarget.get(target);
    if (counts === undefined) this.#byTarget.set(target, (counts = { stored: 0, dropped: 0, delivered: 0 }));
    return counts;
  }

  stored(target: string): void {
    this.#of(target).stored++;
  }

  dropped(target: string): void {
    this.#of(target).dropped++;
  }

  delivered(target: string, count: number): void {
    this.#of(target).delivered += count;
  }

  get byTarget(): ReadonlyMap<string, Readonly<HintCounts>> {
    return this.#byTarget;
  }

  /** Wraps a hint store's `add` so each outcome is counted for its target. */
  counting(add: (target: string, key: Uint8Array, object: Uint8Array) => Promise<void>): (target: string, key: Uint8Array, object: Uint8Array) => Promise<void> {
    return (target, key, object) =>
      add(target, key, object).then(
        () => this.stored(target),
        (error: unknown) => {
          this.dropped(target);
          throw error;
        },
      );
  }
}
