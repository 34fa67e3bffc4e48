/**
 * The write-batch codec: the payload of one commit-log record, and the form in which a
 * frozen memtable is handed to a flush job. One batch is applied atomically.
 *
 *   batch  = [entry count u32 LE] entry*
 *   entry  = [kind u8] [key length varint] [key bytes] [value length varint] [value bytes]
 *   kind   = 0 value | 1 tombstone (tombstones carry a zero-length value)
 *
 * The engine encodes each write() once, straight from user keys (writeUserKeyEntry builds the
 * internal key in place), and the memtable keeps offsets into that buffer (decodeBatchLayout).
 *
 * Keys are internal keys (internal-key.ts). Varints are LEB128, at most 5 bytes (< 2^32).
 * Frozen: batches reach the disk in the commit log. Decoding validates every length and
 * throws KV_CORRUPTION on anything malformed, though the WAL's CRC should catch it first.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';

export const enum EntryKind {
  value = 0,
  tombstone = 1,
  /** Tables only, never in a batch: the value is a pointer into the value log (value-pointer.ts). */
  pointer = 2,
}

export interface BatchEntry {
  kind: EntryKind;
  key: Uint8Array;
  value: Uint8Array;
}

function varintBytes(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/** Bytes of the batch header (the entry count). */
export const BATCH_HEADER_BYTES = 4;

/** Encoded bytes of one entry with a key and a value of these lengths. */
export function batchEntryBytes(keyBytes: number, valueBytes: number): number {
  return 1 + varintBytes(keyBytes) + keyBytes + varintBytes(valueBytes) + valueBytes;
}

/** Writes the entry count of a batch at out[0..4). */
export function writeBatchHeader(out: Uint8Array, count: number): void {
  out[0] = count;
  out[1] = count >>> 8;
  out[2] = count >>> 16;
  out[3] = count >>> 24;
}

/**
 * Writes one entry at out[pos] whose internal key is [token u32 BE][userKey] (internal-key.ts),
 * without building that key: the bytes encodeBatch writes for it. Returns the position after
 * the entry.
 */
export function writeUserKeyEntry(out: Uint8Array, pos: number, kind: EntryKind, token: number, userKey: Uint8Array, value: Uint8Array): number {
  out[pos++] = kind;
  const keyLength = userKey.length + 4;
  pos = writeVarint(out, pos, keyLength);
  out[pos] = token >>> 24;
  out[pos + 1] = token >>> 16;
  out[pos + 2] = token >>> 8;
  out[pos + 3] = token;
  out.set(userKey, pos + 4);
  pos = writeVarint(out, pos + keyLength, value.length);
  out.set(value, pos);
  return pos + value.length;
}

function corrupt(what: string, offset: number): RingkvError {
  return new RingkvError(ErrorCode.corruption, `malformed write batch: ${what} at ${offset}`, { offset });
}

/**
 * Decodes a batch as offsets into `bytes` (no views: the memtable keeps offsets); returns the
 * entry count. Validates every length and throws KV_CORRUPTION on anything malformed.
 */
export function decodeBatchLayout(
  bytes: Uint8Array,
  visit: (kind: EntryKind, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number) => void,
): number {
  if (bytes.length < 4) throw corrupt('short header', 0);
  const count = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
  let pos = 4;
  const readVarint = (): number => {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 5; i++) {
      if (pos >= bytes.length) throw corrupt('truncated varint', pos);
      const b = bytes[pos++]!;
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 128;
    }
    throw corrupt('overlong varint', pos);
  };
  for (let i = 0; i < count; i++) {
    const kind = bytes[pos++];
    if (kind !== EntryKind.value && kind !== EntryKind.tombstone) throw corrupt('bad entry kind', pos - 1);
    const keyLength = readVarint();
    if (pos + keyLength > bytes.length) throw corrupt('key past end', pos);
    const keyStart = pos;
    pos += keyLength;
    const valueLength = readVarint();
    if (pos + valueLength > bytes.length) throw corrupt('value past end', pos);
    const valueStart = pos;
    pos += valueLength;
    visit(kind, keyStart, keyStart + keyLength, valueStart, pos);
  }
  if (pos !== bytes.length) throw corrupt('trailing bytes', pos);
  return count;
}
