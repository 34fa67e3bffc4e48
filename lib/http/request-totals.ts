/**
 * Client request counts per operation and a latency histogram (all operations), cumulative
 * since the node started: what the dashboard's live charts are computed from. A sample is the
 * difference of two snapshots; samples of several nodes add bucket by bucket, so the cluster's
 * p99 is the p99 of every request in the cluster, not an average of the nodes' p99s.
 * Owned by the main thread; fed by NodeMetrics.observe (the same observations as /metrics).
 *
 * Quantiles interpolate linearly inside the bucket holding the rank (Prometheus'
 * histogram_quantile), so they are estimates within one bucket's width.
 */

/** Upper bounds in ms, about 26% apart: p50/p99 estimates within a quarter of their value. */
export const latencyBoundsMs: readonly number[] = Array.from({ length: 48 }, (_, i) => Math.round(0.05 * 1.26 ** i * 1000) / 1000);

export interface RequestSnapshot {
  /** Requests finished per operation. */
  readonly ops: Record<string, number>;
  /** Requests per latency bucket (`latencyBoundsMs`; the last entry is the overflow). */
  readonly buckets: number[];
}

export class RequestTotals {
  readonly #ops: Record<string, number> = {};
  readonly #buckets = new Array<number>(latencyBoundsMs.length + 1).fill(0);

  observe(op: string, latencyMs: number): void {
    this.#ops[op] = (this.#ops[op] ?? 0) + 1;
    this.#buckets[bucketOf(latencyMs)]!++;
  }

  snapshot(): RequestSnapshot {
    return { ops: { ...this.#ops }, buckets: [...this.#buckets] };
  }
}

function bucketOf(latencyMs: number): number {
  let low = 0;
  let high = latencyBoundsMs.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (latencyMs <= latencyBoundsMs[mid]!) high = mid;
    else low = mid + 1;
  }
  return low;
}

/** `later - earlier`, per operation and per bucket. */
export function difference(later: RequestSnapshot, earlier: RequestSnapshot | undefined): RequestSnapshot {
  const ops: Record<string, number> = {};
  for (const [op, n] of Object.entries(later.ops)) ops[op] = n - (earlier?.ops[op] ?? 0);
  return { ops, buckets: later.buckets.map((n, i) => n - (earlier?.buckets[i] ?? 0)) };
}

/** The bucket-by-bucket sum of several samples. */
export function sum(samples: readonly RequestSnapshot[]): RequestSnapshot {
  const ops: Record<string, number> = {};
  const buckets = new Array<number>(latencyBoundsMs.length + 1).fill(0);
  for (const s of samples) {
    for (const [op, n] of Object.entries(s.ops)) ops[op] = (ops[op] ?? 0) + n;
    s.buckets.forEach((n, i) => (buckets[i]! += n));
  }
  return { ops, buckets };
}

/** The q-quantile (0 < q <= 1) latency in ms of a sample; undefined without requests. */
export function quantileMs(buckets: readonly number[], q: number): number | undefined {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i]!;
    if (seen + n >= rank && n > 0) {
      const low = i === 0 ? 0 : latencyBoundsMs[i - 1]!;
      const high = latencyBoundsMs[i] ?? low;
      return low + (high - low) * ((rank - seen) / n);
    }
    seen += n;
  }
  return latencyBoundsMs[latencyBoundsMs.length - 1];
}
