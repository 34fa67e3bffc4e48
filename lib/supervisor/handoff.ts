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
 * exchange per gained partition with each old replica. Writes coordinated during the stream
 * also reach the joiner directly (pending replicas, pending-replicas.ts); the exchange carries
 * over those that did not: made while gossip was still spreading the `joining` status, or
 * whose unacknowledged copy to the joiner was lost.
 * A node that restarts goes `normal` at once: from its persisted view (lifecycle/membership-file.ts),
 * or, without one, when it has the marker or a peer knows it as an owner.
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
 * node that restarts with its old data is refused (lifecycle/start-check.ts).
 *
 * Replace (`ringkv start --replace`, issue 10; Cassandra's replace_address_first_boot). The
 * new node took the dead member's id (so the ring, a function of ids, gives it exactly that
 * member's partitions and nothing else moves) under a new generation and a new version-vector
 * actor, and gossips `replacing`: coordinators count it as down but send it every write
 * (replica-placement.ts). `onReplaceable` pulls each of its partitions from an up surviving
 * replica, catches up with each of them, turns `normal`, and catches up once more (digests
 * first): writes it coordinated meanwhile went to the other replicas only.
 *
 * Pacing (issue 5 §6: foreground p99 within +20% while a node joins). The transfer loops live
 * in handoff-transfers.ts; every step there (a page pulled or pushed, a catch-up exchange)
 * takes from one token bucket per node (`handoffBytesPerSecondDefault`), charged with its bytes
 * plus a fixed `handoffStepCostBytes`, and a page's objects are merged a few at a time. Why a
 * bucket and not just fewer partitions at once: on a shared 2-core machine what hurts the
 * foreground is background work per second, whatever its shape; and why a per-step cost: a
 * join is mostly many small steps (a page of a small partition, then one exchange per old
 * replica and partition, about 3 x 3/4 x Q of them), whose cost is the scans and rpcs, not
 * their bytes. Measured (perf/handoff.ts): under load the catch-up exchanges, not the
 * stream, are most of a join's time (about 5 s streaming, 20+ s catching up), and the
 * 4-node state after the join is no slower than the 3-node idle one: what is left of the
 * p99 increase was the catch-up itself (one exchange per old replica and partition). So the
 * catch-up first compares partition digests with each old replica in batched rpcs
 * (partition-digest.ts): writes during the change also reached this node as a pending replica,
 * so most partitions already agree and only the others are exchanged.
 *
 * Old owners drop partitions they no longer replicate once every new replica has them
 * (auto-cleanup.ts, and `cleanup` in anti-entropy.ts at once). Not done: a change that starts while another is streaming is not replanned.
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
import { isBytes, pageCrc } from './handoff-page.js';
import { HandoffTransfers, type PartitionTransfer } from './handoff-transfers.js';

export type { PartitionTransfer, TransferState } from './handoff-transfers.js';

export const JOINED_FILE_NAME = 'JOINED';

export interface TransferStats {
  phase: 'idle' | 'joining' | 'replacing' | 'catching-up' | 'leaving' | 'left' | 'removing';
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
  /** Of `partitions`, those whose data here and at `peer` already agree (partition-digest.ts); catch-up exchanges only the others. */
  readonly matching?: (peer: string, partitions: readonly number[]) => Promise<ReadonlySet<number>>;
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
  /** Pace of transfers and catch-up; default limits.handoffBytesPerSecondDefault (handoff-transfers.ts). */
  readonly bytesPerSecond?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function isHandoffMessage(body: unknown): boolean {
  const t = (body as { t?: unknown } | null)?.t;
  return typeof t === 'string' && t.startsWith('handoff-');
}

export class Handoff {
  readonly #o: HandoffOptions;
  readonly #transfers: HandoffTransfers;
  #phase: TransferStats['phase'] = 'idle';
  #joinStarted = false;
  /** The ring last seen by onRingChange. */
  #lastRing: Ring | undefined;
  #leaving: Promise<void> | undefined;
  #closed = false;

  constructor(options: HandoffOptions) {
    this.#o = options;
    this.#transfers = new HandoffTransfers(options);
  }

  close(): void {
    this.#closed = true;
    this.#transfers.close();
  }

  stats(): TransferStats {
    const partitions = this.#transfers.list();
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
        return { t: 'handoff-hello-reply', owner: typeof b.id === 'string' && this.#o.wasOwner(b.id), removals: this.#o.removals(), members: this.#helloMembers() };
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

  /** The members as this node sees them, for a start check (lifecycle/start-check.ts). */
  #helloMembers(): { id: string; address: string; generation: number; status: string; up: boolean }[] {
    return this.#o.members().map((m) => ({ id: m.id, address: m.address, generation: m.generation, status: m.status, up: this.#o.isUp(m.id) }));
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
    await this.#transfers.run(gained.map((c) => ({ partition: c.partition, direction: 'in' as const, peers: [...c.from] })));
    if (this.#closed) return;
    this.#becomeNormal();
    this.#phase = 'catching-up';
    await this.#waitRing();
    await this.#transfers.catchUp(gained.map((c) => ({ partition: c.partition, peers: c.from })));
    this.#phase = 'idle';
    o.logger.info({ partitions: gained.length }, 'join complete');
  }

  // ------------------------------------------------------------------ replace

  /** Called by the membership driver each round while we are `replacing` and a peer is up. */
  onReplaceable(): void {
    if (this.#joinStarted || this.#closed) return;
    this.#joinStarted = true;
    void this.#replace().catch((error: unknown) => {
      this.#joinStarted = false;
      this.#o.logger.warn({ err: error }, 'replace attempt failed; retrying');
    });
  }

  async #replace(): Promise<void> {
    const o = this.#o;
    const ring = o.ring();
    if (ring === undefined) throw new Error('no ring yet');
    const work = ring.replicaPartitionsOf(o.selfId).map((partition) => ({ partition, peers: ring.replicasOf(partition).filter((id) => id !== o.selfId) }));
    this.#phase = 'replacing';
    o.logger.info({ partitions: work.length }, 'replacing: streaming the dead member\'s partitions from the surviving replicas');
    await this.#transfers.run(work.map((w) => ({ ...w, direction: 'in' as const })));
    if (this.#closed) return;
    await this.#transfers.catchUp(work);
    if (this.#closed) return;
    this.#becomeNormal();
    // Writes this node coordinated since its catch-up went only to the other replicas (it was
    // no write target of its own): one more digest pass picks them up, cheap where they agree.
    this.#phase = 'catching-up';
    await this.#transfers.catchUp(work);
    this.#phase = 'idle';
    o.logger.info({ partitions: work.length }, 'replace complete: now normal');
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
    await this.#transfers.run(work);
    if (this.#closed) return;
    o.setStatus('left');
    this.#phase = 'left';
    await this.#waitRing();
    await this.#transfers.catchUp(work.map((w) => ({ partition: w.partition, peers: w.peers })));
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
    void this.#transfers.run(work.map((w) => ({ ...w, direction: 'in' as const })))
      .then(() => this.#transfers.catchUp(work))
      .then(() => {
        if (this.#phase === 'catching-up') this.#phase = 'idle';
      });
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
}
