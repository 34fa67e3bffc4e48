/**
 * Block compression: LZ4 blocks, size-prefixed (lz4-block.ts, the format lz4_flex wrote here
 * before; the native binding's synchronous calls leak memory, see lz4-block.ts).
 *
 * Owned by whichever thread builds or reads a table (a shard, or a compaction job); stateless.
 *
 * Stored compression types (frozen, they reach the disk in every block trailer):
 *   0 = none   the block bytes are stored as they are
 *   1 = lz4    [uncompressed length u32 LE][lz4 block stream] (lz4-block.ts)
 *
 * A block is stored compressed only if that saves at least 1/8 (12.5%) of its bytes, the
 * LevelDB rule: below that, the decompression cost on every cache miss is not worth the space.
 * Cost: lz4 in TypeScript compresses a few hundred MB/s and decompresses faster, about 3x on
 * typical data (the native binding was ~600 MiB/s and ~1.7 GiB/s, and leaked).
 *
 * Sample-based skipping (BlockCompressor): data that did not compress usually goes on not
 * compressing (random or already-compressed values), and an lz4 attempt on it costs as much as
 * on any data (it was 20% of a compaction thread's time with 10 KiB incompressible values).
 * After a block fails the 12.5% rule, the next blocks of at least SAMPLE_BLOCK_BYTES_MIN are
 * first tried on a SAMPLE_BYTES slice from their middle; if the slice saves less than 1/16,
 * the block is stored raw without an attempt. A block that compresses ends the skepticism.
 * Cost of a wrong guess: a block stored raw that would have compressed (the format allows
 * either; readers cannot tell); the stored bytes stay valid and readable.
 *
 * Decompression runs only after the block's CRC32C matched (table-reader.ts), so a failure
 * here means a writer bug or a CRC collision; either way it is reported as corruption by the
 * caller, never returned as data.
 */

import { lz4Compress, lz4Decompress } from './lz4-block.js';

export const CompressionType = {
  none: 0,
  lz4: 1,
} as const;

export type CompressionType = (typeof CompressionType)[keyof typeof CompressionType];

/** The names accepted in options. */
export type CompressionName = 'none' | 'lz4';

/** lz4 cannot expand data by more than this factor when decompressing (255:1 best case). */
const LZ4_RATIO_MAX = 255;
const LZ4_SIZE_PREFIX_BYTES = 4;

export function compressionTypeOf(name: CompressionName): CompressionType {
  if (name === 'none') return CompressionType.none;
  if (name === 'lz4') return CompressionType.lz4;
  throw new RangeError(`compression must be 'none' or 'lz4', got ${String(name)}`);
}

/**
 * Compresses `raw` with `type` if that saves at least 12.5%. Returns the bytes to store and
 * the type actually used. The result may alias `raw` (type none): copy before reusing `raw`.
 */
export function compressBlock(raw: Uint8Array, type: CompressionType): { type: CompressionType; bytes: Uint8Array } {
  if (type === CompressionType.lz4) {
    const compressed = lz4Compress(raw);
    if (compressed.length < raw.length - raw.length / 8) return { type: CompressionType.lz4, bytes: compressed };
  }
  return { type: CompressionType.none, bytes: raw };
}

/** Bytes of the sample tried before a whole block once a block failed to compress (a tuning knob, not on disk). */
export const SAMPLE_BYTES = 1024;
/** Smaller blocks are always tried whole: a sample would cost about as much. */
export const SAMPLE_BLOCK_BYTES_MIN = 4 * SAMPLE_BYTES;

/** Compresses the blocks of one table, skipping lz4 on data that does not compress (above). */
export class BlockCompressor {
  readonly type: CompressionType;
  /** Blocks stored raw on a failed sample, without a whole-block attempt. */
  skippedBlocks = 0;
  #skeptical = false;

  constructor(type: CompressionType) {
    this.type = type;
  }

  /** compressBlock(raw, type), or raw as it is when a sample says lz4 would not pay. */
  compress(raw: Uint8Array): { type: CompressionType; bytes: Uint8Array } {
    if (this.type !== CompressionType.lz4) return { type: CompressionType.none, bytes: raw };
    if (this.#skeptical && raw.length >= SAMPLE_BLOCK_BYTES_MIN) {
      const start = (raw.length - SAMPLE_BYTES) >>> 1;
      const sample = lz4Compress(raw.subarray(start, start + SAMPLE_BYTES));
      if (sample.length >= SAMPLE_BYTES - SAMPLE_BYTES / 16) {
        this.skippedBlocks++;
        return { type: CompressionType.none, bytes: raw };
      }
    }
    const result = compressBlock(raw, this.type);
    this.#skeptical = result.type === CompressionType.none;
    return result;
  }
}

/**
 * Decodes the stored bytes of a block. Throws a plain Error on an unknown type or a malformed
 * stream; the caller turns it into KV_CORRUPTION naming the file and offset.
 */
export function uncompressBlock(type: number, stored: Uint8Array): Uint8Array {
  if (type === CompressionType.none) return stored;
  if (type !== CompressionType.lz4) throw new Error(`unknown compression type ${type}`);
  if (stored.length < LZ4_SIZE_PREFIX_BYTES) throw new Error('lz4 block shorter than its size prefix');
  const declaredBytes =
    (stored[0]! | (stored[1]! << 8) | (stored[2]! << 16) | (stored[3]! << 24)) >>> 0;
  // Refuse sizes lz4 cannot produce before allocating them.
  if (declaredBytes > (stored.length - LZ4_SIZE_PREFIX_BYTES) * LZ4_RATIO_MAX) {
    throw new Error(`lz4 block declares ${declaredBytes} bytes from ${stored.length} stored`);
  }
  return lz4Decompress(stored, declaredBytes);
}
