/**
 * Drives Merkle anti-entropy (lib/antientropy) with the node's replica store and its peers:
 * the initiator side (scheduled exchanges, `repair` on demand, `cleanup`) and, through
 * anti-entropy-responder.ts, the responder side (answers to other replicas' ae-* rpcs). Owned by
 * the supervisor (main thread).
 *
 * Trees are built on demand from a partition scan (partition-snapshots.ts), not kept per
 * shard: the wire traffic is what the issue bounds (it grows with the differences, not the
 * data). A snapshot holds the partition's tree and its entries in leaf order; merges made by an
 * exchange update it incrementally. The initiator builds a fresh snapshot per exchange; a
 * responder reuses a cached one so the requests of one exchange see one tree.
 *
 * Schedule (anti-entropy-scheduler.ts over lib/antientropy/sweep-schedule.ts): partitions
 * marked dirty for a peer (`markDirty`: writes it missed) first once it is up, then a sweep
 * of every (partition, up peer) pair once per `sweepPeriodMs` (default one hour), at most
 * `intervalMs` apart. One exchange at a time; traffic paced by one token bucket
 * (`antiEntropyBytesPerSecondDefault`) so foreground latency is protected. `repair()` runs
 * every partition (or one) against every up peer replica now, with visible progress. Any
 * complete exchange this node initiates clears the pair's dirty mark.
 *
 * Tombstone purging (issue 5 §2; rule in lib/antientropy/purge-ledger.ts, pass in purge.ts),
 * on when the supervisor gives `selfId` and `replicasOf` and the grace is finite:
 * - every exchange this node INITIATES that completes (ok, not partial) is recorded in the
 *   PurgeLedger with the monotonic time it started (before its snapshot scan). Responder-side
 *   exchanges are not recorded: the responder cannot tell that the initiator finished (and
 *   its cached snapshot may predate the tombstone); the schedule makes every replica initiate
 *   with every other, and `repair` on a node exchanges with each of its peers.
 * - a purge pass runs over one partition every `limits.tombstonePurgeEveryTicks` scheduled
 *   exchanges (rotating), and over every repaired partition after `repair`.
 * - a merge never stores a tombstone-only object past its grace for a key this node does not
 *   hold (partition-snapshots.ts): storing it would re-seed a purged tombstone forever.
 */

import type { Clock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import { Exchange, PurgeLedger, TokenBucket, type ExchangeResult, type SweepPick, type SweepStats } from '../antientropy/index.js';
import type { ReplicaStore } from '../store/index.js';
import type { CleanupOutcome } from './auto-cleanup.js';
import { AntiEntropyResponder } from './anti-entropy-responder.js';
import { AntiEntropyScheduler } from './anti-entropy-scheduler.js';
import { runExchange } from './exchange-run.js';
import { PartitionSnapshots } from './partition-snapshots.js';
import { TombstonePurger } from './purge.js';

export interface AntiEntropyOptions {
  readonly store: ReplicaStore;
  readonly partitionBits: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** One rpc to a peer: its reply body, or undefined when unreachable / timed out. */
  readonly call: (nodeId: string, body: object, timeoutMs: number) => Promise<unknown>;
  /** The partitions this node replicates now. */
  readonly myPartitions: () => readonly number[];
  /** The other replicas of a partition that are up now. */
  readonly peersOf: (partition: number) => readonly string[];
  /** Whether a node is still a member (not removed): dirty marks for removed ones are dropped. */
  readonly isMember?: (id: string) => boolean;
  /** Every replica of a partition in the current ring, and whether a node is up (cleanup). */
  readonly replicasOf?: (partition: number) => readonly string[];
  readonly isUp?: (id: string) => boolean;
  readonly intervalMs?: number;
  /** Every (partition, up peer) pair is exchanged once per this period; default limits.antiEntropySweepPeriodMsDefault. */
  readonly sweepPeriodMs?: number;
  /** Where the dirty-partition marks are kept across restarts (AE_DIRTY); default in memory only. */
  readonly dir?: string;
  readonly bytesPerSecond?: number;
  /** This node's id: with `replicasOf`, turns tombstone purging on. */
  readonly selfId?: string;
  /** Tombstones are kept at least this long after the delete; default limits.tombstoneGraceMsDefault; Infinity: never purged. */
  readonly tombstoneGraceMs?: number;
  /** Told of every exchange this node initiated once it ended (resync.ts counts the complete ones). */
  readonly onExchange?: (partition: number, peer: string, result: ExchangeResult) => void;
}

export interface AntiEntropyStats {
  exchanges: number;
  failed: number;
  keysRepaired: number;
  bytesSent: number;
  bytesReceived: number;
  lastError?: string;
  /** Tombstone-only keys purged (always set by the driver; optional for older status readers). */
  tombstonesPurged?: number;
  /** The scheduled sweep and the dirty partitions waiting for their peers. */
  sweep?: SweepStats;
  repair: { running: boolean; done: number; total: number; keysRepaired: number };
  /** Progress of the current or last `cleanup` (partitions looked at); absent before the first. */
  cleanup?: { running: boolean; done: number; total: number; dropped: number };
}

export interface CleanupResult {
  dropped: number[];
  entries: number;
  kept: { partition: number; reason: string }[];
}

export class AntiEntropy {
  readonly #options: AntiEntropyOptions;
  readonly #bucket: TokenBucket;
  readonly #responder: AntiEntropyResponder;
  readonly #snapshots: PartitionSnapshots;
  readonly #ledger: PurgeLedger | undefined;
  readonly #purger: TombstonePurger | undefined;
  readonly #graceMs: number;
  readonly #scheduler: AntiEntropyScheduler;
  #ticks = 0;
  #purgeCursor = 0;
  #busy = false;
  #nextExchangeId = 1;
  #closed = false;
  readonly #stats: AntiEntropyStats = {
    exchanges: 0,
    failed: 0,
    keysRepaired: 0,
    bytesSent: 0,
    bytesReceived: 0,
    tombstonesPurged: 0,
    repair: { running: false, done: 0, total: 0, keysRepaired: 0 },
  };

  constructor(options: AntiEntropyOptions) {
    this.#options = options;
    const bytesPerSecond = options.bytesPerSecond ?? limits.antiEntropyBytesPerSecondDefault;
    this.#bucket = new TokenBucket({ bytesPerSecond, burstBytes: limits.antiEntropyBurstBytesDefault, nowMs: options.clock.monotonicMs() });
    this.#graceMs = options.tombstoneGraceMs ?? limits.tombstoneGraceMsDefault;
    if (!(this.#graceMs >= 0)) throw new RangeError('tombstoneGraceMs must be a non-negative number');
    const { selfId, replicasOf } = options;
    if (selfId !== undefined && replicasOf !== undefined && Number.isFinite(this.#graceMs)) {
      // Margin 0: exchange and first-seen times are both the monotonic clock (purge.ts).
      this.#ledger = new PurgeLedger({ self: selfId, clockSkewMarginMs: 0 });
      this.#purger = new TombstonePurger({ store: options.store, ledger: this.#ledger, clock: options.clock, graceMs: this.#graceMs, replicasOf });
    }
    // Merges skip expired tombstones only while purging is on (the purger exists).
    const tombstoneGraceMs = this.#purger === undefined ? undefined : this.#graceMs;
    this.#snapshots = new PartitionSnapshots({ store: options.store, partitionBits: options.partitionBits, clock: options.clock, tombstoneGraceMs });
    this.#responder = new AntiEntropyResponder({ store: options.store, partitionBits: options.partitionBits, snapshots: this.#snapshots, myPartitions: options.myPartitions });
    this.#scheduler = new AntiEntropyScheduler({
      clock: options.clock,
      logger: options.logger,
      sweepPeriodMs: options.sweepPeriodMs ?? limits.antiEntropySweepPeriodMsDefault,
      intervalMsMax: options.intervalMs ?? limits.antiEntropyIntervalMsDefault,
      myPartitions: options.myPartitions,
      peersOf: options.peersOf,
      run: (pick) => this.#scheduled(pick),
      ...(options.dir !== undefined ? { dir: options.dir } : {}),
      ...(options.isMember !== undefined ? { isMember: options.isMember } : {}),
    });
  }

  stats(): AntiEntropyStats {
    return { ...this.#stats, sweep: this.#scheduler.stats(), repair: { ...this.#stats.repair }, ...(this.#stats.cleanup ? { cleanup: { ...this.#stats.cleanup } } : {}) };
  }

  start(): void {
    this.#scheduler.start();
  }

  close(): void {
    this.#closed = true;
    this.#scheduler.close();
  }

  /** `partition` took a write that `peer` missed: exchange it with `peer` first once it is up. */
  markDirty(partition: number, peer: string): void {
    this.#scheduler.markDirty(partition, peer);
  }

  /** One scheduled exchange: whether it completed, or undefined when busy (a repair runs). */
  async #scheduled(pick: SweepPick): Promise<boolean | undefined> {
    if (this.#busy || this.#closed || this.#stats.repair.running) return undefined;
    this.#busy = true;
    try {
      const result = await this.exchange(pick.partition, pick.peer);
      if (!pick.dirty && ++this.#ticks % limits.tombstonePurgeEveryTicks === 0) {
        const partitions = this.#options.myPartitions();
        if (partitions.length > 0) await this.#purge(partitions[this.#purgeCursor++ % partitions.length]!);
      }
      return result.ok && !result.partial;
    } finally {
      this.#busy = false;
    }
  }

  /** One purge pass over `partition` (purge.ts); a failure is logged, never thrown. Returns keys purged. */
  async #purge(partition: number): Promise<number> {
    if (this.#purger === undefined || this.#closed) return 0;
    try {
      const result = await this.#purger.purgePartition(partition);
      if (result.purged > 0) {
        this.#stats.tombstonesPurged = (this.#stats.tombstonesPurged ?? 0) + result.purged;
        this.#snapshots.forget(partition);
        this.#options.logger.debug({ partition, purged: result.purged, tombstones: result.tombstones }, 'purged tombstones');
      }
      return result.purged;
    } catch (error) {
      this.#options.logger.warn({ err: error, partition }, 'tombstone purge pass failed');
      return 0;
    }
  }

  /** Runs every partition (or one) against each of its up peer replicas, one exchange at a time. */
  async repair(partition?: number): Promise<AntiEntropyStats['repair']> {
    if (this.#stats.repair.running) return this.#stats.repair;
    const mine = this.#options.myPartitions();
    // A partition this node does not replicate is not its to repair (it would store the data).
    const partitions = partition === undefined ? mine : mine.includes(partition) ? [partition] : [];
    const work = partitions.flatMap((p) => this.#options.peersOf(p).map((peer) => [p, peer] as const));
    const repair = { running: true, done: 0, total: work.length, keysRepaired: 0 };
    this.#stats.repair = repair;
    this.#options.logger.info({ partitions: partitions.length, exchanges: work.length }, 'repair started');
    while (this.#busy) await new Promise((r) => setTimeout(r, 10));
    this.#busy = true;
    try {
      for (const [p, peer] of work) {
        if (this.#closed) break;
        const result = await this.exchange(p, peer);
        repair.keysRepaired += result.stats.keysFetched + result.stats.keysPushed;
        repair.done++;
      }
      for (const p of partitions) await this.#purge(p);
    } finally {
      repair.running = false;
      this.#busy = false;
      this.#options.logger.info({ exchanges: repair.done, keysRepaired: repair.keysRepaired }, 'repair finished');
    }
    return { ...repair };
  }

  /**
   * Cassandra's `nodetool cleanup`: for every partition this node holds data of but no longer
   * replicates, `cleanupPartition`. auto-cleanup.ts runs the same per partition by itself.
   */
  async cleanup(): Promise<CleanupResult> {
    const result: CleanupResult = { dropped: [], entries: 0, kept: [] };
    if (this.#options.replicasOf === undefined || this.#options.isUp === undefined) return result;
    const progress = { running: true, done: 0, total: 2 ** this.#options.partitionBits, dropped: 0 };
    this.#stats.cleanup = progress; // status: `ringkv cleanup` draws it
    try {
      for (let partition = 0; partition < progress.total && !this.#closed; partition++) {
        const one = await this.cleanupPartition(partition);
        if (one.outcome === 'dropped') {
          result.dropped.push(partition);
          result.entries += one.entries;
          progress.dropped++;
        } else if (one.outcome === 'kept') {
          result.kept.push({ partition, reason: one.reason });
        }
        progress.done++;
      }
    } finally {
      progress.running = false;
    }
    if (result.dropped.length > 0) this.#options.logger.info({ dropped: result.dropped.length, entries: result.entries }, 'cleanup dropped partitions this node no longer replicates');
    return result;
  }

  /**
   * If this node holds data of `partition` but does not replicate it: hands its copies to
   * every current replica (one exchange each, which pushes what they lack) and, only when
   * every replica is up and every exchange completed, drops it.
   */
  async cleanupPartition(partition: number): Promise<CleanupOutcome> {
    const { store, replicasOf, isUp } = this.#options;
    if (this.#options.myPartitions().includes(partition)) return { outcome: 'mine' };
    if (replicasOf === undefined || isUp === undefined || this.#closed) return { outcome: 'kept', reason: 'cleanup is not configured' };
    if ((await store.scanPartition(partition, { limit: 1 })).entries.length === 0) return { outcome: 'empty' };
    const owners = replicasOf(partition);
    if (owners.length === 0 || !owners.every(isUp)) return { outcome: 'kept', reason: 'a replica is down' };
    for (const owner of owners) {
      const exchanged = await this.exchange(partition, owner);
      if (!exchanged.ok || exchanged.partial) return { outcome: 'kept', reason: 'an exchange did not complete' };
    }
    // The ring may have moved during the exchanges: drop only what is still not ours.
    if (this.#options.myPartitions().includes(partition)) return { outcome: 'mine' };
    const entries = await store.dropPartition(partition);
    this.#snapshots.forget(partition);
    this.#ledger?.forgetPartition(partition);
    this.#purger?.forgetPartition(partition);
    return { outcome: 'dropped', entries };
  }

  /** One exchange of `partition` with `peer`, as the initiator. */
  async exchange(partition: number, peer: string): Promise<ExchangeResult> {
    const clock = this.#options.clock;
    // Before the snapshot scan: whatever the scan sees was stored by then (purge-ledger.ts).
    const startedAtMs = clock.monotonicMs();
    const snapshot = await this.#snapshots.snapshot(partition, true);
    const x = new Exchange({ exchangeId: this.#nextExchangeId++, peer, tree: snapshot.tree, bucket: this.#bucket });
    const { store, call } = this.#options;
    const result = await runExchange(x, peer, snapshot, { clock, store, snapshots: this.#snapshots, call });
    this.#account(partition, peer, result);
    if (result.ok && !result.partial) this.#ledger?.recordExchange(partition, peer, startedAtMs);
    this.#scheduler.onExchanged(partition, peer, result.ok && !result.partial);
    this.#options.onExchange?.(partition, peer, result);
    return result;
  }

  #account(partition: number, peer: string, result: ExchangeResult): void {
    const s = this.#stats;
    s.exchanges++;
    s.bytesSent += result.stats.bytesSent;
    s.bytesReceived += result.stats.bytesReceived;
    s.keysRepaired += result.stats.keysFetched + result.stats.keysPushed;
    if (!result.ok) {
      s.failed++;
      s.lastError = `${partition}/${peer}: ${result.code} ${result.message}`;
      this.#options.logger.debug({ partition, peer, code: result.code, reason: result.message }, 'exchange failed');
    } else if (result.stats.keysFetched + result.stats.keysPushed > 0) {
      this.#options.logger.debug({ partition, peer, fetched: result.stats.keysFetched, pushed: result.stats.keysPushed, bytes: result.stats.bytesSent + result.stats.bytesReceived }, 'anti-entropy repaired keys');
    }
  }

  /** Answers one ae-* rpc from `from` (anti-entropy-responder.ts); resolves with the reply body. */
  serve(from: string, body: unknown): Promise<unknown> {
    return this.#responder.serve(from, body);
  }

  /**
   * Each partition's Merkle root over this node's data now (read-only, for `GET /merkle`):
   * built from a fresh scan and not cached, so exchanges in flight keep their trees.
   */
  merkleRoots(partitions: readonly number[]): Promise<{ partition: number; root: string; keys: number }[]> {
    return this.#snapshots.roots(partitions);
  }
}

export function isAntiEntropyMessage(body: unknown): boolean {
  const t = (body as { t?: unknown } | null)?.t;
  return typeof t === 'string' && t.startsWith('ae-');
}
