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
 * Joining: a node starts `joining` and turns itself `normal` once gossip has shown it another
 * live member (or at once when it has no seed but itself: the first node of a cluster).
 * Streaming the data of the partitions it takes over comes with the handoff issue; until
 * then read repair and the quorum of the other replicas serve those keys.
 *
 * The ring: members that are not `left` (down members stay owners: Dynamo treats failures as
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
}

export class MembershipDriver {
  readonly gossip: Gossip;
  readonly #options: MembershipDriverOptions;
  #ring: Ring | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastRejectLogMs = Number.NEGATIVE_INFINITY;

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
    if (this.gossip.self.status === 'joining' && this.gossip.liveMembers().length > 1) {
      this.#options.logger.info({ members: this.gossip.liveMembers().length }, 'joined the cluster; now normal');
      this.#perform(this.gossip.updateSelf({ status: 'normal' }));
    }
  }

  /** A `gossip` message from the peer at `from` (its advertised address). */
  receive(from: string, message: unknown): void {
    this.#perform(this.gossip.receive(from, message, this.#options.clock.monotonicMs()));
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
    const members: MemberInput[] = this.gossip
      .members()
      .filter((m) => m.status !== 'left')
      .map((m) => ({ id: m.id, weight: m.weight, dc: m.dc, rack: m.rack, status: m.status }));
    if (!members.some((m) => m.status === 'normal' || m.status === 'leaving')) return undefined;
    return computeRing(members, { partitionBits: this.#options.partitionBits, replication: this.#options.replication });
  }
}
