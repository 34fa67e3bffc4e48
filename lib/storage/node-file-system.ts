/**
 * The real-disk FileSystem (file-system.ts) over synchronous `node:fs` calls. Used by the shard
 * thread that owns the data directory; one instance may serve many files.
 *
 * - Writable handles are opened with O_APPEND ('a+' / 'ax+'), so every write lands at the end
 *   of the file even after a truncate, and reads with an explicit position still work.
 * - `sync()` is fdatasync: file data and the size, not timestamps (LevelDB/RocksDB do the same).
 * - `syncDir()` opens the directory read-only and fsyncs it, which is what makes creates, renames
 *   and removes durable on Linux (ALICE, OSDI'14).
 * - Errors propagate unchanged as Node errors carrying `code` (ENOENT, EEXIST, EIO, ENOSPC...).
 * - A handle remembers that it was closed and throws EBADF itself afterwards, because the
 *   kernel reuses descriptor numbers and a stale fd could reach another file.
 * - `list()` returns names sorted, so simulations and tests do not depend on directory order.
 */

import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fdatasync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
  writevSync,
} from 'node:fs';
import type { FileHandle, FileSystem } from './file-system.js';

class NodeFileHandle implements FileHandle {
  readonly path: string;
  #fd: number;

  constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): number {
    return readSync(this.#open('read'), buffer, offset, length, position);
  }

  append(data: Uint8Array): void {
    const fd = this.#open('write');
    let doneBytes = 0;
    while (doneBytes < data.length) doneBytes += writeSync(fd, data, doneBytes, data.length - doneBytes, null);
  }

  appendv(chunks: readonly Uint8Array[]): void {
    const fd = this.#open('write');
    let total = 0;
    for (const c of chunks) total += c.length;
    let doneBytes = writevSync(fd, chunks as Uint8Array[]);
    if (doneBytes === total) return;
    // A short writev: finish chunk by chunk from where it stopped.
    for (const c of chunks) {
      if (doneBytes >= c.length) {
        doneBytes -= c.length;
        continue;
      }
      let at = doneBytes;
      doneBytes = 0;
      while (at < c.length) at += writeSync(fd, c, at, c.length - at, null);
    }
  }

  sync(): void {
    fdatasyncSync(this.#open('fdatasync'));
  }

  syncAsync(): Promise<void> {
    const fd = this.#open('fdatasync');
    return new Promise((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
  }

  size(): number {
    return fstatSync(this.#open('fstat')).size;
  }

  truncate(length: number): void {
    ftruncateSync(this.#open('ftruncate'), length);
  }

  close(): void {
    const fd = this.#open('close');
    this.#fd = -1;
    closeSync(fd);
  }

  #open(syscall: string): number {
    if (this.#fd < 0) {
      throw Object.assign(new Error(`EBADF: bad file descriptor, ${syscall} '${this.path}'`), {
        code: 'EBADF',
        syscall,
        path: this.path,
      });
    }
    return this.#fd;
  }
}

export class NodeFileSystem implements FileSystem {
  openAppend(path: string): FileHandle {
    return new NodeFileHandle(path, openSync(path, 'a+'));
  }

  createExclusive(path: string): FileHandle {
    return new NodeFileHandle(path, openSync(path, 'ax+'));
  }

  openRead(path: string): FileHandle {
    return new NodeFileHandle(path, openSync(path, 'r'));
  }

  readFile(path: string): Uint8Array {
    const buffer = readFileSync(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  exists(path: string): boolean {
    return existsSync(path);
  }

  list(dir: string): string[] {
    try {
      return readdirSync(dir).sort();
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') return [];
      throw error;
    }
  }

  rename(from: string, to: string): void {
    renameSync(from, to);
  }

  remove(path: string): void {
    rmSync(path, { force: true });
  }

  mkdirp(dir: string): void {
    mkdirSync(dir, { recursive: true });
  }

  syncDir(dir: string): void {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
