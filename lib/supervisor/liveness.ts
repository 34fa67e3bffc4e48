/**
 * The `ALIVE` file: when this node was last known to be running, so that a node that comes
 * back after an outage longer than the tombstone grace period knows to resync before it
 * serves reads (issue 5 §2; RELIABILITY.md C10; resync.ts). Owned by the supervisor (main
 * thread): read once at start, rewritten on a timer (`livenessRefreshMs`) and at clean close.
 *
 * Format: UTF-8 JSON `{ "format": "ringkv-alive", "formatVersion": 1, "aliveAtMs": <wall ms>,
 * "resyncing": <bool> }`, written atomically like NODE and STORE (json-file.ts). `aliveAtMs`
 * is wall-clock time (it must survive a restart, which the monotonic clock does not).
 * `resyncing` stays true until a resync completes, so a node that restarts in the middle of
 * one resumes it instead of passing for freshly alive.
 *
 * Decision (`livenessVerdict`), taken before the new time is written:
 *   no file                       → fresh (a new or joining node streams its data; a data
 *                                   directory from before this file cannot tell, so it is
 *                                   treated as fresh too)
 *   resyncing: true               → resync (an unfinished resync)
 *   aliveAtMs in the future       → no resync: the clock was stepped back; logged by the caller
 *   now − aliveAtMs > graceMs     → resync (down too long)
 *   otherwise                     → no resync
 * Since the file is rewritten only every `livenessRefreshMs`, a crash makes the outage look up
 * to that much longer than it was: the error is on the safe side (a resync too many).
 *
 * A file that does not parse is KV_CORRUPTION; another format version is KV_INCOMPATIBLE.
 */

import { join } from 'node:path';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { readJsonFile, writeJsonFileAtomically } from '../storage/json-file.js';

/** Frozen. */
export const livenessFormatVersion = 1;
export const LIVENESS_FILE_NAME = 'ALIVE';

export interface LivenessRecord {
  /** Wall-clock ms at which the node was last known to run. */
  readonly aliveAtMs: number;
  /** A resync started and has not completed. */
  readonly resyncing: boolean;
}

export type LivenessReason = 'fresh' | 'within-grace' | 'down-too-long' | 'unfinished-resync' | 'clock-stepped-back';

export interface LivenessVerdict {
  readonly resync: boolean;
  readonly reason: LivenessReason;
  /** How long the node was away by the wall clock (absent when no file). */
  readonly downMs?: number;
}

export function readLiveness(dir: string): LivenessRecord | undefined {
  const record = readJsonFile(dir, LIVENESS_FILE_NAME, 'ringkv-alive', livenessFormatVersion);
  if (record === undefined) return undefined;
  if (!Number.isSafeInteger(record.aliveAtMs) || typeof record.resyncing !== 'boolean') {
    const path = join(dir, LIVENESS_FILE_NAME);
    throw new RingkvError(ErrorCode.corruption, `${path} lacks aliveAtMs or resyncing`, { path });
  }
  return { aliveAtMs: record.aliveAtMs as number, resyncing: record.resyncing };
}

/** Atomically records `record` in `dir`. */
export function writeLiveness(dir: string, record: LivenessRecord): void {
  writeJsonFileAtomically(dir, LIVENESS_FILE_NAME, { format: 'ringkv-alive', formatVersion: livenessFormatVersion, aliveAtMs: Math.round(record.aliveAtMs), resyncing: record.resyncing });
}

/** Whether a node whose stored record is `record` must resync, at wall time `wallNowMs`. */
export function livenessVerdict(record: LivenessRecord | undefined, wallNowMs: number, graceMs: number): LivenessVerdict {
  if (record === undefined) return { resync: false, reason: 'fresh' };
  const downMs = wallNowMs - record.aliveAtMs;
  if (record.resyncing) return { resync: true, reason: 'unfinished-resync', downMs };
  if (downMs < 0) return { resync: false, reason: 'clock-stepped-back', downMs };
  if (downMs > graceMs) return { resync: true, reason: 'down-too-long', downMs };
  return { resync: false, reason: 'within-grace', downMs };
}

/** How often the ALIVE file is rewritten for a grace of `graceMs`: a quarter of it, within the limits. */
export function livenessRefreshMs(graceMs: number): number {
  return Math.min(limits.livenessRefreshMsMax, Math.max(limits.livenessRefreshMsMin, Math.floor(graceMs / 4)));
}
