/**
 * The supervisor actor: the main thread of a cluster node. It owns the peer network, the
 * membership driver (gossip + ring), the coordinator driver (quorums over the local shards and
 * the peers) and the client service, and routes every message a link delivers to one of them
 * (peer-router.ts). It never blocks: shard work goes through the replica store's mailboxes,
 * network work through the transport, and every wait is a timer (shard-stats.ts refreshes the
 * per-shard status figures).
 *
 * Placement (replica-placement.ts): a key's replicas are its preference list in the current
 * ring, each marked up or down by this node's failure detector, plus the owners after it (walk
 * order) as sloppy-quorum stand-ins. With `quorum: 'sloppy'` (the default) a write whose replica is down goes to a
 * stand-in as a hint (hint-store.ts); `'strict'` refuses instead.
 *
 * Hinted handoff (hint-delivery.ts): with a hint store, hints are sent to their targets once
 * gossip shows them up, each deleted only after the owner acknowledged it (durable there).
 * Missed writes (missed-writes.ts): a replica that did not acknowledge a write coordinated
 * here gets a hint kept by this node when no stand-in took one, and the partition is marked
 * dirty for it so anti-entropy exchanges it first when the replica is back.
 *
 * Membership changes (handoff.ts): join streaming, `leave()`, `removeNode(id)`; handoff-* rpcs
 * are served by the handoff. Hooks marked "handoff:" below.
 *
 * Lifecycle (lifecycle/, issue 10; hooks marked "lifecycle:"): the membership view is persisted
 * (membership-file.ts) and a node that owned partitions starts `normal` with it, whatever its
 * seeds; `--replace` starts `replacing` under the dead member's id; gossip stays quiet until
 * `checkStart()` (start-check.ts) has compared this data directory with the cluster's view;
 * a founder refuses client requests until the seeds it met have all founded with it.
 */

import { partitionOfToken, tokenOf } from '../base/hash.js';
import { limits } from '../base/limits.js';
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import type { Rng } from '../base/rng.js';
import { Gossip } from '../membership/index.js';
import type { RingView } from '../protocol/client-messages.js';
import { Coordinator, sloppyTargets, strictTargets } from '../replication/index.js';
import type { Replication } from '../ring/index.js';
import type { ReplicaStore } from '../store/index.js';
import type { Link } from '../transport/index.js';
import { ClientService, type RequestObserver } from './client-service.js';
import type { HintStore } from './hint-store.js';
import { HintDelivery } from './hint-delivery.js';
import { AntiEntropy, type AntiEntropyStats, type CleanupResult } from './anti-entropy.js';
import { CoordinatorDriver } from './coordinator-driver.js';
import { MembershipDriver } from './membership-driver.js';
import { Handoff } from './handoff.js';
import { writeNodeIdentity, type NodeIdentity } from './node-identity.js';
import { PeerNetwork, type DialFunction } from './peer-network.js';
import { PeerRouter } from './peer-router.js';
import { ShardStats } from './shard-stats.js';
import { Resync } from './resync.js';
import { AutoCleanup } from './auto-cleanup.js';
import { ReplicaPlacement } from './replica-placement.js';
import { MissedWrites } from './missed-writes.js';
import { matchingPartitions } from './partition-digest.js';
import { buildStatus, type StatusJson } from './status.js';
import { HintCounters, type TelemetrySnapshot } from './telemetry.js';
import { Scaling, type ScalingOptions } from './scaling/scaling.js';
import { teeObserver } from './scaling/load-sampler.js';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { MembershipRecorder, StartGate, startCandidates, startGateFor, startStatus, type MembershipView, type StartFacts } from './lifecycle/index.js';

export interface SupervisorOptions {
  readonly identity: NodeIdentity;
  readonly dir: string;
  readonly store: ReplicaStore;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly logger: Logger;
  /** host:port where peers and clients reach this node. */
  readonly address: string;
  readonly seeds: readonly string[];
  readonly dc: string;
  readonly rack: string;
  readonly weight: number;
  readonly partitionBits: number;
  readonly replication: Replication;
  readonly scheme: 'ws' | 'wss';
  readonly secret: Uint8Array | undefined;
  readonly caFile?: string;
  readonly observer?: RequestObserver;
  readonly gossipIntervalMs?: number;
  readonly version?: string;
  /** Durable hints for sloppy quorum; without it the node neither takes nor sends hints. */
  readonly hints?: HintStore;
  /** 'sloppy' (default): stand-ins take hints for down replicas; 'strict': refuse instead. */
  readonly quorum?: 'sloppy' | 'strict';
  /** Scheduled Merkle exchanges: one every this many ms at most (0: none; `repair` still works). */
  readonly antiEntropyIntervalMs?: number;
  /** Every (partition, peer replica) pair is exchanged once per this period (default limits.antiEntropySweepPeriodMsDefault). */
  readonly antiEntropySweepPeriodMs?: number;
  /** Tombstones are purged no sooner than this after the delete (default limits.tombstoneGraceMsDefault; Infinity: never). */
  readonly tombstoneGraceMs?: number;
  /** Automatic cleanup (auto-cleanup.ts): a pass every this many ms (default limits.autoCleanupIntervalMsDefault; 0: only `cleanup()`). */
  readonly autoCleanupIntervalMs?: number;
  /** ...no sooner than this after the last ring change (default limits.autoCleanupSettleMsDefault). */
  readonly autoCleanupSettleMs?: number;
  /** handoff: pace of partition streaming and catch-up (default limits.handoffBytesPerSecondDefault). */
  readonly handoffBytesPerSecond?: number;
  /** handoff: called once this node has left the cluster and handed its data off. */
  readonly onLeft?: () => void;
  /** Expiry: the clock skew bound reads tolerate (default limits.clockSkewMsDefault). */
  readonly clockSkewMs?: number;
  /** scaling: staged joins, capacity, autoscaling (scaling/scaling.ts). */
  readonly scaling?: Pick<ScalingOptions, 'stagedJoin' | 'capacityBytes' | 'autoscale' | 'reportIntervalMs'>;
  /** lifecycle: the view a previous run persisted (MEMBERS), if any. */
  readonly restored?: MembershipView;
  /** lifecycle: this start takes a dead member's place (`--replace`; the identity is its id). */
  readonly replacing?: boolean;
  /** lifecycle: what the start check compares with the cluster (start-check.ts). */
  readonly startFacts?: Omit<StartFacts, 'selfId' | 'address' | 'dir' | 'replacing' | 'generation'>;
  /** How peer links are dialed (default the WebSocket transport; the whole-node simulation passes its own). */
  readonly dial?: DialFunction;
  /** lifecycle: the cluster refused this node after it started (start-gate.ts): stop it. */
  readonly onRefused?: (error: RingkvError) => void;
}

export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #network: PeerNetwork;
  readonly #membership: MembershipDriver;
  readonly #driver: CoordinatorDriver;
  readonly #clients: ClientService;
  readonly #antiEntropy: AntiEntropy;
  readonly #handoff: Handoff;
  /** resync: refuses reads of stale partitions after an outage longer than the grace (resync.ts). */
  readonly #resync: Resync;
  /** Drops partitions this node no longer replicates once their replicas have them (auto-cleanup.ts). */
  readonly #autoCleanup: AutoCleanup;
  /** Preference lists, stand-ins and pending replicas of a key (replica-placement.ts). */
  readonly #placement: ReplicaPlacement;
  /** Hinted handoff delivery; only with a hint store. */
  readonly #hintDelivery: HintDelivery | undefined;
  /** Hints and dirty marks for replicas that missed writes coordinated here (missed-writes.ts). */
  readonly #missed: MissedWrites;
  readonly #router: PeerRouter;
  readonly #shardStats: ShardStats;
  readonly #startedMs: number;
  /** metrics: the coordinator's counters and per-target hint counts (telemetry.ts). */
  readonly #coordinator: Coordinator;
  readonly #hintCounts = new HintCounters();
  /** scaling: load gossip, staged plans, the autoscaler (scaling/scaling.ts). */
  readonly #scaling: Scaling;
  /** lifecycle: holds our gossip until the start check allows it (start-gate.ts). */
  readonly #startGate: StartGate;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    const { identity, logger, clock, rng } = options;
    this.#startedMs = clock.monotonicMs();
    this.#network = new PeerNetwork({
      nodeId: identity.id,
      secret: options.secret,
      scheme: options.scheme,
      logger,
      rng,
      ...(options.caFile ? { caFile: options.caFile } : {}),
      ...(options.dial ? { dial: options.dial } : {}),
      onMessage: (link, message) => this.#router.route(link, message),
    });
    const recorder = new MembershipRecorder(options.dir);
    const gossip = new Gossip({
      self: { id: identity.id, address: options.address, weight: options.weight, dc: options.dc, rack: options.rack },
      generation: identity.generation,
      status: startStatus(options.restored, options.replacing === true), // lifecycle
      seeds: options.seeds,
      config: options.gossipIntervalMs ? { intervalMs: options.gossipIntervalMs } : {},
    });
    this.#membership = new MembershipDriver({
      gossip,
      clock,
      rng,
      logger,
      partitionBits: options.partitionBits,
      replication: options.replication,
      hasSeeds: options.seeds.some((seed) => seed !== options.address),
      // lifecycle: founding, the quiet start, and the persisted view.
      founder: options.seeds.includes(options.address),
      seeds: options.seeds.filter((seed) => seed !== options.address),
      quiet: true,
      persist: (view) => recorder.record(view),
      onReplaceable: () => this.#handoff.onReplaceable(),
      send: (address, message) => this.#network.send(address, message),
      persistGeneration: (generation) => writeNodeIdentity(options.dir, { id: identity.id, generation }),
      // Dial every member we learn of now, so its link is up before the first rpc to it.
      onChange: () => {
        for (const member of this.#membership?.members() ?? []) {
          if (member.id !== identity.id && member.status !== 'left') this.#network.connect(member.address);
        }
        this.#handoff?.onRingChange(); // handoff: pull partitions a ring change gave us
        this.#autoCleanup?.onRingChange();
      },
      onForget: (address) => this.#network.forget(address),
      // handoff: join streams before `normal`; scaling: not before a plan releases a --staged-join node
      onJoinable: () => (this.#scaling.holdsJoin() ? undefined : this.#handoff.onJoinable()),
    });
    if (options.restored !== undefined) this.#membership.restore(options.restored); // lifecycle
    for (const address of startCandidates(options.seeds, options.address, options.restored)) this.#network.connect(address);
    const { partitionBits, replication } = options;
    this.#placement = new ReplicaPlacement({ membership: this.#membership, partitionBits, replication, hinted: options.hints !== undefined });
    const sloppy = options.quorum !== 'strict' && options.hints !== undefined;
    const coordinator = new Coordinator({
      self: { id: identity.id, dc: options.dc },
      actor: options.store.actor, // failover: names this node's mints of client writes
      placementOf: (key) => this.#placement.placementOf(key),
      soleReplicaOfToken: (token) => this.#placement.soleReplicaOfToken(token, identity.id),
      targetsOf: sloppy ? sloppyTargets : strictTargets,
    });
    this.#coordinator = coordinator;
    this.#startGate = startGateFor(options, {
      hello: (address) => this.#driver.call(address, { t: 'handoff-hello', id: identity.id }, limits.startCheckRpcTimeoutMs, address),
      release: () => this.#membership.release(),
    }); // lifecycle
    const hints = options.hints;
    const missed = (this.#missed = new MissedWrites({
      clock,
      logger,
      hints,
      partitionOf: (key) => partitionOfToken(tokenOf(key), partitionBits),
      markDirty: (partition, replica) => this.#antiEntropy.markDirty(partition, replica),
    }));
    // resync: a finite tombstone grace is the outage bound; with purging off, the default grace.
    const graceMs = Number.isFinite(options.tombstoneGraceMs ?? Infinity) ? options.tombstoneGraceMs! : limits.tombstoneGraceMsDefault;
    this.#resync = new Resync({
      selfId: identity.id,
      dir: options.dir,
      partitionBits: options.partitionBits,
      clock,
      logger,
      graceMs,
      myPartitions: () => this.#membership.ring?.replicaPartitionsOf(identity.id) ?? [],
      replicasOf: (partition) => this.#membership.ring?.replicasOf(partition) ?? [],
      isUp: (id) => this.#membership.isUp(id),
      exchange: (partition, peer) => this.#antiEntropy.exchange(partition, peer),
    });
    this.#driver = new CoordinatorDriver({
      readable: (token) => this.#resync.readableToken(token), // resync
      ...(options.clockSkewMs !== undefined ? { clockSkewMs: options.clockSkewMs } : {}), // expiry
      coordinator,
      store: options.store,
      clock,
      logger,
      selfId: identity.id,
      onMissed: (replica, key, object, standIn) => missed.onMissed(replica, key, object, standIn), // missed writes
      ...(hints ? { storeHint: this.#hintCounts.counting((target, key, object) => hints.add(target, key, object)) } : {}),
      sendToNode: (nodeId, message, to) => {
        const address = to ?? this.#membership.addressOf(nodeId);
        return address !== undefined && this.#network.send(address, message);
      },
    });
    this.#antiEntropy = new AntiEntropy({
      store: options.store,
      partitionBits: options.partitionBits,
      clock,
      logger,
      call: (nodeId, body, timeoutMs) => this.#driver.call(nodeId, body, timeoutMs),
      myPartitions: () => this.#membership.ring?.replicaPartitionsOf(identity.id) ?? [],
      peersOf: (partition) => (this.#membership.ring?.replicasOf(partition) ?? []).filter((id) => id !== identity.id && this.#membership.isUp(id)),
      replicasOf: (partition) => this.#membership.ring?.replicasOf(partition) ?? [],
      isUp: (id) => this.#membership.isUp(id),
      // Only a member known to be removed loses its marks (an id not heard of yet keeps them).
      isMember: (id) => !this.#membership.members().some((m) => m.id === id && m.status === 'left'),
      ...(options.antiEntropyIntervalMs ? { intervalMs: options.antiEntropyIntervalMs } : {}),
      ...(options.antiEntropySweepPeriodMs ? { sweepPeriodMs: options.antiEntropySweepPeriodMs } : {}),
      dir: options.dir, // dirty partitions survive restarts (AE_DIRTY)
      selfId: identity.id, // purge: with replicasOf, turns tombstone purging on
      ...(options.tombstoneGraceMs !== undefined ? { tombstoneGraceMs: options.tombstoneGraceMs } : {}),
      onExchange: (partition, peer, result) => this.#resync.onExchange(partition, peer, result), // resync
    });
    // handoff: join/leave/remove streaming.
    this.#handoff = new Handoff({
      selfId: identity.id,
      dir: options.dir,
      store: options.store,
      partitionBits: options.partitionBits,
      replication: options.replication,
      clock,
      logger,
      call: (nodeId, body, timeoutMs) => this.#driver.call(nodeId, body, timeoutMs),
      exchange: (partition, peer) => this.#antiEntropy.exchange(partition, peer),
      matching: (peer, partitions) => matchingPartitions(options.store, (id, body, timeoutMs) => this.#driver.call(id, body, timeoutMs), peer, partitions),
      members: () => this.#membership.members(),
      isUp: (id) => this.#membership.isUp(id),
      ring: () => this.#membership.ring,
      setStatus: (status) => this.#membership.updateSelf(status),
      wasOwner: (id) => this.#membership.wasOwner(id),
      removals: () => this.#membership.removals(),
      applyRemoval: (id, generation) => this.#membership.removeMember(id, generation),
      ...(options.onLeft ? { onLeft: options.onLeft } : {}),
      ...(options.handoffBytesPerSecond ? { bytesPerSecond: options.handoffBytesPerSecond } : {}),
    });
    this.#autoCleanup = new AutoCleanup({
      partitionCount: 2 ** options.partitionBits,
      clock,
      logger,
      myPartitions: () => this.#membership.ring?.replicaPartitionsOf(identity.id) ?? [],
      settled: () => this.#settled(),
      cleanupPartition: (partition) => this.#antiEntropy.cleanupPartition(partition),
      intervalMs: options.autoCleanupIntervalMs || limits.autoCleanupIntervalMsDefault,
      settleMs: options.autoCleanupSettleMs ?? limits.autoCleanupSettleMsDefault,
    });
    this.#scaling = new Scaling({
      selfId: identity.id,
      address: options.address,
      clock,
      rng,
      logger,
      partitionBits: options.partitionBits,
      replication: options.replication,
      members: () => this.#membership.members(),
      isUp: (id) => this.#membership.isUp(id),
      call: (nodeId, body, timeoutMs) => this.#driver.call(nodeId, body, timeoutMs),
      leaveSelf: () => void this.leave(),
      removeNode: (id) => this.removeNode(id),
      transfers: () => {
        const t = this.#handoff.stats();
        return t.phase === 'idle' || t.phase === 'left' ? 0 : Math.max(1, t.total - t.done);
      },
      bytesStored: () => this.#shardStats?.loadBytes ?? 0,
      ...options.scaling,
    });
    this.#clients = new ClientService({
      operations: {
        get: (r) => this.#founding() ?? this.#driver.get(r),
        write: (r) => this.#founding() ?? this.#driver.write(r),
        ringView: () => this.ringView(),
      },
      clock,
      logger,
      observer: teeObserver(options.observer, this.#scaling.observer),
    });
    this.#router = new PeerRouter({ clock, logger, membership: this.#membership, driver: this.#driver, antiEntropy: this.#antiEntropy, handoff: this.#handoff, scaling: this.#scaling });
    this.#shardStats = new ShardStats({ store: options.store, logger, myPartitions: () => this.#membership.ring?.replicaPartitionsOf(identity.id) ?? [] });
    const reachable = (target: string): boolean => this.#membership.isUp(target) && this.#membership.addressOf(target) !== undefined;
    this.#hintDelivery = hints && new HintDelivery({ hints, logger, reachable, call: (nodeId, body, timeoutMs) => this.#driver.call(nodeId, body, timeoutMs), onDelivered: (target, n) => this.#hintCounts.delivered(target, n) });
  }

  get id(): string {
    return this.#options.identity.id;
  }

  /** The coordinated read/write path, for the RESP front door (lib/resp). */
  get requests(): CoordinatorDriver {
    return this.#driver;
  }

  start(): void {
    this.#membership.start();
    this.#resync.start();
    if (this.#options.autoCleanupIntervalMs !== 0) this.#autoCleanup.start();
    this.#shardStats.start();
    if (this.#options.antiEntropyIntervalMs !== 0) this.#antiEntropy.start();
    this.#hintDelivery?.start();
    this.#scaling.start();
  }

  /** scaling: staged plans and the autoscaler, for the HTTP routes. */
  get scaling(): Scaling {
    return this.#scaling;
  }

  /** lifecycle: a refusal while this founder waits for the seeds it met (membership-driver.ts). */
  #founding(): Promise<never> | undefined {
    if (!this.#membership.founding()) return undefined;
    return Promise.reject(new RingkvError(ErrorCode.unavailable, 'this node is founding the cluster: waiting for the other seeds to found it too', {}));
  }

  /**
   * lifecycle: compares this data directory with the cluster's view before gossiping our
   * record (start-gate.ts); rejects with the refusal.
   */
  checkStart(): Promise<void> {
    return this.#startGate.check();
  }

  /** No membership change in progress: a ring, every member normal or gone, no transfer of ours running. */
  #settled(): boolean {
    if (this.#membership.ring === undefined || this.#handoff.stats().phase !== 'idle') return false;
    return this.#membership.members().every((m) => m.status === 'normal' || m.status === 'left');
  }

  addPeerLink(link: Link): void {
    this.#network.addInbound(link);
  }

  addClientLink(link: Link): void {
    this.#clients.addLink(link);
  }

  ringView(): RingView {
    const ring = this.#membership.ring;
    return {
      partitionBits: this.#options.partitionBits,
      replication: ring?.replication ?? this.#options.replication,
      members: this.#membership
        .members()
        .filter((m) => m.status !== 'left')
        .map((m) => ({ id: m.id, url: `${this.#options.scheme}://${m.address}`, dc: m.dc, rack: m.rack, weight: m.weight, status: m.status, up: this.#membership.isUp(m.id) })),
    };
  }

  status(): StatusJson {
    const status = buildStatus({
      selfId: this.id,
      version: this.#options.version ?? '0.0.0',
      uptimeMs: this.#options.clock.monotonicMs() - this.#startedMs,
      scheme: this.#options.scheme,
      ring: this.#membership.ring,
      partitionBits: this.#options.partitionBits,
      replication: this.#options.replication,
      members: this.#membership.members(),
      isUp: (id: string) => this.#membership.isUp(id),
      shards: this.#shardStats.shards,
      selfLoadBytes: this.#shardStats.loadBytes,
      hints: this.#options.hints?.summaries() ?? [],
      hintsDelivered: this.#hintDelivery?.delivered ?? 0,
      antiEntropy: this.#antiEntropy.stats(),
      transfers: this.#handoff.stats(),
      resync: this.#resync.status(),
      cleanup: this.#autoCleanup.stats(),
      missedWrites: this.#missed.stats(),
    });
    const loads = this.#scaling.planMembers();
    for (const m of status.members) m.loadBytes ??= loads.find((l) => l.id === m.id)?.loadBytes; // scaling: gossiped loads
    return { ...status, scaling: this.#scaling.status() };
  }

  /** metrics: figures beyond the status document, taken now (telemetry.ts). */
  telemetry(): TelemetrySnapshot {
    const now = this.#options.clock.monotonicMs();
    const peers = this.#membership
      .members()
      .filter((m) => m.id !== this.id && m.status !== 'left')
      .map((m) => ({ id: m.id, up: this.#membership.isUp(m.id), phi: this.#membership.gossip.phi(m.id, now), rttMs: this.#network.rttMsOf(m.address) }));
    return { engines: this.#shardStats.engines, coordinator: this.#coordinator.stats(), peers, hints: this.#hintCounts.byTarget, rowCache: this.#shardStats.rowCache };
  }

  /** handoff: starts leaving the cluster (`ringkv leave`); RingkvError unless normal. */
  leave(): { status: string } {
    void this.#handoff.leave().catch((error: unknown) => this.#options.logger.error({ err: error }, 'leave failed'));
    return { status: 'leaving' };
  }

  /** handoff: removes a dead member on its behalf (`ringkv removenode <id>`). */
  removeNode(id: string): Promise<{ removed: string; told: string[] }> {
    return this.#handoff.removeNode(id);
  }

  /** This node's Merkle root of each partition it replicates among `partitions` (read-only). */
  /** With `held`, also the partitions it does not replicate but still holds keys of (`replica: false`). */
  async merkleRoots(partitions: readonly number[], held = false): Promise<{ partition: number; root: string; keys: number; replica: boolean }[]> {
    const mine = new Set(this.#membership.ring?.replicaPartitionsOf(this.id) ?? []);
    const roots = await this.#antiEntropy.merkleRoots(held ? partitions : partitions.filter((p) => mine.has(p)));
    return roots.map((r) => ({ ...r, replica: mine.has(r.partition) })).filter((r) => r.replica || r.keys > 0);
  }

  /** Drops the partitions this node no longer replicates, after handing them to their replicas. */
  cleanup(): Promise<CleanupResult> {
    return this.#antiEntropy.cleanup();
  }

  /** Starts (or joins) a Merkle repair of every partition this node replicates, or one. */
  repair(partition?: number): AntiEntropyStats['repair'] {
    void this.#antiEntropy.repair(partition);
    return this.#antiEntropy.stats().repair;
  }

  async close(): Promise<void> {
    await this.#scaling.close();
    this.#startGate.close();
    this.#antiEntropy.close();
    this.#resync.close();
    this.#autoCleanup.close();
    this.#handoff.close();
    this.#shardStats.close();
    this.#hintDelivery?.close();
    this.#membership.stop();
    this.#clients.closeAll();
    this.#driver.close();
    this.#network.close();
  }
}
