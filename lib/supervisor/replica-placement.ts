/**
 * A key's placement for the coordinator (lib/replication): its preference list in the current
 * ring, each replica marked up or down by this node's failure detector; the nodes gaining its
 * partition in a membership change in progress (pending-replicas.ts); and, when hinting is on
 * and a replica is down, the owners after it in walk order as sloppy-quorum stand-ins
 * (Dynamo §4.6). Owned by the supervisor (main thread); reads membership state, no IO.
 *
 * A `replacing` member (a node streaming a dead member's partitions under its id, handoff.ts)
 * is listed as down, so it neither counts toward W nor answers reads before it holds the data,
 * and as pending while it is up, so it receives every write of its partitions at once.
 *
 * Invariants: without a ring the placement is empty (the coordinator refuses the request);
 * stand-ins are never members of the preference list, and are listed only when a hint store
 * exists and some replica is down; a replica's dc defaults to 'dc1' when gossip has none.
 */

import { partitionOfToken } from '../base/hash.js';
import type { MemberState } from '../membership/index.js';
import type { Placement, ReplicaInfo } from '../replication/index.js';
import type { Replication } from '../ring/index.js';
import type { MembershipDriver } from './membership-driver.js';
import { PendingReplicas } from './pending-replicas.js';

export interface ReplicaPlacementOptions {
  readonly membership: MembershipDriver;
  readonly partitionBits: number;
  readonly replication: Replication;
  /** Whether this node takes hints (a hint store exists): then down replicas get stand-ins. */
  readonly hinted: boolean;
}

export class ReplicaPlacement {
  readonly #options: ReplicaPlacementOptions;
  /** Nodes gaining a partition in a join or leave in progress: they get its writes too. */
  readonly #pending: PendingReplicas;

  constructor(options: ReplicaPlacementOptions) {
    this.#options = options;
    this.#pending = new PendingReplicas(options.partitionBits, options.replication);
  }

  placementOf(key: Uint8Array): Placement {
    const membership = this.#options.membership;
    const ring = membership.ring;
    if (ring === undefined) return { replication: this.#options.replication, replicas: [] };
    const partition = ring.partitionOfKey(key);
    const listed = ring.replicasOf(partition);
    // Plain loops and methods, no closures: this runs once per coordinated request.
    const replicas: ReplicaInfo[] = [];
    let allUp = true;
    for (const id of listed) {
      const replica = this.#info(id);
      if (!replica.up) allUp = false;
      replicas.push(replica);
    }
    const gaining = this.#pending.of(partition, ring, this.#members);
    for (const id of listed) if (this.#replacing(id) && !gaining.includes(id)) gaining.push(id);
    const pending = gaining.length === 0 ? undefined : gaining.map((id) => ({ ...this.#info(id), up: membership.isUp(id) }));
    if (!this.#options.hinted || allUp) return pending === undefined ? { replication: ring.replication, replicas } : { replication: ring.replication, replicas, pending };
    const fallbacks = ring.walk(partition).filter((id) => !listed.includes(id)).map((id) => this.#info(id));
    return pending === undefined ? { replication: ring.replication, replicas, fallbacks } : { replication: ring.replication, replicas, fallbacks, pending };
  }

  /**
   * Whether `selfId` alone replicates the key of placement token `token` (tokenOf) and is up,
   * with no node gaining its partition: a read there needs no other node
   * (Coordinator.soleLocalRead). No placement is built.
   */
  soleReplicaOfToken(token: number, selfId: string): boolean {
    const membership = this.#options.membership;
    const ring = membership.ring;
    if (ring === undefined) return false;
    const partition = partitionOfToken(token, ring.partitionBits);
    const listed = ring.replicasOf(partition);
    if (listed.length !== 1 || listed[0] !== selfId || !membership.isUp(selfId) || this.#replacing(selfId)) return false;
    return !this.#pending.any(partition, ring, this.#members);
  }

  readonly #members = (): readonly MemberState[] => this.#options.membership.members();

  #replacing(id: string): boolean {
    return this.#options.membership.gossip.member(id)?.status === 'replacing';
  }

  #info(id: string): ReplicaInfo {
    const membership = this.#options.membership;
    const member = membership.gossip.member(id);
    return { id, dc: member?.dc ?? 'dc1', up: membership.isUp(id) && member?.status !== 'replacing' };
  }
}
