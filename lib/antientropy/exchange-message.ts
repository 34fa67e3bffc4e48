/**
 * The anti-entropy messages between two replicas of a partition, as plain data, the checks an
 * untrusted one passes before it is used, and their size estimate. Pure, any thread (in
 * practice the supervisor). They travel msgpack-encoded as rpc bodies like the replica RPCs
 * (replication/replica-message.ts); byte fields are Uint8Array (msgpackr's Buffers are too).
 *
 *   initiator → responder                                   responder → initiator
 *   {t:'ae-hashes', shape…, level, parents[]}            →  {t:'ae-hashes-reply', hashes}
 *       level 0 with no parents: the root; level ℓ ≥ 1: every child of each parent (a node
 *       at level ℓ − 1), parents in the order asked; hashes = 8 bytes per node.
 *   {t:'ae-list', shape…, leaves[]}                      →  {t:'ae-list-reply', leafCount, keys[], hashes}
 *       leaves strictly increasing; the reply lists every key of the first `leafCount`
 *       leaves (whole leaves only, at least one) with its 8-byte object hash.
 *   {t:'ae-fetch', keys[]}                               →  {t:'ae-fetch-reply', objects[]}
 *       objects for a prefix of the keys (at least one); null: the responder has no record.
 *   {t:'ae-push', keys[], objects[]}                     →  {t:'ae-push-reply'}  after merging
 *   any of them                                          →  {t:'ae-error', code, message}
 *
 * Every message carries `exchangeId` (the initiator's, a safe integer) and `seq` (its
 * request number within the exchange); requests carry `partition`; hashes and list requests
 * carry the tree shape (`hashVersion`, `partitionBits`, `leafBits`, `fanoutBits`), and a
 * responder whose tree differs answers KV_INCOMPATIBLE. Objects are encoded stored objects
 * (lib/causality), merged by the receiver with mergeReplicas.
 *
 * Size estimate (`messageBytes`, what rate limits and traffic figures count): 64 bytes for the
 * fixed fields (tag, ids, shape; their msgpack map with short field names is 40–70 bytes),
 * plus 5 per index, plus length + 5 per byte field (msgpack's bin32 header), plus 1 per null.
 * It errs high by a few bytes per field.
 *
 * Bounds (RELIABILITY.md B11: internode paths have limits too, high enough for repair): keys up
 * to keyBytesCeiling, objects up to entryBytesMax, a message's estimate up to
 * wireFrameBytesMax, and the counts in limits.ts. Anything else is refused with a reason,
 * never thrown. Frozen: tags and field names reach the wire.
 */

import { isBytesWithin, isIntegerIn } from '../base/guards.js';
import { isErrorCode, type ErrorCode } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { nodeHashBytes } from './tree-hash.js';

interface Header {
  readonly exchangeId: number;
  readonly seq: number;
}

interface RequestHeader extends Header {
  readonly partition: number;
}

interface ShapeFields {
  readonly hashVersion: number;
  readonly partitionBits: number;
  readonly leafBits: number;
  readonly fanoutBits: number;
}

export interface HashesRequest extends RequestHeader, ShapeFields {
  readonly t: 'ae-hashes';
  readonly level: number;
  readonly parents: readonly number[];
}
export interface ListRequest extends RequestHeader, ShapeFields {
  readonly t: 'ae-list';
  readonly leaves: readonly number[];
}
export interface FetchRequest extends RequestHeader {
  readonly t: 'ae-fetch';
  readonly keys: readonly Uint8Array[];
}
export interface PushRequest extends RequestHeader {
  readonly t: 'ae-push';
  readonly keys: readonly Uint8Array[];
  readonly objects: readonly Uint8Array[];
}
export type ExchangeRequest = HashesRequest | ListRequest | FetchRequest | PushRequest;

export interface HashesReply extends Header {
  readonly t: 'ae-hashes-reply';
  readonly hashes: Uint8Array;
}
export interface ListReply extends Header {
  readonly t: 'ae-list-reply';
  readonly leafCount: number;
  readonly keys: readonly Uint8Array[];
  readonly hashes: Uint8Array;
}
export interface FetchReply extends Header {
  readonly t: 'ae-fetch-reply';
  readonly objects: readonly (Uint8Array | null)[];
}
export interface PushReply extends Header {
  readonly t: 'ae-push-reply';
}
export interface ExchangeError extends Header {
  readonly t: 'ae-error';
  readonly code: ErrorCode;
  readonly message: string;
}
export type ExchangeReply = HashesReply | ListReply | FetchReply | PushReply | ExchangeError;
export type ExchangeMessage = ExchangeRequest | ExchangeReply;

type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };
export type ParsedExchangeMessage = Parsed<ExchangeMessage>;

export const exchangeMessageTypes = [
  'ae-hashes',
  'ae-list',
  'ae-fetch',
  'ae-push',
  'ae-hashes-reply',
  'ae-list-reply',
  'ae-fetch-reply',
  'ae-push-reply',
  'ae-error',
] as const;

const fixedBytes = 64;
const indexBytes = 5;
const byteFieldOverhead = 5;

/** The estimated encoded size of a message (see the header). */
export function messageBytes(message: ExchangeMessage): number {
  switch (message.t) {
    case 'ae-hashes':
      return fixedBytes + indexBytes * message.parents.length;
    case 'ae-list':
      return fixedBytes + indexBytes * message.leaves.length;
    case 'ae-fetch':
      return fixedBytes + bytesOf(message.keys);
    case 'ae-push':
      return fixedBytes + bytesOf(message.keys) + bytesOf(message.objects);
    case 'ae-hashes-reply':
      return fixedBytes + byteFieldOverhead + message.hashes.length;
    case 'ae-list-reply':
      return fixedBytes + bytesOf(message.keys) + byteFieldOverhead + message.hashes.length;
    case 'ae-fetch-reply':
      return fixedBytes + bytesOf(message.objects);
    case 'ae-push-reply':
      return fixedBytes;
    case 'ae-error':
      return fixedBytes + byteFieldOverhead + 3 * message.message.length;
  }
}

function bytesOf(fields: readonly (Uint8Array | null)[]): number {
  let total = 0;
  for (const field of fields) total += field === null ? 1 : byteFieldOverhead + field.length;
  return total;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

const isBytes = (value: unknown, max: number): value is Uint8Array => isBytesWithin(value, 0, max);

const refuse = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });
const accept = <T>(value: T): Parsed<T> => ({ ok: true, value });

/** Node indices: at most `max`, each below 2^merkleLeafBitsMax, strictly increasing if asked. */
function indicesOf(value: unknown, max: number, increasing: boolean): number[] | undefined {
  if (!Array.isArray(value) || value.length > max) return undefined;
  const out: number[] = [];
  for (const index of value) {
    if (!isIntegerIn(index, 0, 2 ** limits.merkleLeafBitsMax - 1)) return undefined;
    if (increasing && out.length > 0 && index <= out[out.length - 1]!) return undefined;
    out.push(index);
  }
  return out;
}

/** Byte fields: between min and max of them, each within `fieldMax` (or null when allowed). */
function byteListOf<N extends boolean>(value: unknown, min: number, max: number, fieldMax: number, nulls: N): (N extends true ? Uint8Array | null : Uint8Array)[] | undefined {
  if (!Array.isArray(value) || value.length < min || value.length > max) return undefined;
  const out: (Uint8Array | null)[] = [];
  for (const field of value) {
    if (field === null && nulls) out.push(null);
    else if (isBytes(field, fieldMax)) out.push(field);
    else return undefined;
  }
  return out as (N extends true ? Uint8Array | null : Uint8Array)[];
}

function headerOf(raw: Record<string, unknown>): Header | undefined {
  if (!isIntegerIn(raw.exchangeId, 0, Number.MAX_SAFE_INTEGER) || !isIntegerIn(raw.seq, 0, 0x7fffffff)) return undefined;
  return { exchangeId: raw.exchangeId, seq: raw.seq };
}

function shapeOf(raw: Record<string, unknown>): ShapeFields | undefined {
  const { hashVersion, partitionBits, leafBits, fanoutBits } = raw;
  if (!isIntegerIn(hashVersion, 0, 0xff) || !isIntegerIn(partitionBits, 0, limits.partitionBitsMax)) return undefined;
  if (!isIntegerIn(leafBits, 0, limits.merkleLeafBitsMax) || !isIntegerIn(fanoutBits, 1, limits.merkleFanoutBitsMax)) return undefined;
  return { hashVersion, partitionBits, leafBits, fanoutBits };
}

/** Checks an untrusted message and returns a fresh, well-formed copy. Never throws. */
export function parseExchangeMessage(raw: unknown): ParsedExchangeMessage {
  if (!isRecord(raw)) return refuse('message is not an object');
  const header = headerOf(raw);
  if (header === undefined) return refuse('exchangeId or seq missing or out of range');
  const parsed = raw.t === 'ae-hashes' || raw.t === 'ae-list' || raw.t === 'ae-fetch' || raw.t === 'ae-push' ? parseRequest(raw, header) : parseReply(raw, header);
  if (parsed.ok && messageBytes(parsed.value) > limits.wireFrameBytesMax) return refuse('message over wireFrameBytesMax');
  return parsed;
}

function parseRequest(raw: Record<string, unknown>, header: Header): Parsed<ExchangeRequest> {
  if (!isIntegerIn(raw.partition, 0, 2 ** limits.partitionBitsMax - 1)) return refuse('partition missing or out of range');
  const base = { ...header, partition: raw.partition };
  const keysMax = limits.antiEntropyKeysPerMessageMax;
  switch (raw.t) {
    case 'ae-hashes': {
      const shape = shapeOf(raw);
      if (shape === undefined) return refuse('tree shape missing or out of range');
      if (!isIntegerIn(raw.level, 0, limits.merkleLeafBitsMax)) return refuse('level out of range');
      const parents = indicesOf(raw.parents, limits.antiEntropyNodesPerRequestMax, false);
      if (parents === undefined) return refuse('parents must be node indices, at most antiEntropyNodesPerRequestMax');
      if ((raw.level === 0) !== (parents.length === 0)) return refuse('the root is asked with no parents, other levels with some');
      return accept({ t: 'ae-hashes', ...base, ...shape, level: raw.level, parents });
    }
    case 'ae-list': {
      const shape = shapeOf(raw);
      if (shape === undefined) return refuse('tree shape missing or out of range');
      const leaves = indicesOf(raw.leaves, limits.antiEntropyNodesPerRequestMax, true);
      if (leaves === undefined || leaves.length === 0) return refuse('leaves must be 1..antiEntropyNodesPerRequestMax increasing leaf indices');
      return accept({ t: 'ae-list', ...base, ...shape, leaves });
    }
    case 'ae-fetch': {
      const keys = byteListOf(raw.keys, 1, keysMax, limits.keyBytesCeiling, false);
      if (keys === undefined) return refuse('keys must be 1..antiEntropyKeysPerMessageMax keys within keyBytesCeiling');
      return accept({ t: 'ae-fetch', ...base, keys });
    }
    default: {
      const keys = byteListOf(raw.keys, 1, keysMax, limits.keyBytesCeiling, false);
      if (keys === undefined) return refuse('keys must be 1..antiEntropyKeysPerMessageMax keys within keyBytesCeiling');
      const objects = byteListOf(raw.objects, keys.length, keys.length, limits.entryBytesMax, false);
      if (objects === undefined) return refuse('objects must match keys, each within entryBytesMax');
      return accept({ t: 'ae-push', ...base, keys, objects });
    }
  }
}

function parseReply(raw: Record<string, unknown>, header: Header): Parsed<ExchangeReply> {
  switch (raw.t) {
    case 'ae-hashes-reply':
      if (!isBytes(raw.hashes, limits.wireFrameBytesMax) || raw.hashes.length % nodeHashBytes !== 0) return refuse('hashes must be bytes, 8 per node');
      return accept({ t: 'ae-hashes-reply', ...header, hashes: raw.hashes });
    case 'ae-list-reply': {
      if (!isIntegerIn(raw.leafCount, 1, limits.antiEntropyNodesPerRequestMax)) return refuse('leafCount out of range');
      const keys = byteListOf(raw.keys, 0, limits.antiEntropyListEntriesMax, limits.keyBytesCeiling, false);
      if (keys === undefined) return refuse('keys must be at most antiEntropyListEntriesMax keys within keyBytesCeiling');
      if (!isBytes(raw.hashes, limits.wireFrameBytesMax) || raw.hashes.length !== nodeHashBytes * keys.length) return refuse('hashes must hold 8 bytes per key');
      return accept({ t: 'ae-list-reply', ...header, leafCount: raw.leafCount, keys, hashes: raw.hashes });
    }
    case 'ae-fetch-reply': {
      const objects = byteListOf(raw.objects, 1, limits.antiEntropyKeysPerMessageMax, limits.entryBytesMax, true);
      if (objects === undefined) return refuse('objects must be 1..antiEntropyKeysPerMessageMax objects (or null) within entryBytesMax');
      return accept({ t: 'ae-fetch-reply', ...header, objects });
    }
    case 'ae-push-reply':
      return accept({ t: 'ae-push-reply', ...header });
    case 'ae-error':
      if (!isErrorCode(raw.code)) return refuse('code is not an ErrorCode');
      if (typeof raw.message !== 'string' || raw.message.length > limits.replicaMessageCharsMax) return refuse('message must be a short string');
      return accept({ t: 'ae-error', ...header, code: raw.code, message: raw.message });
    default:
      return refuse(`unknown message type (expected one of ${exchangeMessageTypes.join(', ')})`);
  }
}

/** An ae-error reply, its message cut to the bound. */
export function exchangeError(header: Header, code: ErrorCode, message: string): ExchangeError {
  return { t: 'ae-error', exchangeId: header.exchangeId, seq: header.seq, code, message: message.slice(0, limits.replicaMessageCharsMax) };
}
