/**
 * Commit-log recovery: reads a log written by WalWriter (format in wal-format.ts), returns its
 * records in order, and repairs a torn tail so that new appends land after valid data.
 * Runs on the shard thread when the engine opens, before it serves anything.
 *
 * Rules (RELIABILITY.md D4/D5; RocksDB "tolerate corrupted tail records"):
 * - Records are read in order from offset 8. At the first record that is incomplete or fails
 *   its CRC, the rest of the file is scanned byte by byte for any valid record.
 * - None found: a **torn tail** (a crash during an append that was never acknowledged, or
 *   garbage). The file is truncated to the last valid byte and synced, and ONE WARN is logged
 *   with { file, offset, bytesDropped }.
 * - One found: **corruption in the middle**. KV_CORRUPTION naming the file and the offset of the
 *   bad record; the file is left untouched and nothing is skipped.
 * - A file shorter than the 8-byte header (or whose header is all zeros with no valid record
 *   anywhere) never had a durable header, so nothing in it was acknowledged: it is repaired into
 *   an empty log (truncated to 0, header rewritten, synced). The engine can keep appending to it.
 * - The file is synced even when nothing was dropped, so records that were only in the page
 *   cache (process killed before its fsync) are durable before the engine replays them.
 *
 * Known corner: a payload that itself contains a complete valid WAL record (say, a value that is
 * a copy of a log file), torn after that embedded record, reads as mid-log corruption. That is
 * the safe direction: the engine refuses to start instead of skipping data.
 *
 * Cost: the whole file is read into memory once (a log is about one memtable, 8 MiB by default)
 * and the returned payloads are views into that buffer, not copies.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import type { FileSystem } from './file-system.js';
import {
  checkWalFileHeader,
  encodeWalFileHeader,
  findWalRecord,
  isZeroFileHeader,
  walFileHeaderBytes,
  walRecordHeaderBytes,
  walRecordLengthAt,
} from './wal-format.js';

export interface WalScan {
  /** Payloads of the valid records, in log order (views into the scanned bytes). */
  payloads: Uint8Array[];
  /** Bytes from the start of the file through the last valid record (header included). */
  validBytes: number;
  /** Bytes after `validBytes` that form a torn tail (0 if the log ends cleanly). */
  droppedBytes: number;
  /** True if the file holds no complete header: an empty log that needs its header rewritten. */
  headerTorn: boolean;
}

export type WalRecovery = Omit<WalScan, 'headerTorn'>;

/**
 * Parses a whole log file held in memory. Pure: no IO, no logging. Throws KV_CORRUPTION for a
 * bad record followed by a valid one, KV_CORRUPTION/KV_INCOMPATIBLE for a bad complete header.
 */
export function scanWal(bytes: Uint8Array, file: string): WalScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isZeroFileHeader(bytes) && findWalRecord(bytes, view, walFileHeaderBytes) < 0) {
    return { payloads: [], validBytes: 0, droppedBytes: bytes.length, headerTorn: true };
  }
  if (!checkWalFileHeader(bytes, file)) {
    return { payloads: [], validBytes: 0, droppedBytes: bytes.length, headerTorn: true };
  }
  const payloads: Uint8Array[] = [];
  let offset = walFileHeaderBytes;
  while (offset < bytes.length) {
    const length = walRecordLengthAt(bytes, view, offset);
    if (length < 0) break;
    const payloadOffset = offset + walRecordHeaderBytes;
    payloads.push(bytes.subarray(payloadOffset, payloadOffset + length));
    offset = payloadOffset + length;
  }
  if (offset < bytes.length) {
    const nextValidOffset = findWalRecord(bytes, view, offset + 1);
    if (nextValidOffset >= 0) {
      throw new RingkvError(
        ErrorCode.corruption,
        `commit log ${file} is corrupt at offset ${offset}: a bad record is followed by a valid one at offset ${nextValidOffset}`,
        { file, offset, nextValidOffset },
      );
    }
  }
  return { payloads, validBytes: offset, droppedBytes: bytes.length - offset, headerTorn: false };
}

/**
 * Reads the log at `path`, drops a torn tail (truncate + sync + one WARN) and returns the valid
 * payloads. Throws ENOENT if the file is missing, and as `scanWal` for corruption. Afterwards
 * `WalWriter.open(fs, path)` appends after the last valid record.
 */
export function recoverWal(fs: FileSystem, path: string, logger: Logger): WalRecovery {
  const scan = scanWal(fs.readFile(path), path);
  const file = fs.openAppend(path);
  try {
    if (scan.headerTorn) {
      file.truncate(0);
      file.append(encodeWalFileHeader());
    } else if (scan.droppedBytes > 0) {
      file.truncate(scan.validBytes);
    }
    file.sync();
  } finally {
    file.close();
  }
  if (scan.droppedBytes > 0) {
    logger.warn(
      { file: path, offset: scan.validBytes, bytesDropped: scan.droppedBytes },
      scan.headerTorn ? 'commit log had a torn header; recovered as empty' : 'dropped torn commit-log tail',
    );
  }
  const validBytes = scan.headerTorn ? walFileHeaderBytes : scan.validBytes;
  return { payloads: scan.payloads, validBytes, droppedBytes: scan.droppedBytes };
}
