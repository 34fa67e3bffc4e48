/**
 * Actor ids: who made an event in a version vector. Pure functions, any thread.
 *
 * An actor is the node (replica) that coordinated a write, never a client: that is what keeps
 * version vectors as small as the set of replicas (Almeida et al. 2014, §5; RELIABILITY.md C9).
 * An actor id is a non-empty, well-formed string of at most 255 UTF-8 bytes (the codecs store
 * its length in one byte); client paths hold it to `limits.actorIdBytesMax`.
 *
 * Order: actors are sorted by JavaScript string comparison (UTF-16 code units). Every codec
 * checks that order on decode, so there is exactly one encoding of each vector.
 *
 * Dot uniqueness: a dot (actor, counter) must name one event forever. A replica that loses its
 * data must come back under a new actor id (Riak's kv679 lesson), or it reuses counters.
 */

import { assert } from '../base/assert.js';
import { limits } from '../base/limits.js';

/** Frozen: the codecs store an actor id's length in one byte. */
export const actorIdBytesCeiling = 255;

assert(limits.actorIdBytesMax >= 1 && limits.actorIdBytesMax <= actorIdBytesCeiling, 'actorIdBytesMax out of range');

const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF, so decoding is the exact inverse of encoding.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** -1, 0 or 1: the one order of actors in vectors and codecs. */
export function compareActors(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// Node ids are few and written on every put: their bytes and their validity are cached.
const cacheEntriesMax = 1024;
const bytesCache = new Map<string, Uint8Array>();
const checkedCache = new Set<string>();

/** UTF-8 bytes of an actor id, cached: callers must not modify the result. */
export function actorIdBytes(actor: string): Uint8Array {
  let bytes = bytesCache.get(actor);
  if (bytes === undefined) {
    if (bytesCache.size >= cacheEntriesMax) bytesCache.clear();
    bytes = encodeActorId(actor);
    bytesCache.set(actor, bytes);
  }
  return bytes;
}

/** UTF-8 bytes of an actor id; ASCII ids (the usual node ids) skip the TextEncoder. */
export function encodeActorId(actor: string): Uint8Array {
  const length = actor.length;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const code = actor.charCodeAt(i);
    if (code >= 0x80) return encoder.encode(actor);
    out[i] = code;
  }
  return out;
}

/**
 * Decoded ids are interned: every stored object and context a shard decodes names the same few
 * node ids, so a decode returns the one string already made for those bytes. That saves
 * building a string per actor per decode and, more, lets `actorIdBytes` and the Map lookups
 * reuse the string's cached hash instead of hashing a fresh string each time. A direct-mapped
 * table of `internSlots` entries keyed by a hash of the bytes; a collision only costs a decode.
 */
const internSlots = 256;
const internedBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(internSlots).fill(undefined);
const internedIds: string[] = new Array<string>(internSlots).fill('');

/** FNV-1a over bytes[start, end), folded to a slot. */
function internSlotOf(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return (h ^ (h >>> 16)) & (internSlots - 1);
}

function internedAt(slot: number, bytes: Uint8Array, start: number, end: number): string | undefined {
  const cached = internedBytes[slot];
  if (cached === undefined || cached.length !== end - start) return undefined;
  for (let i = 0; i < cached.length; i++) if (cached[i] !== bytes[start + i]) return undefined;
  return internedIds[slot];
}

/** Decodes bytes[start, end) as UTF-8; returns undefined if they are not valid UTF-8. */
export function decodeActorId(bytes: Uint8Array, start: number, end: number): string | undefined {
  const slot = internSlotOf(bytes, start, end);
  const interned = internedAt(slot, bytes, start, end);
  if (interned !== undefined) return interned;
  const actor = decodeActorIdUncached(bytes, start, end);
  if (actor !== undefined) {
    const copy = new Uint8Array(end - start); // not bytes.slice: on a Buffer that is a view
    for (let i = start; i < end; i++) copy[i - start] = bytes[i]!;
    internedBytes[slot] = copy;
    internedIds[slot] = actor;
  }
  return actor;
}

function decodeActorIdUncached(bytes: Uint8Array, start: number, end: number): string | undefined {
  let ascii = '';
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    if (byte >= 0x80) return decodeUtf8(bytes, start, end);
    ascii += String.fromCharCode(byte);
  }
  return ascii;
}

/** Invalid UTF-8 decodes to U+FFFD replacements, which do not encode back to the same bytes. */
function decodeUtf8(bytes: Uint8Array, start: number, end: number): string | undefined {
  const input = bytes.subarray(start, end);
  const decoded = decoder.decode(input);
  const again = encoder.encode(decoded);
  if (again.length !== input.length) return undefined;
  for (let i = 0; i < again.length; i++) if (again[i] !== input[i]) return undefined;
  return decoded;
}

/** Checks an actor id given by our own caller; throws TypeError/RangeError naming `field`. */
export function checkActorId(actor: unknown, field = 'actor'): asserts actor is string {
  if (typeof actor !== 'string') throw new TypeError(`${field} must be a string`);
  if (checkedCache.has(actor)) return;
  if (actor.length === 0) throw new RangeError(`${field} must not be empty`);
  if (loneSurrogate.test(actor)) throw new RangeError(`${field} must be well-formed Unicode`);
  const sizeBytes = encodeActorId(actor).length;
  if (sizeBytes > limits.actorIdBytesMax) {
    throw new RangeError(`${field} is ${sizeBytes} bytes, over limits.actorIdBytesMax (${limits.actorIdBytesMax})`);
  }
  if (checkedCache.size >= cacheEntriesMax) checkedCache.clear();
  checkedCache.add(actor);
}
