/**
 * One exchange (DESIGN.md §2): the initiator's side of a Merkle anti-entropy comparison of one
 * partition with one other replica (Dynamo §4.7; riak_kv's AAE exchange FSM). Sans-IO: no
 * timers, no sockets, no store; time is an argument and effects are returned as actions.
 * Owned by the supervisor's main thread; the responder's side is exchange-responder.ts.
 *
 * Steps, one request or local operation outstanding at a time:
 *   1. descend — ask for the responder's root; while nodes differ, ask for the children of the
 *      differing nodes, level by level, batched (`nodesPerRequestMax` parents per request),
 *      comparing with this replica's own tree, down to the differing leaves;
 *   2. list    — list this replica's keys of a batch of differing leaves (`list-local`; the
 *      driver may stop after any whole leaf), then ask the responder for the same leaves (it may
 *      answer a prefix of whole leaves) and diff the common prefix (leaf-diff.ts);
 *   3. transfer — fetch the responder's objects of keys it holds differently (`ae-fetch`) and
 *      merge each here (`merge-local`); read this replica's objects of keys it holds
 *      differently (`read-local`) and push them (`ae-push`), which the responder merges;
 *      `keysPerRoundMax` keys per message; then the next batch of leaves.
 * Both directions move, so afterwards both replicas hold mergeReplicas of the two states for
 * every key that differed when it was listed. Traffic is O(differences × (log leaves + keys
 * per leaf)), not O(data): two equal trees cost one root request.
 *
 * Driving it (the supervisor), every call returns actions to perform in order:
 *   const x = new Exchange({ exchangeId, peer, tree, bucket? … }); x.start(nowMs)
 *   x.onReply(body, nowMs)                  the (unvalidated) reply to the last `send`
 *   x.onLocalList(entries, leavesScanned, nowMs)   answer to `list-local` (entries in leaf order)
 *   x.onLocalRead(objects, nowMs)           answer to `read-local` (undefined: no record)
 *   x.onTimer(nowMs)                        the last `set-timer` came due (it replaces earlier ones)
 *   x.fail(code, message, nowMs)            a send or a local operation failed
 * Actions: {type:'send', to, message, bytes} · {type:'list-local', partition, leaves} ·
 * {type:'read-local', partition, keys} · {type:'merge-local', partition, key, object} (merge
 * with mergeReplicas and feed the tree, no answer; an expired tombstone for a key not held here
 * is skipped, see purge-ledger.ts `isExpiredTombstone`) · {type:'set-timer', atMs} ·
 * {type:'complete', result}. On success the driver records the exchange in its PurgeLedger
 * with the wall time at which it created the exchange.
 *
 * Rate: sends take their estimated bytes (exchange-message.ts) from the token bucket and
 * replies are charged to it, so a node's anti-entropy traffic stays near the bucket's rate;
 * when the bucket is empty the exchange asks for a timer instead of sending.
 * Bounds: one outstanding request, batches bounded by the options, `keysPerExchangeMax` keys
 * transferred per exchange (it then completes as partial; the next exchange continues).
 */

import { assert } from '../base/assert.js';
import { ErrorCode, type ErrorCode as Code } from '../base/errors.js';
import { tokenOf } from '../base/hash.js';
import { limits } from '../base/limits.js';
import { type ExchangeReply, type ExchangeRequest, type ListReply, messageBytes, parseExchangeMessage } from './exchange-message.js';
import { diffLeaves, keyId, type LeafEntry } from './leaf-diff.js';
import type { PartitionTree } from './partition-tree.js';
import type { TokenBucket } from './token-bucket.js';
import { hashesEqual, nodeHashBytes, treeHashVersion } from './tree-hash.js';

export interface ExchangeOptions {
  /** The driver's id for this exchange, unique among its exchanges in flight. */
  readonly exchangeId: number;
  /** The responder: another replica of the partition. */
  readonly peer: string;
  /** This replica's tree of the partition. */
  readonly tree: PartitionTree;
  /** Shared rate limit; none: unlimited. */
  readonly bucket?: TokenBucket;
  readonly keysPerRoundMax?: number;
  readonly keysPerExchangeMax?: number;
  readonly nodesPerRequestMax?: number;
  readonly requestTimeoutMs?: number;
  /** Push messages add objects while under this estimate (at least one). */
  readonly messageBytesSoft?: number;
}

export interface ExchangeStats {
  messagesSent: number;
  bytesSent: number;
  bytesReceived: number;
  nodesCompared: number;
  leavesDiffering: number;
  keysDiffering: number;
  keysFetched: number;
  keysPushed: number;
  repliesIgnored: number;
}

export type ExchangeResult =
  | { readonly ok: true; readonly partial: boolean; readonly stats: ExchangeStats }
  | { readonly ok: false; readonly code: Code; readonly message: string; readonly stats: ExchangeStats };

export type ExchangeAction =
  | { readonly type: 'send'; readonly to: string; readonly message: ExchangeRequest; readonly bytes: number }
  | { readonly type: 'list-local'; readonly partition: number; readonly leaves: readonly number[] }
  | { readonly type: 'read-local'; readonly partition: number; readonly keys: readonly Uint8Array[] }
  | { readonly type: 'merge-local'; readonly partition: number; readonly key: Uint8Array; readonly object: Uint8Array }
  | { readonly type: 'set-timer'; readonly atMs: number }
  | { readonly type: 'complete'; readonly result: ExchangeResult };

type Outstanding =
  | { readonly kind: 'remote'; readonly request: ExchangeRequest; readonly deadlineMs: number; readonly expected: number }
  | { readonly kind: 'list-local'; readonly leaves: readonly number[] }
  | { readonly kind: 'read-local'; readonly keys: readonly Uint8Array[] };

type Phase = 'idle' | 'descend' | 'list' | 'transfer' | 'done';

export class Exchange {
  readonly exchangeId: number;
  readonly peer: string;
  readonly partition: number;
  readonly #tree: PartitionTree;
  readonly #bucket: TokenBucket | undefined;
  readonly #keysPerRoundMax: number;
  readonly #keysPerExchangeMax: number;
  readonly #nodesPerRequestMax: number;
  readonly #requestTimeoutMs: number;
  readonly #messageBytesSoft: number;
  readonly #stats: ExchangeStats = {
    messagesSent: 0,
    bytesSent: 0,
    bytesReceived: 0,
    nodesCompared: 0,
    leavesDiffering: 0,
    keysDiffering: 0,
    keysFetched: 0,
    keysPushed: 0,
    repliesIgnored: 0,
  };
  #phase: Phase = 'idle';
  #seq = 0;
  #outstanding: Outstanding | undefined;
  /** A request waiting for the bucket, with the number of hashes or objects its reply may hold. */
  #waiting: { readonly request: ExchangeRequest; readonly expected: number } | undefined;
  /** merge-local actions of the last fetch reply, emitted before whatever comes next. */
  #pendingMerges: ExchangeAction[] = [];
  #rootAsked = false;
  // descend: the level being asked for, the parents still to ask about, the differing nodes found.
  #level = 0;
  #parents: number[] = [];
  #found: number[] = [];
  // list and transfer
  #leaves: number[] = [];
  #localEntries: readonly LeafEntry[] = [];
  #localLeaves: readonly number[] = [];
  #fetch: Uint8Array[] = [];
  #push: Uint8Array[] = [];
  #pushReady: { key: Uint8Array; object: Uint8Array }[] = [];
  #keysTransferred = 0;
  #result: ExchangeResult | undefined;

  constructor(options: ExchangeOptions) {
    if (!Number.isSafeInteger(options.exchangeId) || options.exchangeId < 0) throw new RangeError('exchangeId must be a non-negative safe integer');
    if (typeof options.peer !== 'string' || options.peer.length === 0) throw new TypeError('peer must be a non-empty string');
    this.exchangeId = options.exchangeId;
    this.peer = options.peer;
    this.#tree = options.tree;
    this.partition = options.tree.partition;
    this.#bucket = options.bucket;
    this.#keysPerRoundMax = positive(options.keysPerRoundMax ?? limits.antiEntropyKeysPerRoundDefault, limits.antiEntropyKeysPerMessageMax, 'keysPerRoundMax');
    this.#keysPerExchangeMax = positive(options.keysPerExchangeMax ?? limits.antiEntropyKeysPerExchangeDefault, Number.MAX_SAFE_INTEGER, 'keysPerExchangeMax');
    this.#nodesPerRequestMax = positive(options.nodesPerRequestMax ?? limits.antiEntropyNodesPerRequestMax, limits.antiEntropyNodesPerRequestMax, 'nodesPerRequestMax');
    this.#requestTimeoutMs = positive(options.requestTimeoutMs ?? limits.antiEntropyRequestTimeoutMs, Number.MAX_SAFE_INTEGER, 'requestTimeoutMs');
    this.#messageBytesSoft = positive(options.messageBytesSoft ?? limits.antiEntropyMessageBytesSoft, limits.wireFrameBytesMax, 'messageBytesSoft');
  }

  get done(): boolean {
    return this.#phase === 'done';
  }

  get result(): ExchangeResult | undefined {
    return this.#result;
  }

  stats(): Readonly<ExchangeStats> {
    return { ...this.#stats };
  }

  start(nowMs: number): ExchangeAction[] {
    assert(this.#phase === 'idle', 'exchange started twice');
    this.#phase = 'descend';
    this.#level = 0;
    return this.#advance(nowMs);
  }

  onTimer(nowMs: number): ExchangeAction[] {
    const outstanding = this.#outstanding;
    if (outstanding?.kind === 'remote' && nowMs >= outstanding.deadlineMs) {
      return this.#finish({ ok: false, code: ErrorCode.timeout, message: `${this.peer} did not answer ${outstanding.request.t} within ${this.#requestTimeoutMs} ms`, stats: this.stats() });
    }
    return this.#advance(nowMs);
  }

  fail(code: Code, message: string, _nowMs: number): ExchangeAction[] {
    if (this.#phase === 'done') return [];
    return this.#finish({ ok: false, code, message, stats: this.stats() });
  }

  // --- answers ---

  onReply(body: unknown, nowMs: number): ExchangeAction[] {
    const outstanding = this.#outstanding;
    if (this.#phase === 'done' || outstanding?.kind !== 'remote') return this.#ignore();
    const parsed = parseExchangeMessage(body);
    if (!parsed.ok) return this.#refuse(`malformed reply: ${parsed.reason}`);
    const reply = parsed.value;
    if (reply.exchangeId !== this.exchangeId || reply.seq !== outstanding.request.seq) return this.#ignore();
    const bytes = messageBytes(reply);
    this.#stats.bytesReceived += bytes;
    this.#bucket?.charge(bytes, nowMs);
    this.#outstanding = undefined;
    const refused = this.#apply(outstanding, reply as ExchangeReply);
    if (refused !== undefined) return refused;
    return this.#advance(nowMs);
  }

  onLocalList(entries: readonly LeafEntry[], leavesScanned: number, nowMs: number): ExchangeAction[] {
    // An exchange failed meanwhile (fail, timeout) forgets the local operations it asked for.
    if (this.#phase === 'done') return [];
    const outstanding = this.#outstanding;
    assert(outstanding?.kind === 'list-local', 'a local listing nobody asked for');
    assert(Number.isInteger(leavesScanned) && leavesScanned >= 1 && leavesScanned <= outstanding.leaves.length, 'leavesScanned out of range');
    this.#outstanding = undefined;
    this.#localLeaves = outstanding.leaves.slice(0, leavesScanned);
    this.#localEntries = entries;
    return this.#send(
      {
        t: 'ae-list',
        ...this.#header(),
        ...this.#shape(),
        leaves: this.#localLeaves,
      },
      0,
      nowMs,
    );
  }

  onLocalRead(objects: readonly (Uint8Array | undefined)[], nowMs: number): ExchangeAction[] {
    // An exchange failed meanwhile (fail, timeout) forgets the local operations it asked for.
    if (this.#phase === 'done') return [];
    const outstanding = this.#outstanding;
    assert(outstanding?.kind === 'read-local' && objects.length === outstanding.keys.length, 'a local read nobody asked for');
    this.#outstanding = undefined;
    for (let i = 0; i < objects.length; i++) {
      const object = objects[i];
      // Gone since it was listed (purged, dropped): nothing to push.
      if (object !== undefined) this.#pushReady.push({ key: outstanding.keys[i]!, object });
    }
    return this.#advance(nowMs);
  }

  // --- the steps ---

  #advance(nowMs: number): ExchangeAction[] {
    const merges = this.#pendingMerges;
    this.#pendingMerges = [];
    const next = this.#step(nowMs);
    return merges.length === 0 ? next : merges.concat(next);
  }

  #step(nowMs: number): ExchangeAction[] {
    if (this.#phase === 'done' || this.#outstanding !== undefined) return [];
    if (this.#waiting !== undefined) return this.#release(this.#waiting.request, this.#waiting.expected, nowMs);
    for (;;) {
      switch (this.#phase) {
        case 'descend': {
          const next = this.#descend(nowMs);
          if (next !== undefined) return next;
          break;
        }
        case 'list':
          return this.#list();
        case 'transfer': {
          const next = this.#transfer(nowMs);
          if (next !== undefined) return next;
          break;
        }
        default:
          assert(false, `exchange advanced in phase ${this.#phase}`);
      }
    }
  }

  /** The next hashes request, or undefined after moving on to the next level or phase. */
  #descend(nowMs: number): ExchangeAction[] | undefined {
    if (!this.#rootAsked) {
      this.#rootAsked = true;
      return this.#send({ t: 'ae-hashes', ...this.#header(), ...this.#shape(), level: 0, parents: [] }, 1, nowMs);
    }
    if (this.#parents.length > 0) {
      const parents = this.#parents.splice(0, this.#nodesPerRequestMax);
      let expected = 0;
      for (const parent of parents) {
        const [start, end] = this.#tree.childRange(this.#level - 1, parent);
        expected += end - start;
      }
      return this.#send({ t: 'ae-hashes', ...this.#header(), ...this.#shape(), level: this.#level, parents }, expected, nowMs);
    }
    if (this.#found.length === 0) return this.#finish({ ok: true, partial: false, stats: this.stats() });
    if (this.#level === this.#tree.depth) {
      this.#leaves = this.#found;
      this.#stats.leavesDiffering = this.#leaves.length;
      this.#found = [];
      this.#phase = 'list';
      return undefined;
    }
    this.#parents = this.#found;
    this.#found = [];
    this.#level++;
    return undefined;
  }

  #list(): ExchangeAction[] {
    if (this.#leaves.length === 0) return this.#finish({ ok: true, partial: false, stats: this.stats() });
    if (this.#keysTransferred >= this.#keysPerExchangeMax) return this.#finish({ ok: true, partial: true, stats: this.stats() });
    const leaves = this.#leaves.slice(0, this.#nodesPerRequestMax);
    this.#outstanding = { kind: 'list-local', leaves };
    return [{ type: 'list-local', partition: this.partition, leaves }];
  }

  /** The next fetch, read or push, or undefined when this batch is done. */
  #transfer(nowMs: number): ExchangeAction[] | undefined {
    if (this.#fetch.length > 0) {
      const keys = this.#fetch.slice(0, this.#keysPerRoundMax);
      return this.#send({ t: 'ae-fetch', ...this.#header(), keys }, keys.length, nowMs);
    }
    if (this.#pushReady.length > 0) {
      const keys: Uint8Array[] = [];
      const objects: Uint8Array[] = [];
      let bytes = 0;
      while (this.#pushReady.length > 0 && (keys.length === 0 || bytes + this.#pushReady[0]!.object.length <= this.#messageBytesSoft)) {
        const { key, object } = this.#pushReady.shift()!;
        keys.push(key);
        objects.push(object);
        bytes += key.length + object.length;
      }
      return this.#send({ t: 'ae-push', ...this.#header(), keys, objects }, keys.length, nowMs);
    }
    if (this.#push.length > 0) {
      const keys = this.#push.splice(0, this.#keysPerRoundMax);
      this.#outstanding = { kind: 'read-local', keys };
      return [{ type: 'read-local', partition: this.partition, keys }];
    }
    this.#phase = 'list';
    return undefined;
  }

  // --- replies ---

  /** Applies a reply to the request it answers; returns actions only when the exchange ends. */
  #apply(outstanding: Outstanding & { kind: 'remote' }, reply: ExchangeReply): ExchangeAction[] | undefined {
    const { request, expected } = outstanding;
    if (reply.t === 'ae-error') return this.#finish({ ok: false, code: reply.code, message: `${this.peer}: ${reply.message}`, stats: this.stats() });
    switch (request.t) {
      case 'ae-hashes':
        if (reply.t !== 'ae-hashes-reply' || reply.hashes.length !== expected * nodeHashBytes) return this.#refuse('hashes reply of the wrong type or size');
        this.#compare(request.level, request.parents, reply.hashes);
        return undefined;
      case 'ae-list':
        if (reply.t !== 'ae-list-reply' || reply.leafCount > request.leaves.length) return this.#refuse('list reply of the wrong type or leaf count');
        return this.#onListed(reply);
      case 'ae-fetch':
        if (reply.t !== 'ae-fetch-reply' || reply.objects.length > request.keys.length) return this.#refuse('fetch reply of the wrong type or size');
        return this.#onFetched(request.keys, reply.objects);
      case 'ae-push':
        if (reply.t !== 'ae-push-reply') return this.#refuse('push reply of the wrong type');
        this.#stats.keysPushed += request.keys.length;
        this.#keysTransferred += request.keys.length;
        return undefined;
    }
  }

  #compare(level: number, parents: readonly number[], theirs: Uint8Array): void {
    const indices: number[] = [];
    if (level === 0) indices.push(0);
    for (const parent of parents) {
      const [start, end] = this.#tree.childRange(level - 1, parent);
      for (let child = start; child < end; child++) indices.push(child);
    }
    const ours = this.#tree.levelHashes(level, indices);
    this.#stats.nodesCompared += indices.length;
    for (let i = 0; i < indices.length; i++) {
      if (!hashesEqual(ours, i * nodeHashBytes, theirs, i * nodeHashBytes)) this.#found.push(indices[i]!);
    }
  }

  #onListed(reply: ListReply): ExchangeAction[] | undefined {
    const covered = this.#localLeaves.slice(0, reply.leafCount);
    const coveredSet = new Set(covered);
    const seen = new Set<string>();
    for (const key of reply.keys) {
      const token = tokenOf(key);
      if (!this.#tree.holdsToken(token) || !coveredSet.has(this.#tree.leafOfToken(token))) return this.#refuse('listed a key outside the leaves asked for');
      const id = keyId(key);
      if (seen.has(id)) return this.#refuse('listed a key twice');
      seen.add(id);
    }
    const lastLeaf = covered[covered.length - 1]!;
    const local = this.#localEntries.filter((entry) => this.#tree.leafOfToken(tokenOf(entry.key)) <= lastLeaf);
    const diff = diffLeaves(local, reply.keys, reply.hashes);
    this.#stats.keysDiffering += diff.differing;
    this.#fetch = diff.fetch;
    this.#push = diff.push;
    // The leaves not covered by both listings go back to the front of the queue.
    this.#leaves.splice(0, covered.length);
    this.#localEntries = [];
    this.#localLeaves = [];
    this.#phase = 'transfer';
    return undefined;
  }

  #onFetched(keys: readonly Uint8Array[], objects: readonly (Uint8Array | null)[]): ExchangeAction[] | undefined {
    this.#fetch.splice(0, objects.length);
    const actions: ExchangeAction[] = [];
    for (let i = 0; i < objects.length; i++) {
      const object = objects[i];
      if (object === null || object === undefined) continue;
      actions.push({ type: 'merge-local', partition: this.partition, key: keys[i]!, object });
      this.#stats.keysFetched++;
    }
    this.#keysTransferred += objects.length;
    this.#pendingMerges = actions;
    return undefined;
  }

  // --- sending and ending ---

  /** Sends a request (`expected`: hashes or objects its reply may hold), or waits for the bucket. */
  #send(request: ExchangeRequest, expected: number, nowMs: number): ExchangeAction[] {
    return this.#release(request, expected, nowMs);
  }

  #release(request: ExchangeRequest, expected: number, nowMs: number): ExchangeAction[] {
    const bytes = messageBytes(request);
    if (this.#bucket !== undefined && !this.#bucket.tryTake(bytes, nowMs)) {
      this.#waiting = { request, expected };
      return [{ type: 'set-timer', atMs: this.#bucket.readyAtMs(bytes, nowMs) }];
    }
    this.#waiting = undefined;
    const deadlineMs = nowMs + this.#requestTimeoutMs;
    this.#outstanding = { kind: 'remote', request, deadlineMs, expected };
    this.#stats.messagesSent++;
    this.#stats.bytesSent += bytes;
    return [
      { type: 'send', to: this.peer, message: request, bytes },
      { type: 'set-timer', atMs: deadlineMs },
    ];
  }

  #header(): { exchangeId: number; seq: number; partition: number } {
    return { exchangeId: this.exchangeId, seq: this.#seq++, partition: this.partition };
  }

  #shape(): { hashVersion: number; partitionBits: number; leafBits: number; fanoutBits: number } {
    const tree = this.#tree;
    return { hashVersion: treeHashVersion, partitionBits: tree.partitionBits, leafBits: tree.leafBits, fanoutBits: tree.fanoutBits };
  }

  #ignore(): ExchangeAction[] {
    this.#stats.repliesIgnored++;
    return [];
  }

  #refuse(message: string): ExchangeAction[] {
    return this.#finish({ ok: false, code: ErrorCode.badRequest, message: `${this.peer} answered badly: ${message}`, stats: this.stats() });
  }

  #finish(result: ExchangeResult): ExchangeAction[] {
    this.#phase = 'done';
    this.#outstanding = undefined;
    this.#waiting = undefined;
    this.#result = { ...result, stats: this.stats() };
    return [{ type: 'complete', result: this.#result }];
  }
}

function positive(value: number, max: number, name: string): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new RangeError(`${name} must be an integer in [1, ${max}]`);
  return value;
}
