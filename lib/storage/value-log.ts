/**
 * The value log of one engine: the commit logs that value pointers name (value-pointer.ts
 * explains why the commit log is the value log), their open read handles, and point reads of
 * values through pointers. Owned by the engine's thread; every read is synchronous, like
 * table reads.
 *
 * Invariant (the engine keeps it): a file is in the value log from the manifest that first
 * lists it (installed by the flush whose tables point into it) until the manifest that drops
 * it, installed by value-log GC only after every live value in it was rewritten durably
 * elsewhere. So no live pointer ever names a file that is gone.
 *
 * Memory: one file handle per value-log file; values are not cached (the page cache does
 * that), so the value log adds nothing to the engine's budgets except GC's buffer (one file,
 * at most a memtable's worth of bytes, while GC runs). Values are read into a read slab
 * (bump allocation in `readSlabBytes` chunks, not zero-filled: the read overwrites every byte)
 * and returned as views that are never written again: a 10 KiB read costs the read, not a
 * fresh zeroed backing store and the GC work that follows it. Values over a quarter slab get
 * their own array. The price: one retained value keeps its slab (at most readSlabBytes) alive.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import { Buffer } from 'node:buffer';
import { type FileHandle, type FileSystem, joinPath, readExactlyInto } from './file-system.js';
import { walFileName } from './manifest.js';
import { checkPointedValue, decodeValuePointer } from './value-pointer.js';

/** Chunk size of the read slab (a tuning knob, not on disk). */
const readSlabBytes = 256 * 1024;

/** An array of `lengthBytes` whose bytes the caller overwrites (not zero-filled). */
function uninitialized(lengthBytes: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(lengthBytes);
  return new Uint8Array(b.buffer, b.byteOffset, lengthBytes);
}

export class ValueLog {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #files = new Set<number>();
  readonly #handles = new Map<number, FileHandle>();
  #slab: Uint8Array = new Uint8Array(0);
  #slabUsed = 0;
  /** Pointer reads served, and their bytes (for stats). */
  reads = 0;
  readBytes = 0;

  constructor(fs: FileSystem, dir: string, files: readonly number[]) {
    this.#fs = fs;
    this.#dir = dir;
    for (const n of files) this.#files.add(n);
  }

  has(fileNumber: number): boolean {
    return this.#files.has(fileNumber);
  }

  add(fileNumber: number): void {
    this.#files.add(fileNumber);
  }

  /** Drops a file from the set and closes its handle (the caller deletes it after the manifest). */
  drop(fileNumber: number): void {
    this.#files.delete(fileNumber);
    this.#handles.get(fileNumber)?.close();
    this.#handles.delete(fileNumber);
  }

  /** File numbers, oldest first. */
  list(): number[] {
    return [...this.#files].sort((a, b) => a - b);
  }

  pathOf(fileNumber: number): string {
    return joinPath(this.#dir, walFileName(fileNumber));
  }

  /** The value a pointer names, checked against its CRC; KV_CORRUPTION when it does not match. */
  read(pointerBytes: Uint8Array): Uint8Array {
    const pointer = decodeValuePointer(pointerBytes);
    const path = this.pathOf(pointer.fileNumber);
    if (!this.#files.has(pointer.fileNumber)) {
      throw new RingkvError(ErrorCode.corruption, `value pointer names ${path}, which is not in the value log`, { file: path });
    }
    let handle = this.#handles.get(pointer.fileNumber);
    if (handle === undefined) {
      handle = this.#fs.openRead(path);
      this.#handles.set(pointer.fileNumber, handle);
    }
    let value: Uint8Array;
    try {
      value = this.#readInSlab(handle, pointer.offset, pointer.length);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ESHORT') throw error;
      throw new RingkvError(ErrorCode.corruption, `value log ${path} ends before the value at ${pointer.offset}`, { file: path, offset: pointer.offset });
    }
    checkPointedValue(pointer, value, path);
    this.reads++;
    this.readBytes += value.length;
    return value;
  }

  /** Reads `length` bytes at `position` into the read slab (or their own array when large); returns the view. */
  #readInSlab(handle: FileHandle, position: number, length: number): Uint8Array {
    if (length > readSlabBytes >>> 2) {
      const own = uninitialized(length);
      readExactlyInto(handle, position, own, 0, length);
      return own;
    }
    if (this.#slabUsed + length > this.#slab.length) {
      this.#slab = uninitialized(readSlabBytes);
      this.#slabUsed = 0;
    }
    const at = this.#slabUsed;
    readExactlyInto(handle, position, this.#slab, at, length);
    // Only after the read succeeded: a failed read leaves its bytes to the next one.
    this.#slabUsed = (at + length + 7) & ~7;
    return this.#slab.subarray(at, at + length);
  }

  /** Bytes on disk of one value-log file. */
  sizeOf(fileNumber: number): number {
    let handle = this.#handles.get(fileNumber);
    if (handle === undefined) {
      handle = this.#fs.openRead(this.pathOf(fileNumber));
      this.#handles.set(fileNumber, handle);
    }
    return handle.size();
  }

  /** Bytes on disk of every value-log file (stats; one fstat per file). */
  sizeBytes(): number {
    let sum = 0;
    for (const n of this.#files) sum += this.sizeOf(n);
    return sum;
  }

  close(): void {
    for (const h of this.#handles.values()) h.close();
    this.#handles.clear();
  }
}
