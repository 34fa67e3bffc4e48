/**
 * Per-node load reports and autoscaling decision records: what nodes gossip to each other so
 * that whichever member leads the autoscaler sees the whole cluster's load and the last
 * decision (DESIGN.md §6 "Autoscaling"). Pure values, their validation (they come from peers)
 * and their merge rules; any thread (layer 2).
 *
 * A report is its node's own figures over its last sampling interval, stamped with the node's
 * incarnation (its start, wall ms) and a sequence number it bumps per report: a newer
 * (incarnation, seq) replaces an older one, so the merge is commutative, associative and
 * idempotent. Freshness is judged by the receiver's own clock (when it first saw that seq),
 * never by comparing wall clocks across nodes.
 *
 * A decision record is numbered by the leader that made it (seq, one above the highest it has
 * seen): a higher seq wins, and within one seq a resolved record (done/failed) wins over the
 * pending one, so a new leader that took over mid-decision sees it and does not repeat it.
 */

import { isBoundedString, isIntegerIn, isPlainRecord } from '../membership/index.js';
import { limits } from '../base/limits.js';

export interface LoadReport {
  readonly id: string;
  readonly incarnation: number;
  readonly seq: number;
  /** Client requests this node answered per second (gets, puts, deletes; batches count their ops). */
  readonly opsPerSecond: number;
  /** Event-loop utilisation of the node's main thread, 0..1. */
  readonly elu: number;
  /** Process CPU time per wall second (1 = one core busy). */
  readonly cpu: number;
  /** p99 latency of the requests this node coordinated, ms (0 without requests). */
  readonly p99Ms: number;
  readonly bytesStored: number;
  /** Configured capacity in bytes (0: unknown). */
  readonly capacityBytes: number;
  /** Partitions this node is moving (handoff) or catching up. */
  readonly transfers: number;
  /** A joining node waiting for a committed plan (`--staged-join`). */
  readonly held: boolean;
}

export type DecisionAction = 'scale-out' | 'scale-in';
export type DecisionState = 'pending' | 'done' | 'failed';

export interface DecisionRecord {
  readonly seq: number;
  readonly leader: string;
  readonly action: DecisionAction;
  readonly fromNodes: number;
  readonly targetNodes: number;
  /** The node decommissioned by a scale-in. */
  readonly victim?: string;
  /** Wall ms when decided (cooldowns count from it, or from resolvedAtMs). */
  readonly atMs: number;
  readonly resolvedAtMs?: number;
  readonly state: DecisionState;
  /** The figures that triggered it, in words. */
  readonly reason: string;
  readonly detail?: string;
}

const finite = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max;

/** A validated copy of an untrusted report, or undefined. */
export function parseLoadReport(raw: unknown): LoadReport | undefined {
  if (!isPlainRecord(raw)) return undefined;
  const r = raw;
  if (!isBoundedString(r.id, limits.memberIdBytesMax) || !isIntegerIn(r.incarnation, 0, Number.MAX_SAFE_INTEGER) || !isIntegerIn(r.seq, 0, Number.MAX_SAFE_INTEGER)) return undefined;
  const big = Number.MAX_SAFE_INTEGER;
  if (!finite(r.opsPerSecond, 0, big) || !finite(r.elu, 0, 1) || !finite(r.cpu, 0, 1024) || !finite(r.p99Ms, 0, big)) return undefined;
  if (!finite(r.bytesStored, 0, big) || !finite(r.capacityBytes, 0, big) || !isIntegerIn(r.transfers, 0, big) || typeof r.held !== 'boolean') return undefined;
  return { id: r.id, incarnation: r.incarnation, seq: r.seq, opsPerSecond: r.opsPerSecond, elu: r.elu, cpu: r.cpu, p99Ms: r.p99Ms, bytesStored: r.bytesStored, capacityBytes: r.capacityBytes, transfers: r.transfers, held: r.held };
}

/** Whether `a` is newer than `b` (same node). */
export function isNewerReport(a: LoadReport, b: LoadReport | undefined): boolean {
  if (b === undefined) return true;
  return a.incarnation !== b.incarnation ? a.incarnation > b.incarnation : a.seq > b.seq;
}

const stateRank: Record<DecisionState, number> = { pending: 0, done: 1, failed: 1 };

/** The record that wins between two copies (see the header); undefined only when both are. */
export function mergeDecision(a: DecisionRecord | undefined, b: DecisionRecord | undefined): DecisionRecord | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a.seq !== b.seq) return a.seq > b.seq ? a : b;
  if (stateRank[a.state] !== stateRank[b.state]) return stateRank[a.state] > stateRank[b.state] ? a : b;
  return a.leader <= b.leader ? a : b;
}

/** A validated copy of an untrusted decision record, or undefined. */
export function parseDecision(raw: unknown): DecisionRecord | undefined {
  if (!isPlainRecord(raw)) return undefined;
  const r = raw;
  if (!isIntegerIn(r.seq, 1, Number.MAX_SAFE_INTEGER) || !isBoundedString(r.leader, limits.memberIdBytesMax)) return undefined;
  if (r.action !== 'scale-out' && r.action !== 'scale-in') return undefined;
  if (r.state !== 'pending' && r.state !== 'done' && r.state !== 'failed') return undefined;
  if (!isIntegerIn(r.fromNodes, 0, limits.membersMax) || !isIntegerIn(r.targetNodes, 0, limits.membersMax) || !finite(r.atMs, 0, Number.MAX_SAFE_INTEGER)) return undefined;
  if (r.victim !== undefined && !isBoundedString(r.victim, limits.memberIdBytesMax)) return undefined;
  if (r.resolvedAtMs !== undefined && !finite(r.resolvedAtMs, 0, Number.MAX_SAFE_INTEGER)) return undefined;
  if (typeof r.reason !== 'string' || r.reason.length > 1024 || (r.detail !== undefined && (typeof r.detail !== 'string' || r.detail.length > 1024))) return undefined;
  return {
    seq: r.seq,
    leader: r.leader,
    action: r.action,
    fromNodes: r.fromNodes,
    targetNodes: r.targetNodes,
    ...(r.victim !== undefined ? { victim: r.victim } : {}),
    atMs: r.atMs,
    ...(r.resolvedAtMs !== undefined ? { resolvedAtMs: r.resolvedAtMs } : {}),
    state: r.state,
    reason: r.reason,
    ...(r.detail !== undefined ? { detail: r.detail } : {}),
  };
}
