/**
 * The writing side of one mailbox as used by the shard data plane: frames go in now when they
 * fit, otherwise into a bounded backlog that a single loop moves into the mailbox as the
 * consumer frees space, in order. `sendEncoded` encodes a frame straight into a mailbox
 * reservation when there is room (no allocation, no copy). Publishing is batched: one `publish()` per event-loop turn
 * (a microtask after the first frame of the turn), however many frames were written.
 *
 * With `deferEncoding` (the shard worker's replies), a frame that does not fit now waits in the
 * backlog as its value and encoder, and is encoded straight into the mailbox once space frees:
 * a 10 KiB reply waiting for space costs no array and no second copy. The caller promises that
 * the bytes such a value references never change (the shard's replies reference immutable
 * engine and arena bytes); the Store's requests reference caller-owned arrays, so they are
 * encoded at send time.
 *
 * Owner: the one thread that writes the mailbox (the supervisor or Store for requests, the
 * shard worker for replies). Invariant: while the backlog is non-empty, new frames join it, so
 * the mailbox order is the send order and only the backlog loop calls `waitForSpace`.
 * Going over `backlogFramesMax` is KV_OVERLOADED; a closed mailbox is KV_CLOSED.
 */

import { assert } from '../base/assert.js';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { MailboxProducer } from '../mailbox/index.js';

export interface FrameSenderOptions {
  /** Most frames waiting for mailbox space; default limits.pendingWritesMax. */
  backlogFramesMax?: number;
  /** Called when the backlog loop fails (mailbox closed or no space in time). */
  onError?(error: unknown): void;
  /**
   * Publish once per event-loop turn (setImmediate) instead of once per microtask checkpoint.
   * A node's main thread runs one callback per socket read, each followed by a microtask
   * checkpoint: per checkpoint, 50 connections cost 50 publishes and consumer wake-ups
   * (Atomics.notify, a futex syscall) per turn; per turn, one. Costs the rest of the turn in
   * latency (microseconds when idle).
   */
  publishPerTurn?: boolean;
  /**
   * A frame that does not fit now waits unencoded (value and encoder) and is encoded in place
   * when space frees. Only for values whose bytes never change once sent.
   */
  deferEncoding?: boolean;
}

/** A frame waiting for space: `encode(value, out, start)` writes its `lengthBytes`. */
interface Waiting {
  lengthBytes: number;
  encode: (value: never, out: Uint8Array, start: number) => number;
  value: unknown;
}

function copyFrame(frame: Uint8Array, out: Uint8Array, start: number): number {
  out.set(frame, start);
  return start + frame.length;
}

export class FrameSender {
  readonly #producer: MailboxProducer;
  readonly #backlogFramesMax: number;
  readonly #onError: (error: unknown) => void;
  #backlog: Waiting[] = [];
  #draining = false;
  #publishScheduled = false;
  readonly #publishPerTurn: boolean;
  readonly #deferEncoding: boolean;
  readonly #publishNow = (): void => {
    this.#publishScheduled = false;
    if (!this.#producer.closed) this.#producer.publish();
  };

  constructor(producer: MailboxProducer, options: FrameSenderOptions = {}) {
    this.#producer = producer;
    this.#backlogFramesMax = options.backlogFramesMax ?? limits.pendingWritesMax;
    this.#onError = options.onError ?? (() => undefined);
    this.#publishPerTurn = options.publishPerTurn === true;
    this.#deferEncoding = options.deferEncoding === true;
  }

  /** Frames waiting for mailbox space. */
  get backlogFrames(): number {
    return this.#backlog.length;
  }

  /** Queues `frame`; throws KV_TOO_LARGE, KV_CLOSED or KV_OVERLOADED synchronously. */
  send(frame: Uint8Array): void {
    this.#checkLength(frame.length);
    if (this.#backlog.length === 0 && this.#producer.tryWrite(frame)) {
      this.#schedulePublish();
      return;
    }
    this.#enqueue({ lengthBytes: frame.length, encode: copyFrame, value: frame });
  }

  #enqueue(waiting: Waiting): void {
    if (this.#backlog.length >= this.#backlogFramesMax) {
      throw new RingkvError(ErrorCode.overloaded, `more than ${this.#backlogFramesMax} frames wait for mailbox space`, {});
    }
    this.#backlog.push(waiting);
    if (!this.#draining) void this.#drainBacklog();
  }

  /** Encodes `waiting` into a reservation; false when it does not fit now. */
  #tryEncode<T>(lengthBytes: number, encode: (value: T, out: Uint8Array, start: number) => number, value: T): boolean {
    const start = this.#producer.reserveSpan(lengthBytes);
    if (start < 0) return false;
    const end = encode(value, this.#producer.bytes, start);
    assert(end === start + lengthBytes, 'frame encoder wrote another length than it sized');
    this.#producer.commit(lengthBytes);
    this.#schedulePublish();
    return true;
  }

  /**
   * Queues the frame `encode(value, out, start)` writes, `lengthBytes` long: in place in the
   * mailbox when it fits now (no allocation, no copy), else into a new array for the backlog.
   * `encode` must not throw (size-check first) and must write exactly `lengthBytes`.
   * Throws like `send`.
   */
  sendEncoded<T>(lengthBytes: number, encode: (value: T, out: Uint8Array, start: number) => number, value: T): void {
    this.#checkLength(lengthBytes);
    if (this.#backlog.length === 0 && this.#tryEncode(lengthBytes, encode, value)) return;
    if (this.#deferEncoding) {
      this.#enqueue({ lengthBytes, encode: encode as Waiting['encode'], value });
      return;
    }
    const frame = new Uint8Array(lengthBytes);
    assert(encode(value, frame, 0) === lengthBytes, 'frame encoder wrote another length than it sized');
    this.send(frame);
  }

  /** Publishes now what is pending (the scheduled publish does it otherwise). */
  flush(): void {
    this.#producer.publish();
  }

  #checkLength(lengthBytes: number): void {
    if (lengthBytes > this.#producer.frameBytesMax) {
      throw new RingkvError(ErrorCode.tooLarge, `frame of ${lengthBytes} bytes is over the mailbox limit ${this.#producer.frameBytesMax}`, { lengthBytes });
    }
  }

  #schedulePublish(): void {
    if (this.#publishScheduled) return;
    this.#publishScheduled = true;
    if (this.#publishPerTurn) setImmediate(this.#publishNow);
    else queueMicrotask(this.#publishNow);
  }

  async #drainBacklog(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#backlog.length > 0) {
        const waiting = this.#backlog[0]!;
        if (!this.#tryEncode(waiting.lengthBytes, waiting.encode as (value: unknown, out: Uint8Array, start: number) => number, waiting.value)) {
          if (!(await this.#producer.waitForSpace(waiting.lengthBytes))) {
            throw new RingkvError(ErrorCode.overloaded, `mailbox full: no room for a ${waiting.lengthBytes}-byte frame within ${limits.mailboxWriteTimeoutMs} ms`, {
              lengthBytes: waiting.lengthBytes,
            });
          }
          continue;
        }
        this.#backlog.shift();
      }
    } catch (error) {
      this.#backlog = [];
      this.#onError(error);
    } finally {
      this.#draining = false;
    }
  }
}
