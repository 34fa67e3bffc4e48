/**
 * Reads one SSTable (format: sstable-format.ts): point reads and ordered cursors.
 *
 * Owned by one engine's thread; every read is synchronous (file-system.ts says why). `open`
 * validates the footer and loads the properties, bloom filter and index into memory (the
 * index as arrays, so a lookup is a binary search without decoding); data blocks come
 * through the engine's shared BlockCache.
 *
 * Corruption is always reported, never skipped or returned: every block's CRC32C is checked
 * when it is read from disk, and every length is bounds-checked when decoded, so a damaged
 * file yields KV_CORRUPTION naming the file and offset. Other IO errors (EIO) pass through
 * unchanged for the engine to handle.
 *
 * Cost of a get with the block cached: one murmur3 hash and k bit probes; a binary search of
 * the index (mostly comparing 4-byte key prefixes held in a Uint32Array); a binary search of
 * the block's restart points; a scan of at most 16 entry headers that compares only the bytes
 * not shared with the previous key (findInBlock). The engine's `getValue` takes the bloom hash
 * from its caller (one hash per engine get, however many tables it probes) and allocates only
 * the value view into the cached block. A miss adds one read, a CRC and maybe an lz4 decode. Measured
 * here: ~250k gets/s on one table of 1M keys with every block cached, ~4M/s for absent keys.
 * Cursors allocate a key and a value view per entry (~4M entries/s).
 */

import { assert } from '../base/assert.js';
import { ErrorCode, RingkvError } from '../base/errors.js';
import type { BlockCache } from './block-cache.js';
import { BloomFilter, bloomHash } from './bloom-filter.js';
import { uncompressBlock } from './compression.js';
import { type FileHandle, type FileSystem, readExactly } from './file-system.js';
import {
  BLOCK_TRAILER_BYTES, Block, type BlockHandle, EntryView, FOOTER_BYTES, FieldReader, SSTABLE_FORMAT_VERSION,
  SSTABLE_FORMAT_VERSION_MIN, kindBitsOf, type TableProperties, checkTrailer, compareBytes, compareToRange, corruption, decodeEntry, decodeFooter, decodeProperties,
} from './sstable-format.js';
import { EntryKind } from './write-batch.js';

export interface TableEntry {
  kind: EntryKind;
  /** A view into a cached block: valid as long as it is referenced; do not mutate. */
  value: Uint8Array;
}

export interface TableReaderStats {
  /** Point reads that consulted the bloom filter. */
  bloomChecks: number;
  /** ... that it answered "certainly absent". */
  bloomNegatives: number;
  /** ... that it let through for a key the table does not hold. */
  bloomFalsePositives: number;
  /** Data blocks read from disk (cache misses). */
  blockReads: number;
}

export interface TableIteratorOptions {
  /** Cache the blocks this cursor reads (default true; compactions pass false). */
  fillCache?: boolean;
}

const EMPTY: Uint8Array = new Uint8Array(0);

/** Reusable state of an in-block search: the decoded entry and its rebuilt key. */
class SeekScratch {
  readonly view = new EntryView();
  key = new Uint8Array(64);
  keyLength = 0;
}

/** Rebuilds the key of the entry in `s.view` on top of the previous key in `s.key`. */
function rebuildKey(s: SeekScratch, data: Uint8Array): number {
  const { shared, unshared, keyStart } = s.view;
  const keyLength = shared + unshared;
  if (keyLength > s.key.length) {
    const grown = new Uint8Array(Math.max(keyLength, 2 * s.key.length));
    grown.set(s.key.subarray(0, shared));
    s.key = grown;
  }
  const key = s.key;
  for (let i = 0; i < unshared; i++) key[shared + i] = data[keyStart + i]!;
  return keyLength;
}

/** Offset of the last restart entry whose key is below target (the first if none is). */
function lastRestartBelow(block: Block, target: Uint8Array, view: EntryView): number {
  const data = block.data;
  const restarts = block.restarts;
  let lo = 0;
  let hi = restarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    decodeEntry(block, restarts[mid]!, 0, view); // a restart shares nothing: its key is in place
    if (compareToRange(target, data, view.keyStart, view.keyStart + view.unshared) > 0) lo = mid;
    else hi = mid - 1;
  }
  return restarts[lo]!;
}

/**
 * Positions `s` on the first entry of `block` whose key is ≥ target, rebuilding keys as it
 * scans (a cursor needs the key). Returns false if every key is smaller.
 */
function seekInBlock(block: Block, target: Uint8Array, s: SeekScratch): boolean {
  const data = block.data;
  const view = s.view;
  const limit = block.restartsOffset;
  let p = lastRestartBelow(block, target, view);
  let keyLength = 0;
  while (p < limit) {
    decodeEntry(block, p, keyLength, view);
    keyLength = rebuildKey(s, data);
    if (compareToRange(target, s.key, 0, keyLength) <= 0) {
      s.keyLength = keyLength;
      return true;
    }
    p = view.next;
  }
  return false;
}

const FOUND = 1;
const ABSENT = 0;
/** Every key of the block is below target: the index said otherwise, so the table is corrupt. */
const PAST_END = -1;

/**
 * Whether `block` holds `target`: FOUND (then `view` describes its entry), ABSENT or PAST_END.
 * The point-read path: keys are never rebuilt. `matched` is the length of the prefix target
 * shares with the previous key (which sorts below target); an entry sharing s bytes with that
 * key compares to target as it did if s > matched, sorts above target if s < matched, and
 * needs only its own unshared bytes compared if s == matched. (A restart stores s = 0 by
 * construction, not the real shared length, so its key is compared in full.)
 */
function findInBlock(block: Block, target: Uint8Array, view: EntryView): number {
  const data = block.data;
  const limit = block.restartsOffset;
  const targetLength = target.length;
  let p = lastRestartBelow(block, target, view);
  let keyLength = 0;
  let matched = 0;
  while (p < limit) {
    decodeEntry(block, p, keyLength, view);
    const shared = view.shared;
    keyLength = shared + view.unshared;
    // A restart stores shared = 0 whatever the real common prefix: compare it in full.
    if (shared === 0) matched = 0;
    else if (shared < matched) return ABSENT;
    if (shared === matched) {
      const start = view.keyStart - shared;
      const n = keyLength < targetLength ? keyLength : targetLength;
      let i = matched;
      while (i < n && data[start + i] === target[i]) i++;
      if (i === n) {
        if (keyLength === targetLength) return FOUND;
        if (keyLength > targetLength) return ABSENT;
      } else if (data[start + i]! > target[i]!) {
        return ABSENT;
      }
      matched = i;
    }
    p = view.next;
  }
  return PAST_END;
}

/** The first 4 bytes of a key as a big-endian number, zero-padded: orders keys coarsely. */
function prefixOf(key: Uint8Array): number {
  const n = key.length;
  return (
    ((n > 0 ? key[0]! << 24 : 0) | (n > 1 ? key[1]! << 16 : 0) | (n > 2 ? key[2]! << 8 : 0) | (n > 3 ? key[3]! : 0)) >>> 0
  );
}

export class TableReader {
  readonly path: string;
  readonly fileNumber: number;
  readonly fileBytes: number;
  readonly properties: TableProperties;
  readonly stats: TableReaderStats = { bloomChecks: 0, bloomNegatives: 0, bloomFalsePositives: 0, blockReads: 0 };
  readonly #file: FileHandle;
  readonly #cache: BlockCache | undefined;
  readonly #filter: BloomFilter | undefined;
  /** Last key of each data block, and where each block is stored. */
  readonly #indexKeys: Uint8Array[];
  readonly #blockOffsets: Float64Array;
  readonly #blockSizes: Float64Array;
  /** prefixOf each index key: most binary-search steps compare two numbers. */
  readonly #indexPrefixes: Uint32Array;
  readonly #view = new EntryView();
  readonly #kindBits: number;
  #closed = false;
  /** The kind of the value the last `getValue` returned: value, or value pointer. */
  lastKind: EntryKind = EntryKind.value;

  private constructor(
    path: string, fileNumber: number, file: FileHandle, cache: BlockCache | undefined,
    parts: { fileBytes: number; properties: TableProperties; filter: Uint8Array; index: DecodedIndex; kindBits: number },
  ) {
    this.#kindBits = parts.kindBits;
    this.path = path;
    this.fileNumber = fileNumber;
    this.#file = file;
    this.#cache = cache;
    this.fileBytes = parts.fileBytes;
    this.properties = parts.properties;
    this.#filter = parts.filter.length > 0 ? new BloomFilter(parts.filter) : undefined;
    this.#indexKeys = parts.index.keys;
    this.#indexPrefixes = Uint32Array.from(parts.index.keys, prefixOf);
    this.#blockOffsets = parts.index.offsets;
    this.#blockSizes = parts.index.sizes;
  }

  /**
   * Opens and validates a table; throws KV_CORRUPTION if its footer or meta blocks are bad.
   * Without a cache (a compaction job in a worker) every data block is read from disk.
   */
  static open(fs: FileSystem, path: string, fileNumber: number, cache: BlockCache | undefined): TableReader {
    const file = fs.openRead(path);
    try {
      const fileBytes = file.size();
      if (fileBytes < FOOTER_BYTES) throw corruption(`file of ${fileBytes} bytes is shorter than a footer`, path, 0);
      const footerOffset = fileBytes - FOOTER_BYTES;
      const footer = decodeFooter(readAt(file, footerOffset, FOOTER_BYTES), path, footerOffset);
      if (footer.version < SSTABLE_FORMAT_VERSION_MIN || footer.version > SSTABLE_FORMAT_VERSION) {
        throw new RingkvError(ErrorCode.incompatible, `sstable format version ${footer.version} is not within ${SSTABLE_FORMAT_VERSION_MIN}..${SSTABLE_FORMAT_VERSION} (${path})`, {
          file: path,
          offset: footerOffset + 36,
        });
      }
      for (const handle of [footer.index, footer.filter, footer.properties]) {
        if (handle.offset + handle.sizeBytes + BLOCK_TRAILER_BYTES > footerOffset) {
          throw corruption('block handle beyond the footer', path, handle.offset);
        }
      }
      const properties = decodeProperties(readBlock(file, footer.properties), path, footer.properties.offset);
      const filter = readBlock(file, footer.filter);
      const kindBits = kindBitsOf(footer.version);
      const indexBlock = Block.parse(readBlock(file, footer.index), path, footer.index.offset, kindBits);
      const dataEnd = Math.min(footer.index.offset, footer.filter.offset, footer.properties.offset);
      const index = decodeIndex(indexBlock, dataEnd, properties);
      return new TableReader(path, fileNumber, file, cache, { fileBytes, properties, filter, index, kindBits });
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** Memory this reader holds outside the block cache: its bloom filter and its index. */
  get residentBytes(): { filterBytes: number; indexBytes: number } {
    let indexBytes = this.#indexPrefixes.byteLength + this.#blockOffsets.byteLength + this.#blockSizes.byteLength;
    for (const k of this.#indexKeys) indexBytes += k.length;
    return { filterBytes: this.#filter?.bytes.length ?? 0, indexBytes };
  }

  get blockCount(): number {
    return this.#indexKeys.length;
  }

  /** The entry stored for `key` (a tombstone included), or undefined if the table has none. */
  get(key: Uint8Array): TableEntry | undefined {
    const value = this.getValue(key, bloomHash(key));
    if (value === undefined) return undefined;
    return value === null ? { kind: EntryKind.tombstone, value: EMPTY } : { kind: this.lastKind, value };
  }

  /**
   * The point read the engine runs: the value stored for `key` (a view into a cached block, do
   * not mutate), null for a tombstone, undefined if the table has no entry. `hash` is
   * bloomHash(key), computed once by the caller for every table it probes. When a value is
   * returned, `lastKind` says whether it is the value or a value pointer (value-pointer.ts).
   */
  getValue(key: Uint8Array, hash: number): Uint8Array | null | undefined {
    const filter = this.#filter;
    if (filter !== undefined) {
      this.stats.bloomChecks++;
      if (!filter.mayContainHash(hash)) {
        this.stats.bloomNegatives++;
        return undefined;
      }
    }
    const i = this.findBlock(key);
    if (i < this.#indexKeys.length) {
      const block = this.blockAt(i, true);
      const view = this.#view;
      const found = findInBlock(block, key, view);
      if (found === FOUND) {
        const kind = view.kind;
        if (kind === EntryKind.tombstone) return null;
        this.lastKind = kind;
        return view.valueBytes === 0 ? EMPTY : block.data.subarray(view.valueStart, view.valueStart + view.valueBytes);
      }
      if (found === PAST_END) throw corruption('index key above the last key of its block', block.file, block.offset);
    }
    if (filter !== undefined) this.stats.bloomFalsePositives++;
    return undefined;
  }

  iterator(options: TableIteratorOptions = {}): TableIterator {
    assert(!this.#closed, `iterator over closed table ${this.path}`);
    return new TableIterator(this, options.fillCache ?? true);
  }

  /** Index of the first data block whose last key is ≥ key (blockCount if none). */
  findBlock(key: Uint8Array): number {
    const keys = this.#indexKeys;
    const prefixes = this.#indexPrefixes;
    const prefix = prefixOf(key);
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const p = prefixes[mid]!;
      if (p < prefix || (p === prefix && compareBytes(keys[mid]!, key) < 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Data block i, from the cache or read, CRC-checked and decoded from disk. */
  blockAt(i: number, fillCache: boolean): Block {
    assert(!this.#closed, `read of closed table ${this.path}`);
    const offset = this.#blockOffsets[i]!;
    const cache = this.#cache;
    const cached = cache?.get(this.fileNumber, offset);
    if (cached !== undefined) return cached;
    this.stats.blockReads++;
    const block = Block.parse(readBlock(this.#file, { offset, sizeBytes: this.#blockSizes[i]! }), this.path, offset, this.#kindBits);
    if (fillCache && cache !== undefined) cache.insert(this.fileNumber, offset, block);
    return block;
  }

  /** Closes the file. Cached blocks stay until the engine calls cache.evictFile. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/**
 * A forward cursor over a table, for scans and compaction merges. `key` is a fresh array per
 * entry and `value` a view into the block, so both stay valid after the cursor moves.
 */
export class TableIterator {
  readonly #reader: TableReader;
  readonly #fillCache: boolean;
  readonly #scratch = new SeekScratch();
  #block: Block | undefined;
  #blockIndex = 0;
  #valid = false;
  #key = EMPTY;
  #kind = 0;
  #value = EMPTY;

  constructor(reader: TableReader, fillCache: boolean) {
    this.#reader = reader;
    this.#fillCache = fillCache;
  }

  get valid(): boolean {
    return this.#valid;
  }
  get key(): Uint8Array {
    return this.#key;
  }
  get kind(): EntryKind {
    return this.#kind as EntryKind;
  }
  get value(): Uint8Array {
    return this.#value;
  }

  seekToFirst(): void {
    this.#valid = false;
    this.#enterBlock(0);
    this.#readEntry(0, EMPTY);
  }

  /** Positions on the first entry whose key is ≥ target (invalid if there is none). */
  seek(target: Uint8Array): void {
    this.#valid = false;
    const i = this.#reader.findBlock(target);
    if (i >= this.#reader.blockCount) return;
    const block = this.#enterBlock(i);
    const s = this.#scratch;
    if (!seekInBlock(block, target, s)) throw corruption('index key above the last key of its block', block.file, block.offset);
    this.#setEntry(block, s.key.slice(0, s.keyLength));
  }

  next(): void {
    assert(this.#valid, 'next() on an invalid table iterator');
    this.#valid = false;
    const block = this.#block!;
    const at = this.#scratch.view.next;
    if (at < block.restartsOffset) {
      this.#readEntry(at, this.#key);
    } else if (this.#blockIndex + 1 < this.#reader.blockCount) {
      this.#enterBlock(this.#blockIndex + 1);
      this.#readEntry(0, EMPTY);
    }
  }

  #enterBlock(i: number): Block {
    this.#block = undefined;
    const block = this.#reader.blockAt(i, this.#fillCache);
    this.#block = block;
    this.#blockIndex = i;
    return block;
  }

  /** Decodes the entry at `p` of the current block, whose previous key is `prev`. */
  #readEntry(p: number, prev: Uint8Array): void {
    const block = this.#block!;
    const view = this.#scratch.view;
    decodeEntry(block, p, prev.length, view);
    const key = new Uint8Array(view.shared + view.unshared);
    for (let i = 0; i < view.shared; i++) key[i] = prev[i]!;
    key.set(block.data.subarray(view.keyStart, view.keyStart + view.unshared), view.shared);
    this.#setEntry(block, key);
  }

  #setEntry(block: Block, key: Uint8Array): void {
    const view = this.#scratch.view;
    this.#key = key;
    this.#kind = view.kind;
    this.#value = block.data.subarray(view.valueStart, view.valueStart + view.valueBytes);
    this.#valid = true;
  }
}

interface DecodedIndex {
  keys: Uint8Array[];
  offsets: Float64Array;
  sizes: Float64Array;
}

/** Decodes and cross-checks the index: contiguous data blocks ending at dataEnd, keys increasing. */
function decodeIndex(block: Block, dataEnd: number, properties: TableProperties): DecodedIndex {
  const count = properties.dataBlockCount;
  const keys: Uint8Array[] = [];
  const offsets = new Float64Array(count);
  const sizes = new Float64Array(count);
  const view = new EntryView();
  const data = block.data;
  let expectedOffset = 0;
  let prev = EMPTY;
  for (let p = 0; p < block.restartsOffset; p = view.next) {
    if (keys.length === count) throw corruption('index has more entries than data blocks', block.file, block.offset);
    decodeEntry(block, p, 0, view); // every index entry is a restart: no shared prefix
    const key = data.subarray(view.keyStart, view.keyStart + view.unshared);
    const handle = new FieldReader(data, view.valueStart, view.next, block.file, block.offset);
    const offset = handle.varint();
    const sizeBytes = handle.varint();
    if (offset !== expectedOffset || (keys.length > 0 && compareBytes(prev, key) >= 0)) {
      throw corruption('index entries out of order', block.file, block.offset);
    }
    offsets[keys.length] = offset;
    sizes[keys.length] = sizeBytes;
    keys.push(key);
    expectedOffset = offset + sizeBytes + BLOCK_TRAILER_BYTES;
    prev = key;
  }
  if (keys.length !== count || expectedOffset !== dataEnd || compareBytes(prev, properties.largestKey) !== 0) {
    throw corruption('index does not match the data blocks', block.file, block.offset);
  }
  return { keys, offsets, sizes };
}

/** Reads `length` bytes at `position`; a short read means a truncated file: corruption. */
function readAt(file: FileHandle, position: number, length: number): Uint8Array {
  try {
    return readExactly(file, position, length);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ESHORT') throw corruption('file ends inside a block', file.path, position);
    throw error;
  }
}

/** Reads a block with its trailer, checks the CRC and uncompresses it. */
function readBlock(file: FileHandle, handle: BlockHandle): Uint8Array {
  const stored = readAt(file, handle.offset, handle.sizeBytes + BLOCK_TRAILER_BYTES);
  const type = checkTrailer(stored, file.path, handle.offset);
  try {
    return uncompressBlock(type, stored.subarray(0, handle.sizeBytes));
  } catch (error) {
    throw new RingkvError(ErrorCode.corruption, `undecodable block in ${file.path} at ${handle.offset}`, {
      file: file.path,
      offset: handle.offset,
    }, { cause: error });
  }
}
