/**
 * The data directory's lock: one engine per directory, ever (RELIABILITY.md D12).
 *
 * `LOCK` is created with O_CREAT|O_EXCL and holds "pid threadId". If it already exists, the
 * holder is alive when (a) another live process holds it (process.kill(pid, 0) succeeds), or
 * (b) this process holds it: through an engine of this thread that is still open, or through
 * another thread (we cannot see into other threads, so we assume alive unless the caller says
 * it knows that holder died: `reclaimFromDeadThread`, used when a shard worker is restarted).
 * A lock whose holder is gone is stale: it is replaced, and the takeover is logged.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { type FileHandle, type FileSystem, joinPath } from './file-system.js';
import { threadId } from 'node:worker_threads';

export const LOCK_NAME = 'LOCK';

const held = new WeakMap<FileSystem, Map<string, FileHandle>>();

function heldBy(fs: FileSystem): Map<string, FileHandle> {
  let map = held.get(fs);
  if (!map) {
    map = new Map();
    held.set(fs, map);
  }
  return map;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A handle this thread still has open (a crashed in-memory file system invalidates handles). */
function handleAlive(handle: FileHandle): boolean {
  try {
    handle.size();
    return true;
  } catch {
    return false;
  }
}

export interface LockOptions {
  reclaimFromDeadThread?: boolean;
  logger: Logger;
}

export class DirectoryLock {
  #fs: FileSystem;
  #dir: string;
  #handle: FileHandle | undefined;

  private constructor(fs: FileSystem, dir: string, handle: FileHandle) {
    this.#fs = fs;
    this.#dir = dir;
    this.#handle = handle;
  }

  static acquire(fs: FileSystem, dir: string, options: LockOptions): DirectoryLock {
    const path = joinPath(dir, LOCK_NAME);
    const mine = heldBy(fs).get(dir);
    if (mine && handleAlive(mine)) throw lockedError(dir, process.pid);
    if (fs.exists(path)) breakStaleLock(fs, path, dir, options);
    const handle = fs.createExclusive(path);
    handle.append(new TextEncoder().encode(`${process.pid} ${threadId}\n`));
    handle.sync();
    fs.syncDir(dir);
    heldBy(fs).set(dir, handle);
    return new DirectoryLock(fs, dir, handle);
  }

  release(): void {
    if (!this.#handle) return;
    const handle = this.#handle;
    this.#handle = undefined;
    if (heldBy(this.#fs).get(this.#dir) === handle) heldBy(this.#fs).delete(this.#dir);
    handle.close();
    this.#fs.remove(joinPath(this.#dir, LOCK_NAME));
  }
}

function lockedError(dir: string, pid: number): RingkvError {
  return new RingkvError(ErrorCode.locked, `data directory ${dir} is locked by process ${pid}`, { dir, pid });
}

function breakStaleLock(fs: FileSystem, path: string, dir: string, options: LockOptions): void {
  const text = new TextDecoder().decode(fs.readFile(path)).trim();
  const [pidText, threadText] = text.split(' ');
  const pid = Number(pidText);
  const holderThread = Number(threadText);
  if (Number.isInteger(pid) && pid > 0) {
    const sameProcess = pid === process.pid;
    const otherThread = sameProcess && holderThread !== threadId;
    if (!sameProcess && processAlive(pid)) throw lockedError(dir, pid);
    if (otherThread && !options.reclaimFromDeadThread) throw lockedError(dir, pid);
  }
  options.logger.warn({ dir, holder: text }, 'replacing a stale lock left by a process or thread that is gone');
  fs.remove(path);
}
