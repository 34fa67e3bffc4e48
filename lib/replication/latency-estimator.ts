/**
 * Per-node latency estimates for hedged requests ("The Tail at Scale", Dean and Barroso 2013;
 * Cassandra's speculative_retry): how long to wait for a node before asking another one too
 * (the hedge delay), and how long before calling a silent node suspect (the attempt timeout).
 * Pure: samples and times are arguments. Owned by one coordinator or one client (one thread).
 *
 * The estimate is RFC 6298's retransmission-timer estimator: a smoothed latency srtt and a
 * smoothed mean deviation rttvar (gains 1/8 and 1/4); srtt + 4·rttvar sits near the p99 of a
 * node whose latency is steady, costs O(1) per sample and needs no window of samples. It is
 * clamped to [limits.hedgeDelayMsMin, limits.hedgeDelayMsMax]: the floor keeps one fast run
 * from hedging every request, the ceiling keeps a slow node from delaying the hedge past the
 * failover goal. A node with no sample gets limits.hedgeDelayMsInitial.
 *
 * Invariants: hedgeDelayMs(id) is within [min, max] and attemptTimeoutMs(id) within
 * [attemptTimeoutMsMin, attemptTimeoutMsMax]; at most `nodesMax` nodes are tracked (the
 * least recently sampled is forgotten beyond).
 */

import { limits } from '../base/limits.js';

interface Estimate {
  srttMs: number;
  rttvarMs: number;
}

export interface LatencyBounds {
  readonly hedgeDelayMsMin: number;
  readonly hedgeDelayMsMax: number;
  readonly hedgeDelayMsInitial: number;
  readonly attemptTimeoutFactor: number;
  readonly attemptTimeoutMsMin: number;
  readonly attemptTimeoutMsMax: number;
}

export const defaultLatencyBounds: LatencyBounds = {
  hedgeDelayMsMin: limits.hedgeDelayMsMin,
  hedgeDelayMsMax: limits.hedgeDelayMsMax,
  hedgeDelayMsInitial: limits.hedgeDelayMsInitial,
  attemptTimeoutFactor: limits.attemptTimeoutFactor,
  attemptTimeoutMsMin: limits.attemptTimeoutMsMin,
  attemptTimeoutMsMax: limits.attemptTimeoutMsMax,
};

const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value));

/**
 * The hedge ration: each request earns `ratio` of a hedge, at most `burst` are saved, and a
 * hedge spends one. Under overload, when every request runs late, at most about `ratio` of
 * them are hedged.
 */
export class HedgeBudget {
  readonly #ratio: number;
  readonly #burst: number;
  #tokens: number;

  constructor(ratio: number = limits.hedgeBudgetRatio, burst: number = limits.hedgeBudgetBurst) {
    this.#ratio = ratio;
    this.#burst = burst;
    this.#tokens = burst;
  }

  /** A request started. */
  earn(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + this.#ratio);
  }

  /** Whether a hedge may go out now; spends one if so. */
  spend(): boolean {
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

export class LatencyEstimator {
  readonly #bounds: LatencyBounds;
  readonly #nodesMax: number;
  readonly #byNode = new Map<string, Estimate>();
  /** The node sampled last (the last key of #byNode), if known. */
  #lastSampled: string | undefined;

  constructor(bounds: Partial<LatencyBounds> = {}, nodesMax: number = limits.membersMax) {
    this.#bounds = { ...defaultLatencyBounds, ...bounds };
    this.#nodesMax = nodesMax;
  }

  /** Records one answered request's latency. */
  sample(id: string, latencyMs: number): void {
    if (!(latencyMs >= 0) || !Number.isFinite(latencyMs)) return;
    const e = this.#byNode.get(id);
    if (e === undefined) {
      if (this.#byNode.size >= this.#nodesMax) this.#byNode.delete(this.#byNode.keys().next().value!);
      this.#byNode.set(id, { srttMs: latencyMs, rttvarMs: latencyMs / 2 });
      this.#lastSampled = id;
      return;
    }
    e.rttvarMs += (Math.abs(e.srttMs - latencyMs) - e.rttvarMs) / 4;
    e.srttMs += (latencyMs - e.srttMs) / 8;
    // Most recently sampled last, so the first key is the one to forget (already so when
    // the same node answers again: no delete and re-insert, whose table churn the GC paid).
    if (id === this.#lastSampled) return;
    this.#byNode.delete(id);
    this.#byNode.set(id, e);
    this.#lastSampled = id;
  }

  /** How long to wait for `id` before asking another node as well. */
  hedgeDelayMs(id: string): number {
    const b = this.#bounds;
    const e = this.#byNode.get(id);
    if (e === undefined) return b.hedgeDelayMsInitial;
    return Math.round(clamp(e.srttMs + 4 * e.rttvarMs, b.hedgeDelayMsMin, b.hedgeDelayMsMax));
  }

  /** How long `id` may stay silent on a request before it is suspect. */
  attemptTimeoutMs(id: string): number {
    const b = this.#bounds;
    return Math.round(clamp(b.attemptTimeoutFactor * this.hedgeDelayMs(id), b.attemptTimeoutMsMin, b.attemptTimeoutMsMax));
  }

  /** The smoothed latency of `id`, undefined before its first sample (status, tests). */
  smoothedMs(id: string): number | undefined {
    return this.#byNode.get(id)?.srttMs;
  }
}
