/**
 * The replica RPCs between nodes, as plain data, and the checks an untrusted one passes before
 * it is used. Pure, any thread (in practice the supervisor's main thread). They travel as the
 * `body` of the transport's `{t:'rpc', id, body}` / `{t:'rpc-reply', id, body}` (wire.md),
 * msgpack-encoded; byte fields are Uint8Array (msgpackr yields Buffers, which are too).
 *
 *   request                                                 reply (or replica-error)
 *   {t:'replica-read',  key}                              →  {t:'replica-read-reply', object?}   absent: no record
 *   {t:'replica-write', key, object, hintFor?, rid?, dot?} → {t:'replica-write-reply'}           after it is durable
 *   {t:'forward-put',   rid, key, value|null, context?,   →  {t:'forward-put-reply', context}    the write was acked
 *                       w?, consistency?, dc?, hops, timeoutMs}
 *   {t:'rid-query',     rid, key}                         →  {t:'rid-query-reply', state}        'coordinating' | 'held' | 'unknown'
 *   any of them                                           →  {t:'replica-error', code, message}  code: an ErrorCode
 *
 * `object` is a stored object (lib/causality encodeObject) — the key's whole state on the
 * sender, merged by the receiver with mergeReplicas; `rid` (the client write that made it, when
 * a coordinator replicates a client write) is remembered by the receiver (rid-table.ts
 * ReplicaRids), so a hedged copy of that write reaching it as coordinator mints nothing new;
 * `dot` ({actor, counter, attempt}) names the event the minting coordinator created for it
 * (duplicate-dots.ts). `forward-put` is a client write a
 * non-replica hands to a replica of the key: `value: null` is a delete, `dc` the datacenter
 * LOCAL_QUORUM refers to (the node the client reached), `hops` how often it was forwarded.
 * `rid-query` asks a replica, before a hedged write is minted, whether it coordinates that
 * write ('coordinating') or holds it ('held'); 'unknown' also records the asker's claim on
 * the rid there (coordinator.ts, "tied hedges").
 *
 * Bounds (RELIABILITY.md §2.5): replica paths carry whatever a replica holds, so keys are held
 * to the hard ceiling `keyBytesCeiling` and objects to `entryBytesMax`; the forwarded client
 * write keeps the client limits (`valueBytesMax`, contexts of `contextEntriesMax` entries).
 * Anything else — unknown tag, missing or mistyped field, a rid not of 16 bytes, a code that is
 * not an ErrorCode, an over-long message — is refused with a reason, never thrown.
 *
 * Frozen: the tags and field names reach the wire; `ridBytes` reaches clients.
 */

import { Buffer } from 'node:buffer';
import { isBytesWithin, isIntegerIn } from '../base/guards.js';
import { isErrorCode, type ErrorCode } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { consistencyLevels, isConsistencyLevel, type ConsistencyLevel } from './consistency-level.js';
import type { MintDot } from './duplicate-dots.js';

/** Frozen: a client write id is 16 random bytes. */
export const ridBytes = 16;
/** Largest encoded context a client may send: header + CRC + entries of the longest actor id. */
export const contextBytesMax = 7 + limits.contextEntriesMax * (1 + 8 + limits.actorIdBytesMax);

export interface ReplicaRead {
  readonly t: 'replica-read';
  readonly key: Uint8Array;
}

export interface ReplicaWrite {
  readonly t: 'replica-write';
  readonly key: Uint8Array;
  readonly object: Uint8Array;
  /** Sloppy quorum: the receiver is a stand-in and keeps this as a hint for that node. */
  readonly hintFor?: string;
  /** The client write this object carries, when a coordinator replicates one. */
  readonly rid?: Uint8Array;
  /** The event minted for that write, sent by the coordinator that minted it. */
  readonly dot?: MintDot;
}

export interface ForwardPut {
  readonly t: 'forward-put';
  readonly rid: Uint8Array;
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
  readonly context?: Uint8Array;
  readonly w?: number;
  readonly consistency?: ConsistencyLevel;
  readonly dc?: string;
  readonly hops: number;
  readonly timeoutMs: number;
  /** Write flags (WriteFlags in coordinator.ts): TTL, overwrite, keep-TTL; absent when unset. */
  readonly ttlMs?: number;
  readonly overwrite?: boolean;
  readonly keepTtl?: boolean;
  /** The client's attempt (PutRequest.attempt); absent: the first. */
  readonly attempt?: number;
}

export interface RidQuery {
  readonly t: 'rid-query';
  readonly rid: Uint8Array;
  readonly key: Uint8Array;
}

export type ReplicaRequest = ReplicaRead | ReplicaWrite | ForwardPut | RidQuery;

export interface ReplicaReadReply {
  readonly t: 'replica-read-reply';
  readonly object?: Uint8Array;
}

export interface ReplicaWriteReply {
  readonly t: 'replica-write-reply';
}

export interface ForwardPutReply {
  readonly t: 'forward-put-reply';
  readonly context: Uint8Array;
}

export interface ReplicaError {
  readonly t: 'replica-error';
  readonly code: ErrorCode;
  readonly message: string;
}

/** Frozen: what a replica knows of a rid. */
export const ridStates = ['coordinating', 'held', 'unknown'] as const;
export type RidState = (typeof ridStates)[number];

export interface RidQueryReply {
  readonly t: 'rid-query-reply';
  readonly state: RidState;
}

export type ReplicaReply = ReplicaReadReply | ReplicaWriteReply | ForwardPutReply | RidQueryReply | ReplicaError;

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export const replicaRequestTypes = ['replica-read', 'replica-write', 'forward-put', 'rid-query'] as const;
export const replicaReplyTypes = ['replica-read-reply', 'replica-write-reply', 'forward-put-reply', 'rid-query-reply', 'replica-error'] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

const isBytes = isBytesWithin;

function isLabel(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && Buffer.byteLength(value, 'utf8') <= limits.memberLabelBytesMax;
}

function isMemberId(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && Buffer.byteLength(value, 'utf8') <= limits.memberIdBytesMax;
}

function isMintDot(value: unknown): value is MintDot {
  if (!isRecord(value)) return false;
  const actor = value.actor;
  const actorOk = typeof actor === 'string' && actor.length >= 1 && Buffer.byteLength(actor, 'utf8') <= limits.actorIdBytesMax;
  return actorOk && isIntegerIn(value.counter, 1, Number.MAX_SAFE_INTEGER) && isIntegerIn(value.attempt, 0, limits.clientAttemptsMax);
}

const refuse = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

/** Checks an untrusted request body and returns a fresh, well-formed copy. Never throws. */
export function parseReplicaRequest(raw: unknown): Parsed<ReplicaRequest> {
  if (!isRecord(raw)) return refuse('request is not an object');
  if (!isBytes(raw.key, 0, limits.keyBytesCeiling)) return refuse('key missing or over keyBytesCeiling');
  switch (raw.t) {
    case 'replica-read':
      return { ok: true, value: { t: 'replica-read', key: raw.key } };
    case 'replica-write':
      if (!isBytes(raw.object, 0, limits.entryBytesMax)) return refuse('object missing or over entryBytesMax');
      if (raw.hintFor !== undefined && !isMemberId(raw.hintFor)) return refuse('hintFor must be a member id');
      if (raw.rid !== undefined && !isBytes(raw.rid, ridBytes, ridBytes)) return refuse(`rid must be ${ridBytes} bytes`);
      if (raw.dot !== undefined && (raw.rid === undefined || !isMintDot(raw.dot))) return refuse('dot must be {actor, counter, attempt} with a rid');
      return {
        ok: true,
        value: {
          t: 'replica-write',
          key: raw.key,
          object: raw.object,
          ...(raw.hintFor === undefined ? {} : { hintFor: raw.hintFor }),
          ...(raw.rid === undefined ? {} : { rid: raw.rid }),
          ...(raw.dot === undefined ? {} : { dot: { actor: raw.dot.actor, counter: raw.dot.counter, attempt: raw.dot.attempt } }),
        },
      };
    case 'forward-put':
      return parseForwardPut(raw, raw.key);
    case 'rid-query':
      if (!isBytes(raw.rid, ridBytes, ridBytes)) return refuse(`rid must be ${ridBytes} bytes`);
      return { ok: true, value: { t: 'rid-query', rid: raw.rid, key: raw.key } };
    default:
      return refuse(`unknown request type (expected one of ${replicaRequestTypes.join(', ')})`);
  }
}

function parseForwardPut(raw: Record<string, unknown>, key: Uint8Array): Parsed<ForwardPut> {
  const { rid, value, context, w, consistency, dc, hops, timeoutMs, ttlMs, overwrite, keepTtl, attempt } = raw;
  if (attempt !== undefined && !isIntegerIn(attempt, 1, limits.clientAttemptsMax)) return refuse('attempt out of range');
  if (ttlMs !== undefined && !isIntegerIn(ttlMs, 1, limits.ttlMsMax)) return refuse('ttlMs out of range');
  if ((overwrite !== undefined && overwrite !== true) || (keepTtl !== undefined && keepTtl !== true)) return refuse('overwrite and keepTtl must be true when present');
  if (!isBytes(rid, ridBytes, ridBytes)) return refuse(`rid must be ${ridBytes} bytes`);
  if (key.length > limits.keyBytesMax) return refuse('key over keyBytesMax');
  if (value !== null && !isBytes(value, 0, limits.valueBytesMax)) return refuse('value must be bytes within valueBytesMax, or null');
  if (context !== undefined && !isBytes(context, 0, contextBytesMax)) return refuse('context must be bytes within contextBytesMax');
  if (w !== undefined && !isIntegerIn(w, 1, limits.replicationMax)) return refuse('w out of range');
  if (consistency !== undefined && !isConsistencyLevel(consistency)) return refuse(`consistency must be one of ${consistencyLevels.join(', ')}`);
  if (dc !== undefined && !isLabel(dc)) return refuse('dc must be a non-empty label within memberLabelBytesMax');
  if (!isIntegerIn(hops, 1, limits.forwardHopsMax)) return refuse('hops out of range');
  if (!isIntegerIn(timeoutMs, 1, limits.coordinatorTimeoutMsMax)) return refuse('timeoutMs out of range');
  const put: ForwardPut = {
    t: 'forward-put',
    rid,
    key,
    value,
    ...(context === undefined ? {} : { context }),
    ...(w === undefined ? {} : { w }),
    ...(consistency === undefined ? {} : { consistency }),
    ...(dc === undefined ? {} : { dc }),
    hops,
    timeoutMs,
    ...(ttlMs === undefined ? {} : { ttlMs }),
    ...(overwrite === true ? { overwrite } : {}),
    ...(keepTtl === true ? { keepTtl } : {}),
    ...(attempt === undefined ? {} : { attempt }),
  };
  return { ok: true, value: put };
}

/** Checks an untrusted reply body and returns a fresh, well-formed copy. Never throws. */
export function parseReplicaReply(raw: unknown): Parsed<ReplicaReply> {
  if (!isRecord(raw)) return refuse('reply is not an object');
  switch (raw.t) {
    case 'replica-read-reply':
      if (raw.object === undefined) return { ok: true, value: { t: 'replica-read-reply' } };
      if (!isBytes(raw.object, 0, limits.entryBytesMax)) return refuse('object must be bytes within entryBytesMax');
      return { ok: true, value: { t: 'replica-read-reply', object: raw.object } };
    case 'replica-write-reply':
      return { ok: true, value: { t: 'replica-write-reply' } };
    case 'forward-put-reply':
      if (!isBytes(raw.context, 0, contextBytesMax)) return refuse('context must be bytes within contextBytesMax');
      return { ok: true, value: { t: 'forward-put-reply', context: raw.context } };
    case 'rid-query-reply':
      if (!(ridStates as readonly unknown[]).includes(raw.state)) return refuse(`state must be one of ${ridStates.join(', ')}`);
      return { ok: true, value: { t: 'rid-query-reply', state: raw.state as RidState } };
    case 'replica-error':
      if (!isErrorCode(raw.code)) return refuse('code is not an ErrorCode');
      if (typeof raw.message !== 'string' || raw.message.length > limits.replicaMessageCharsMax) return refuse('message must be a short string');
      return { ok: true, value: { t: 'replica-error', code: raw.code, message: raw.message } };
    default:
      return refuse(`unknown reply type (expected one of ${replicaReplyTypes.join(', ')})`);
  }
}

/** A replica-error reply, its message cut to the bound. */
export function replicaError(code: ErrorCode, message: string): ReplicaError {
  return { t: 'replica-error', code, message: message.slice(0, limits.replicaMessageCharsMax) };
}
