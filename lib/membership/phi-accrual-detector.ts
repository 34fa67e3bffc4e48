/**
 * The phi accrual failure detector: how suspicious a member's silence is, on monotonic time.
 * Pure state, no timers; owned by one Gossip instance on the supervisor's main thread.
 *
 * Follows Hayashibara, Défago, Yared, Katayama, "The φ Accrual Failure Detector" (SRDS 2004)
 * as Cassandra implements it (FailureDetector / ArrivalWindow): inter-arrival times are
 * modelled as exponential with the window's mean, so
 *
 *     phi(t) = -log10(P(no arrival for t)) = t / (mean · ln 10)
 *
 * and a threshold of 8 convicts after about 8 · ln 10 ≈ 18.4 mean intervals of silence.
 * "Arrival" means we learned a newer heartbeat for the member by any route; callers decide that.
 *
 * Invariants and choices:
 *  - Each window keeps the last `windowSize` inter-arrival times (bounded memory) and starts
 *    with one bootstrap sample (2 gossip intervals), erring high for members with few samples:
 *    a false "down" costs more (flapping, hints) than a late one.
 *  - Gaps longer than `intervalMaxMs` are outages, not samples; they are not recorded.
 *  - The mean never drops below `meanMinMs` (heartbeats are minted once per interval, so a
 *    smaller mean only comes from bursts and would convict on the first quiet moment).
 *  - Our own pauses are not held against others (RELIABILITY.md A3, C5): `observeTick` sees
 *    that our own tick came late by more than `selfLagToleranceMs` (event-loop lag, GC,
 *    SIGSTOP), moves every member's last arrival forward by the pause, skips the interval that
 *    spans it, and holds off convictions for `selfLagGraceMs` so fresh heartbeats can arrive.
 */

import { assert } from '../base/assert.js';
import { limits } from '../base/limits.js';

export interface PhiAccrualOptions {
  /** Phi above which a member may be convicted. */
  readonly threshold: number;
  readonly windowSize: number;
  readonly bootstrapIntervalMs: number;
  readonly intervalMaxMs: number;
  readonly meanMinMs: number;
  /** How often the owner calls `observeTick` (the gossip interval). */
  readonly tickIntervalMs: number;
  readonly selfLagToleranceMs: number;
  readonly selfLagGraceMs: number;
}

export function defaultPhiAccrualOptions(): PhiAccrualOptions {
  return {
    threshold: limits.phiConvictThreshold,
    windowSize: limits.arrivalWindowSize,
    bootstrapIntervalMs: limits.arrivalBootstrapIntervalMs,
    intervalMaxMs: limits.arrivalIntervalMaxMs,
    meanMinMs: limits.gossipIntervalMs / 2,
    tickIntervalMs: limits.gossipIntervalMs,
    selfLagToleranceMs: limits.selfLagToleranceMs,
    selfLagGraceMs: limits.selfLagGraceMs,
  };
}

/** The inter-arrival history of one member: a bounded ring of samples with a running sum. */
class ArrivalWindow {
  readonly #samplesMs: number[] = [];
  readonly #capacity: number;
  #nextIndex = 0;
  #sumMs = 0;
  #skipNext = false;
  lastArrivalMs: number;

  constructor(capacity: number, bootstrapIntervalMs: number, nowMs: number) {
    this.#capacity = capacity;
    this.#add(bootstrapIntervalMs);
    this.lastArrivalMs = nowMs;
  }

  get sampleCount(): number {
    return this.#samplesMs.length;
  }

  get meanMs(): number {
    return this.#sumMs / this.#samplesMs.length;
  }

  arrive(nowMs: number, intervalMaxMs: number): void {
    const intervalMs = nowMs - this.lastArrivalMs;
    if (!this.#skipNext && intervalMs >= 0 && intervalMs <= intervalMaxMs) this.#add(intervalMs);
    this.#skipNext = false;
    this.lastArrivalMs = Math.max(this.lastArrivalMs, nowMs);
  }

  /** Restarts the silence clock without recording the interval that ends here. */
  restart(nowMs: number): void {
    this.lastArrivalMs = Math.max(this.lastArrivalMs, nowMs);
    this.#skipNext = true;
  }

  /** Forgives `pauseMs` of silence that was ours, not the member's. */
  forgive(pauseMs: number, nowMs: number): void {
    this.lastArrivalMs = Math.min(this.lastArrivalMs + pauseMs, nowMs);
    this.#skipNext = true;
  }

  #add(intervalMs: number): void {
    if (this.#samplesMs.length < this.#capacity) {
      this.#samplesMs.push(intervalMs);
      this.#sumMs += intervalMs;
      return;
    }
    this.#sumMs += intervalMs - this.#samplesMs[this.#nextIndex]!;
    this.#samplesMs[this.#nextIndex] = intervalMs;
    this.#nextIndex = (this.#nextIndex + 1) % this.#capacity;
    // Recompute once per lap so floating-point drift in the running sum cannot accumulate.
    if (this.#nextIndex === 0) this.#sumMs = this.#samplesMs.reduce((sum, sample) => sum + sample, 0);
  }
}

export class PhiAccrualDetector {
  readonly options: PhiAccrualOptions;
  readonly #windows = new Map<string, ArrivalWindow>();
  #lastTickMs: number | undefined;
  #graceUntilMs = Number.NEGATIVE_INFINITY;

  constructor(options: PhiAccrualOptions = defaultPhiAccrualOptions()) {
    assert(options.threshold > 0 && options.windowSize >= 1, 'phi options out of range');
    assert(options.bootstrapIntervalMs > 0 && options.meanMinMs > 0, 'phi intervals must be positive');
    assert(options.bootstrapIntervalMs <= options.intervalMaxMs, 'bootstrap interval above intervalMaxMs');
    this.options = options;
  }

  /** Members with a window. */
  get size(): number {
    return this.#windows.size;
  }

  /** A heartbeat arrived for `id` now (by any route). Starts a window on first sight. */
  report(id: string, nowMs: number): void {
    const window = this.#windows.get(id);
    if (window === undefined) this.#windows.set(id, this.#newWindow(nowMs));
    else window.arrive(nowMs, this.options.intervalMaxMs);
  }

  /**
   * Starts (or restarts, for a new generation) the silence clock of `id` without recording an
   * interval: first sight of a member, or a restart whose gap says nothing about the network.
   */
  restart(id: string, nowMs: number): void {
    let window = this.#windows.get(id);
    if (window === undefined) {
      window = this.#newWindow(nowMs);
      this.#windows.set(id, window);
    }
    window.restart(nowMs);
  }

  remove(id: string): void {
    this.#windows.delete(id);
  }

  /** Suspicion of `id` now; 0 for a member without a window. */
  phi(id: string, nowMs: number): number {
    const window = this.#windows.get(id);
    if (window === undefined) return 0;
    const silenceMs = Math.max(0, nowMs - window.lastArrivalMs);
    return silenceMs / (Math.max(window.meanMs, this.options.meanMinMs) * Math.LN10);
  }

  /** Mean inter-arrival time of `id`, or undefined without a window. */
  meanIntervalMs(id: string): number | undefined {
    return this.#windows.get(id)?.meanMs;
  }

  sampleCount(id: string): number {
    return this.#windows.get(id)?.sampleCount ?? 0;
  }

  /** Whether we are inside the grace period that follows a local pause. */
  isLagging(nowMs: number): boolean {
    return nowMs < this.#graceUntilMs;
  }

  /** Whether `id` may be convicted now: phi over the threshold and we are not lagging. */
  isConvictable(id: string, nowMs: number): boolean {
    return !this.isLagging(nowMs) && this.phi(id, nowMs) > this.options.threshold;
  }

  /**
   * Our own periodic tick ran at `nowMs`. Returns the local pause it reveals in ms (0 if the
   * tick was on time); after a pause every member's silence is forgiven by that much.
   */
  observeTick(nowMs: number): number {
    const lastTickMs = this.#lastTickMs;
    this.#lastTickMs = nowMs;
    if (lastTickMs === undefined) return 0;
    const lateMs = nowMs - lastTickMs - this.options.tickIntervalMs;
    if (lateMs <= this.options.selfLagToleranceMs) return 0;
    for (const window of this.#windows.values()) window.forgive(lateMs, nowMs);
    this.#graceUntilMs = nowMs + this.options.selfLagGraceMs;
    return lateMs;
  }

  #newWindow(nowMs: number): ArrivalWindow {
    return new ArrivalWindow(this.options.windowSize, this.options.bootstrapIntervalMs, nowMs);
  }
}
