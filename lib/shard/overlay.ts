/**
 * The shard actor's overlay: the stored objects that batches wrote but whose commit has not
 * resolved yet, by key (see shard-actor.ts for why every read looks here first).
 *
 * Owner: the shard's thread. A hash map keyed by the key's murmur3 token with chaining, so a
 * lookup costs one hash and a byte comparison — no string made from the key (what a `Map`
 * keyed by a latin1 string of the key costs per request: about ten times more).
 *
 * An entry whose object is `undefined` is an uncommitted engine delete (a tombstone purge):
 * reads see the key as absent until it commits.
 *
 * Invariants: one entry per key; an entry names the last batch that wrote it, and only that
 * batch's settlement removes it (`release`), so a later batch's uncommitted write to the same
 * key stays visible after an earlier batch commits.
 */

import { murmur3 } from '../base/hash.js';
import type { StoredObject } from '../causality/index.js';

export interface OverlayEntry {
  readonly key: Uint8Array;
  readonly token: number;
  /** undefined: the batch deletes the key (purge). */
  object: StoredObject | undefined;
  /** `object` encoded: what the batch writes (undefined with it). */
  bytes: Uint8Array | undefined;
  /** The batch that wrote it last. */
  batch: number;
  next: OverlayEntry | undefined;
}

export class Overlay {
  readonly #buckets = new Map<number, OverlayEntry>();
  #size = 0;

  /** Keys with uncommitted objects. */
  get size(): number {
    return this.#size;
  }

  get(key: Uint8Array): OverlayEntry | undefined {
    if (this.#size === 0) return undefined;
    for (let e = this.#buckets.get(murmur3(key)); e !== undefined; e = e.next) if (sameBytes(e.key, key)) return e;
    return undefined;
  }

  /** Records `object` (undefined: deleted) as `batch`'s uncommitted state of `key`; returns its entry. */
  set(key: Uint8Array, object: StoredObject | undefined, bytes: Uint8Array | undefined, batch: number): OverlayEntry {
    const token = murmur3(key);
    const head = this.#buckets.get(token);
    for (let e = head; e !== undefined; e = e.next) {
      if (!sameBytes(e.key, key)) continue;
      e.object = object;
      e.bytes = bytes;
      e.batch = batch;
      return e;
    }
    const entry: OverlayEntry = { key, token, object, bytes, batch, next: head };
    this.#buckets.set(token, entry);
    this.#size++;
    return entry;
  }

  /** Drops `entry` if `batch` is still the last batch that wrote it. */
  release(entry: OverlayEntry, batch: number): void {
    if (entry.batch !== batch) return;
    let previous: OverlayEntry | undefined;
    for (let e = this.#buckets.get(entry.token); e !== undefined; previous = e, e = e.next) {
      if (e !== entry) continue;
      if (previous) previous.next = e.next;
      else if (e.next) this.#buckets.set(e.token, e.next);
      else this.#buckets.delete(e.token);
      entry.batch = -1;
      this.#size--;
      return;
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
