/**
 * The commit-log (WAL) byte format: file header, record framing, checksums. Pure codec, no IO;
 * used by the shard thread's WalWriter and by recovery (wal-reader.ts).
 *
 * Follows LevelDB's log format (doc/log_format.md: CRC32C + length + type per record) without
 * its 32 KiB block fragmentation: a record holds one whole write batch, up to
 * `limits.walRecordBytesMax`, so one group commit is one contiguous write.
 *
 * File layout (all integers little-endian):
 *
 *   offset 0  ┌────────┬─────────┬──────────────┐
 *             │ magic  │ version │ reserved = 0 │   file header, 8 bytes
 *             │ 4 B    │ u8 = 1  │ 3 B          │   magic = "RKVW" (52 4B 56 57)
 *   offset 8  ├────────┴─────────┴──────────────┴──────────────────────────┐
 *             │ record 0 │ record 1 │ ... │ record n-1 │ (torn tail?)      │
 *             └─────────────────────────────────────────────────────────────┘
 *
 *   record    ┌───────────────┬──────────────┬─────────┬────────────────────┐
 *             │ masked crc32c │ payload len  │ type u8 │ payload            │
 *             │ u32 LE        │ u32 LE       │         │ `len` bytes        │
 *             └───────────────┴──────────────┴─────────┴────────────────────┘
 *             header = 9 bytes. crc = maskCrc(crc32c(type byte ‖ payload)); the type byte and
 *             the payload are adjacent, so the CRC runs over one contiguous range.
 *
 * Record types: 0 is invalid (zero-filled space never parses as a record), 1 = a full record
 * whose payload is one opaque encoded write batch. Other values are invalid in version 1.
 *
 * Corner cases:
 * - An empty payload (len 0) is a valid record.
 * - A file shorter than 8 bytes never had a durable header (the first sync covers the header),
 *   so nothing in it was acknowledged: recovery treats it as an empty log.
 * - A complete header with the wrong magic or non-zero reserved bytes is corruption; a different
 *   version is KV_INCOMPATIBLE.
 * - The length field is not covered by the CRC directly, but it selects the range the CRC runs
 *   over, so a damaged length fails the check.
 *
 * Frozen: the magic, the version, both header layouts, the CRC masking and the type values reach
 * disk. Changing any of them bumps `walFormatVersion`.
 */

import { crc32c, maskCrc } from '../base/crc32c.js';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';

/** Frozen. */
export const walMagic: readonly number[] = [0x52, 0x4b, 0x56, 0x57];
/** Frozen. */
export const walFormatVersion = 1;
/** Frozen. */
export const walFileHeaderBytes = 8;
/** Frozen. */
export const walRecordHeaderBytes = 9;
/** Frozen. */
export const WalRecordType = { invalid: 0, full: 1 } as const;

export function encodeWalFileHeader(): Uint8Array {
  const header = new Uint8Array(walFileHeaderBytes);
  header.set(walMagic, 0);
  header[4] = walFormatVersion;
  return header;
}

/**
 * Checks the file header of `bytes` (a whole log file). Returns false if the header is
 * incomplete (the file is shorter than a header); throws if a complete header is wrong.
 */
export function checkWalFileHeader(bytes: Uint8Array, file: string): boolean {
  if (bytes.length < walFileHeaderBytes) return false;
  for (let i = 0; i < walMagic.length; i++) {
    if (bytes[i] !== walMagic[i]) {
      throw new RingkvError(ErrorCode.corruption, `${file} is not a ringkv commit log (bad magic)`, { file, offset: 0 });
    }
  }
  if (bytes[4] !== walFormatVersion) {
    throw new RingkvError(
      ErrorCode.incompatible,
      `${file} has commit-log format version ${bytes[4]}, this build reads version ${walFormatVersion}`,
      { file, offset: 4, version: bytes[4] },
    );
  }
  if (bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new RingkvError(ErrorCode.corruption, `${file} has non-zero reserved header bytes`, { file, offset: 5 });
  }
  return true;
}

/** True if the first 8 bytes are all zero (space allocated but never written). */
export function isZeroFileHeader(bytes: Uint8Array): boolean {
  if (bytes.length < walFileHeaderBytes) return false;
  for (let i = 0; i < walFileHeaderBytes; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Encodes `payloads` as consecutive records into one new buffer (one allocation for the whole
 * group commit). Throws KV_TOO_LARGE if a payload is over `limits.walRecordBytesMax`.
 */
export function encodeWalRecords(payloads: readonly Uint8Array[]): Uint8Array {
  let totalBytes = 0;
  for (let i = 0; i < payloads.length; i++) {
    const length = payloads[i]!.length;
    if (length > limits.walRecordBytesMax) {
      throw new RingkvError(
        ErrorCode.tooLarge,
        `commit-log record of ${length} bytes is over walRecordBytesMax (${limits.walRecordBytesMax})`,
        { sizeBytes: length, sizeBytesMax: limits.walRecordBytesMax },
      );
    }
    totalBytes += walRecordHeaderBytes + length;
  }
  const out = new Uint8Array(totalBytes);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (let i = 0; i < payloads.length; i++) {
    const payload = payloads[i]!;
    const end = offset + walRecordHeaderBytes + payload.length;
    view.setUint32(offset + 4, payload.length, true);
    out[offset + 8] = WalRecordType.full;
    out.set(payload, offset + walRecordHeaderBytes);
    view.setUint32(offset, maskCrc(crc32c(out, 0, offset + 8, end)), true);
    offset = end;
  }
  return out;
}

/**
 * Frames one record in place: `record` is [9 reserved bytes][payload]; fills in the header
 * (length, type, CRC) so the same bytes go to the log with no copy (WalWriter.appendFramed).
 * Throws KV_TOO_LARGE if the payload is over `limits.walRecordBytesMax`.
 */
export function frameWalRecord(record: Uint8Array): void {
  const length = record.length - walRecordHeaderBytes;
  if (length > limits.walRecordBytesMax) {
    throw new RingkvError(ErrorCode.tooLarge, `commit-log record of ${length} bytes is over walRecordBytesMax (${limits.walRecordBytesMax})`, {
      sizeBytes: length,
      sizeBytesMax: limits.walRecordBytesMax,
    });
  }
  record[4] = length;
  record[5] = length >>> 8;
  record[6] = length >>> 16;
  record[7] = length >>> 24;
  record[8] = WalRecordType.full;
  const crc = maskCrc(crc32c(record, 0, 8, record.length));
  record[0] = crc;
  record[1] = crc >>> 8;
  record[2] = crc >>> 16;
  record[3] = crc >>> 24;
}

/**
 * The payload length of the record starting at `offset` of `bytes`, or -1 if no complete,
 * checksum-valid record starts there. Cheap checks (type, length fits) come before the CRC.
 * `view` must be a DataView over exactly `bytes`.
 */
export function walRecordLengthAt(bytes: Uint8Array, view: DataView, offset: number): number {
  const payloadOffset = offset + walRecordHeaderBytes;
  if (payloadOffset > bytes.length) return -1;
  if (bytes[offset + 8] !== WalRecordType.full) return -1;
  const length = view.getUint32(offset + 4, true);
  if (length > limits.walRecordBytesMax || length > bytes.length - payloadOffset) return -1;
  const stored = view.getUint32(offset, true);
  return maskCrc(crc32c(bytes, 0, offset + 8, payloadOffset + length)) === stored ? length : -1;
}

/** The first offset ≥ `from` where a valid record starts, or -1. Scans byte by byte. */
export function findWalRecord(bytes: Uint8Array, view: DataView, from: number): number {
  const lastStart = bytes.length - walRecordHeaderBytes;
  for (let offset = from; offset <= lastStart; offset++) {
    if (bytes[offset + 8] !== WalRecordType.full) continue;
    if (walRecordLengthAt(bytes, view, offset) >= 0) return offset;
  }
  return -1;
}
