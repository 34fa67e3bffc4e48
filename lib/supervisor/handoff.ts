/**
 * Membership-change handoff (DESIGN.md §3 "Failure handling", issue 5 §3): moving partitions
 * to their new owners when a node joins, leaves or is removed, without losing an acknowledged
 * write. Owned by the supervisor (main thread); every wait is an rpc or a timer.
 *
 * Join (pull). A node with no JOINED marker that the cluster never knew as an owner (asked by
 * `handoff-hello`) stays `joining`; for every partition it replicates in the target ring
 * (joining members in) it pulls pages from one up current replica (`handoff-page`, resumable
 * by afterKey, each page CRC32C-checked) and merges every object. Then it turns `normal`,
 * waits until every up member reports its ring version (`handoff-ring`), and runs one Merkle
 * exchange per gained partition with each old replica: writes coordinated during the stream
 * and during gossip's spread of the new status went only to the old owners, and the exchange
 * carries them over. (Chosen over dual writes: no coordinator change; the cost is a window
 * where an R=1 read at the new node may miss a very recent write; quorum reads still see it.)
 * A node that restarts (marker, or known as an owner) goes `normal` at once, as before.
 *
 * Side effects. A change can also hand partitions to nodes other than the one joining (a
 * preference list walks past the newcomer) or leaving. Every node watches its ring: for each
 * partition a ring change adds it to (while it already was an owner, so not its own join, and
 * not pushed by a member that left on its own), it pulls the partition from the previous replicas and then
 * catches up with them. Catch-up is a Merkle exchange with a peer that still replicates the
 * partition, else a second pull (a former replica no longer answers exchanges for it).
 *
 * Leave (push). `leave()` marks the node `leaving` (it still owns in the current ring and keeps
 * taking writes), pushes every partition it replicates to the replicas the target ring adds
 * (replica-write per object, a page at a time), turns `left`, waits for the ring to spread,
 * runs one exchange per pushed partition and target (writes that landed here meanwhile), and
 * calls `onLeft`.
 *
 * Remove. Gossip carries only a member's own record, so a dead node cannot say `left`. Instead
 * `removeNode(id)` records `{id, generation}` as removed (membership-driver.ts leaves removed
 * incarnations out of the ring and shows them `left`) and sends `handoff-remove` to every up
 * member; `handoff-hello` replies carry the removals to nodes that join later. A node that
 * gains partitions by a removal pulls them from the surviving replicas (side effects). A removed
 * node that restarts comes back under a new generation, no longer removed.
 *
 * Old owners keep partitions they no longer replicate until `cleanup` (anti-entropy.ts), as in
 * Cassandra. Not done: a change that starts while another is streaming is not replanned.
 * The stream page format is in handoff-page.ts.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, RingkvError } from '../base/errors.js';
import type { Clock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import type { MemberState } from '../membership/index.js';
import { computeTargetRing, diffRings, type Replication, type Ring } from '../ring/index.js';
import { writeJsonFileAtomically } from '../storage/json-file.js';
import type { ReplicaStore } from '../store/index.js';
import { isBytes, pageCrc, parsePageReply, type StreamPage } from './handoff-page.js';

export const JOINED_FILE_NAME = 'JOINED';

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

export interface TransferStats {
  phase: 'idle' | 'joining' | 'catching-up' | 'leaving' | 'left' | 'removing';
  done: number;
  total: number;
  keys: number;
  bytes: number;
  partitions: PartitionTransfer[];
}

export interface HandoffOptions {
  readonly selfId: string;
  /** The node's data directory (the JOINED marker lives there). */
  readonly dir: string;
  readonly store: ReplicaStore;
  readonly partitionBits: number;
  readonly replication: Replication;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly call: (nodeId: string, body: object, timeoutMs: number) => Promise<unknown>;
  /** One Merkle exchange of a partition with a peer (anti-entropy.ts). */
  readonly exchange: (partition: number, peer: string) => Promise<{ ok: boolean }>;
  /** Gossip's members, removed incarnations shown `left`. */
  readonly members: () => readonly MemberState[];
  readonly isUp: (id: string) => boolean;
  /** The current ring (undefined while no member owns partitions). */
  readonly ring: () => Ring | undefined;
  readonly setStatus: (status: 'normal' | 'leaving' | 'left') => void;
  /** Whether this node ever saw `id` own partitions (answers `handoff-hello`). */
  readonly wasOwner: (id: string) => boolean;
  readonly removals: () => readonly { id: string; generation: number }[];
  /** Records a removal; returns the rings before and after, or undefined when nothing changed. */
  readonly applyRemoval: (id: string, generation: number) => { before: Ring | undefined; after: Ring | undefined } | undefined;
  readonly onLeft?: () => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function isHandoffMessage(body: unknown): boolean {
  const t = (body as { t?: unknown } | null)?.t;
  return typeof t === 'string' && t.startsWith('handoff-');
}

export class Handoff {
  readonly #o: HandoffOptions;
  readonly #transfers = new Map<string, PartitionTransfer>();
  #phase: TransferStats['phase'] = 'idle';
  #joinStarted = false;
  /** The ring last seen by onRingChange. */
  #lastRing: Ring | undefined;
  #leaving: Promise<void> | undefined;
  #closed = false;

  constructor(options: HandoffOptions) {
    this.#o = options;
  }

  close(): void {
    this.#closed = true;
  }

  stats(): TransferStats {
    const partitions = [...this.#transfers.values()].map((t) => ({ ...t }));
    const sum = (f: (t: PartitionTransfer) => number): number => partitions.reduce((a, t) => a + f(t), 0);
    return { phase: this.#phase, done: sum((t) => (t.state === 'done' ? 1 : 0)), total: partitions.length, keys: sum((t) => t.keys), bytes: sum((t) => t.bytes), partitions };
  }

  // ------------------------------------------------------------------ serving peers

  /** Answers one handoff-* rpc from the authenticated peer `from`. */
  async serve(from: string, body: unknown): Promise<unknown> {
    const b = body as Record<string, unknown>;
    switch (b.t) {
      case 'handoff-page':
        return this.#servePage(b);
      case 'handoff-hello':
        return { t: 'handoff-hello-reply', owner: typeof b.id === 'string' && this.#o.wasOwner(b.id), removals: this.#o.removals() };
      case 'handoff-ring':
        return { t: 'handoff-ring-reply', version: this.#o.ring()?.version ?? '' };
      case 'handoff-remove':
        if (typeof b.id !== 'string' || typeof b.generation !== 'number' || b.id === this.#o.selfId) break;
        this.#o.logger.info({ member: b.id, by: from }, 'member removed by a peer');
        this.#onRemoval(b.id, b.generation);
        return { t: 'handoff-remove-reply' };
    }
    return { t: 'handoff-error', code: ErrorCode.badRequest, message: 'malformed handoff request' };
  }

  async #servePage(b: Record<string, unknown>): Promise<unknown> {
    const { partition, afterKey, limit } = b;
    const q = 2 ** this.#o.partitionBits;
    if (typeof partition !== 'number' || !Number.isInteger(partition) || partition < 0 || partition >= q) return { t: 'handoff-error', code: ErrorCode.badRequest, message: 'bad partition' };
    if (afterKey !== undefined && !isBytes(afterKey)) return { t: 'handoff-error', code: ErrorCode.badRequest, message: 'bad afterKey' };
    const entriesMax = typeof limit === 'number' && Number.isInteger(limit) ? Math.min(Math.max(1, limit), limits.handoffPageEntries) : limits.handoffPageEntries;
    const page = await this.#o.store.scanPartition(partition, { limit: entriesMax, ...(afterKey ? { afterKey } : {}) });
    const entries: { key: Uint8Array; object: Uint8Array }[] = [];
    let bytes = 0;
    for (const { key, value } of page.entries) {
      if (entries.length > 0 && bytes + key.length + value.length > limits.handoffPageBytesSoft) break;
      entries.push({ key, object: value });
      bytes += key.length + value.length;
    }
    const truncated = entries.length < page.entries.length;
    const nextAfterKey = truncated ? entries[entries.length - 1]!.key : page.nextAfterKey;
    return { t: 'handoff-page-reply', entries, crc: pageCrc(entries), ...(nextAfterKey ? { nextAfterKey } : {}) };
  }

  // ------------------------------------------------------------------ join

  /** Called by the membership driver each round while we are `joining` and a ring exists. */
  onJoinable(): void {
    if (this.#joinStarted || this.#closed) return;
    this.#joinStarted = true;
    void this.#join().catch((error: unknown) => {
      this.#joinStarted = false;
      this.#o.logger.warn({ err: error }, 'join attempt failed; retrying');
    });
  }

  async #join(): Promise<void> {
    const o = this.#o;
    const current = o.ring();
    const seed = o.members().find((m) => m.id !== o.selfId && m.status === 'normal' && o.isUp(m.id));
    if (current === undefined || seed === undefined) throw new Error('no live owner to join through yet');
    const hello = (await o.call(seed.id, { t: 'handoff-hello', id: o.selfId }, limits.handoffRequestTimeoutMs)) as { t?: unknown; owner?: unknown; removals?: unknown } | undefined;
    if (hello?.t !== 'handoff-hello-reply') throw new Error(`${seed.id} did not answer hello`);
    if (Array.isArray(hello.removals)) for (const r of hello.removals as { id?: unknown; generation?: unknown }[]) if (typeof r.id === 'string' && typeof r.generation === 'number') o.applyRemoval(r.id, r.generation);
    if (hello.owner === true || existsSync(join(o.dir, JOINED_FILE_NAME))) {
      o.logger.info({ via: seed.id }, 'rejoining as a known owner: normal at once');
      this.#becomeNormal();
      return;
    }
    const target = computeTargetRing(o.members().filter((m) => m.status !== 'left'), { partitionBits: o.partitionBits, replication: o.replication });
    const gained = diffRings(current, target).filter((c) => c.added.includes(o.selfId));
    this.#phase = 'joining';
    o.logger.info({ partitions: gained.length }, 'joining: streaming partitions from their current replicas');
    await this.#run(gained.map((c) => ({ partition: c.partition, direction: 'in' as const, peers: [...c.from] })));
    if (this.#closed) return;
    this.#becomeNormal();
    this.#phase = 'catching-up';
    await this.#waitRing();
    await this.#catchUp(gained.map((c) => ({ partition: c.partition, peers: c.from })));
    this.#phase = 'idle';
    o.logger.info({ partitions: gained.length }, 'join complete');
  }

  #becomeNormal(): void {
    writeJsonFileAtomically(this.#o.dir, JOINED_FILE_NAME, { format: 'ringkv-joined', formatVersion: 1, id: this.#o.selfId });
    this.#o.setStatus('normal');
  }

  // ------------------------------------------------------------------ leave

  /** Starts leaving (idempotent); resolves once this node is `left` and handed off. */
  leave(): Promise<void> {
    const self = this.#o.members().find((m) => m.id === this.#o.selfId);
    if (this.#leaving === undefined && self?.status !== 'normal') {
      throw new RingkvError(ErrorCode.unavailable, `cannot leave while ${self?.status ?? 'unknown'}: only a normal node can leave`, {});
    }
    this.#leaving ??= this.#leave();
    return this.#leaving;
  }

  async #leave(): Promise<void> {
    const o = this.#o;
    o.setStatus('leaving');
    this.#phase = 'leaving';
    const current = o.ring()!;
    const members = o.members().filter((m) => m.status !== 'left');
    const others = members.filter((m) => m.id !== o.selfId);
    const target = others.length === 0 ? undefined : computeTargetRing(members, { partitionBits: o.partitionBits, replication: o.replication });
    const changes = target === undefined ? [] : diffRings(current, target).filter((c) => c.removed.includes(o.selfId));
    const work = changes.flatMap((c) => c.added.map((to) => ({ partition: c.partition, direction: 'out' as const, peers: [to] })));
    o.logger.info({ transfers: work.length }, 'leaving: pushing partitions to their new replicas');
    await this.#run(work);
    if (this.#closed) return;
    o.setStatus('left');
    this.#phase = 'left';
    await this.#waitRing();
    await this.#catchUp(work.map((w) => ({ partition: w.partition, peers: w.peers })));
    o.logger.info({ transfers: work.length }, 'left the cluster');
    o.onLeft?.();
  }

  // ------------------------------------------------------------------ remove

  /** Removes a dead member on its behalf and tells every up member. */
  async removeNode(id: string): Promise<{ removed: string; told: string[] }> {
    const o = this.#o;
    const member = o.members().find((m) => m.id === id);
    if (member === undefined || member.status === 'left') throw new RangeError(`id ${JSON.stringify(id)} is not a member`);
    if (id === o.selfId || o.isUp(id)) throw new RingkvError(ErrorCode.unavailable, `${id} is up: stop it first, or let it leave`, {});
    this.#onRemoval(id, member.generation);
    const peers = o.members().filter((m) => m.id !== o.selfId && m.id !== id && m.status !== 'left' && o.isUp(m.id));
    const replies = await Promise.all(peers.map((m) => o.call(m.id, { t: 'handoff-remove', id, generation: member.generation }, limits.handoffRequestTimeoutMs)));
    return { removed: id, told: peers.filter((_, i) => (replies[i] as { t?: unknown } | undefined)?.t === 'handoff-remove-reply').map((m) => m.id) };
  }

  #onRemoval(id: string, generation: number): void {
    this.#o.applyRemoval(id, generation); // the ring change that follows drives the pulls
  }

  /** Called on every membership change: pulls the partitions the new ring gives us. */
  onRingChange(): void {
    const o = this.#o;
    const before = this.#lastRing;
    const after = o.ring();
    this.#lastRing = after;
    const self = o.members().find((m) => m.id === o.selfId);
    if (before === undefined || after === undefined || this.#closed || self?.status !== 'normal') return;
    // Our own join (streamed before `normal`, or a known owner rejoining) is not a gain here.
    if (!before.owners.some((m) => m.id === o.selfId)) return;
    const removed = new Set(o.removals().map((r) => r.id));
    const leftOnTheirOwn = (id: string): boolean => !removed.has(id) && o.members().find((m) => m.id === id)?.status === 'left';
    const gained = diffRings(before, after).filter(
      (c) => c.added.includes(o.selfId) && !(c.removed.length > 0 && c.removed.every(leftOnTheirOwn)),
    );
    if (gained.length === 0) return;
    const work = gained.map((c) => ({ partition: c.partition, peers: c.from.filter((p) => p !== o.selfId) }));
    this.#phase = 'catching-up';
    o.logger.info({ partitions: work.length }, 'the ring gave us partitions: pulling them');
    void this.#run(work.map((w) => ({ ...w, direction: 'in' as const })))
      .then(() => this.#catchUp(work))
      .then(() => {
        if (this.#phase === 'catching-up') this.#phase = 'idle';
      });
  }

  // ------------------------------------------------------------------ transfers

  /** Runs every transfer to completion (retrying failed ones), a few partitions at a time. */
  async #run(work: readonly { partition: number; direction: 'in' | 'out'; peers: readonly string[] }[]): Promise<void> {
    const items = work.map((w) => {
      const transfer: PartitionTransfer = { partition: w.partition, direction: w.direction, peer: undefined, state: 'pending', keys: 0, bytes: 0 };
      this.#transfers.set(`${w.direction}:${w.partition}:${w.peers.join(',')}`, transfer);
      return { transfer, peers: w.peers, afterKey: undefined as Uint8Array | undefined };
    });
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length && !this.#closed) {
        const item = items[next++]!;
        while (item.transfer.state !== 'done' && !this.#closed) {
          if (await this.#attempt(item)) break;
          await sleep(limits.handoffRetryDelayMs);
        }
      }
    };
    await Promise.all(Array.from({ length: limits.handoffConcurrentPartitions }, worker));
  }

  /** One attempt at a transfer, resuming from its last page; true when it finished. */
  async #attempt(item: { transfer: PartitionTransfer; peers: readonly string[]; afterKey: Uint8Array | undefined }): Promise<boolean> {
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
        const page = t.direction === 'in' ? await this.#pullPage(t.partition, peer, item.afterKey) : await this.#pushPage(t.partition, peer, item.afterKey);
        t.keys += page.entries.length;
        t.bytes += page.entries.reduce((sum, e) => sum + e.key.length + e.object.length, 0);
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
    for (const { key, object } of page.entries) await this.#o.store.mergeObject(key, object);
    return page;
  }

  async #pushPage(partition: number, target: string, afterKey: Uint8Array | undefined): Promise<StreamPage> {
    const scanned = await this.#o.store.scanPartition(partition, { limit: limits.handoffPageEntries, ...(afterKey ? { afterKey } : {}) });
    const entries = scanned.entries.map((e) => ({ key: e.key, object: e.value }));
    const replies = await Promise.all(entries.map((e) => this.#o.call(target, { t: 'replica-write', key: e.key, object: e.object }, limits.handoffRequestTimeoutMs)));
    const failed = replies.findIndex((r) => (r as { t?: unknown } | undefined)?.t !== 'replica-write-reply');
    if (failed >= 0) throw new RingkvError(ErrorCode.unavailable, `${target} did not take a pushed object`, {});
    return scanned.nextAfterKey === undefined ? { entries } : { entries, nextAfterKey: scanned.nextAfterKey };
  }

  /** Waits (bounded) until every up member reports our ring version. */
  async #waitRing(): Promise<void> {
    const o = this.#o;
    const deadline = o.clock.monotonicMs() + limits.handoffRingWaitMs;
    while (!this.#closed && o.clock.monotonicMs() < deadline) {
      const version = o.ring()?.version ?? '';
      const peers = o.members().filter((m) => m.id !== o.selfId && m.status !== 'left' && o.isUp(m.id));
      const replies = await Promise.all(peers.map((m) => o.call(m.id, { t: 'handoff-ring' }, limits.handoffRequestTimeoutMs)));
      if (replies.every((r) => (r as { version?: unknown } | undefined)?.version === version)) return;
      await sleep(limits.handoffRetryDelayMs);
    }
    o.logger.warn('the new ring did not reach every member in time; catching up anyway');
  }

  /** One Merkle exchange per partition with each up peer: writes made during the change. */
  async #catchUp(work: readonly { partition: number; peers: readonly string[] }[]): Promise<void> {
    const pairs = work.flatMap((w) => w.peers.filter((p) => p !== this.#o.selfId).map((peer) => [w.partition, peer] as const));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < pairs.length && !this.#closed) {
        const [partition, peer] = pairs[next++]!;
        if (!this.#o.isUp(peer)) continue;
        const stillReplica = this.#o.ring()?.replicasOf(partition).includes(peer) === true;
        const ok = stillReplica
          ? (await this.#o.exchange(partition, peer).catch(() => ({ ok: false }))).ok
          : await this.#attempt({ transfer: { partition, direction: 'in', peer, state: 'pending', keys: 0, bytes: 0 }, peers: [peer], afterKey: undefined });
        if (!ok) this.#o.logger.debug({ partition, peer }, 'catch-up failed (anti-entropy will retry)');
      }
    };
    await Promise.all(Array.from({ length: limits.handoffConcurrentPartitions }, worker));
  }
}
