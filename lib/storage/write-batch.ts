/**
 * The write-batch codec: the payload of one commit-log record, and the form in which a
 * frozen memtable is handed to a flush job. One batch is applied atomically.
 *
 *   batch  = [entry count u32 LE] entry*
 *   entry  = [kind u8] [key length varint] [key bytes] [value length varint] [value bytes]
 *   kind   = 0 value | 1 tombstone (tombstones carry a zero-length value)
 *
 * Keys are internal keys (internal-key.ts). Varints are LEB128, at most 5 bytes (< 2^32).
 * Frozen: batches reach the disk in the commit log. Decoding validates every length and
 * throws KV_CORRUPTION on anything malformed, though the WAL's CRC should catch it first.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';

export const enum EntryKind {
  value = 0,
  tombstone = 1,
}

export interface BatchEntry {
  kind: EntryKind;
  key: Uint8Array;
  value: Uint8Array;
}

const EMPTY = new Uint8Array(0);

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

export function encodedBatchBytes(entries: readonly BatchEntry[]): number {
  let total = 4;
  for (const e of entries) {
    total += 1 + varintBytes(e.key.length) + e.key.length + varintBytes(e.value.length) + e.value.length;
  }
  return total;
}

export function encodeBatch(entries: readonly BatchEntry[]): Uint8Array {
  const out = new Uint8Array(encodedBatchBytes(entries));
  new DataView(out.buffer).setUint32(0, entries.length, true);
  let pos = 4;
  for (const e of entries) {
    out[pos++] = e.kind;
    pos = writeVarint(out, pos, e.key.length);
    out.set(e.key, pos);
    pos += e.key.length;
    pos = writeVarint(out, pos, e.value.length);
    out.set(e.value, pos);
    pos += e.value.length;
  }
  return out;
}

function corrupt(what: string, offset: number): RingkvError {
  return new RingkvError(ErrorCode.corruption, `malformed write batch: ${what} at ${offset}`, { offset });
}

/** Decodes a batch; keys and values are views into `bytes`. */
export function decodeBatch(bytes: Uint8Array, visit: (kind: EntryKind, key: Uint8Array, value: Uint8Array) => void): number {
  if (bytes.length < 4) throw corrupt('short header', 0);
  const count = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
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
    const key = bytes.subarray(pos, pos + keyLength);
    pos += keyLength;
    const valueLength = readVarint();
    if (pos + valueLength > bytes.length) throw corrupt('value past end', pos);
    const value = valueLength === 0 ? EMPTY : bytes.subarray(pos, pos + valueLength);
    pos += valueLength;
    visit(kind, key, value);
  }
  if (pos !== bytes.length) throw corrupt('trailing bytes', pos);
  return count;
}
