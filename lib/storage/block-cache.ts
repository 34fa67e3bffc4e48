/**
 * The block cache: decoded (CRC-checked, uncompressed) SSTable blocks, least recently used
 * evicted first, bounded in bytes (LevelDB's ShardedLRUCache, one shard).
 *
 * Owned by one engine, and so by one shard thread; shared by every table of that engine.
 * Keyed by (file number, block offset): file numbers are never reused by an engine, so an
 * entry can never describe another file's bytes. The engine calls `evictFile` when it deletes
 * a table; closing a reader alone keeps its blocks (it may be reopened).
 *
 * Invariants: usedBytes = Σ charges of cached blocks ≤ capacityBytes after every insert; a block
 * whose charge alone exceeds the capacity is not cached. A block's charge is its bytes plus a
 * fixed per-entry overhead.
 *
 * Structure: a per-file Map from offset to node (O(1) lookups, and evictFile touches only that
 * file's blocks) plus one intrusive doubly-linked recency list. A hit relinks a node in O(1);
 * a delete+set on a single Map would leave holes that V8 rehashes away on the hot path.
 */

import type { Block } from './sstable-format.js';

/** Rough cost of one cached block's objects beyond its bytes. */
export const BLOCK_CACHE_ENTRY_OVERHEAD_BYTES = 128;

class CacheNode {
  prev: CacheNode = this;
  next: CacheNode = this;
  constructor(
    readonly fileNumber: number,
    readonly offset: number,
    readonly block: Block | undefined,
    readonly chargeBytes: number,
  ) {}
}

export interface BlockCacheStats {
  hits: number;
  misses: number;
  usedBytes: number;
  capacityBytes: number;
  blockCount: number;
}

export function blockChargeBytes(block: Block): number {
  return block.data.length + block.restarts.byteLength + BLOCK_CACHE_ENTRY_OVERHEAD_BYTES;
}

export class BlockCache {
  readonly capacityBytes: number;
  #files = new Map<number, Map<number, CacheNode>>();
  /** Sentinel of the recency list: head.next is the most recently used. */
  #head = new CacheNode(-1, -1, undefined, 0);
  #usedBytes = 0;
  #blockCount = 0;
  #hits = 0;
  #misses = 0;

  constructor(capacityBytes: number) {
    if (!(Number.isSafeInteger(capacityBytes) && capacityBytes >= 0)) {
      throw new RangeError(`capacityBytes must be a non-negative integer, got ${capacityBytes}`);
    }
    this.capacityBytes = capacityBytes;
  }

  get stats(): BlockCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      usedBytes: this.#usedBytes,
      capacityBytes: this.capacityBytes,
      blockCount: this.#blockCount,
    };
  }

  /** The cached block, made most recently used; counts a hit or a miss. */
  get(fileNumber: number, offset: number): Block | undefined {
    const node = this.#files.get(fileNumber)?.get(offset);
    if (node === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    const head = this.#head;
    if (head.next !== node) {
      unlink(node);
      linkAfter(head, node);
    }
    return node.block;
  }

  /** Caches a block just read from disk, evicting the least recently used to make room. */
  insert(fileNumber: number, offset: number, block: Block): void {
    const chargeBytes = blockChargeBytes(block);
    if (chargeBytes > this.capacityBytes) return;
    let blocks = this.#files.get(fileNumber);
    if (blocks === undefined) {
      blocks = new Map();
      this.#files.set(fileNumber, blocks);
    }
    const old = blocks.get(offset);
    if (old !== undefined) this.#remove(old);
    const node = new CacheNode(fileNumber, offset, block, chargeBytes);
    blocks.set(offset, node);
    linkAfter(this.#head, node);
    this.#usedBytes += chargeBytes;
    this.#blockCount++;
    while (this.#usedBytes > this.capacityBytes) this.#remove(this.#head.prev);
  }

  /** Drops every block of a file (the engine deleted it). */
  evictFile(fileNumber: number): void {
    const blocks = this.#files.get(fileNumber);
    if (blocks === undefined) return;
    for (const node of blocks.values()) this.#unaccount(node);
    this.#files.delete(fileNumber);
  }

  clear(): void {
    this.#files.clear();
    this.#head.next = this.#head;
    this.#head.prev = this.#head;
    this.#usedBytes = 0;
    this.#blockCount = 0;
  }

  #remove(node: CacheNode): void {
    const blocks = this.#files.get(node.fileNumber)!;
    blocks.delete(node.offset);
    if (blocks.size === 0) this.#files.delete(node.fileNumber);
    this.#unaccount(node);
  }

  #unaccount(node: CacheNode): void {
    unlink(node);
    this.#usedBytes -= node.chargeBytes;
    this.#blockCount--;
  }
}

function unlink(node: CacheNode): void {
  node.prev.next = node.next;
  node.next.prev = node.prev;
}

function linkAfter(anchor: CacheNode, node: CacheNode): void {
  node.prev = anchor;
  node.next = anchor.next;
  anchor.next.prev = node;
  anchor.next = node;
}
