/**
 * The schedule of a node's own anti-entropy exchanges: which (partition, peer replica) pair to
 * exchange next, and how soon. Pure: the caller passes its partitions, their up peers and the
 * time; owned by the supervisor's anti-entropy scheduler (main thread).
 *
 * Two duties (issue 10, "nothing missed stays missed"):
 * - Dirty partitions first. A partition is dirty for a peer when a write to it was
 *   coordinated here and that peer did not acknowledge it (down, refused, silent: the
 *   coordinator's `missed` action). While the peer is up again, its dirty partitions are
 *   exchanged before anything else, back to back (the caller paces them); a dirty mark is
 *   cleared only by a complete exchange of that pair. This is what repairs what a lost or
 *   refused hint did not (Cassandra's hints plus its repair of the ranges a node missed).
 * - A bounded sweep. Every (partition, up peer) pair is exchanged once per `sweepPeriodMs`:
 *   the gap between scheduled exchanges is sweepPeriodMs / pairs, never longer than
 *   `intervalMsMax`. The cursor walks partitions in order and, for each, every up peer, so a
 *   sweep covers every pair (a single rotating peer cursor would skip pairs whenever the
 *   partition count is a multiple of the peer count).
 *
 * Bounds: at most one dirty mark per (peer, partition), so a peer's set holds at most Q marks;
 * marks of partitions this node no longer replicates, or of peers no longer replicas, are
 * dropped when met.
 */

export interface SweepScheduleOptions {
  /** Every pair is exchanged once per this period (at least). */
  readonly sweepPeriodMs: number;
  /** Scheduled exchanges are never further apart than this. */
  readonly intervalMsMax: number;
  /** Monotonic time of creation. */
  readonly nowMs: number;
}

export interface SweepPick {
  readonly partition: number;
  readonly peer: string;
  /** A dirty pair (a peer that missed writes), not the sweep's next pair. */
  readonly dirty: boolean;
}

export interface SweepStats {
  readonly periodMs: number;
  /** Gap between scheduled exchanges at the last pick. */
  readonly intervalMs: number;
  /** (partition, up peer) pairs of a full sweep at the last pick. */
  readonly pairs: number;
  /** Pairs exchanged so far in the current sweep. */
  readonly done: number;
  /** Sweeps completed since start, and how long the last one took. */
  readonly sweeps: number;
  readonly lastSweepMs: number | undefined;
  /** Dirty partitions, summed over peers. */
  readonly dirty: number;
}

export class SweepSchedule {
  readonly #options: SweepScheduleOptions;
  readonly #dirty = new Map<string, Set<number>>();
  #cursor = 0;
  #peerCursor = 0;
  #done = 0;
  #sweeps = 0;
  #sweepStartedMs: number;
  #lastSweepMs: number | undefined;
  #pairs = 0;
  #intervalMs: number;

  constructor(options: SweepScheduleOptions) {
    const { sweepPeriodMs, intervalMsMax, nowMs } = options;
    if (!(sweepPeriodMs > 0) || !Number.isFinite(sweepPeriodMs)) throw new RangeError('sweepPeriodMs must be a positive number');
    if (!(intervalMsMax > 0) || !Number.isFinite(intervalMsMax)) throw new RangeError('intervalMsMax must be a positive number');
    this.#options = options;
    this.#sweepStartedMs = nowMs;
    this.#intervalMs = intervalMsMax;
  }

  /** Marks `partition` dirty for `peer`; false if it already was. */
  markDirty(partition: number, peer: string): boolean {
    let set = this.#dirty.get(peer);
    if (set === undefined) {
      set = new Set();
      this.#dirty.set(peer, set);
    }
    if (set.has(partition)) return false;
    set.add(partition);
    return true;
  }

  isDirty(partition: number, peer: string): boolean {
    return this.#dirty.get(peer)?.has(partition) === true;
  }

  /** Every dirty mark, per peer, partitions ascending (for persistence and status). */
  dirtyEntries(): [string, number[]][] {
    return [...this.#dirty].filter(([, set]) => set.size > 0).map(([peer, set]) => [peer, [...set].sort((a, b) => a - b)]);
  }

  /**
   * The next pair to exchange: a dirty pair of an up peer if any, else the sweep's next pair.
   * `peersOf` gives a partition's up peer replicas; undefined when there is nothing to do.
   */
  next(partitions: readonly number[], peersOf: (partition: number) => readonly string[], nowMs: number): SweepPick | undefined {
    return this.nextDirty(partitions, peersOf) ?? this.nextSweep(partitions, peersOf, nowMs);
  }

  /** Drops every mark of the peers `isMember` rejects (removed from the cluster); true if any went. */
  forgetPeers(isMember: (peer: string) => boolean): boolean {
    let changed = false;
    for (const peer of [...this.#dirty.keys()]) {
      if (isMember(peer)) continue;
      this.#dirty.delete(peer);
      changed = true;
    }
    return changed;
  }

  /** A dirty pair whose peer is up now, lowest partition first per peer. */
  nextDirty(partitions: readonly number[], peersOf: (partition: number) => readonly string[]): SweepPick | undefined {
    if (this.#dirty.size === 0) return undefined;
    const mine = new Set(partitions);
    for (const [peer, set] of this.#dirty) {
      for (const partition of [...set].sort((a, b) => a - b)) {
        if (!mine.has(partition)) {
          set.delete(partition); // no longer ours to repair
          continue;
        }
        // A peer that is down (or not a replica of it now) leaves the mark waiting.
        if (peersOf(partition).includes(peer)) return { partition, peer, dirty: true };
      }
      if (set.size === 0) this.#dirty.delete(peer);
    }
    return undefined;
  }

  /** The sweep's next pair; also recomputes the pair count and the gap (`intervalMs`). */
  nextSweep(partitions: readonly number[], peersOf: (partition: number) => readonly string[], nowMs: number): SweepPick | undefined {
    if (partitions.length === 0) return undefined;
    this.#pairs = partitions.reduce((sum, p) => sum + peersOf(p).length, 0);
    this.#intervalMs = Math.max(1, Math.min(this.#options.intervalMsMax, Math.floor(this.#options.sweepPeriodMs / Math.max(1, this.#pairs))));
    if (this.#pairs === 0) return undefined;
    for (let steps = 0; steps <= partitions.length; steps++) {
      if (this.#cursor >= partitions.length) this.#endSweep(nowMs);
      const partition = partitions[this.#cursor]!;
      const peers = peersOf(partition);
      if (this.#peerCursor < peers.length) {
        this.#done++;
        return { partition, peer: peers[this.#peerCursor++]!, dirty: false };
      }
      this.#cursor++;
      this.#peerCursor = 0;
    }
    return undefined;
  }

  #endSweep(nowMs: number): void {
    this.#cursor = 0;
    this.#peerCursor = 0;
    if (this.#done > 0) {
      this.#sweeps++;
      this.#lastSweepMs = nowMs - this.#sweepStartedMs;
    }
    this.#done = 0;
    this.#sweepStartedMs = nowMs;
  }

  /** The gap before the next scheduled (sweep) exchange, as of the last pick. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** An exchange of `partition` with `peer` ended; a complete one clears the pair's dirty mark. */
  onExchanged(partition: number, peer: string, complete: boolean): void {
    if (!complete) return;
    const set = this.#dirty.get(peer);
    set?.delete(partition);
    if (set?.size === 0) this.#dirty.delete(peer);
  }

  stats(): SweepStats {
    let dirty = 0;
    for (const set of this.#dirty.values()) dirty += set.size;
    return { periodMs: this.#options.sweepPeriodMs, intervalMs: this.#intervalMs, pairs: this.#pairs, done: this.#done, sweeps: this.#sweeps, lastSweepMs: this.#lastSweepMs, dirty };
  }
}
