/**
 * Prometheus metrics of one node (GET /metrics). The only file that imports prom-client.
 * Owned by the main thread. One registry per node (not the global one), so several nodes in
 * one process (tests, embedding) do not collide.
 *
 * Request metrics are pushed by the supervisor through `RequestObserver`; gauges (members up,
 * ring partitions, shard bytes) are pulled from the status document at scrape time.
 */

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RequestObserver } from '../supervisor/index.js';
import type { StatusJson } from '../supervisor/index.js';

export class NodeMetrics implements RequestObserver {
  readonly registry = new Registry();
  readonly #requests: Counter<'op' | 'outcome'>;
  readonly #latency: Histogram<'op'>;

  constructor(status: () => StatusJson) {
    collectDefaultMetrics({ register: this.registry, prefix: 'ringkv_process_' });
    this.#requests = new Counter({ name: 'ringkv_requests_total', help: 'Client requests by operation and outcome (ok or an error code)', labelNames: ['op', 'outcome'], registers: [this.registry] });
    this.#latency = new Histogram({
      name: 'ringkv_request_seconds',
      help: 'Client request latency at the node that received it',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    new Gauge({
      name: 'ringkv_members',
      help: 'Known members by liveness',
      labelNames: ['state'],
      registers: [this.registry],
      collect(): void {
        const s = status();
        this.set({ state: 'up' }, s.members.filter((m) => m.up).length);
        this.set({ state: 'down' }, s.members.filter((m) => !m.up).length);
      },
    });
    new Gauge({
      name: 'ringkv_shard_live_bytes',
      help: 'Bytes in live SSTables per shard',
      labelNames: ['shard'],
      registers: [this.registry],
      collect(): void {
        for (const shard of status().shards) this.set({ shard: String(shard.index) }, shard.liveBytes);
      },
    });
    new Gauge({
      name: 'ringkv_under_replicated',
      help: '1 when fewer owning nodes exist than the replication asks for',
      registers: [this.registry],
      collect(): void {
        this.set(status().underReplicated ? 1 : 0);
      },
    });
  }

  observe(op: string, outcome: string, latencyMs: number): void {
    this.#requests.inc({ op, outcome });
    this.#latency.observe({ op }, latencyMs / 1000);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
