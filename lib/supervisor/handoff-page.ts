/**
 * The stream page of a membership-change handoff (handoff.ts): one page of a partition's
 * entries sent from a current replica to a new owner, and its check. Pure, main thread.
 *
 * Reply layout (msgpack object; the CRC guards the entries in transit):
 *   {t:'handoff-page-reply', entries: [{key: bin, object: bin}...], nextAfterKey?: bin, crc: u32}
 *   crc = CRC32C over, per entry in order: u32 BE key length, key, u32 BE object length, object.
 * Frozen: the tag, the field names and the CRC layout reach the wire.
 */

import { crc32c } from '../base/crc32c.js';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';

export const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array;

/** CRC32C of a page's entries (see the header for the layout). */
export function pageCrc(entries: readonly { key: Uint8Array; object: Uint8Array }[]): number {
  const length = new Uint8Array(4);
  const view = new DataView(length.buffer);
  let crc = 0;
  for (const { key, object } of entries) {
    view.setUint32(0, key.length);
    crc = crc32c(key, crc32c(length, crc));
    view.setUint32(0, object.length);
    crc = crc32c(object, crc32c(length, crc));
  }
  return crc;
}

export interface StreamPage {
  entries: { key: Uint8Array; object: Uint8Array }[];
  nextAfterKey?: Uint8Array;
}

/** Validates an untrusted page reply; corruption (a CRC mismatch) is KV_CORRUPTION. */
export function parsePageReply(reply: unknown): StreamPage {
  const r = reply as { t?: unknown; entries?: unknown; nextAfterKey?: unknown; crc?: unknown; code?: unknown; message?: unknown } | null | undefined;
  if (r === undefined || r === null) throw new RingkvError(ErrorCode.unavailable, 'no reply', {});
  if (r.t === 'handoff-error') throw new RingkvError(ErrorCode.unavailable, `source refused: ${String(r.code)} ${String(r.message).slice(0, 200)}`, {});
  if (r.t !== 'handoff-page-reply' || !Array.isArray(r.entries) || typeof r.crc !== 'number') throw new RingkvError(ErrorCode.badRequest, 'malformed page reply', {});
  if (r.entries.length > limits.handoffPageEntries) throw new RingkvError(ErrorCode.tooLarge, 'page with too many entries', {});
  const entries = r.entries.map((e: unknown) => {
    const entry = e as { key?: unknown; object?: unknown } | null;
    if (entry === null || !isBytes(entry.key) || !isBytes(entry.object) || entry.key.length === 0) throw new RingkvError(ErrorCode.badRequest, 'malformed page entry', {});
    return { key: entry.key, object: entry.object };
  });
  if (r.nextAfterKey !== undefined && !isBytes(r.nextAfterKey)) throw new RingkvError(ErrorCode.badRequest, 'malformed page cursor', {});
  if (pageCrc(entries) !== r.crc) throw new RingkvError(ErrorCode.corruption, 'stream page failed its CRC32C check', {});
  return r.nextAfterKey === undefined ? { entries } : { entries, nextAfterKey: r.nextAfterKey };
}

