/**
 * The mailbox layout: one SharedArrayBuffer holding a single-producer single-consumer queue of
 * length-prefixed binary frames (one direction of one shard: requests in, or replies out).
 *
 * Owner: nobody — both threads map the same buffer. The producer is the only writer of the
 * producer line (tail, producer-waiting flag, frames published) and of the data region between
 * head and the end of its space; the consumer is the only writer of the consumer line (head,
 * consumer-waiting flag, frames consumed). Each side publishes its position with one
 * `Atomics.store` after the bytes it covers are written (release), and the other side reads it
 * with `Atomics.load` (acquire) before touching those bytes. This is the classic Lamport SPSC
 * queue (Lamport 1983, "Specifying concurrent program modules"), with a futex-style doorbell.
 *
 * ```
 *  byte 0 ┌───────────── header: Int32 control words, host byte order ─────────────┐
 *         │ line 0 (bytes   0..63)  w0 magic 'RKMB'  w1 version  w2 capacityBytes    │
 *         │                         w3 closed (0/1, written by either side)          │
 *         │ line 1 (bytes  64..127) w16 tail  w17 producerWaiting  w18 framesPublished│ producer writes
 *         │ line 2 (bytes 128..191) w32 head  w33 consumerWaiting  w34 framesConsumed │ consumer writes
 *  192    ├───────────── data region: capacityBytes (a power of two) ─────────────────┤
 *         │ frame: [u32 lengthBytes][payload: lengthBytes][pad to 8]                   │
 *         │ wrap marker: [u32 0xFFFFFFFF] — the rest of the region up to its end is    │
 *         │              skipped; the next frame starts at data offset 0               │
 *         └──────────────────────────────────────────────────────────────────────────┘
 * ```
 *
 * - Positions (head, tail) are free-running 32-bit counters of bytes; a position's data offset
 *   is `position & (capacityBytes - 1)`, and `(tail - head) | 0` is the number of bytes in use
 *   (0..capacityBytes). Capacity ≤ 2^30 keeps that difference exact in an Int32.
 * - Every record starts 8-aligned, so a length word never straddles the end of the region and a
 *   wrap marker always fits in the remaining bytes (which are a non-zero multiple of 8).
 * - A frame never wraps: when its record does not fit before the end, the producer writes a wrap
 *   marker and starts the frame at offset 0. The largest frame (`frameBytesMaxFor`) has a record
 *   of at most capacityBytes/2, so an empty mailbox always accepts it whatever its head.
 * - A zero-length frame is legal (an 8-byte record).
 * - The layout never leaves the process, so host byte order (little-endian on every platform
 *   Node supports) is used and no endianness conversion is paid.
 * - The tail word is also the doorbell: the consumer sleeps with `Atomics.waitAsync` on its
 *   value; the producer notifies after publishing only when the consumer-waiting flag is set.
 *   The head word is the doorbell in the other direction (a producer waiting for space).
 *
 * Frozen within a process: MAILBOX_MAGIC, MAILBOX_VERSION, the word indices and the frame
 * format. Both ends are built from the same source, so a change bumps MAILBOX_VERSION and both
 * ends refuse a buffer of another version.
 */

import { assert } from '../base/assert.js';
import { limits } from '../base/limits.js';

/** 'RKMB' read as a little-endian u32. Frozen. */
export const MAILBOX_MAGIC = 0x424d4b52;
/** Frozen; bump on any change to the words or the frame format. */
export const MAILBOX_VERSION = 1;

/** Control word indices (Int32 units). Frozen. */
export const Word = {
  magic: 0,
  version: 1,
  capacityBytes: 2,
  closed: 3,
  tail: 16,
  producerWaiting: 17,
  framesPublished: 18,
  head: 32,
  consumerWaiting: 33,
  framesConsumed: 34,
} as const;

/** Bytes before the data region: three 64-byte cache lines. Frozen. */
export const HEADER_BYTES = 192;
/** The length prefix of each frame. Frozen. */
export const FRAME_HEADER_BYTES = 4;
/** Records start at multiples of this. Frozen. */
export const RECORD_ALIGN_BYTES = 8;
/** The length word of a wrap marker, as read through an Int32Array (0xFFFFFFFF). Frozen. */
export const WRAP_MARKER = -1;

/** The bytes a frame of `lengthBytes` occupies: length prefix, payload, padding to 8. */
export function recordBytesOf(lengthBytes: number): number {
  return (FRAME_HEADER_BYTES + lengthBytes + RECORD_ALIGN_BYTES - 1) & ~(RECORD_ALIGN_BYTES - 1);
}

/** The largest frame payload a mailbox of `capacityBytes` carries (its record is ≤ capacity/2). */
export function frameBytesMaxFor(capacityBytes: number): number {
  return capacityBytes / 2 - FRAME_HEADER_BYTES;
}

/** Throws RangeError unless `capacityBytes` is a power of two within the mailbox limits. */
export function checkCapacityBytes(capacityBytes: number): void {
  if (
    !Number.isInteger(capacityBytes) ||
    capacityBytes < limits.mailboxBytesMin ||
    capacityBytes > limits.mailboxBytesMax ||
    (capacityBytes & (capacityBytes - 1)) !== 0
  ) {
    throw new RangeError(
      `capacityBytes must be a power of two in [${limits.mailboxBytesMin}, ${limits.mailboxBytesMax}], got ${capacityBytes}`,
    );
  }
}

/**
 * Allocates a mailbox: the SharedArrayBuffer to post to the other thread (workerData or
 * postMessage). Attach a `MailboxProducer` on one side and a `MailboxConsumer` on the other.
 */
export function createMailbox(capacityBytes: number = limits.mailboxBytesDefault): SharedArrayBuffer {
  checkCapacityBytes(capacityBytes);
  const buffer = new SharedArrayBuffer(HEADER_BYTES + capacityBytes);
  const words = new Int32Array(buffer, 0, HEADER_BYTES / 4);
  words[Word.magic] = MAILBOX_MAGIC;
  words[Word.version] = MAILBOX_VERSION;
  words[Word.capacityBytes] = capacityBytes;
  return buffer;
}

/** The typed views both ends use over one mailbox buffer. */
export interface MailboxViews {
  /** The whole buffer as Int32 words: control words, and length words at data offsets. */
  readonly words: Int32Array;
  /** The whole buffer as bytes (payloads live at HEADER_BYTES + data offset). */
  readonly bytes: Uint8Array;
  readonly capacityBytes: number;
  readonly frameBytesMax: number;
}

/** Checks that `buffer` is a mailbox of this version and returns views over it. */
export function attachMailbox(buffer: SharedArrayBuffer): MailboxViews {
  if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < HEADER_BYTES) {
    throw new TypeError('buffer must be a SharedArrayBuffer made by createMailbox');
  }
  const words = new Int32Array(buffer);
  if (words[Word.magic] !== MAILBOX_MAGIC) throw new TypeError('buffer is not a mailbox (bad magic)');
  if (words[Word.version] !== MAILBOX_VERSION) {
    throw new TypeError(`buffer is mailbox version ${words[Word.version]}, expected ${MAILBOX_VERSION}`);
  }
  const capacityBytes = words[Word.capacityBytes]!;
  checkCapacityBytes(capacityBytes);
  if (buffer.byteLength !== HEADER_BYTES + capacityBytes) {
    throw new TypeError('buffer length does not match its mailbox capacity');
  }
  return { words, bytes: new Uint8Array(buffer), capacityBytes, frameBytesMax: frameBytesMaxFor(capacityBytes) };
}

/**
 * Marks the mailbox closed and wakes whoever sleeps on either doorbell. Closing changes neither
 * doorbell word, so a sleeper that registers just after this notify notices the close only at
 * the end of its slice (limits.mailboxWaitSliceMs): closing is rare, and that bound suffices.
 */
export function closeMailbox(words: Int32Array): void {
  Atomics.store(words, Word.closed, 1);
  Atomics.notify(words, Word.tail);
  Atomics.notify(words, Word.head);
}

type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };

// Atomics.waitAsync ships in Node ≥ 16 but is typed only from lib es2024.
const atomicsWaitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): WaitAsyncResult;
}).waitAsync;

/**
 * Sleeps, without blocking the thread, until `words[index]` is notified or `timeoutMs` passes;
 * returns at once if the word no longer holds `expected`. The caller re-checks its condition
 * afterwards in every case: wake-ups may be spurious and the timeout is only a safety net.
 *
 * The timeout is a timer that notifies the word, not waitAsync's own timeout: a pending
 * waitAsync does not keep Node's event loop alive, and a write waiting for space must reach its
 * timeout even in an otherwise idle process. Only one side ever sleeps on a given word (the
 * consumer on the tail, the producer on the head), so the timer's notify wakes no one else.
 */
export async function sleepOnWord(words: Int32Array, index: number, expected: number, timeoutMs: number): Promise<void> {
  const result = atomicsWaitAsync(words, index, expected, Infinity);
  if (!result.async) return;
  const timer = setTimeout(() => Atomics.notify(words, index), timeoutMs);
  try {
    await result.value;
  } finally {
    clearTimeout(timer);
  }
}

assert(
  frameBytesMaxFor(limits.mailboxBytesDefault) >= limits.keyBytesCeiling + limits.valueBytesMax + 4096,
  'the default mailbox must carry a frame holding the largest key and value',
);
