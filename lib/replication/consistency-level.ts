/**
 * Consistency levels: how many replicas must answer a read (R) or acknowledge a write (W), in
 * total and per datacenter, for one key. Pure functions, any thread (in practice the
 * supervisor's coordinator on the main thread).
 *
 * Follows Dynamo's (N, R, W) and Cassandra's named levels:
 *
 *   level          replicas that must answer (n = replicas of the key that exist, per DC n_dc)
 *   (default)      2 (limits.readQuorumDefault / writeQuorumDefault), capped at n
 *   r / w = k      k, capped at n; k above the requested N is a RangeError naming the field
 *   ONE / TWO      1 / 2 (capped at n)
 *   QUORUM         ⌊n/2⌋ + 1 over all datacenters
 *   ALL            n
 *   LOCAL_QUORUM   ⌊n_local/2⌋ + 1 in the coordinator's datacenter (the one LOCAL refers to)
 *   EACH_QUORUM    ⌊n_dc/2⌋ + 1 in every datacenter that holds replicas
 *
 * Explicit r/w win over `consistency` (wire.md). With a plain replication N there are no
 * datacenters to tell apart, so LOCAL_QUORUM and EACH_QUORUM mean QUORUM. A LOCAL_QUORUM whose
 * datacenter holds no replica of the key is a RangeError (Cassandra refuses it too).
 *
 * Effective counts: the preference list never holds more nodes than exist (lib/ring), so every
 * requirement is computed against the replicas the list actually has, and `underReplicated`
 * says when that is fewer than the replication asks for (a 1-node development cluster with
 * N=3 works at the defaults, and says so). R+W>N is the caller's choice; this module only
 * counts.
 */

import { limits } from '../base/limits.js';
import type { Replication } from '../ring/index.js';

export const consistencyLevels = ['ONE', 'TWO', 'QUORUM', 'ALL', 'LOCAL_QUORUM', 'EACH_QUORUM'] as const;
export type ConsistencyLevel = (typeof consistencyLevels)[number];

/** One node of a key's preference list, as the coordinator's membership view sees it. */
export interface ReplicaInfo {
  readonly id: string;
  readonly dc: string;
  readonly up: boolean;
  /** Set on a sloppy-quorum stand-in: the down replica it holds a hint for (its dc is the owner's). */
  readonly hintFor?: string;
}

/** Where a key lives: the ring's replication and the key's preference list, in walk order. */
export interface Placement {
  readonly replication: Replication;
  readonly replicas: readonly ReplicaInfo[];
  /** The owning nodes after the preference list, in walk order: sloppy-quorum stand-ins. */
  readonly fallbacks?: readonly ReplicaInfo[];
  /**
   * Nodes that gain this key's partition in a membership change in progress (a joining node
   * streaming it): every write is sent to them too, unacknowledged and never counted toward W
   * (Cassandra's pending ranges), so a write during the transfer reaches its new owner.
   */
  readonly pending?: readonly ReplicaInfo[];
}

/** What a request must collect: `total` answers, and at least `perDc[dc]` from each datacenter named. */
export interface Requirement {
  /** The level's name, or `r=k` / `w=k` for explicit counts: for messages and metrics. */
  readonly level: string;
  /** Replicas of the key that exist (the effective N). */
  readonly replicaCount: number;
  readonly total: number;
  readonly perDc: ReadonlyMap<string, number>;
  /** The cluster has fewer nodes (in some datacenter) than the replication asks for. */
  readonly underReplicated: boolean;
}

export function isConsistencyLevel(value: unknown): value is ConsistencyLevel {
  return typeof value === 'string' && (consistencyLevels as readonly string[]).includes(value);
}

/** Replicas the configuration asks for per key: N, or the sum of the per-datacenter counts. */
export function requestedReplicas(replication: Replication): number {
  if (typeof replication === 'number') return replication;
  let total = 0;
  for (const count of Object.values(replication)) total += count;
  return total;
}

function replicasPerDc(replicas: readonly ReplicaInfo[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { dc } of replicas) counts.set(dc, (counts.get(dc) ?? 0) + 1);
  return counts;
}

function isUnderReplicated(replication: Exclude<Replication, number>, perDc: Map<string, number>): boolean {
  return Object.entries(replication).some(([dc, count]) => (perDc.get(dc) ?? 0) < count);
}

const quorumOf = (n: number): number => Math.floor(n / 2) + 1;

/** One literal shape for every requirement (no object spread on the request path). */
function requirementOf(level: string, replicaCount: number, total: number, perDc: ReadonlyMap<string, number>, underReplicated: boolean): Requirement {
  return { level, replicaCount, total, perDc, underReplicated };
}
const noDcs: ReadonlyMap<string, number> = new Map();

/**
 * The requirement of a read (`field` 'r') or a write ('w'). `count` is the explicit r/w,
 * `consistency` the level name; both optional. Throws TypeError/RangeError naming the field.
 */
export function resolveRequirement(
  field: 'r' | 'w',
  request: { readonly count?: unknown; readonly consistency?: unknown },
  placement: Placement,
  localDc: string,
): Requirement {
  const { replication, replicas } = placement;
  if (replicas.length === 0) throw new RangeError('placement: the preference list is empty');
  const requested = requestedReplicas(replication);
  const n = replicas.length;
  // A plain N needs no per-datacenter counts (the common case: no Map per request).
  const dcCounts = typeof replication === 'number' ? undefined : replicasPerDc(replicas);
  const underReplicated = typeof replication === 'number' ? n < replication : isUnderReplicated(replication, dcCounts!);
  if (request.count !== undefined) {
    const count = request.count;
    if (typeof count !== 'number') throw new TypeError(`${field} must be a number`);
    if (!Number.isInteger(count) || count < 1 || count > requested) {
      throw new RangeError(`${field} must be an integer in [1, ${requested}] (the replication), got ${count}`);
    }
    return requirementOf(`${field}=${count}`, n, Math.min(count, n), noDcs, underReplicated);
  }
  if (request.consistency === undefined) {
    const fallback = field === 'r' ? limits.readQuorumDefault : limits.writeQuorumDefault;
    return requirementOf('default', n, Math.min(fallback, n), noDcs, underReplicated);
  }
  const level = request.consistency;
  if (typeof level !== 'string') throw new TypeError('consistency must be a string');
  if (!isConsistencyLevel(level)) throw new RangeError(`consistency must be one of ${consistencyLevels.join(', ')}, got ${JSON.stringify(level)}`);
  const perDcLevel = typeof replication !== 'number' && (level === 'LOCAL_QUORUM' || level === 'EACH_QUORUM');
  if (!perDcLevel) {
    const total = level === 'ONE' ? 1 : level === 'TWO' ? Math.min(2, n) : level === 'ALL' ? n : quorumOf(n);
    return requirementOf(level, n, total, noDcs, underReplicated);
  }
  if (level === 'LOCAL_QUORUM') {
    const local = dcCounts!.get(localDc) ?? 0;
    if (local === 0) throw new RangeError(`consistency LOCAL_QUORUM: datacenter ${JSON.stringify(localDc)} holds no replica of this key`);
    return requirementOf(level, n, quorumOf(local), new Map([[localDc, quorumOf(local)]]), underReplicated);
  }
  const perDc = new Map<string, number>();
  let total = 0;
  for (const [dc, count] of dcCounts!) {
    perDc.set(dc, quorumOf(count));
    total += quorumOf(count);
  }
  return requirementOf(level, n, total, perDc, underReplicated);
}
