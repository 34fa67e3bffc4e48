/**
 * The commit-log writer: appends write batches to one log file (format in wal-format.ts) and
 * makes them durable. Owned by one shard thread; not shared.
 *
 * Group commit: the engine drains every pending batch, calls `appendRecords` once (all records
 * encoded into ONE buffer, ONE append) and then `sync` once; a single fdatasync (≈250 µs here,
 * PERF.md) covers the whole group. Acknowledge a write only after the `sync` that follows its
 * append has returned.
 *
 * Invariants:
 * - `sizeBytes` is the file size: header plus every record appended through this writer.
 * - The first `sync` also syncs the parent directory, so a new log's directory entry is durable
 *   before any record in it is acknowledged (ALICE, RELIABILITY.md D3/D6).
 * - fsync errors are fatal, never retried (RELIABILITY.md §0.7, D7; fsyncgate): a failed `sync`
 *   poisons the writer and every later append/sync throws KV_IO. The engine must stop or crash
 *   and recover from the log.
 * - A failed append leaves no partial record behind: on ENOSPC the file is cut back to
 *   `sizeBytes` and KV_DISK_FULL is thrown; the writer stays usable, so writes resume once space
 *   is freed (D8). Any other append error, or a failed cut, poisons the writer.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import type { FileHandle, FileSystem } from './file-system.js';
import { encodeWalFileHeader, encodeWalRecords, frameWalRecord, walFileHeaderBytes } from './wal-format.js';

export class WalWriter {
  readonly path: string;
  #fs: FileSystem;
  #file: FileHandle;
  #sizeBytes: number;
  #dirSynced = false;
  #closed = false;
  #poison: unknown = undefined;

  private constructor(fs: FileSystem, path: string, file: FileHandle, sizeBytes: number) {
    this.#fs = fs;
    this.path = path;
    this.#file = file;
    this.#sizeBytes = sizeBytes;
  }

  /**
   * Creates a new log (EEXIST if `path` exists) and appends its header. Nothing is durable until
   * the first `sync`; a crash before it recovers as an empty log (or no file at all).
   */
  static create(fs: FileSystem, path: string): WalWriter {
    const file = fs.createExclusive(path);
    try {
      file.append(encodeWalFileHeader());
    } catch (error) {
      file.close();
      throw ioError(`cannot write the header of commit log ${path}`, path, error);
    }
    return new WalWriter(fs, path, file, walFileHeaderBytes);
  }

  /** Opens an existing log for appending; run `recoverWal` on it first. */
  static open(fs: FileSystem, path: string): WalWriter {
    const file = fs.openAppend(path);
    const sizeBytes = file.size();
    if (sizeBytes < walFileHeaderBytes) {
      file.close();
      throw new RingkvError(ErrorCode.corruption, `commit log ${path} has no header; recover it before appending`, {
        file: path,
        sizeBytes,
      });
    }
    return new WalWriter(fs, path, file, sizeBytes);
  }

  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** True once a failed fsync or write has stopped this writer. */
  get poisoned(): boolean {
    return this.#poison !== undefined;
  }

  /** Appends one record per payload with a single write. Not durable until `sync`. */
  appendRecords(payloads: readonly Uint8Array[]): void {
    this.#checkUsable();
    if (payloads.length === 0) return;
    const buffer = encodeWalRecords(payloads);
    try {
      this.#file.append(buffer);
    } catch (error) {
      this.#failAppend(error);
    }
    this.#sizeBytes += buffer.length;
  }

  /**
   * Appends records built as [9 reserved bytes][payload] (frameWalRecord fills the header in
   * place), in one write and without copying them: writev where the file system has it.
   */
  appendFramed(records: readonly Uint8Array[]): void {
    this.#checkUsable();
    if (records.length === 0) return;
    let bytes = 0;
    for (const r of records) {
      frameWalRecord(r);
      bytes += r.length;
    }
    try {
      if (this.#file.appendv !== undefined) {
        this.#file.appendv(records);
      } else {
        const joined = new Uint8Array(bytes);
        let at = 0;
        for (const r of records) {
          joined.set(r, at);
          at += r.length;
        }
        this.#file.append(joined);
      }
    } catch (error) {
      this.#failAppend(error);
    }
    this.#sizeBytes += bytes;
  }

  /** Makes every appended record durable (fdatasync; the directory too on the first call). */
  sync(): void {
    this.#checkUsable();
    try {
      this.#file.sync();
      this.#syncDirOnce();
    } catch (error) {
      this.#failSync(error);
    }
  }

  /** Whether `syncAsync` runs off this thread (the file system offers an asynchronous fdatasync). */
  get canSyncAsync(): boolean {
    return this.#file.syncAsync !== undefined;
  }

  /** `sync` on a libuv thread: the caller's thread keeps working while the disk flushes. */
  async syncAsync(): Promise<void> {
    this.#checkUsable();
    try {
      await this.#file.syncAsync!();
      this.#syncDirOnce();
    } catch (error) {
      this.#failSync(error);
    }
  }

  /** The first successful sync also syncs the directory, so the log's name is durable too. */
  #syncDirOnce(): void {
    if (this.#dirSynced) return;
    this.#fs.syncDir(parentDir(this.path));
    this.#dirSynced = true;
  }

  /** A failed fsync stops the log: what it wrote may or may not be on disk. */
  #failSync(error: unknown): never {
    this.#poison = error;
    throw ioError(`fsync of commit log ${this.path} failed; the log is stopped`, this.path, error);
  }

  /** Closes the file. Safe to call on a poisoned writer, and more than once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }

  #checkUsable(): void {
    if (this.#closed) {
      throw new RingkvError(ErrorCode.closed, `commit log ${this.path} is closed`, { file: this.path });
    }
    if (this.#poison !== undefined) {
      throw ioError(`commit log ${this.path} stopped after an earlier IO failure`, this.path, this.#poison);
    }
  }

  #failAppend(error: unknown): never {
    if (errorCode(error) !== 'ENOSPC') {
      this.#poison = error;
      throw ioError(`append to commit log ${this.path} failed; the log is stopped`, this.path, error);
    }
    try {
      if (this.#file.size() > this.#sizeBytes) this.#file.truncate(this.#sizeBytes);
    } catch (cutError) {
      this.#poison = cutError;
      throw ioError(`cannot cut a failed append off commit log ${this.path}; the log is stopped`, this.path, cutError);
    }
    throw new RingkvError(ErrorCode.diskFull, `disk full while appending to commit log ${this.path}`, { file: this.path }, {
      cause: error,
    });
  }
}

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

function ioError(message: string, file: string, cause: unknown): RingkvError {
  return new RingkvError(ErrorCode.io, message, { file, errno: errorCode(cause) }, { cause });
}

/** The directory holding `path` ('/'-separated). */
export function parentDir(path: string): string {
  const slash = path.lastIndexOf('/');
  if (slash < 0) return '.';
  return slash === 0 ? '/' : path.slice(0, slash);
}
