/**
 * Assertions guard our own invariants. A failed assertion is a bug in ringkv, never an
 * operating condition: it throws an `AssertionError` that is not caught on purpose, so the
 * actor that hit it crashes and is restarted from its log (TigerBeetle style).
 *
 * `invariantsEnabled` turns on the expensive O(n) checks; tests always enable them.
 */

export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function assertNever(value: never, what = 'value'): never {
  throw new AssertionError(`unexpected ${what}: ${String(value)}`);
}

let invariants = process.env.RINGKV_INVARIANTS === '1' || process.env.TAP === '1';

/** Whether the expensive checks run. */
export function invariantsEnabled(): boolean {
  return invariants;
}

export function setInvariantsEnabled(enabled: boolean): void {
  invariants = enabled;
}
