/**
 * What a coordinator does for a replica that missed one of its writes (the coordinator's
 * `missed` action, lib/replication/missed-replicas.ts): as Cassandra's coordinator, it keeps a
 * durable hint for that replica itself when no stand-in holds one (any three-node cluster at
 * N=3, or a sloppy quorum that found no stand-in), delivered by hint-delivery.ts once the
 * replica is back; and it marks the key's partition dirty for that replica, so anti-entropy
 * exchanges it first when the replica returns (and repairs what a refused hint left out).
 * Owned by the supervisor (main thread).
 *
 * The hint goes to the node's hint store (hint-store.ts): fsynced before `add` resolves,
 * bounded per target (bytes and max hint window); past the bound it is refused and the
 * partition recorded there as skipped, while the dirty mark still gets it repaired. A hint is
 * written after the client's answer, so hinting never delays a write; a failure is counted and
 * logged (at most once per `logIntervalMs`), never thrown.
 */

import { isRingkvError } from '../base/errors.js';
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import type { HintStore } from './hint-store.js';

const logIntervalMs = 10_000;

export interface MissedWritesOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Without a hint store, missed writes only mark partitions dirty. */
  readonly hints: HintStore | undefined;
  readonly partitionOf: (key: Uint8Array) => number;
  readonly markDirty: (partition: number, replica: string) => void;
}

export interface MissedWritesStats {
  /** Replicas that missed a write coordinated here. */
  missed: number;
  /** Hints this node kept as coordinator (stored durably). */
  hinted: number;
  /** Hints refused (target past its bound) or failed to store. */
  refused: number;
}

export class MissedWrites {
  readonly #options: MissedWritesOptions;
  readonly #stats: MissedWritesStats = { missed: 0, hinted: 0, refused: 0 };
  #lastLogMs = Number.NEGATIVE_INFINITY;

  constructor(options: MissedWritesOptions) {
    this.#options = options;
  }

  stats(): MissedWritesStats {
    return { ...this.#stats };
  }

  /** `replica` did not acknowledge the write of `key` (`object`); `standIn` holds a hint for it, if any. */
  onMissed(replica: string, key: Uint8Array, object: Uint8Array, standIn: string | undefined): void {
    const { hints, partitionOf, markDirty } = this.#options;
    this.#stats.missed++;
    markDirty(partitionOf(key), replica);
    if (standIn !== undefined || hints === undefined) return;
    hints.add(replica, key, object).then(
      () => this.#stats.hinted++,
      (error: unknown) => {
        this.#stats.refused++;
        const nowMs = this.#options.clock.monotonicMs();
        if (nowMs - this.#lastLogMs < logIntervalMs) return;
        this.#lastLogMs = nowMs;
        const code = isRingkvError(error) ? error.code : 'bug';
        this.#options.logger.warn({ replica, code, refused: this.#stats.refused, err: error }, 'could not keep a hint for a replica that missed a write; anti-entropy will repair its partition');
      },
    );
  }
}
