/**
 * Tombstone purge bookkeeping (issue 5 §2): a tombstone may be dropped only after a grace
 * period AND after every replica of its partition has exchanged with this one since the
 * tombstone was stored here. Pure, in memory; owned by the supervisor, which records each
 * completed exchange it initiated and asks before a purge (compaction, sweep). Losing the
 * ledger (a restart) only delays purges: no record, no purge.
 *
 * Why both conditions (Dynamo's cart resurrection, RELIABILITY.md C10): a completed exchange
 * that started after the tombstone was stored here left the tombstone (or something newer) on
 * the other replica, so once every replica has had one, none holds the deleted value and
 * purging here cannot let an exchange bring it back. The time that counts is when the
 * tombstone reached THIS replica (`storedAtMs`, local wall clock), not the delete's own
 * timestamp: a tombstone can arrive long after it was written (through a hint or another
 * replica) and an exchange before its arrival carried nothing. `clockSkewMarginMs` covers the
 * local wall clock stepping back between the two readings. The grace period counts from the
 * delete's timestamp (`deletedAtMs`) and covers hints and writes still in flight with older
 * values (hint TTLs must stay below it, like Cassandra's max_hint_window < gc_grace).
 *
 * Re-seeding: after this replica purges, another that still holds the tombstone would push it
 * back, forever. So a tombstone-only object past its grace is not merged into a key the
 * receiver does not hold (`isExpiredTombstone`): absence already means deleted there.
 *
 * Only initiated exchanges are recorded; the schedule makes every replica initiate with every
 * other. Bounds: one time per (partition held, peer), forgotten with the partition or peer.
 */

import { canPurge, type StoredObject } from '../causality/index.js';
import { limits } from '../base/limits.js';

export interface PurgeQuery {
  readonly partition: number;
  /** The delete's timestamp: the newest tombstone's timestampMs (`tombstoneTimeMs`). */
  readonly deletedAtMs: number;
  /** When this replica stored the tombstone, by its own wall clock. */
  readonly storedAtMs: number;
  /** This replica's wall clock now. */
  readonly nowMs: number;
  readonly graceMs: number;
  /** The partition's replicas (this node included or not). */
  readonly replicas: readonly string[];
}

export interface PurgeLedgerOptions {
  /** This node's id: never waited for. */
  readonly self: string;
  readonly clockSkewMarginMs?: number;
}

export class PurgeLedger {
  readonly self: string;
  readonly clockSkewMarginMs: number;
  readonly #exchanges = new Map<number, Map<string, number>>();

  constructor(options: PurgeLedgerOptions) {
    if (typeof options.self !== 'string' || options.self.length === 0) throw new TypeError('self must be a non-empty string');
    const margin = options.clockSkewMarginMs ?? limits.tombstoneClockSkewMarginMs;
    if (!Number.isFinite(margin) || margin < 0) throw new RangeError('clockSkewMarginMs must be a non-negative number');
    this.self = options.self;
    this.clockSkewMarginMs = margin;
  }

  /** A completed exchange of `partition` with `peer`, started at `startedAtMs` (wall clock). */
  recordExchange(partition: number, peer: string, startedAtMs: number): void {
    if (!Number.isFinite(startedAtMs)) throw new RangeError('startedAtMs must be a finite number');
    let peers = this.#exchanges.get(partition);
    if (peers === undefined) {
      peers = new Map();
      this.#exchanges.set(partition, peers);
    }
    if (!(startedAtMs <= (peers.get(peer) ?? -Infinity))) peers.set(peer, startedAtMs);
  }

  /** Start of the latest completed exchange of `partition` with `peer`. */
  lastExchangeMs(partition: number, peer: string): number | undefined {
    return this.#exchanges.get(partition)?.get(peer);
  }

  canPurgeTombstones(query: PurgeQuery): boolean {
    const { partition, deletedAtMs, storedAtMs, nowMs, graceMs, replicas } = query;
    if (![deletedAtMs, storedAtMs, nowMs, graceMs].every(Number.isFinite)) throw new RangeError('times must be finite numbers');
    if (nowMs - deletedAtMs < graceMs) return false;
    const since = storedAtMs + this.clockSkewMarginMs;
    for (const replica of replicas) {
      if (replica === this.self) continue;
      const last = this.lastExchangeMs(partition, replica);
      if (last === undefined || !(last > since)) return false;
    }
    return true;
  }

  /** canPurgeTombstones for a stored object: false unless it holds only tombstones. */
  canPurgeObject(object: StoredObject, query: Omit<PurgeQuery, 'deletedAtMs'>): boolean {
    const deletedAtMs = tombstoneTimeMs(object);
    return deletedAtMs !== undefined && this.canPurgeTombstones({ ...query, deletedAtMs });
  }

  /** The partition moved away (handoff): its records go with it. */
  forgetPartition(partition: number): void {
    this.#exchanges.delete(partition);
  }

  /** The peer left the cluster. */
  forgetPeer(peer: string): void {
    for (const peers of this.#exchanges.values()) peers.delete(peer);
  }
}

/** The newest tombstone's timestamp of an object holding only tombstones; otherwise undefined. */
export function tombstoneTimeMs(object: StoredObject): number | undefined {
  if (!canPurge(object)) return undefined;
  let newestMs = 0;
  for (const entry of object) for (const sibling of entry.siblings) newestMs = Math.max(newestMs, sibling.timestampMs);
  return newestMs;
}

/**
 * Whether an incoming object is a tombstone past its grace, which a replica that does not hold
 * the key should not store (see the header: it would re-seed purged tombstones forever).
 */
export function isExpiredTombstone(object: StoredObject, nowMs: number, graceMs: number): boolean {
  const deletedAtMs = tombstoneTimeMs(object);
  return deletedAtMs !== undefined && nowMs - deletedAtMs >= graceMs;
}
