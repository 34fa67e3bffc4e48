/**
 * Version headers: a stored object with every value replaced by one shared placeholder — its
 * actors, counters, timestamps, expiries, kinds, mints and mint records, without the value
 * bytes. Pure, any thread; the shard's header cache (lib/shard/header-cache.ts) keeps them,
 * encoded (`encodeHeaders`: the stored-object format with empty values), so that a client write
 * need not read the key's whole stored object (a value-log read, a CRC and a decode for a
 * 10 KiB value) only to compute the key's next DVV set.
 *
 * Why it is exact. `update`, `discard` and `lwwWinner` read no value bytes (only whether a
 * sibling is a tombstone), and mint settling reads them only to compare the live minted
 * siblings of the result. So a write drafted on the headers gives the same result as on the
 * whole object whenever no placeholder survives into the draft, compared by identity (a
 * placeholder is never a client's array): then settling sees only real values. When one
 * survives (a blind write with the `siblings` policy keeps the old siblings; an lww write that
 * loses to a newer one keeps it), the result needs the old value bytes and the caller reads the
 * whole object instead. Merges are drafted the same way, and give up (undefined) as soon as
 * both sides hold one dot: the DVV sync then compares the two copies' values (dvv-set.ts sameDot).
 *
 * What headers cannot see: compaction's expiry filter (lib/shard/expiry-filter.ts) turns a
 * stored value whose expiry passed into a tombstone with the same dot, time and expiry, behind
 * the cache's back. Such a sibling is superseded by a draft exactly as its value was, and it
 * is a placeholder, so if it survives the caller reads the stored object. Two reads of kinds
 * remain, and both are guarded: `keepTtl` reads the newest live sibling's expiry (the caller
 * reads the object when a header holds an expiring value), and a value expiring at
 * `voidExpiresAtMs` would look like a voided twin once compacted (`encodeHeaders` refuses it).
 */

import { invariantsEnabled } from '../base/assert.js';
import { compareActors } from './actor-id.js';
import { checkSet, sync, voidExpiresAtMs } from './dvv-set.js';
import { settleMints } from './mint-records.js';
import { decodeObject, draftClientWrite, encodeObject, settleClientWrite, type ClientWrite, type StoredObject } from './stored-object.js';

/** The placeholder every value of a header object is, compared by identity. */
export const headerValue: Uint8Array = Object.freeze(new Uint8Array(0)) as Uint8Array;

/**
 * The headers of `object` in the stored-object format (stored-object.ts), every value emptied:
 * a few dozen bytes where the object may hold megabytes. Undefined when the object holds a
 * value expiring at `voidExpiresAtMs` (see above): such an object is not cached.
 */
export function encodeHeaders(object: StoredObject): Uint8Array | undefined {
  for (const entry of object) {
    for (const s of entry.siblings) if (s.value !== null && s.expiresAtMs !== undefined && s.expiresAtMs <= voidExpiresAtMs) return undefined;
  }
  return encodeObject(object, true);
}

/**
 * Decodes what `encodeHeaders` made: every value (an empty one included) is `headerValue`. A
 * real empty value read back as a placeholder only sends a write to the stored object, which is
 * always exact. Mint rids are views into `bytes`.
 */
export function decodeHeaders(bytes: Uint8Array): StoredObject {
  const object = decodeObject(bytes);
  for (const entry of object) {
    for (const sibling of entry.siblings) if (sibling.value !== null) (sibling as { value: Uint8Array | null }).value = headerValue;
  }
  return object;
}

/** The headers of `object` as objects (`decodeHeaders(encodeHeaders(object))`), or undefined. */
export function headersOf(object: StoredObject): StoredObject | undefined {
  const bytes = encodeHeaders(object);
  return bytes === undefined ? undefined : decodeHeaders(bytes);
}

/** Whether some sibling of `object` is a header placeholder. */
export function holdsHeaderValue(object: StoredObject): boolean {
  for (const entry of object) for (const sibling of entry.siblings) if (sibling.value === headerValue) return true;
  return false;
}

/** Whether some sibling of `object` is a value that expires. */
export function holdsExpiringValue(object: StoredObject): boolean {
  for (const entry of object) for (const sibling of entry.siblings) if (sibling.value !== null && sibling.expiresAtMs !== undefined) return true;
  return false;
}

/**
 * `applyClientWrite(object, write)` computed from `headers` (the headers of `object`): the same
 * result, or the same error, or undefined when the result needs `object`'s value bytes.
 */
export function applyClientWriteToHeaders(headers: StoredObject, write: ClientWrite): StoredObject | undefined {
  const draft = draftClientWrite(headers, write);
  return holdsHeaderValue(draft) ? undefined : settleClientWrite(headers, draft, write);
}

/**
 * `mergeReplicas(object, incoming)` computed from `headers` (the headers of `object`): the same
 * result, or undefined when it needs `object`'s value bytes (a sibling of it survives, or both
 * sides hold one dot).
 */
export function mergeIntoHeaders(headers: StoredObject, incoming: StoredObject): StoredObject | undefined {
  if (sharesDot(headers, incoming)) return undefined;
  const synced = sync(headers, incoming);
  if (holdsHeaderValue(synced)) return undefined;
  // What mergeReplicas does with a stored object.
  const merged = settleMints([headers, incoming], synced);
  if (invariantsEnabled()) checkSet(merged);
  return merged;
}

/** Whether some dot is held as a sibling by both `a` and `b` (both sorted by actor). */
function sharesDot(a: StoredObject, b: StoredObject): boolean {
  let j = 0;
  for (const x of a) {
    while (j < b.length && compareActors(b[j]!.actor, x.actor) < 0) j++;
    const y = b[j];
    if (y === undefined) return false;
    if (y.actor !== x.actor) continue;
    if (Math.min(x.counter, y.counter) > Math.max(x.counter - x.siblings.length, y.counter - y.siblings.length)) return true;
  }
  return false;
}
