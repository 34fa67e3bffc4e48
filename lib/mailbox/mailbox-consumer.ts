/**
 * The reading end of a mailbox (layout and memory-order argument in mailbox-layout.ts).
 *
 * Owner: exactly one thread for the mailbox's life (the shard for its request mailbox, the
 * supervisor for the reply mailbox). Works the same on the main thread and in a worker.
 *
 * Batching: `drain` loads the tail once, visits every published frame in order, and publishes
 * the new head with one `Atomics.store` at the end (then notifies the producer only if it
 * flagged that it waits for space). A frame view is valid only during its visit: once the head
 * moves past it, the producer may overwrite those bytes.
 *
 * Waking: `waitForFrames` never blocks the thread. Protocol against a lost wake-up: (1) store
 * consumer-waiting = 1, (2) re-load the tail, (3) if it still equals the head, sleep with
 * `Atomics.waitAsync` on the tail word while it holds that value. The producer does the mirror
 * image: store tail, then load the flag, notify if set. With sequentially consistent atomics at
 * least one side sees the other's store; a notify that lands before the sleep registers is
 * caught by waitAsync's value check. The sleep is still cut into slices of
 * limits.mailboxWaitSliceMs so that even a bug here costs a delay, never a hang.
 *
 * Fairness: `pump` drains at most limits.mailboxDrainFramesMax frames per turn and yields to the
 * event loop (`setImmediate`) between turns while frames keep coming, so a shard under full load
 * still serves its control calls and pool completions.
 */

import { assert } from '../base/assert.js';
import { limits } from '../base/limits.js';
import {
  FRAME_HEADER_BYTES,
  HEADER_BYTES,
  WRAP_MARKER,
  Word,
  attachMailbox,
  closeMailbox,
  recordBytesOf,
  sleepOnWord,
} from './mailbox-layout.js';

/**
 * Visits one frame. The view is valid only during the call. Return `false` to leave this frame
 * (and all after it) in the mailbox for a later drain, e.g. when the reply mailbox is full.
 * If the visitor throws, that frame counts as consumed and the error propagates.
 */
export type FrameVisitor = (frame: Uint8Array) => boolean | void;

/** A FrameVisitor given the frame as `bytes[startBytes, startBytes + lengthBytes)`, no view made. */
export type SpanVisitor = (bytes: Uint8Array, startBytes: number, lengthBytes: number) => boolean | void;

export interface MailboxConsumerOptions {
  /** Longest single sleep before re-checking; default limits.mailboxWaitSliceMs. */
  waitSliceMs?: number;
}

export interface MailboxPumpHandler {
  /** Exactly one of `visit` and `visitSpan`. */
  visit?: FrameVisitor;
  visitSpan?: SpanVisitor;
  /** Runs after each drain that consumed or refused frames: publish replies here, once per batch. */
  afterDrain?(): void;
  /** Runs after `visit` refused a frame; resolve when it is worth trying again (default: yield). */
  whenRefused?(): Promise<unknown>;
}

export interface MailboxPumpOptions {
  /** Frames per turn before yielding to the event loop; default limits.mailboxDrainFramesMax. */
  framesPerTurnMax?: number;
  /** How to yield to the event loop between turns; default setImmediate. */
  yieldToEventLoop?(): Promise<unknown>;
}

function yieldWithSetImmediate(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function spanVisitorOf(handler: MailboxPumpHandler): SpanVisitor {
  const { visit, visitSpan } = handler;
  if ((visit === undefined) === (visitSpan === undefined)) throw new TypeError('handler needs exactly one of visit and visitSpan');
  if (visitSpan !== undefined) return visitSpan;
  return (bytes, startBytes, lengthBytes) => visit!(bytes.subarray(startBytes, startBytes + lengthBytes));
}

export class MailboxConsumer {
  readonly capacityBytes: number;
  readonly frameBytesMax: number;
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #mask: number;
  readonly #waitSliceMs: number;
  #head: number;
  #framesConsumed: number;
  #refused = false;

  constructor(buffer: SharedArrayBuffer, options: MailboxConsumerOptions = {}) {
    const views = attachMailbox(buffer);
    this.capacityBytes = views.capacityBytes;
    this.frameBytesMax = views.frameBytesMax;
    this.#words = views.words;
    this.#bytes = views.bytes;
    this.#mask = views.capacityBytes - 1;
    this.#waitSliceMs = options.waitSliceMs ?? limits.mailboxWaitSliceMs;
    this.#head = Atomics.load(this.#words, Word.head);
    this.#framesConsumed = Atomics.load(this.#words, Word.framesConsumed);
  }

  /** Whether either side closed the mailbox (published frames may still be drained). */
  get closed(): boolean {
    return Atomics.load(this.#words, Word.closed) === 1;
  }

  /** Whether published frames are waiting. */
  available(): boolean {
    return Atomics.load(this.#words, Word.tail) !== this.#head;
  }

  /** Published frames not yet consumed. */
  depthFrames(): number {
    return (Atomics.load(this.#words, Word.framesPublished) - this.#framesConsumed) | 0;
  }

  /**
   * Visits published frames in order, at most `maxFrames`, then publishes the new head once.
   * Returns the number of frames consumed.
   */
  drain(visit: FrameVisitor, maxFrames: number = limits.mailboxDrainFramesMax): number {
    return this.drainSpans((bytes, startBytes, lengthBytes) => visit(bytes.subarray(startBytes, startBytes + lengthBytes)), maxFrames);
  }

  /**
   * `drain` without allocating a view per frame: the visitor gets the whole buffer and the
   * frame's span in it (the fast path for decoders that take an offset). Bytes outside the
   * span belong to the mailbox and must not be touched.
   */
  drainSpans(visit: SpanVisitor, maxFrames: number = limits.mailboxDrainFramesMax): number {
    const words = this.#words;
    const tail = Atomics.load(words, Word.tail);
    assert(((tail - this.#head) | 0) >= 0 && ((tail - this.#head) | 0) <= this.capacityBytes, 'mailbox tail out of range');
    let head = this.#head;
    let count = 0;
    this.#refused = false;
    try {
      while (head !== tail && count < maxFrames) {
        const offset = head & this.#mask;
        const lengthBytes = words[(HEADER_BYTES + offset) >> 2]!;
        if (lengthBytes === WRAP_MARKER) {
          head = (head + this.capacityBytes - offset) | 0;
          continue;
        }
        const next = (head + recordBytesOf(lengthBytes)) | 0;
        assert(
          lengthBytes >= 0 && lengthBytes <= this.frameBytesMax && ((tail - next) | 0) >= 0,
          'corrupt mailbox frame length',
        );
        let keep: boolean | void;
        try {
          keep = visit(this.#bytes, HEADER_BYTES + offset + FRAME_HEADER_BYTES, lengthBytes);
        } catch (error) {
          head = next;
          count++;
          throw error;
        }
        if (keep === false) {
          this.#refused = true;
          break;
        }
        head = next;
        count++;
      }
    } finally {
      this.#publishHead(head, count);
    }
    return count;
  }

  /**
   * Resolves true once frames are available (at once if they already are); false if the
   * mailbox is closed and empty, or after `timeoutMs` (default limits.mailboxWaitSliceMs)
   * without frames. Never blocks the thread. Callers loop: a false is not final.
   */
  async waitForFrames(timeoutMs: number = this.#waitSliceMs): Promise<boolean> {
    const words = this.#words;
    if (Atomics.load(words, Word.tail) !== this.#head) return true;
    Atomics.store(words, Word.consumerWaiting, 1);
    try {
      const tail = Atomics.load(words, Word.tail);
      if (tail !== this.#head) return true;
      if (this.closed) return false;
      await sleepOnWord(words, Word.tail, tail, timeoutMs);
    } finally {
      Atomics.store(words, Word.consumerWaiting, 0);
    }
    return this.available();
  }

  /**
   * Serves the mailbox until it is closed and drained: waits for frames, drains them in turns
   * of at most `framesPerTurnMax`, calls `afterDrain`, and yields to the event loop between
   * turns. Rejects with whatever a handler throws.
   */
  async pump(handler: MailboxPumpHandler, options: MailboxPumpOptions = {}): Promise<void> {
    const framesPerTurnMax = options.framesPerTurnMax ?? limits.mailboxDrainFramesMax;
    const yieldToEventLoop = options.yieldToEventLoop ?? yieldWithSetImmediate;
    const visit = spanVisitorOf(handler);
    let framesThisTurn = 0;
    for (;;) {
      const consumed = this.drainSpans(visit, framesPerTurnMax - framesThisTurn);
      framesThisTurn += consumed;
      if (consumed > 0 || this.#refused) handler.afterDrain?.();
      if (this.#refused) {
        await (handler.whenRefused ? handler.whenRefused() : yieldToEventLoop());
        framesThisTurn = 0;
      } else if (this.available()) {
        // Keep draining within the turn's budget; a loop iteration per batch would cost more.
        if (framesThisTurn < framesPerTurnMax) continue;
        await yieldToEventLoop();
        framesThisTurn = 0;
      } else if (this.closed) {
        // Re-check: the producer publishes before it closes, but our tail load may predate both.
        if (!this.available()) return;
      } else {
        // Sleeping ends the turn: the wake-up arrives as an event-loop task.
        await this.waitForFrames();
        framesThisTurn = 0;
      }
    }
  }

  /** Closes the mailbox for both sides; the producer's next write fails with KV_CLOSED. */
  close(): void {
    closeMailbox(this.#words);
  }

  #publishHead(head: number, count: number): void {
    if (head === this.#head) return;
    this.#head = head;
    this.#framesConsumed = (this.#framesConsumed + count) | 0;
    Atomics.store(this.#words, Word.framesConsumed, this.#framesConsumed);
    Atomics.store(this.#words, Word.head, head);
    if (Atomics.load(this.#words, Word.producerWaiting) !== 0) Atomics.notify(this.#words, Word.head);
  }
}
