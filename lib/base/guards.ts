/**
 * Type guards for untrusted input (messages from peers and clients): pure, any thread. The
 * validators of each message family combine these and never throw.
 */

/** A whole number in [min, max]. */
export function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/** A byte array of [min, max] bytes. */
export function isBytesWithin(value: unknown, min: number, max: number): value is Uint8Array {
  return value instanceof Uint8Array && value.length >= min && value.length <= max;
}
