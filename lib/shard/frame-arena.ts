/**
 * A bump allocator for request frames copied out of a mailbox: the shard worker copies each
 * drained frame here (one copy) and decodes it as views (no further allocation of backing
 * stores), instead of one `slice` per key, value and context.
 *
 * Owner: the shard worker thread. Invariant: bytes handed out are never written again; a chunk
 * is dropped (not reused) when full, so views stay valid as long as anything references them
 * (the garbage collector frees a chunk once the last view into it is gone).
 *
 * Cost: a small frame costs a bounds check and a copy; a chunk of `chunkBytes` is allocated
 * every chunkBytes of frames. Frames over a quarter chunk get their own array, so one large
 * value never pins a chunk of small ones, nor the reverse for long. The price: one live view
 * (an uncommitted object's value, say) keeps its whole chunk alive until it is gone.
 */

import { Buffer } from 'node:buffer';

const chunkBytesDefault = 64 * 1024;

/** A chunk whose bytes are all copied over before they are handed out: not zero-filled. */
function newChunk(chunkBytes: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(chunkBytes);
  return new Uint8Array(b.buffer, b.byteOffset, chunkBytes);
}
const smallCopyBytesMax = 64;

export class FrameArena {
  readonly #chunkBytes: number;
  #chunk: Uint8Array;
  #used = 0;

  constructor(chunkBytes: number = chunkBytesDefault) {
    this.#chunkBytes = chunkBytes;
    this.#chunk = newChunk(chunkBytes);
  }

  /** The array the last `copy` wrote into. */
  get chunk(): Uint8Array {
    return this.#chunk;
  }

  /** Copies `source[start, start + lengthBytes)` into `chunk`; returns where it starts there. */
  copy(source: Uint8Array, start: number, lengthBytes: number): number {
    if (lengthBytes > this.#chunkBytes >>> 2) {
      this.#chunk = source.slice(start, start + lengthBytes);
      this.#used = this.#chunk.length;
      return 0;
    }
    if (this.#used + lengthBytes > this.#chunk.length) {
      this.#chunk = newChunk(this.#chunkBytes);
      this.#used = 0;
    }
    const chunk = this.#chunk;
    const at = this.#used;
    if (lengthBytes <= smallCopyBytesMax) {
      for (let i = 0; i < lengthBytes; i++) chunk[at + i] = source[start + i]!;
    } else {
      chunk.set(source.subarray(start, start + lengthBytes), at);
    }
    this.#used = at + lengthBytes;
    return at;
  }
}
