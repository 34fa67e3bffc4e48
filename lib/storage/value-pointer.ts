/**
 * Key-value separation (WiscKey, Lu et al. FAST 2016; RocksDB BlobDB; TiKV Titan; Badger):
 * the codec of a value pointer, the bytes an SSTable entry of kind `pointer` holds instead of
 * a large value. Pure codec, any thread.
 *
 * The value log is the commit log itself. A value is written once, inside its write batch, in
 * a commit-log record that the group commit already CRCs and fsyncs (wal-format.ts). When the
 * memtable is flushed, every value of at least `valueSeparationBytes` becomes a pointer to
 * where it already lies in that commit log, and the log is kept (listed in the manifest as a
 * value-log file) instead of deleted. Compaction then moves 17-byte pointers, not values.
 * Value-log garbage collection (value-log-gc.ts) rewrites the still-live values of a mostly
 * dead file through the ordinary write path and then deletes the file.
 *
 * Pointer layout (17 bytes, little-endian, frozen: it reaches the disk inside SSTables):
 *
 *   0          1                5                9                13               17
 *   ┌──────────┬────────────────┬────────────────┬────────────────┬────────────────┐
 *   │ ver u8=1 │ fileNumber u32 │ offset u32     │ length u32     │ masked crc32c  │
 *   └──────────┴────────────────┴────────────────┴────────────────┴────────────────┘
 *   fileNumber  the commit log ("000123.wal") that holds the value
 *   offset      of the value's first byte from the start of that file
 *   length      of the value in bytes (the value is bytes [offset, offset + length))
 *   crc         maskCrc(crc32c(value)) (crc32c.ts): every read of a value checks it, so a
 *               flipped bit in the value log is KV_CORRUPTION, never returned as data. (The
 *               record CRC of the commit log covers a whole batch: too much to check per get.)
 *
 * Corner cases: a pointer of another length or version is KV_CORRUPTION; so is one whose range
 * lies beyond its file's end. File numbers and offsets stay below 2^32: files roll at the
 * memtable budget (limits.memtableBytesMax = 1 GiB) and file numbers grow by a few per flush.
 */

import { crc32c, maskCrc } from '../base/crc32c.js';
import { ErrorCode, RingkvError } from '../base/errors.js';

/** Frozen. */
export const VALUE_POINTER_BYTES = 17;
/** Frozen. */
export const VALUE_POINTER_VERSION = 1;

export interface ValuePointer {
  fileNumber: number;
  offset: number;
  length: number;
  /** Masked CRC32C of the value. */
  crc: number;
}

function putU32(out: Uint8Array, at: number, n: number): void {
  out[at] = n;
  out[at + 1] = n >>> 8;
  out[at + 2] = n >>> 16;
  out[at + 3] = n >>> 24;
}

function getU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** The pointer to `value`, found at `offset` of commit log `fileNumber`. */
export function encodeValuePointer(fileNumber: number, offset: number, value: Uint8Array): Uint8Array {
  if (!(fileNumber >= 0 && fileNumber < 2 ** 32 && offset >= 0 && offset + value.length < 2 ** 32)) {
    throw new RangeError(`value pointer out of range: file ${fileNumber}, offset ${offset}`);
  }
  const out = new Uint8Array(VALUE_POINTER_BYTES);
  out[0] = VALUE_POINTER_VERSION;
  putU32(out, 1, fileNumber);
  putU32(out, 5, offset);
  putU32(out, 9, value.length);
  putU32(out, 13, maskCrc(crc32c(value)));
  return out;
}

/** Decodes a pointer; throws KV_CORRUPTION if it is not one. */
export function decodeValuePointer(bytes: Uint8Array): ValuePointer {
  if (bytes.length !== VALUE_POINTER_BYTES || bytes[0] !== VALUE_POINTER_VERSION) {
    throw new RingkvError(ErrorCode.corruption, `malformed value pointer (${bytes.length} bytes, version ${bytes[0]})`, {});
  }
  return { fileNumber: getU32(bytes, 1), offset: getU32(bytes, 5), length: getU32(bytes, 9), crc: getU32(bytes, 13) };
}

/** Whether `bytes` is a pointer to the value at `offset` of file `fileNumber` (no allocation). */
export function pointerNames(bytes: Uint8Array, fileNumber: number, offset: number): boolean {
  return bytes.length === VALUE_POINTER_BYTES && bytes[0] === VALUE_POINTER_VERSION && getU32(bytes, 1) === fileNumber && getU32(bytes, 5) === offset;
}

/** Checks a value read through `pointer`; throws KV_CORRUPTION naming the file and offset. */
export function checkPointedValue(pointer: ValuePointer, value: Uint8Array, file: string): void {
  if (maskCrc(crc32c(value)) !== pointer.crc) {
    throw new RingkvError(ErrorCode.corruption, `value log ${file}: checksum mismatch for the value at offset ${pointer.offset}`, {
      file,
      offset: pointer.offset,
    });
  }
}
