/**
 * One node's view of the cluster: every member's newest record, whether it is alive here, and
 * when left members' tombstones expire. Owned by one Gossip instance (supervisor main thread);
 * pure state, time passed in as monotonic `nowMs`.
 *
 * Invariants:
 *  - Our own record is advanced only by us (`bumpHeartbeat`, `updateSelf`). A copy of it that
 *    would win a merge against us (a previous incarnation we forgot, or a forgery) is refuted
 *    by moving to a generation above it, as SWIM refutes suspicion with an incarnation number.
 *  - Others' records change only by `mergeMemberState` with a validated copy: an older
 *    generation is ignored; a generation jump above `generationJumpMax`, or a status going
 *    back within a generation, is rejected (B11).
 *  - Down is a local decision: a member goes down only when the detector convicts its silence
 *    here, never because a peer said so (no message can say so). A member comes up when its
 *    heartbeat advances, by any route. A member first seen, or seen under a new generation,
 *    starts its silence clock but is not up until its heartbeat advances once more, so a
 *    long-dead member relayed by a stale peer is never reported up.
 *  - Left members are tombstones: never alive, never convicted, forgotten after
 *    `leftMemberRetentionMs`. An unknown member that arrives already left is not admitted, so
 *    an expired tombstone is not resurrected by stale gossip. (A peer that was cut off for the
 *    whole retention and still holds the member as normal can bring it back, as a down member.)
 *  - At most `membersMax` members, self and tombstones included; when full, the oldest
 *    tombstone makes room, else the newcomer is rejected.
 */

import { assert } from '../base/assert.js';
import { limits } from '../base/limits.js';
import {
  compareVersion,
  createMemberState,
  mergeMemberState,
  sameDescription,
  statusRank,
  type MemberState,
} from './member-state.js';
import type { PhiAccrualDetector } from './phi-accrual-detector.js';

export type MembershipEvent =
  | { readonly type: 'member-joined'; readonly id: string; readonly member: MemberState }
  | { readonly type: 'member-updated'; readonly id: string; readonly member: MemberState; readonly previous: MemberState }
  | { readonly type: 'member-up'; readonly id: string }
  | { readonly type: 'member-down'; readonly id: string; readonly phi: number }
  | { readonly type: 'member-left'; readonly id: string; readonly member: MemberState }
  | { readonly type: 'member-removed'; readonly id: string }
  /** Our generation moved past a claimed one: persist it before the next start. */
  | { readonly type: 'self-generation-changed'; readonly generation: number };

/** What merging one copy did; the last two are rejections worth a warning. */
export type ApplyOutcome = 'changed' | 'unchanged' | 'stale' | 'generation-jump' | 'status-regression' | 'members-full';

/** Outcomes that mean a peer sent something no honest peer sends, or that we could not hold. */
export function isRejection(outcome: ApplyOutcome): boolean {
  return outcome === 'generation-jump' || outcome === 'status-regression' || outcome === 'members-full';
}

export interface MemberTableConfig {
  readonly membersMax: number;
  readonly generationJumpMax: number;
  readonly leftMemberRetentionMs: number;
}

/** The fields of its own record a node may change while running. */
export type SelfChanges = Partial<Pick<MemberState, 'status' | 'address' | 'weight' | 'dc' | 'rack'>>;

interface MemberRecord {
  state: MemberState;
  alive: boolean;
  /** Set while the member is left: when its tombstone is forgotten. */
  expiresAtMs: number | undefined;
}

export class MemberTable {
  readonly #records = new Map<string, MemberRecord>();
  readonly #detector: PhiAccrualDetector;
  readonly #config: MemberTableConfig;
  #self: MemberState;

  constructor(self: MemberState, detector: PhiAccrualDetector, config: MemberTableConfig) {
    assert(config.membersMax >= 1, 'membersMax must be positive');
    this.#self = self;
    this.#detector = detector;
    this.#config = config;
  }

  get self(): MemberState {
    return this.#self;
  }

  /** Members known, self and tombstones included. */
  get size(): number {
    return this.#records.size + 1;
  }

  get(id: string): MemberState | undefined {
    return id === this.#self.id ? this.#self : this.#records.get(id)?.state;
  }

  isAlive(id: string): boolean {
    if (id === this.#self.id) return this.#self.status !== 'left';
    return this.#records.get(id)?.alive ?? false;
  }

  /** Every record, self first. */
  all(): MemberState[] {
    const out = [this.#self];
    for (const record of this.#records.values()) out.push(record.state);
    return out;
  }

  /** Other members with their local liveness. */
  *others(): IterableIterator<{ readonly state: MemberState; readonly alive: boolean }> {
    for (const record of this.#records.values()) yield { state: record.state, alive: record.alive };
  }

  bumpHeartbeat(): void {
    assert(this.#self.heartbeat < limits.heartbeatMax, 'heartbeat exhausted');
    this.#self = { ...this.#self, heartbeat: this.#self.heartbeat + 1 };
  }

  /** Changes our own record; its new statusVersion travels with the next heartbeat. */
  updateSelf(changes: SelfChanges, events: MembershipEvent[]): void {
    const previous = this.#self;
    const status = changes.status ?? previous.status;
    if (statusRank(status) < statusRank(previous.status)) {
      throw new RangeError(`status cannot go from ${previous.status} back to ${status}`);
    }
    assert(previous.heartbeat < limits.heartbeatMax, 'heartbeat exhausted');
    const heartbeat = previous.heartbeat + 1;
    this.#self = createMemberState({ ...previous, ...changes, id: previous.id, heartbeat, statusVersion: heartbeat });
    events.push({ type: 'member-updated', id: previous.id, member: this.#self, previous });
    if (status === 'left' && previous.status !== 'left') events.push({ type: 'member-left', id: previous.id, member: this.#self });
  }

  /** Merges one validated copy received from a peer. */
  apply(entry: MemberState, nowMs: number, events: MembershipEvent[]): ApplyOutcome {
    if (entry.id === this.#self.id) return this.#refute(entry, events);
    const record = this.#records.get(entry.id);
    if (record === undefined) return this.#admit(entry, nowMs, events);
    const local = record.state;
    if (entry.generation < local.generation) return 'stale';
    if (entry.generation > local.generation) {
      if (entry.generation - local.generation > this.#config.generationJumpMax) return 'generation-jump';
      this.#replaceIncarnation(record, entry, nowMs, events);
      return 'changed';
    }
    const merged = mergeMemberState(local, entry);
    const advanced = merged.heartbeat > local.heartbeat;
    const described = merged.statusVersion > local.statusVersion || !sameDescription(merged, local);
    if (!advanced && !described) return compareVersion(entry, local) < 0 ? 'stale' : 'unchanged';
    // Owners only move status forward within a generation; going back is a forgery.
    if (statusRank(merged.status) < statusRank(local.status)) return 'status-regression';
    record.state = merged;
    if (described) events.push({ type: 'member-updated', id: merged.id, member: merged, previous: local });
    if (merged.status === 'left') {
      if (local.status !== 'left') this.#markLeft(record, nowMs, events);
      return 'changed';
    }
    if (advanced) this.#arrived(record, nowMs, events);
    return 'changed';
  }

  /**
   * Convicts silent members and forgets expired tombstones. Runs once per gossip interval,
   * after the detector has seen our own tick (so our own pauses are already forgiven).
   */
  checkLiveness(nowMs: number, events: MembershipEvent[]): void {
    for (const [id, record] of this.#records) {
      if (record.state.status === 'left') {
        if (record.expiresAtMs !== undefined && record.expiresAtMs <= nowMs) {
          this.#records.delete(id);
          events.push({ type: 'member-removed', id });
        }
      } else if (record.alive && this.#detector.isConvictable(id, nowMs)) {
        record.alive = false;
        events.push({ type: 'member-down', id, phi: this.#detector.phi(id, nowMs) });
      }
    }
  }

  #arrived(record: MemberRecord, nowMs: number, events: MembershipEvent[]): void {
    this.#detector.report(record.state.id, nowMs);
    if (record.alive) return;
    record.alive = true;
    events.push({ type: 'member-up', id: record.state.id });
  }

  #markLeft(record: MemberRecord, nowMs: number, events: MembershipEvent[]): void {
    record.alive = false;
    record.expiresAtMs = nowMs + this.#config.leftMemberRetentionMs;
    this.#detector.remove(record.state.id);
    events.push({ type: 'member-left', id: record.state.id, member: record.state });
  }

  #replaceIncarnation(record: MemberRecord, entry: MemberState, nowMs: number, events: MembershipEvent[]): void {
    const previous = record.state;
    record.state = entry;
    events.push({ type: 'member-updated', id: entry.id, member: entry, previous });
    if (entry.status === 'left') {
      if (previous.status !== 'left') this.#markLeft(record, nowMs, events);
      return;
    }
    record.expiresAtMs = undefined;
    this.#detector.restart(entry.id, nowMs);
  }

  #admit(entry: MemberState, nowMs: number, events: MembershipEvent[]): ApplyOutcome {
    if (entry.status === 'left') return 'unchanged';
    if (this.size >= this.#config.membersMax && !this.#evictOldestTombstone(events)) return 'members-full';
    this.#records.set(entry.id, { state: entry, alive: false, expiresAtMs: undefined });
    this.#detector.restart(entry.id, nowMs);
    events.push({ type: 'member-joined', id: entry.id, member: entry });
    return 'changed';
  }

  #evictOldestTombstone(events: MembershipEvent[]): boolean {
    let oldest: MemberRecord | undefined;
    for (const record of this.#records.values()) {
      if (record.expiresAtMs !== undefined && (oldest === undefined || record.expiresAtMs < oldest.expiresAtMs!)) oldest = record;
    }
    if (oldest === undefined) return false;
    this.#records.delete(oldest.state.id);
    events.push({ type: 'member-removed', id: oldest.state.id });
    return true;
  }

  /** A copy of our own record that would win a merge against us: move past it. */
  #refute(claim: MemberState, events: MembershipEvent[]): ApplyOutcome {
    const self = this.#self;
    const order = compareVersion(claim, self);
    const forgedDescription =
      claim.generation === self.generation &&
      (claim.statusVersion > self.statusVersion || (claim.statusVersion === self.statusVersion && !sameDescription(claim, self)));
    if (order < 0 && !forgedDescription) return 'stale';
    if (order === 0 && !forgedDescription) return 'unchanged';
    if (claim.generation - self.generation > this.#config.generationJumpMax) return 'generation-jump';
    const generation = Math.max(claim.generation, self.generation) + 1;
    if (generation > limits.generationMax) return 'generation-jump';
    this.#self = { ...self, generation, heartbeat: 0, statusVersion: 0 };
    events.push({ type: 'self-generation-changed', generation });
    return 'changed';
  }
}
