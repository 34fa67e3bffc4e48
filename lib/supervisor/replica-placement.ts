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
    const gossip = membership.gossip;
    const replacing = (id: string): boolean => gossip.member(id)?.status === 'replacing';
    const info = (id: string): ReplicaInfo => ({ id, dc: gossip.member(id)?.dc ?? 'dc1', up: membership.isUp(id) && !replacing(id) });
    const partition = ring.partitionOfKey(key);
    const listed = ring.replicasOf(partition);
    const replicas = listed.map(info);
    const gaining = this.#pending.of(partition, ring, () => membership.members());
    for (const id of listed) if (replacing(id) && !gaining.includes(id)) gaining.push(id);
    const pending = gaining.length === 0 ? {} : { pending: gaining.map((id) => ({ ...info(id), up: membership.isUp(id) })) };
    if (!this.#options.hinted || replicas.every((r) => r.up)) return { replication: ring.replication, replicas, ...pending };
    const fallbacks = ring.walk(partition).filter((id) => !listed.includes(id)).map(info);
    return { replication: ring.replication, replicas, fallbacks, ...pending };
  }
}
