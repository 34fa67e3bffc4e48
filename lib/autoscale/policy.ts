/**
 * The autoscaling policy: cluster load in, one decision (or a reason to wait) out. Pure: the
 * caller passes the time, the members it sees, their latest load reports and the last
 * gossiped decision; the policy keeps only its two window starts in the state it returns.
 * Layer 2; the driver that samples load, gossips it and acts is
 * lib/supervisor/scaling/autoscaler.ts.
 *
 * Target tracking with hysteresis (as cloud autoscalers do): with T ops/s per node as the
 * target, the cluster is "above" while the mean client ops/s per normal node exceeds
 * T x scaleOutAbove (or a node's event loop is over eluHigh, or its bytes stored over
 * capacityHigh of its capacity, or a coordinator's p99 over p99HighMs when set), and
 * "below" while the mean is under T x scaleInBelow and removing one node would keep the mean
 * at or under T and everything else low. Scale out when above without a break for
 * scaleOutWindowMs; scale in when below without a break for scaleInWindowMs. Between the two
 * watermarks nothing happens, and one sample on the other side restarts a window, so load
 * oscillating around a watermark never flaps.
 *
 * Who acts: the lowest-id member that is up and normal in the caller's view, so there is
 * exactly one leader once views agree and none is a single point of failure. Its decision is
 * a numbered record the driver gossips; while a record is pending no leader (this one or a
 * new one after a handover) decides again, and the record resolves by what the cluster
 * shows (enough normal nodes; the victim gone) or fails after decisionTimeoutMs. After any
 * record, cooldownMs passes before the next.
 *
 * Health gates (no decision while any fails): every member up, none joining (except nodes
 * waiting for a plan) or leaving, no node moving partitions, a fresh report from every
 * normal member, and at least N nodes per datacenter the replication names (no
 * under-replication). Scale-in never goes under minNodes nor under N nodes in the victim's
 * datacenter; scale-out never over maxNodes. The victim of a scale-in is the least-loaded
 * normal member other than the leader (fewest ops/s, then fewest bytes).
 */

import type { MemberStatus, Replication } from '../ring/index.js';
import type { DecisionAction, DecisionRecord, LoadReport } from './load-report.js';

export interface PolicyConfig {
  readonly minNodes: number;
  readonly maxNodes: number;
  readonly targetOpsPerNode: number;
  /** Scale out while ops/s per node > target x this (high watermark). */
  readonly scaleOutAbove: number;
  /** Scale in while ops/s per node < target x this (low watermark). */
  readonly scaleInBelow: number;
  readonly scaleOutWindowMs: number;
  readonly scaleInWindowMs: number;
  readonly cooldownMs: number;
  readonly decisionTimeoutMs: number;
  /** A node's event-loop utilisation above this counts as above. */
  readonly eluHigh: number;
  /** Bytes stored over capacity above this fraction counts as above (with a capacity). */
  readonly capacityHigh: number;
  /** A coordinator p99 above this counts as above; 0: not used. */
  readonly p99HighMs: number;
  /**
   * Who picks a scale-in's victim: 'least-loaded' (the policy; the autoscaler decommissions it
   * through a plan, then the provisioner releases it) or 'provisioner' (the provisioner's
   * platform picks it, as a Kubernetes StatefulSet removes its highest ordinal, and the node
   * decommissions itself in its shutdown hook: `ringkv autoscale prestop`). Default least-loaded.
   */
  readonly scaleInVictim?: 'least-loaded' | 'provisioner';
}

export interface PolicyMember {
  readonly id: string;
  readonly dc: string;
  readonly status: MemberStatus;
  readonly up: boolean;
  /** Its latest report when fresh; undefined when missing or stale. */
  readonly report?: LoadReport;
}

export interface PolicyInput {
  /** Wall ms (decision records carry wall times across nodes). */
  readonly nowMs: number;
  readonly selfId: string;
  readonly members: readonly PolicyMember[];
  readonly replication: Replication;
  readonly lastDecision?: DecisionRecord;
}

export interface PolicyState {
  readonly aboveSinceMs?: number;
  readonly belowSinceMs?: number;
}

export interface PolicyFigures {
  readonly nodes: number;
  readonly opsPerSecond: number;
  readonly opsPerNode: number;
  readonly eluMax: number;
  readonly p99MsMax: number;
  readonly capacityUsedMax: number;
}

export interface PolicyDecision {
  readonly action: DecisionAction;
  readonly fromNodes: number;
  readonly targetNodes: number;
  readonly victim?: string;
  readonly reason: string;
}

export interface PolicyResult {
  readonly state: PolicyState;
  readonly leader: string | undefined;
  /** What the leader does now, in words ("cooldown: 12 s left", "above the high watermark for 20 s of 60 s", ...). */
  readonly reason: string;
  readonly figures?: PolicyFigures;
  /** A new decision to record, gossip and carry out. */
  readonly decision?: PolicyDecision;
  /** The pending record resolved (done or failed). */
  readonly resolved?: DecisionRecord;
}

/** The lowest-id member that is up and normal. */
export function leaderOf(members: readonly PolicyMember[]): string | undefined {
  let leader: string | undefined;
  for (const m of members) if (m.up && m.status === 'normal' && (leader === undefined || m.id < leader)) leader = m.id;
  return leader;
}

function resolve(config: PolicyConfig, input: PolicyInput, record: DecisionRecord): DecisionRecord | undefined {
  const normal = input.members.filter((m) => m.status === 'normal' && m.up).length;
  const leaving = input.members.some((m) => m.status === 'leaving');
  const done =
    record.action === 'scale-out' ? normal >= record.targetNodes
    : record.victim === undefined ? normal <= record.targetNodes && !leaving
    : !input.members.some((m) => m.id === record.victim && m.status !== 'left');
  if (done) return { ...record, state: 'done', resolvedAtMs: input.nowMs };
  if (input.nowMs - record.atMs > config.decisionTimeoutMs) {
    return { ...record, state: 'failed', resolvedAtMs: input.nowMs, detail: `not complete after ${Math.round(config.decisionTimeoutMs / 1000)} s` };
  }
  return undefined;
}

function requiredPerDc(replication: Replication, dc: string, dcCount: number): number {
  if (typeof replication !== 'number') return replication[dc] ?? 0;
  return dcCount === 1 ? replication : 0;
}

/** The first failing health gate, or undefined. */
export function healthGate(input: PolicyInput): string | undefined {
  const live = input.members.filter((m) => m.status !== 'left');
  const down = live.find((m) => !m.up);
  if (down) return `${down.id} is down`;
  const moving = live.find((m) => m.status === 'leaving' || m.status === 'replacing' || (m.status === 'joining' && m.report?.held !== true));
  if (moving) return `${moving.id} is ${moving.status}`;
  const normal = live.filter((m) => m.status === 'normal');
  const silent = normal.find((m) => m.report === undefined);
  if (silent) return `no fresh load report from ${silent.id}`;
  const busy = normal.find((m) => m.report!.transfers > 0);
  if (busy) return `${busy.id} is moving ${busy.report!.transfers} partition(s)`;
  const dcs = new Set(normal.map((m) => m.dc));
  const n = typeof input.replication === 'number' ? input.replication : 0;
  if (n > normal.length) return `under-replicated: ${normal.length} node(s) for N=${n}`;
  for (const dc of typeof input.replication === 'number' ? dcs : Object.keys(input.replication)) {
    const need = requiredPerDc(input.replication, dc, dcs.size);
    const have = normal.filter((m) => m.dc === dc).length;
    if (have < need) return `under-replicated: ${dc} has ${have} node(s) for ${need} copies`;
  }
  return undefined;
}

export function figuresOf(members: readonly PolicyMember[]): PolicyFigures {
  const reports = members.filter((m) => m.status === 'normal' && m.report !== undefined).map((m) => m.report!);
  const ops = reports.reduce((a, r) => a + r.opsPerSecond, 0);
  const capacity = reports.map((r) => (r.capacityBytes > 0 ? r.bytesStored / r.capacityBytes : 0));
  return {
    nodes: reports.length,
    opsPerSecond: ops,
    opsPerNode: reports.length === 0 ? 0 : ops / reports.length,
    eluMax: Math.max(0, ...reports.map((r) => r.elu)),
    p99MsMax: Math.max(0, ...reports.map((r) => r.p99Ms)),
    capacityUsedMax: Math.max(0, ...capacity),
  };
}

const round = (x: number): number => Math.round(x * 100) / 100;

function aboveReason(config: PolicyConfig, f: PolicyFigures): string | undefined {
  const high = config.targetOpsPerNode * config.scaleOutAbove;
  if (f.opsPerNode > high) return `${round(f.opsPerNode)} ops/s per node > ${round(high)} (target ${config.targetOpsPerNode} x ${config.scaleOutAbove})`;
  if (f.eluMax > config.eluHigh) return `event-loop utilisation ${round(f.eluMax)} > ${config.eluHigh}`;
  if (f.capacityUsedMax > config.capacityHigh) return `a node stores ${Math.round(f.capacityUsedMax * 100)}% of its capacity > ${Math.round(config.capacityHigh * 100)}%`;
  if (config.p99HighMs > 0 && f.p99MsMax > config.p99HighMs) return `coordinator p99 ${round(f.p99MsMax)} ms > ${config.p99HighMs} ms`;
  return undefined;
}

function belowReason(config: PolicyConfig, f: PolicyFigures, members: readonly PolicyMember[]): string | undefined {
  const low = config.targetOpsPerNode * config.scaleInBelow;
  if (f.nodes <= 1 || f.opsPerNode >= low) return undefined;
  const after = f.opsPerSecond / (f.nodes - 1);
  if (after > config.targetOpsPerNode) return undefined;
  const bytes = members.filter((m) => m.status === 'normal' && m.report).map((m) => m.report!);
  const capacity = bytes.reduce((a, r) => a + r.capacityBytes, 0);
  const stored = bytes.reduce((a, r) => a + r.bytesStored, 0);
  if (capacity > 0 && stored / (capacity * (f.nodes - 1) / f.nodes) > config.capacityHigh * 0.8) return undefined;
  if (f.eluMax > config.eluHigh / 2) return undefined;
  return `${round(f.opsPerNode)} ops/s per node < ${round(low)} (target ${config.targetOpsPerNode} x ${config.scaleInBelow}); ${round(after)} per node after one fewer`;
}

function victimOf(input: PolicyInput, leader: string): string | undefined {
  const normal = input.members.filter((m) => m.status === 'normal' && m.up);
  const dcs = new Set(normal.map((m) => m.dc));
  const candidates = normal.filter((m) => {
    if (m.id === leader) return false;
    const need = requiredPerDc(input.replication, m.dc, dcs.size);
    return normal.filter((o) => o.dc === m.dc).length - 1 >= need;
  });
  candidates.sort((a, b) => a.report!.opsPerSecond - b.report!.opsPerSecond || a.report!.bytesStored - b.report!.bytesStored || (a.id < b.id ? -1 : 1));
  return candidates[0]?.id;
}

/** One evaluation (see the header). */
export function evaluatePolicy(config: PolicyConfig, state: PolicyState, input: PolicyInput): PolicyResult {
  const leader = leaderOf(input.members);
  if (leader !== input.selfId) return { state: {}, leader, reason: leader === undefined ? 'no up, normal member leads' : `${leader} leads` };
  const last = input.lastDecision;
  if (last?.state === 'pending') {
    const resolved = resolve(config, input, last);
    if (resolved === undefined) return { state: {}, leader, reason: `waiting for decision ${last.seq} (${last.action} to ${last.targetNodes} nodes) to complete` };
    return { state: {}, leader, reason: `decision ${last.seq} ${resolved.state}`, resolved };
  }
  const health = healthGate(input);
  const figures = figuresOf(input.members);
  if (health !== undefined) return { state: {}, leader, reason: `waiting for a healthy cluster: ${health}`, figures };
  const above = aboveReason(config, figures);
  const below = above === undefined ? belowReason(config, figures, input.members) : undefined;
  const next: PolicyState = {
    ...(above !== undefined ? { aboveSinceMs: state.aboveSinceMs ?? input.nowMs } : {}),
    ...(below !== undefined ? { belowSinceMs: state.belowSinceMs ?? input.nowMs } : {}),
  };
  const sinceLast = last === undefined ? Infinity : input.nowMs - (last.resolvedAtMs ?? last.atMs);
  if (sinceLast < config.cooldownMs) return { state: next, leader, reason: `cooldown: ${Math.ceil((config.cooldownMs - sinceLast) / 1000)} s left`, figures };
  const n = figures.nodes;
  if (above !== undefined) {
    const forMs = input.nowMs - next.aboveSinceMs!;
    if (n >= config.maxNodes) return { state: next, leader, reason: `above (${above}) but at maxNodes ${config.maxNodes}`, figures };
    if (forMs < config.scaleOutWindowMs) return { state: next, leader, reason: `above for ${Math.round(forMs / 1000)} s of ${config.scaleOutWindowMs / 1000} s: ${above}`, figures };
    return { state: {}, leader, reason: `scale out: ${above}`, figures, decision: { action: 'scale-out', fromNodes: n, targetNodes: n + 1, reason: `${above} for ${Math.round(forMs / 1000)} s` } };
  }
  if (below !== undefined) {
    const forMs = input.nowMs - next.belowSinceMs!;
    if (n <= config.minNodes) return { state: next, leader, reason: `below (${below}) but at minNodes ${config.minNodes}`, figures };
    if (forMs < config.scaleInWindowMs) return { state: next, leader, reason: `below for ${Math.round(forMs / 1000)} s of ${config.scaleInWindowMs / 1000} s: ${below}`, figures };
    const victim = victimOf(input, leader);
    if (victim === undefined) return { state: next, leader, reason: `below (${below}) but no node can leave without under-replicating`, figures };
    const chosen = config.scaleInVictim === 'provisioner' ? {} : { victim };
    return { state: {}, leader, reason: `scale in: ${below}`, figures, decision: { action: 'scale-in', fromNodes: n, targetNodes: n - 1, ...chosen, reason: `${below} for ${Math.round(forMs / 1000)} s` } };
  }
  return { state: next, leader, reason: `steady: ${round(figures.opsPerNode)} ops/s per node, target ${config.targetOpsPerNode}`, figures };
}

/** Checks a config (RangeError naming the field). */
export function validatePolicyConfig(config: PolicyConfig): PolicyConfig {
  const positive = (name: keyof PolicyConfig, min = 0): void => {
    const v = config[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new RangeError(`autoscale.${name} must be a number >= ${min}, got ${String(v)}`);
  };
  for (const name of ['scaleOutWindowMs', 'scaleInWindowMs', 'cooldownMs', 'decisionTimeoutMs', 'p99HighMs'] as const) positive(name);
  positive('minNodes', 1);
  positive('maxNodes', 1);
  if (!(config.targetOpsPerNode > 0)) throw new RangeError('autoscale.targetOpsPerNode must be positive');
  if (config.maxNodes < config.minNodes) throw new RangeError('autoscale.maxNodes must be at least minNodes');
  if (!(config.scaleInBelow > 0 && config.scaleInBelow < config.scaleOutAbove)) throw new RangeError('autoscale.scaleInBelow must be positive and below scaleOutAbove');
  if (config.scaleInVictim !== undefined && config.scaleInVictim !== 'least-loaded' && config.scaleInVictim !== 'provisioner') throw new RangeError("autoscale.scaleInVictim must be 'least-loaded' or 'provisioner'");
  if (!(config.eluHigh > 0 && config.eluHigh <= 1) || !(config.capacityHigh > 0 && config.capacityHigh <= 1)) throw new RangeError('autoscale.eluHigh and capacityHigh must be within (0, 1]');
  return config;
}
