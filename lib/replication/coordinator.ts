/**
 * The coordinator: the per-request state machines that fan a client's get or put out to a
 * key's replicas, count the quorum and decide the outcome (DESIGN.md §2 "coordinator").
 * Sans-IO: no timers, no sockets, no clock; time is an argument, effects are returned as
 * actions. Owned by the supervisor's main thread; never blocks.
 *
 * Follows Dynamo §4.5 (R, W, coordinator-driven writes) and §4.6 (read repair), and riak_kv's
 * split of the put/get FSMs from their pure tallies. Writes target `targetsOf(placement)`:
 * `strictTargets` (the up replicas of the preference list) or `sloppyTargets` (plus a stand-in
 * from `placement.fallbacks` for each down replica, sent `replica-write` with `hintFor`; its
 * ack counts toward W — Dynamo's sloppy quorum). Reads always use the strict targets: hints
 * are not readable.
 *
 * Driving it (the supervisor):
 *   const c = new Coordinator({ self: { id, dc }, placementOf: (key) => ({ replication, replicas }) });
 *   c.startGet(requestId, { key, r?, consistency?, timeoutMs? }, nowMs)          → actions
 *   c.startPut(requestId, { key, value | null, rid, context?, w?, consistency?, timeoutMs? }, nowMs)
 *   c.onLocalResult(requestId, result, nowMs)     the answer to a `local` action with that requestId
 *   c.onReply(requestId, fromNodeId, body, nowMs) the (unvalidated) rpc-reply body of a `send`
 *   c.onSendFailed(requestId, toNodeId, nowMs)    a `send` that certainly never left (link closed)
 *   c.onTimeout(requestId, nowMs)                 a `set-timer` came due
 * `requestId`s are the caller's, unique among requests in flight. Every call returns actions
 * to perform in order:
 *   {type:'send', to, requestId, message}   rpc to a peer; requestId undefined: no reply wanted
 *                                           (read repair) — ignore its reply
 *   {type:'local', requestId, op, ...}      on this node's replica store: 'coordinate-write'
 *                                           (ReplicaStore.coordinateWrite → onLocalResult
 *                                           {ok, context, object}), 'read-object' (readObject →
 *                                           {ok, object?}), 'read-rid-object' (readObject once
 *                                           the replica write with that rid is merged →
 *                                           {ok, object?}), 'merge-object' (mergeObject; no answer
 *                                           wanted). A failure answers {ok:false, code, message}.
 *   {type:'set-timer', requestId, atMs} / {type:'clear-timer', requestId}
 *   {type:'complete', requestId, result}    the client's answer: read | written | error
 * Answers for requests no longer in flight are ignored, so late replies and timers are harmless.
 * On the replica side the supervisor answers replica-read with readObject, replica-write with
 * mergeObject, and forward-put by calling startPut with the parsed message (a ForwardPut is a
 * PutRequest) and replying `forwardReply(result)`; message shapes are in replica-message.ts.
 * A retry that joins a write in flight gets no timer: it completes with the write it joined.
 *
 * Writes: the coordinator must be a replica of the key (so version-vector actors stay the
 * replicas); otherwise it forwards to the first up replica, at most `forwardHopsMax` times.
 * It applies the write locally first (the new object's bytes come back), then sends
 * replica-write to the other targets and counts acks, its own included, until W (per
 * datacenter where the level says so). Up nodes in `placement.pending` (gaining the key's
 * partition in a join) get the same replica-write without a request id: never waited for,
 * never counted. Outcomes are never blurred (RELIABILITY.md §2.2):
 *   written           W acks;
 *   KV_UNAVAILABLE    fewer than W targets up, decided before anything is sent or applied;
 *   KV_INDETERMINATE  something was sent or applied but W was not reached (timeout, nacks);
 *   KV_OVERLOADED / KV_BAD_REQUEST / KV_TOO_LARGE ...: refused before anything was applied.
 * Retries: rids (rid-table.ts) make a retried write join or replay the first outcome. Replica
 * writes of a client write carry its rid and every replica remembers it (ReplicaRids), so a
 * hedged or retried copy that reaches another coordinator after the write was applied there
 * mints no second sibling: that coordinator reads the object it holds ('read-rid-object', once
 * the replica write that brought the rid is merged), replicates it to the targets like a new
 * write and answers with its context.
 *
 * Missed replicas (Cassandra's coordinator hints): a put stays after its answer until every
 * target answered or its deadline passed, then emits one {type:'missed', to, key, object,
 * standIn} per replica of the preference list that did not acknowledge the write itself
 * (missed-replicas.ts) — down with no stand-in (a three-node cluster at N=3), refused, or
 * silent. The supervisor keeps a durable hint for it when `standIn` is undefined and marks the
 * key's partition dirty for it (anti-entropy exchanges those first). At most
 * `limits.coordinatorLingeringPutsMax` answered puts wait; past that a put settles at once.
 *
 * Tied hedges (Dean and Barroso's "tied requests"): a write the client marks as a hedge or
 * retry (`hedged`) may be in flight at another coordinator that has not replicated it yet
 * (its disk is slow), so before minting it the coordinator asks the key's other replicas
 * (`rid-query`) and waits for them at most a hedge delay: one that coordinates the rid or
 * holds it gets the write forwarded (it joins or replays it); when every one says 'unknown'
 * or the wait ends (a paused replica never answers), it mints. A replica that said 'unknown'
 * keeps the asker's claim on the rid, so the client's copy reaching it later is forwarded to
 * the claimer instead of being minted. A forwarded (tied) write whose holder does not answer
 * within its attempt timeout, or cannot be reached, is minted here after all. Two
 * coordinators can thus still both mint one write (one began, then stalled); every replica
 * write names its mint, and replicas drop the duplicate (duplicate-dots.ts).
 *
 * Reads (default `readFanout: 'quorum'`): replica-read to R replicas — this node first, then
 * the others, replicas that recently missed a hedge deadline last — and, when the read is not
 * complete after the hedge delay (latency-estimator.ts: near the asked replicas' observed
 * p99), to one more spare per hedge delay (speculative retry); a failed replica is replaced by
 * a spare at once. `readFanout: 'all'` and per-datacenter levels ask every up replica. R
 * answers are merged (read-merge.ts) and returned; the request stays until every asked
 * replica answered or the deadline, then read-repairs the stale among them (anti-entropy
 * covers the others).
 *
 * Bounds: `requestsMax` requests in flight (KV_OVERLOADED beyond), each holding at most one
 * answer per replica; the rid table is bounded (rid-table.ts).
 */

import { assert, assertNever } from '../base/assert.js';
import { ErrorCode, type ErrorCode as Code } from '../base/errors.js';
import { murmur3, tokenOf } from '../base/hash.js';
import { limits } from '../base/limits.js';
import { decodeContext, decodeObject, encodeContext, join, type ConflictPolicy, type Mint } from '../causality/index.js';
import { resolveRequirement, type Placement, type ReplicaInfo, type Requirement } from './consistency-level.js';
import { canMeet, QuorumTally } from './quorum-tally.js';
import { ReadMerge } from './read-merge.js';
import { contextBytesMax, parseReplicaReply, ridBytes, type ForwardPut, type ReplicaReply, type ReplicaRequest, type RidState } from './replica-message.js';
import type { MintDot } from './duplicate-dots.js';
import { HedgeBudget, LatencyEstimator, type LatencyBounds } from './latency-estimator.js';
import { ReplicaRids, RidTable, type RidHeld } from './rid-table.js';
import { missedReplicas } from './missed-replicas.js';

export interface GetRequest {
  readonly key: Uint8Array;
  readonly r?: number;
  readonly consistency?: string;
  readonly timeoutMs?: number;
  /** Wall-clock instant at which expiry is judged (lib/causality read-view.ts); default: none expires. */
  readonly expiryNowMs?: number;
}

/** How a write treats expiry and what the replica holds (RESP SET and its options). */
export interface WriteFlags {
  /** The value expires this long after the coordinating replica's write time. */
  readonly ttlMs?: number;
  /** Supersede everything the coordinating replica holds for the key (no siblings pile up). */
  readonly overwrite?: boolean;
  /** Keep the expiry of the value a read shows now (with no ttlMs). */
  readonly keepTtl?: boolean;
}

/** A coordinate-write's flags: the client's, and the mint the new event carries (lib/causality mint-records.ts). */
export interface LocalWriteFlags extends WriteFlags {
  readonly mint?: Mint;
}

export interface PutRequest extends WriteFlags {
  readonly key: Uint8Array;
  /** null: a delete. */
  readonly value: Uint8Array | null;
  readonly rid: Uint8Array;
  readonly context?: Uint8Array;
  readonly w?: number;
  readonly consistency?: string;
  readonly timeoutMs?: number;
  /** Times this write was forwarded already (forward-put); 0 from a client. */
  readonly hops?: number;
  /** The datacenter LOCAL_QUORUM refers to; default this node's. */
  readonly dc?: string;
  /**
   * The client may have sent this write to another coordinator too (a hedge or a retry): the
   * replica write also goes, unawaited, to the key's replicas marked down, so that a copy
   * queued at a paused one finds the rid there when it resumes instead of minting it again.
   */
  readonly hedged?: boolean;
  /** Which attempt of the client this is (0: the first); named in the mint (duplicate-dots.ts). */
  readonly attempt?: number;
  /**
   * Sent to this coordinator alone and never retried elsewhere (the RESP front door): no other
   * coordinator can mint it, so its event carries no mint (lib/causality mint-records.ts).
   */
  readonly sole?: boolean;
}

export type CoordinatorResult =
  | {
      readonly type: 'read';
      readonly found: boolean;
      readonly values: Uint8Array[];
      readonly context: Uint8Array;
      /** The newest live sibling's value and expiry (read-view.ts `latest`): what GET over RESP shows. */
      readonly latest?: Uint8Array | undefined;
      readonly expiresAtMs?: number | undefined;
    }
  | { readonly type: 'written'; readonly context: Uint8Array }
  | { readonly type: 'error'; readonly code: Code; readonly message: string };

export type LocalOp =
  | {
      readonly op: 'coordinate-write';
      readonly key: Uint8Array;
      readonly value: Uint8Array | null;
      readonly context: Uint8Array | undefined;
      readonly flags?: LocalWriteFlags;
    }
  | { readonly op: 'read-object'; readonly key: Uint8Array }
  /** The object holding the client write `rid`, read once the replica write that brought the rid is merged. */
  | { readonly op: 'read-rid-object'; readonly key: Uint8Array; readonly rid: Uint8Array }
  /**
   * `rid` was minted more than once (`dots`): once the replica write that brought the rid is
   * merged, drop the losing mints from the stored object (dropDuplicateDots), merge the result
   * and send it to the key's other replicas (`spread`). No answer wanted.
   */
  | { readonly op: 'drop-duplicates'; readonly key: Uint8Array; readonly rid: Uint8Array; readonly dots: readonly MintDot[] }
  | { readonly op: 'merge-object'; readonly key: Uint8Array; readonly object: Uint8Array };

export type CoordinatorAction =
  | { readonly type: 'send'; readonly to: string; readonly requestId: number | undefined; readonly message: ReplicaRequest }
  | ({ readonly type: 'local'; readonly requestId: number | undefined } & LocalOp)
  | { readonly type: 'set-timer'; readonly requestId: number; readonly atMs: number }
  | { readonly type: 'clear-timer'; readonly requestId: number }
  | { readonly type: 'complete'; readonly requestId: number; readonly result: CoordinatorResult }
  /** Replica `to` did not acknowledge this write; `standIn` holds a hint for it, or nobody does. */
  | { readonly type: 'missed'; readonly to: string; readonly key: Uint8Array; readonly object: Uint8Array; readonly standIn: string | undefined };

export type LocalResult =
  | { readonly ok: true; readonly context: Uint8Array; readonly object: Uint8Array }
  | { readonly ok: true; readonly object: Uint8Array | undefined }
  | { readonly ok: false; readonly code: Code; readonly message: string };

/** The nodes a request is sent to. Strict quorum: the up replicas. Sloppy quorum replaces this. */
export type TargetSelector = (placement: Placement, selfId: string) => readonly ReplicaInfo[];

export const strictTargets: TargetSelector = (placement, selfId) => {
  // Every replica up (the common case): the preference list itself, no copy.
  for (const r of placement.replicas) if (!r.up && r.id !== selfId) return placement.replicas.filter((p) => p.up || p.id === selfId);
  return placement.replicas;
};

/**
 * Sloppy quorum (Dynamo §4.6): the up replicas, plus for each down replica the next up owner
 * after the preference list in the SAME datacenter, tagged `hintFor` the replica it stands in
 * for and counted in that replica's datacenter. A datacenter that is down entirely gets no
 * stand-ins, so EACH_QUORUM still fails while it is out.
 */
export const sloppyTargets: TargetSelector = (placement, selfId) => {
  const targets = strictTargets(placement, selfId).slice();
  const used = new Set(placement.replicas.map((r) => r.id));
  for (const owner of placement.replicas) {
    if (owner.up || owner.id === selfId) continue;
    const standIn = (placement.fallbacks ?? []).find((f) => f.up && f.dc === owner.dc && !used.has(f.id));
    if (standIn === undefined) continue;
    used.add(standIn.id);
    targets.push({ id: standIn.id, dc: owner.dc, up: true, hintFor: owner.id });
  }
  return targets;
};

export interface CoordinatorOptions {
  readonly self: { readonly id: string; readonly dc: string };
  /** The version-vector actor of this node's replica store (the event counters it mints); default self.id. */
  readonly actor?: string;
  /** The key's placement in the current ring and membership view. */
  readonly placementOf: (key: Uint8Array) => Placement;
  /**
   * Whether this node is the only replica of the key whose placement token (tokenOf) is
   * `token`, up, with none gaining it: a cheap soleLocalRead (default: from placementOf), by
   * token so the row cache's plain reads hash a key once.
   */
  readonly soleReplicaOfToken?: (token: number) => boolean;
  readonly targetsOf?: TargetSelector;
  readonly policy?: ConflictPolicy;
  readonly requestsMax?: number;
  readonly ridEntriesMax?: number;
  readonly ridRetentionMs?: number;
  readonly forwardHopsMax?: number;
  /**
   * 'quorum' (default): a read asks R replicas (this node first) and one more per hedge delay
   * while it is incomplete, or at once when one fails; 'all': it asks every up replica and
   * completes with the first R answers (more messages, no hedge needed).
   */
  readonly readFanout?: 'quorum' | 'all';
  /** Hedge delay and attempt timeout bounds (default from limits). */
  readonly latency?: Partial<LatencyBounds>;
  readonly replicaRidEntriesMax?: number;
  readonly replicaRidRetentionMs?: number;
}

export interface CoordinatorStats {
  started: number;
  written: number;
  read: number;
  unavailable: number;
  indeterminate: number;
  overloaded: number;
  forwarded: number;
  deduplicated: number;
  readRepairs: number;
  rejectedReplies: number;
  /** Writes sent to a stand-in as a hint (sloppy quorum). */
  hinted: number;
  /** Reads sent to one more replica because the asked ones were slow (speculative retry). */
  hedgedReads: number;
  /** Client writes another coordinator had minted: replicated again, no new sibling. */
  adoptedWrites: number;
  /** Hedged writes handed to the coordinator that already had them (tied hedges). */
  tiedWrites: number;
  /** Replicas reported as having missed a write (a `missed` action each). */
  missed: number;
  /** Client writes found minted by two coordinators here; the losing mint is dropped (duplicate-dots.ts). */
  duplicateMints: number;
  /** Tied writes minted here after all: their holder was silent or gone. */
  untiedWrites: number;
}

type PutState = {
  readonly kind: 'put';
  readonly requestId: number;
  readonly key: Uint8Array;
  readonly rid: Uint8Array;
  readonly tally: QuorumTally;
  phase: 'query' | 'local' | 'replicating';
  /** The client's request (a tied hedge may forward it). */
  readonly request: PutRequest;
  /** Replicas asked about the rid that have not answered (phase 'query'). */
  readonly asked: Set<string>;
  readonly deadlineMs: number;
  context: Uint8Array | undefined;
  /** Stand-in id → the down replica it holds a hint for. */
  readonly hints: ReadonlyMap<string, string>;
  /**
   * Up nodes gaining the key's partition (placement.pending), and for a hedged write the
   * replicas marked down: sent the write, never waited for.
   */
  readonly pending: readonly string[];
  /** The write was minted by another coordinator; this one replicates what it holds. */
  readonly adopted: boolean;
  sentAtMs: number;
  /** The targets and the preference list, for the missed replicas when the put settles. */
  readonly targets: readonly ReplicaInfo[];
  readonly replicas: readonly ReplicaInfo[];
  /** The written object (after the local write), what a missed replica is owed. */
  object: Uint8Array | undefined;
  /** The client has its answer; the put waits only for the remaining acks. */
  answered: boolean;
  /** Recorded in the rid tables (every write but a sole one begun here: `untracked`). */
  readonly tracked: boolean;
};
type GetState = {
  readonly kind: 'get';
  readonly requestId: number;
  readonly key: Uint8Array;
  readonly tally: QuorumTally;
  readonly merge: ReadMerge;
  readonly expiryNowMs: number | undefined;
  completed: boolean;
  /** Up replicas not asked yet: each is asked when an asked one fails or a hedge delay passes. */
  readonly spares: ReplicaInfo[];
  /** The asked replicas and when each was asked (parallel arrays: a read asks a few). */
  readonly askedIds: string[];
  readonly askedAtMs: number[];
  /** Replicas still silent when a hedge went out: their answers are not latency samples (allocated at the first hedge). */
  hedgedPast: Set<string> | undefined;
  readonly deadlineMs: number;
};
type ForwardState = {
  readonly kind: 'forward';
  readonly requestId: number;
  readonly message: ForwardPut;
  readonly candidates: string[];
  to: string;
  /** A tied write: forwarded to the node that has its rid; its rid entry here ends with the forward. */
  readonly rid?: Uint8Array;
  /** A tied write's own state, resumed (minted here) when the holder is silent or gone. */
  readonly resume?: PutState;
};
type RequestState = PutState | GetState | ForwardState;

/** Local failures that happen before anything is stored: the write definitely did not apply. */
const definiteLocalCodes: ReadonlySet<Code> = new Set([
  ErrorCode.badContext,
  ErrorCode.tooManySiblings,
  ErrorCode.tooLarge,
  ErrorCode.badRequest,
  ErrorCode.overloaded,
]);

const failure = (code: Code, message: string): CoordinatorResult => ({ type: 'error', code, message });

export class Coordinator {
  readonly #self: { readonly id: string; readonly dc: string };
  readonly #actor: string;
  readonly #placementOf: (key: Uint8Array) => Placement;
  readonly #soleReplicaOfToken: ((token: number) => boolean) | undefined;
  /** soleWrites whose local write has not ended. */
  #soleInFlight = 0;
  readonly #targetsOf: TargetSelector;
  readonly #policy: ConflictPolicy;
  readonly #requestsMax: number;
  readonly #forwardHopsMax: number;
  readonly #readFanout: 'quorum' | 'all';
  readonly #requests = new Map<number, RequestState>();
  /** Answered puts still waiting for acks (in #requests, not counted toward requestsMax). */
  #lingering = 0;
  readonly #rids: RidTable<CoordinatorResult>;
  readonly #replicaRids: ReplicaRids;
  readonly #latency: LatencyEstimator;
  readonly #hedges = new HedgeBudget();
  /** Peers that let a hedge delay pass without answering, until they answer anything. */
  readonly #slow = new Set<string>();
  readonly #stats: CoordinatorStats = {
    started: 0,
    written: 0,
    read: 0,
    unavailable: 0,
    indeterminate: 0,
    overloaded: 0,
    forwarded: 0,
    deduplicated: 0,
    readRepairs: 0,
    rejectedReplies: 0,
    hinted: 0,
    hedgedReads: 0,
    adoptedWrites: 0,
    tiedWrites: 0,
    missed: 0,
    duplicateMints: 0,
    untiedWrites: 0,
  };

  constructor(options: CoordinatorOptions) {
    this.#self = { id: options.self.id, dc: options.self.dc };
    this.#actor = options.actor ?? options.self.id;
    this.#placementOf = options.placementOf;
    this.#soleReplicaOfToken = options.soleReplicaOfToken;
    this.#targetsOf = options.targetsOf ?? strictTargets;
    this.#policy = options.policy ?? 'siblings';
    this.#requestsMax = options.requestsMax ?? limits.coordinatorRequestsMax;
    this.#forwardHopsMax = options.forwardHopsMax ?? limits.forwardHopsMax;
    this.#readFanout = options.readFanout ?? 'quorum';
    this.#latency = new LatencyEstimator(options.latency);
    this.#replicaRids = new ReplicaRids({
      entriesMax: options.replicaRidEntriesMax ?? limits.replicaRidEntriesMax,
      retentionMs: options.replicaRidRetentionMs ?? limits.replicaRidRetentionMs,
    });
    const entriesMax = options.ridEntriesMax ?? limits.ridEntriesMax;
    if (!(entriesMax > this.#requestsMax)) throw new RangeError('ridEntriesMax must exceed requestsMax');
    this.#rids = new RidTable({ entriesMax, retentionMs: options.ridRetentionMs ?? limits.ridRetentionMs, waitersMax: limits.ridWaitersMax });
  }

  /** Requests in flight (reads waiting for read repair included). */
  get inflight(): number {
    return this.#requests.size;
  }

  stats(): Readonly<CoordinatorStats> {
    return { ...this.#stats };
  }

  // --- reads ---

  startGet(requestId: number, request: GetRequest, nowMs: number): CoordinatorAction[] {
    this.#checkRequestId(requestId);
    this.#stats.started++;
    const invalid = checkKey(request.key) ?? checkTimeout(request.timeoutMs);
    if (invalid !== undefined) return [complete(requestId, invalid)];
    if (this.#full()) return [complete(requestId, this.#overloaded())];
    const resolved = this.#resolve('r', request.key, request.r, request.consistency, this.#self.dc, strictTargets);
    if (resolved.type === 'error') return [complete(requestId, resolved)];
    const { requirement, targets } = resolved;
    if (!canMeet(requirement, targets)) return [complete(requestId, this.#unavailable(requirement, targets))];
    // 'quorum' fan-out asks only as many replicas as the read needs (this node first, slow
    // peers last), keeping the rest as spares for hedges; 'all' (Dynamo's choice) asks every
    // one. Per-datacenter levels ask all.
    const ordered = this.#readOrder(targets);
    const askAll = this.#readFanout === 'all' || requirement.perDc.size > 0;
    const asked = askAll || ordered.length <= requirement.total ? ordered : ordered.slice(0, requirement.total);
    const spares = askAll || ordered.length <= requirement.total ? [] : ordered.slice(requirement.total);
    const deadlineMs = nowMs + (request.timeoutMs ?? limits.coordinatorTimeoutMsDefault);
    this.#hedges.earn();
    const tally = new QuorumTally(requirement, asked);
    const state: GetState = { kind: 'get', requestId, key: request.key, tally, merge: new ReadMerge(), expiryNowMs: request.expiryNowMs, completed: false, spares, askedIds: asked.map(idOf), askedAtMs: asked.map(() => nowMs), hedgedPast: undefined, deadlineMs };
    this.#requests.set(requestId, state);
    const actions: CoordinatorAction[] = asked.map((r) => this.#readAction(requestId, r.id, request.key));
    actions.push(this.#readTimer(state));
    return actions;
  }

  /**
   * Whether a read of `key` at (r, consistency) would ask this node alone and have no spare to
   * hedge to: this node is the key's only replica and is up. Then the driver may answer it
   * from this node's row cache without a request (`countLocalRead`), exactly as the request
   * would, minus the wait.
   */
  soleLocalRead(key: Uint8Array, r: number | undefined, consistency: string | undefined): boolean {
    if (r === undefined && consistency === undefined && this.#soleReplicaOfToken !== undefined) return this.#soleReplicaOfToken(tokenOf(key));
    const placement = this.#placementOf(key);
    const replicas = placement.replicas;
    if (replicas.length !== 1 || replicas[0]!.id !== this.#self.id || !replicas[0]!.up || placement.pending !== undefined) return false;
    if (r === undefined && consistency === undefined) return true;
    try {
      const requirement = resolveRequirement('r', { count: r, consistency }, placement, this.#self.dc);
      return requirement.total === 1 && requirement.perDc.size === 0;
    } catch {
      return false; // the request path reports the error
    }
  }

  /**
   * soleLocalRead of a read at the node's default level, by the key's placement token; false
   * when the coordinator was given no `soleReplicaOfToken` (the caller asks the usual way).
   */
  soleLocalToken(token: number): boolean {
    return this.#soleReplicaOfToken !== undefined && this.#soleReplicaOfToken(token);
  }

  /** The conflict policy reads are viewed with. */
  get policy(): ConflictPolicy {
    return this.#policy;
  }

  /** A read answered by the driver without a request (soleLocalRead): counted as any read. */
  countLocalRead(): void {
    this.#stats.started++;
    this.#stats.read++;
  }

  /** The targets in asking order: this node first, then the others, peers known to be slow last. */
  #readOrder(targets: readonly ReplicaInfo[]): readonly ReplicaInfo[] {
    if (this.#slow.size === 0 && (targets.length === 1 || targets[0]?.id === this.#self.id)) return targets;
    const ordered: ReplicaInfo[] = [];
    for (const r of targets) if (r.id === this.#self.id) ordered.push(r);
    if (ordered.length === targets.length) return ordered;
    for (const r of targets) if (r.id !== this.#self.id && !this.#slow.has(r.id)) ordered.push(r);
    if (this.#slow.size > 0) for (const r of targets) if (r.id !== this.#self.id && this.#slow.has(r.id)) ordered.push(r);
    return ordered;
  }

  #askRead(state: GetState, id: string, nowMs: number): CoordinatorAction {
    state.askedIds.push(id);
    state.askedAtMs.push(nowMs);
    return this.#readAction(state.requestId, id, state.key);
  }

  /** When `id` was asked for this read. */
  #askedAtMs(state: GetState, id: string): number {
    return state.askedAtMs[state.askedIds.indexOf(id)]!;
  }

  /** The read's next wake-up: the hedge time of the slowest pending replica while spares remain, else the deadline. */
  #readTimer(state: GetState): CoordinatorAction {
    let atMs = state.deadlineMs;
    if (!state.completed && state.spares.length > 0) {
      let hedgeAtMs = 0;
      for (const id of state.tally.pendingTargets()) hedgeAtMs = Math.max(hedgeAtMs, this.#askedAtMs(state, id) + this.#latency.hedgeDelayMs(id));
      if (hedgeAtMs > 0) atMs = Math.min(atMs, hedgeAtMs);
    }
    return { type: 'set-timer', requestId: state.requestId, atMs };
  }

  /** When the first pending replica of a read passes its attempt timeout. */
  #failoverAtMs(state: GetState): number {
    let atMs = Infinity;
    for (const id of state.tally.pendingTargets()) atMs = Math.min(atMs, this.#askedAtMs(state, id) + this.#latency.attemptTimeoutMs(id));
    return atMs;
  }

  /** A hedge delay passed with the read incomplete: the silent replicas are slow; ask a spare. */
  #hedgeRead(state: GetState, nowMs: number): CoordinatorAction[] {
    const actions: CoordinatorAction[] = [];
    if (!state.completed) {
      for (const id of state.tally.pendingTargets()) {
        (state.hedgedPast ??= new Set()).add(id);
        if (id !== this.#self.id && nowMs - this.#askedAtMs(state, id) >= this.#latency.hedgeDelayMs(id)) this.#slow.add(id);
      }
      // Out of hedges (overload): wait for the asked replicas, but only up to their attempt
      // timeout: past it a replica is silent, not slow, and a spare is asked anyway (a
      // failover, not a hedge: not rationed, as the client does).
      if (!this.#hedges.spend()) {
        const failoverAtMs = this.#failoverAtMs(state);
        if (nowMs < failoverAtMs) return [...actions, { type: 'set-timer', requestId: state.requestId, atMs: Math.min(state.deadlineMs, failoverAtMs) }];
      }
      const spare = state.spares.shift();
      if (spare !== undefined && state.tally.add(spare)) {
        this.#stats.hedgedReads++;
        actions.push(this.#askRead(state, spare.id, nowMs));
      }
    }
    actions.push(this.#readTimer(state));
    return actions;
  }

  #readAction(requestId: number, id: string, key: Uint8Array): CoordinatorAction {
    if (id === this.#self.id) return { type: 'local', requestId, op: 'read-object', key };
    return { type: 'send', to: id, requestId, message: { t: 'replica-read', key } };
  }

  #onReadAnswer(state: GetState, from: string, object: Uint8Array | undefined | Error, nowMs: number): CoordinatorAction[] {
    if (!state.tally.isPending(from)) return [];
    const actions: CoordinatorAction[] = [];
    if (object instanceof Error || !state.merge.add(from, object)) {
      if (!(object instanceof Error)) this.#stats.rejectedReplies++;
      state.tally.fail(from);
      const spare = state.completed ? undefined : state.spares.shift();
      if (spare !== undefined && state.tally.add(spare)) actions.push(this.#askRead(state, spare.id, nowMs));
    } else {
      // Karn's rule: an answer the read already hedged past says nothing certain of the peer.
      if (state.hedgedPast?.has(from) !== true) this.#latency.sample(from, nowMs - this.#askedAtMs(state, from));
      state.tally.ack(from);
    }
    return this.#advanceRead(state, actions);
  }

  /** Completes the read when it can, and ends it once settled; appends to `actions`. */
  #advanceRead(state: GetState, actions: CoordinatorAction[]): CoordinatorAction[] {
    if (!state.completed && state.tally.met) {
      state.completed = true;
      this.#stats.read++;
      const view = state.merge.view(this.#policy, state.expiryNowMs);
      const read: CoordinatorResult = { type: 'read', found: view.found, values: view.values, context: view.context, latest: view.latest, expiresAtMs: view.expiresAtMs };
      actions.push(complete(state.requestId, read));
    } else if (!state.completed && !state.tally.possible) {
      state.completed = true;
      this.#stats.unavailable++;
      const { total, level } = state.tally.requirement;
      actions.push(complete(state.requestId, failure(ErrorCode.unavailable, `read at ${level} needs ${total} replicas; too many failed`)));
    }
    if (state.tally.settled) this.#finishRead(state, actions);
    return actions;
  }

  /** Read repair, then the request is gone; appends to `actions`. */
  #finishRead(state: GetState, actions: CoordinatorAction[]): CoordinatorAction[] {
    this.#requests.delete(state.requestId);
    actions.push({ type: 'clear-timer', requestId: state.requestId });
    for (const { to, object } of state.merge.repairs()) {
      this.#stats.readRepairs++;
      if (to === this.#self.id) actions.push({ type: 'local', requestId: undefined, op: 'merge-object', key: state.key, object });
      else actions.push({ type: 'send', to, requestId: undefined, message: { t: 'replica-write', key: state.key, object } });
    }
    return actions;
  }

  // --- writes ---

  startPut(requestId: number, request: PutRequest, nowMs: number): CoordinatorAction[] {
    this.#checkRequestId(requestId);
    this.#stats.started++;
    const invalid = checkPut(request, this.#forwardHopsMax);
    if (invalid !== undefined) return [complete(requestId, invalid)];
    const resolved = this.#resolve('w', request.key, request.w, request.consistency, request.dc ?? this.#self.dc, this.#targetsOf);
    if (resolved.type === 'error') return [complete(requestId, resolved)];
    if (!resolved.placement.replicas.some((replica) => replica.id === this.#self.id)) {
      return this.#forward(requestId, request, resolved.placement, nowMs);
    }
    const pending = (resolved.placement.pending ?? []).filter((p) => p.up && p.id !== this.#self.id).map((p) => p.id);
    const peers = resolved.placement.replicas.filter((r) => r.id !== this.#self.id);
    if (request.hedged === true) for (const r of peers) if (!r.up) pending.push(r.id);
    const tie = { peers: request.hedged === true ? peers : [], pending, replicas: resolved.placement.replicas };
    return this.#coordinatePut(requestId, request, resolved.requirement, resolved.targets, tie, nowMs);
  }

  /**
   * A write that comes down to one local coordinate-write: begun at this node (`untracked`: a
   * RESP write, never retried or hedged), at the node's write level, on a key whose only
   * replica is this node with none gaining it (soleLocalToken). The request path would make a
   * request state, a timer and a tally of one for it; the driver does the local write alone
   * (CoordinatorDriver.put) and hands its outcome to `soleWritten`. Returns the local write's
   * flags, a result to answer at once (invalid, overloaded), or undefined: take the request
   * path. Counted as started.
   */
  soleWrite(request: PutRequest): { flags: LocalWriteFlags | undefined } | CoordinatorResult | undefined {
    if (!untracked(request) || request.w !== undefined || request.consistency !== undefined || request.hedged === true || request.dc !== undefined) return undefined;
    if (!(request.key instanceof Uint8Array) || !this.soleLocalToken(tokenOf(request.key))) return undefined;
    this.#stats.started++;
    const invalid = checkPut(request, this.#forwardHopsMax);
    if (invalid !== undefined) return invalid;
    if (this.#full()) return this.#overloaded();
    this.#soleInFlight++;
    return { flags: localFlagsOf(request) };
  }

  /** A soleWrite's local write ended (answered or not): it no longer counts against requestsMax. */
  soleDone(): void {
    if (this.#soleInFlight > 0) this.#soleInFlight--;
  }

  /** A soleWrite whose local write did not answer within its timeout: answered as the request path's timeout would. */
  soleTimedOut(): CoordinatorResult {
    return this.#count(failure(ErrorCode.indeterminate, "write timed out before this node's replica answered; it may be applied"));
  }

  /** The outcome of a soleWrite's local write, as the request path would answer it (and counted so). */
  soleWritten(result: LocalResult): CoordinatorResult {
    if (result.ok && 'context' in result) return this.#count({ type: 'written', context: result.context });
    if (result.ok) return this.#count(failure(ErrorCode.indeterminate, 'local write answered as a read'));
    const definite = definiteLocalCodes.has(result.code);
    return this.#count(definite ? failure(result.code, result.message) : failure(ErrorCode.indeterminate, `local write failed (${result.code}): ${result.message}`));
  }

  #coordinatePut(
    requestId: number,
    request: PutRequest,
    requirement: Requirement,
    targets: readonly ReplicaInfo[],
    tie: { peers: readonly ReplicaInfo[]; pending: readonly string[]; replicas: readonly ReplicaInfo[] },
    nowMs: number,
  ): CoordinatorAction[] {
    const tracked = !untracked(request);
    let known: RidHeld | undefined;
    if (tracked) {
      const keyHash = murmur3(request.key);
      const entry = this.#rids.get(request.rid, nowMs);
      if (entry !== undefined) {
        if (entry.keyHash !== keyHash) return [complete(requestId, failure(ErrorCode.badRequest, 'rid was already used for another key'))];
        this.#stats.deduplicated++;
        if (entry.result !== undefined) return [complete(requestId, entry.result)];
        if (this.#rids.join(entry, requestId)) return [];
        // The write itself is still in flight: this retry cannot say it failed.
        return [complete(requestId, failure(ErrorCode.indeterminate, 'too many retries of one write in flight'))];
      }
      known = this.#replicaRids.lookup(request.rid, nowMs);
      if (known !== undefined && known.keyHash !== keyHash) return [complete(requestId, failure(ErrorCode.badRequest, 'rid was already used for another key'))];
    }
    const refused =
      this.#full() ? this.#overloaded() : canMeet(requirement, targets) ? undefined : this.#unavailable(requirement, targets);
    if (tracked) this.#rids.begin(request.rid, murmur3(request.key), requestId, nowMs);
    if (refused !== undefined) {
      // Recorded, so that a duplicate arriving later cannot apply a write we said failed.
      if (tracked) this.#rids.finish(request.rid, refused, nowMs);
      return [complete(requestId, refused)];
    }
    const deadlineMs = nowMs + (request.timeoutMs ?? limits.coordinatorTimeoutMsDefault);
    const claimedBy = known?.claimedBy !== undefined && known.claimedBy !== this.#self.id ? known.claimedBy : undefined;
    const hints = new Map(targets.filter((t) => t.hintFor !== undefined).map((t) => [t.id, t.hintFor!]));
    // A replica write already brought this rid here: another coordinator minted the write, so
    // this one replicates what it holds instead of minting a second sibling.
    const adopted = known !== undefined && claimedBy === undefined;
    const tally = new QuorumTally(requirement, targets);
    const asked = new Set<string>();
    const phase = claimedBy !== undefined || (!adopted && tie.peers.length > 0) ? 'query' : 'local';
    const { pending, replicas } = tie;
    const state: PutState = {
      ...{ kind: 'put', requestId, key: request.key, rid: request.rid, tally, phase, context: undefined, hints, pending, adopted, sentAtMs: nowMs, request, asked, deadlineMs },
      ...{ targets, replicas, object: undefined, answered: false, tracked },
    };
    this.#requests.set(requestId, state);
    if (adopted) this.#stats.adoptedWrites++;
    // Another coordinator claimed this rid (it asked before minting a hedge): it has the write.
    if (claimedBy !== undefined) return this.#tie(state, claimedBy, nowMs);
    if (phase === 'query') return this.#askAboutRid(state, tie.peers, nowMs);
    const local: CoordinatorAction = adopted
      ? { type: 'local', requestId, op: 'read-rid-object', key: request.key, rid: request.rid }
      : { type: 'local', requestId, op: 'coordinate-write', key: request.key, value: request.value, context: request.context, ...optionalFlags(localFlagsOf(request)) };
    return [local, { type: 'set-timer', requestId, atMs: deadlineMs }];
  }

  /**
   * A tied hedge: asks every other replica about the rid (so each keeps the claim), and waits
   * for the up ones not known to be slow, at most their hedge delay; none to wait for: mint.
   */
  #askAboutRid(state: PutState, peers: readonly ReplicaInfo[], nowMs: number): CoordinatorAction[] {
    const { requestId, rid, key } = state;
    let waitMs = 0;
    const actions: CoordinatorAction[] = [];
    for (const peer of peers) {
      const wait = peer.up && !this.#slow.has(peer.id);
      if (wait) state.asked.add(peer.id);
      if (wait) waitMs = Math.max(waitMs, this.#latency.hedgeDelayMs(peer.id));
      actions.push({ type: 'send', to: peer.id, requestId: wait ? requestId : undefined, message: { t: 'rid-query', rid, key } });
    }
    if (state.asked.size === 0) return actions.concat(this.#mint(state));
    actions.push({ type: 'set-timer', requestId, atMs: Math.min(state.deadlineMs, nowMs + waitMs) });
    return actions;
  }

  /** Nobody else has the rid (or the wait ended): mint the write here. */
  #mint(state: PutState): CoordinatorAction[] {
    state.phase = 'local';
    state.asked.clear();
    const { requestId, key, request } = state;
    return [
      { type: 'local', requestId, op: 'coordinate-write', key, value: request.value, context: request.context, ...optionalFlags(localFlagsOf(request)) },
      { type: 'set-timer', requestId, atMs: state.deadlineMs },
    ];
  }

  #onRidAnswer(state: PutState, from: string, reply: ReplicaReply | undefined, nowMs: number): CoordinatorAction[] {
    if (!state.asked.delete(from)) return [];
    if (reply?.t === 'rid-query-reply' && reply.state !== 'unknown') {
      this.#stats.tiedWrites++;
      return this.#tie(state, from, nowMs);
    }
    return state.asked.size === 0 ? this.#mint(state) : [];
  }

  /**
   * Hands the write to `to`, which coordinates, holds or claimed its rid; the rid entry begun
   * here ends with the forward's outcome. The request state is replaced. When `to` cannot be
   * reached, or does not answer within its attempt timeout (it may have stopped since), the
   * write is minted here after all (`state` resumes): should `to` have minted it too, the
   * replicas drop one of the two (duplicate-dots.ts).
   */
  #tie(state: PutState, to: string, nowMs: number): CoordinatorAction[] {
    const { requestId, request, deadlineMs } = state;
    const hops = (request.hops ?? 0) + 1;
    if (hops > this.#forwardHopsMax) return this.#mint(state);
    const message = forwardMessage(request, hops, Math.max(1, deadlineMs - nowMs - limits.forwardTimeoutMarginMs), this.#self.dc);
    this.#requests.set(requestId, { kind: 'forward', requestId, message, candidates: [], to, rid: request.rid, resume: state });
    this.#stats.forwarded++;
    return [
      { type: 'send', to, requestId, message },
      { type: 'set-timer', requestId, atMs: Math.min(deadlineMs, nowMs + this.#latency.attemptTimeoutMs(to)) },
    ];
  }

  /** A tied write whose holder is silent or gone: minted here after all. */
  #untie(state: ForwardState): CoordinatorAction[] {
    const resume = state.resume!;
    this.#stats.untiedWrites++;
    this.#requests.set(state.requestId, resume);
    return this.#mint(resume);
  }

  /** The local result of an adopted write: the object held, with its context. */
  #adoptedResult(result: LocalResult): LocalResult {
    if (!result.ok || 'context' in result) return result;
    if (result.object === undefined) return { ok: false, code: ErrorCode.indeterminate, message: 'the replica write that brought this rid left nothing to read' };
    try {
      return { ok: true, object: result.object, context: encodeContext(join(decodeObject(result.object))) };
    } catch (error) {
      return { ok: false, code: ErrorCode.indeterminate, message: `the object holding this rid is unreadable: ${String(error)}` };
    }
  }

  #onLocalWrite(state: PutState, answer: LocalResult, nowMs: number): CoordinatorAction[] {
    if (state.phase !== 'local') return [];
    const result = state.adopted ? this.#adoptedResult(answer) : answer;
    if (!result.ok) {
      const definite = definiteLocalCodes.has(result.code);
      const outcome = definite ? failure(result.code, result.message) : failure(ErrorCode.indeterminate, `local write failed (${result.code}): ${result.message}`);
      return this.#finishPut(state, outcome, nowMs);
    }
    if (!('context' in result)) return this.#finishPut(state, failure(ErrorCode.indeterminate, 'local write answered as a read'), nowMs);
    state.phase = 'replicating';
    state.context = result.context;
    state.object = result.object;
    state.sentAtMs = nowMs;
    state.tally.ack(this.#self.id);
    const { key, rid } = state;
    const dot = state.adopted || !state.tracked ? undefined : this.#mintOf(state, result.context, nowMs);
    const actions: CoordinatorAction[] = dot === undefined ? [] : this.#duplicatesOf(rid, key, nowMs);
    const write = { t: 'replica-write', key, object: result.object, rid, ...(dot === undefined ? {} : { dot }) } as const;
    for (const id of state.tally.pendingTargets()) {
      const hintFor = state.hints.get(id);
      const message: ReplicaRequest = hintFor === undefined ? write : { ...write, hintFor };
      if (hintFor !== undefined) this.#stats.hinted++;
      actions.push({ type: 'send', to: id, requestId: state.requestId, message });
    }
    for (const id of state.pending) actions.push({ type: 'send', to: id, requestId: undefined, message: write });
    return actions.concat(this.#advancePut(state, nowMs));
  }

  /** The event this coordinator minted for the write (its own entry of the new context), now remembered with the rid. */
  #mintOf(state: PutState, context: Uint8Array, nowMs: number): MintDot | undefined {
    let counter: number | undefined;
    try {
      counter = decodeContext(context).find((e) => e.actor === this.#actor)?.counter;
    } catch {
      counter = undefined; // a context we cannot read names no mint; the write itself stands
    }
    if (counter === undefined) return undefined;
    const dot: MintDot = { actor: this.#actor, counter, attempt: state.request.attempt ?? 0 };
    this.#replicaRids.note(state.rid, murmur3(state.key), nowMs, { dot });
    return dot;
  }

  /** A 'drop-duplicates' action when `rid` is now known to have been minted more than once. */
  #duplicatesOf(rid: Uint8Array, key: Uint8Array, nowMs: number): CoordinatorAction[] {
    const dots = this.#replicaRids.duplicates(rid, nowMs);
    if (dots === undefined) return [];
    this.#stats.duplicateMints++;
    return [{ type: 'local', requestId: undefined, op: 'drop-duplicates', key, rid, dots }];
  }

  #advancePut(state: PutState, nowMs: number): CoordinatorAction[] {
    const actions: CoordinatorAction[] = [];
    if (!state.answered && state.tally.met) actions.push(...this.#answerPut(state, { type: 'written', context: state.context! }, nowMs));
    if (!state.answered && !state.tally.possible) {
      const { total, level } = state.tally.requirement;
      const message = `write at ${level} reached ${state.tally.acked.size} of ${total} replicas; it may be applied on some`;
      actions.push(...this.#answerPut(state, failure(ErrorCode.indeterminate, message), nowMs));
    }
    if (state.answered && state.tally.settled) actions.push(...this.#settlePut(state));
    return actions;
  }

  /** Answered and settled at once (a local failure, or the deadline before W): whoever did not ack is missed. */
  #finishPut(state: PutState, result: CoordinatorResult, nowMs: number): CoordinatorAction[] {
    return this.#answerPut(state, result, nowMs).concat(this.#settlePut(state));
  }

  /** The client's answer (and its retries'); the put stays for the remaining acks. */
  #answerPut(state: PutState, result: CoordinatorResult, nowMs: number): CoordinatorAction[] {
    state.answered = true;
    this.#lingering++;
    this.#count(result);
    const actions: CoordinatorAction[] = [complete(state.requestId, result)];
    if (state.tracked) for (const waiter of this.#rids.finish(state.rid, result, nowMs)) actions.push(complete(waiter, result));
    // Bounded: past the limit a put settles now, its silent replicas reported missed at once.
    if (this.#lingering > limits.coordinatorLingeringPutsMax) actions.push(...this.#settlePut(state));
    return actions;
  }

  /** The put is gone: every replica that did not acknowledge it is reported missed. */
  #settlePut(state: PutState): CoordinatorAction[] {
    if (this.#requests.get(state.requestId) !== state) return [];
    this.#requests.delete(state.requestId);
    if (state.answered) this.#lingering--;
    const actions: CoordinatorAction[] = [{ type: 'clear-timer', requestId: state.requestId }];
    const object = state.object;
    if (object === undefined) return actions;
    for (const { to, standIn } of missedReplicas(state.targets, state.tally.acked, state.replicas, this.#self.id)) {
      this.#stats.missed++;
      actions.push({ type: 'missed', to, key: state.key, object, standIn });
    }
    return actions;
  }

  // --- forwarding ---

  #forward(requestId: number, request: PutRequest, placement: Placement, nowMs: number): CoordinatorAction[] {
    const hops = request.hops ?? 0;
    if (hops >= this.#forwardHopsMax) return [complete(requestId, this.#count(failure(ErrorCode.unavailable, `write forwarded ${hops} times without reaching a replica`)))];
    const candidates = placement.replicas.filter((r) => r.up && r.id !== this.#self.id).map((r) => r.id);
    if (candidates.length === 0) return [complete(requestId, this.#count(failure(ErrorCode.unavailable, 'no replica of the key is up')))];
    if (this.#full()) return [complete(requestId, this.#overloaded())];
    const timeoutMs = request.timeoutMs ?? limits.coordinatorTimeoutMsDefault;
    const message = forwardMessage(request, hops + 1, Math.max(1, timeoutMs - limits.forwardTimeoutMarginMs), this.#self.dc);
    const to = candidates.shift()!;
    this.#requests.set(requestId, { kind: 'forward', requestId, message, candidates, to });
    this.#stats.forwarded++;
    return [
      { type: 'send', to, requestId, message },
      { type: 'set-timer', requestId, atMs: nowMs + timeoutMs },
    ];
  }

  #onForwardReply(state: ForwardState, from: string, reply: ReplicaReply | undefined, nowMs: number): CoordinatorAction[] {
    if (from !== state.to) return [];
    if (reply?.t === 'forward-put-reply') return this.#finishForward(state, { type: 'written', context: reply.context }, nowMs);
    if (reply?.t === 'replica-error') return this.#finishForward(state, failure(reply.code, reply.message), nowMs);
    return this.#finishForward(state, failure(ErrorCode.indeterminate, `replica ${from} answered the forwarded write with garbage`), nowMs);
  }

  #finishForward(state: ForwardState, result: CoordinatorResult, nowMs: number): CoordinatorAction[] {
    this.#requests.delete(state.requestId);
    this.#count(result);
    const actions: CoordinatorAction[] = [{ type: 'clear-timer', requestId: state.requestId }, complete(state.requestId, result)];
    if (state.rid !== undefined) for (const waiter of this.#rids.finish(state.rid, result, nowMs)) actions.push(complete(waiter, result));
    return actions;
  }

  // --- answers from the outside ---

  onLocalResult(requestId: number, result: LocalResult, nowMs: number): CoordinatorAction[] {
    const state = this.#requests.get(requestId);
    if (state === undefined) return [];
    switch (state.kind) {
      case 'put':
        return this.#onLocalWrite(state, result, nowMs);
      case 'get':
        if (!result.ok) return this.#onReadAnswer(state, this.#self.id, new Error(result.message), nowMs);
        return this.#onReadAnswer(state, this.#self.id, result.object, nowMs);
      case 'forward':
        return [];
      default:
        return assertNever(state, 'request state');
    }
  }

  onReply(requestId: number, from: string, body: unknown, nowMs: number): CoordinatorAction[] {
    // Any answer, even to a request that is gone, shows the peer is answering again.
    this.#slow.delete(from);
    const state = this.#requests.get(requestId);
    if (state === undefined) return [];
    const parsed = parseReplicaReply(body);
    if (!parsed.ok) this.#stats.rejectedReplies++;
    const reply = parsed.ok ? parsed.value : undefined;
    switch (state.kind) {
      case 'get':
        if (reply?.t === 'replica-read-reply') return this.#onReadAnswer(state, from, reply.object, nowMs);
        return this.#onReadAnswer(state, from, new Error(reply?.t === 'replica-error' ? reply.message : 'unexpected reply'), nowMs);
      case 'put':
        if (state.phase === 'query') return this.#onRidAnswer(state, from, reply, nowMs);
        // Late answers to a tie or a query say nothing of this replica's copy.
        if (state.phase !== 'replicating' || reply?.t === 'forward-put-reply' || reply?.t === 'rid-query-reply') return [];
        if (reply?.t === 'replica-write-reply') state.tally.ack(from);
        else state.tally.fail(from);
        return this.#advancePut(state, nowMs);
      case 'forward':
        return this.#onForwardReply(state, from, reply, nowMs);
      default:
        return assertNever(state, 'request state');
    }
  }

  onSendFailed(requestId: number, to: string, nowMs: number): CoordinatorAction[] {
    const state = this.#requests.get(requestId);
    if (state === undefined) return [];
    switch (state.kind) {
      case 'get':
        return this.#onReadAnswer(state, to, new Error('send failed'), nowMs);
      case 'put':
        if (state.phase === 'query') return this.#onRidAnswer(state, to, undefined, nowMs);
        if (state.phase !== 'replicating') return [];
        state.tally.fail(to);
        return this.#advancePut(state, nowMs);
      case 'forward': {
        if (to !== state.to) return [];
        if (state.resume !== undefined) return this.#untie(state);
        // Nothing left this node: try the next replica, or fail definitely.
        const next = state.candidates.shift();
        if (next === undefined) return this.#finishForward(state, failure(ErrorCode.unavailable, 'no replica of the key could be reached'), nowMs);
        state.to = next;
        return [{ type: 'send', to: next, requestId, message: state.message }];
      }
      default:
        return assertNever(state, 'request state');
    }
  }

  onTimeout(requestId: number, nowMs: number): CoordinatorAction[] {
    const state = this.#requests.get(requestId);
    if (state === undefined) return [];
    switch (state.kind) {
      case 'get': {
        if (nowMs < state.deadlineMs) return this.#hedgeRead(state, nowMs);
        const actions: CoordinatorAction[] = [];
        if (!state.completed) actions.push(complete(requestId, failure(ErrorCode.timeout, `read at ${state.tally.requirement.level} timed out`)));
        return this.#finishRead(state, actions);
      }
      case 'put': {
        if (state.phase === 'query' && nowMs < state.deadlineMs) return this.#mint(state);
        if (state.answered) return this.#settlePut(state);
        const { acked } = state.tally;
        const message = `write timed out with ${acked.size} of ${state.tally.requirement.total} acks; it may be applied on some replicas`;
        return this.#finishPut(state, failure(ErrorCode.indeterminate, message), nowMs);
      }
      case 'forward':
        if (state.resume !== undefined && nowMs < state.resume.deadlineMs) return this.#untie(state);
        return this.#finishForward(state, failure(ErrorCode.indeterminate, `forwarded write to ${state.to} timed out`), nowMs);
      default:
        return assertNever(state, 'request state');
    }
  }

  /**
   * A replica write carrying client write `rid` for `key` arrived (on receipt, before it is
   * merged): from now on this replica holds that write, and coordinating the same rid here
   * replicates it instead of minting it again.
   */
  noteReplicaWrite(rid: Uint8Array, key: Uint8Array, nowMs: number, dot?: MintDot): CoordinatorAction[] {
    this.#replicaRids.note(rid, murmur3(key), nowMs, dot === undefined ? {} : { dot });
    return this.#duplicatesOf(rid, key, nowMs);
  }

  /** Sends `object` to every other replica of `key` (a write that undid a duplicate mint); no answers wanted. */
  spread(key: Uint8Array, object: Uint8Array): CoordinatorAction[] {
    return this.#placementOf(key)
      .replicas.filter((r) => r.id !== this.#self.id)
      .map((r) => ({ type: 'send', to: r.id, requestId: undefined, message: { t: 'replica-write', key, object } }));
  }

  /**
   * Another coordinator (`from`) asks, before minting a hedged write, whether this node
   * coordinates or holds `rid`; if neither, `from`'s claim on it is kept here (see the header).
   */
  ridQuery(rid: Uint8Array, key: Uint8Array, from: string | undefined, nowMs: number): RidState {
    const keyHash = murmur3(key);
    const entry = this.#rids.get(rid, nowMs);
    if (entry !== undefined) return entry.keyHash === keyHash ? 'coordinating' : 'unknown';
    const known = this.#replicaRids.lookup(rid, nowMs);
    if (known !== undefined && known.claimedBy === undefined) return known.keyHash === keyHash ? 'held' : 'unknown';
    if (known === undefined && from !== undefined) this.#replicaRids.note(rid, keyHash, nowMs, { claimedBy: from });
    return 'unknown';
  }

  /** The hedge delay this coordinator uses for a peer now (status, tests). */
  hedgeDelayMs(peer: string): number {
    return this.#latency.hedgeDelayMs(peer);
  }

  // --- helpers ---

  #checkRequestId(requestId: number): void {
    if (!Number.isSafeInteger(requestId) || requestId < 0) throw new RangeError('requestId must be a non-negative safe integer');
    if (this.#requests.has(requestId)) throw new RangeError(`requestId ${requestId} is already in flight`);
  }

  #resolve(
    field: 'r' | 'w',
    key: Uint8Array,
    count: number | undefined,
    consistency: string | undefined,
    localDc: string,
    targetsOf: TargetSelector,
  ): { type: 'ok'; placement: Placement; requirement: Requirement; targets: readonly ReplicaInfo[] } | (CoordinatorResult & { type: 'error' }) {
    const placement = this.#placementOf(key);
    if (placement.replicas.length === 0) {
      this.#stats.unavailable++;
      return { type: 'error', code: ErrorCode.unavailable, message: 'no ring yet: this node has not met a member that owns partitions' };
    }
    try {
      const requirement = resolveRequirement(field, { count, consistency }, placement, localDc);
      return { type: 'ok', placement, requirement, targets: targetsOf(placement, this.#self.id) };
    } catch (error) {
      if (error instanceof RangeError || error instanceof TypeError) return { type: 'error', code: ErrorCode.badRequest, message: error.message };
      throw error;
    }
  }

  /** At `requestsMax` requests in flight; answered puts waiting for their last acks do not count. */
  #full(): boolean {
    return this.#requests.size - this.#lingering + this.#soleInFlight >= this.#requestsMax;
  }

  #overloaded(): CoordinatorResult {
    this.#stats.overloaded++;
    return failure(ErrorCode.overloaded, `more than ${this.#requestsMax} requests in flight at this coordinator`);
  }

  #unavailable(requirement: Requirement, targets: readonly ReplicaInfo[]): CoordinatorResult {
    this.#stats.unavailable++;
    const dcs = requirement.perDc.size === 0 ? '' : ` (per datacenter: ${[...requirement.perDc].map(([dc, n]) => `${dc}=${n}`).join(', ')})`;
    return failure(ErrorCode.unavailable, `${requirement.level} needs ${requirement.total} replicas${dcs}; ${targets.length} up`);
  }

  #count(result: CoordinatorResult): CoordinatorResult {
    if (result.type === 'written') this.#stats.written++;
    else if (result.type === 'error' && result.code === ErrorCode.indeterminate) this.#stats.indeterminate++;
    else if (result.type === 'error' && result.code === ErrorCode.unavailable) this.#stats.unavailable++;
    return result;
  }
}

/** The write flags a request sets, as the optional `flags` of a coordinate-write (absent when none). */
/**
 * A sole write begun at this coordinator (the RESP front door's: never retried, never hedged,
 * never forwarded here by another node): no other coordinator can know its rid, so it needs
 * no entry in the rid tables. A forwarded one is tracked: the node that forwarded it may have
 * tried another replica first, whose replica write brought the rid here.
 */
function untracked(request: PutRequest): boolean {
  return request.sole === true && (request.hops ?? 0) === 0;
}

function writeFlagsOf(request: WriteFlags): { flags?: WriteFlags } {
  if (request.ttlMs === undefined && request.overwrite !== true && request.keepTtl !== true) return {};
  return {
    flags: {
      ...(request.ttlMs === undefined ? {} : { ttlMs: request.ttlMs }),
      ...(request.overwrite === true ? { overwrite: true } : {}),
      ...(request.keepTtl === true ? { keepTtl: true } : {}),
    },
  };
}

const idOf = (replica: ReplicaInfo): string => replica.id;

const optionalFlags = (flags: LocalWriteFlags | undefined): { flags?: LocalWriteFlags } => (flags === undefined ? {} : { flags });

/** A coordinated write's local flags: its write flags and its mint (rid, client attempt). */
function localFlagsOf(request: PutRequest): LocalWriteFlags | undefined {
  const { flags } = writeFlagsOf(request);
  if (request.sole === true) return flags;
  return { ...flags, mint: { rid: request.rid, attempt: request.attempt ?? 0 } };
}

function complete(requestId: number, result: CoordinatorResult): CoordinatorAction {
  return { type: 'complete', requestId, result };
}


function checkKey(key: unknown): CoordinatorResult | undefined {
  if (!(key instanceof Uint8Array)) return failure(ErrorCode.badRequest, 'key must be bytes');
  if (key.length > limits.keyBytesMax) return failure(ErrorCode.tooLarge, `key is ${key.length} bytes, over ${limits.keyBytesMax}`);
  return undefined;
}

function checkTimeout(timeoutMs: unknown): CoordinatorResult | undefined {
  if (timeoutMs === undefined) return undefined;
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > limits.coordinatorTimeoutMsMax) {
    return failure(ErrorCode.badRequest, `timeoutMs must be an integer in [1, ${limits.coordinatorTimeoutMsMax}]`);
  }
  return undefined;
}

function checkPut(request: PutRequest, hopsMax: number): CoordinatorResult | undefined {
  const invalid = checkKey(request.key) ?? checkTimeout(request.timeoutMs);
  if (invalid !== undefined) return invalid;
  const { value, rid, context, hops, dc } = request;
  if (value !== null && !(value instanceof Uint8Array)) return failure(ErrorCode.badRequest, 'value must be bytes (or null for a delete)');
  if (value !== null && value.length > limits.valueBytesMax) return failure(ErrorCode.tooLarge, `value is ${value.length} bytes, over ${limits.valueBytesMax}`);
  if (!(rid instanceof Uint8Array) || rid.length !== ridBytes) return failure(ErrorCode.badRequest, `rid must be ${ridBytes} bytes`);
  if (context !== undefined && !(context instanceof Uint8Array)) return failure(ErrorCode.badRequest, 'context must be bytes');
  if (context !== undefined && context.length > contextBytesMax) return failure(ErrorCode.badContext, `context is over ${contextBytesMax} bytes`);
  if (hops !== undefined && (!Number.isInteger(hops) || hops < 0 || hops > hopsMax)) return failure(ErrorCode.badRequest, 'hops out of range');
  if (dc !== undefined && (typeof dc !== 'string' || dc.length === 0)) return failure(ErrorCode.badRequest, 'dc must be a non-empty string');
  const { ttlMs } = request;
  if (ttlMs !== undefined && (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > limits.ttlMsMax)) return failure(ErrorCode.badRequest, `ttlMs must be an integer in [1, ${limits.ttlMsMax}]`);
  return undefined;
}

function forwardMessage(request: PutRequest, hops: number, timeoutMs: number, selfDc: string): ForwardPut {
  return {
    t: 'forward-put',
    rid: request.rid,
    key: request.key,
    value: request.value,
    ...(request.context === undefined ? {} : { context: request.context }),
    ...(request.w === undefined ? {} : { w: request.w }),
    ...(request.consistency === undefined ? {} : { consistency: request.consistency as ForwardPut['consistency'] }),
    dc: request.dc ?? selfDc,
    hops,
    timeoutMs,
    ...writeFlagsOf(request).flags,
    ...(request.attempt === undefined || request.attempt === 0 ? {} : { attempt: request.attempt }),
  };
}

/** The forward-put reply for a coordinated write's result. */
export function forwardReply(result: CoordinatorResult): ReplicaReply {
  assert(result.type !== 'read', 'a write cannot end in a read');
  if (result.type === 'written') return { t: 'forward-put-reply', context: result.context };
  return { t: 'replica-error', code: result.code, message: result.message.slice(0, limits.replicaMessageCharsMax) };
}
