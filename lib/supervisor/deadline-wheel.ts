/**
 * One shared timer for every coordinated request's deadline and hedge time, instead of one
 * Node timer per request. The coordinator driver sets, moves and clears a request's single
 * wake-up here; only the earliest one holds a Node timer. Owned by the supervisor (main
 * thread); the time source and the callback are arguments.
 *
 * Why: a request in flight used to cost a Timeout object, a closure and a timer-list insert
 * and removal (most requests finish long before their 5 s deadline, so nearly every timer was
 * cleared unfired). Here a set is an insert into a binary min-heap of three Float64Arrays
 * (due time, request id, sequence number): no allocation per request, nothing for the GC.
 *
 * Invariants: each id has at most one live wake-up, the one of its latest `set` (a sequence
 * number names it; heap entries of earlier sets or of cleared ids are stale and skipped when
 * they surface). A due wake-up is removed before its callback runs, so the callback may set
 * the same id again. Stale entries are bounded: when they outnumber the live ones by
 * `staleFactor` (and there are more than `compactFloor`), the heap is rebuilt from the live
 * ones. Due times are on the `realNowMs` clock (a real monotonic clock), which is what Node
 * timers follow: a delay means the same as it did with one setTimeout per request.
 */

import { performance } from 'node:perf_hooks';

const initialCapacity = 1024;
const staleFactor = 4;
const compactFloor = 4096;
/** Node timers have millisecond granularity: a wake-up this close to due fires with its batch. */
const dueSlackMs = 1;

export interface DeadlineWheelOptions {
  /** Called once for each wake-up that came due (the id is no longer set). */
  readonly onDue: (id: number) => void;
  /** The real monotonic clock, in ms; default performance.now. */
  readonly realNowMs?: () => number;
}

export class DeadlineWheel {
  readonly #onDue: (id: number) => void;
  readonly #realNowMs: () => number;
  /** id → sequence number of its live wake-up. */
  readonly #live = new Map<number, number>();
  #due: Float64Array = new Float64Array(initialCapacity);
  #ids: Float64Array = new Float64Array(initialCapacity);
  #seqs: Float64Array = new Float64Array(initialCapacity);
  #size = 0;
  #nextSeq = 1;
  #timer: NodeJS.Timeout | undefined;
  /** The due time the armed Node timer was set for. */
  #armedAtMs = Infinity;
  #closed = false;
  readonly #fire = (): void => this.#onTimer();

  constructor(options: DeadlineWheelOptions) {
    this.#onDue = options.onDue;
    this.#realNowMs = options.realNowMs ?? (() => performance.now());
  }

  /** Wake-ups set and not yet due or cleared. */
  get size(): number {
    return this.#live.size;
  }

  /** Sets (or moves) `id`'s wake-up to `delayMs` from now. */
  set(id: number, delayMs: number): void {
    if (this.#closed) return;
    const dueMs = this.#realNowMs() + Math.max(0, delayMs);
    const seq = this.#nextSeq++;
    this.#live.set(id, seq);
    this.#push(dueMs, id, seq);
    if (this.#size > compactFloor && this.#size > staleFactor * this.#live.size) this.#compact();
    if (dueMs < this.#armedAtMs) this.#arm(dueMs);
  }

  /** Clears `id`'s wake-up, if any. */
  clear(id: number): void {
    this.#live.delete(id);
  }

  /** Clears everything and stops the timer; later sets are ignored. */
  close(): void {
    this.#closed = true;
    this.#live.clear();
    this.#size = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAtMs = Infinity;
  }

  #arm(dueMs: number): void {
    clearTimeout(this.#timer);
    this.#armedAtMs = dueMs;
    this.#timer = setTimeout(this.#fire, Math.max(0, Math.ceil(dueMs - this.#realNowMs())));
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#armedAtMs = Infinity;
    const limitMs = this.#realNowMs() + dueSlackMs;
    // Wake-ups set by the callbacks of this pass wait for the next timer, as with setTimeout.
    const seqLimit = this.#nextSeq;
    while (this.#size > 0 && this.#due[0]! <= limitMs && this.#seqs[0]! < seqLimit) {
      const id = this.#ids[0]!;
      const seq = this.#seqs[0]!;
      this.#pop();
      if (this.#live.get(id) !== seq) continue; // stale: cleared or set again since
      this.#live.delete(id);
      this.#onDue(id);
    }
    this.#dropStaleTop();
    if (this.#size > 0 && this.#due[0]! < this.#armedAtMs) this.#arm(Math.max(this.#due[0]!, this.#realNowMs()));
  }

  /** Pops stale entries off the top, so an idle wheel holds no timer for nothing. */
  #dropStaleTop(): void {
    while (this.#size > 0 && this.#live.get(this.#ids[0]!) !== this.#seqs[0]!) this.#pop();
  }

  #compact(): void {
    let kept = 0;
    for (let i = 0; i < this.#size; i++) {
      if (this.#live.get(this.#ids[i]!) !== this.#seqs[i]!) continue;
      this.#due[kept] = this.#due[i]!;
      this.#ids[kept] = this.#ids[i]!;
      this.#seqs[kept] = this.#seqs[i]!;
      kept++;
    }
    this.#size = kept;
    for (let i = (kept >> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  #push(dueMs: number, id: number, seq: number): void {
    if (this.#size === this.#due.length) this.#grow();
    let i = this.#size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#due[parent]! <= dueMs) break;
      this.#move(parent, i);
      i = parent;
    }
    this.#due[i] = dueMs;
    this.#ids[i] = id;
    this.#seqs[i] = seq;
  }

  #pop(): void {
    const last = --this.#size;
    if (last === 0) return;
    this.#move(last, 0);
    this.#siftDown(0);
  }

  #siftDown(start: number): void {
    const due = this.#due[start]!;
    const id = this.#ids[start]!;
    const seq = this.#seqs[start]!;
    let i = start;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= this.#size) break;
      if (child + 1 < this.#size && this.#due[child + 1]! < this.#due[child]!) child++;
      if (this.#due[child]! >= due) break;
      this.#move(child, i);
      i = child;
    }
    this.#due[i] = due;
    this.#ids[i] = id;
    this.#seqs[i] = seq;
  }

  #move(from: number, to: number): void {
    this.#due[to] = this.#due[from]!;
    this.#ids[to] = this.#ids[from]!;
    this.#seqs[to] = this.#seqs[from]!;
  }

  #grow(): void {
    const capacity = this.#due.length * 2;
    const grow = (old: Float64Array): Float64Array => {
      const next = new Float64Array(capacity);
      next.set(old);
      return next;
    };
    this.#due = grow(this.#due);
    this.#ids = grow(this.#ids);
    this.#seqs = grow(this.#seqs);
  }
}
