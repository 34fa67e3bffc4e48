/**
 * Resync after a long outage (issue 5 §2, RELIABILITY.md C10): a node that was down longer
 * than the tombstone grace period holds arbitrarily stale data, so it refuses reads for its
 * partitions until each has completed a Merkle exchange with its up peer replicas. Owned by
 * the supervisor (main thread); the rule is in resync-tracker.ts, the outage test in
 * liveness.ts.
 *
 * - Liveness: at construction the ALIVE file decides whether this start resyncs; `start()`
 *   rewrites it (with `resyncing` while one is under way) and then every
 *   `livenessRefreshMs(graceMs)` (an unref'd timer); `close()` writes it a last time.
 * - Driving: while resyncing, rounds of exchanges (`exchange`: anti-entropy.ts, paced by its
 *   token bucket) run one at a time — every pending partition × every up peer replica not yet
 *   done — as soon as the ring names this node's partitions (polled every
 *   `resyncRingPollMs`); partitions whose peers were down or whose exchange failed are
 *   retried every `resyncRetryMs` until none is left. Exchanges started elsewhere (the
 *   schedule, `repair`, handoff catch-up) count too, through `onExchange`.
 * - Gating: `readable(key)` is false for a key of a pending partition; the coordinator driver
 *   then answers the local read and the replica side of `replica-read` with KV_UNAVAILABLE
 *   ('replica is resyncing'), so a coordinator counts this replica as failed and the read is
 *   served by the others. Writes, merges, hints and exchanges are accepted as usual: they only
 *   add newer data.
 *
 * The grace is the node's `tombstoneGraceMs`; while purging is off (Infinity) it is
 * `limits.tombstoneGraceMsDefault`, since stale reads do not depend on purging.
 */

import type { Clock } from '../base/clock.js';
import { partitionOfToken, tokenOf } from '../base/hash.js';
import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import type { ExchangeResult } from '../antientropy/index.js';
import { livenessRefreshMs, livenessVerdict, readLiveness, writeLiveness, type LivenessReason } from './liveness.js';
import { ResyncTracker, type ResyncPair } from './resync-tracker.js';

export interface ResyncOptions {
  readonly selfId: string;
  /** The node's data directory (holds ALIVE). */
  readonly dir: string;
  readonly partitionBits: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Outages longer than this make the node resync. */
  readonly graceMs: number;
  readonly myPartitions: () => readonly number[];
  readonly replicasOf: (partition: number) => readonly string[];
  readonly isUp: (id: string) => boolean;
  /** One Merkle exchange as the initiator (anti-entropy.ts `exchange`). */
  readonly exchange: (partition: number, peer: string) => Promise<ExchangeResult>;
  readonly retryMs?: number;
  readonly ringPollMs?: number;
}

export interface ResyncStatus {
  /** Reads are refused for some partitions. */
  active: boolean;
  /** Partitions of this node still refusing reads. */
  pendingPartitions: number;
  /** Why this start resynced or not (liveness.ts). */
  reason: LivenessReason;
}

export class Resync {
  readonly #o: ResyncOptions;
  readonly #tracker: ResyncTracker;
  readonly #reason: LivenessReason;
  #startedMs = 0;
  #exchanges = 0;
  #livenessTimer: NodeJS.Timeout | undefined;
  #waitTimer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(options: ResyncOptions) {
    this.#o = options;
    const verdict = livenessVerdict(readLiveness(options.dir), options.clock.wallMs(), options.graceMs);
    this.#reason = verdict.reason;
    this.#tracker = new ResyncTracker(verdict.resync);
    const log = options.logger;
    if (verdict.reason === 'clock-stepped-back') log.warn({ downMs: verdict.downMs }, 'last-alive time is in the future (clock stepped back?); not resyncing');
    if (verdict.resync) log.warn({ reason: verdict.reason, downMs: verdict.downMs, graceMs: options.graceMs }, 'resync: refusing reads until every partition has exchanged with its up replicas');
  }

  get active(): boolean {
    return this.#tracker.active;
  }

  /** Writes the liveness file, starts its refresh timer and, when resyncing, the exchanges. */
  start(): void {
    this.#startedMs = this.#o.clock.monotonicMs();
    this.#writeLiveness();
    this.#livenessTimer = setInterval(() => this.#writeLiveness(), livenessRefreshMs(this.#o.graceMs));
    this.#livenessTimer.unref();
    if (this.#tracker.active) this.#running = this.#run();
  }

  /** Whether this node may answer a read of `key` from its own store. */
  readable(key: Uint8Array): boolean {
    return !this.#tracker.active || this.readableToken(tokenOf(key));
  }

  /** readable, by the key's placement token (tokenOf). */
  readableToken(token: number): boolean {
    if (!this.#tracker.active) return true;
    return this.#tracker.servesReads(partitionOfToken(token, this.#o.partitionBits));
  }

  /** An exchange this node initiated ended (anti-entropy.ts `onExchange`). */
  onExchange(partition: number, peer: string, result: ExchangeResult): void {
    this.#tracker.recordExchange(partition, peer, result.ok && !result.partial);
  }

  status(): ResyncStatus {
    return { active: this.#tracker.active, pendingPartitions: this.#tracker.pendingAmong(this.#o.myPartitions()), reason: this.#reason };
  }

  /**
   * Stops the timer and the rounds (an exchange in flight ends with the node's rpcs, which
   * closing fails) and records this moment as the last one alive.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#livenessTimer !== undefined) clearInterval(this.#livenessTimer);
    if (this.#waitTimer !== undefined) clearTimeout(this.#waitTimer);
    this.#wake?.();
    this.#writeLiveness();
  }

  /** Resolves when the resync has ended (or at once when there is none); for tests and tools. */
  async settled(): Promise<void> {
    await this.#running;
  }

  async #run(): Promise<void> {
    const o = this.#o;
    const retryMs = o.retryMs ?? limits.resyncRetryMs;
    const pollMs = o.ringPollMs ?? limits.resyncRingPollMs;
    const loggedSkips = new Set<string>();
    while (!this.#closed) {
      const round = this.#tracker.round({ selfId: o.selfId, partitions: o.myPartitions(), replicasOf: o.replicasOf, isUp: o.isUp });
      if (!this.#tracker.active) {
        this.#finish();
        return;
      }
      this.#logSkips(round.skipped, loggedSkips);
      const complete = await this.#exchangeAll(round.work);
      if (round.work.length === 0 || !complete) await this.#sleep(this.#tracker.planned ? retryMs : pollMs);
    }
  }

  /** Runs `work` one exchange at a time; true when every one completed. */
  async #exchangeAll(work: readonly ResyncPair[]): Promise<boolean> {
    let complete = true;
    for (const { partition, peer } of work) {
      if (this.#closed) return false;
      this.#exchanges++;
      try {
        const result = await this.#o.exchange(partition, peer);
        this.onExchange(partition, peer, result);
        if (!result.ok || result.partial) complete = false;
      } catch (error) {
        complete = false;
        this.#o.logger.warn({ err: error, partition, peer }, 'resync exchange failed; retrying later');
      }
    }
    return complete;
  }

  #logSkips(skipped: readonly ResyncPair[], logged: Set<string>): void {
    const fresh = [...new Set(skipped.map((s) => s.peer))].filter((peer) => !logged.has(peer));
    if (fresh.length === 0) return;
    for (const peer of fresh) logged.add(peer);
    const partitions = new Set(skipped.map((s) => s.partition)).size;
    this.#o.logger.warn({ peers: fresh, partitions }, 'resync: peer replicas down, skipped while they stay down');
  }

  #finish(): void {
    const durationMs = Math.round(this.#o.clock.monotonicMs() - this.#startedMs);
    this.#o.logger.warn({ durationMs, exchanges: this.#exchanges }, 'resync complete: serving reads for every partition');
    this.#writeLiveness();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      // Referenced (unlike the liveness timer): a resync in progress is work; close() clears it.
      this.#waitTimer = setTimeout(resolve, ms);
    });
  }

  #writeLiveness(): void {
    try {
      writeLiveness(this.#o.dir, { aliveAtMs: this.#o.clock.wallMs(), resyncing: this.#tracker.active });
    } catch (error) {
      // The next refresh tries again; a stale file only makes a later restart resync sooner.
      this.#o.logger.warn({ err: error, dir: this.#o.dir }, 'could not record the last-alive time');
    }
  }
}
