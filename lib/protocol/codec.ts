/**
 * The wire codec: one binary WebSocket message (a "frame") is a msgpack array of tagged
 * messages. Pure, any thread; the one file that imports msgpackr (test/layering.test.ts).
 *
 * Frame layout (msgpack, multi-byte integers big-endian as the msgpack spec says):
 *
 *   ┌──────────────────────────────────────────┬───────────┬───────────┬─────┐
 *   │ array header: 0x91..0x9f (1..15 items)   │ message 1 │ message 2 │ ... │
 *   │   | 0xdc u16 count | 0xdd u32 count      │  (map)    │  (map)    │     │
 *   └──────────────────────────────────────────┴───────────┴───────────┴─────┘
 *
 * A message is a msgpack map with string keys and a string field `t` (its tag). Byte fields are
 * msgpack bin (decoded as Buffer, a Uint8Array; views into the received frame, not copies).
 * msgpack arrays are a header followed by their items back to back, so a sender encodes each
 * message once when it is queued (its exact size is known at once) and a frame is the header
 * plus the concatenation: no second pass.
 *
 * No version byte: the protocol version travels in the handshake (`v: 1` in hello/challenge/
 * auth). Frozen (changing one bumps that `v`): the Packr options below (no records, maps as
 * plain objects), the array-of-maps frame shape and the tag strings of wire.md.
 *
 * Corner cases: an empty array, more than `limits.wireMessagesPerFrameMax` items, a non-array,
 * trailing bytes, truncation, garbage and absurd nesting all throw RingkvError KV_BAD_REQUEST
 * (never another error). msgpackr renames a `__proto__` key, so decoding cannot pollute a
 * prototype. Items are NOT checked here beyond the array: `isWireMessage` tells whether one is
 * "an object with a string t", so a receiver can reject one message and keep the others.
 */

import { Buffer } from 'node:buffer';
import { Packr } from 'msgpackr';
import { assert } from '../base/assert.js';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';

/** A message of the wire: a plain object whose string field `t` is its tag. */
export type WireMessage = { t: string; [field: string]: unknown };

/** Largest array header: 0xdd and a u32 count. */
export const frameHeaderBytesMax = 5;

/** Frozen. */
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** Encodes one message; the result is one item of a frame (see `encodeFrame`). */
export function encodeMessage(message: WireMessage): Uint8Array {
  return packr.pack(message);
}

/** Bytes of the array header of a frame of `count` messages. */
export function frameHeaderBytes(count: number): number {
  if (count < 16) return 1;
  return count <= 0xffff ? 3 : 5;
}

/** Joins messages encoded by `encodeMessage` into one frame. */
export function encodeFrame(encodedMessages: readonly Uint8Array[]): Uint8Array {
  const count = encodedMessages.length;
  if (count < 1) throw new RangeError('encodedMessages must hold at least one message');
  const headerBytes = frameHeaderBytes(count);
  let sizeBytes = headerBytes;
  for (const encoded of encodedMessages) sizeBytes += encoded.length;
  const frame = Buffer.allocUnsafe(sizeBytes);
  if (headerBytes === 1) frame[0] = 0x90 | count;
  else if (headerBytes === 3) {
    frame[0] = 0xdc;
    frame.writeUInt16BE(count, 1);
  } else {
    frame[0] = 0xdd;
    frame.writeUInt32BE(count, 1);
  }
  let offset = headerBytes;
  for (const encoded of encodedMessages) {
    frame.set(encoded, offset);
    offset += encoded.length;
  }
  return frame;
}

/** Encodes messages straight into one frame. */
export function encodeMessages(messages: readonly WireMessage[]): Uint8Array {
  return encodeFrame(messages.map(encodeMessage));
}

function badFrame(message: string, details: Record<string, unknown> = {}, cause?: unknown): RingkvError {
  return new RingkvError(ErrorCode.badRequest, `bad frame: ${message}`, details, cause === undefined ? undefined : { cause });
}

/** The item count an array header announces, or undefined when the frame does not start with one. */
function announcedCount(bytes: Uint8Array): number | undefined {
  const first = bytes[0];
  if (first === undefined) return undefined;
  if ((first & 0xf0) === 0x90) return first & 0x0f;
  if (first === 0xdc && bytes.length >= 3) return (bytes[1]! << 8) | bytes[2]!;
  if (first === 0xdd && bytes.length >= 5) return ((bytes[1]! << 24) | (bytes[2]! << 16) | (bytes[3]! << 8) | bytes[4]!) >>> 0;
  return undefined;
}

/**
 * Decodes a frame into its items (each still to be checked with `isWireMessage`). Throws
 * RingkvError KV_BAD_REQUEST for anything that is not an array of 1..messagesMax items.
 */
export function decodeFrame(bytes: Uint8Array, messagesMax: number = limits.wireMessagesPerFrameMax): unknown[] {
  const count = announcedCount(bytes);
  if (count === undefined) throw badFrame('not a msgpack array', { sizeBytes: bytes.length });
  if (count < 1 || count > messagesMax) throw badFrame(`${count} messages, not within [1, ${messagesMax}]`, { count });
  let decoded: unknown;
  try {
    decoded = packr.unpack(bytes);
  } catch (error) {
    throw badFrame('undecodable msgpack', { sizeBytes: bytes.length }, error);
  }
  // The header was checked, so a successful decode is an array of `count` items.
  assert(Array.isArray(decoded) && decoded.length === count, 'msgpackr decoded an array header into something else');
  return decoded;
}

/** Whether a decoded item is a message: a plain object with an own string field `t`. */
export function isWireMessage(value: unknown): value is WireMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  return Object.hasOwn(value, 't') && typeof (value as { t: unknown }).t === 'string';
}
