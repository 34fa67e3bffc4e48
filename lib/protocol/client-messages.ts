/**
 * The client protocol (path /client, wire.md): the messages a client sends, their full
 * validation, and the replies a node sends. Pure, any thread (the supervisor calls it).
 *
 * `parseClientRequest` takes one decoded message from the world and either returns a typed
 * request or the error reply to send: it never throws, whatever it is given (fuzzed by
 * test/protocol-client-messages.test.ts). Only own properties are read, so inherited names
 * (`constructor`, `toString`) are never mistaken for fields. Unknown extra fields are ignored
 * (room for additions within protocol v1).
 *
 * Error codes (stable): KV_BAD_REQUEST for a malformed message (the message names the field),
 * KV_TOO_LARGE for a key or value over its bound, KV_BAD_CONTEXT for a context that is not a
 * well-formed causal context within `limits.contextEntriesMax` entries, KV_INCOMPATIBLE for a
 * hello with another protocol version. The error carries the request's `id` when it was a u32,
 * else 0 (0 is also the id of connection-level errors).
 *
 * Frozen: the tag strings, field names and consistency names (protocol v1).
 */

import { ErrorCode, isRingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { decodeContext } from '../causality/version-vector.js';
import { consistencyLevels, ridBytes, type ConsistencyLevel as Consistency } from '../replication/index.js';
import type { MemberStatus } from '../ring/member.js';

/** Frozen: the client protocol version of hello/welcome. */
export const clientProtocolVersion = 1;
const u32Max = 0xffffffff;

// One list of levels and one rid length for the client protocol and the coordinator.
export { consistencyLevels, ridBytes, type ConsistencyLevel as Consistency } from '../replication/index.js';


export type HelloRequest = { t: 'hello'; v: 1; token: string | undefined };
type Tunables = { consistency: Consistency | undefined; timeoutMs: number | undefined };
export type GetRequest = Tunables & { t: 'get'; id: number; key: Uint8Array; r: number | undefined };
/** `attempt`: which of the client's attempts at this write (0 or absent: the first; more: a hedge or retry, so another coordinator may hold it too). */
export type PutRequest = Tunables & {
  t: 'put'; id: number; rid: Uint8Array; key: Uint8Array; value: Uint8Array; context: Uint8Array | undefined; w: number | undefined; attempt: number | undefined;
};
export type DeleteRequest = Tunables & {
  t: 'delete'; id: number; rid: Uint8Array; key: Uint8Array; context: Uint8Array | undefined; w: number | undefined; attempt: number | undefined;
};
export type RingRequest = { t: 'ring'; id: number };
/** Liveness probe on an idle connection (the client marks a node that does not answer suspect); answered at once with `pong`. */
export type PingRequest = { t: 'ping'; id: number };
export type ClientRequest = HelloRequest | GetRequest | PutRequest | DeleteRequest | RingRequest | PingRequest;

export type ParsedClientRequest =
  | { ok: true; request: ClientRequest }
  | { ok: false; id: number; code: ErrorCode; message: string };

/** Bounds of the client path; defaults from limits.ts (a node may configure keyBytesMax up to its ceiling). */
export interface ClientBounds { keyBytesMax: number; valueBytesMax: number; contextEntriesMax: number }
export const defaultClientBounds: ClientBounds = {
  keyBytesMax: limits.keyBytesMax,
  valueBytesMax: limits.valueBytesMax,
  contextEntriesMax: limits.contextEntriesMax,
};

// --- replies (N->C) ---
export type RingViewMember = {
  id: string; url: string; dc: string; rack: string; weight: number; status: MemberStatus; up: boolean;
};
export type RingView = { partitionBits: number; replication: number | Record<string, number>; members: RingViewMember[] };
export type WelcomeReply = { t: 'welcome'; v: 1; node: string };
export type ReadReply = { t: 'read'; id: number; found: boolean; values: Uint8Array[]; context: Uint8Array };
export type WrittenReply = { t: 'written'; id: number; context: Uint8Array };
export type RingReply = { t: 'ring'; id: number; ring: RingView };
export type ErrorReply = { t: 'error'; id: number; code: string; message: string };
export type PongReply = { t: 'pong'; id: number };
export type ClientReply = WelcomeReply | ReadReply | WrittenReply | RingReply | ErrorReply | PongReply;

export const welcomeReply = (node: string): WelcomeReply => ({ t: 'welcome', v: clientProtocolVersion, node });
export const readReply = (id: number, found: boolean, values: Uint8Array[], context: Uint8Array): ReadReply => ({
  t: 'read', id, found, values, context,
});
export const writtenReply = (id: number, context: Uint8Array): WrittenReply => ({ t: 'written', id, context });
export const ringReply = (id: number, ring: RingView): RingReply => ({ t: 'ring', id, ring });
export const pongReply = (id: number): PongReply => ({ t: 'pong', id });
export const errorReply = (id: number, code: ErrorCode, message: string): ErrorReply => ({ t: 'error', id, code, message });

/** The u32 `id` of a message, or 0 when it has none (connection-level error replies use 0). */
export function messageId(raw: unknown): number {
  if (typeof raw !== 'object' || raw === null || !Object.hasOwn(raw, 'id')) return 0;
  const id = (raw as { id: unknown }).id;
  return isU32(id) ? id : 0;
}

function isU32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= u32Max;
}

/** A refusal on its way out of a field check; caught only in `parseClientRequest`. */
class Refusal {
  constructor(readonly code: ErrorCode, readonly message: string) {}
}

function refuse(field: string, must: string): never {
  throw new Refusal(ErrorCode.badRequest, `${field} must be ${must}`);
}

/** Reads fields of one message: own properties only. */
class Fields {
  constructor(private readonly raw: object) {}

  #get(name: string): unknown {
    return Object.hasOwn(this.raw, name) ? (this.raw as Record<string, unknown>)[name] : undefined;
  }

  bytes(name: string, sizeBytesMax: number, code: ErrorCode): Uint8Array {
    const value = this.#get(name);
    if (!(value instanceof Uint8Array)) refuse(name, 'bytes (msgpack bin)');
    if (value.length > sizeBytesMax) throw new Refusal(code, `${name} of ${value.length} bytes is over ${sizeBytesMax}`);
    return value;
  }

  rid(): Uint8Array {
    const value = this.#get('rid');
    if (!(value instanceof Uint8Array) || value.length !== ridBytes) refuse('rid', `${ridBytes} bytes`);
    return value;
  }

  context(entriesMax: number): Uint8Array | undefined {
    const value = this.#get('context');
    if (value === undefined || value === null) return undefined;
    if (!(value instanceof Uint8Array)) refuse('context', 'bytes (msgpack bin)');
    try {
      decodeContext(value, entriesMax);
    } catch (error) {
      if (isRingkvError(error)) throw new Refusal(error.code, error.message);
      throw error;
    }
    return value;
  }

  integer(name: string, min: number, max: number): number | undefined {
    const value = this.#get(name);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      refuse(name, `an integer within [${min}, ${max}]`);
    }
    return value;
  }

  consistency(): Consistency | undefined {
    const value = this.#get('consistency');
    if (value === undefined || value === null) return undefined;
    if (!(consistencyLevels as readonly unknown[]).includes(value)) refuse('consistency', `one of ${consistencyLevels.join(', ')}`);
    return value as Consistency;
  }

  token(): string | undefined {
    const value = this.#get('token');
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') refuse('token', 'a string');
    return value;
  }

  version(): 1 {
    const value = this.#get('v');
    if (value !== clientProtocolVersion) {
      throw new Refusal(ErrorCode.incompatible, `protocol version ${String(value)} is not supported (v must be ${clientProtocolVersion})`);
    }
    return clientProtocolVersion;
  }
}

function tunables(fields: Fields): Tunables {
  return { consistency: fields.consistency(), timeoutMs: fields.integer('timeoutMs', 1, limits.clientRequestTimeoutMsMax) };
}

function parseFields(tag: string, id: number, fields: Fields, bounds: ClientBounds): ClientRequest {
  switch (tag) {
    case 'hello':
      return { t: 'hello', v: fields.version(), token: fields.token() };
    case 'ring':
      return { t: 'ring', id };
    case 'ping':
      return { t: 'ping', id };
    case 'get': {
      const key = fields.bytes('key', bounds.keyBytesMax, ErrorCode.tooLarge);
      return { t: 'get', id, key, r: fields.integer('r', 1, limits.replicationMax), ...tunables(fields) };
    }
    case 'put': {
      const rid = fields.rid();
      const key = fields.bytes('key', bounds.keyBytesMax, ErrorCode.tooLarge);
      const value = fields.bytes('value', bounds.valueBytesMax, ErrorCode.tooLarge);
      const context = fields.context(bounds.contextEntriesMax);
      const attempt = fields.integer('attempt', 0, limits.clientAttemptsMax);
      return { t: 'put', id, rid, key, value, context, w: fields.integer('w', 1, limits.replicationMax), attempt, ...tunables(fields) };
    }
    case 'delete': {
      const rid = fields.rid();
      const key = fields.bytes('key', bounds.keyBytesMax, ErrorCode.tooLarge);
      const context = fields.context(bounds.contextEntriesMax);
      const attempt = fields.integer('attempt', 0, limits.clientAttemptsMax);
      return { t: 'delete', id, rid, key, context, w: fields.integer('w', 1, limits.replicationMax), attempt, ...tunables(fields) };
    }
    default:
      throw new Refusal(ErrorCode.badRequest, 'unknown message type (t)');
  }
}

/** Validates one message a client sent. Never throws. */
export function parseClientRequest(raw: unknown, bounds: ClientBounds = defaultClientBounds): ParsedClientRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, id: 0, code: ErrorCode.badRequest, message: 'a message must be a map' };
  }
  const id = messageId(raw);
  const tag: unknown = Object.hasOwn(raw, 't') ? (raw as { t: unknown }).t : undefined;
  try {
    if (typeof tag !== 'string') refuse('t', 'a string');
    if (tag !== 'hello' && !(Object.hasOwn(raw, 'id') && isU32((raw as { id: unknown }).id))) refuse('id', `an integer within [0, ${u32Max}]`);
    return { ok: true, request: parseFields(tag, id, new Fields(raw), bounds) };
  } catch (error) {
    if (error instanceof Refusal) return { ok: false, id, code: error.code, message: error.message };
    throw error;
  }
}
