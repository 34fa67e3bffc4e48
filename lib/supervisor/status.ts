/**
 * The node's status document (GET /status, `ringkv status`, `ring`, `endpoints`): this node's
 * view of the members, the ring, its shards and its warnings. Pure function of the
 * supervisor's state; built on the main thread on demand.
 *
 * `ownershipPercent` is Cassandra's "Owns (effective)": the share of partitions whose
 * preference list includes the member, so the column sums to N x 100% over the cluster.
 * `partitions` is the count it owns as primary. `underReplicated` is true when fewer owning
 * nodes exist than the replication asks for (each key then has fewer copies than N).
 * `transfers` is the membership-change handoff (handoff.ts): its phase and, per partition
 * moved, its state (pending, streaming with keys/bytes, done, waiting with a reason).
 * `resync` (resync.ts): whether this node refuses reads of partitions it has not yet exchanged
 * since an outage longer than the tombstone grace, and how many are left.
 */

import type { MissedWritesStats } from './missed-writes.js';
import type { MemberState } from '../membership/index.js';
import type { HintSummary } from './hint-store.js';
import type { AntiEntropyStats } from './anti-entropy.js';
import type { TransferStats } from './handoff.js';
import type { AutoCleanupStats } from './auto-cleanup.js';
import type { ResyncStatus } from './resync.js';
import type { ScalingStatus } from './scaling/scaling.js';
import { requestedReplicas } from '../replication/index.js';
import type { Replication, Ring } from '../ring/index.js';

export interface StatusMember {
  id: string;
  address: string;
  url: string;
  dc: string;
  rack: string;
  weight: number;
  status: 'joining' | 'replacing' | 'normal' | 'leaving' | 'left';
  up: boolean;
  generation: number;
  heartbeat: number;
  partitions: number;
  ownershipPercent: number;
  loadBytes?: number;
}

export interface StatusShard {
  index: number;
  partitions: number;
  liveBytes: number;
  restarts: number;
}

export interface StatusJson {
  node: string;
  version: string;
  address: string;
  uptimeMs: number;
  partitionBits: number;
  replication: number | Record<string, number>;
  underReplicated: boolean;
  warnings: string[];
  members: StatusMember[];
  shards: StatusShard[];
  ring: { owners: string[] };
  /** Undelivered hints this node holds, per target node (and partitions it could not hint). */
  hints: HintSummary[];
  hintsDelivered: number;
  /** Merkle exchanges this node started, and the progress of a `repair`. */
  antiEntropy: AntiEntropyStats;
  /** Partitions moving because of a join, leave or removal (handoff.ts); absent from older nodes. */
  transfers?: TransferStats;
  /** The resync after a long outage (resync.ts); absent from older nodes. */
  resync?: ResyncStatus;
  /** Automatic cleanup of partitions this node no longer replicates (auto-cleanup.ts); absent from older nodes. */
  cleanup?: AutoCleanupStats;
  /** Replicas that missed writes coordinated here, and the hints this node kept for them (missed-writes.ts). */
  missedWrites?: MissedWritesStats;
  /** Staged plans, this node's hold (--staged-join) and the autoscaler (scaling/scaling.ts); absent from older nodes. */
  scaling?: ScalingStatus;
}

/** The sections of the status that its owners hand over as they are. */
type PassedThrough = Pick<StatusJson, 'shards' | 'hints' | 'hintsDelivered' | 'antiEntropy' | 'transfers' | 'resync' | 'cleanup' | 'missedWrites'>;

export interface StatusInput extends PassedThrough {
  selfId: string;
  version: string;
  uptimeMs: number;
  scheme: 'ws' | 'wss';
  /** Undefined while no member owns partitions (a joining node alone). */
  ring: Ring | undefined;
  partitionBits: number;
  replication: Replication;
  members: readonly MemberState[];
  isUp: (id: string) => boolean;
  /** Bytes this node stores, when known (other members' loads are not gossiped yet). */
  selfLoadBytes: number | undefined;
}

export function buildStatus(input: StatusInput): StatusJson {
  const { ring } = input;
  const q = 2 ** input.partitionBits;
  const members = [...input.members]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((m): StatusMember => {
      const entry: StatusMember = {
        id: m.id,
        address: m.address,
        url: `${input.scheme}://${m.address}`,
        dc: m.dc,
        rack: m.rack,
        weight: m.weight,
        status: m.status,
        up: input.isUp(m.id),
        generation: m.generation,
        heartbeat: m.heartbeat,
        partitions: ring?.partitionsOf(m.id).length ?? 0,
        ownershipPercent: ring ? Math.round((ring.replicaPartitionsOf(m.id).length / q) * 10_000) / 100 : 0,
      };
      if (m.id === input.selfId && input.selfLoadBytes !== undefined) entry.loadBytes = input.selfLoadBytes;
      return entry;
    });
  const self = members.find((m) => m.id === input.selfId);
  const warnings: string[] = [];
  const wanted = requestedReplicas(input.replication);
  if (ring === undefined) warnings.push('no ring yet: this node has not met a member that owns partitions');
  const underReplicated = ring === undefined || ring.replicaCount < wanted;
  if (ring !== undefined && underReplicated) warnings.push(`under-replicated: replication asks for ${wanted} copies but only ${ring.replicaCount} can be placed on ${ring.owners.length} owning node(s)`);
  const down = members.filter((m) => !m.up && m.status !== 'left');
  if (down.length > 0) warnings.push(`down: ${down.map((m) => m.id).join(', ')}`);
  if (input.resync?.active) warnings.push(`resyncing after an outage longer than the tombstone grace: ${input.resync.pendingPartitions} partition(s) refuse reads`);
  for (const h of input.hints) if (h.skippedPartitions.length > 0) warnings.push(`hints for ${h.target} past their bound: ${h.skippedPartitions.length} partition(s) left to anti-entropy`);
  const owners: string[] = [];
  if (ring !== undefined) for (let p = 0; p < q; p++) owners.push(ring.ownerOf(p));
  return {
    node: input.selfId,
    version: input.version,
    address: self?.address ?? '',
    uptimeMs: Math.round(input.uptimeMs),
    partitionBits: input.partitionBits,
    replication: typeof input.replication === 'number' ? input.replication : { ...input.replication },
    underReplicated,
    warnings,
    members,
    shards: input.shards,
    ring: { owners },
    hints: input.hints,
    hintsDelivered: input.hintsDelivered,
    antiEntropy: input.antiEntropy,
    transfers: input.transfers ?? { phase: 'idle', done: 0, total: 0, keys: 0, bytes: 0, partitions: [] },
    resync: input.resync ?? { active: false, pendingPartitions: 0, reason: 'fresh' },
    cleanup: input.cleanup ?? { pending: 0, dropped: 0, entriesDropped: 0 },
    missedWrites: input.missedWrites ?? { missed: 0, hinted: 0, refused: 0 },
  };
}
