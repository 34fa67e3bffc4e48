/**
 * The manifest: the one file that says which SSTables are live, at which level, and which
 * commit logs still matter. Replaced whole on every change, atomically:
 * write MANIFEST.tmp, fsync it, rename over MANIFEST, fsync the directory (DESIGN.md §3).
 * A crash at any step leaves either the old or the new manifest, never a mix; tables and logs
 * that no durable manifest mentions are orphans and are deleted at open.
 *
 * Layout (little-endian, frozen; bump MANIFEST_VERSION to change it):
 *
 *   0      4      5        9                                                   end
 *   +------+------+--------+----------------------------------------------------+
 *   | RKVM | ver  | crc32c | body                                               |
 *   +------+------+--------+----------------------------------------------------+
 *   crc32c (masked) covers the body only.
 *   body = nextFileNumber f64 | logNumber f64 | partitionBits u8 | levelCount u8
 *          | tableCount u32 | table* | valueLogCount u32 | valueLogFile f64*    (version 2)
 *   table = level u8 | fileNumber f64 | fileBytes f64 | entryCount f64
 *          | smallest (u32 length + bytes) | largest (u32 length + bytes)
 *   valueLogFile = the number of a commit log kept because table pointers name its values
 *          (value-pointer.ts); it is never deleted while listed, whatever logNumber says.
 *   Version 1 (read, never written) ends after the tables: no value-log files.
 *
 * File numbers are integers below 2^53 stored as f64. A manifest that fails its CRC or its
 * format check is KV_CORRUPTION: the engine refuses to open rather than guess.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import { crc32c, maskCrc } from '../base/crc32c.js';
import { type FileSystem, joinPath } from './file-system.js';

export const MANIFEST_NAME = 'MANIFEST';
export const MANIFEST_TEMP_NAME = 'MANIFEST.tmp';
export const MANIFEST_VERSION = 2;
const MAGIC = [0x52, 0x4b, 0x56, 0x4d]; // "RKVM"
const HEADER_BYTES = 9;

export interface TableMeta {
  level: number;
  fileNumber: number;
  fileBytes: number;
  entryCount: number;
  smallest: Uint8Array;
  largest: Uint8Array;
}

export interface ManifestState {
  nextFileNumber: number;
  /** Commit logs numbered below this are covered by tables and may be deleted. */
  logNumber: number;
  partitionBits: number;
  levelCount: number;
  tables: TableMeta[];
  /** Commit logs kept as value-log files (version 2; empty when absent). */
  valueLogFiles?: number[];
}

export function encodeManifest(state: ManifestState): Uint8Array {
  const valueLogFiles = state.valueLogFiles ?? [];
  let bytes = HEADER_BYTES + 8 + 8 + 1 + 1 + 4 + 4 + 8 * valueLogFiles.length;
  for (const t of state.tables) bytes += 1 + 8 * 3 + 4 + t.smallest.length + 4 + t.largest.length;
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = MANIFEST_VERSION;
  let pos = HEADER_BYTES;
  view.setFloat64(pos, state.nextFileNumber, true);
  view.setFloat64(pos + 8, state.logNumber, true);
  out[pos + 16] = state.partitionBits;
  out[pos + 17] = state.levelCount;
  view.setUint32(pos + 18, state.tables.length, true);
  pos += 22;
  for (const t of state.tables) {
    out[pos] = t.level;
    view.setFloat64(pos + 1, t.fileNumber, true);
    view.setFloat64(pos + 9, t.fileBytes, true);
    view.setFloat64(pos + 17, t.entryCount, true);
    pos += 25;
    for (const key of [t.smallest, t.largest]) {
      view.setUint32(pos, key.length, true);
      out.set(key, pos + 4);
      pos += 4 + key.length;
    }
  }
  view.setUint32(pos, valueLogFiles.length, true);
  pos += 4;
  for (const n of valueLogFiles) {
    view.setFloat64(pos, n, true);
    pos += 8;
  }
  view.setUint32(5, maskCrc(crc32c(out, 0, HEADER_BYTES)), true);
  return out;
}

export function decodeManifest(bytes: Uint8Array, file: string): ManifestState {
  const fail = (what: string, offset: number): RingkvError =>
    new RingkvError(ErrorCode.corruption, `manifest ${file}: ${what} at offset ${offset}`, { file, offset });
  if (bytes.length < HEADER_BYTES + 22) throw fail('too short', 0);
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) throw fail('bad magic', 0);
  const version = bytes[4]!;
  if (version !== MANIFEST_VERSION && version !== 1) {
    throw new RingkvError(ErrorCode.incompatible, `manifest ${file}: unsupported version ${bytes[4]}`, { file });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(5, true) !== maskCrc(crc32c(bytes, 0, HEADER_BYTES))) throw fail('checksum mismatch', 5);
  let pos = HEADER_BYTES;
  const state: ManifestState = {
    nextFileNumber: view.getFloat64(pos, true),
    logNumber: view.getFloat64(pos + 8, true),
    partitionBits: bytes[pos + 16]!,
    levelCount: bytes[pos + 17]!,
    tables: [],
  };
  const count = view.getUint32(pos + 18, true);
  pos += 22;
  const readKey = (): Uint8Array => {
    if (pos + 4 > bytes.length) throw fail('truncated key length', pos);
    const length = view.getUint32(pos, true);
    if (pos + 4 + length > bytes.length) throw fail('truncated key', pos);
    const key = bytes.slice(pos + 4, pos + 4 + length);
    pos += 4 + length;
    return key;
  };
  for (let i = 0; i < count; i++) {
    if (pos + 25 > bytes.length) throw fail('truncated table entry', pos);
    const level = bytes[pos]!;
    const fileNumber = view.getFloat64(pos + 1, true);
    const fileBytes = view.getFloat64(pos + 9, true);
    const entryCount = view.getFloat64(pos + 17, true);
    pos += 25;
    const smallest = readKey();
    const largest = readKey();
    if (level >= state.levelCount || !Number.isSafeInteger(fileNumber)) throw fail('bad table entry', pos);
    state.tables.push({ level, fileNumber, fileBytes, entryCount, smallest, largest });
  }
  state.valueLogFiles = [];
  if (version >= 2) {
    if (pos + 4 > bytes.length) throw fail('truncated value-log count', pos);
    const logs = view.getUint32(pos, true);
    pos += 4;
    if (pos + 8 * logs > bytes.length) throw fail('truncated value-log list', pos);
    for (let i = 0; i < logs; i++, pos += 8) {
      const n = view.getFloat64(pos, true);
      if (!Number.isSafeInteger(n) || n < 0) throw fail('bad value-log file number', pos);
      state.valueLogFiles.push(n);
    }
  }
  if (pos !== bytes.length) throw fail('trailing bytes', pos);
  return state;
}

/** Installs a manifest atomically: temp file, fsync, rename, fsync the directory. */
export function installManifest(fs: FileSystem, dir: string, state: ManifestState): void {
  const temp = joinPath(dir, MANIFEST_TEMP_NAME);
  fs.remove(temp);
  const file = fs.createExclusive(temp);
  try {
    file.append(encodeManifest(state));
    file.sync();
  } finally {
    file.close();
  }
  fs.rename(temp, joinPath(dir, MANIFEST_NAME));
  fs.syncDir(dir);
}

/** The durable manifest, or undefined for a directory that never had one. */
export function loadManifest(fs: FileSystem, dir: string): ManifestState | undefined {
  const path = joinPath(dir, MANIFEST_NAME);
  if (!fs.exists(path)) return undefined;
  return decodeManifest(fs.readFile(path), path);
}

export function tableFileName(fileNumber: number): string {
  return `${String(fileNumber).padStart(6, '0')}.sst`;
}

export function walFileName(fileNumber: number): string {
  return `${String(fileNumber).padStart(6, '0')}.wal`;
}

/** Parses "000012.sst" / "000012.wal"; undefined for any other name. */
export function parseFileName(name: string): { kind: 'table' | 'wal'; fileNumber: number } | undefined {
  const match = /^(\d{6,})\.(sst|wal)$/.exec(name);
  if (!match) return undefined;
  return { kind: match[2] === 'sst' ? 'table' : 'wal', fileNumber: Number(match[1]) };
}
