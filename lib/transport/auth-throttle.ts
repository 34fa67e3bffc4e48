/**
 * Failed-authentication throttle (RELIABILITY.md S4, S7): after `failuresMax` refused
 * handshakes (a wrong client token, a peer MAC that does not verify) from one remote address
 * within `windowMs`, that address's upgrades are refused with 429 until the window since its
 * oldest counted failure has passed. Brute-forcing a token or secret is then bounded to
 * `failuresMax` guesses per window per address, and other addresses are unaffected. Main
 * thread (the transport server); pure apart from the injected time.
 *
 * Bounds: at most `addressesMax` addresses are tracked; past it the address whose last
 * failure is oldest is forgotten (Map insertion order: an address is re-inserted on each
 * failure). Per address at most `failuresMax` timestamps.
 */

export interface AuthThrottleOptions {
  readonly failuresMax: number;
  readonly windowMs: number;
  readonly addressesMax: number;
}

export class AuthThrottle {
  readonly #o: AuthThrottleOptions;
  /** address → failure times (monotonic ms), oldest first, within the window. */
  readonly #failures = new Map<string, number[]>();
  #refused = 0;

  constructor(options: AuthThrottleOptions) {
    for (const [name, value] of Object.entries(options)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
    }
    this.#o = options;
  }

  /** Upgrades refused so far because their address was throttled. */
  get refused(): number {
    return this.#refused;
  }

  /** Addresses with failures still counted. */
  get tracked(): number {
    return this.#failures.size;
  }

  /** Whether an upgrade from `address` must be refused now (counts the refusal). */
  blocked(address: string, nowMs: number): boolean {
    const times = this.#recent(address, nowMs);
    if (times === undefined || times.length < this.#o.failuresMax) return false;
    this.#refused++;
    return true;
  }

  /** A handshake from `address` was refused for its credentials. */
  recordFailure(address: string, nowMs: number): void {
    const times = this.#recent(address, nowMs) ?? [];
    times.push(nowMs);
    if (times.length > this.#o.failuresMax) times.shift();
    this.#failures.delete(address);
    this.#failures.set(address, times);
    if (this.#failures.size > this.#o.addressesMax) this.#failures.delete(this.#failures.keys().next().value!);
  }

  /** The address's failures inside the window (older ones dropped), or undefined. */
  #recent(address: string, nowMs: number): number[] | undefined {
    const times = this.#failures.get(address);
    if (times === undefined) return undefined;
    while (times.length > 0 && nowMs - times[0]! >= this.#o.windowMs) times.shift();
    if (times.length > 0) return times;
    this.#failures.delete(address);
    return undefined;
  }
}
