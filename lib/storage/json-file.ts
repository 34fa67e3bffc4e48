/**
 * Small JSON metadata files (a store's STORE, a node's NODE): read with their format checked,
 * written atomically — temp file, fsync, rename, fsync the directory — so a crash leaves the
 * old file or the new one, never a torn one. Synchronous: used once at open/start, or on a
 * rare change. Any thread.
 *
 * Reading: a missing file is `undefined`; bytes that are not JSON, or JSON without the
 * expected `format` marker, are KV_CORRUPTION; another `formatVersion` is KV_INCOMPATIBLE.
 */

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, RingkvError } from '../base/errors.js';

/** Reads `<dir>/<name>`, checking `format` and `formatVersion`; fields are the caller's to check. */
export function readJsonFile(dir: string, name: string, format: string, formatVersion: number): Record<string, unknown> | undefined {
  const path = join(dir, name);
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new RingkvError(ErrorCode.corruption, `${path} is not valid JSON`, { path }, { cause: error });
  }
  const record = parsed as Record<string, unknown> | null;
  if (typeof record !== 'object' || record === null || record.format !== format || typeof record.formatVersion !== 'number') {
    throw new RingkvError(ErrorCode.corruption, `${path} is not a ringkv ${name} file`, { path });
  }
  if (record.formatVersion !== formatVersion) {
    throw new RingkvError(ErrorCode.incompatible, `${path} has format version ${record.formatVersion}, this build reads ${formatVersion}`, {
      path,
      formatVersion: record.formatVersion,
    });
  }
  return record;
}

/** Atomically replaces `<dir>/<name>` with `value` as JSON (creating `dir` if needed). */
export function writeJsonFileAtomically(dir: string, name: string, value: unknown): void {
  mkdirSync(dir, { recursive: true });
  const temp = join(dir, `${name}.tmp`);
  const fd = openSync(temp, 'w');
  try {
    writeSync(fd, JSON.stringify(value, null, 2) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, join(dir, name));
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
