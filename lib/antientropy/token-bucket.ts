/**
 * A token bucket of bytes: how fast anti-entropy may move data, so that repairs never crowd
 * out foreground requests (Cassandra's stream throughput cap, Riak's AAE concurrency limit).
 * Pure: time is an argument (monotonic milliseconds), never read. Owned by whoever drives the
 * exchanges (the supervisor); one bucket is usually shared by all exchanges of a node.
 *
 * Invariants: tokens ≤ burstBytes; tokens may go negative (`charge` records bytes that were
 * not asked for, like a reply's size), and nothing may be taken until the debt is repaid.
 * A request larger than the burst is allowed once the bucket is full, so a large message
 * waits but never starves.
 */

export interface TokenBucketOptions {
  readonly bytesPerSecond: number;
  readonly burstBytes: number;
  /** Monotonic time of creation; the bucket starts full. */
  readonly nowMs: number;
}

export class TokenBucket {
  readonly bytesPerSecond: number;
  readonly burstBytes: number;
  #tokens: number;
  #atMs: number;

  constructor(options: TokenBucketOptions) {
    const { bytesPerSecond, burstBytes, nowMs } = options;
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) throw new RangeError('bytesPerSecond must be a positive number');
    if (!(burstBytes > 0) || !Number.isFinite(burstBytes)) throw new RangeError('burstBytes must be a positive number');
    if (!Number.isFinite(nowMs)) throw new RangeError('nowMs must be a finite number');
    this.bytesPerSecond = bytesPerSecond;
    this.burstBytes = burstBytes;
    this.#tokens = burstBytes;
    this.#atMs = nowMs;
  }

  /** Tokens available at `nowMs` (negative while in debt). */
  tokens(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens;
  }

  /** Takes `bytes` if available now (or the bucket is full); false leaves the bucket as it was. */
  tryTake(bytes: number, nowMs: number): boolean {
    this.#refill(nowMs);
    if (bytes > this.#tokens && this.#tokens < this.burstBytes) return false;
    this.#tokens -= bytes;
    return true;
  }

  /** Records bytes that were moved without asking (a reply): may leave the bucket in debt. */
  charge(bytes: number, nowMs: number): void {
    this.#refill(nowMs);
    this.#tokens -= bytes;
  }

  /** The earliest time `tryTake(bytes)` can succeed. */
  readyAtMs(bytes: number, nowMs: number): number {
    this.#refill(nowMs);
    const needed = Math.min(bytes, this.burstBytes) - this.#tokens;
    if (needed <= 0) return nowMs;
    return nowMs + Math.ceil((needed * 1000) / this.bytesPerSecond);
  }

  #refill(nowMs: number): void {
    // A clock that stepped back (it should not: monotonic) refills nothing.
    if (nowMs <= this.#atMs) return;
    this.#tokens = Math.min(this.burstBytes, this.#tokens + ((nowMs - this.#atMs) * this.bytesPerSecond) / 1000);
    this.#atMs = nowMs;
  }
}
