/**
 * The tombstone purge pass (issue 5 §2): drops keys that hold nothing but tombstones once the
 * rule of lib/antientropy/purge-ledger.ts allows it — the grace period since the delete has
 * passed AND every other replica of the partition has completed an exchange with this node
 * that started after the tombstone was here. Owned by the supervisor's main thread; driven by
 * the anti-entropy driver (anti-entropy.ts: every few scheduled exchanges, and after `repair`),
 * which also records the exchanges in the ledger.
 *
 * `storedAtMs` — when the tombstone reached THIS replica — is not stored anywhere. The stand-in
 * is conservative: the time a pass first saw the object (taken after the scan page came back,
 * so the tombstone was in the store by then), kept in memory per (key, object hash). Any
 * change to the object (a merge, a new delete) restarts its clock. After a restart the times
 * are gone and every tombstone starts again: that only delays purging.
 *
 * Clocks: first-seen times and the ledger's exchange times are both this process's monotonic
 * clock, which never steps back, so the ledger's wall-clock skew margin is not needed (the
 * driver builds its ledger with margin 0); the grace period uses the wall clock against the
 * tombstone's own timestamp.
 *
 * Purging is a compare-and-delete in the shard (`ReplicaStore.purgeIf`): the key goes only if
 * its stored object is still byte-for-byte the one scanned, so a write that lands between the
 * scan and the purge is never lost.
 *
 * Bounds: at most `trackedMax` (limits.tombstonesTrackedMax) first-seen times across all
 * partitions; a tombstone without room is not tracked, so it is not purged yet (safe). Each
 * pass rebuilds its partition's set, forgetting keys that are gone or changed.
 */

import type { Clock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import { objectHashOf, tombstoneTimeMs, type PurgeLedger } from '../antientropy/index.js';
import { decodeObject } from '../causality/index.js';
import type { ReplicaStore } from '../store/index.js';

export type PurgeStore = Pick<ReplicaStore, 'scanPartition' | 'purgeIf'>;

export interface TombstonePurgerOptions {
  readonly store: PurgeStore;
  readonly ledger: PurgeLedger;
  readonly clock: Clock;
  /** Tombstones are kept at least this long after their delete (wall clock). */
  readonly graceMs: number;
  /** Every replica of a partition in the current ring (this node included). */
  readonly replicasOf: (partition: number) => readonly string[];
  readonly trackedMax?: number;
}

export interface PurgePassResult {
  readonly partition: number;
  scanned: number;
  /** Tombstone-only objects found. */
  tombstones: number;
  purged: number;
  /** Purge candidates whose object changed (or vanished) before the compare-and-delete. */
  changed: number;
}

interface Seen {
  readonly hashHex: string;
  readonly firstSeenMs: number;
}

export class TombstonePurger {
  readonly #options: TombstonePurgerOptions;
  readonly #trackedMax: number;
  /** partition → key (latin1) → when a pass first saw its current object. */
  readonly #seen = new Map<number, Map<string, Seen>>();
  #tracked = 0;

  constructor(options: TombstonePurgerOptions) {
    if (!Number.isFinite(options.graceMs) || options.graceMs < 0) throw new RangeError('graceMs must be a non-negative finite number');
    const trackedMax = options.trackedMax ?? limits.tombstonesTrackedMax;
    if (!Number.isInteger(trackedMax) || trackedMax < 0) throw new RangeError('trackedMax must be a non-negative integer');
    this.#options = options;
    this.#trackedMax = trackedMax;
  }

  /** Tombstones whose first-seen time is kept now. */
  get tracked(): number {
    return this.#tracked;
  }

  /** The partition is no longer this node's: its first-seen times go. */
  forgetPartition(partition: number): void {
    this.#tracked -= this.#seen.get(partition)?.size ?? 0;
    this.#seen.delete(partition);
  }

  /** One pass over `partition`: purges what the rule allows, remembers the other tombstones. */
  async purgePartition(partition: number): Promise<PurgePassResult> {
    const { store, ledger, clock, graceMs } = this.#options;
    const result: PurgePassResult = { partition, scanned: 0, tombstones: 0, purged: 0, changed: 0 };
    const replicas = this.#options.replicasOf(partition);
    if (!replicas.includes(ledger.self)) {
      this.forgetPartition(partition);
      return result;
    }
    const previous = this.#seen.get(partition) ?? new Map<string, Seen>();
    const next = new Map<string, Seen>();
    const room = (): boolean => this.#tracked - previous.size + next.size < this.#trackedMax;
    let afterKey: Uint8Array | undefined;
    do {
      const page = await store.scanPartition(partition, { limit: limits.antiEntropyScanPageEntries, ...(afterKey ? { afterKey } : {}) });
      const seenAtMs = clock.monotonicMs();
      const nowMs = clock.wallMs();
      const candidates: { key: Uint8Array; value: Uint8Array }[] = [];
      for (const entry of page.entries) {
        result.scanned++;
        const deletedAtMs = tombstoneTimeMs(decodeObject(entry.value));
        if (deletedAtMs === undefined) continue;
        result.tombstones++;
        const id = Buffer.from(entry.key.buffer, entry.key.byteOffset, entry.key.byteLength).toString('latin1');
        const hashHex = Buffer.from(objectHashOf(entry.value)).toString('hex');
        const old = previous.get(id);
        const known = old !== undefined && old.hashHex === hashHex;
        const storedAtMs = known ? old.firstSeenMs : seenAtMs;
        if (ledger.canPurgeTombstones({ partition, deletedAtMs, storedAtMs, nowMs, graceMs, replicas })) candidates.push(entry);
        else if (known || room()) next.set(id, { hashHex, firstSeenMs: storedAtMs });
      }
      // One request per candidate, sent in one turn: the shard commits them as one group.
      const deleted = await Promise.all(candidates.map(({ key, value }) => store.purgeIf(key, value)));
      for (const ok of deleted) {
        if (ok) result.purged++;
        else result.changed++;
      }
      afterKey = page.nextAfterKey;
    } while (afterKey !== undefined);
    this.#tracked += next.size - previous.size;
    if (next.size > 0) this.#seen.set(partition, next);
    else this.#seen.delete(partition);
    return result;
  }
}
