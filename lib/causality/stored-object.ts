/**
 * The stored object: a key's whole reconciled state on one replica (its DVV set: siblings,
 * causal history, timestamps) as the bytes the storage engine keeps, plus the operations the
 * shard runs on it. Pure, any thread; the shard that owns the key calls it.
 *
 * A replica write reads the key's stored object, reconciles, and writes the result
 * (DESIGN.md §3): `applyClientWrite` for a write this replica coordinates, `mergeReplicas`
 * for state arriving from another replica (replication, read repair, hints, handoff,
 * anti-entropy), `readView` for a get. Limits apply on the client path only: a merge must carry
 * whatever replicas already hold (RELIABILITY.md §2.5, C8).
 *
 * Format (version 1, all integers little-endian; u53 = two u32 halves, low first, high half
 * < 2^21, so the value is an integer in [0, 2^53 − 1]):
 *
 *   object  ┌─────────┬───────────┬─────────────┬─────────┬─────┬─────────────┐
 *           │ version │ flags = 0 │ actor count │ actor 0 │ ... │ actor n − 1 │  no trailing bytes
 *           │ u8 = 1  │ u8        │ u16         │         │     │             │
 *           └─────────┴───────────┴─────────────┴─────────┴─────┴─────────────┘
 *   actor   ┌───────────┬──────────────────┬─────────┬───────────────┬───────────┬─────┐
 *           │ id length │ actor id (UTF-8) │ counter │ sibling count │ sibling 0 │ ... │
 *           │ u8 ≥ 1    │ length bytes     │ u53 ≥ 1 │ u32 ≤ counter │           │     │
 *           └───────────┴──────────────────┴─────────┴───────────────┴───────────┴─────┘
 *   sibling ┌─────────────┬─────────────────────┬──────┬──────────────┬─────────────┐
 *           │ timestampMs │ expiresAtMs         │ kind │ value length │ value bytes │  length and bytes only
 *           │ u53         │ u53, only if flag 1 │ u8   │ u32          │             │  when kind = 0
 *           └─────────────┴─────────────────────┴──────┴──────────────┴─────────────┘
 *   mints (only if flag 2), after expiresAtMs in each sibling: rid length u8 (0: no mint), then
 *   the rid and its attempt u8; and after each actor's last sibling: a record count u8, then
 *   per record (newest first) counter u53, timestampMs u53, attempt u8, rid length u8 ≥ 1, rid
 *   (mint-records.ts).
 *   kind: 0 = value, 1 = tombstone; nothing else. Siblings are newest first: sibling k of an
 *   actor with counter n is the value of its event n − k (its dot), as in the DVV set.
 *   flags: bit 0 (1) = every sibling carries expiresAtMs (0: this sibling never expires); set
 *   exactly when some sibling expires, so an object without TTLs encodes as before and each
 *   state still has one encoding (read repair compares bytes). Bit 1 (2) = mints present: set
 *   exactly when some sibling carries a mint or some actor a record. Other bits must be 0.
 *
 * Common case — one actor with an 8-byte id holding one 100-byte value: 4 + 21 + 13 + 100 =
 * 138 bytes. Allowed: zero actors (the empty set), actors with no siblings (history only),
 * empty values. Rejected as KV_CORRUPTION: another version, truncation,
 * trailing bytes, an unknown flag bit, an empty or non-UTF-8 actor id, actors out of order or repeated, a counter
 * of 0, more siblings than the counter, an unknown kind. There is no checksum here: the
 * engine's block and log CRC32C guard the bytes; this codec guards the structure. Decoded
 * values are views into the input bytes, which must not change afterwards. Encoded objects
 * may share their ArrayBuffer with other allocations (Node's buffer pool): copy them, never
 * transfer `.buffer`.
 *
 * Conflict policy `lww` (last writer wins by (timestampMs, actor id)) keeps one sibling per
 * client write and shows one per read; it loses concurrent writes by design and lets clock
 * skew pick the winner, so `siblings` is the default. An lww write is still an ordinary
 * causal event, so replicas of an lww key merge like any other.
 *
 * Frozen: the version byte, the layouts and the kind values reach disk. Changing any of them
 * bumps `objectFormatVersion`.
 */

import { Buffer } from 'node:buffer';
import { assert, invariantsEnabled } from '../base/assert.js';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { actorIdBytes, checkActorId, compareActors, decodeActorId } from './actor-id.js';
import { checkSet, join, lwwWinner, siblingCount, sync, update, type DvvEntry, type DvvSet, type Mint, type MintRecord, type Sibling } from './dvv-set.js';
import { settleMints } from './mint-records.js';
import { counterMax, decodeContext, mergeVectors, readU32, readU53, writeU32, writeU53, type VersionVector } from './version-vector.js';

/** A key's stored state: its DVV set. */
export type StoredObject = DvvSet;

/** How a store settles concurrent writes. `lww` loses all but one of them, by design. */
export type ConflictPolicy = 'siblings' | 'lww';

/** Frozen. */
export const objectFormatVersion = 1;
/** Frozen. */
export const SiblingKind = { value: 0, tombstone: 1 } as const;

const headerBytes = 4;
const actorFixedBytes = 1 + 8 + 4;
const siblingFixedBytes = 8 + 1;
/** Header flag: siblings carry expiresAtMs. */
const flagExpiry = 1;
/** Header flag: siblings carry a mint field, actors a record list. */
const flagMints = 2;
const ridLengthMax = 0xff;

const mintBytes = (mint: Mint | undefined): number => (mint === undefined ? 1 : 2 + mint.rid.length);
const recordBytes = (record: MintRecord): number => 8 + 8 + 1 + 1 + record.rid.length;

/** `emptyValues`: every value is encoded as empty (version-headers.ts: the object's headers). */
export function encodeObject(object: StoredObject, emptyValues = false): Uint8Array {
  assert(object.length <= 0xffff, 'too many actors to encode');
  const ids = new Array<Uint8Array>(object.length);
  let sizeBytes = headerBytes;
  let siblings = 0;
  let expiring = false;
  let mintBytesTotal = 0;
  let minted = false;
  for (let k = 0; k < object.length; k++) {
    const entry = object[k]!;
    const id = actorIdBytes(entry.actor);
    ids[k] = id;
    sizeBytes += actorFixedBytes + id.length;
    mintBytesTotal += 1;
    for (const record of entry.records ?? []) {
      mintBytesTotal += recordBytes(record);
      minted = true;
    }
    for (const { value, expiresAtMs, mint } of entry.siblings) {
      sizeBytes += siblingFixedBytes + (value === null ? 0 : 4 + (emptyValues ? 0 : value.length));
      if (expiresAtMs !== undefined) expiring = true;
      if (mint !== undefined) minted = true;
      mintBytesTotal += mintBytes(mint);
      siblings++;
    }
  }
  if (expiring) sizeBytes += 8 * siblings;
  if (minted) sizeBytes += mintBytesTotal;
  // Node's pooled allocation: about 7x cheaper than a fresh ArrayBuffer for small objects.
  const pooled = Buffer.allocUnsafe(sizeBytes);
  const out = new Uint8Array(pooled.buffer, pooled.byteOffset, sizeBytes);
  out[0] = objectFormatVersion;
  out[1] = (expiring ? flagExpiry : 0) | (minted ? flagMints : 0);
  out[2] = object.length;
  out[3] = object.length >>> 8;
  let offset = headerBytes;
  for (let k = 0; k < object.length; k++) offset = encodeEntry(out, offset, object[k]!, ids[k]!, expiring, minted, emptyValues);
  assert(offset === sizeBytes, 'stored object size mismatch');
  return out;
}

function encodeMint(out: Uint8Array, offset: number, mint: Mint | undefined): number {
  if (mint === undefined) {
    out[offset] = 0;
    return offset + 1;
  }
  assert(mint.rid.length >= 1 && mint.rid.length <= ridLengthMax && mint.attempt >= 0 && mint.attempt <= 0xff, 'mint out of range');
  out[offset] = mint.rid.length;
  out.set(mint.rid, offset + 1);
  out[offset + 1 + mint.rid.length] = mint.attempt;
  return offset + 2 + mint.rid.length;
}

function encodeRecords(out: Uint8Array, start: number, records: readonly MintRecord[]): number {
  assert(records.length <= 0xff, 'too many mint records');
  out[start] = records.length;
  let offset = start + 1;
  for (const record of records) {
    writeU53(out, offset, record.counter);
    writeU53(out, offset + 8, record.timestampMs);
    assert(record.rid.length >= 1 && record.rid.length <= ridLengthMax && record.attempt >= 0 && record.attempt <= 0xff, 'mint record out of range');
    out[offset + 16] = record.attempt;
    out[offset + 17] = record.rid.length;
    out.set(record.rid, offset + 18);
    offset += 18 + record.rid.length;
  }
  return offset;
}

function encodeEntry(out: Uint8Array, start: number, entry: DvvEntry, id: Uint8Array, expiring: boolean, minted: boolean, emptyValues: boolean): number {
  assert(id.length >= 1 && id.length <= 0xff, 'actor id length out of range');
  out[start] = id.length;
  out.set(id, start + 1);
  let offset = start + 1 + id.length;
  writeU53(out, offset, entry.counter);
  writeU32(out, offset + 8, entry.siblings.length);
  offset += 12;
  for (const { value, timestampMs, expiresAtMs, mint } of entry.siblings) {
    writeU53(out, offset, timestampMs);
    if (expiring) {
      writeU53(out, offset + 8, expiresAtMs ?? 0);
      offset += 8;
    }
    if (minted) offset = encodeMint(out, offset + 8, mint) - 8;
    offset += siblingFixedBytes;
    if (value === null) {
      out[offset - 1] = SiblingKind.tombstone;
    } else if (emptyValues) {
      out[offset - 1] = SiblingKind.value;
      writeU32(out, offset, 0);
      offset += 4;
    } else {
      out[offset - 1] = SiblingKind.value;
      writeU32(out, offset, value.length);
      out.set(value, offset + 4);
      offset += 4 + value.length;
    }
  }
  return minted ? encodeRecords(out, offset, entry.records ?? []) : offset;
}

function corrupt(message: string, offset: number): RingkvError {
  return new RingkvError(ErrorCode.corruption, `stored object: ${message}`, { offset });
}

/** Decodes a stored object; throws RingkvError KV_CORRUPTION on anything malformed. */
export function decodeObject(bytes: Uint8Array): StoredObject {
  if (bytes.length < headerBytes) throw corrupt('truncated header', 0);
  if (bytes[0] !== objectFormatVersion) throw corrupt(`unknown format version ${bytes[0]}`, 0);
  const flags = bytes[1]!;
  if ((flags & ~(flagExpiry | flagMints)) !== 0) throw corrupt(`unknown flags ${flags}`, 1);
  const expiring = (flags & flagExpiry) !== 0;
  const minted = (flags & flagMints) !== 0;
  const count = bytes[2]! | (bytes[3]! << 8);
  const object: DvvEntry[] = [];
  let offset = headerBytes;
  for (let k = 0; k < count; k++) {
    const idBytes = bytes[offset] ?? 0;
    const idEnd = offset + 1 + idBytes;
    if (idBytes === 0 || idEnd + 12 > bytes.length) throw corrupt('truncated or empty actor', offset);
    const actor = decodeActorId(bytes, offset + 1, idEnd);
    if (actor === undefined) throw corrupt('actor id is not UTF-8', offset);
    if (k > 0 && compareActors(object[k - 1]!.actor, actor) >= 0) throw corrupt('actors out of order or repeated', offset);
    const counter = readU53(bytes, idEnd);
    if (counter < 1) throw corrupt('counter out of range', idEnd);
    const siblingCount = readU32(bytes, idEnd + 8);
    if (siblingCount > counter) throw corrupt('more siblings than events', idEnd + 8);
    const siblings: Sibling[] = [];
    offset = idEnd + 12;
    for (let d = 0; d < siblingCount; d++) offset = decodeSibling(bytes, offset, siblings, expiring, minted);
    if (!minted) {
      object.push({ actor, counter, siblings });
      continue;
    }
    const records: MintRecord[] = [];
    offset = decodeRecords(bytes, offset, records);
    object.push(records.length === 0 ? { actor, counter, siblings } : { actor, counter, siblings, records });
  }
  if (offset !== bytes.length) throw corrupt('trailing bytes', offset);
  return object;
}

function decodeRid(bytes: Uint8Array, offset: number): Uint8Array {
  const length = bytes[offset] ?? 0;
  if (length === 0 || offset + 1 + length > bytes.length) throw corrupt('truncated or empty rid', offset);
  return bytes.subarray(offset + 1, offset + 1 + length);
}

function decodeRecords(bytes: Uint8Array, start: number, records: MintRecord[]): number {
  if (start >= bytes.length) throw corrupt('truncated mint records', start);
  const count = bytes[start]!;
  let offset = start + 1;
  for (let r = 0; r < count; r++) {
    if (offset + 18 > bytes.length) throw corrupt('truncated mint record', offset);
    const counter = readU53(bytes, offset);
    const timestampMs = readU53(bytes, offset + 8);
    if (counter < 1 || timestampMs < 0) throw corrupt('mint record out of range', offset);
    const attempt = bytes[offset + 16]!;
    const rid = decodeRid(bytes, offset + 17);
    records.push({ counter, timestampMs, attempt, rid });
    offset += 18 + rid.length;
  }
  return offset;
}

function decodeMint(bytes: Uint8Array, offset: number): [Mint | undefined, number] {
  if (offset >= bytes.length) throw corrupt('truncated mint', offset);
  if (bytes[offset] === 0) return [undefined, offset + 1];
  const rid = decodeRid(bytes, offset);
  const end = offset + 1 + rid.length;
  if (end >= bytes.length) throw corrupt('truncated mint', offset);
  return [{ rid, attempt: bytes[end]! }, end + 1];
}

function decodeSibling(bytes: Uint8Array, offset: number, siblings: Sibling[], expiring: boolean, minted: boolean): number {
  if (offset + siblingFixedBytes + (expiring ? 8 : 0) > bytes.length) throw corrupt('truncated sibling', offset);
  const timestampMs = readU53(bytes, offset);
  if (timestampMs < 0) throw corrupt('timestamp out of range', offset);
  let expiresAtMs: number | undefined;
  if (expiring) {
    const at = readU53(bytes, offset + 8);
    if (at < 0) throw corrupt('expiry out of range', offset + 8);
    expiresAtMs = at || undefined;
    offset += 8;
  }
  let mint: Mint | undefined;
  if (minted) {
    let end: number;
    [mint, end] = decodeMint(bytes, offset + 8);
    offset = end - 8;
    if (offset + siblingFixedBytes > bytes.length) throw corrupt('truncated sibling', offset);
  }
  const kind = bytes[offset + 8];
  offset += siblingFixedBytes;
  if (kind === SiblingKind.tombstone) {
    const tombstone: Sibling = expiresAtMs === undefined ? { value: null, timestampMs } : { value: null, timestampMs, expiresAtMs };
    siblings.push(mint === undefined ? tombstone : { ...tombstone, mint });
    return offset;
  }
  if (kind !== SiblingKind.value) throw corrupt(`unknown sibling kind ${kind}`, offset - 1);
  if (offset + 4 > bytes.length) throw corrupt('truncated value length', offset);
  const valueEnd = offset + 4 + readU32(bytes, offset);
  if (valueEnd > bytes.length) throw corrupt('truncated value', offset);
  const value = bytes.subarray(offset + 4, valueEnd);
  const sibling: Sibling = expiresAtMs === undefined ? { value, timestampMs } : { value, timestampMs, expiresAtMs };
  siblings.push(mint === undefined ? sibling : { ...sibling, mint });
  return valueEnd;
}

// --- what the shard calls ---

export interface ClientWrite {
  /** The new value, or null for a delete (a tombstone). */
  readonly value: Uint8Array | null;
  /** The context of an earlier get (opaque bytes or decoded); undefined for a blind write. */
  readonly context: Uint8Array | VersionVector | undefined;
  /** This replica's node id: the coordinator of the write. */
  readonly actor: string;
  readonly timestampMs: number;
  readonly policy: ConflictPolicy;
  /** KV_TOO_MANY_SIBLINGS when the result would hold more. */
  readonly siblingsMax: number;
  /** Wall-clock ms from which the new value is expired (expiry.ts); undefined: never. */
  readonly expiresAtMs?: number | undefined;
  /** The client write (rid, attempt) this event is minted for (mint-records.ts); undefined: none. */
  readonly mint?: Mint | undefined;
}

/**
 * A write this replica coordinates. Supersedes exactly the siblings the context covers; the
 * rest stay as concurrent siblings (with `lww`, one sibling survives: the newest by
 * (timestampMs, actor)). Throws KV_BAD_CONTEXT for a malformed context or one that would grow
 * the version vector past `limits.contextEntriesMax`, and KV_TOO_MANY_SIBLINGS past
 * `siblingsMax`; nothing is stored then.
 */
export function applyClientWrite(stored: StoredObject | undefined, write: ClientWrite): StoredObject {
  return settleClientWrite(stored ?? [], draftClientWrite(stored, write), write);
}

/**
 * The first step of `applyClientWrite`: the new event (and, with `lww`, the last writer), before
 * mints are settled and the siblings limit applies. Reads no value bytes (version-headers.ts
 * runs it on an object whose values are placeholders). Throws what `applyClientWrite` throws
 * for the write and the context.
 */
export function draftClientWrite(stored: StoredObject | undefined, write: ClientWrite): StoredObject {
  checkClientWrite(write);
  const before = stored ?? [];
  const context = write.context === undefined ? [] : ArrayBuffer.isView(write.context) ? decodeContext(write.context) : write.context;
  const plain: Sibling =
    write.expiresAtMs === undefined ? { value: write.value, timestampMs: write.timestampMs } : { value: write.value, timestampMs: write.timestampMs, expiresAtMs: write.expiresAtMs };
  const sibling: Sibling = write.mint === undefined ? plain : { ...plain, mint: write.mint };
  const floor = freshCounterFloor(write.timestampMs);
  const next = update(before, context, sibling, write.actor, floor);
  if (next.length > limits.contextEntriesMax) checkVectorGrowth(before, next, write.actor);
  if (write.policy !== 'lww' || siblingCount(next) <= 1) return next;
  // One event instead: the last writer among the new write and what the context did not
  // see, written as having seen everything (the new write may lose to an older one).
  // An older winner re-written as a new event is not that write's mint any more.
  const winner = lwwWinner(next)!;
  return update(before, mergeVectors(join(before), context), winner === sibling ? sibling : withoutMint(winner), write.actor, floor);
}

/** The second step of `applyClientWrite`: mints settled against `before`, the siblings limit. */
export function settleClientWrite(before: StoredObject, draft: StoredObject, write: ClientWrite): StoredObject {
  const next = settleMints([before], draft);
  const siblings = siblingCount(next);
  if (siblings > write.siblingsMax) {
    throw new RingkvError(ErrorCode.tooManySiblings, `the key would hold ${siblings} siblings, over ${write.siblingsMax}`, {
      siblings,
      siblingsMax: write.siblingsMax,
    });
  }
  if (invariantsEnabled()) checkSet(next);
  return next;
}

function withoutMint(sibling: Sibling): Sibling {
  if (sibling.mint === undefined) return sibling;
  const { mint: _mint, ...rest } = sibling;
  return rest;
}

/** Fresh-entry counters advance this many per millisecond of the write's timestamp. */
export const freshCountersPerMs = 1_000;
/** Floors stop growing here (in 2112) so that a counter keeps room below counterMax. */
const freshFloorMax = 2 ** 52;

/**
 * The counter a replica's first event on a key starts above (dvv-set.ts `update`): the write's
 * wall-clock time in microseconds. Tombstone purging (lib/supervisor/purge.ts) drops a key's
 * record only a grace period (days) after its delete, so the first event of the key's next
 * life at this replica is at least that much later than the first event of the purged one, and
 * its floor is above every counter the purged life reached unless that life made more than one
 * write per microsecond on this key through this replica. Only this replica's clock matters:
 * each actor mints its own counters. A clock that steps back by more than the grace period
 * across a purge defeats it; contexts forged by a client can too (they already can supersede
 * anything). Unlike Riak's fix (a new actor epoch per fresh key), vectors do not grow.
 */
export function freshCounterFloor(timestampMs: number): number {
  return Math.min(timestampMs * freshCountersPerMs, freshFloorMax);
}

/** A client's context may not grow a key's version vector past the limit; replicas may. */
function checkVectorGrowth(before: StoredObject, next: StoredObject, actor: string): void {
  const actorIsNew = !before.some((entry) => entry.actor === actor);
  if (next.length > before.length + (actorIsNew ? 1 : 0)) {
    throw new RingkvError(ErrorCode.badContext, 'bad causal context: names too many actors', {
      actors: next.length,
      entriesMax: limits.contextEntriesMax,
    });
  }
}

function checkClientWrite(write: ClientWrite): void {
  checkActorId(write.actor, 'actor');
  if (write.value !== null && !(write.value instanceof Uint8Array)) throw new TypeError('value must be a Uint8Array or null');
  const { timestampMs, siblingsMax, policy } = write;
  if (!Number.isInteger(timestampMs) || timestampMs < 0 || timestampMs > counterMax) {
    throw new RangeError('timestampMs must be an integer in [0, 2^53 - 1]');
  }
  if (!Number.isInteger(siblingsMax) || siblingsMax < 1) throw new RangeError('siblingsMax must be a positive integer');
  const { expiresAtMs } = write;
  if (expiresAtMs !== undefined && (!Number.isInteger(expiresAtMs) || expiresAtMs < 1 || expiresAtMs > counterMax)) {
    throw new RangeError('expiresAtMs must be an integer in [1, 2^53 - 1]');
  }
  if (policy !== 'siblings' && policy !== 'lww') throw new TypeError("policy must be 'siblings' or 'lww'");
  const { mint } = write;
  if (mint !== undefined && (!(mint.rid instanceof Uint8Array) || mint.rid.length < 1 || mint.rid.length > ridLengthMax || !Number.isInteger(mint.attempt) || mint.attempt < 0 || mint.attempt > 0xff)) {
    throw new RangeError('mint must be a rid of 1-255 bytes and an attempt in [0, 255]');
  }
}

/** Merges state from another replica. Never limited, never loses a concurrent sibling. */
export function mergeReplicas(local: StoredObject | undefined, incoming: StoredObject): StoredObject {
  const merged = local === undefined ? settleMints([], incoming) : settleMints([local, incoming], sync(local, incoming));
  if (invariantsEnabled()) checkSet(merged);
  return merged;
}

/**
 * Whether the key holds nothing but tombstones, so that its record could be dropped. Only
 * once every replica has the tombstones: the grace period that ensures it comes later.
 */
export function canPurge(stored: StoredObject): boolean {
  let tombstones = 0;
  for (const entry of stored) {
    for (const sibling of entry.siblings) {
      if (sibling.value !== null) return false;
      tombstones++;
    }
  }
  return tombstones > 0;
}
