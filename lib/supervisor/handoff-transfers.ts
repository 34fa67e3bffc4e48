/**
 * The transfer loops of a membership-change handoff (handoff.ts decides WHAT moves; this
 * module moves it): pulling a partition page by page from a current replica (join, ring
 * gains), pushing it to a new replica (leave), and the catch-up Merkle exchanges once the
 * status changed. Owned by the supervisor (main thread); every wait is an rpc or a timer.
 *
 * Pacing (issue 5 §6: foreground p99 within +20% of idle while a node joins). On these
 * machines the nodes share the cores with each other and with the clients, so any work a
 * transfer does is taken from foreground requests; what matters is how much per second, not
 * the total. All steps of a node share one token bucket of bytes (lib/antientropy's, as
 * anti-entropy uses; `handoffBytesPerSecondDefault`). A step is one page (pull or push) or
 * one catch-up exchange; it costs its bytes plus `handoffStepCostBytes`, the fixed work of
 * an rpc with a partition scan at each end (a catch-up exchange moves few bytes, already
 * paced by anti-entropy's own bucket, but still scans and hashes the partition on both
 * replicas; charging its scanned bytes too made an unloaded join 4x slower). A step first
 * takes the fixed cost (waiting for it), and its bytes are charged when known (a page's
 * size after it arrived): the bucket may go into debt by the steps in flight, and the next
 * steps wait until it is repaid. Steps in flight are bounded (`handoffConcurrentPartitions`
 * transfers, `handoffCatchUpConcurrent` exchanges); a page's objects are merged
 * `handoffMergesInFlight` at a time, so one event-loop turn never carries a page's work.
 * Cost: a join takes longer (its bytes at the bucket's rate, and at most rate / step cost
 * steps per second), during which writes reach the joiner only through the catch-up.
 *
 * Invariants: a transfer is `done` only after its last page was merged (pull) or taken by
 * the target (push); a failed attempt resumes from its last complete page.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import type { Clock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import { TokenBucket } from '../antientropy/index.js';
import type { Ring } from '../ring/index.js';
import type { ReplicaStore } from '../store/index.js';
import { parsePageReply, type StreamPage } from './handoff-page.js';

export type TransferState = 'pending' | 'streaming' | 'done' | 'waiting';

export interface PartitionTransfer {
  partition: number;
  direction: 'in' | 'out';
  /** Source (in) or target (out) of the current attempt. */
  peer: string | undefined;
  state: TransferState;
  keys: number;
  bytes: number;
  reason?: string;
}

export interface TransferWork {
  readonly partition: number;
  readonly direction: 'in' | 'out';
  readonly peers: readonly string[];
}

export interface HandoffTransfersOptions {
  readonly selfId: string;
  readonly store: Pick<ReplicaStore, 'scanPartition' | 'mergeObject'>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly call: (nodeId: string, body: object, timeoutMs: number) => Promise<unknown>;
  /** One Merkle exchange of a partition with a peer (anti-entropy.ts). */
  readonly exchange: (partition: number, peer: string) => Promise<{ ok: boolean }>;
  /** Of `partitions`, those whose data here and at `peer` is the same (partition-digest.ts); without it every pair is exchanged. */
  readonly matching?: (peer: string, partitions: readonly number[]) => Promise<ReadonlySet<number>>;
  readonly isUp: (id: string) => boolean;
  /** The current ring (undefined while no member owns partitions). */
  readonly ring: () => Ring | undefined;
  /** Pace of all steps; default limits.handoffBytesPerSecondDefault. */
  readonly bytesPerSecond?: number;
  /** How the pacing waits; default a timer (tests pass one that moves a ManualClock). */
  readonly sleep?: (ms: number) => Promise<void>;
}

interface Item {
  transfer: PartitionTransfer;
  peers: readonly string[];
  afterKey: Uint8Array | undefined;
}

const timerSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const pageBytes = (page: StreamPage): number => page.entries.reduce((sum, e) => sum + e.key.length + e.object.length, 0);

/** Runs `task(i)` for i in [0, count) with at most `concurrency` running; stops early once `stop()`. */
async function forEachBounded(count: number, concurrency: number, stop: () => boolean, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count && !stop()) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

export class HandoffTransfers {
  readonly #o: HandoffTransfersOptions;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #bucket: TokenBucket;
  readonly #transfers = new Map<string, PartitionTransfer>();
  #closed = false;

  constructor(options: HandoffTransfersOptions) {
    this.#o = options;
    this.#sleep = options.sleep ?? timerSleep;
    const bytesPerSecond = options.bytesPerSecond ?? limits.handoffBytesPerSecondDefault;
    this.#bucket = new TokenBucket({ bytesPerSecond, burstBytes: limits.handoffBurstBytesDefault, nowMs: options.clock.monotonicMs() });
  }

  close(): void {
    this.#closed = true;
  }

  /** Copies of every transfer started so far. */
  list(): PartitionTransfer[] {
    return [...this.#transfers.values()].map((t) => ({ ...t }));
  }

  /** Runs every transfer to completion (retrying failed ones), a few partitions at a time. */
  async run(work: readonly TransferWork[]): Promise<void> {
    const items = work.map((w): Item => {
      const transfer: PartitionTransfer = { partition: w.partition, direction: w.direction, peer: undefined, state: 'pending', keys: 0, bytes: 0 };
      this.#transfers.set(`${w.direction}:${w.partition}:${w.peers.join(',')}`, transfer);
      return { transfer, peers: w.peers, afterKey: undefined };
    });
    if (this.#o.matching !== undefined) await this.#skipSettledPulls(items, this.#o.matching);
    await forEachBounded(items.length, limits.handoffConcurrentPartitions, () => this.#closed, async (i) => {
      const item = items[i]!;
      while (item.transfer.state !== 'done' && !this.#closed) {
        if (await this.#attempt(item)) break;
        await this.#sleep(limits.handoffRetryDelayMs);
      }
    });
  }

  /**
   * One Merkle exchange per partition with each up peer: writes made during the change. With
   * `matching`, the partitions whose digests already agree with a peer (most of them: writes
   * during the change also went to this node as a pending replica) are settled by one batched
   * rpc per peer first, and only the others are exchanged.
   */
  async catchUp(work: readonly { partition: number; peers: readonly string[] }[]): Promise<void> {
    const o = this.#o;
    let pairs = work.flatMap((w) => w.peers.filter((p) => p !== o.selfId).map((peer) => [w.partition, peer] as const));
    if (o.matching !== undefined) pairs = await this.#unsettled(pairs, o.matching);
    await forEachBounded(pairs.length, limits.handoffCatchUpConcurrent, () => this.#closed, async (i) => {
      const [partition, peer] = pairs[i]!;
      if (!o.isUp(peer)) return;
      await this.#pace(limits.handoffStepCostBytes);
      const stillReplica = o.ring()?.replicasOf(partition).includes(peer) === true;
      const ok = stillReplica
        ? (await o.exchange(partition, peer).catch(() => ({ ok: false }))).ok
        : await this.#attempt({ transfer: { partition, direction: 'in', peer, state: 'pending', keys: 0, bytes: 0 }, peers: [peer], afterKey: undefined });
      if (!ok) o.logger.debug({ partition, peer }, 'catch-up failed (anti-entropy will retry)');
    });
  }

  /**
   * Pulls whose source holds exactly what this node holds (both empty, most often: a node
   * joining a cluster with little data) are done without a page: one digest rpc per 64
   * partitions and source instead of a paced step per partition.
   */
  async #skipSettledPulls(items: readonly Item[], matching: (peer: string, partitions: readonly number[]) => Promise<ReadonlySet<number>>): Promise<void> {
    const bySource = new Map<string, Item[]>();
    for (const item of items) {
      const source = item.transfer.direction === 'in' ? item.peers.find((p) => this.#o.isUp(p)) : undefined;
      if (source !== undefined) bySource.set(source, [...(bySource.get(source) ?? []), item]);
    }
    for (const [source, pulls] of bySource) {
      if (this.#closed) return;
      await this.#pace(limits.handoffStepCostBytes * Math.ceil(pulls.length / 64));
      const same = await matching(source, pulls.map((i) => i.transfer.partition)).catch(() => new Set<number>());
      for (const item of pulls) {
        if (!same.has(item.transfer.partition)) continue;
        item.transfer.peer = source;
        item.transfer.state = 'done';
      }
    }
  }

  /** The pairs whose partition still differs from the peer's (those with a peer that stopped replicating it stay). */
  async #unsettled(
    pairs: (readonly [number, string])[],
    matching: (peer: string, partitions: readonly number[]) => Promise<ReadonlySet<number>>,
  ): Promise<(readonly [number, string])[]> {
    const byPeer = new Map<string, number[]>();
    for (const [partition, peer] of pairs) {
      if (this.#o.isUp(peer) && this.#o.ring()?.replicasOf(partition).includes(peer) === true) byPeer.set(peer, [...(byPeer.get(peer) ?? []), partition]);
    }
    const settled = new Set<string>();
    for (const [peer, partitions] of byPeer) {
      if (this.#closed) break;
      await this.#pace(limits.handoffStepCostBytes);
      const same = await matching(peer, partitions).catch(() => new Set<number>());
      for (const p of same) settled.add(`${p}/${peer}`);
    }
    if (settled.size > 0) this.#o.logger.debug({ settled: settled.size, of: pairs.length }, 'catch-up: partitions already in agreement');
    return pairs.filter(([partition, peer]) => !settled.has(`${partition}/${peer}`));
  }

  /** Waits until the bucket is out of debt, then takes `costBytes` (the bucket may go into debt). */
  async #pace(costBytes: number): Promise<void> {
    const clock = this.#o.clock;
    for (;;) {
      const nowMs = clock.monotonicMs();
      const readyAtMs = this.#bucket.readyAtMs(1, nowMs);
      if (readyAtMs <= nowMs || this.#closed) break;
      await this.#sleep(readyAtMs - nowMs);
    }
    this.#bucket.charge(costBytes, clock.monotonicMs());
  }

  /** One attempt at a transfer, resuming from its last page; true when it finished. */
  async #attempt(item: Item): Promise<boolean> {
    const t = item.transfer;
    const peer = item.peers.find((p) => this.#o.isUp(p));
    if (peer === undefined) {
      t.state = 'waiting';
      t.reason = `no up ${t.direction === 'in' ? 'source' : 'target'} among ${item.peers.join(', ') || 'none'}`;
      return false;
    }
    t.peer = peer;
    t.state = 'streaming';
    try {
      do {
        await this.#pace(limits.handoffStepCostBytes);
        const page = t.direction === 'in' ? await this.#pullPage(t.partition, peer, item.afterKey) : await this.#pushPage(t.partition, peer, item.afterKey);
        const bytes = pageBytes(page);
        t.keys += page.entries.length;
        t.bytes += bytes;
        item.afterKey = page.nextAfterKey;
      } while (item.afterKey !== undefined && !this.#closed);
      t.state = 'done';
      delete t.reason;
      return true;
    } catch (error) {
      t.state = 'waiting';
      t.reason = error instanceof Error ? error.message : String(error);
      this.#o.logger.debug({ partition: t.partition, peer, err: error }, 'partition transfer failed; will retry');
      return false;
    }
  }

  async #pullPage(partition: number, source: string, afterKey: Uint8Array | undefined): Promise<StreamPage> {
    const body = { t: 'handoff-page', partition, limit: limits.handoffPageEntries, ...(afterKey ? { afterKey } : {}) };
    const page = parsePageReply(await this.#o.call(source, body, limits.handoffRequestTimeoutMs));
    this.#bucket.charge(pageBytes(page), this.#o.clock.monotonicMs());
    const store = this.#o.store;
    await forEachBounded(page.entries.length, limits.handoffMergesInFlight, () => false, (i) => store.mergeObject(page.entries[i]!.key, page.entries[i]!.object));
    return page;
  }

  async #pushPage(partition: number, target: string, afterKey: Uint8Array | undefined): Promise<StreamPage> {
    const scanned = await this.#o.store.scanPartition(partition, { limit: limits.handoffPageEntries, ...(afterKey ? { afterKey } : {}) });
    const entries = scanned.entries.map((e) => ({ key: e.key, object: e.value }));
    this.#bucket.charge(pageBytes({ entries }), this.#o.clock.monotonicMs());
    const replies = await Promise.all(entries.map((e) => this.#o.call(target, { t: 'replica-write', key: e.key, object: e.object }, limits.handoffRequestTimeoutMs)));
    const failed = replies.findIndex((r) => (r as { t?: unknown } | undefined)?.t !== 'replica-write-reply');
    if (failed >= 0) throw new RingkvError(ErrorCode.unavailable, `${target} did not take a pushed object`, {});
    return scanned.nextAfterKey === undefined ? { entries } : { entries, nextAfterKey: scanned.nextAfterKey };
  }
}
