/**
 * The compaction record filter that drops expired data (lib/storage record-filter.ts): a
 * stored object whose values have expired is rewritten with those values as tombstones that
 * keep their timestamp and expiry (lib/causality expireValues), so their bytes leave the
 * disk while their dots still supersede what they superseded. Tombstone purging drops the
 * rest after its grace period. Registered by the shard worker and the compaction pool's task.
 *
 * Safety margin: a value is dropped only `limits.clockSkewMsMax` after its expiry by this
 * shard's clock, so a node whose clock runs ahead cannot make a value vanish from replicas
 * that still serve it legitimately.
 */

import { limits } from '../base/limits.js';
import { decodeObject, encodeObject, expireValues, objectFormatVersion } from '../causality/index.js';
import { registerRecordFilter } from '../storage/index.js';

export const expiryFilterName = 'ringkv-expire-values';

/** Flag 1 of a stored object's header: some sibling carries an expiry (stored-object.ts). */
const expiringFlag = 1;

/**
 * Objects without an expiring sibling pass through undecoded. A value that does not decode is
 * kept as it is: reads report the corruption (KV_CORRUPTION); compaction must not stop on it.
 */
export function expireRecord(_key: Uint8Array, value: Uint8Array, nowMs: number): Uint8Array {
  if (value.length < 2 || value[0] !== objectFormatVersion || (value[1]! & expiringFlag) === 0) return value;
  let object;
  try {
    object = decodeObject(value);
  } catch {
    return value;
  }
  const expired = expireValues(object, nowMs - limits.clockSkewMsMax);
  return expired === object ? value : encodeObject(expired);
}

export function registerExpiryFilter(): void {
  registerRecordFilter(expiryFilterName, expireRecord);
}
