/**
 * Writes one SSTable (format: sstable-format.ts) from entries given in strictly increasing
 * key order: by a memtable flush or a compaction merge.
 *
 * Owned by the thread doing the flush or the compaction; one builder writes one file, start
 * to end, and is then done. The file is created with O_EXCL and becomes durable in `finish()`
 * (fsync of the file); making it live (directory fsync, manifest record) is the engine's job,
 * so a crash before that leaves an orphan the engine deletes on recovery.
 *
 * Invariants (asserted: breaking one is an engine bug): keys strictly increase; a tombstone
 * has an empty value; a table has at least one entry; nothing is added after finish/abandon.
 *
 * Compression: lz4 per data block when it saves 12.5%, with lz4 skipped on a failed sample
 * after a block that did not compress (compression.ts, BlockCompressor).
 *
 * Cost: one pass, no per-entry allocation beyond the bloom hash slot (4 bytes per key).
 * Output is buffered and appended in chunks of ≥ WRITE_CHUNK_BYTES, not per block: at 4 KiB
 * blocks that is 16x fewer write calls. Memory: one block, one chunk, the index (one key per
 * block) and the key hashes.
 */

import { assert } from '../base/assert.js';
import { limits } from '../base/limits.js';
import type { FileHandle, FileSystem } from './file-system.js';
import { BloomFilterBuilder } from './bloom-filter.js';
import { BlockCompressor, type CompressionName, type CompressionType, CompressionType as Compression, compressionTypeOf } from './compression.js';
import {
  BLOCK_TRAILER_BYTES, type BlockHandle, DATA_RESTART_INTERVAL, FOOTER_BYTES, INDEX_RESTART_INTERVAL,
  SSTABLE_FORMAT_VERSION, type TableProperties, blockCrc, encodeFooter, encodeHandle, encodeProperties, writeVarint,
} from './sstable-format.js';
import type { EntryKind } from './write-batch.js';
import { VALUE_POINTER_BYTES } from './value-pointer.js';

export interface TableBuilderOptions {
  /** Target uncompressed size of a data block. */
  blockBytes: number;
  /** Bloom filter bits per key; 0 writes no filter. */
  bloomBitsPerKey: number;
  compression: CompressionName;
}

export const tableBuilderDefaults: Readonly<TableBuilderOptions> = {
  blockBytes: limits.blockBytesDefault,
  bloomBitsPerKey: limits.bloomBitsPerKeyDefault,
  compression: 'lz4',
};

/** What `finish()` returns: the stored properties and the final file size. */
export interface BuiltTable extends TableProperties {
  fileBytes: number;
}

/** Appends are gathered until at least this many bytes are pending. */
export const WRITE_CHUNK_BYTES = 64 * 1024;
const BLOCK_BYTES_MAX = 64 * 1024 * 1024;
const EMPTY: Uint8Array = new Uint8Array(0);

/** Encodes one block's entries with prefix compression and a restart array. */
class BlockBuilder {
  #buf = new Uint8Array(8 * 1024);
  #length = 0;
  #restarts: number[] = [0];
  #entriesSinceRestart = 0;
  readonly #interval: number;

  constructor(restartInterval: number) {
    this.#interval = restartInterval;
  }

  get empty(): boolean {
    return this.#length === 0;
  }

  /** Size of the block if finished now. */
  get estimatedBytes(): number {
    return this.#length + 4 * this.#restarts.length + 4;
  }

  /** `shared`: bytes the key shares with the previous key added (ignored at a restart). */
  add(key: Uint8Array, shared: number, kind: EntryKind, value: Uint8Array): void {
    if (this.#entriesSinceRestart === this.#interval) {
      this.#restarts.push(this.#length);
      this.#entriesSinceRestart = 0;
    }
    if (this.#entriesSinceRestart === 0) shared = 0;
    const unshared = key.length - shared;
    this.#reserve(15 + unshared + value.length);
    const buf = this.#buf;
    let pos = writeVarint(buf, this.#length, shared);
    pos = writeVarint(buf, pos, unshared);
    pos = writeVarint(buf, pos, value.length * 4 + kind);
    for (let i = shared; i < key.length; i++) buf[pos++] = key[i]!;
    if (value.length > 0) buf.set(value, pos);
    this.#length = pos + value.length;
    this.#entriesSinceRestart++;
  }

  /** The finished block: a view valid until the next reset(). */
  finish(): Uint8Array {
    const restarts = this.#restarts;
    this.#reserve(4 * restarts.length + 4);
    const view = new DataView(this.#buf.buffer);
    let pos = this.#length;
    for (const r of restarts) {
      view.setUint32(pos, r, true);
      pos += 4;
    }
    view.setUint32(pos, restarts.length, true);
    return this.#buf.subarray(0, pos + 4);
  }

  reset(): void {
    this.#length = 0;
    this.#restarts.length = 1;
    this.#entriesSinceRestart = 0;
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#buf.length * 2));
    grown.set(this.#buf.subarray(0, this.#length));
    this.#buf = grown;
  }
}

export class TableBuilder {
  readonly path: string;
  readonly #fs: FileSystem;
  readonly #file: FileHandle;
  readonly #blockBytes: number;
  readonly #compressor: BlockCompressor;
  readonly #block = new BlockBuilder(DATA_RESTART_INTERVAL);
  readonly #bloom: BloomFilterBuilder;
  readonly #indexKeys: Uint8Array[] = [];
  readonly #indexHandles: BlockHandle[] = [];
  #indexBytes = 0;
  #lastKey = new Uint8Array(64);
  #lastKeyLength = 0;
  #smallestKey = EMPTY;
  #entryCount = 0;
  #tombstoneCount = 0;
  #rawKeyBytes = 0;
  #rawValueBytes = 0;
  #out = new Uint8Array(2 * WRITE_CHUNK_BYTES);
  #outLength = 0;
  #flushedBytes = 0;
  #state: 'open' | 'finished' | 'abandoned' = 'open';
  #closed = false;

  constructor(fs: FileSystem, path: string, options: TableBuilderOptions) {
    const { blockBytes, bloomBitsPerKey, compression } = options;
    if (!(Number.isInteger(blockBytes) && blockBytes >= 1 && blockBytes <= BLOCK_BYTES_MAX)) {
      throw new RangeError(`blockBytes must be an integer in 1..${BLOCK_BYTES_MAX}, got ${blockBytes}`);
    }
    this.#blockBytes = blockBytes;
    this.#compressor = new BlockCompressor(compressionTypeOf(compression));
    this.#bloom = new BloomFilterBuilder(bloomBitsPerKey);
    this.#fs = fs;
    this.path = path;
    this.#file = fs.createExclusive(path);
  }

  get entryCount(): number {
    return this.#entryCount;
  }

  /** The file size if finished now; compaction starts a new table once it passes its target. */
  get estimatedSizeBytes(): number {
    return (
      this.#flushedBytes + this.#outLength + this.#block.estimatedBytes + this.#indexBytes + this.#bloom.estimatedBytes +
      2 * this.#lastKeyLength + 64 + 4 * BLOCK_TRAILER_BYTES + FOOTER_BYTES
    );
  }

  add(key: Uint8Array, kind: EntryKind, value: Uint8Array): void {
    assert(this.#state === 'open', `add to a ${this.#state} table ${this.path}`);
    assert(
      kind === 0 || (kind === 1 && value.length === 0) || (kind === 2 && value.length === VALUE_POINTER_BYTES),
      'an entry is a value, a tombstone with an empty value or a value pointer',
    );
    assert(key.length + value.length <= limits.entryBytesMax, 'entry above entryBytesMax');
    const shared = this.#sharedWithLast(key);
    if (this.#entryCount === 0) this.#smallestKey = key.slice();
    this.#block.add(key, shared, kind, value);
    this.#setLastKey(key);
    this.#bloom.addKey(key);
    this.#entryCount++;
    if (kind === 1) this.#tombstoneCount++;
    this.#rawKeyBytes += key.length;
    this.#rawValueBytes += value.length;
    if (this.#block.estimatedBytes >= this.#blockBytes) this.#flushBlock();
  }

  /** Writes filter, index, properties and footer; fsyncs and closes the file. */
  finish(): BuiltTable {
    assert(this.#state === 'open', `finish of a ${this.#state} table ${this.path}`);
    assert(this.#entryCount > 0, 'an empty table is not allowed');
    this.#state = 'finished';
    if (!this.#block.empty) this.#flushBlock();
    const filter = this.#writeBlock(this.#bloom.finish(), Compression.none);
    const indexBlock = new BlockBuilder(INDEX_RESTART_INTERVAL);
    for (let i = 0; i < this.#indexKeys.length; i++) {
      indexBlock.add(this.#indexKeys[i]!, 0, 0, encodeHandle(this.#indexHandles[i]!));
    }
    const index = this.#writeBlock(indexBlock.finish(), Compression.none);
    const props: TableProperties = {
      entryCount: this.#entryCount,
      tombstoneCount: this.#tombstoneCount,
      rawKeyBytes: this.#rawKeyBytes,
      rawValueBytes: this.#rawValueBytes,
      dataBlockCount: this.#indexKeys.length,
      smallestKey: this.#smallestKey,
      largestKey: this.#lastKey.slice(0, this.#lastKeyLength),
    };
    const properties = this.#writeBlock(encodeProperties(props), Compression.none);
    this.#write(encodeFooter({ index, filter, properties, version: SSTABLE_FORMAT_VERSION }));
    this.#flushOutput();
    this.#file.sync();
    this.#closed = true;
    this.#file.close();
    return { ...props, fileBytes: this.#flushedBytes };
  }

  /** Closes (if still open) and removes the file: a failed flush or compaction. */
  abandon(): void {
    if (this.#state === 'abandoned') return;
    this.#state = 'abandoned';
    try {
      if (!this.#closed) {
        this.#closed = true;
        this.#file.close();
      }
    } finally {
      this.#fs.remove(this.path);
    }
  }

  /** Bytes `key` shares with the previous key; asserts that it sorts strictly after it. */
  #sharedWithLast(key: Uint8Array): number {
    if (this.#entryCount === 0) return 0;
    const last = this.#lastKey;
    const lastLength = this.#lastKeyLength;
    const n = Math.min(lastLength, key.length);
    let i = 0;
    while (i < n && key[i] === last[i]) i++;
    assert(i < n ? key[i]! > last[i]! : key.length > lastLength, `keys must strictly increase in ${this.path}`);
    return i;
  }

  #setLastKey(key: Uint8Array): void {
    if (key.length > this.#lastKey.length) this.#lastKey = new Uint8Array(Math.max(key.length, 2 * this.#lastKey.length));
    this.#lastKey.set(key);
    this.#lastKeyLength = key.length;
  }

  #flushBlock(): void {
    const { type, bytes } = this.#compressor.compress(this.#block.finish());
    const handle = this.#writeBlock(bytes, type);
    this.#block.reset();
    this.#indexKeys.push(this.#lastKey.slice(0, this.#lastKeyLength));
    this.#indexHandles.push(handle);
    this.#indexBytes += this.#lastKeyLength + 8;
  }

  #writeBlock(stored: Uint8Array, type: CompressionType): BlockHandle {
    assert(stored.length < 2 ** 32, 'block of 4 GiB or more');
    const handle = { offset: this.#flushedBytes + this.#outLength, sizeBytes: stored.length };
    this.#write(stored);
    const trailer = this.#reserve(BLOCK_TRAILER_BYTES);
    const crc = blockCrc(stored, type);
    const out = this.#out;
    out[trailer] = type;
    out[trailer + 1] = crc & 0xff;
    out[trailer + 2] = (crc >>> 8) & 0xff;
    out[trailer + 3] = (crc >>> 16) & 0xff;
    out[trailer + 4] = crc >>> 24;
    if (this.#outLength >= WRITE_CHUNK_BYTES) this.#flushOutput();
    return handle;
  }

  #write(bytes: Uint8Array): void {
    const at = this.#reserve(bytes.length); // may replace #out: read it after
    this.#out.set(bytes, at);
  }

  /** Makes room for `length` more pending bytes; returns where they go. */
  #reserve(length: number): number {
    const at = this.#outLength;
    if (at + length > this.#out.length) {
      const grown = new Uint8Array(Math.max(at + length, 2 * this.#out.length));
      grown.set(this.#out.subarray(0, at));
      this.#out = grown;
    }
    this.#outLength = at + length;
    return at;
  }

  /** Appends the pending bytes; the chunk is handed over, never reused. */
  #flushOutput(): void {
    if (this.#outLength === 0) return;
    this.#file.append(this.#out.subarray(0, this.#outLength));
    this.#flushedBytes += this.#outLength;
    this.#out = new Uint8Array(2 * WRITE_CHUNK_BYTES);
    this.#outLength = 0;
  }
}
