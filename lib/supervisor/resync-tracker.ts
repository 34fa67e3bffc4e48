/**
 * Which partitions a resyncing node may serve reads for (issue 5 §2: "a replica down longer
 * than the grace period resyncs before serving reads for its partitions"). Pure: the ring
 * view and the exchange outcomes come in as arguments; resync.ts drives it. Owned by the
 * supervisor (main thread).
 *
 * Rule. A node that starts resyncing (liveness.ts) refuses reads for every partition until
 * it knows the partitions it replicates (the ring); from then on each of those partitions is
 * "pending" until it is synced, and only pending partitions refuse reads. A pending partition
 * is synced when, counting only exchanges this node initiated since it started that completed
 * (ok and not partial — a partial exchange leaves differences behind):
 *   - it has no other replica (nothing to sync from), or
 *   - it exchanged with every other replica that is up now, and with at least one other
 *     replica at all.
 * A replica that is down is skipped (the driver logs it): waiting for it could refuse reads
 * forever, and a key whose only newer copy sits on a down replica was acknowledged by fewer
 * replicas than any quorum read would need from this node anyway. "At least one" keeps a
 * partition pending while every peer is down (or not yet seen up after our restart), so a
 * node cut off from everyone does not declare itself synced by default.
 *
 * Ring changes: a pending partition this node no longer replicates no longer blocks the end
 * of the resync; one it gains later is streamed by the handoff, not pending here. The resync
 * ends (every partition served) once no partition it replicates is pending, and it has some.
 *
 * Bounds: one entry per (partition this node replicates, peer replica) pair — at most
 * 2^partitionBits × replicas — and all of it is dropped when the resync ends.
 */

export interface ResyncView {
  readonly selfId: string;
  /** Partitions this node replicates now (empty while the ring is unknown). */
  readonly partitions: readonly number[];
  replicasOf(partition: number): readonly string[];
  isUp(id: string): boolean;
}

export interface ResyncPair {
  readonly partition: number;
  readonly peer: string;
}

export interface ResyncRound {
  /** Exchanges still needed: each pending partition with each up peer replica not yet done. */
  readonly work: ResyncPair[];
  /** Peer replicas of pending partitions skipped because they are down. */
  readonly skipped: ResyncPair[];
}

export class ResyncTracker {
  #active: boolean;
  /** Partitions not yet synced; undefined until the ring first names this node's partitions. */
  #pending: Set<number> | undefined;
  /** partition → peers a completed exchange since the start covered. */
  readonly #exchanged = new Map<number, Set<string>>();

  constructor(active: boolean) {
    this.#active = active;
  }

  /** Whether reads are still refused for some (or, before the ring is known, every) partition. */
  get active(): boolean {
    return this.#active;
  }

  /** Whether the partitions to sync are known yet. */
  get planned(): boolean {
    return this.#pending !== undefined;
  }

  /** Whether this node may answer reads for `partition` from its own store. */
  servesReads(partition: number): boolean {
    if (!this.#active) return true;
    return this.#pending !== undefined && !this.#pending.has(partition);
  }

  /** Pending partitions among `partitions` (all of them before the plan; 0 once done). */
  pendingAmong(partitions: readonly number[]): number {
    if (!this.#active) return 0;
    const pending = this.#pending;
    return pending === undefined ? partitions.length : partitions.filter((p) => pending.has(p)).length;
  }

  /** An exchange this node initiated ended; only a complete one (`ok`, not partial) counts. */
  recordExchange(partition: number, peer: string, complete: boolean): void {
    if (!this.#active || !complete) return;
    const peers = this.#exchanged.get(partition);
    if (peers === undefined) this.#exchanged.set(partition, new Set([peer]));
    else peers.add(peer);
  }

  /**
   * Settles every pending partition against `view` (ending the resync when none of the
   * node's partitions is left) and returns the exchanges still needed.
   */
  round(view: ResyncView): ResyncRound {
    const work: ResyncPair[] = [];
    const skipped: ResyncPair[] = [];
    if (!this.#active || view.partitions.length === 0) return { work, skipped };
    this.#pending ??= new Set(view.partitions);
    const mine = new Set(view.partitions);
    let blocking = 0;
    for (const partition of [...this.#pending]) {
      if (!mine.has(partition)) continue;
      const peers = view.replicasOf(partition).filter((id) => id !== view.selfId);
      const done = this.#exchanged.get(partition);
      const missing = peers.filter((id) => view.isUp(id) && done?.has(id) !== true);
      if (peers.length === 0 || (missing.length === 0 && peers.some((id) => done?.has(id) === true))) {
        this.#pending.delete(partition);
        continue;
      }
      blocking++;
      for (const peer of missing) work.push({ partition, peer });
      for (const peer of peers) if (!view.isUp(peer) && done?.has(peer) !== true) skipped.push({ partition, peer });
    }
    if (blocking === 0) {
      this.#active = false;
      this.#pending.clear();
      this.#exchanged.clear();
    }
    return { work, skipped };
  }
}
