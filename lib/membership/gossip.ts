/**
 * Gossip membership: the sans-IO state machine of one node. State in, actions out; the
 * supervisor (layer 5) calls `tick` every `intervalMs` with monotonic time and an Rng, hands
 * every decoded peer message to `receive`, performs the `send` actions over /peer WebSockets
 * and acts on the membership events. Owned by the supervisor's main thread; never blocks.
 *
 * Follows Cassandra's Gossiper (itself after van Renesse, Minsky, Hayden, "A Gossip-Style
 * Failure Detection Service", 1998): each interval a node bumps its own heartbeat, starts a
 * SYN/ACK/ACK2 exchange (gossip-message.ts) with up to `fanout` random live peers, with
 * probability unreachable/(live+1) also with one unreachable member (so recoveries are seen),
 * and with a seed when it has none live, when it has fewer live peers than seeds, or else with
 * probability seeds/(known members) when no seed was picked (so partitions heal through the
 * seeds). Newer (generation, heartbeat) wins (member-state.ts).
 *
 * Liveness is decided locally (member-table.ts): a member is up while its heartbeat keeps
 * advancing here and down once the phi accrual detector convicts its silence; no peer can
 * report another down. Our own pauses are forgiven (phi-accrual-detector.ts), and `tick`
 * reports them as a `lagging` action so the supervisor can log them.
 *
 * Hostile input (B11): `receive` takes the decoded message as `unknown`, validates it fully
 * and never throws for anything a peer can send; a rejected message or entry yields a
 * `rejected` action (for a WARN log) and a counter in `stats()`. Every reply is bounded by
 * `entriesMax` entries and `entriesMax` requests.
 *
 * Cost: one exchange carries one digest per known member (about 40 bytes each) plus the
 * records that differ, so a round costs O(fanout · members) bytes per node; convergence takes
 * O(log n) rounds.
 */

import { assert, assertNever } from '../base/assert.js';
import { limits } from '../base/limits.js';
import type { Rng } from '../base/rng.js';
import { parseGossipMessage, type GossipAck, type GossipDigest, type GossipMessage, type GossipSyn } from './gossip-message.js';
import { compareVersion, createMemberState, type MemberState, type MemberStatus } from './member-state.js';
import { isRejection, MemberTable, type MembershipEvent, type SelfChanges } from './member-table.js';
import { PhiAccrualDetector } from './phi-accrual-detector.js';

assert(limits.membersMax <= limits.gossipEntriesMax, 'a digest of every member must fit in one message');

export interface GossipConfig {
  readonly intervalMs: number;
  readonly fanout: number;
  readonly entriesMax: number;
  readonly membersMax: number;
  readonly generationJumpMax: number;
  readonly leftMemberRetentionMs: number;
  readonly phiConvictThreshold: number;
  readonly arrivalWindowSize: number;
  readonly arrivalBootstrapIntervalMs: number;
  readonly arrivalIntervalMaxMs: number;
  readonly selfLagToleranceMs: number;
  readonly selfLagGraceMs: number;
}

export function defaultGossipConfig(): GossipConfig {
  return {
    intervalMs: limits.gossipIntervalMs,
    fanout: limits.gossipFanout,
    entriesMax: limits.gossipEntriesMax,
    membersMax: limits.membersMax,
    generationJumpMax: limits.generationJumpMax,
    leftMemberRetentionMs: limits.leftMemberRetentionMs,
    phiConvictThreshold: limits.phiConvictThreshold,
    arrivalWindowSize: limits.arrivalWindowSize,
    arrivalBootstrapIntervalMs: limits.arrivalBootstrapIntervalMs,
    arrivalIntervalMaxMs: limits.arrivalIntervalMaxMs,
    selfLagToleranceMs: limits.selfLagToleranceMs,
    selfLagGraceMs: limits.selfLagGraceMs,
  };
}

export interface GossipOptions {
  readonly self: { readonly id: string; readonly address: string; readonly weight?: number; readonly dc?: string; readonly rack?: string };
  /** This start's generation: above every earlier start's (see `nextGeneration`). */
  readonly generation: number;
  /** Our status at start; a node entering the ring is `joining` (the default). */
  readonly status?: MemberStatus;
  /** Seed addresses (`ringkv start --seeds a,b`); our own address may be among them. */
  readonly seeds: readonly string[];
  readonly config?: Partial<GossipConfig>;
}

export type GossipAction =
  | { readonly type: 'send'; readonly to: string; readonly message: GossipMessage }
  /** A peer sent something invalid: log a WARN with its address. */
  | { readonly type: 'rejected'; readonly from: string; readonly reason: string; readonly entries: number }
  /** Our own tick came `pauseMs` late: convictions are held off for a while. */
  | { readonly type: 'lagging'; readonly pauseMs: number }
  | MembershipEvent;

export interface GossipStats {
  readonly rounds: number;
  readonly messagesReceived: number;
  readonly rejectedMessages: number;
  readonly rejectedEntries: number;
  readonly staleEntries: number;
  readonly pauses: number;
}

export class Gossip {
  readonly config: GossipConfig;
  readonly #detector: PhiAccrualDetector;
  readonly #table: MemberTable;
  readonly #seeds: readonly string[];
  #lastNowMs = Number.NEGATIVE_INFINITY;
  #stats = { rounds: 0, messagesReceived: 0, rejectedMessages: 0, rejectedEntries: 0, staleEntries: 0, pauses: 0 };

  constructor(options: GossipOptions) {
    const config = { ...defaultGossipConfig(), ...options.config };
    // The detector's first sample scales with the interval unless given (2 intervals, as the
    // default 2000 ms is for 1000 ms): otherwise a member that dies young is convicted only
    // after threshold x ln 10 x 2000 ms (~37 s) under a short interval.
    if (options.config?.intervalMs !== undefined && options.config.arrivalBootstrapIntervalMs === undefined) {
      config.arrivalBootstrapIntervalMs = config.intervalMs * (limits.arrivalBootstrapIntervalMs / limits.gossipIntervalMs);
    }
    if (!(config.fanout >= 1) || !(config.intervalMs > 0)) throw new RangeError('gossip fanout and intervalMs must be positive');
    if (!(config.entriesMax >= config.membersMax)) throw new RangeError('entriesMax must be at least membersMax');
    this.config = config;
    const self = createMemberState({
      id: options.self.id,
      address: options.self.address,
      generation: options.generation,
      heartbeat: 0,
      status: options.status ?? 'joining',
      statusVersion: 0,
      weight: options.self.weight ?? 1,
      dc: options.self.dc ?? 'dc1',
      rack: options.self.rack ?? 'rack1',
    });
    this.#detector = new PhiAccrualDetector({
      threshold: config.phiConvictThreshold,
      windowSize: config.arrivalWindowSize,
      bootstrapIntervalMs: config.arrivalBootstrapIntervalMs,
      intervalMaxMs: config.arrivalIntervalMaxMs,
      meanMinMs: config.intervalMs / 2,
      tickIntervalMs: config.intervalMs,
      selfLagToleranceMs: config.selfLagToleranceMs,
      selfLagGraceMs: config.selfLagGraceMs,
    });
    this.#table = new MemberTable(self, this.#detector, config);
    this.#seeds = [...new Set(options.seeds)].filter((seed) => seed !== self.address);
  }

  /** Our own record as we currently gossip it. */
  get self(): MemberState {
    return this.#table.self;
  }

  /** Every known record, self and left tombstones included. */
  members(): MemberState[] {
    return this.#table.all();
  }

  /** Members that are alive here and not left, self included while not left. */
  liveMembers(): MemberState[] {
    return this.#table.all().filter((member) => member.status !== 'left' && this.#table.isAlive(member.id));
  }

  member(id: string): MemberState | undefined {
    return this.#table.get(id);
  }

  isAlive(id: string): boolean {
    return this.#table.isAlive(id);
  }

  /** The detector's current suspicion of `id` (0 for self and unknown members). */
  phi(id: string, nowMs: number): number {
    return this.#detector.phi(id, nowMs);
  }

  stats(): GossipStats {
    return { ...this.#stats };
  }

  /** One gossip round: bump our heartbeat, convict the silent, and start exchanges. */
  tick(nowMs: number, rng: Rng): GossipAction[] {
    this.#advanceTime(nowMs);
    const actions: GossipAction[] = [];
    const pauseMs = this.#detector.observeTick(nowMs);
    if (pauseMs > 0) {
      this.#stats.pauses++;
      actions.push({ type: 'lagging', pauseMs });
    }
    this.#table.bumpHeartbeat();
    this.#stats.rounds++;
    const events: MembershipEvent[] = [];
    this.#table.checkLiveness(nowMs, events);
    actions.push(...events);
    const targets = this.#chooseTargets(rng);
    if (targets.length === 0) return actions;
    const digests = shuffled(this.#table.all().map(digestOf), rng);
    assert(digests.length <= this.config.entriesMax, 'members above entriesMax');
    const syn: GossipSyn = { type: 'gossip-syn', digests };
    for (const to of targets) actions.push({ type: 'send', to, message: syn });
    return actions;
  }

  /** Handles one message from the peer at address `from`. Never throws for bad input. */
  receive(from: string, raw: unknown, nowMs: number): GossipAction[] {
    assert(typeof from === 'string', 'from must be an address');
    this.#advanceTime(nowMs);
    this.#stats.messagesReceived++;
    const parsed = parseGossipMessage(raw, this.config.entriesMax);
    if (!parsed.ok) {
      this.#stats.rejectedMessages++;
      return [{ type: 'rejected', from, reason: parsed.reason, entries: 0 }];
    }
    const message = parsed.value;
    switch (message.type) {
      case 'gossip-syn':
        return this.#onSyn(from, message);
      case 'gossip-ack':
        return this.#onAck(from, message, nowMs);
      case 'gossip-ack2':
        return this.#applyEntries(from, message.entries, nowMs);
      default:
        return assertNever(message, 'gossip message');
    }
  }

  /**
   * Restores members remembered from an earlier run (a persisted membership view): each is
   * admitted as a down record, as if a peer had relayed it, so it comes up only when its own
   * heartbeat arrives and any newer copy replaces it. Our own id is skipped.
   */
  preload(members: readonly MemberState[], nowMs: number): GossipAction[] {
    this.#advanceTime(nowMs);
    const events: MembershipEvent[] = [];
    for (const member of members) if (member.id !== this.self.id) this.#table.apply(member, nowMs, events);
    return events;
  }

  /** Changes our own record (status, address, weight, dc, rack); spreads with the next rounds. */
  updateSelf(changes: SelfChanges): GossipAction[] {
    const events: MembershipEvent[] = [];
    this.#table.updateSelf(changes, events);
    return events;
  }

  #advanceTime(nowMs: number): void {
    assert(Number.isFinite(nowMs), 'nowMs must be finite');
    assert(nowMs >= this.#lastNowMs, 'nowMs must be monotonic');
    this.#lastNowMs = nowMs;
  }

  #onSyn(from: string, syn: GossipSyn): GossipAction[] {
    const entries: MemberState[] = [];
    const requests: GossipDigest[] = [];
    const mentioned = new Set<string>();
    const max = this.config.entriesMax;
    for (const digest of syn.digests) {
      mentioned.add(digest.id);
      const local = this.#table.get(digest.id);
      if (local === undefined) {
        if (requests.length < max) requests.push({ id: digest.id, generation: 0, heartbeat: 0 });
        continue;
      }
      const order = compareVersion(digest, local);
      if (order > 0 && requests.length < max) requests.push(digestOf(local));
      if (order < 0 && entries.length < max) entries.push(local);
    }
    for (const local of this.#table.all()) {
      if (entries.length >= max) break;
      if (!mentioned.has(local.id)) entries.push(local);
    }
    if (entries.length === 0 && requests.length === 0) return [];
    return [{ type: 'send', to: from, message: { type: 'gossip-ack', entries, requests } }];
  }

  #onAck(from: string, ack: GossipAck, nowMs: number): GossipAction[] {
    const actions = this.#applyEntries(from, ack.entries, nowMs);
    const entries: MemberState[] = [];
    for (const request of ack.requests) {
      const local = this.#table.get(request.id);
      if (local !== undefined && compareVersion(local, request) > 0) entries.push(local);
    }
    if (entries.length > 0) actions.push({ type: 'send', to: from, message: { type: 'gossip-ack2', entries } });
    return actions;
  }

  #applyEntries(from: string, entries: readonly MemberState[], nowMs: number): GossipAction[] {
    const events: MembershipEvent[] = [];
    let rejected = 0;
    let reason = '';
    for (const entry of entries) {
      const outcome = this.#table.apply(entry, nowMs, events);
      if (outcome === 'stale') this.#stats.staleEntries++;
      if (isRejection(outcome)) {
        rejected++;
        reason ||= `entry rejected: ${outcome}`;
      }
    }
    const actions: GossipAction[] = events;
    if (rejected > 0) {
      this.#stats.rejectedEntries += rejected;
      actions.push({ type: 'rejected', from, reason, entries: rejected });
    }
    return actions;
  }

  #chooseTargets(rng: Rng): string[] {
    const live: string[] = [];
    const unreachable: string[] = [];
    for (const { state, alive } of this.#table.others()) {
      if (state.status === 'left') continue;
      (alive ? live : unreachable).push(state.address);
    }
    const targets = new Set(shuffled(live, rng).slice(0, this.config.fanout));
    if (unreachable.length > 0 && rng.next() < unreachable.length / (live.length + 1)) {
      targets.add(unreachable[rng.int(unreachable.length)]!);
    }
    const seeds = this.#seeds;
    const pickedSeed = seeds.some((seed) => targets.has(seed));
    if (seeds.length > 0 && (!pickedSeed || live.length < seeds.length)) {
      const known = live.length + unreachable.length;
      if (live.length === 0 || rng.next() < seeds.length / known) targets.add(seeds[rng.int(seeds.length)]!);
    }
    targets.delete(this.#table.self.address);
    return [...targets];
  }
}

function digestOf(member: MemberState): GossipDigest {
  return { id: member.id, generation: member.generation, heartbeat: member.heartbeat };
}

/** A Fisher-Yates shuffled copy. */
function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
