/**
 * The catalog of every ringkv series on /metrics: name, type, labels, help, and for the
 * figures pulled at scrape time the function reading them off the node's status document and
 * telemetry snapshot (lib/supervisor). Series pushed per request (`pushed: true`) are
 * observed by metrics.ts. The catalog is data: metrics.ts turns it into prom-client objects,
 * the naming test checks it against Prometheus conventions, and the README's list is this list.
 *
 * Naming (https://prometheus.io/docs/practices/naming/): `ringkv_` prefix, snake_case, base
 * units (`_seconds`, `_bytes`), counters end in `_total`, nothing else does.
 */

import type { HistogramSnapshot } from '../storage/index.js';
import type { StatusJson, TelemetrySnapshot } from '../supervisor/index.js';
import { engineMetrics } from './engine-metric-catalog.js';

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type Labels = Record<string, string>;

export interface Sample {
  readonly labels: Labels;
  readonly value: number;
}

export interface HistogramSample {
  readonly labels: Labels;
  readonly histogram: HistogramSnapshot;
}

export interface MetricSources {
  readonly status: StatusJson;
  readonly telemetry: TelemetrySnapshot;
}

export interface MetricSpec {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labels: readonly string[];
  /** Observed per request by metrics.ts rather than read at scrape time. */
  readonly pushed?: boolean;
  /** Histogram buckets of a pushed histogram. */
  readonly buckets?: readonly number[];
  readonly read?: (sources: MetricSources) => Sample[];
  readonly readHistograms?: (sources: MetricSources) => HistogramSample[];
}

export const requestSecondsBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const one = (value: number): Sample[] => [{ labels: {}, value }];

const requestMetrics: MetricSpec[] = [
  { name: 'ringkv_requests_total', type: 'counter', help: 'Client requests by operation and outcome (ok or an error code)', labels: ['op', 'outcome'], pushed: true },
  { name: 'ringkv_request_seconds', type: 'histogram', help: 'Client request latency at the node that received it', labels: ['op'], pushed: true, buckets: requestSecondsBuckets },
  { name: 'ringkv_coordinator_failures_total', type: 'counter', help: 'Client requests that failed with a timeout, unavailable or indeterminate outcome, per operation', labels: ['op', 'reason'], pushed: true },
  { name: 'ringkv_read_siblings', type: 'histogram', help: 'Siblings returned per successful read (0: not found)', labels: [], pushed: true, buckets: [0, 1, 2, 3, 5, 10, 50] },
];

const nodeMetrics: MetricSpec[] = [
  { name: 'ringkv_uptime_seconds', type: 'gauge', help: 'Seconds since this node started', labels: [], read: ({ status }) => one(status.uptimeMs / 1000) },
  {
    name: 'ringkv_members',
    type: 'gauge',
    help: 'Known members by liveness',
    labels: ['state'],
    read: ({ status }) => [
      { labels: { state: 'up' }, value: status.members.filter((m) => m.up).length },
      { labels: { state: 'down' }, value: status.members.filter((m) => !m.up).length },
    ],
  },
  { name: 'ringkv_under_replicated', type: 'gauge', help: '1 when fewer owning nodes exist than the replication asks for', labels: [], read: ({ status }) => one(status.underReplicated ? 1 : 0) },
  { name: 'ringkv_warnings', type: 'gauge', help: 'Warnings this node reports in its status', labels: [], read: ({ status }) => one(status.warnings.length) },
  { name: 'ringkv_shard_live_bytes', type: 'gauge', help: 'Bytes in live SSTables and commit logs per shard', labels: ['shard'], read: ({ status }) => status.shards.map((s) => ({ labels: { shard: String(s.index) }, value: s.liveBytes })) },
  { name: 'ringkv_shard_partitions', type: 'gauge', help: 'Partitions of this node each shard holds', labels: ['shard'], read: ({ status }) => status.shards.map((s) => ({ labels: { shard: String(s.index) }, value: s.partitions })) },
  { name: 'ringkv_shard_restarts_total', type: 'counter', help: 'Shard worker restarts since the node started', labels: ['shard'], read: ({ status }) => status.shards.map((s) => ({ labels: { shard: String(s.index) }, value: s.restarts })) },
];

const clusterWorkMetrics: MetricSpec[] = [
  { name: 'ringkv_hints_pending', type: 'gauge', help: 'Undelivered hints this node holds, per target', labels: ['target'], read: (sources) => pendingHints(sources, 'hints') },
  { name: 'ringkv_hints_pending_bytes', type: 'gauge', help: 'Bytes of undelivered hints this node holds, per target', labels: ['target'], read: (sources) => pendingHints(sources, 'bytes') },
  { name: 'ringkv_hints_stored_total', type: 'counter', help: 'Hints stored for a down replica, per target', labels: ['target'], read: ({ telemetry }) => perTarget(telemetry, 'stored') },
  { name: 'ringkv_hints_delivered_total', type: 'counter', help: 'Hints delivered to and acknowledged by their target', labels: ['target'], read: ({ telemetry }) => perTarget(telemetry, 'delivered') },
  { name: 'ringkv_hints_dropped_total', type: 'counter', help: 'Hints refused past the target bound (left to anti-entropy), per target', labels: ['target'], read: ({ telemetry }) => perTarget(telemetry, 'dropped') },
  { name: 'ringkv_row_cache_bytes', type: 'gauge', help: 'Bytes held by the row cache (recently read keys on the main thread)', labels: [], read: ({ telemetry }) => one(telemetry.rowCache?.bytes ?? 0) },
  { name: 'ringkv_row_cache_entries', type: 'gauge', help: 'Keys held by the row cache', labels: [], read: ({ telemetry }) => one(telemetry.rowCache?.entries ?? 0) },
  { name: 'ringkv_row_cache_lookups_total', type: 'counter', help: 'Row cache lookups, by result', labels: ['result'], read: ({ telemetry }) => [{ labels: { result: 'hit' }, value: telemetry.rowCache?.hits ?? 0 }, { labels: { result: 'miss' }, value: telemetry.rowCache?.misses ?? 0 }] },
  { name: 'ringkv_read_repairs_total', type: 'counter', help: 'Replicas repaired by coordinators of this node after a read', labels: [], read: ({ telemetry }) => one(telemetry.coordinator.readRepairs) },
  { name: 'ringkv_coordinator_hinted_writes_total', type: 'counter', help: 'Replica writes sent to a stand-in as a hint (sloppy quorum)', labels: [], read: ({ telemetry }) => one(telemetry.coordinator.hinted) },
  { name: 'ringkv_coordinator_forwarded_total', type: 'counter', help: 'Writes forwarded to a replica by a non-replica coordinator', labels: [], read: ({ telemetry }) => one(telemetry.coordinator.forwarded) },
  { name: 'ringkv_antientropy_exchanges_total', type: 'counter', help: 'Merkle exchanges this node started, by result', labels: ['result'], read: ({ status }) => [{ labels: { result: 'ok' }, value: status.antiEntropy.exchanges }, { labels: { result: 'failed' }, value: status.antiEntropy.failed }] },
  { name: 'ringkv_antientropy_keys_repaired_total', type: 'counter', help: 'Keys repaired by Merkle exchanges', labels: [], read: ({ status }) => one(status.antiEntropy.keysRepaired) },
  { name: 'ringkv_antientropy_bytes_total', type: 'counter', help: 'Bytes of Merkle exchanges, by direction', labels: ['direction'], read: ({ status }) => [{ labels: { direction: 'sent' }, value: status.antiEntropy.bytesSent }, { labels: { direction: 'received' }, value: status.antiEntropy.bytesReceived }] },
  { name: 'ringkv_repair_running', type: 'gauge', help: '1 while a repair (ringkv repair) runs on this node', labels: [], read: ({ status }) => one(status.antiEntropy.repair.running ? 1 : 0) },
  { name: 'ringkv_repair_progress_ratio', type: 'gauge', help: 'Exchanges done over exchanges planned of the current or last repair', labels: [], read: ({ status }) => one(ratio(status.antiEntropy.repair.done, status.antiEntropy.repair.total)) },
  { name: 'ringkv_handoff_progress_ratio', type: 'gauge', help: 'Partitions moved over partitions to move in the current join, leave or removal', labels: ['phase'], read: ({ status }) => one1(status.transfers?.phase ?? 'idle', ratio(status.transfers?.done ?? 0, status.transfers?.total ?? 0)) },
  { name: 'ringkv_handoff_bytes', type: 'gauge', help: 'Bytes streamed in the current join, leave or removal', labels: [], read: ({ status }) => one(status.transfers?.bytes ?? 0) },
  { name: 'ringkv_handoff_keys', type: 'gauge', help: 'Keys streamed in the current join, leave or removal', labels: [], read: ({ status }) => one(status.transfers?.keys ?? 0) },
  { name: 'ringkv_peer_up', type: 'gauge', help: '1 when the failure detector holds the peer up', labels: ['peer'], read: ({ telemetry }) => telemetry.peers.map((p) => ({ labels: { peer: p.id }, value: p.up ? 1 : 0 })) },
  { name: 'ringkv_peer_phi', type: 'gauge', help: "The phi accrual failure detector's suspicion of each peer", labels: ['peer'], read: ({ telemetry }) => telemetry.peers.map((p) => ({ labels: { peer: p.id }, value: Number.isFinite(p.phi) ? p.phi : 1e9 })) },
  {
    name: 'ringkv_peer_rtt_seconds',
    type: 'gauge',
    help: 'Round trip of the last ping on the link to each peer',
    labels: ['peer'],
    read: ({ telemetry }) => telemetry.peers.filter((p) => p.rttMs !== undefined).map((p) => ({ labels: { peer: p.id }, value: p.rttMs! / 1000 })),
  },
];

function one1(phase: string, value: number): Sample[] {
  return [{ labels: { phase }, value }];
}

function ratio(done: number, total: number): number {
  return total === 0 ? 1 : done / total;
}

/** Every peer is a potential hint target: each gets a sample (0 until it has hints), so rate() and alerts see the series from the start. */
function targetsOf(telemetry: TelemetrySnapshot): string[] {
  return [...new Set([...telemetry.peers.map((p) => p.id), ...telemetry.hints.keys()])].sort();
}

function perTarget(telemetry: TelemetrySnapshot, field: 'stored' | 'delivered' | 'dropped'): Sample[] {
  return targetsOf(telemetry).map((target) => ({ labels: { target }, value: telemetry.hints.get(target)?.[field] ?? 0 }));
}

function pendingHints({ status, telemetry }: MetricSources, field: 'hints' | 'bytes'): Sample[] {
  const held = new Map(status.hints.map((h) => [h.target, h]));
  return [...new Set([...targetsOf(telemetry), ...held.keys()])].sort().map((target) => ({ labels: { target }, value: held.get(target)?.[field] ?? 0 }));
}

/** Every ringkv series, in the order /metrics lists them. */
export const metricCatalog: readonly MetricSpec[] = [...requestMetrics, ...nodeMetrics, ...clusterWorkMetrics, ...engineMetrics];
