/**
 * Time, injected. Logic in layers 0-4 never calls Date.now or performance.now itself: it
 * takes a Clock, so tests and simulations can run a cluster on virtual time.
 *
 * `wallMs` is calendar time (may jump: NTP, faketime); use it only for timestamps stored for
 * humans or for last-writer-wins. `monotonicMs` never goes backwards; use it for timeouts,
 * failure detection and rates.
 */

export interface Clock {
  wallMs(): number;
  monotonicMs(): number;
}

export const systemClock: Clock = {
  wallMs: () => Date.now(),
  monotonicMs: () => performance.now(),
};

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  #wallMs: number;
  #monotonicMs = 0;

  constructor(startWallMs = 1_700_000_000_000) {
    this.#wallMs = startWallMs;
  }

  wallMs(): number {
    return this.#wallMs;
  }

  monotonicMs(): number {
    return this.#monotonicMs;
  }

  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('ms must be >= 0');
    this.#wallMs += ms;
    this.#monotonicMs += ms;
  }

  /** Moves only the wall clock, as a skewed or stepped system clock would. */
  skewWall(ms: number): void {
    this.#wallMs += ms;
  }
}
