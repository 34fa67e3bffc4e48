/**
 * The supervisor actor: the main thread of a cluster node. It owns the peer network, the
 * membership driver (gossip + ring), the coordinator driver (quorums over the local shards and
 * the peers) and the client service, and routes every message a link delivers to one of them.
 * It never blocks: shard work goes through the replica store's mailboxes, network work through
 * the transport, and every wait is a timer.
 *
 * Peer messages (after the transport's mutual authentication):
 *   {t:'gossip', from: address, msg}   → membership (from: where the sender is reached)
 *   {t:'rpc', id, body}                → the replica side of the coordinator; reply on this link
 *   {t:'rpc-reply', id, body}          → the coordinator; the replier is the link's peer id
 * Anything else is counted and logged (rate-limited), never thrown.
 *
 * Placement: a key's replicas are its preference list in the current ring, each marked up or
 * down by this node's failure detector, plus the owners after it (walk order) as sloppy-quorum
 * stand-ins. With `quorum: 'sloppy'` (the default) a write whose replica is down goes to a
 * stand-in as a hint (hint-store.ts); `'strict'` refuses instead.
 *
 * Hinted handoff: every `hintDeliveryIntervalMs`, for each target with hints that gossip shows
 * up, the hints are sent as replica-writes in batches of `hintDeliveryBatch`, one batch at a
 * time (the throttle), each hint deleted only after the owner acknowledged it (durable there).
 *
 * Membership changes (handoff.ts): join streaming, `leave()`, `removeNode(id)`; handoff-* rpcs
 * are served by the handoff. Hooks marked "handoff:" below.
 */

import { isRingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import type { Rng } from '../base/rng.js';
import { Gossip } from '../membership/index.js';
import type { RingView } from '../protocol/client-messages.js';
import { Coordinator, sloppyTargets, strictTargets, type Placement, type ReplicaInfo } from '../replication/index.js';
import type { Replication } from '../ring/index.js';
import type { ReplicaStore } from '../store/index.js';
import type { Link, WireMessage } from '../transport/index.js';
import { ClientService, type RequestObserver } from './client-service.js';
import type { Hint, HintStore } from './hint-store.js';
import { AntiEntropy, isAntiEntropyMessage, type AntiEntropyStats, type CleanupResult } from './anti-entropy.js';
import { CoordinatorDriver } from './coordinator-driver.js';
import { MembershipDriver } from './membership-driver.js';
import { Handoff, isHandoffMessage } from './handoff.js';
import { writeNodeIdentity, type NodeIdentity } from './node-identity.js';
import { PeerNetwork } from './peer-network.js';
import { Resync } from './resync.js';
import { AutoCleanup } from './auto-cleanup.js';
import { PendingReplicas } from './pending-replicas.js';
import { matchingPartitions } from './partition-digest.js';
import { buildStatus, type StatusJson, type StatusShard } from './status.js';

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
  /** Scheduled Merkle exchanges: one every this many ms (0: none; `repair` still works). */
  readonly antiEntropyIntervalMs?: number;
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
}

const statsRefreshMs = 2_000;

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
  /** Nodes gaining a partition in a join or leave in progress: they get its writes too. */
  readonly #pending: PendingReplicas;
  readonly #startedMs: number;
  #shards: StatusShard[] = [];
  #loadBytes: number | undefined;
  #statsTimer: NodeJS.Timeout | undefined;
  #hintTimer: NodeJS.Timeout | undefined;
  readonly #delivering = new Set<string>();
  #hintsDelivered = 0;
  #badPeerMessages = 0;
  #droppedReplies = 0;
  #lastBadLogMs = Number.NEGATIVE_INFINITY;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    const { identity, logger, clock, rng } = options;
    this.#startedMs = clock.monotonicMs();
    this.#pending = new PendingReplicas(options.partitionBits, options.replication);
    this.#network = new PeerNetwork({
      nodeId: identity.id,
      secret: options.secret,
      scheme: options.scheme,
      logger,
      rng,
      ...(options.caFile ? { caFile: options.caFile } : {}),
      onMessage: (link, message) => this.#onPeerMessage(link, message),
    });
    const gossip = new Gossip({
      self: { id: identity.id, address: options.address, weight: options.weight, dc: options.dc, rack: options.rack },
      generation: identity.generation,
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
      onJoinable: () => this.#handoff.onJoinable(), // handoff: join streams before `normal`
    });
    for (const seed of options.seeds) if (seed !== options.address) this.#network.connect(seed);
    const sloppy = options.quorum !== 'strict' && options.hints !== undefined;
    const coordinator = new Coordinator({
      self: { id: identity.id, dc: options.dc },
      placementOf: (key) => this.#placementOf(key),
      targetsOf: sloppy ? sloppyTargets : strictTargets,
    });
    const hints = options.hints;
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
      readable: (key) => this.#resync.readable(key), // resync
      coordinator,
      store: options.store,
      clock,
      logger,
      selfId: identity.id,
      ...(hints ? { storeHint: (target: string, key: Uint8Array, object: Uint8Array) => hints.add(target, key, object) } : {}),
      sendToNode: (nodeId, message) => {
        const address = this.#membership.addressOf(nodeId);
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
      ...(options.antiEntropyIntervalMs ? { intervalMs: options.antiEntropyIntervalMs } : {}),
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
    this.#clients = new ClientService({
      operations: { get: (r) => this.#driver.get(r), write: (r) => this.#driver.write(r), ringView: () => this.ringView() },
      clock,
      logger,
      ...(options.observer ? { observer: options.observer } : {}),
    });
  }

  get id(): string {
    return this.#options.identity.id;
  }

  start(): void {
    this.#membership.start();
    this.#resync.start();
    if (this.#options.autoCleanupIntervalMs !== 0) this.#autoCleanup.start();
    void this.#refreshStats();
    this.#statsTimer = setInterval(() => void this.#refreshStats(), statsRefreshMs);
    this.#statsTimer.unref();
    if (this.#options.antiEntropyIntervalMs !== 0) this.#antiEntropy.start();
    if (this.#options.hints !== undefined) {
      this.#hintTimer = setInterval(() => this.#deliverHints(), limits.hintDeliveryIntervalMs);
      this.#hintTimer.unref();
    }
  }

  /** No membership change in progress: a ring, every member normal or gone, no transfer of ours running. */
  #settled(): boolean {
    if (this.#membership.ring === undefined || this.#handoff.stats().phase !== 'idle') return false;
    return this.#membership.members().every((m) => m.status === 'normal' || m.status === 'left');
  }

  /** Starts delivery to every target with hints that is up now (one delivery per target at a time). */
  #deliverHints(): void {
    const hints = this.#options.hints!;
    for (const target of hints.targetsWithHints()) {
      if (this.#delivering.has(target) || !this.#membership.isUp(target) || this.#membership.addressOf(target) === undefined) continue;
      this.#delivering.add(target);
      void hints
        .deliver(target, limits.hintDeliveryBatch, (batch) => this.#sendHints(target, batch))
        .then(
          ({ delivered, complete }) => {
            this.#hintsDelivered += delivered;
            if (delivered > 0) this.#options.logger.info({ target, delivered, complete }, 'hints delivered');
          },
          (error: unknown) => this.#options.logger.error({ target, err: error }, 'hint delivery failed'),
        )
        .finally(() => this.#delivering.delete(target));
    }
  }

  async #sendHints(target: string, batch: Hint[]): Promise<boolean> {
    const timeoutMs = limits.coordinatorTimeoutMsDefault;
    const replies = await Promise.all(batch.map((hint) => this.#driver.call(target, { t: 'replica-write', key: hint.key, object: hint.object }, timeoutMs)));
    return replies.every((reply) => typeof reply === 'object' && reply !== null && (reply as { t?: unknown }).t === 'replica-write-reply');
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
    return buildStatus({
      selfId: this.id,
      version: this.#options.version ?? '0.0.0',
      uptimeMs: this.#options.clock.monotonicMs() - this.#startedMs,
      scheme: this.#options.scheme,
      ring: this.#membership.ring,
      partitionBits: this.#options.partitionBits,
      replication: this.#options.replication,
      members: this.#membership.members(),
      isUp: (id: string) => this.#membership.isUp(id),
      shards: this.#shards,
      selfLoadBytes: this.#loadBytes,
      hints: this.#options.hints?.summaries() ?? [],
      hintsDelivered: this.#hintsDelivered,
      antiEntropy: this.#antiEntropy.stats(),
      transfers: this.#handoff.stats(),
      resync: this.#resync.status(),
      cleanup: this.#autoCleanup.stats(),
    });
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
    this.#antiEntropy.close();
    this.#resync.close();
    this.#autoCleanup.close();
    this.#handoff.close();
    if (this.#statsTimer !== undefined) clearInterval(this.#statsTimer);
    if (this.#hintTimer !== undefined) clearInterval(this.#hintTimer);
    this.#membership.stop();
    this.#clients.closeAll();
    this.#driver.close();
    this.#network.close();
  }

  #placementOf(key: Uint8Array): Placement {
    const ring = this.#membership.ring;
    if (ring === undefined) return { replication: this.#options.replication, replicas: [] };
    const gossip = this.#membership.gossip;
    const info = (id: string): ReplicaInfo => ({ id, dc: gossip.member(id)?.dc ?? 'dc1', up: this.#membership.isUp(id) });
    const partition = ring.partitionOfKey(key);
    const listed = ring.replicasOf(partition);
    const replicas = listed.map(info);
    const gaining = this.#pending.of(partition, ring, this.#membership.members());
    const pending = gaining.length === 0 ? {} : { pending: gaining.map(info) };
    if (this.#options.hints === undefined || replicas.every((r) => r.up)) return { replication: ring.replication, replicas, ...pending };
    const fallbacks = ring.walk(partition).filter((id) => !listed.includes(id)).map(info);
    return { replication: ring.replication, replicas, fallbacks, ...pending };
  }

  #onPeerMessage(link: Link, message: WireMessage): void {
    switch (message.t) {
      case 'gossip':
        if (typeof message.from === 'string' && message.from.length > 0 && message.from.length <= limits.memberAddressBytesMax) {
          this.#membership.receive(message.from, message.msg);
          return;
        }
        break;
      case 'rpc': {
        const id = message.id;
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) break;
        const peer = link.peerId;
        const serving =
          peer === undefined ? this.#driver.serve(message.body)
          : isAntiEntropyMessage(message.body) ? this.#antiEntropy.serve(peer, message.body)
          : isHandoffMessage(message.body) ? this.#handoff.serve(peer, message.body) // handoff
          : this.#driver.serve(message.body);
        void serving.then((body) => {
          if (id !== 0 && link.isOpen) this.#sendQuietly(link, { t: 'rpc-reply', id, body });
        });
        return;
      }
      case 'rpc-reply':
        if (link.peerId !== undefined) {
          this.#driver.onReply(message.id, link.peerId, message.body);
          return;
        }
        break;
    }
    this.#badPeerMessages++;
    const nowMs = this.#options.clock.monotonicMs();
    if (nowMs - this.#lastBadLogMs > 10_000) {
      this.#lastBadLogMs = nowMs;
      this.#options.logger.warn({ peer: link.peerId, t: String(message.t).slice(0, 32), count: this.#badPeerMessages }, 'malformed peer message ignored');
    }
  }

  #sendQuietly(link: Link, message: WireMessage): void {
    try {
      link.send(message);
    } catch (error) {
      // The link is full or closed: the requester times out, as with any lost message.
      if (!isRingkvError(error)) throw error;
      this.#droppedReplies++;
    }
  }

  async #refreshStats(): Promise<void> {
    try {
      const stats = await this.#options.store.stats();
      const ring = this.#membership.ring;
      const mine = ring?.replicaPartitionsOf(this.id) ?? [];
      const count = stats.shards.length;
      this.#shards = stats.shards.map((s, index) => ({
        index,
        partitions: mine.filter((p) => p % count === index).length,
        liveBytes: s.liveTableBytes + s.walBytes,
        restarts: s.restarts,
      }));
      this.#loadBytes = this.#shards.reduce((sum, s) => sum + s.liveBytes, 0);
    } catch (error) {
      this.#options.logger.debug({ err: error }, 'shard stats unavailable');
    }
  }
}
