/**
 * Staged membership plans (Riak's `cluster plan` / `cluster commit`): a list of changes
 * (join, leave, replace) and the ring they lead to, computed by the same pure ring code every
 * node runs (lib/ring computeRing), so what a plan shows is exactly the placement that results
 * once its changes complete. Pure functions of the membership view; any thread (layer 2).
 *
 * The current ring is the one the membership driver computes: every member that is not `left`,
 * `normal` and `leaving` members owning. The planned ring is the settled ring after the plan:
 * today's `normal` (and `replacing`: they end normal in the same place) members, minus those the plan removes (leave, the dead side of replace),
 * plus the nodes it adds (join, the new side of replace) as `normal`. Members leaving or
 * joining outside the plan are left out of the planned ring (a plan is only committed on a
 * settled cluster; see plan-safety.ts and the executor in lib/supervisor/scaling).
 *
 * Bytes to stream are estimates: a partition's size is taken as the mean of what its current
 * replicas report per replicated partition (their bytes stored over their partition count),
 * each replica the plan adds receives that much, and one current replica (the leaving node
 * for a leave, else the first up one) sends it.
 */

import { computeRing, type MemberInput, type MemberStatus, type Replication, type Ring } from '../ring/index.js';
import { planProblems } from './plan-safety.js';

/** A node as a plan sees it: gossip's record plus liveness, hold and load. */
export interface PlanMember {
  readonly id: string;
  readonly address: string;
  readonly weight: number;
  readonly dc: string;
  readonly rack: string;
  readonly status: MemberStatus;
  readonly up: boolean;
  /** A joining node that waits for a committed plan (`ringkv start --staged-join`). */
  readonly held?: boolean;
  /** Bytes it stores, when known (load reports). */
  readonly loadBytes?: number;
}

export type PlanChange =
  | { readonly type: 'join'; readonly id: string }
  | { readonly type: 'leave'; readonly id: string }
  | { readonly type: 'replace'; readonly dead: string; readonly id: string };

export interface PlanNodeRow {
  readonly id: string;
  readonly address: string;
  readonly dc: string;
  readonly rack: string;
  readonly now: string;
  readonly after: string;
  readonly primaryNow: number;
  readonly primaryAfter: number;
  /** Effective ownership (share of partitions it replicates), percent. */
  readonly ownsNowPercent: number;
  readonly ownsAfterPercent: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface PlanReport {
  readonly changes: readonly PlanChange[];
  readonly currentVersion: string;
  readonly plannedVersion: string;
  readonly partitionCount: number;
  /** Partitions whose replica set changes. */
  readonly partitionsMoving: number;
  /** Replica copies to stream (one per replica added to a partition). */
  readonly copiesToStream: number;
  readonly nodes: readonly PlanNodeRow[];
  readonly warnings: readonly string[];
  /** Reasons the plan cannot be committed; empty when it can. */
  readonly refusals: readonly string[];
}

export interface PlanInput {
  readonly members: readonly PlanMember[];
  readonly changes: readonly PlanChange[];
  readonly partitionBits: number;
  readonly replication: Replication;
}

/** Ids the plan takes out of the ring (leaves and replaced dead nodes). */
export function removedBy(changes: readonly PlanChange[]): Set<string> {
  return new Set(changes.flatMap((c) => (c.type === 'leave' ? [c.id] : c.type === 'replace' ? [c.dead] : [])));
}

/** Ids the plan brings into the ring (joins and replacements). */
export function addedBy(changes: readonly PlanChange[]): Set<string> {
  return new Set(changes.flatMap((c) => (c.type === 'leave' ? [] : [c.id])));
}

const asInput = (m: PlanMember, status: MemberInput['status']): MemberInput => ({ id: m.id, weight: m.weight, dc: m.dc, rack: m.rack, status });

/** The ring today (as the membership driver computes it), or undefined when nobody owns. */
export function currentRingOf(input: Omit<PlanInput, 'changes'>): Ring | undefined {
  const members = input.members.filter((m) => m.status !== 'left');
  if (!members.some((m) => m.status === 'normal' || m.status === 'leaving')) return undefined;
  return computeRing(members.map((m) => asInput(m, m.status)), { partitionBits: input.partitionBits, replication: input.replication });
}

/** The settled ring after the plan, or undefined when nobody would own partitions. */
export function plannedRingOf(input: PlanInput): Ring | undefined {
  const removed = removedBy(input.changes);
  const added = addedBy(input.changes);
  const members = input.members.filter((m) => ((m.status === 'normal' || m.status === 'replacing') && !removed.has(m.id)) || added.has(m.id));
  if (members.length === 0) return undefined;
  return computeRing(members.map((m) => asInput(m, 'normal')), { partitionBits: input.partitionBits, replication: input.replication });
}

/** The plan's report: rings compared, per-node rows, warnings and refusals. */
export function computePlan(input: PlanInput): PlanReport {
  const current = currentRingOf(input);
  const planned = plannedRingOf(input);
  const { warnings, refusals } = planProblems(input, current, planned);
  const q = 2 ** input.partitionBits;
  if (current === undefined || planned === undefined) {
    return { changes: input.changes, currentVersion: current?.version ?? '', plannedVersion: planned?.version ?? '', partitionCount: q, partitionsMoving: 0, copiesToStream: 0, nodes: [], warnings, refusals };
  }
  const bytesIn = new Map<string, number>();
  const bytesOut = new Map<string, number>();
  const add = (map: Map<string, number>, id: string, bytes: number): void => void map.set(id, (map.get(id) ?? 0) + bytes);
  const removed = removedBy(input.changes);
  const byId = new Map(input.members.map((m) => [m.id, m]));
  let moving = 0;
  let copies = 0;
  for (let p = 0; p < q; p++) {
    const before = current.replicasOf(p);
    const after = planned.replicasOf(p);
    const gained = after.filter((id) => !before.includes(id));
    if (gained.length === 0 && before.every((id) => after.includes(id))) continue;
    moving++;
    copies += gained.length;
    const size = partitionBytes(before, current, byId);
    const source = before.find((id) => removed.has(id) && byId.get(id)?.up) ?? before.find((id) => byId.get(id)?.up) ?? before[0]!;
    for (const id of gained) {
      add(bytesIn, id, size);
      add(bytesOut, source, size);
    }
  }
  const ids = [...new Set([...current.members.map((m) => m.id), ...planned.members.map((m) => m.id)])].sort();
  const share = (ring: Ring, id: string): number => Math.round((1000 * 100 * ring.replicaPartitionsOf(id).length) / q) / 1000;
  const nodes = ids.map((id): PlanNodeRow => {
    const m = byId.get(id)!;
    const after = removed.has(id) ? 'removed' : planned.owners.some((o) => o.id === id) ? 'normal' : m.status;
    return {
      id,
      address: m.address,
      dc: m.dc,
      rack: m.rack,
      now: `${m.up ? 'up' : 'down'} ${m.status}${m.held ? ' (waiting for a plan)' : ''}`,
      after,
      primaryNow: current.partitionsOf(id).length,
      primaryAfter: planned.partitionsOf(id).length,
      ownsNowPercent: share(current, id),
      ownsAfterPercent: share(planned, id),
      bytesIn: Math.round(bytesIn.get(id) ?? 0),
      bytesOut: Math.round(bytesOut.get(id) ?? 0),
    };
  });
  return { changes: input.changes, currentVersion: current.version, plannedVersion: planned.version, partitionCount: q, partitionsMoving: moving, copiesToStream: copies, nodes, warnings, refusals };
}

/** The estimated size of one partition: the mean bytes per replicated partition of its replicas that report load. */
function partitionBytes(replicas: readonly string[], ring: Ring, byId: ReadonlyMap<string, PlanMember>): number {
  const sizes: number[] = [];
  for (const id of replicas) {
    const load = byId.get(id)?.loadBytes;
    const count = ring.replicaPartitionsOf(id).length;
    if (load !== undefined && count > 0) sizes.push(load / count);
  }
  return sizes.length === 0 ? 0 : sizes.reduce((a, b) => a + b, 0) / sizes.length;
}
