/**
 * A crash-simulating in-memory FileSystem (the "SimFs" of RELIABILITY.md §5; LazyFS in a few
 * hundred lines). Every durability test runs on it (D3, D6, D7, D8). Single-threaded: owned by
 * whoever runs the test or simulation.
 *
 * Model:
 * - An inode holds `current` bytes and a `durable` length; `sync()` makes current durable for
 *   that inode only (fdatasync). Appends only add at the end, so durable bytes are a prefix of
 *   current ones until a truncate cuts into them; then a copy of the durable bytes is kept.
 * - A directory maps names to inodes twice: `current` and `durable`; `syncDir()` copies current
 *   to durable. Directories themselves are durable as soon as `mkdirp` returns (lost
 *   directories are not simulated).
 * - `crash(rng)` invalidates every handle (later calls throw EBADF), reverts every directory to
 *   its durable entries (an unsynced create vanishes, an unsynced rename reverts, an unsynced
 *   remove comes back) and cuts every surviving inode back to its durable bytes, plus, when the
 *   file only grew since its last sync, a random-length prefix of the unsynced tail (a torn
 *   write; none, all or part of it, chosen by `rng`). After a truncate only durable bytes stay.
 *
 * Fault injection:
 * - `failAfter(n)`: mutating operations (append, sync, truncate, create, rename, remove,
 *   syncDir, mkdirp) are counted in `operationCount`; the n-th one from now throws
 *   SimulatedCrashError before it takes effect, and from then on every call (reads too) throws
 *   it until `crash()`: the process is dead. Count a procedure's operations first, then crash it
 *   at each step 1..n.
 * - `failNextSync(code)`: the next `sync()` throws a Node-style error with `code` and persists
 *   nothing.
 * - `setCapacityBytes(n)`: an append that would take the total file bytes over n throws ENOSPC
 *   and writes nothing; lifting the cap lets writes resume.
 *
 * Paths are normalised on '/': duplicate slashes, '.' and '..' are folded; '/' and '.' exist.
 */

import type { Rng } from '../base/rng.js';
import type { FileHandle, FileSystem } from './file-system.js';

/** Thrown by every call once a `failAfter` point is reached, until `crash()`. */
export class SimulatedCrashError extends Error {
  readonly operation: string;

  constructor(operation: string) {
    super(`simulated crash at ${operation}`);
    this.name = 'SimulatedCrashError';
    this.operation = operation;
  }
}

const messages: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'file already exists',
  EBADF: 'bad file descriptor',
  EISDIR: 'illegal operation on a directory',
  ENOTDIR: 'not a directory',
  ENOSPC: 'no space left on device',
  EIO: 'i/o error',
};

function fsError(code: string, syscall: string, path: string): Error {
  const message = `${code}: ${messages[code] ?? 'simulated error'}, ${syscall} '${path}'`;
  return Object.assign(new Error(message), { code, syscall, path });
}

class Inode {
  bytes = new Uint8Array(256);
  length = 0;
  durableLength = 0;
  /** A copy of the durable bytes, kept once a truncate cut below `durableLength`. */
  durableCopy: Uint8Array | null = null;
  truncatedSinceSync = false;

  append(data: Uint8Array): void {
    this.#reserve(this.length + data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  truncate(length: number): void {
    if (length < this.durableLength && this.durableCopy === null) {
      this.durableCopy = this.bytes.slice(0, this.durableLength);
    }
    if (length > this.length) {
      this.#reserve(length);
      this.bytes.fill(0, this.length, length);
    }
    this.length = length;
    this.truncatedSinceSync = true;
  }

  sync(): void {
    this.durableLength = this.length;
    this.durableCopy = null;
    this.truncatedSinceSync = false;
  }

  crash(rng: Rng): void {
    if (this.durableCopy !== null) {
      this.bytes = this.durableCopy.slice();
      this.length = this.durableLength;
    } else if (this.truncatedSinceSync || this.length <= this.durableLength) {
      this.length = this.durableLength;
    } else {
      this.length = this.durableLength + tornLength(rng, this.length - this.durableLength);
    }
    this.sync();
  }

  #reserve(capacity: number): void {
    if (capacity <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(capacity, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
}

/** How much of an unsynced tail of `tailBytes` survives a crash: none, all or a random part. */
function tornLength(rng: Rng, tailBytes: number): number {
  const choice = rng.int(4);
  if (choice === 0) return 0;
  if (choice === 1) return tailBytes;
  return rng.int(tailBytes + 1);
}

interface Directory {
  current: Map<string, Inode>;
  durable: Map<string, Inode>;
}

function normalizePath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  if (path.startsWith('/')) return `/${parts.join('/')}`;
  return parts.length === 0 ? '.' : parts.join('/');
}

function baseName(normalized: string): string {
  return normalized.slice(normalized.lastIndexOf('/') + 1);
}

function parentOf(normalized: string): string {
  const slash = normalized.lastIndexOf('/');
  if (slash < 0) return '.';
  return slash === 0 ? '/' : normalized.slice(0, slash);
}

/** The state shared by the file system and its handles. */
class Kernel {
  readonly dirs = new Map<string, Directory>();
  generation = 0;
  operationCount = 0;
  failAtCount = Infinity;
  failing = false;
  failNextSyncCode: string | null = null;
  capacityBytes = Infinity;

  /** Gate for every call: a dead process does nothing. */
  enter(operation: string): void {
    if (this.failing) throw new SimulatedCrashError(operation);
  }

  /** Gate for mutating calls: counts them and fires `failAfter`. */
  mutate(operation: string): void {
    this.enter(operation);
    this.operationCount++;
    if (this.operationCount >= this.failAtCount) {
      this.failing = true;
      throw new SimulatedCrashError(operation);
    }
  }

  usedBytes(): number {
    const seen = new Set<Inode>();
    let total = 0;
    for (const dir of this.dirs.values()) {
      for (const inode of dir.current.values()) {
        if (!seen.has(inode)) total += inode.length;
        seen.add(inode);
      }
    }
    return total;
  }
}

class MemoryFileHandle implements FileHandle {
  readonly path: string;
  #kernel: Kernel;
  #inode: Inode;
  #writable: boolean;
  #generation: number;
  #closed = false;

  constructor(kernel: Kernel, path: string, inode: Inode, writable: boolean) {
    this.#kernel = kernel;
    this.path = path;
    this.#inode = inode;
    this.#writable = writable;
    this.#generation = kernel.generation;
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): number {
    const inode = this.#check('read', false);
    if (position >= inode.length) return 0;
    const count = Math.min(length, inode.length - position);
    buffer.set(inode.bytes.subarray(position, position + count), offset);
    return count;
  }

  append(data: Uint8Array): void {
    const inode = this.#check('write', true);
    this.#kernel.mutate('append');
    const kernel = this.#kernel;
    if (kernel.capacityBytes !== Infinity && kernel.usedBytes() + data.length > kernel.capacityBytes) {
      throw fsError('ENOSPC', 'write', this.path);
    }
    inode.append(data);
  }

  sync(): void {
    const inode = this.#check('fdatasync', false);
    this.#kernel.mutate('sync');
    const code = this.#kernel.failNextSyncCode;
    if (code !== null) {
      this.#kernel.failNextSyncCode = null;
      throw fsError(code, 'fdatasync', this.path);
    }
    inode.sync();
  }

  size(): number {
    return this.#check('fstat', false).length;
  }

  truncate(length: number): void {
    const inode = this.#check('ftruncate', true);
    this.#kernel.mutate('truncate');
    inode.truncate(length);
  }

  close(): void {
    this.#check('close', false);
    this.#closed = true;
  }

  #check(syscall: string, write: boolean): Inode {
    this.#kernel.enter(syscall);
    if (this.#closed || this.#generation !== this.#kernel.generation || (write && !this.#writable)) {
      throw fsError('EBADF', syscall, this.path);
    }
    return this.#inode;
  }
}

export class MemoryFileSystem implements FileSystem {
  #kernel = new Kernel();

  constructor() {
    this.#kernel.dirs.set('/', { current: new Map(), durable: new Map() });
    this.#kernel.dirs.set('.', { current: new Map(), durable: new Map() });
  }

  /** Mutating operations attempted so far (see `failAfter`). */
  get operationCount(): number {
    return this.#kernel.operationCount;
  }

  /** True once a `failAfter` point fired, until `crash()`. */
  get failing(): boolean {
    return this.#kernel.failing;
  }

  /** The `ops`-th mutating operation from now throws SimulatedCrashError, and so does all after. */
  failAfter(ops: number): void {
    if (!Number.isInteger(ops) || ops < 1) throw new RangeError('ops must be an integer ≥ 1');
    this.#kernel.failAtCount = this.#kernel.operationCount + ops;
  }

  /** The next sync() throws a Node-style error with `code` and persists nothing. */
  failNextSync(code = 'EIO'): void {
    this.#kernel.failNextSyncCode = code;
  }

  /** Appends past `capacityBytes` total file bytes throw ENOSPC; Infinity lifts the cap. */
  setCapacityBytes(capacityBytes = Infinity): void {
    if (!(capacityBytes >= 0)) throw new RangeError('capacityBytes must be ≥ 0');
    this.#kernel.capacityBytes = capacityBytes;
  }

  /** Loses everything not made durable (see the header); every open handle becomes invalid. */
  crash(rng: Rng): void {
    const kernel = this.#kernel;
    kernel.generation++;
    kernel.failing = false;
    kernel.failAtCount = Infinity;
    kernel.failNextSyncCode = null;
    const seen = new Set<Inode>();
    for (const dir of kernel.dirs.values()) {
      dir.current = new Map(dir.durable);
      for (const inode of dir.durable.values()) {
        if (!seen.has(inode)) inode.crash(rng);
        seen.add(inode);
      }
    }
  }

  openAppend(path: string): FileHandle {
    this.#kernel.enter('open');
    const inode = this.#lookup(path, 'open', false);
    if (inode) return new MemoryFileHandle(this.#kernel, path, inode, true);
    return this.#create(path, 'open');
  }

  createExclusive(path: string): FileHandle {
    return this.#create(path, 'open');
  }

  openRead(path: string): FileHandle {
    this.#kernel.enter('open');
    return new MemoryFileHandle(this.#kernel, path, this.#lookup(path, 'open', true)!, false);
  }

  readFile(path: string): Uint8Array {
    this.#kernel.enter('read');
    const inode = this.#lookup(path, 'open', true)!;
    return inode.bytes.slice(0, inode.length);
  }

  exists(path: string): boolean {
    this.#kernel.enter('access');
    return this.#kernel.dirs.has(normalizePath(path)) || this.#lookup(path, 'access', false) !== undefined;
  }

  list(dir: string): string[] {
    this.#kernel.enter('scandir');
    const normalized = normalizePath(dir);
    const directory = this.#kernel.dirs.get(normalized);
    if (!directory) {
      if (this.#lookup(dir, 'scandir', false)) throw fsError('ENOTDIR', 'scandir', dir);
      return [];
    }
    const names = [...directory.current.keys()];
    for (const path of this.#kernel.dirs.keys()) {
      if (path !== normalized && parentOf(path) === normalized) names.push(baseName(path));
    }
    return names.sort();
  }

  rename(from: string, to: string): void {
    this.#kernel.mutate('rename');
    const inode = this.#lookup(from, 'rename', true)!;
    const source = this.#parent(from, 'rename');
    const target = this.#parent(to, 'rename');
    if (this.#kernel.dirs.has(normalizePath(to))) throw fsError('EISDIR', 'rename', to);
    source.dir.current.delete(source.name);
    target.dir.current.set(target.name, inode);
  }

  remove(path: string): void {
    this.#kernel.mutate('remove');
    const normalized = normalizePath(path);
    if (this.#kernel.dirs.has(normalized)) throw fsError('EISDIR', 'rm', path);
    this.#kernel.dirs.get(parentOf(normalized))?.current.delete(baseName(normalized));
  }

  mkdirp(dir: string): void {
    this.#kernel.mutate('mkdirp');
    const missing: string[] = [];
    for (let path = normalizePath(dir); !this.#kernel.dirs.has(path); path = parentOf(path)) missing.push(path);
    for (const path of missing.reverse()) {
      if (this.#lookup(path, 'mkdir', false)) throw fsError('ENOTDIR', 'mkdir', dir);
      this.#kernel.dirs.set(path, { current: new Map(), durable: new Map() });
    }
  }

  syncDir(dir: string): void {
    this.#kernel.mutate('syncDir');
    const directory = this.#kernel.dirs.get(normalizePath(dir));
    if (!directory) throw fsError('ENOENT', 'fsync', dir);
    directory.durable = new Map(directory.current);
  }

  #create(path: string, syscall: string): FileHandle {
    this.#kernel.mutate('create');
    const { dir, name } = this.#parent(path, syscall);
    if (this.#kernel.dirs.has(normalizePath(path))) throw fsError('EISDIR', syscall, path);
    if (dir.current.has(name)) throw fsError('EEXIST', syscall, path);
    const inode = new Inode();
    dir.current.set(name, inode);
    return new MemoryFileHandle(this.#kernel, path, inode, true);
  }

  /** The directory that holds `path` and the entry name; ENOENT if the directory is missing. */
  #parent(path: string, syscall: string): { dir: Directory; name: string } {
    const normalized = normalizePath(path);
    const dir = this.#kernel.dirs.get(parentOf(normalized));
    if (!dir) throw fsError('ENOENT', syscall, path);
    return { dir, name: baseName(normalized) };
  }

  /** The file at `path`; if missing, throws (ENOENT, EISDIR) when `required`, else undefined. */
  #lookup(path: string, syscall: string, required: boolean): Inode | undefined {
    const normalized = normalizePath(path);
    const isDir = this.#kernel.dirs.has(normalized);
    const inode = isDir ? undefined : this.#kernel.dirs.get(parentOf(normalized))?.current.get(baseName(normalized));
    if (!inode && required) throw fsError(isDir ? 'EISDIR' : 'ENOENT', syscall, path);
    return inode;
  }
}
