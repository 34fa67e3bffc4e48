/**
 * This node's load, as the autoscaler reads it: client requests answered per second, their
 * p99, the main thread's event-loop utilisation and the process's CPU, over the interval
 * since the last sample. Fed by the client service's request observer; sampled by the load
 * gossip once per report interval. Owned by the supervisor (main thread).
 *
 * Latencies are kept in a bounded reservoir per interval (scaleLatencySamplesMax, Vitter's
 * algorithm R), so a busy interval costs fixed memory and the p99 stays an unbiased estimate.
 */

import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { limits } from '../../base/limits.js';
import type { Rng } from '../../base/rng.js';
import type { RequestObserver } from '../client-service.js';

export interface LoadSample {
  readonly opsPerSecond: number;
  readonly p99Ms: number;
  readonly elu: number;
  readonly cpu: number;
}

export class LoadSampler implements RequestObserver {
  readonly #rng: Rng;
  #ops = 0;
  #latencies: number[] = [];
  #lastMs: number;
  #lastElu: EventLoopUtilization;
  #lastCpu: NodeJS.CpuUsage;
  #latest: LoadSample = { opsPerSecond: 0, p99Ms: 0, elu: 0, cpu: 0 };

  constructor(rng: Rng, nowMs: number) {
    this.#rng = rng;
    this.#lastMs = nowMs;
    this.#lastElu = performance.eventLoopUtilization();
    this.#lastCpu = process.cpuUsage();
  }

  observe(_op: string, _outcome: string, latencyMs: number): void {
    this.#ops++;
    if (this.#latencies.length < limits.scaleLatencySamplesMax) this.#latencies.push(latencyMs);
    else {
      const j = Math.floor(this.#rng.next() * this.#ops);
      if (j < limits.scaleLatencySamplesMax) this.#latencies[j] = latencyMs;
    }
  }

  /** The figures since the previous sample (the previous ones when under 10 ms passed). */
  sample(nowMs: number): LoadSample {
    const elapsedMs = nowMs - this.#lastMs;
    if (elapsedMs < 10) return this.#latest;
    const elu = performance.eventLoopUtilization(this.#lastElu);
    const cpu = process.cpuUsage(this.#lastCpu);
    const sorted = this.#latencies.sort((a, b) => a - b);
    this.#latest = {
      opsPerSecond: (this.#ops * 1000) / elapsedMs,
      p99Ms: sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!,
      elu: Math.min(1, Math.max(0, elu.utilization)),
      cpu: (cpu.user + cpu.system) / 1000 / elapsedMs,
    };
    this.#ops = 0;
    this.#latencies = [];
    this.#lastMs = nowMs;
    this.#lastElu = performance.eventLoopUtilization();
    this.#lastCpu = process.cpuUsage();
    return this.#latest;
  }
}

/** An observer that tells two others (the node's metrics and the load sampler). */
export function teeObserver(a: RequestObserver | undefined, b: RequestObserver): RequestObserver {
  return { observe: (op, outcome, latencyMs) => (a?.observe(op, outcome, latencyMs), b.observe(op, outcome, latencyMs)) };
}
