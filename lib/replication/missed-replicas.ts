/**
 * Which replicas of a key missed a coordinated write: the bookkeeping behind coordinator-held
 * hints (Cassandra's hints written by the coordinator for every replica that did not
 * acknowledge a mutation — down, refused, or silent past the write's deadline). Pure; used by
 * the coordinator when a put settles (every target answered, or its deadline passed).
 *
 * A replica of the preference list missed the write when it did not acknowledge it itself:
 * - it was a target and failed or never answered;
 * - it was down and a stand-in took a hint for it (`standIn` names that stand-in: the hint
 *   exists, but anti-entropy should still learn the partition is dirty for the replica);
 * - it was down and its stand-in failed or never answered, or no stand-in existed at all (any
 *   three-node cluster with N=3): nobody holds a hint, so the coordinator must keep one.
 * The coordinator itself never appears: its own write was applied first, or nothing was sent.
 */

import type { ReplicaInfo } from './consistency-level.js';

export interface MissedReplica {
  /** The replica (a member of the key's preference list) that does not have the write. */
  readonly to: string;
  /** The stand-in that acknowledged a hint for it, if any; undefined: nobody holds one. */
  readonly standIn: string | undefined;
}

/**
 * @param targets  the put's targets (replicas, and stand-ins tagged `hintFor`)
 * @param acked    the targets that acknowledged
 * @param replicas the key's preference list
 * @param selfId   the coordinator (never reported)
 */
export function missedReplicas(targets: readonly ReplicaInfo[], acked: ReadonlySet<string>, replicas: readonly ReplicaInfo[], selfId: string): MissedReplica[] {
  const out: MissedReplica[] = [];
  const reported = new Set<string>([selfId]);
  for (const target of targets) {
    const to = target.hintFor ?? target.id;
    if (reported.has(to)) continue;
    if (target.hintFor === undefined && acked.has(target.id)) {
      reported.add(to);
      continue;
    }
    reported.add(to);
    out.push({ to, standIn: target.hintFor !== undefined && acked.has(target.id) ? target.id : undefined });
  }
  for (const replica of replicas) {
    if (reported.has(replica.id)) continue;
    reported.add(replica.id);
    out.push({ to: replica.id, standIn: undefined });
  }
  return out;
}
