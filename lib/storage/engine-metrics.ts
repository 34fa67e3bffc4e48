/**
 * The engine's figures for operators that stats() cannot read off its state: group-commit
 * batch sizes and commit-log fsync latency (fixed-bucket histograms, cumulative since open),
 * and the pending compaction estimate. Owned by the shard's thread like the engine; the
 * histograms are plain arrays so they cross to the supervisor by structured clone inside
 * `EngineStats` and become Prometheus histograms there (lib/http).
 *
 * Pending compaction bytes follows RocksDB's `estimate-pending-compaction-bytes`: the bytes
 * above each level's target size (level 0: all of it once it holds the trigger's count of
 * tables), i.e. roughly what compaction must rewrite before the tree is in shape again.
 */

import { levelBytesMax, type CompactionConfig } from './compaction-picker.js';
import type { TableMeta } from './manifest.js';

/** A histogram snapshot: `counts[i]` observations <= `bounds[i]`, plus the overflow in `counts[bounds.length]`. */
export interface HistogramSnapshot {
  bounds: number[];
  counts: number[];
  sum: number;
  count: number;
}

/** Upper bounds (seconds) of the fsync latency buckets: 50 µs to 1 s. */
export const fsyncSecondsBounds = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Upper bounds of the group-commit batch size buckets (writes per commit-log append). */
export const commitBatchBounds = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export class FixedHistogram {
  readonly #bounds: number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = [...bounds];
    this.#counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.#bounds.length && value > this.#bounds[i]!) i++;
    this.#counts[i]!++;
    this.#sum += value;
    this.#count++;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: [...this.#bounds], counts: [...this.#counts], sum: this.#sum, count: this.#count };
  }
}

/** Group-commit figures of one engine. */
export class CommitMetrics {
  readonly batchWrites = new FixedHistogram(commitBatchBounds);
  readonly fsyncSeconds = new FixedHistogram(fsyncSecondsBounds);
}

/** RocksDB's pending compaction estimate over the engine's levels (see the header). */
export function pendingCompactionBytes(levels: readonly (readonly TableMeta[])[], config: CompactionConfig): number {
  let pending = 0;
  levels.forEach((tables, level) => {
    if (level === config.levelCount - 1) return;
    const bytes = tables.reduce((sum, t) => sum + t.fileBytes, 0);
    if (level === 0) pending += tables.length >= config.level0CompactionTrigger ? bytes : 0;
    else pending += Math.max(0, bytes - levelBytesMax(level, config));
  });
  return pending;
}
