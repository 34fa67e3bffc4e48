/**
 * Pending replicas (Cassandra's pending ranges): while a member is `joining` or `leaving`, the
 * nodes that replicate a partition in the target ring (joining members in, leaving members
 * out) but not in the current one. Coordinators send them every write of the partition, not
 * counted toward W (lib/replication/coordinator.ts), so a write made while the partition
 * streams reaches its new owner directly; the catch-up exchange after the change (handoff.ts)
 * stays the guarantee for writes that miss them (a dropped message, gossip still spreading).
 * Owned by the supervisor's main thread.
 *
 * Cost per write: one identity check of the ring. The membership driver builds a new Ring on
 * every membership change (a status change included), so the target ring is recomputed only
 * when the ring object changes, and only while a member is joining or leaving.
 */

import type { MemberState } from '../membership/index.js';
import { computeTargetRing, type Replication, type Ring } from '../ring/index.js';

export class PendingReplicas {
  readonly #partitionBits: number;
  readonly #replication: Replication;
  #ring: Ring | undefined;
  #target: Ring | undefined;

  constructor(partitionBits: number, replication: Replication) {
    this.#partitionBits = partitionBits;
    this.#replication = replication;
  }

  /** The ids that gain `partition` in the change in progress (empty when none is). */
  of(partition: number, ring: Ring, members: () => readonly MemberState[]): string[] {
    const target = this.#targetOf(ring, members);
    if (target === undefined) return [];
    const current = ring.replicasOf(partition);
    return target.replicasOf(partition).filter((id) => !current.includes(id));
  }

  /** Whether some node gains `partition` (`of` is not empty), without building the list: a read's hot path asks. */
  any(partition: number, ring: Ring, members: () => readonly MemberState[]): boolean {
    const target = this.#targetOf(ring, members);
    if (target === undefined) return false;
    const current = ring.replicasOf(partition);
    return target.replicasOf(partition).some((id) => !current.includes(id));
  }

  #targetOf(ring: Ring, members: () => readonly MemberState[]): Ring | undefined {
    if (ring !== this.#ring) {
      this.#ring = ring;
      this.#target = targetRingOf(members(), this.#partitionBits, this.#replication);
    }
    return this.#target;
  }
}

/** The ring the change in progress heads to; undefined when no member joins or leaves, or every owner leaves. */
function targetRingOf(members: readonly MemberState[], partitionBits: number, replication: Replication): Ring | undefined {
  if (!members.some((m) => m.status === 'joining' || m.status === 'leaving')) return undefined;
  try {
    return computeTargetRing(members.filter((m) => m.status !== 'left'), { partitionBits, replication });
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    return undefined;
  }
}
