/**
 * Operating errors: what the world does to us (bad input, full disks, lost peers).
 *
 * Every error a caller can act on is a `RingkvError` whose `code` never changes once
 * published; messages may improve, codes may not. Our own bugs are not RingkvErrors: they are
 * assertion failures (see assert.ts) that crash the actor, which restarts from its log.
 * Argument mistakes by a programmer are `TypeError`/`RangeError` naming the field.
 *
 * Frozen: the string values of `ErrorCode` reach clients over the wire.
 */

export const ErrorCode = {
  /** The operation did not finish in time; it may or may not have been applied. */
  timeout: 'KV_TIMEOUT',
  /** Too few replicas were reachable; refused before anything was sent (a definite failure). */
  unavailable: 'KV_UNAVAILABLE',
  /** The write may have been applied somewhere; the outcome is unknown. */
  indeterminate: 'KV_INDETERMINATE',
  /** A key, value, batch or frame is over its limit in limits.ts. */
  tooLarge: 'KV_TOO_LARGE',
  /** A queue is full; retry later. */
  overloaded: 'KV_OVERLOADED',
  /** Stored bytes failed a checksum or a format check. Never skipped silently. */
  corruption: 'KV_CORRUPTION',
  /** Authentication failed. */
  auth: 'KV_AUTH',
  /** Another process (or store instance) holds the data directory's lock. */
  locked: 'KV_LOCKED',
  /** The store or engine is closed, or was stopped by a fatal IO error. */
  closed: 'KV_CLOSED',
  /** An IO call failed (EIO on fsync, ENOSPC, ...). Writes that waited on it are indeterminate. */
  io: 'KV_IO',
  /** The disk is full. */
  diskFull: 'KV_DISK_FULL',
  /** A causal context is malformed or oversized. */
  badContext: 'KV_BAD_CONTEXT',
  /** A key already holds the maximum number of siblings (client path only). */
  tooManySiblings: 'KV_TOO_MANY_SIBLINGS',
  /** A request or message is malformed. */
  badRequest: 'KV_BAD_REQUEST',
  /** The on-disk state was written by an incompatible format version or configuration. */
  incompatible: 'KV_INCOMPATIBLE',
  /** A staged membership plan is unsafe (it would lose copies, or names nodes that cannot take part); nothing was changed. */
  planRefused: 'KV_PLAN_REFUSED',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const codes = new Set<string>(Object.values(ErrorCode));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && codes.has(value);
}

export class RingkvError extends Error {
  readonly code: ErrorCode;
  /** Structured facts about the failure (file, offset, pid...), never user values or secrets. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RingkvError';
    this.code = code;
    this.details = details;
  }
}

export function isRingkvError(error: unknown, code?: ErrorCode): error is RingkvError {
  return error instanceof RingkvError && (code === undefined || error.code === code);
}
