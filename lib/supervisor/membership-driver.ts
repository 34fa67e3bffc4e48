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
 * Founding (issue 10, the Cassandra/Kubernetes seed convention): a node whose own address is in
 * its seed list (`founder`) may found the cluster. While no member owns partitions it waits
 * until it has met every other seed, or `foundingWaitMs` passed, then turns `normal` without
 * streaming (there is no data yet). A founder that sees an owner first joins it like anyone.
 * Until every seed it has met has turned `normal` too (or the wait passed again), a founder
 * that founded answers `founding()` true and the supervisor refuses client requests: a write
 * taken on a ring that is about to grow could land on a node that ends up owning none of its
 * partitions. Seeds that come later see a ring and join by streaming, which moves their data.
 *
 * Restarts (lifecycle/membership-file.ts): `restore(view)` loads the members and removals a
 * previous run persisted (the supervisor starts an owner `normal`), and `persist` is called
 * with the view whenever it changes. `quiet` holds gossip (no rounds, incoming gossip ignored)
 * until `release()`: the start check runs first (lifecycle/start-check.ts).
 *
 * Removals (`ringkv removenode`): gossip carries only a member's own record, so a dead member
 * cannot be marked left by others. `removeMember(id, generation)` records the id as removed:
 * every incarnation of it is left out of the ring and shown `left` by `members()` (a removed
 * node that restarts with its old data is refused by the start check; a wiped one starts
 * under a new id).
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
import type { MembershipView } from './lifecycle/membership-file.js';
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
  /** Called each round while we are `replacing`, a ring exists and a peer is up (handoff.ts). */
  readonly onReplaceable?: () => void;
  /** Our address is in our seed list: we may found the cluster (see the header). */
  readonly founder?: boolean;
  /** The other seeds' addresses (what a founder waits to meet). */
  readonly seeds?: readonly string[];
  /** How long a founder waits for the other seeds; default limits.foundingWaitMs. */
  readonly foundingWaitMs?: number;
  /** Hold gossip until `release()` (the start check runs first). */
  readonly quiet?: boolean;
  /** The view changed (members' descriptions, our status, removals): persist it. */
  readonly persist?: (view: MembershipView) => void;
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
  #quiet: boolean;
  readonly #startedMs: number;
  /** When we founded the cluster (turned normal with no owner known), for the founding gate. */
  #foundedMs: number | undefined;

  constructor(options: MembershipDriverOptions) {
    this.#options = options;
    this.gossip = options.gossip;
    this.#quiet = options.quiet === true;
    this.#startedMs = options.clock.monotonicMs();
    if (!options.hasSeeds && this.gossip.self.status === 'joining') this.#perform(this.gossip.updateSelf({ status: 'normal' }));
    this.#ring = this.#computeRing();
    this.#persist();
  }

  /** Loads what a previous run persisted: its members (down until heard from) and removals. */
  restore(view: MembershipView): void {
    for (const { id, generation } of view.removals) if (id !== this.gossip.self.id) this.#removed.set(id, generation);
    this.#perform(this.gossip.preload(view.members, this.#options.clock.monotonicMs()));
    this.#ring = this.#computeRing();
  }

  /** Ends the quiet start: gossip rounds begin (at once when already started). */
  release(): void {
    if (!this.#quiet) return;
    this.#quiet = false;
    this.#persist();
    if (this.#timer !== undefined) this.tick();
  }

  /**
   * Whether we founded the cluster moments ago and a seed we met has not turned normal yet
   * (the supervisor refuses client requests meanwhile; see the header).
   */
  founding(): boolean {
    if (this.#foundedMs === undefined) return false;
    if (this.#options.clock.monotonicMs() - this.#foundedMs >= this.#foundingWaitMs()) {
      this.#foundedMs = undefined;
      return false;
    }
    const seeds = new Set(this.#options.seeds ?? []);
    const pending = this.gossip.liveMembers().some((m) => seeds.has(m.address) && m.status === 'joining');
    if (!pending) this.#foundedMs = undefined;
    return pending;
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
    if (this.#quiet) return;
    this.#perform(this.gossip.tick(this.#options.clock.monotonicMs(), this.#options.rng));
    const status = this.gossip.self.status;
    if (status === 'replacing' && this.#ring !== undefined && this.gossip.liveMembers().length > 1) this.#options.onReplaceable?.();
    if (status !== 'joining') return;
    if (this.#ring === undefined && this.#options.founder === true) return this.#maybeFound();
    if (this.gossip.liveMembers().length <= 1) return;
    if (this.#options.onJoinable !== undefined) {
      if (this.#ring !== undefined) this.#options.onJoinable();
    } else {
      this.#options.logger.info({ members: this.gossip.liveMembers().length }, 'joined the cluster; now normal');
      this.#perform(this.gossip.updateSelf({ status: 'normal' }));
    }
  }

  #foundingWaitMs(): number {
    return this.#options.foundingWaitMs ?? limits.foundingWaitMs;
  }

  /** A founder with no owner in sight: found once every other seed is met, or the wait ran out. */
  #maybeFound(): void {
    const met = new Set(this.gossip.liveMembers().map((m) => m.address));
    const missing = (this.#options.seeds ?? []).filter((seed) => !met.has(seed));
    const waitedMs = this.#options.clock.monotonicMs() - this.#startedMs;
    if (missing.length > 0 && waitedMs < this.#foundingWaitMs()) return;
    this.#options.logger.info({ members: met.size, missing }, missing.length === 0 ? 'founding the cluster with every seed' : 'founding the cluster without the seeds not met');
    this.#foundedMs = this.#options.clock.monotonicMs();
    this.#perform(this.gossip.updateSelf({ status: 'normal' }));
  }

  /** A `gossip` message from the peer at `from` (its advertised address). */
  receive(from: string, message: unknown): void {
    if (this.#quiet) return;
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
    if (id === this.gossip.self.id || this.#removed.has(id)) return undefined;
    if (this.#removed.size >= limits.membersMax && !this.#removed.has(id)) return undefined;
    const before = this.#ring;
    this.#removed.set(id, generation);
    const address = this.gossip.member(id)?.address;
    if (address !== undefined) this.#options.onForget(address);
    this.#ring = this.#computeRing();
    this.#persist();
    this.#options.logger.info({ member: id, generation }, 'member removed');
    this.#options.onChange();
    return { before, after: this.#ring };
  }

  #isRemoved(m: MemberState): boolean {
    return this.#removed.has(m.id);
  }

  #persist(): void {
    if (this.#quiet) return; // a start the start check refuses leaves nothing behind
    this.#options.persist?.({ self: this.gossip.self.status, members: this.members(), removals: this.removals() });
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
      this.#persist();
      this.#options.onChange();
    }
  }

  #computeRing(): Ring | undefined {
    const members: MemberInput[] = this.members()
      .filter((m) => m.status !== 'left')
      .map((m) => ({ id: m.id, weight: m.weight, dc: m.dc, rack: m.rack, status: m.status }));
    const owns = (m: MemberInput): boolean => m.status === 'normal' || m.status === 'leaving' || m.status === 'replacing';
    for (const m of members) if (owns(m) && this.#owners.size < limits.membersMax) this.#owners.add(m.id);
    if (!members.some(owns)) return undefined;
    return computeRing(members, { partitionBits: this.#options.partitionBits, replication: this.#options.replication });
  }
}
