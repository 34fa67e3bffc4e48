/**
 * The binary frames of the shard data plane: requests the supervisor (or the embedded Store)
 * writes into a shard's request mailbox, and replies the shard writes into its reply mailbox.
 * Pure codec, any thread; both ends are built from the same source.
 *
 * Manual DataView/Uint8Array encoding, no msgpack: this is the hottest path of a node, and a
 * frame costs one size pass, one allocation and one copy per byte array.
 *
 * All integers little-endian. Every frame starts with the same 8-byte header:
 *
 *   header  ┌──────────────┬───────┬───────────┬─────────────┐
 *           │ version u8=1 │ tag u8│ flags u16 │ requestId u32│
 *           └──────────────┴───────┴───────────┴─────────────┘
 *
 *   request tags (body after the header):
 *     1 get     │ key: u16 length, bytes │
 *     2 put     │ key │ context: u32 length, bytes (flag 1: present) │ value: u32 length, bytes │
 *     3 delete  │ key │ context (flag 1: present) │
 *     4 scan    │ partition u32 │ limit u32 │ afterKey (flag 2: present): u16 length, bytes │
 *     5 crash   │ (empty) — test only: the shard throws, as a bug would │
 *   reply tags:
 *     16 read    │ found u8 │ context │ value count u32 │ per value: u32 length, bytes │
 *     17 written │ context │
 *     18 scan    │ entry count u32 │ per entry: key (u16), value (u32) │ nextAfterKey (flag 2) │
 *     19 error   │ code: u8 length, ASCII │ message: u32 length, UTF-8 │
 *
 * Corner cases: empty keys, values and contexts are legal (length 0). A context absent (flag 1
 * clear) means a blind write. Any truncation, trailing byte, unknown version, tag or flag, or
 * an error code that is not an ErrorCode is malformed: decoding throws KV_BAD_REQUEST (with
 * `details.requestId` when the header was readable) and never crashes the reader. Decoded byte
 * arrays are copies: a mailbox frame view dies when the consumer moves past it.
 *
 * Frozen within a process: the version byte, the tags and the flag bits (both ends come from
 * one build, so a change bumps `shardFrameVersion`).
 */

import { Buffer } from 'node:buffer';
import { assertNever } from '../base/assert.js';
import { ErrorCode, RingkvError, isErrorCode } from '../base/errors.js';

/** Frozen. */
export const shardFrameVersion = 1;
/** Frozen. */
export const FrameTag = { get: 1, put: 2, delete: 3, scan: 4, crash: 5, read: 16, written: 17, scanPage: 18, error: 19 } as const;
const flagContext = 1;
const flagAfterKey = 2;
const headerBytes = 8;
const u16Max = 0xffff;

export type ShardRequest =
  | { op: 'get'; requestId: number; key: Uint8Array }
  | { op: 'put'; requestId: number; key: Uint8Array; value: Uint8Array; context: Uint8Array | undefined }
  | { op: 'delete'; requestId: number; key: Uint8Array; context: Uint8Array | undefined }
  | { op: 'scan'; requestId: number; partition: number; limit: number; afterKey: Uint8Array | undefined }
  | { op: 'crash'; requestId: number };

export interface ScanEntry {
  key: Uint8Array;
  /** The stored object's bytes, as the engine keeps them. */
  value: Uint8Array;
}

export type ShardReply =
  | { kind: 'read'; requestId: number; found: boolean; values: Uint8Array[]; context: Uint8Array }
  | { kind: 'written'; requestId: number; context: Uint8Array }
  | { kind: 'scan'; requestId: number; entries: ScanEntry[]; nextAfterKey: Uint8Array | undefined }
  | { kind: 'error'; requestId: number; code: ErrorCode; message: string };

// ------------------------------------------------------------------ writing

class FrameWriter {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  offset = headerBytes;

  constructor(sizeBytes: number, tag: number, flags: number, requestId: number) {
    this.bytes = new Uint8Array(sizeBytes);
    this.view = new DataView(this.bytes.buffer);
    this.bytes[0] = shardFrameVersion;
    this.bytes[1] = tag;
    this.view.setUint16(2, flags, true);
    this.view.setUint32(4, requestId >>> 0, true);
  }

  u8(value: number): void {
    this.bytes[this.offset++] = value;
  }

  u32(value: number): void {
    this.view.setUint32(this.offset, value, true);
    this.offset += 4;
  }

  short(bytes: Uint8Array): void {
    if (bytes.length > u16Max) throw new RingkvError(ErrorCode.tooLarge, `key of ${bytes.length} bytes does not fit a frame`, {});
    this.view.setUint16(this.offset, bytes.length, true);
    this.bytes.set(bytes, this.offset + 2);
    this.offset += 2 + bytes.length;
  }

  long(bytes: Uint8Array): void {
    this.u32(bytes.length);
    this.bytes.set(bytes, this.offset);
    this.offset += bytes.length;
  }
}

export function encodeRequest(request: ShardRequest): Uint8Array {
  switch (request.op) {
    case 'get': {
      const w = new FrameWriter(headerBytes + 2 + request.key.length, FrameTag.get, 0, request.requestId);
      w.short(request.key);
      return w.bytes;
    }
    case 'put':
    case 'delete': {
      const { key, context } = request;
      const value = request.op === 'put' ? request.value : undefined;
      const sizeBytes = headerBytes + 2 + key.length + (context ? 4 + context.length : 0) + (value ? 4 + value.length : 0);
      const tag = request.op === 'put' ? FrameTag.put : FrameTag.delete;
      const w = new FrameWriter(sizeBytes, tag, context ? flagContext : 0, request.requestId);
      w.short(key);
      if (context) w.long(context);
      if (value) w.long(value);
      return w.bytes;
    }
    case 'scan': {
      const after = request.afterKey;
      const w = new FrameWriter(headerBytes + 8 + (after ? 2 + after.length : 0), FrameTag.scan, after ? flagAfterKey : 0, request.requestId);
      w.u32(request.partition);
      w.u32(request.limit);
      if (after) w.short(after);
      return w.bytes;
    }
    case 'crash':
      return new FrameWriter(headerBytes, FrameTag.crash, 0, request.requestId).bytes;
    default:
      return assertNever(request, 'shard request');
  }
}

export function encodeReply(reply: ShardReply): Uint8Array {
  switch (reply.kind) {
    case 'read': {
      let sizeBytes = headerBytes + 1 + 4 + reply.context.length + 4;
      for (const v of reply.values) sizeBytes += 4 + v.length;
      const w = new FrameWriter(sizeBytes, FrameTag.read, flagContext, reply.requestId);
      w.u8(reply.found ? 1 : 0);
      w.long(reply.context);
      w.u32(reply.values.length);
      for (const v of reply.values) w.long(v);
      return w.bytes;
    }
    case 'written': {
      const w = new FrameWriter(headerBytes + 4 + reply.context.length, FrameTag.written, flagContext, reply.requestId);
      w.long(reply.context);
      return w.bytes;
    }
    case 'scan':
      return encodeScanReply(reply);
    case 'error': {
      const code = Buffer.from(reply.code, 'latin1');
      const message = Buffer.from(reply.message, 'utf8');
      const w = new FrameWriter(headerBytes + 1 + code.length + 4 + message.length, FrameTag.error, 0, reply.requestId);
      w.u8(code.length);
      w.bytes.set(code, w.offset);
      w.offset += code.length;
      w.long(message);
      return w.bytes;
    }
    default:
      return assertNever(reply, 'shard reply');
  }
}

function encodeScanReply(reply: Extract<ShardReply, { kind: 'scan' }>): Uint8Array {
  const next = reply.nextAfterKey;
  let sizeBytes = headerBytes + 4 + (next ? 2 + next.length : 0);
  for (const e of reply.entries) sizeBytes += 2 + e.key.length + 4 + e.value.length;
  const w = new FrameWriter(sizeBytes, FrameTag.scanPage, next ? flagAfterKey : 0, reply.requestId);
  w.u32(reply.entries.length);
  for (const e of reply.entries) {
    w.short(e.key);
    w.long(e.value);
  }
  if (next) w.short(next);
  return w.bytes;
}

// ------------------------------------------------------------------ reading

class FrameReader {
  readonly view: DataView;
  offset = headerBytes;

  constructor(
    readonly bytes: Uint8Array,
    readonly requestId: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #need(n: number): void {
    if (this.offset + n > this.bytes.length) throw malformed('truncated frame', this.requestId);
  }

  u8(): number {
    this.#need(1);
    return this.bytes[this.offset++]!;
  }

  u32(): number {
    this.#need(4);
    const value = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return value;
  }

  take(n: number): Uint8Array {
    this.#need(n);
    const out = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  short(): Uint8Array {
    this.#need(2);
    const n = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return this.take(n);
  }

  long(): Uint8Array {
    return this.take(this.u32());
  }

  end(): void {
    if (this.offset !== this.bytes.length) throw malformed('trailing bytes in frame', this.requestId);
  }
}

function malformed(message: string, requestId: number | undefined): RingkvError {
  return new RingkvError(ErrorCode.badRequest, `malformed shard frame: ${message}`, requestId === undefined ? {} : { requestId });
}

/** Reads the header; returns the reader, the tag and the flags. */
function openFrame(bytes: Uint8Array, allowedFlags: number): [FrameReader, number, number] {
  if (bytes.length < headerBytes) throw malformed('shorter than its header', undefined);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const requestId = view.getUint32(4, true);
  if (bytes[0] !== shardFrameVersion) throw malformed(`version ${bytes[0]}`, requestId);
  const flags = view.getUint16(2, true);
  if ((flags & ~allowedFlags) !== 0) throw malformed(`flags ${flags}`, requestId);
  return [new FrameReader(bytes, requestId), bytes[1]!, flags];
}

/** Decodes a request frame; throws KV_BAD_REQUEST when malformed. */
export function decodeRequest(bytes: Uint8Array): ShardRequest {
  const [r, tag, flags] = openFrame(bytes, flagContext | flagAfterKey);
  const requestId = r.requestId;
  let request: ShardRequest;
  if (tag === FrameTag.get) {
    request = { op: 'get', requestId, key: r.short() };
  } else if (tag === FrameTag.put || tag === FrameTag.delete) {
    const key = r.short();
    const context = flags & flagContext ? r.long() : undefined;
    request = tag === FrameTag.put ? { op: 'put', requestId, key, value: r.long(), context } : { op: 'delete', requestId, key, context };
  } else if (tag === FrameTag.scan) {
    const partition = r.u32();
    const limit = r.u32();
    request = { op: 'scan', requestId, partition, limit, afterKey: flags & flagAfterKey ? r.short() : undefined };
  } else if (tag === FrameTag.crash) {
    request = { op: 'crash', requestId };
  } else {
    throw malformed(`unknown request tag ${tag}`, requestId);
  }
  r.end();
  return request;
}

/** Decodes a reply frame; throws KV_BAD_REQUEST when malformed. */
export function decodeReply(bytes: Uint8Array): ShardReply {
  const [r, tag, flags] = openFrame(bytes, flagContext | flagAfterKey);
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
    reply = { kind: 'written', requestId, context: r.long() };
  } else if (tag === FrameTag.scanPage) {
    const count = r.u32();
    const entries: ScanEntry[] = [];
    for (let i = 0; i < count; i++) entries.push({ key: r.short(), value: r.long() });
    reply = { kind: 'scan', requestId, entries, nextAfterKey: flags & flagAfterKey ? r.short() : undefined };
  } else if (tag === FrameTag.error) {
    const code = Buffer.from(r.take(r.u8())).toString('latin1');
    if (!isErrorCode(code)) throw malformed(`unknown error code ${JSON.stringify(code)}`, requestId);
    reply = { kind: 'error', requestId, code, message: Buffer.from(r.long()).toString('utf8') };
  } else {
    throw malformed(`unknown reply tag ${tag}`, requestId);
  }
  r.end();
  return reply;
}

/** The error reply for a request that failed with `error` (a RingkvError keeps its code). */
export function errorReply(requestId: number, error: unknown, fallback: ErrorCode = ErrorCode.badRequest): ShardReply {
  if (error instanceof RingkvError) return { kind: 'error', requestId, code: error.code, message: error.message };
  return { kind: 'error', requestId, code: fallback, message: error instanceof Error ? error.message : String(error) };
}
