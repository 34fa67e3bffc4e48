/**
 * Runs a node's scheduled anti-entropy (lib/antientropy/sweep-schedule.ts): dirty partitions of
 * a returning peer first, back to back `limits.antiEntropyDirtyGapMs` apart, and otherwise one
 * sweep exchange every `schedule.intervalMs` (sweep period / pairs, capped by the configured
 * interval). Owned by the supervisor (main thread): timers here, exchanges through `run`
 * (anti-entropy.ts), whose traffic its token bucket paces.
 *
 * Dirty marks survive restarts: they are kept in `<dir>/AE_DIRTY` (JSON, written atomically at
 * most every `limits.antiEntropyDirtySaveIntervalMs` after a change, and at close), so a
 * coordinator restarted during a peer's outage still exchanges what that peer missed. A crash
 * can lose the last interval's marks; the hints of those writes are durable regardless, and
 * the sweep covers everything within its period.
 */

import type { Clock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import { SweepSchedule, type SweepPick, type SweepStats } from '../antientropy/index.js';
import { readJsonFile, writeJsonFileAtomically } from '../storage/json-file.js';

const dirtyFile = 'AE_DIRTY';
const dirtyFormat = 'ringkv-ae-dirty';
/** Frozen. */
const dirtyFormatVersion = 1;

export interface AntiEntropySchedulerOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sweepPeriodMs: number;
  readonly intervalMsMax: number;
  readonly myPartitions: () => readonly number[];
  /** The up peer replicas of a partition. */
  readonly peersOf: (partition: number) => readonly string[];
  /** Runs one exchange: true when it completed, false when it did not, undefined when it could not run (busy). */
  readonly run: (pick: SweepPick) => Promise<boolean | undefined>;
  /** Where AE_DIRTY lives; without it dirty marks are kept in memory only. */
  readonly dir?: string;
  /** Whether a peer is still a member (not removed); the dirty marks of others are dropped. Default: all are. */
  readonly isMember?: (peer: string) => boolean;
}

export class AntiEntropyScheduler {
  readonly #options: AntiEntropySchedulerOptions;
  readonly #schedule: SweepSchedule;
  #timer: NodeJS.Timeout | undefined;
  #timerAtMs = Infinity;
  #saveTimer: NodeJS.Timeout | undefined;
  #nextSweepAtMs = 0;
  #running = false;
  #closed = true;
  #stopped = false;

  constructor(options: AntiEntropySchedulerOptions) {
    this.#options = options;
    this.#schedule = new SweepSchedule({ sweepPeriodMs: options.sweepPeriodMs, intervalMsMax: options.intervalMsMax, nowMs: options.clock.monotonicMs() });
    this.#load();
  }

  #load(): void {
    const { dir, logger } = this.#options;
    if (dir === undefined) return;
    try {
      const record = readJsonFile(dir, dirtyFile, dirtyFormat, dirtyFormatVersion);
      const peers = (record?.peers ?? {}) as Record<string, unknown>;
      for (const [peer, partitions] of Object.entries(peers)) {
        if (!Array.isArray(partitions)) continue;
        for (const p of partitions) if (Number.isInteger(p) && (p as number) >= 0) this.#schedule.markDirty(p as number, peer);
      }
    } catch (error) {
      // Marks are an optimization over the sweep: a bad file costs time, never data.
      logger.warn({ err: error, dir }, 'dirty-partition file unreadable; the sweep will cover it');
    }
  }

  start(): void {
    this.#closed = false;
    this.#nextSweepAtMs = this.#options.clock.monotonicMs() + this.#options.intervalMsMax;
    this.#arm(this.#schedule.stats().dirty > 0 ? limits.antiEntropyDirtyGapMs : this.#options.intervalMsMax);
  }

  close(): void {
    this.#closed = true;
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#saveTimer !== undefined) {
      clearTimeout(this.#saveTimer);
      this.#saveTimer = undefined;
      this.#save();
    }
  }

  markDirty(partition: number, peer: string): void {
    if (!this.#schedule.markDirty(partition, peer)) return;
    this.#scheduleSave();
    // Look for the peer's return within the poll, however far the next sweep exchange is.
    const pollAtMs = this.#options.clock.monotonicMs() + limits.hintDeliveryIntervalMs;
    if (!this.#running && this.#timerAtMs > pollAtMs) this.#arm(limits.hintDeliveryIntervalMs);
  }

  onExchanged(partition: number, peer: string, complete: boolean): void {
    if (complete && this.#schedule.isDirty(partition, peer)) {
      this.#schedule.onExchanged(partition, peer, true);
      this.#scheduleSave();
    }
  }

  stats(): SweepStats {
    return this.#schedule.stats();
  }

  dirtyEntries(): [string, number[]][] {
    return this.#schedule.dirtyEntries();
  }

  #arm(delayMs: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timerAtMs = this.#options.clock.monotonicMs() + Math.max(0, delayMs);
    this.#timer = setTimeout(() => void this.#tick(), Math.max(0, delayMs));
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    if (this.#closed || this.#running) return;
    const { clock, myPartitions, peersOf, run } = this.#options;
    this.#running = true;
    let ranDirty = false;
    try {
      const partitions = myPartitions();
      // A removed peer never returns for its marks: they go (and the file with them).
      if (this.#options.isMember !== undefined && this.#schedule.forgetPeers(this.#options.isMember)) this.#scheduleSave();
      const dirty = this.#schedule.nextDirty(partitions, peersOf);
      if (dirty !== undefined) {
        // A failing dirty pair (the peer flaps) waits for the poll instead of looping.
        ranDirty = (await run(dirty)) === true;
        if (ranDirty) this.onExchanged(dirty.partition, dirty.peer, true);
      } else if (clock.monotonicMs() >= this.#nextSweepAtMs) {
        const pick = this.#schedule.nextSweep(partitions, peersOf, clock.monotonicMs());
        this.#nextSweepAtMs = clock.monotonicMs() + this.#schedule.intervalMs;
        if (pick !== undefined) await run(pick);
      }
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'scheduled anti-entropy exchange failed');
    } finally {
      this.#running = false;
    }
    const nowMs = clock.monotonicMs();
    const untilSweepMs = this.#nextSweepAtMs - nowMs;
    // While marks wait for their peer, look again soon so a returning peer is served at once.
    const pollMs = this.#schedule.stats().dirty > 0 ? limits.hintDeliveryIntervalMs : Infinity;
    this.#arm(ranDirty ? limits.antiEntropyDirtyGapMs : Math.min(untilSweepMs, pollMs));
  }

  #scheduleSave(): void {
    if (this.#options.dir === undefined || this.#saveTimer !== undefined || this.#stopped) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      this.#save();
    }, limits.antiEntropyDirtySaveIntervalMs);
    this.#saveTimer.unref();
  }

  #save(): void {
    const dir = this.#options.dir!;
    try {
      writeJsonFileAtomically(dir, dirtyFile, { format: dirtyFormat, formatVersion: dirtyFormatVersion, peers: Object.fromEntries(this.#schedule.dirtyEntries()) });
    } catch (error) {
      this.#options.logger.warn({ err: error, dir }, 'could not save the dirty-partition file');
    }
  }
}
