/**
 * The binary frames of the shard data plane: requests the supervisor (or the embedded Store)
 * writes into a shard's request mailbox, and replies the shard writes into its reply mailbox.
 * Pure codec, any thread; both ends are built from the same source.
 *
 * Manual byte encoding, no msgpack: this is the hottest path of a node. Each frame is sized
 * first (`requestBytes`/`replyBytes`) and then encoded in place (`encodeRequestInto`/
 * `encodeReplyInto`) — straight into a mailbox reservation, so a frame costs no allocation and
 * one copy per byte array. Decoders read a span of a buffer (`decodeRequestSpan`/
 * `decodeReplySpan`, no view of the frame) and either copy each byte array out (`slice`) or
 * view it (`subarray`) when the caller already copied the frame somewhere it owns.
 *
 * All integers little-endian. Every frame starts with the same 8-byte header:
 *
 *   header  ┌──────────────┬───────┬───────────┬─────────────┐
 *           │ version u8=2 │ tag u8│ flags u16 │ requestId u32│
 *           └──────────────┴───────┴───────────┴─────────────┘
 *
 *   request tags (body after the header):
 *     1 get     │ key: u16 length, bytes │
 *     2 put     │ key │ context: u32 length, bytes (flag 1: present) │ value: u32 length, bytes │
 *     3 delete  │ key │ context (flag 1: present) │
 *               flag 4 on put/delete: "want object" — the written reply carries the key's new
 *               stored object (a coordinated write whose object goes to the other replicas)
 *               flag 8 on put: a TTL follows the value: ttlMs as u53 (two u32, low first)
 *               flag 16 on put/delete: "overwrite" — the write supersedes everything this
 *               replica holds for the key (its context is joined with the stored history)
 *               flag 32 on put: "keep TTL" — the new value keeps the expiry of the value a
 *               read would show now (Redis SET ... KEEPTTL); ignored with flag 8
 *               flag 64 on put/delete: the client write's mint follows, last: attempt u8,
 *               rid (u16 length, bytes) — the new sibling carries it (lib/causality mint-records.ts)
 *     4 scan    │ partition u32 │ limit u32 │ afterKey (flag 2: present): u16 length, bytes │
 *     5 crash   │ (empty) — test only: the shard throws, as a bug would │
 *     6 readObject  │ key │                      — a replica read: the raw stored object
 *     7 mergeObject │ key │ object: u32 length, bytes │ — a replica write: merge, never limited
 *     8 purgeIf     │ key │ expected object: u32 length, bytes │ — tombstone purge: delete the
 *                   key only if its stored object is byte-for-byte `expected` (compare-and-delete)
 *   reply tags:
 *     16 read    │ found u8 │ context │ value count u32 │ per value: u32 length, bytes │
 *     17 written │ context │ object (flag 4: present): u32 length, bytes │
 *     18 scan    │ entry count u32 │ per entry: key (u16), value (u32) │ nextAfterKey (flag 2) │
 *     19 error   │ code: u8 length, ASCII │ message: u32 length, UTF-8 │
 *     20 object  │ object (flag 4: present, else not found): u32 length, bytes │
 *     21 merged  │ (empty) — the merged state is durable │
 *     22 purged  │ deleted u8 (1: the key was deleted, 0: its object differed or was absent) │
 *
 * Corner cases: empty keys, values and contexts are legal (length 0). A context absent (flag 1
 * clear) means a blind write. Any truncation, trailing byte, unknown version, tag or flag, or
 * an error code that is not an ErrorCode is malformed: decoding throws KV_BAD_REQUEST (with
 * `details.requestId` when the header was readable) and never crashes the reader. Decoded byte
 * arrays are copies unless the caller asks for views: a mailbox frame dies when the consumer
 * moves past it.
 *
 * Frozen within a process: the version byte, the tags and the flag bits (both ends come from
 * one build, so a change bumps `shardFrameVersion`). Tags 8 and 22 were added without a bump:
 * no existing frame changed meaning.
 */

import { Buffer } from 'node:buffer';
import { assertNever } from '../base/assert.js';
import { ErrorCode, RingkvError, isErrorCode } from '../base/errors.js';
import type { Mint } from '../causality/index.js';

/** Frozen. */
export const shardFrameVersion = 2;
/** Frozen. */
export const FrameTag = {
  get: 1,
  put: 2,
  delete: 3,
  scan: 4,
  crash: 5,
  readObject: 6,
  mergeObject: 7,
  purgeIf: 8,
  read: 16,
  written: 17,
  scanPage: 18,
  error: 19,
  object: 20,
  merged: 21,
  purged: 22,
} as const;
const flagContext = 1;
const flagAfterKey = 2;
/** On put/delete requests: reply with the stored object. On written/object replies: it follows. */
const flagObject = 4;
const flagTtl = 8;
const flagOverwrite = 16;
const flagKeepTtl = 32;
const flagMint = 64;
const flagsKnown = flagContext | flagAfterKey | flagObject | flagTtl | flagOverwrite | flagKeepTtl | flagMint;
const headerBytes = 8;
const u16Max = 0xffff;
/** Byte arrays up to this length are copied by a loop: cheaper than `set` for a few bytes. */
const smallCopyBytesMax = 24;

export type ShardRequest =
  | { op: 'get'; requestId: number; key: Uint8Array }
  | {
      op: 'put';
      requestId: number;
      key: Uint8Array;
      value: Uint8Array;
      context: Uint8Array | undefined;
      wantObject?: boolean;
      /** The value expires this long after the write's timestamp. */
      ttlMs?: number | undefined;
      overwrite?: boolean | undefined;
      keepTtl?: boolean | undefined;
      /** The client write this event is minted for. */
      mint?: Mint | undefined;
    }
  | { op: 'delete'; requestId: number; key: Uint8Array; context: Uint8Array | undefined; wantObject?: boolean; overwrite?: boolean | undefined; mint?: Mint | undefined }
  | { op: 'scan'; requestId: number; partition: number; limit: number; afterKey: Uint8Array | undefined }
  | { op: 'crash'; requestId: number }
  | { op: 'readObject'; requestId: number; key: Uint8Array }
  | { op: 'mergeObject'; requestId: number; key: Uint8Array; object: Uint8Array }
  | { op: 'purgeIf'; requestId: number; key: Uint8Array; expected: Uint8Array };

export interface ScanEntry {
  key: Uint8Array;
  /** The stored object's bytes, as the engine keeps them. */
  value: Uint8Array;
}

export type ShardReply =
  | { kind: 'read'; requestId: number; found: boolean; values: Uint8Array[]; context: Uint8Array }
  | { kind: 'written'; requestId: number; context: Uint8Array; object: Uint8Array | undefined }
  | { kind: 'scan'; requestId: number; entries: ScanEntry[]; nextAfterKey: Uint8Array | undefined }
  | { kind: 'error'; requestId: number; code: ErrorCode; message: string }
  | { kind: 'object'; requestId: number; object: Uint8Array | undefined }
  | { kind: 'merged'; requestId: number }
  | { kind: 'purged'; requestId: number; deleted: boolean };

// ------------------------------------------------------------------ writing

function putHeader(out: Uint8Array, start: number, tag: number, flags: number, requestId: number): number {
  out[start] = shardFrameVersion;
  out[start + 1] = tag;
  out[start + 2] = flags;
  out[start + 3] = flags >>> 8;
  return putU32(out, start + 4, requestId >>> 0);
}

function putU32(out: Uint8Array, at: number, value: number): number {
  out[at] = value;
  out[at + 1] = value >>> 8;
  out[at + 2] = value >>> 16;
  out[at + 3] = value >>> 24;
  return at + 4;
}

function putRaw(out: Uint8Array, at: number, bytes: Uint8Array): number {
  const n = bytes.length;
  if (n <= smallCopyBytesMax) {
    for (let i = 0; i < n; i++) out[at + i] = bytes[i]!;
  } else {
    out.set(bytes, at);
  }
  return at + n;
}

/** A key: u16 length, bytes. */
function putShort(out: Uint8Array, at: number, bytes: Uint8Array): number {
  out[at] = bytes.length;
  out[at + 1] = bytes.length >>> 8;
  return putRaw(out, at + 2, bytes);
}

/** A value, context or object: u32 length, bytes. */
function putLong(out: Uint8Array, at: number, bytes: Uint8Array): number {
  return putRaw(out, putU32(out, at, bytes.length), bytes);
}

function checkShort(bytes: Uint8Array): number {
  if (bytes.length > u16Max) throw new RingkvError(ErrorCode.tooLarge, `key of ${bytes.length} bytes does not fit a frame`, {});
  return 2 + bytes.length;
}

const mintBytes = (mint: Mint | undefined): number => (mint === undefined ? 0 : 1 + checkShort(mint.rid));

function putMint(out: Uint8Array, at: number, mint: Mint | undefined): number {
  if (mint === undefined) return at;
  out[at] = mint.attempt;
  return putShort(out, at + 1, mint.rid);
}

/** The frame size of `request`; throws KV_TOO_LARGE for a key over 65535 bytes. */
export function requestBytes(request: ShardRequest): number {
  switch (request.op) {
    case 'get':
    case 'readObject':
      return headerBytes + checkShort(request.key);
    case 'put':
      return headerBytes + checkShort(request.key) + (request.context ? 4 + request.context.length : 0) + 4 + request.value.length + (request.ttlMs === undefined ? 0 : 8) + mintBytes(request.mint);
    case 'delete':
      return headerBytes + checkShort(request.key) + (request.context ? 4 + request.context.length : 0) + mintBytes(request.mint);
    case 'mergeObject':
      return headerBytes + checkShort(request.key) + 4 + request.object.length;
    case 'purgeIf':
      return headerBytes + checkShort(request.key) + 4 + request.expected.length;
    case 'scan':
      return headerBytes + 8 + (request.afterKey ? checkShort(request.afterKey) : 0);
    case 'crash':
      return headerBytes;
    default:
      return assertNever(request, 'shard request');
  }
}

/** Encodes `request` into `out[start, start + requestBytes(request))`; returns the end. */
export function encodeRequestInto(request: ShardRequest, out: Uint8Array, start: number): number {
  const id = request.requestId;
  switch (request.op) {
    case 'get':
      return putShort(out, putHeader(out, start, FrameTag.get, 0, id), request.key);
    case 'readObject':
      return putShort(out, putHeader(out, start, FrameTag.readObject, 0, id), request.key);
    case 'put':
    case 'delete': {
      const { context } = request;
      let flags = (context ? flagContext : 0) | (request.wantObject === true ? flagObject : 0) | (request.overwrite === true ? flagOverwrite : 0) | (request.mint === undefined ? 0 : flagMint);
      if (request.op === 'put') flags |= (request.ttlMs === undefined ? 0 : flagTtl) | (request.keepTtl === true ? flagKeepTtl : 0);
      let at = putShort(out, putHeader(out, start, request.op === 'put' ? FrameTag.put : FrameTag.delete, flags, id), request.key);
      if (context) at = putLong(out, at, context);
      if (request.op !== 'put') return putMint(out, at, request.mint);
      at = putLong(out, at, request.value);
      if (request.ttlMs !== undefined) at = putU32(out, putU32(out, at, request.ttlMs >>> 0), Math.floor(request.ttlMs / 0x1_0000_0000));
      return putMint(out, at, request.mint);
    }
    case 'mergeObject':
      return putLong(out, putShort(out, putHeader(out, start, FrameTag.mergeObject, 0, id), request.key), request.object);
    case 'purgeIf':
      return putLong(out, putShort(out, putHeader(out, start, FrameTag.purgeIf, 0, id), request.key), request.expected);
    case 'scan': {
      const after = request.afterKey;
      let at = putHeader(out, start, FrameTag.scan, after ? flagAfterKey : 0, id);
      at = putU32(out, putU32(out, at, request.partition), request.limit);
      return after ? putShort(out, at, after) : at;
    }
    case 'crash':
      return putHeader(out, start, FrameTag.crash, 0, id);
    default:
      return assertNever(request, 'shard request');
  }
}

export function encodeRequest(request: ShardRequest): Uint8Array {
  const out = new Uint8Array(requestBytes(request));
  encodeRequestInto(request, out, 0);
  return out;
}

/** The frame size of `reply`. */
export function replyBytes(reply: ShardReply): number {
  switch (reply.kind) {
    case 'read': {
      let sizeBytes = headerBytes + 1 + 4 + reply.context.length + 4;
      for (const v of reply.values) sizeBytes += 4 + v.length;
      return sizeBytes;
    }
    case 'written':
      return headerBytes + 4 + reply.context.length + (reply.object ? 4 + reply.object.length : 0);
    case 'object':
      return headerBytes + (reply.object ? 4 + reply.object.length : 0);
    case 'merged':
      return headerBytes;
    case 'purged':
      return headerBytes + 1;
    case 'scan': {
      let sizeBytes = headerBytes + 4 + (reply.nextAfterKey ? checkShort(reply.nextAfterKey) : 0);
      for (const e of reply.entries) sizeBytes += checkShort(e.key) + 4 + e.value.length;
      return sizeBytes;
    }
    case 'error':
      return headerBytes + 1 + Buffer.byteLength(reply.code, 'latin1') + 4 + Buffer.byteLength(reply.message, 'utf8');
    default:
      return assertNever(reply, 'shard reply');
  }
}

/** Encodes `reply` into `out[start, start + replyBytes(reply))`; returns the end. */
export function encodeReplyInto(reply: ShardReply, out: Uint8Array, start: number): number {
  const id = reply.requestId;
  switch (reply.kind) {
    case 'read': {
      let at = putHeader(out, start, FrameTag.read, flagContext, id);
      out[at] = reply.found ? 1 : 0;
      at = putU32(out, putLong(out, at + 1, reply.context), reply.values.length);
      for (const v of reply.values) at = putLong(out, at, v);
      return at;
    }
    case 'written': {
      const { object } = reply;
      const at = putLong(out, putHeader(out, start, FrameTag.written, flagContext | (object ? flagObject : 0), id), reply.context);
      return object ? putLong(out, at, object) : at;
    }
    case 'object': {
      const at = putHeader(out, start, FrameTag.object, reply.object ? flagObject : 0, id);
      return reply.object ? putLong(out, at, reply.object) : at;
    }
    case 'merged':
      return putHeader(out, start, FrameTag.merged, 0, id);
    case 'purged': {
      const at = putHeader(out, start, FrameTag.purged, 0, id);
      out[at] = reply.deleted ? 1 : 0;
      return at + 1;
    }
    case 'scan': {
      const next = reply.nextAfterKey;
      let at = putU32(out, putHeader(out, start, FrameTag.scanPage, next ? flagAfterKey : 0, id), reply.entries.length);
      for (const e of reply.entries) at = putLong(out, putShort(out, at, e.key), e.value);
      return next ? putShort(out, at, next) : at;
    }
    case 'error': {
      let at = putHeader(out, start, FrameTag.error, 0, id);
      const codeBytes = Buffer.byteLength(reply.code, 'latin1');
      out[at] = codeBytes;
      at += 1 + asBuffer(out).write(reply.code, at + 1, 'latin1');
      const messageBytes = Buffer.byteLength(reply.message, 'utf8');
      at = putU32(out, at, messageBytes);
      return at + asBuffer(out).write(reply.message, at, 'utf8');
    }
    default:
      return assertNever(reply, 'shard reply');
  }
}

export function encodeReply(reply: ShardReply): Uint8Array {
  const out = new Uint8Array(replyBytes(reply));
  encodeReplyInto(reply, out, 0);
  return out;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ------------------------------------------------------------------ reading

/**
 * Reads one frame's span. One instance per module, reset per frame: decoding is synchronous
 * and never reentrant, so no reader is allocated per frame.
 */
class SpanReader {
  bytes: Uint8Array = new Uint8Array(0);
  at = 0;
  end = 0;
  requestId = 0;
  /** Copy byte arrays out (slice) or view them (subarray). */
  copy = true;

  reset(bytes: Uint8Array, start: number, lengthBytes: number, requestId: number, copy: boolean): void {
    this.bytes = bytes;
    this.at = start + headerBytes;
    this.end = start + lengthBytes;
    this.requestId = requestId;
    this.copy = copy;
  }

  #need(n: number): void {
    if (this.at + n > this.end) throw malformed('truncated frame', this.requestId);
  }

  u8(): number {
    this.#need(1);
    return this.bytes[this.at++]!;
  }

  u32(): number {
    this.#need(4);
    const b = this.bytes;
    const at = this.at;
    this.at = at + 4;
    return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
  }

  take(n: number): Uint8Array {
    this.#need(n);
    const at = this.at;
    this.at = at + n;
    return this.copy ? this.bytes.slice(at, at + n) : this.bytes.subarray(at, at + n);
  }

  short(): Uint8Array {
    this.#need(2);
    const n = this.bytes[this.at]! | (this.bytes[this.at + 1]! << 8);
    this.at += 2;
    return this.take(n);
  }

  long(): Uint8Array {
    return this.take(this.u32());
  }

  finish(): void {
    if (this.at !== this.end) throw malformed('trailing bytes in frame', this.requestId);
    this.bytes = emptyBytes;
  }
}

const emptyBytes = new Uint8Array(0);
const reader = new SpanReader();

function readMint(r: SpanReader): Mint {
  const attempt = r.u8();
  const rid = r.short();
  if (rid.length === 0 || rid.length > 0xff) throw malformed(`mint rid of ${rid.length} bytes`, r.requestId);
  return { attempt, rid };
}

function malformed(message: string, requestId: number | undefined): RingkvError {
  return new RingkvError(ErrorCode.badRequest, `malformed shard frame: ${message}`, requestId === undefined ? {} : { requestId });
}

/** Checks the header of the frame at `bytes[start, start + lengthBytes)`; returns its tag and flags in `reader`. */
function openFrame(bytes: Uint8Array, start: number, lengthBytes: number, copy: boolean): [number, number] {
  if (lengthBytes < headerBytes) throw malformed('shorter than its header', undefined);
  const requestId = (bytes[start + 4]! | (bytes[start + 5]! << 8) | (bytes[start + 6]! << 16) | (bytes[start + 7]! << 24)) >>> 0;
  if (bytes[start] !== shardFrameVersion) throw malformed(`version ${bytes[start]}`, requestId);
  const flags = bytes[start + 2]! | (bytes[start + 3]! << 8);
  if ((flags & ~flagsKnown) !== 0) throw malformed(`flags ${flags}`, requestId);
  reader.reset(bytes, start, lengthBytes, requestId, copy);
  return [bytes[start + 1]!, flags];
}

/**
 * Decodes the request frame at `bytes[start, start + lengthBytes)`; throws KV_BAD_REQUEST when
 * malformed. `copy` false: byte arrays are views into `bytes`, valid as long as `bytes` is.
 */
export function decodeRequestSpan(bytes: Uint8Array, start: number, lengthBytes: number, copy = true): ShardRequest {
  const [tag, flags] = openFrame(bytes, start, lengthBytes, copy);
  const r = reader;
  const requestId = r.requestId;
  let request: ShardRequest;
  if (tag === FrameTag.get) {
    request = { op: 'get', requestId, key: r.short() };
  } else if (tag === FrameTag.put || tag === FrameTag.delete) {
    const key = r.short();
    const context = flags & flagContext ? r.long() : undefined;
    const wantObject = (flags & flagObject) !== 0;
    // Unset flags decode as undefined, as an encoder's request leaves them.
    const overwrite = (flags & flagOverwrite) !== 0 ? true : undefined;
    if (tag === FrameTag.put) {
      const value = r.long();
      const ttlMs = flags & flagTtl ? r.u32() + r.u32() * 0x1_0000_0000 : undefined;
      const put: ShardRequest = { op: 'put', requestId, key, value, context, wantObject, ttlMs, overwrite, keepTtl: (flags & flagKeepTtl) !== 0 ? true : undefined };
      // Present only when sent (no empty object and spread per request).
      if (flags & flagMint) put.mint = readMint(r);
      request = put;
    } else {
      const del: ShardRequest = { op: 'delete', requestId, key, context, wantObject, overwrite };
      if (flags & flagMint) del.mint = readMint(r);
      request = del;
    }
  } else if (tag === FrameTag.readObject) {
    request = { op: 'readObject', requestId, key: r.short() };
  } else if (tag === FrameTag.mergeObject) {
    const key = r.short();
    request = { op: 'mergeObject', requestId, key, object: r.long() };
  } else if (tag === FrameTag.purgeIf) {
    const key = r.short();
    request = { op: 'purgeIf', requestId, key, expected: r.long() };
  } else if (tag === FrameTag.scan) {
    const partition = r.u32();
    const limit = r.u32();
    request = { op: 'scan', requestId, partition, limit, afterKey: flags & flagAfterKey ? r.short() : undefined };
  } else if (tag === FrameTag.crash) {
    request = { op: 'crash', requestId };
  } else {
    throw malformed(`unknown request tag ${tag}`, requestId);
  }
  r.finish();
  return request;
}

/** Decodes a request frame (copies); throws KV_BAD_REQUEST when malformed. */
export function decodeRequest(bytes: Uint8Array): ShardRequest {
  return decodeRequestSpan(bytes, 0, bytes.length);
}

/** Replies over Node's pool size go to a slab of this size (a tuning knob, not on the wire). */
const replySlabBytes = 512 * 1024;
let replySlab = new Uint8Array(0);
let replySlabUsed = 0;

/**
 * Copies a reply frame out of the mailbox: small frames into a Buffer from Node's pool, frames
 * up to a quarter slab into the current reply slab (bump allocation: a 10 KiB value costs a
 * memcpy, not a fresh backing store and the GC work that follows it), larger ones into their own
 * array. Returns the copy and where the frame starts in it. A slab lives while any value cut
 * from it does, so one retained value pins at most replySlabBytes. Where the frame starts in
 * the copy is left in `replyCopyAt` (no tuple per reply).
 */
let replyCopyAt = 0;

function replyCopyOf(bytes: Uint8Array, start: number, lengthBytes: number): Uint8Array {
  let copy: Uint8Array;
  let at = 0;
  if (lengthBytes <= Buffer.poolSize >>> 1) {
    const pooled = Buffer.allocUnsafe(lengthBytes);
    // A plain Uint8Array over the pooled bytes: decoded arrays are Uint8Arrays, not Buffers.
    copy = new Uint8Array(pooled.buffer, pooled.byteOffset, lengthBytes);
  } else if (lengthBytes > replySlabBytes >>> 2) {
    const own = Buffer.allocUnsafeSlow(lengthBytes);
    copy = new Uint8Array(own.buffer, own.byteOffset, lengthBytes);
  } else {
    if (replySlabUsed + lengthBytes > replySlab.length) {
      // Not zero-filled: every byte handed out is copied over first.
      const slab = Buffer.allocUnsafeSlow(replySlabBytes);
      replySlab = new Uint8Array(slab.buffer, slab.byteOffset, replySlabBytes);
      replySlabUsed = 0;
    }
    copy = replySlab;
    at = replySlabUsed;
    replySlabUsed = (at + lengthBytes + 7) & ~7;
  }
  if (lengthBytes <= smallCopyBytesMax * 4) {
    for (let i = 0; i < lengthBytes; i++) copy[at + i] = bytes[start + i]!;
  } else {
    copy.set(bytes.subarray(start, start + lengthBytes), at);
  }
  replyCopyAt = at;
  return copy;
}

/**
 * Decodes the reply frame at `bytes[start, start + lengthBytes)`; throws KV_BAD_REQUEST when
 * malformed. The frame is copied once (replyCopyOf: Node's pool, or a reply slab) and its byte arrays are
 * views of that copy: one small allocation per reply instead of one backing store per array.
 * (So a decoded value's `.buffer` may hold other replies' bytes, and bytes not yet written,
 * as with any pooled `Buffer.allocUnsafe` Buffer; the view itself holds only its own.)
 */
export function decodeReplySpan(bytes: Uint8Array, start: number, lengthBytes: number): ShardReply {
  const copy = replyCopyOf(bytes, start, lengthBytes);
  const [tag, flags] = openFrame(copy, replyCopyAt, lengthBytes, false);
  const r = reader;
  const requestId = r.requestId;
  let reply: ShardReply;
  if (tag === FrameTag.read) {
    const found = r.u8() === 1;
    const context = r.long();
    const count = r.u32();
    const values: Uint8Array[] = [];
    for (let i = 0; i < count; i++) values.push(r.long());
    reply = { kind: 'read', requestId, found, values, context };
  } else if (tag === FrameTag.written) {
    const context = r.long();
    reply = { kind: 'written', requestId, context, object: flags & flagObject ? r.long() : undefined };
  } else if (tag === FrameTag.object) {
    reply = { kind: 'object', requestId, object: flags & flagObject ? r.long() : undefined };
  } else if (tag === FrameTag.merged) {
    reply = { kind: 'merged', requestId };
  } else if (tag === FrameTag.purged) {
    const deleted = r.u8();
    if (deleted > 1) throw malformed(`purged flag ${deleted}`, requestId);
    reply = { kind: 'purged', requestId, deleted: deleted === 1 };
  } else if (tag === FrameTag.scanPage) {
    const count = r.u32();
    const entries: ScanEntry[] = [];
    for (let i = 0; i < count; i++) entries.push({ key: r.short(), value: r.long() });
    reply = { kind: 'scan', requestId, entries, nextAfterKey: flags & flagAfterKey ? r.short() : undefined };
  } else if (tag === FrameTag.error) {
    const code = asBuffer(r.take(r.u8())).toString('latin1');
    if (!isErrorCode(code)) throw malformed(`unknown error code ${JSON.stringify(code)}`, requestId);
    reply = { kind: 'error', requestId, code, message: asBuffer(r.long()).toString('utf8') };
  } else {
    throw malformed(`unknown reply tag ${tag}`, requestId);
  }
  r.finish();
  return reply;
}

/** Decodes a reply frame; throws KV_BAD_REQUEST when malformed. */
export function decodeReply(bytes: Uint8Array): ShardReply {
  return decodeReplySpan(bytes, 0, bytes.length);
}

/** The error reply for a request that failed with `error` (a RingkvError keeps its code). */
export function errorReply(requestId: number, error: unknown, fallback: ErrorCode = ErrorCode.badRequest): ShardReply {
  if (error instanceof RingkvError) return { kind: 'error', requestId, code: error.code, message: error.message };
  return { kind: 'error', requestId, code: fallback, message: error instanceof Error ? error.message : String(error) };
}
