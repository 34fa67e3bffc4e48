/**
 * Internal keys: how a user key is laid out inside the engine so that entries sort by
 * (partition, token, key) as DESIGN.md §3 requires.
 *
 *   internal key = [token u32 big-endian][user key bytes]
 *
 * The partition is the token's top log2(Q) bits, so ordering by the big-endian token already
 * orders by partition: a partition is one contiguous range [p << (32-bits), (p+1) << (32-bits)).
 * Bytewise comparison of internal keys is therefore the engine's only order. Frozen: the
 * layout reaches SSTables and the commit log.
 */

import { tokenOf } from '../base/hash.js';

export const TOKEN_BYTES = 4;

export function internalKeyOf(userKey: Uint8Array): Uint8Array {
  return internalKeyOfToken(tokenOf(userKey), userKey);
}

/** The internal key of `userKey` whose token (tokenOf) the caller already has. */
export function internalKeyOfToken(token: number, userKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(TOKEN_BYTES + userKey.length);
  out[0] = token >>> 24;
  out[1] = (token >>> 16) & 0xff;
  out[2] = (token >>> 8) & 0xff;
  out[3] = token & 0xff;
  out.set(userKey, TOKEN_BYTES);
  return out;
}

export function tokenOfInternal(internalKey: Uint8Array): number {
  return ((internalKey[0]! << 24) | (internalKey[1]! << 16) | (internalKey[2]! << 8) | internalKey[3]!) >>> 0;
}

export function userKeyOf(internalKey: Uint8Array): Uint8Array {
  return internalKey.subarray(TOKEN_BYTES);
}

/** The half-open internal-key range [start, end) of a partition; end is undefined for the last. */
export function partitionRange(partition: number, partitionBits: number): { start: Uint8Array; end: Uint8Array | undefined } {
  const width = 2 ** (32 - partitionBits);
  const startToken = partition * width;
  const endToken = startToken + width;
  return { start: tokenBytes(startToken), end: endToken >= 2 ** 32 ? undefined : tokenBytes(endToken) };
}

function tokenBytes(token: number): Uint8Array {
  return new Uint8Array([token >>> 24, (token >>> 16) & 0xff, (token >>> 8) & 0xff, token & 0xff]);
}

/**
 * Bytewise comparison, the engine's one order. A JS loop: internal keys differ within their
 * first bytes (the token) almost always, and the loop beats the native call's overhead.
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
