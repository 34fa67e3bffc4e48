/**
 * Drives the pure coordinator (lib/replication) with real effects: the local replica store
 * (shards over mailboxes), the peer network (rpc over /peer links) and timers. Also serves the
 * replica side of the same rpcs for other coordinators. Owned by the supervisor (main thread).
 *
 * RPC framing on the peer links: `{t:'rpc', id, body}` out on our dialer to the target,
 * `{t:'rpc-reply', id, body}` back on the link the request came in on. The rpc id is the
 * coordinator's requestId (unique among requests in flight; a counter, so a late reply to a
 * finished request is ignored by the coordinator); 0 marks a message that wants no answer
 * (read repair). The replier is identified by the link's authenticated peer id, never by a
 * field of the message.
 *
 * A `send` the network could not hand to an open link is reported to the coordinator as
 * `onSendFailed` right away (it certainly never left), so an unreachable replica costs no
 * timeout.
 *
 * Rids of client writes (coordinator.ts): a `replica-write` that carries one is noted with the
 * coordinator on receipt, before its merge, and the merge is kept by rid until it is done, so a
 * hedged copy of the same write that this node is asked to coordinate meanwhile waits for the
 * merge ('read-rid-object') and mints nothing new.
 *
 * A replica that is resyncing after a long outage (resync.ts) refuses reads of its pending
 * partitions (`readable`): the local read-object and the replica side of `replica-read`
 * answer KV_UNAVAILABLE; writes and merges are served as usual.
 */

import { Buffer } from 'node:buffer';
import { ErrorCode, isRingkvError, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { murmur3Range, tokenOf } from '../base/hash.js';
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import type { DeleteRequest as ClientDelete, GetRequest as ClientGet, PutRequest as ClientPut } from '../protocol/client-messages.js';
import {
  Coordinator,
  dropDuplicateDots,
  forwardReply,
  parseReplicaRequest,
  replicaError,
  type CoordinatorAction,
  type CoordinatorResult,
  type GetRequest as CoordinatorGet,
  type PutRequest as CoordinatorPut,
  type LocalResult,
  type LocalWriteFlags,
  type SoleReadMemo,
  type MintDot,
  type ReplicaReply,
  type ReplicaRequest,
  soleReadOf,
} from '../replication/index.js';
import type { ReplicaStore } from '../store/index.js';
import type { RowCache } from '../store/row-cache.js';
import type { WireMessage } from '../transport/index.js';
import type { ReadResult } from './client-service.js';
import { DeadlineWheel } from './deadline-wheel.js';

export interface CoordinatorDriverOptions {
  readonly coordinator: Coordinator;
  readonly store: ReplicaStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Sends an rpc to a node id; false when it could not be handed to an open link. */
  readonly sendToNode: (nodeId: string, message: WireMessage, address?: string) => boolean;
  /** Stores a sloppy-quorum hint durably (replica-write with hintFor naming another node). */
  readonly storeHint?: (target: string, key: Uint8Array, object: Uint8Array) => Promise<void>;
  readonly selfId?: string;
  /**
   * Whether this replica may answer a read of the key whose placement token (tokenOf) is
   * `token` from its store (resync.ts: false while the key's partition is resyncing). A
   * refused read answers KV_UNAVAILABLE, locally and to `replica-read`, so coordinators count
   * this replica as failed. Default: always.
   */
  readonly readable?: (token: number) => boolean;
  /** Expiry is judged at this node's wall clock plus this bound (limits.clockSkewMsDefault). */
  readonly clockSkewMs?: number;
  /**
   * A replica did not acknowledge a write this node coordinated (the coordinator's `missed`
   * action; missed-writes.ts keeps a hint for it and marks the partition dirty). Default: ignored.
   */
  readonly onMissed?: (replica: string, key: Uint8Array, object: Uint8Array, standIn: string | undefined) => void;
}

/** A read as RESP sees it: the client's view plus the newest live value and its expiry. */
export interface LatestRead extends ReadResult {
  latest: Uint8Array | undefined;
  expiresAtMs: number | undefined;
}

const resyncingMessage = 'replica is resyncing';
/** A row cache entry filled while this node was not its key's only replica is looked at again after this long. */
const soleRecheckMs = 1000;

const u32Max = 0xffffffff;

export class CoordinatorDriver {
  readonly #options: CoordinatorDriverOptions;
  readonly #coordinator: Coordinator;
  readonly #pending = new Map<number, (result: CoordinatorResult) => void>();
  /** Each request's one wake-up (deadline or hedge time): one shared timer, not one per request. */
  readonly #timers: DeadlineWheel;
  /** soleWrites in flight, by request id (their answer waits in #pending). */
  readonly #soleWrites = new Set<number>();
  /** Rpcs of our own (hint delivery), by id: resolved by the reply, or undefined on timeout. */
  readonly #calls = new Map<number, { resolve: (body: unknown) => void; timer: NodeJS.Timeout }>();
  /** Merges of replica writes carrying a rid, by rid (hex), while they run. */
  readonly #ridMerges = new Map<string, Promise<void>>();
  #nextId = 1;
  #closed = false;

  constructor(options: CoordinatorDriverOptions) {
    this.#options = options;
    this.#coordinator = options.coordinator;
    // A sole replica's read view is made by the write or read that fills the row cache, not
    // by the first GET after it (plainRead): writes are rarer than reads of a cached key.
    options.store.deriveRows?.((key, object) => {
      const nowMs = this.expiryNowMs();
      // Not the key's only replica now: the cache does not answer, and asks again in a second.
      if (!this.#coordinator.soleLocalRead(key, undefined, undefined)) return { latest: undefined, fromMs: nowMs, untilMs: nowMs + soleRecheckMs };
      const memo = soleReadOf(object, this.#coordinator.policy, nowMs);
      return memo === undefined ? undefined : { latest: memo.result.latest ?? null, fromMs: memo.fromMs, untilMs: memo.untilMs };
    });
    this.#timers = new DeadlineWheel({ onDue: (requestId) => this.#onDue(requestId) });
  }

  get inflight(): number {
    return this.#pending.size;
  }

  /** A client get. */
  async get(request: ClientGet): Promise<ReadResult> {
    const result = await this.read({ key: request.key, ...optional('r', request.r), ...optional('consistency', request.consistency), ...optional('timeoutMs', request.timeoutMs) });
    return { found: result.found, values: result.values, context: result.context };
  }

  /** The wall-clock instant at which this node judges expiry now. */
  expiryNowMs(): number {
    return this.#options.clock.wallMs() + (this.#options.clockSkewMs ?? limits.clockSkewMsDefault);
  }

  /** A coordinated read (the RESP front door's too); expiry is judged at `expiryNowMs()`. */
  read(request: Omit<CoordinatorGet, 'expiryNowMs'>): Promise<LatestRead> {
    // Not async, no object spread, no closure: this is the RESP GET path.
    const now = this.readNow(request.key, request.r, request.consistency);
    if (now !== undefined) return Promise.resolve(now);
    const get: CoordinatorGet = { key: request.key, r: request.r, consistency: request.consistency, timeoutMs: request.timeoutMs, expiryNowMs: this.expiryNowMs() };
    if (this.#closed) return Promise.reject(closedError());
    const id = this.#allocateId();
    const done = new Promise<CoordinatorResult>((resolve) => this.#pending.set(id, resolve));
    this.#perform(this.#coordinator.startGet(id, get, this.#options.clock.monotonicMs()));
    return done.then(latestReadOf);
  }

  /**
   * A read answered at once from this node's row cache, when this node is the key's only
   * replica (Coordinator.soleLocalRead) and the cache holds the key: the result the request
   * would give, with no request, no timer and no shard. Undefined otherwise (use `read`).
   */
  readNow(key: Uint8Array, r: number | undefined, consistency: string | undefined): LatestRead | undefined {
    const rows = this.#options.store.rowCache;
    if (this.#closed || rows === undefined) return undefined;
    if (!this.#coordinator.soleLocalRead(key, r, consistency) || this.#options.readable?.(tokenOf(key)) === false) return undefined;
    const id = rows.idOf(key);
    if (id < 0) return undefined;
    // The full result (values, context) is kept with the entry once made: made from a copy of
    // the object, it stays valid while the entry lives, wherever the cache moves its bytes.
    const nowMs = this.expiryNowMs();
    let memo = rows.memoOf(id) as SoleReadMemo | undefined;
    if (memo === undefined || nowMs < memo.fromMs || nowMs >= memo.untilMs) {
      memo = soleReadOf(rows.objectOf(id), this.#coordinator.policy, nowMs);
      if (memo === undefined) return undefined;
      rows.setMemo(id, memo);
    }
    rows.countHit();
    this.#coordinator.countLocalRead();
    return memo.result as LatestRead;
  }

  /**
   * A plain read (the value a RESP GET answers) of the key `bytes[start, end)` answered from
   * the row cache in this turn, when this node is its only replica at the node's read level:
   * the cache, whose `arena[plainAt, plainAt + plainLength)` holds the value (plainLength -1:
   * none) until the next change of the store. Undefined: read the usual way. Hashes the key
   * once and allocates nothing (the RESP listener's pipelined GETs).
   */
  plainRead(bytes: Uint8Array, start: number, end: number): RowCache | undefined {
    const rows = this.#options.store.rowCache;
    if (rows === undefined || this.#closed) return undefined;
    const token = murmur3Range(bytes, start, end, 0);
    if (!this.#coordinator.soleLocalToken(token)) return undefined;
    if (this.#options.readable?.(token) === false) return undefined;
    if (!rows.plainRead(bytes, start, end, token, this.expiryNowMs())) return undefined;
    this.#coordinator.countLocalRead();
    return rows;
  }

  /** A coordinated write as the coordinator takes it (the RESP front door's, with its write flags). */
  async put(request: CoordinatorPut): Promise<{ context: Uint8Array }> {
    const sole = this.#closed ? undefined : this.#coordinator.soleWrite(request);
    if (sole !== undefined) return this.#soleWrite(request, sole);
    const result = await this.#start((id, now) => this.#coordinator.startPut(id, request, now));
    if (result.type === 'written') return { context: result.context };
    throw toError(result);
  }

  /**
   * A soleWrite (Coordinator.soleWrite): the local write alone, with no coordinator state; its
   * outcome answered as the request path would, including its timeout (indeterminate) and a
   * close (indeterminate).
   */
  async #soleWrite(request: CoordinatorPut, sole: { flags: LocalWriteFlags | undefined } | CoordinatorResult): Promise<{ context: Uint8Array }> {
    if ('type' in sole) throw toError(sole);
    const id = this.#allocateId();
    const done = new Promise<CoordinatorResult>((resolve) => this.#pending.set(id, resolve));
    this.#soleWrites.add(id);
    this.#timers.set(id, request.timeoutMs ?? limits.coordinatorTimeoutMsDefault);
    this.#options.store
      .coordinateWrite(request.key, request.value, request.context, sole.flags)
      .then(writtenLocal, (error: unknown) => this.#localFailure(error, 'coordinate-write'))
      .then((local) => this.#soleSettled(id, local));
    const result = await done;
    if (result.type === 'written') return { context: result.context };
    throw toError(result);
  }

  #soleSettled(id: number, local: LocalResult): void {
    this.#coordinator.soleDone();
    if (!this.#soleWrites.delete(id)) return; // answered already: timed out, or the node closed
    this.#timers.clear(id);
    const resolve = this.#pending.get(id);
    this.#pending.delete(id);
    resolve?.(this.#coordinator.soleWritten(local));
  }

  /** A timer fell due: a soleWrite's (answered as timed out) or a coordinator request's. */
  #onDue(requestId: number): void {
    if (!this.#soleWrites.delete(requestId)) {
      this.#perform(this.#coordinator.onTimeout(requestId, this.#options.clock.monotonicMs()));
      return;
    }
    const resolve = this.#pending.get(requestId);
    this.#pending.delete(requestId);
    resolve?.(this.#coordinator.soleTimedOut());
  }

  /** A client put or delete. */
  async write(request: ClientPut | ClientDelete): Promise<{ context: Uint8Array }> {
    const value = request.t === 'put' ? request.value : null;
    const result = await this.#start((id, now) =>
      this.#coordinator.startPut(
        id,
        {
          key: request.key,
          value,
          rid: request.rid,
          ...optional('context', request.context),
          ...optional('w', request.w),
          ...optional('consistency', request.consistency),
          ...optional('timeoutMs', request.timeoutMs),
          ...optional('ttlMs', request.t === 'put' ? request.ttlMs : undefined),
          ...optional('attempt', request.attempt),
          ...(request.attempt !== undefined && request.attempt > 0 ? { hedged: true } : {}),
        },
        now,
      ),
    );
    if (result.type === 'written') return { context: result.context };
    throw toError(result);
  }

  /** Serves one replica rpc from another node (`from`: its authenticated id); resolves with the reply body. */
  async serve(raw: unknown, from?: string): Promise<ReplicaReply> {
    const parsed = parseReplicaRequest(raw);
    if (!parsed.ok) return replicaError(ErrorCode.badRequest, parsed.reason);
    const request: ReplicaRequest = parsed.value;
    const { store } = this.#options;
    try {
      switch (request.t) {
        case 'replica-read': {
          if (this.#options.readable?.(tokenOf(request.key)) === false) return replicaError(ErrorCode.unavailable, resyncingMessage);
          const object = await store.readObject(request.key);
          return object === undefined ? { t: 'replica-read-reply' } : { t: 'replica-read-reply', object };
        }
        case 'replica-write':
          if (request.hintFor !== undefined && request.hintFor !== this.#options.selfId) {
            if (this.#options.storeHint === undefined) return replicaError(ErrorCode.unavailable, 'this node does not take hints');
            await this.#options.storeHint(request.hintFor, request.key, request.object);
          } else {
            await this.#merge(request.key, request.object, request.rid, request.dot);
          }
          return { t: 'replica-write-reply' };
        case 'forward-put':
          return forwardReply(await this.#start((id, now) => this.#coordinator.startPut(id, request, now)));
        case 'rid-query':
          return { t: 'rid-query-reply', state: this.#coordinator.ridQuery(request.rid, request.key, from, this.#options.clock.monotonicMs()) };
      }
    } catch (error) {
      if (isRingkvError(error)) return replicaError(error.code, error.message);
      this.#options.logger.error({ err: error }, 'replica request failed with a bug');
      return replicaError(request.t === 'replica-read' ? ErrorCode.unavailable : ErrorCode.indeterminate, 'internal error');
    }
  }

  /**
   * One rpc of our own to `nodeId` (not a coordinated request): resolves with the reply body,
   * or undefined when it could not be sent or no reply came within `timeoutMs`. With `address`,
   * sent there (a node not yet known by id: the start check).
   */
  call(nodeId: string, body: object, timeoutMs: number, address?: string): Promise<unknown> {
    if (this.#closed) return Promise.resolve(undefined);
    const id = this.#allocateId();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#calls.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.#calls.set(id, { resolve, timer });
      if (!this.#options.sendToNode(nodeId, { t: 'rpc', id, body }, address)) {
        clearTimeout(timer);
        this.#calls.delete(id);
        resolve(undefined);
      }
    });
  }

  /** An rpc-reply from `from` (an authenticated peer id). */
  onReply(id: unknown, from: string, body: unknown): void {
    if (typeof id !== 'number' || !Number.isInteger(id) || id <= 0 || id > u32Max) return;
    const call = this.#calls.get(id);
    if (call !== undefined) {
      this.#calls.delete(id);
      clearTimeout(call.timer);
      call.resolve(body);
      return;
    }
    this.#perform(this.#coordinator.onReply(id, from, body, this.#options.clock.monotonicMs()));
  }

  /** Fails every request in flight (the node is closing): writes as indeterminate. */
  close(): void {
    this.#closed = true;
    this.#timers.close();
    for (const call of this.#calls.values()) {
      clearTimeout(call.timer);
      call.resolve(undefined);
    }
    this.#calls.clear();
    this.#soleWrites.clear();
    for (const [id, resolve] of this.#pending) {
      this.#pending.delete(id);
      resolve({ type: 'error', code: ErrorCode.indeterminate, message: 'the node closed with the request in flight' });
    }
  }

  /** Merges a replica write; one carrying a rid is noted first and kept by rid while it runs. */
  #merge(key: Uint8Array, object: Uint8Array, rid: Uint8Array | undefined, dot: MintDot | undefined): Promise<void> {
    const merging = this.#options.store.mergeObject(key, object);
    if (rid === undefined) return merging;
    const actions = this.#coordinator.noteReplicaWrite(rid, key, this.#options.clock.monotonicMs(), dot);
    const name = Buffer.from(rid).toString('hex');
    const settled = merging.then(
      () => undefined,
      () => undefined,
    );
    this.#ridMerges.set(name, settled);
    void settled.then(() => {
      if (this.#ridMerges.get(name) === settled) this.#ridMerges.delete(name);
    });
    this.#perform(actions);
    return merging;
  }

  /**
   * Drops the losing mints of a rid minted twice (duplicate-dots.ts) and spreads the result.
   * Tried limits.duplicateDropAttemptsMax times, duplicateDropRetryMs apart, while nothing could be dropped yet (the
   * winner not merged here) or the store failed; then the duplicate stays a sibling until a
   * write with its context supersedes it (or another replica's drop arrives).
   */
  async #dropDuplicates(key: Uint8Array, rid: Uint8Array, dots: readonly MintDot[], attempt = 1): Promise<void> {
    const { store, logger } = this.#options;
    let done = false;
    try {
      await this.#ridMerges.get(Buffer.from(rid).toString('hex'));
      const object = await store.readObject(key);
      const edited = object === undefined ? undefined : dropDuplicateDots(object, dots);
      logger.info({ dots, dropped: edited !== undefined, attempt }, 'a client write was minted by two coordinators');
      if (edited !== undefined) {
        await store.mergeObject(key, edited);
        this.#perform(this.#coordinator.spread(key, edited));
        done = true;
      }
    } catch (error) {
      logger.warn({ err: error, attempt }, 'could not drop a duplicate mint');
    }
    if (done || attempt >= limits.duplicateDropAttemptsMax || this.#closed) return;
    setTimeout(() => void this.#dropDuplicates(key, rid, dots, attempt + 1), limits.duplicateDropRetryMs).unref();
  }

  #start(begin: (id: number, nowMs: number) => CoordinatorAction[]): Promise<CoordinatorResult> {
    if (this.#closed) return Promise.reject(closedError());
    const id = this.#allocateId();
    const done = new Promise<CoordinatorResult>((resolve) => this.#pending.set(id, resolve));
    this.#perform(begin(id, this.#options.clock.monotonicMs()));
    return done;
  }

  #allocateId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= u32Max ? 1 : id + 1;
      if (!this.#pending.has(id) && !this.#calls.has(id)) return id;
    }
  }

  #perform(actions: readonly CoordinatorAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'send': {
          const sent = this.#options.sendToNode(action.to, { t: 'rpc', id: action.requestId ?? 0, body: action.message });
          if (!sent && action.requestId !== undefined) {
            const requestId = action.requestId;
            queueMicrotask(() => this.#perform(this.#coordinator.onSendFailed(requestId, action.to, this.#options.clock.monotonicMs())));
          }
          break;
        }
        case 'local':
          this.#local(action);
          break;
        case 'set-timer':
          this.#timers.set(action.requestId, action.atMs - this.#options.clock.monotonicMs());
          break;
        case 'clear-timer':
          this.#timers.clear(action.requestId);
          break;
        case 'missed':
          this.#options.onMissed?.(action.to, action.key, action.object, action.standIn);
          break;
        case 'complete': {
          const resolve = this.#pending.get(action.requestId);
          this.#pending.delete(action.requestId);
          resolve?.(action.result);
          break;
        }
      }
    }
  }

  #local(action: Extract<CoordinatorAction, { type: 'local' }>): void {
    const { store } = this.#options;
    const { requestId, op } = action;
    switch (action.op) {
      case 'drop-duplicates':
        void this.#dropDuplicates(action.key, action.rid, action.dots);
        return;
      case 'coordinate-write':
        this.#settleLocal(requestId, op, store.coordinateWrite(action.key, action.value, action.context, action.flags), writtenLocal);
        return;
      case 'read-object':
        if (this.#options.readable?.(tokenOf(action.key)) === false) this.#settleLocal(requestId, op, Promise.resolve(resyncingLocal), sameLocal);
        else this.#settleLocal(requestId, op, store.readObject(action.key), objectLocal);
        return;
      case 'merge-object':
        this.#settleLocal(requestId, op, store.mergeObject(action.key, action.object), mergedLocal);
        return;
      case 'read-rid-object': {
        const merging = this.#ridMerges.get(Buffer.from(action.rid).toString('hex')) ?? Promise.resolve();
        this.#settleLocal(requestId, op, merging.then(() => store.readObject(action.key)), objectLocal);
        return;
      }
    }
  }

  /** Hands a local operation's outcome to the coordinator: one promise reaction, no chain. */
  #settleLocal<T>(requestId: number | undefined, op: LocalOpName, work: Promise<T>, toResult: (value: T) => LocalResult): void {
    work.then(
      (value) => this.#localDone(requestId, toResult(value)),
      (error: unknown) => this.#localDone(requestId, this.#localFailure(error, op)),
    );
  }

  #localDone(requestId: number | undefined, result: LocalResult): void {
    if (requestId !== undefined) this.#perform(this.#coordinator.onLocalResult(requestId, result, this.#options.clock.monotonicMs()));
  }

  #localFailure(error: unknown, op: LocalOpName): LocalResult {
    if (isRingkvError(error)) return { ok: false, code: error.code, message: error.message };
    this.#options.logger.error({ err: error, op }, 'local replica operation failed with a bug');
    return { ok: false, code: op === 'read-object' ? ErrorCode.unavailable : ErrorCode.indeterminate, message: 'internal error' };
  }
}

type LocalOpName = Extract<CoordinatorAction, { type: 'local' }>['op'];

const resyncingLocal: LocalResult = { ok: false, code: ErrorCode.unavailable, message: resyncingMessage };
const sameLocal = (result: LocalResult): LocalResult => result;
const objectLocal = (object: Uint8Array | undefined): LocalResult => ({ ok: true, object });
const mergedLocal = (): LocalResult => ({ ok: true, object: undefined });
const writtenLocal = (r: { context: Uint8Array; object: Uint8Array }): LocalResult => ({ ok: true, context: r.context, object: r.object });

function optional<K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [name]: value }) as { [P in K]?: V };
}

const closedError = (): RingkvError => new RingkvError(ErrorCode.closed, 'the node is closing', {});

/** A read's result as RESP and the client see it (the result itself: its fields are the same). */
function latestReadOf(result: CoordinatorResult): LatestRead {
  if (result.type === 'read') return result as LatestRead & typeof result;
  throw toError(result);
}

function toError(result: CoordinatorResult): RingkvError {
  if (result.type !== 'error') return new RingkvError(ErrorCode.unavailable, `unexpected result ${result.type}`, {});
  return new RingkvError(result.code, result.message, {});
}
