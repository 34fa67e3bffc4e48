/**
 * What the dashboard shows, computed on the node (the page only draws it): the node's status
 * document plus each member's live sample (`/feed/local`, LocalSample) become one
 * DashboardFrame — the nodes table with nodetool's state letters (the CLI's `stateOf`), the
 * ring's owner per partition and the partitions moving, transfers in progress with their
 * progress, hints per target, warnings, and one chart point of ops/s and p50/p99 per node
 * and for the cluster. Pure functions of their arguments; owned by the main thread.
 */

import { formatBytes } from '../cli/cli-io.js';
import { stateOf } from '../cli/cluster-commands.js';
import { workItems } from '../cli/work-items.js';
import type { StatusJson } from '../supervisor/index.js';
import { difference, quantileMs, type RequestSnapshot, sum } from './request-totals.js';

/** One member's live figures, as served by its GET /feed/local. */
export interface LocalSample {
  node: string;
  /** Wall-clock ms when taken. */
  t: number;
  version: string;
  uptimeMs: number;
  loadBytes: number | undefined;
  requests: RequestSnapshot;
  warnings: string[];
  transfers: StatusJson['transfers'];
  repair: StatusJson['antiEntropy']['repair'];
  cleanupRun?: StatusJson['antiEntropy']['cleanup'];
  hints: StatusJson['hints'];
  cleanupPending: number;
}

export interface ChartFigures {
  /** Requests per second by operation. */
  ops: Record<string, number>;
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface ChartPoint {
  t: number;
  nodes: Record<string, ChartFigures>;
  cluster: ChartFigures;
}

export interface NodeRow {
  id: string;
  state: string;
  address: string;
  dc: string;
  rack: string;
  loadBytes: number | null;
  ownershipPercent: number;
  partitions: number;
  version: string | null;
  uptimeMs: number | null;
  /** Display forms, formatted here so the page holds no formatting rules. */
  load: string;
  uptime: string;
}

export interface TransferRow {
  node: string;
  what: string;
  done: number;
  total: number;
}

export interface DashboardFrame {
  node: string;
  t: number;
  partitionBits: number;
  nodes: NodeRow[];
  ring: { members: string[]; owners: number[]; moves: { partition: number; from: string; to: string; state: string }[] };
  transfers: TransferRow[];
  hints: { holder: string; target: string; hints: number; bytes: string; oldest: string }[];
  warnings: string[];
  /** The autoscaler as this node sees it (leader, why, its latest decisions); null when not running. */
  autoscale: { leader: string; reason: string; decisions: string[] } | null;
  point: ChartPoint;
}

export function localSample(status: StatusJson, requests: RequestSnapshot, nowMs: number): LocalSample {
  return {
    node: status.node,
    t: nowMs,
    version: status.version,
    uptimeMs: status.uptimeMs,
    loadBytes: status.members.find((m) => m.id === status.node)?.loadBytes,
    requests,
    warnings: status.warnings,
    transfers: status.transfers,
    repair: status.antiEntropy.repair,
    ...(status.antiEntropy.cleanup ? { cleanupRun: status.antiEntropy.cleanup } : {}),
    hints: status.hints,
    cleanupPending: status.cleanup?.pending ?? 0,
  };
}

function figures(sample: RequestSnapshot, seconds: number): ChartFigures {
  const ops: Record<string, number> = {};
  for (const op of ['get', 'put', 'delete']) ops[op] = (sample.ops[op] ?? 0) / seconds;
  return { ops, p50Ms: quantileMs(sample.buckets, 0.5) ?? null, p99Ms: quantileMs(sample.buckets, 0.99) ?? null };
}

/** One chart point from each member's sample now and at the previous point. */
export function chartPoint(nowMs: number, samples: readonly LocalSample[], previous: ReadonlyMap<string, LocalSample>): ChartPoint {
  const nodes: Record<string, ChartFigures> = {};
  const deltas: RequestSnapshot[] = [];
  let clusterSeconds = 0;
  for (const s of samples) {
    const before = previous.get(s.node);
    if (before === undefined || s.t <= before.t || s.uptimeMs < before.uptimeMs) continue;
    const seconds = (s.t - before.t) / 1000;
    const delta = difference(s.requests, before.requests);
    nodes[s.node] = figures(delta, seconds);
    deltas.push(delta);
    clusterSeconds = Math.max(clusterSeconds, seconds);
  }
  return { t: nowMs, nodes, cluster: figures(sum(deltas), clusterSeconds || 1) };
}

/** Each member's work in progress (the CLI's work items: the same list `status --watch` draws). */
function transferRows(samples: readonly LocalSample[]): TransferRow[] {
  return samples.flatMap((s) => workItems(s).map((item) => ({ node: s.node, what: item.what, done: item.done, total: item.total })));
}

/** The frame the page draws, from this node's status and every reachable member's sample. */
export function buildFrame(status: StatusJson, samples: readonly LocalSample[], point: ChartPoint): DashboardFrame {
  const byNode = new Map(samples.map((s) => [s.node, s]));
  const members = status.members.filter((m) => m.status !== 'left');
  const ids = members.map((m) => m.id);
  const index = new Map(ids.map((id, i) => [id, i]));
  const nodes = members.map((m): NodeRow => {
    const s = m.up ? byNode.get(m.id) : undefined;
    return {
      id: m.id,
      state: stateOf(m),
      address: m.address,
      dc: m.dc,
      rack: m.rack,
      loadBytes: s?.loadBytes ?? m.loadBytes ?? null,
      ownershipPercent: m.ownershipPercent,
      partitions: m.partitions,
      version: s?.version ?? null,
      uptimeMs: s?.uptimeMs ?? null,
      load: m.up || m.loadBytes !== undefined ? formatBytes(s?.loadBytes ?? m.loadBytes) : '?',
      uptime: s === undefined ? '-' : formatDuration(s.uptimeMs),
    };
  });
  const moves = samples.flatMap((s) =>
    (s.transfers?.partitions ?? []).filter((p) => p.state !== 'done' && p.peer !== undefined).map((p) => ({ partition: p.partition, from: p.direction === 'in' ? p.peer! : s.node, to: p.direction === 'in' ? s.node : p.peer!, state: p.state })),
  );
  const warnings = [...new Set([...status.warnings, ...samples.filter((s) => s.node !== status.node).flatMap((s) => s.warnings.map((w) => `${s.node}: ${w}`))])];
  return {
    node: status.node,
    t: point.t,
    partitionBits: status.partitionBits,
    nodes,
    ring: { members: ids, owners: status.ring.owners.map((id) => index.get(id) ?? -1), moves },
    transfers: transferRows(samples),
    hints: samples.flatMap((s) => s.hints.map((h) => ({ holder: s.node, target: h.target, hints: h.hints, bytes: formatBytes(h.bytes), oldest: h.oldestAgeMs === undefined ? '-' : formatDuration(h.oldestAgeMs) }))),
    warnings,
    autoscale: autoscaleView(status),
    point,
  };
}

/** The autoscaler's leader, reason and last few decisions, newest first, in words. */
function autoscaleView(status: StatusJson): DashboardFrame['autoscale'] {
  const a = status.scaling?.autoscale;
  if (a === undefined) return null;
  const decisions = a.history
    .slice(-autoscaleDecisionsShown)
    .reverse()
    .map((d) => `#${d.seq} ${d.action} ${d.fromNodes}→${d.targetNodes}${d.victim ? ` (${d.victim})` : ''}: ${d.state} — ${d.reason} (${new Date(d.atMs).toISOString().slice(11, 19)} UTC)`);
  return { leader: a.leader ?? 'none', reason: a.reason, decisions };
}

const autoscaleDecisionsShown = 5;

/** 3d 4h, 5h 12m, 7m 3s, 42s. */
export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const [d, h, m] = [Math.floor(s / 86_400), Math.floor((s % 86_400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}
