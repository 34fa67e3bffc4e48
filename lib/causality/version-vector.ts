/**
 * Version vectors (actor → counter) and the causal-context codec. Pure, any thread.
 *
 * A version vector is the causal history of a key compressed to one counter per actor: it
 * covers the events (actor, 1..counter) of every actor it names (Parker et al. 1983). It is the
 * `join` of a DVV set (dvv-set.ts) and the causal context a client gets from `get` and hands
 * back to `put`/`delete`. Invariants: entries are sorted by `compareActors`, actors are unique,
 * counters are integers in [1, counterMax]. An actor that is absent has counter 0.
 *
 * Context codec (version 1, all integers little-endian):
 *
 *   ┌─────────┬──────────────┬──────────────────────────────┬──────────────────────┐
 *   │ version │ entry count  │ entry 0 … entry count-1      │ masked crc32c        │
 *   │ u8 = 1  │ u16 (0..max) │                              │ u32 over all before  │
 *   └─────────┴──────────────┴──────────────────────────────┴──────────────────────┘
 *   entry:  ┌───────────┬──────────────────┬────────────────┬─────────────────────┐
 *           │ id length │ actor id (UTF-8) │ counter low    │ counter high        │
 *           │ u8 (1..64)│ length bytes     │ u32            │ u32 (< 2^21)        │
 *           └───────────┴──────────────────┴────────────────┴─────────────────────┘
 *
 * Decoding is strict, because a context comes from the world (RELIABILITY.md B8): anything
 * but one exact encoding of a valid vector is KV_BAD_CONTEXT — garbage, a bad CRC, truncation,
 * trailing bytes, more than `limits.contextEntriesMax` entries, an empty or over-long or
 * non-UTF-8 actor id, actors out of order or repeated, a counter of 0 or above 2^53 − 1. The
 * empty vector (7 bytes) is valid: it is the context of a key that was never written. Size is
 * checked before the CRC, so an oversized context costs O(1) to refuse.
 *
 * The CRC catches damage, not forgery: a client can hand back a well-formed context with
 * inflated counters and so supersede writes it never saw. Keying contexts (an HMAC with the
 * cluster secret) belongs to the protocol layer.
 *
 * Frozen: the version byte, the layout and the CRC masking reach clients, which may store
 * contexts. Changing any of them bumps `contextFormatVersion`.
 */

import { assert } from '../base/assert.js';
import { crc32c, maskCrc } from '../base/crc32c.js';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { actorIdBytes, compareActors, decodeActorId } from './actor-id.js';

export interface VersionVectorEntry {
  readonly actor: string;
  readonly counter: number;
}

/** Sorted by actor, unique actors, counters in [1, counterMax]. */
export type VersionVector = readonly VersionVectorEntry[];

/** Largest counter (and timestamp) the codecs carry exactly: 2^53 − 1. */
export const counterMax = Number.MAX_SAFE_INTEGER;

/** Frozen. */
export const contextFormatVersion = 1;
/** Frozen: version byte + entry count + CRC. */
const contextFixedBytes = 1 + 2 + 4;
/** Frozen: id length byte + two u32 counter halves, plus the id itself. */
const contextEntryFixedBytes = 1 + 8;

assert(limits.contextEntriesMax >= 1 && limits.contextEntriesMax <= 0xffff, 'contextEntriesMax out of range');

export type VectorOrder = 'equal' | 'before' | 'after' | 'concurrent';

/** The counter of `actor` in `vector` (0 if absent). */
export function counterOf(vector: VersionVector, actor: string): number {
  for (const entry of vector) if (entry.actor === actor) return entry.counter;
  return 0;
}

/** How `a` relates to `b`: 'before' means b saw everything a saw and more. */
export function compareVectors(a: VersionVector, b: VersionVector): VectorOrder {
  let aAhead = false;
  let bAhead = false;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const order = x === undefined ? 1 : y === undefined ? -1 : compareActors(x.actor, y.actor);
    if (order < 0) {
      aAhead = true;
      i++;
    } else if (order > 0) {
      bAhead = true;
      j++;
    } else {
      if (x!.counter > y!.counter) aAhead = true;
      else if (x!.counter < y!.counter) bAhead = true;
      i++;
      j++;
    }
  }
  if (aAhead) return bAhead ? 'concurrent' : 'after';
  return bAhead ? 'before' : 'equal';
}

/** Whether `a` covers every event `b` covers (a ≥ b). */
export function descends(a: VersionVector, b: VersionVector): boolean {
  const order = compareVectors(a, b);
  return order === 'equal' || order === 'after';
}

/** The pointwise maximum: the least vector that descends both. */
export function mergeVectors(a: VersionVector, b: VersionVector): VersionVector {
  const out: VersionVectorEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const order = x === undefined ? 1 : y === undefined ? -1 : compareActors(x.actor, y.actor);
    if (order < 0) {
      out.push(x!);
      i++;
    } else if (order > 0) {
      out.push(y!);
      j++;
    } else {
      out.push(x!.counter >= y!.counter ? x! : y!);
      i++;
      j++;
    }
  }
  return out;
}

// --- the context codec ---

// Byte helpers shared with stored-object.ts. Plain indexing, no DataView: reading `.buffer`
// of a small (on-heap) typed array makes V8 move it off the heap, which costs more than the
// whole encode.

export function writeU32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value;
  out[offset + 1] = value >>> 8;
  out[offset + 2] = value >>> 16;
  out[offset + 3] = value >>> 24;
}

export function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

/** Writes an integer in [0, counterMax] as two little-endian u32 halves, low first. */
export function writeU53(out: Uint8Array, offset: number, value: number): void {
  writeU32(out, offset, value >>> 0);
  writeU32(out, offset + 4, Math.floor(value / 0x1_0000_0000));
}

/** Reads two little-endian u32 halves; returns -1 when the value exceeds counterMax. */
export function readU53(bytes: Uint8Array, offset: number): number {
  const high = readU32(bytes, offset + 4);
  if (high > 0x1f_ffff) return -1;
  return high * 0x1_0000_0000 + readU32(bytes, offset);
}

/** Encodes a context. Asserts the vector's invariants (our own vectors only reach here). */
export function encodeContext(vector: VersionVector): Uint8Array {
  assert(vector.length <= 0xffff, 'version vector too large to encode');
  // actorIdBytes is a cached lookup: called again below rather than collecting an array.
  let sizeBytes = contextFixedBytes;
  for (let k = 0; k < vector.length; k++) sizeBytes += contextEntryFixedBytes + actorIdBytes(vector[k]!.actor).length;
  const out = new Uint8Array(sizeBytes);
  out[0] = contextFormatVersion;
  out[1] = vector.length;
  out[2] = vector.length >>> 8;
  let offset = 3;
  for (let k = 0; k < vector.length; k++) {
    const id = actorIdBytes(vector[k]!.actor);
    const counter = vector[k]!.counter;
    assert(id.length >= 1 && id.length <= 0xff, 'actor id length out of range');
    assert(Number.isInteger(counter) && counter >= 1 && counter <= counterMax, 'counter out of range');
    assert(k === 0 || compareActors(vector[k - 1]!.actor, vector[k]!.actor) < 0, 'vector not sorted');
    out[offset] = id.length;
    out.set(id, offset + 1);
    writeU53(out, offset + 1 + id.length, counter);
    offset += contextEntryFixedBytes + id.length;
  }
  writeU32(out, offset, maskCrc(crc32c(out, 0, 0, offset)));
  return out;
}

function badContext(message: string, details: Record<string, unknown> = {}): RingkvError {
  return new RingkvError(ErrorCode.badContext, `bad causal context: ${message}`, details);
}

/**
 * Decodes a context from the world; throws RingkvError KV_BAD_CONTEXT for anything but the
 * exact encoding of a valid vector of at most `entriesMax` entries.
 */
export function decodeContext(bytes: Uint8Array, entriesMax: number = limits.contextEntriesMax): VersionVector {
  if (!(bytes instanceof Uint8Array)) throw badContext('not a byte array');
  const sizeBytesMax = contextFixedBytes + entriesMax * (contextEntryFixedBytes + limits.actorIdBytesMax);
  if (bytes.length < contextFixedBytes) throw badContext('truncated', { sizeBytes: bytes.length });
  if (bytes.length > sizeBytesMax) throw badContext('too large', { sizeBytes: bytes.length, sizeBytesMax });
  if (bytes[0] !== contextFormatVersion) throw badContext(`unknown version ${bytes[0]}`);
  const count = bytes[1]! | (bytes[2]! << 8);
  if (count > entriesMax) throw badContext('too many entries', { entries: count, entriesMax });
  const crcOffset = bytes.length - 4;
  if (maskCrc(crc32c(bytes, 0, 0, crcOffset)) !== readU32(bytes, crcOffset)) throw badContext('checksum mismatch');
  const vector: VersionVectorEntry[] = [];
  let offset = 3;
  for (let k = 0; k < count; k++) {
    if (offset >= crcOffset) throw badContext('truncated', { entry: k });
    const idBytes = bytes[offset]!;
    const idEnd = offset + 1 + idBytes;
    if (idBytes === 0 || idBytes > limits.actorIdBytesMax) throw badContext('bad actor id length', { entry: k, idBytes });
    if (idEnd + 8 > crcOffset) throw badContext('truncated', { entry: k });
    const actor = decodeActorId(bytes, offset + 1, idEnd);
    if (actor === undefined) throw badContext('actor id is not UTF-8', { entry: k });
    if (k > 0 && compareActors(vector[k - 1]!.actor, actor) >= 0) throw badContext('actors out of order or repeated', { entry: k });
    const counter = readU53(bytes, idEnd);
    if (counter < 1) throw badContext('counter out of range', { entry: k });
    vector.push({ actor, counter });
    offset = idEnd + 8;
  }
  if (offset !== crcOffset) throw badContext('trailing bytes', { sizeBytes: bytes.length });
  return vector;
}
