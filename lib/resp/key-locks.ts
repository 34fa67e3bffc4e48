/**
 * Per-key ordering of RESP commands at this node (main thread). A read-modify-write (INCR,
 * APPEND, SET NX, EXPIRE, ...) holds its key until its write is acknowledged; any command on
 * that key arriving meanwhile waits behind it, so commands on one key through this node
 * apply in arrival order and increments are never lost between them. Commands on keys with
 * nothing in progress run at once, with no bookkeeping. Writers through other nodes are not
 * ordered with these (see the README's "INCR under concurrent writers").
 */

import type { Buffer } from 'node:buffer';

export class KeyLocks {
  readonly #tails = new Map<string, Promise<unknown>>();

  get size(): number {
    return this.#tails.size;
  }

  /** Runs `work` after everything queued on `key`; later commands on `key` wait for it. */
  exclusive<T>(key: Buffer, work: () => Promise<T>): Promise<T> {
    const name = key.toString('latin1');
    const before = this.#tails.get(name);
    const run = before === undefined ? work() : before.then(work, work);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(name, tail);
    void tail.then(() => {
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    });
    return run;
  }

  /** Runs `work` at once when nothing is queued on `key`, else in line behind it. */
  ordered<T>(key: Buffer, work: () => Promise<T>): Promise<T> {
    if (this.#tails.size === 0 || !this.#tails.has(key.toString('latin1'))) return work();
    return this.exclusive(key, work);
  }
}
