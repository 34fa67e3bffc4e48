/**
 * Prometheus metrics of one node (GET /metrics). The only file that imports prom-client.
 * Owned by the main thread. One registry per node (not the global one), so several nodes in
 * one process (tests, embedding) do not collide.
 *
 * What is exported is metric-catalog.ts: series pushed per request arrive through
 * `RequestObserver` (observe, observeRead) and become prom-client counters and histograms;
 * everything else is read at scrape time from the status document and the supervisor's
 * telemetry snapshot by small collector objects registered with the registry (prom-client
 * calls their `get()`), so scraping costs nothing until someone scrapes. Process figures
 * come from prom-client's defaults, prefixed `ringkv_` (`ringkv_process_cpu_seconds_total`).
 *
 * The dashboard's live charts read the same observations through `requests` (request-totals.ts).
 */

import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RequestObserver, StatusJson, TelemetrySnapshot } from '../supervisor/index.js';
import { type HistogramSample, metricCatalog, type MetricSources, type MetricSpec } from './metric-catalog.js';
import { RequestTotals } from './request-totals.js';

const failureReasons: Record<string, string> = { KV_TIMEOUT: 'timeout', KV_UNAVAILABLE: 'unavailable', KV_INDETERMINATE: 'indeterminate' };

interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** A series read at scrape time, in the shape prom-client's registry asks of a metric. */
class PulledMetric {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly aggregator = 'sum';

  constructor(
    private readonly spec: MetricSpec,
    private readonly sources: () => MetricSources,
  ) {
    this.name = spec.name;
    this.help = spec.help;
    this.type = spec.type;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const sources = this.sources();
    const values = this.spec.readHistograms ? this.spec.readHistograms(sources).flatMap((h) => histogramValues(this.name, h)) : (this.spec.read?.(sources) ?? []).map((s) => ({ value: s.value, labels: s.labels }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {}
}

function histogramValues(name: string, { labels, histogram }: HistogramSample): MetricValue[] {
  const out: MetricValue[] = [];
  let cumulative = 0;
  histogram.bounds.forEach((bound, i) => {
    cumulative += histogram.counts[i] ?? 0;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: bound }, value: cumulative });
  });
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: histogram.count });
  out.push({ metricName: `${name}_sum`, labels, value: histogram.sum });
  out.push({ metricName: `${name}_count`, labels, value: histogram.count });
  return out;
}

export class NodeMetrics implements RequestObserver {
  readonly registry = new Registry();
  /** Per-operation counts and latency buckets since start, for the dashboard's live charts. */
  readonly requests = new RequestTotals();
  readonly #requests: Counter<string>;
  readonly #latency: Histogram<string>;
  readonly #failures: Counter<string>;
  readonly #siblings: Histogram<string>;

  constructor(status: () => StatusJson, telemetry: () => TelemetrySnapshot) {
    collectDefaultMetrics({ register: this.registry, prefix: 'ringkv_' });
    const pushed = new Map(metricCatalog.filter((m) => m.pushed).map((m) => [m.name, m]));
    const counter = (name: string): Counter<string> => new Counter({ name, help: pushed.get(name)!.help, labelNames: [...pushed.get(name)!.labels], registers: [this.registry] });
    const histogram = (name: string): Histogram<string> =>
      new Histogram({ name, help: pushed.get(name)!.help, labelNames: [...pushed.get(name)!.labels], buckets: [...pushed.get(name)!.buckets!], registers: [this.registry] });
    this.#requests = counter('ringkv_requests_total');
    this.#latency = histogram('ringkv_request_seconds');
    this.#failures = counter('ringkv_coordinator_failures_total');
    this.#siblings = histogram('ringkv_read_siblings');
    // Series exist from the start at 0, so rate() and alerts see them before the first failure.
    for (const op of ['get', 'put', 'delete']) for (const reason of Object.values(failureReasons)) this.#failures.inc({ op, reason }, 0);
    const sources = (): MetricSources => ({ status: status(), telemetry: telemetry() });
    for (const spec of metricCatalog) if (!spec.pushed) this.registry.registerMetric(new PulledMetric(spec, sources) as never);
  }

  observe(op: string, outcome: string, latencyMs: number): void {
    this.#requests.inc({ op, outcome });
    this.#latency.observe({ op }, latencyMs / 1000);
    this.requests.observe(op, latencyMs);
    const reason = failureReasons[outcome];
    if (reason !== undefined) this.#failures.inc({ op, reason });
  }

  observeRead(siblings: number): void {
    this.#siblings.observe(siblings);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
