/**
 * The file-system seam of the storage engine (LevelDB's Env, Pebble's vfs.FS).
 *
 * Every byte the engine persists goes through a `FileSystem`, so the same engine runs on the
 * real disk (`NodeFileSystem`) and on `MemoryFileSystem`, whose `crash()` keeps only what was
 * made durable: file bytes up to the last `sync()`, plus at random a torn prefix of the
 * unsynced tail, and only directory entries made durable by `syncDir()`. Every durability
 * test runs on the latter.
 *
 * The interface is synchronous on purpose: a shard owns its thread, a page-cache read costs
 * a microsecond or two, and an `fdatasync` that blocks the shard is exactly the window in
 * which the next group commit gathers (requests keep arriving in its mailbox). Errors are
 * thrown as Node-style errors carrying `code` ('ENOENT', 'EEXIST', 'EIO', 'ENOSPC').
 *
 * Paths are '/'-separated; the engine only ever joins a directory and a bare file name.
 */

export interface FileHandle {
  readonly path: string;
  /** Reads up to `length` bytes at `position` into `buffer[offset..]`; returns bytes read. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Appends `data` at the end of the file (the only way the engine writes). */
  append(data: Uint8Array): void;
  /** Optional: appends `chunks` in order as one write (writev), as `append` of their concatenation. */
  appendv?(chunks: readonly Uint8Array[]): void;
  /** Makes every appended byte durable (fdatasync). Throws on EIO: the caller must not retry. */
  sync(): void;
  /** Optional: `sync` off the calling thread; rejects where `sync` throws. */
  syncAsync?(): Promise<void>;
  /** Current size in bytes, durable or not. */
  size(): number;
  /** Cuts the file to `length` bytes (used to drop a torn log tail). */
  truncate(length: number): void;
  close(): void;
}

export interface FileSystem {
  /** Opens for appending, creating an empty file if missing. */
  openAppend(path: string): FileHandle;
  /** Creates a new file; throws EEXIST if it exists (O_CREAT|O_EXCL). */
  createExclusive(path: string): FileHandle;
  /** Opens an existing file for reading; throws ENOENT if missing. */
  openRead(path: string): FileHandle;
  readFile(path: string): Uint8Array;
  exists(path: string): boolean;
  /** Names (not paths) in a directory; [] if it does not exist. */
  list(dir: string): string[];
  /** Atomically replaces `to` with `from`; durable only after syncDir of the directory. */
  rename(from: string, to: string): void;
  /** Removes a file; no error if it is already gone. */
  remove(path: string): void;
  mkdirp(dir: string): void;
  /** Makes the directory's entries (creates, renames, removes) durable. */
  syncDir(dir: string): void;
}

export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/** Reads exactly `length` bytes at `position`; throws if the file is shorter. */
export function readExactly(file: FileHandle, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  readExactlyInto(file, position, out, 0, length);
  return out;
}

/** Reads exactly `length` bytes at `position` into `out[at, at + length)`; throws if the file is shorter. */
export function readExactlyInto(file: FileHandle, position: number, out: Uint8Array, at: number, length: number): void {
  let done = 0;
  while (done < length) {
    const n = file.read(out, at + done, length - done, position + done);
    if (n === 0) {
      throw Object.assign(new Error(`short read of ${file.path} at ${position + done}`), { code: 'ESHORT' });
    }
    done += n;
  }
}
