/**
 * Value-log garbage collection, the pure half: which values of one value-log file are still
 * live, and whether collecting the file pays. The engine (engine.ts) runs it: it reads the
 * file, asks `liveValuesOf`, and if the live share is at most `liveRatioMax` it rewrites the
 * live values through its ordinary write path (one commit-log record per slice, in the group
 * commit, so they are durable before anything is deleted), installs a manifest without the
 * file, and only then deletes it. Paced: slices of `sliceBytes`, with a pause between them
 * that keeps GC under `bytesPerSecond`.
 *
 * Live = the newest entry of the key, in memtables and tables, is a pointer naming exactly
 * this file and offset. The engine re-checks liveness at the moment the rewrite enters a
 * group commit (no write is queued ahead of it then), so a user write that lands during GC
 * always wins over the rewrite of the value it replaced.
 *
 * Crash safety, step by step (tested with the crash-simulating file system): a crash before
 * the rewrite's fsync loses nothing (the pointers still name the file, which is still listed);
 * after it, the rewrite is in the commit log and replays; a crash before the new manifest
 * leaves the file listed (collected again later: the rewrite is then dead and skipped); after
 * the manifest and before the unlink leaves an orphan that the next open deletes.
 *
 * A file whose records do not all verify (a flipped bit, a truncated tail mid-file) is never
 * collected: its valid records are still served, damaged values report KV_CORRUPTION.
 */


import { ErrorCode, RingkvError } from '../base/errors.js';
import { scanWal } from './wal-reader.js';
import { decodeBatchLayout, EntryKind } from './write-batch.js';

export interface LiveValue {
  /** The internal key (internal-key.ts), a view into the file's bytes. */
  key: Uint8Array;
  /** The value, a view into the file's bytes. */
  value: Uint8Array;
  /** Offset of the value in the file (what its pointer names). */
  offset: number;
}

export interface LiveScan {
  live: LiveValue[];
  liveBytes: number;
  /** Bytes of values that were separated (>= the threshold), live or not. */
  separatedBytes: number;
  fileBytes: number;
}

/**
 * The live values of value-log file `fileNumber` whose bytes are `bytes`. `isLive(key, offset)`
 * answers for one value. Throws KV_CORRUPTION if any record fails to verify, wherever it sits:
 * GC must never decide a value is dead because its record could not be read.
 */
export function liveValuesOf(
  bytes: Uint8Array,
  path: string,
  separationBytes: number,
  isLive: (key: Uint8Array, offset: number) => boolean,
): LiveScan {
  const live: LiveValue[] = [];
  let liveBytes = 0;
  let separatedBytes = 0;
  const scan = scanWal(bytes, path);
  // A value-log file was recovered (its torn tail cut) before it was flushed: anything that
  // does not parse to its end is damage, and a value a pointer names may sit in it.
  if (scan.headerTorn || scan.droppedBytes > 0) {
    throw new RingkvError(ErrorCode.corruption, `value log ${path} does not verify after offset ${scan.validBytes}`, { file: path, offset: scan.validBytes });
  }
  for (const payload of scan.payloads) {
    const base = payload.byteOffset - bytes.byteOffset;
    decodeBatchLayout(payload, (kind, keyStart, keyEnd, valueStart, valueEnd) => {
      if (kind !== EntryKind.value || valueEnd - valueStart < separationBytes) return;
      separatedBytes += valueEnd - valueStart;
      const key = payload.subarray(keyStart, keyEnd);
      if (!isLive(key, base + valueStart)) return;
      live.push({ key, value: payload.subarray(valueStart, valueEnd), offset: base + valueStart });
      liveBytes += valueEnd - valueStart;
    });
  }
  return { live, liveBytes, separatedBytes, fileBytes: bytes.length };
}

/** Cuts `live` into slices of about `sliceBytes` of values (at least one value each). */
export function slicesOfLive(live: readonly LiveValue[], sliceBytes: number): LiveValue[][] {
  const slices: LiveValue[][] = [];
  let slice: LiveValue[] = [];
  let bytes = 0;
  for (const v of live) {
    if (slice.length > 0 && bytes + v.value.length > sliceBytes) {
      slices.push(slice);
      slice = [];
      bytes = 0;
    }
    slice.push(v);
    bytes += v.value.length;
  }
  if (slice.length > 0) slices.push(slice);
  return slices;
}

