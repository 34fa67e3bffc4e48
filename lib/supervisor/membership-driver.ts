/**
 * Drives the pure gossip state machine (lib/membership) with real time and the peer network,
 * and keeps the ring (lib/ring) computed from what gossip knows. Owned by the supervisor
 * (main thread); never blocks.
 *
 * Every `intervalMs`: `gossip.tick(monotonic now)`, perform its actions — `send` goes out as
 * `{t:'gossip', from: <our address>, msg}` on our dialer to the target address; membership
 * events are logged and recompute the ring; `self-generation-changed` is persisted before the
 * next tick. Peer messages arrive through `receive`.
 *
 * Joining: a node starts `joining` (or `normal` at once when it has no seed but itself: the
 * first node of a cluster). With an `onJoinable` hook (handoff.ts) the driver calls it every
 * round while we are joining and have met a live member and a ring exists; the hook streams
 * our partitions and turns us `normal`. Without it we turn `normal` as soon as we meet a live
 * member (no data streamed).
 *
 * Removals (`ringkv removenode`): gossip carries only a member's own record, so a dead member
 * cannot be marked left by others. `removeMember(id, generation)` records that incarnation as
 * removed: it is left out of the ring and shown `left` by `members()`; a later generation of
 * the same id (the node restarted) is a member again.
 *
 * The ring: members that are not `left` nor removed (down members stay owners: Dynamo treats failures as
 * temporary; the coordinator routes around them), computed by `computeRing` with the
 * cluster's partitionBits and replication. `version` changes only when placement changes.
 */

import { limits } from '../base/limits.js';
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import type { Rng } from '../base/rng.js';
import { Gossip, type GossipAction, type MemberState } from '../membership/index.js';
import { computeRing, type MemberInput, type Replication, type Ring } from '../ring/index.js';

export interface MembershipDriverOptions {
  readonly gossip: Gossip;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly logger: Logger;
  readonly partitionBits: number;
  readonly replication: Replication;
  /** Whether any seed other than ourselves was given. */
  readonly hasSeeds: boolean;
  readonly send: (address: string, message: { t: 'gossip'; from: string; msg: unknown }) => void;
  readonly persistGeneration: (generation: number) => void;
  /** The ring's placement changed, or a member went up or down. */
  readonly onChange: () => void;
  /** A member left or was forgotten: stop dialing its address. */
  readonly onForget: (address: string) => void;
  /** Called each round while we are joining and could join (see the header). */
  readonly onJoinable?: () => void;
}

export class MembershipDriver {
  readonly gossip: Gossip;
  readonly #options: MembershipDriverOptions;
  #ring: Ring | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastRejectLogMs = Number.NEGATIVE_INFINITY;
  /** Removed incarnations: id → highest removed generation. */
  readonly #removed = new Map<string, number>();
  /** Ids this node has seen own partitions (normal or leaving), for `handoff-hello`. */
  readonly #owners = new Set<string>();

  constructor(options: MembershipDriverOptions) {
    this.#options = options;
    this.gossip = options.gossip;
    if (!options.hasSeeds) this.#perform(this.gossip.updateSelf({ status: 'normal' }));
    this.#ring = this.#computeRing();
  }

  /** Undefined while no member owns partitions (a joining node that has met nobody yet). */
  get ring(): Ring | undefined {
    return this.#ring;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.tick(), this.gossip.config.intervalMs);
    this.#timer.unref();
    this.tick();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One gossip round (also called by tests). */
  tick(): void {
    this.#perform(this.gossip.tick(this.#options.clock.monotonicMs(), this.#options.rng));
    if (this.gossip.self.status !== 'joining' || this.gossip.liveMembers().length <= 1) return;
    if (this.#options.onJoinable !== undefined) {
      if (this.#ring !== undefined) this.#options.onJoinable();
    } else {
      this.#options.logger.info({ members: this.gossip.liveMembers().length }, 'joined the cluster; now normal');
      this.#perform(this.gossip.updateSelf({ status: 'normal' }));
    }
  }

  /** A `gossip` message from the peer at `from` (its advertised address). */
  receive(from: string, message: unknown): void {
    this.#perform(this.gossip.receive(from, message, this.#options.clock.monotonicMs()));
  }

  /** Gossip's members, with removed incarnations shown `left`. */
  members(): MemberState[] {
    return this.gossip.members().map((m) => (this.#isRemoved(m) ? { ...m, status: 'left' as const } : m));
  }

  /** Whether this node ever saw `id` own partitions. */
  wasOwner(id: string): boolean {
    return this.#owners.has(id);
  }

  removals(): { id: string; generation: number }[] {
    return [...this.#removed].map(([id, generation]) => ({ id, generation }));
  }

  /** Records `id` at `generation` (and below) as removed; the rings before and after, or undefined if known. */
  removeMember(id: string, generation: number): { before: Ring | undefined; after: Ring | undefined } | undefined {
    if (id === this.gossip.self.id || (this.#removed.get(id) ?? 0) >= generation) return undefined;
    if (this.#removed.size >= limits.membersMax && !this.#removed.has(id)) return undefined;
    const before = this.#ring;
    this.#removed.set(id, generation);
    const address = this.gossip.member(id)?.address;
    if (address !== undefined && this.gossip.member(id)!.generation <= generation) this.#options.onForget(address);
    this.#ring = this.#computeRing();
    this.#options.logger.info({ member: id, generation }, 'member removed');
    this.#options.onChange();
    return { before, after: this.#ring };
  }

  #isRemoved(m: MemberState): boolean {
    return (this.#removed.get(m.id) ?? 0) >= m.generation;
  }

  /** Marks ourselves `leaving`/`left` etc. */
  updateSelf(status: MemberState['status']): void {
    this.#perform(this.gossip.updateSelf({ status }));
  }

  isUp(id: string): boolean {
    return id === this.gossip.self.id || this.gossip.isAlive(id);
  }

  addressOf(id: string): string | undefined {
    return this.gossip.member(id)?.address;
  }

  #perform(actions: readonly GossipAction[]): void {
    let changed = false;
    const log = this.#options.logger;
    for (const action of actions) {
      switch (action.type) {
        case 'send':
          this.#options.send(action.to, { t: 'gossip', from: this.gossip.self.address, msg: action.message });
          break;
        case 'rejected': {
          const nowMs = this.#options.clock.monotonicMs();
          if (nowMs - this.#lastRejectLogMs > limits.gossipIntervalMs) log.warn({ from: action.from, reason: action.reason }, 'gossip rejected');
          this.#lastRejectLogMs = nowMs;
          break;
        }
        case 'lagging':
          log.warn({ pauseMs: Math.round(action.pauseMs) }, 'this node paused; holding off failure convictions');
          break;
        case 'self-generation-changed':
          this.#options.persistGeneration(action.generation);
          break;
        case 'member-joined':
          log.info({ member: action.id, address: action.member.address }, 'member joined');
          changed = true;
          break;
        case 'member-updated':
          if (action.member.status !== action.previous.status) log.info({ member: action.id, status: action.member.status }, 'member status');
          changed = true;
          break;
        case 'member-up':
          log.info({ member: action.id }, 'member up');
          changed = true;
          break;
        case 'member-down':
          log.warn({ member: action.id, phi: Math.round(action.phi * 10) / 10 }, 'member down');
          changed = true;
          break;
        case 'member-left':
          log.info({ member: action.id }, 'member left');
          this.#options.onForget(action.member.address);
          changed = true;
          break;
        case 'member-removed':
          changed = true;
          break;
      }
    }
    if (changed) {
      this.#ring = this.#computeRing();
      this.#options.onChange();
    }
  }

  #computeRing(): Ring | undefined {
    const members: MemberInput[] = this.members()
      .filter((m) => m.status !== 'left')
      .map((m) => ({ id: m.id, weight: m.weight, dc: m.dc, rack: m.rack, status: m.status }));
    for (const m of members) if ((m.status === 'normal' || m.status === 'leaving') && this.#owners.size < limits.membersMax) this.#owners.add(m.id);
    if (!members.some((m) => m.status === 'normal' || m.status === 'leaving')) return undefined;
    return computeRing(members, { partitionBits: this.#options.partitionBits, replication: this.#options.replication });
  }
}
