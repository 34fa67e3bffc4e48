/**
 * Pending replicas (Cassandra's pending ranges): while a member is `joining` or `leaving`, the
 * nodes that replicate a partition in the target ring (joining members in, leaving members
 * out) but not in the current one. Coordinators send them every write of the partition, not
 * counted toward W (lib/replication/coordinator.ts), so a write made while the partition
 * streams reaches its new owner directly; the catch-up exchange after the change (handoff.ts)
 * stays the guarantee for writes that miss them (a dropped message, gossip still spreading).
 * Owned by the supervisor's main thread.
 *
 * Cost: nothing while every member is `normal`; otherwise one target ring per distinct
 * (current ring, joining/leaving members) state, cached, and two preference-list lookups per
 * write.
 */

import type { MemberState } from '../membership/index.js';
import { computeTargetRing, type Replication, type Ring } from '../ring/index.js';

export class PendingReplicas {
  readonly #partitionBits: number;
  readonly #replication: Replication;
  #stateKey = '';
  #target: Ring | undefined;

  constructor(partitionBits: number, replication: Replication) {
    this.#partitionBits = partitionBits;
    this.#replication = replication;
  }

  /** The ids that gain `partition` in the change in progress (empty when none is). */
  of(partition: number, ring: Ring, members: readonly MemberState[]): string[] {
    const target = this.#targetOf(ring, members);
    if (target === undefined) return [];
    const current = ring.replicasOf(partition);
    return target.replicasOf(partition).filter((id) => !current.includes(id));
  }

  #targetOf(ring: Ring, members: readonly MemberState[]): Ring | undefined {
    let changing = '';
    for (const m of members) if (m.status === 'joining' || m.status === 'leaving') changing += `${m.id}:${m.status},`;
    if (changing === '') return undefined;
    const stateKey = `${ring.version}|${changing}`;
    if (stateKey !== this.#stateKey) {
      this.#stateKey = stateKey;
      try {
        this.#target = computeTargetRing(members.filter((m) => m.status !== 'left'), { partitionBits: this.#partitionBits, replication: this.#replication });
      } catch (error) {
        // Every owner leaving: no target ring, so no pending replicas.
        if (!(error instanceof RangeError)) throw error;
        this.#target = undefined;
      }
    }
    return this.#target;
  }
}
