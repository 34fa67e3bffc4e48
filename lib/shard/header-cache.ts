/**
 * The shard's version-header cache: key → the key's stored object without its values (lib/causality
 * version-headers.ts), so that most client writes skip the read of
 * the whole stored object (for a 10 KiB value: a value-log pread, a CRC and a decode) that they
 * need only to compute the next DVV set. The "keep what a replica write needs where it
 * is cheap to find".
 *
 * Owner: the shard actor, on the shard's thread. Coherent by construction: the actor is the
 * only writer of its engine, and it updates the cache on every path that changes a key (client
 * writes and replica merges set the new state when they stage it, a purge or a failed commit
 * deletes it, a partition drop clears everything). A key not in the cache behaves exactly as
 * without one. Compaction's expiry filter rewrites objects behind the actor's back; the header
 * functions are exact in spite of it (version-headers.ts says why).
 *
 * Bounded: an LRU list within `budgetBytes` of estimated heap (`estimateBytes`); 0 turns the
 * cache off. Lookups are by the key's murmur3 token with chaining, like the overlay: no string
 * made from the key on lookups.
 *
 * Representation: per key, one entry and two latin1 strings — the key (request keys are views
 * into the frame arena's chunks, which a cached view would keep alive) and its headers in the
 * stored-object format with values emptied (`encodeHeaders`), about 250 bytes for a key with
 * one sibling. Strings hold no pointers and need no malloc'd backing store, so the garbage
 * collector's marking, which the shard's churn of 10-30 KiB buffers starts often, pays a few
 * objects per key instead of a dozen: headers kept as objects made blind 10 KiB overwrites
 * (which gain nothing from the cache) cost about 20% more CPU in a profile. A hit decodes the
 * headers into short-lived objects.
 */

import { Buffer } from 'node:buffer';
import { murmur3 } from '../base/hash.js';
import { decodeHeaders, encodeHeaders, type StoredObject } from '../causality/index.js';

/** What `stats()` of a shard reports of its header cache. */
export interface HeaderCacheStats {
  entries: number;
  /** Estimated heap bytes of the entries. */
  bytes: number;
  budgetBytes: number;
  /** Lookups that found the key, and that did not. */
  hits: number;
  misses: number;
  /** Hits whose write still needed the whole stored object (it keeps an old value). */
  fallbacks: number;
  evictions: number;
}

interface CacheEntry {
  /** The key's bytes as a latin1 string: heap memory, not a malloc'd backing store per key. */
  readonly key: string;
  readonly token: number;
  /** The key's headers (encodeHeaders) as a latin1 string: one heap object, nothing to trace. */
  headers: string;
  bytes: number;
  /** Bucket chain. */
  next: CacheEntry | undefined;
  /** LRU list: toward the most and the least recently used. */
  newer: CacheEntry | undefined;
  older: CacheEntry | undefined;
}

/**
 * Estimated heap bytes of one cached key beyond its key's and its headers' lengths: the entry,
 * two string headers and the bucket, measured on Node 20 (heapUsed over 100k cached keys).
 */
const entryBytes = 190;

/** The estimated heap bytes of one cached key whose encoded headers take `headerBytes`. */
export function estimateBytes(key: Uint8Array, headerBytes: number): number {
  return entryBytes + key.length + headerBytes;
}

export class HeaderCache {
  readonly #buckets = new Map<number, CacheEntry>();
  readonly #budgetBytes: number;
  #newest: CacheEntry | undefined;
  #oldest: CacheEntry | undefined;
  #entries = 0;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #fallbacks = 0;
  #evictions = 0;

  constructor(budgetBytes: number) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 0) throw new RangeError('headerCacheBytes must be a non-negative integer');
    this.#budgetBytes = budgetBytes;
  }

  /** The key's headers, or undefined (not cached); a hit makes the key the most recently used. */
  get(key: Uint8Array): StoredObject | undefined {
    if (this.#budgetBytes === 0) return undefined;
    const entry = this.#entries === 0 ? undefined : this.#find(key, murmur3(key));
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#touch(entry);
    return decodeHeaders(Buffer.from(entry.headers, 'latin1'));
  }

  /** Counts a hit whose write had to read the stored object after all. */
  noteFallback(): void {
    this.#fallbacks++;
  }

  /** Caches the headers of `object`, the key's state from now on (or forgets the key if they cannot be cached). */
  set(key: Uint8Array, object: StoredObject): void {
    if (this.#budgetBytes === 0) return;
    const token = murmur3(key);
    const encoded = encodeHeaders(object);
    let entry = this.#entries === 0 ? undefined : this.#find(key, token);
    if (encoded === undefined) {
      if (entry !== undefined) this.#remove(entry);
      return;
    }
    const headers = latin1Of(encoded);
    const bytes = estimateBytes(key, encoded.length);
    if (entry === undefined) {
      entry = { key: latin1Of(key), token, headers, bytes, next: this.#buckets.get(token), newer: undefined, older: undefined };
      this.#buckets.set(token, entry);
      this.#entries++;
    } else {
      this.#bytes -= entry.bytes;
      entry.headers = headers;
      entry.bytes = bytes;
      this.#unlink(entry);
    }
    this.#bytes += bytes;
    this.#linkNewest(entry);
    while (this.#bytes > this.#budgetBytes && this.#oldest !== undefined) {
      this.#remove(this.#oldest);
      this.#evictions++;
    }
  }

  /** Forgets `key` (its state is unknown or gone). */
  delete(key: Uint8Array): void {
    const entry = this.#entries === 0 ? undefined : this.#find(key, murmur3(key));
    if (entry !== undefined) this.#remove(entry);
  }

  /** Forgets every key. */
  clear(): void {
    this.#buckets.clear();
    this.#newest = this.#oldest = undefined;
    this.#entries = 0;
    this.#bytes = 0;
  }

  stats(): HeaderCacheStats {
    return { entries: this.#entries, bytes: this.#bytes, budgetBytes: this.#budgetBytes, hits: this.#hits, misses: this.#misses, fallbacks: this.#fallbacks, evictions: this.#evictions };
  }

  #find(key: Uint8Array, token: number): CacheEntry | undefined {
    for (let e = this.#buckets.get(token); e !== undefined; e = e.next) if (sameBytes(e.key, key)) return e;
    return undefined;
  }

  #touch(entry: CacheEntry): void {
    if (entry === this.#newest) return;
    this.#unlink(entry);
    this.#linkNewest(entry);
  }

  #linkNewest(entry: CacheEntry): void {
    entry.older = this.#newest;
    entry.newer = undefined;
    if (this.#newest !== undefined) this.#newest.newer = entry;
    this.#newest = entry;
    this.#oldest ??= entry;
  }

  #unlink(entry: CacheEntry): void {
    if (entry.newer !== undefined) entry.newer.older = entry.older;
    else this.#newest = entry.older;
    if (entry.older !== undefined) entry.older.newer = entry.newer;
    else this.#oldest = entry.newer;
    entry.newer = entry.older = undefined;
  }

  #remove(entry: CacheEntry): void {
    this.#unlink(entry);
    let previous: CacheEntry | undefined;
    for (let e = this.#buckets.get(entry.token); e !== undefined; previous = e, e = e.next) {
      if (e !== entry) continue;
      if (previous !== undefined) previous.next = e.next;
      else if (e.next !== undefined) this.#buckets.set(e.token, e.next);
      else this.#buckets.delete(e.token);
      break;
    }
    this.#entries--;
    this.#bytes -= entry.bytes;
  }
}

function latin1Of(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

function sameBytes(a: string, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = 0; i < n; i++) if (a.charCodeAt(i) !== b[i]) return false;
  return true;
}
