/**
 * A read whose only replica is this node (Coordinator.soleLocalRead), answered from the
 * object the node's row cache holds (lib/store/row-cache.ts) instead of through a request:
 * the same result the coordinator would return after asking its one replica, computed once
 * per cached object and kept with it (`memo`) while no sibling's expiry falls due. Pure.
 */

import { ErrorCode, isRingkvError } from '../base/errors.js';
import { decodeObject, readView, type ConflictPolicy, type StoredObject } from '../causality/index.js';
import type { CoordinatorResult } from './coordinator.js';

export type SoleRead = Extract<CoordinatorResult, { type: 'read' }>;

/** A computed result and the instants (expiry clock) between which it holds. */
export interface SoleReadMemo {
  readonly result: SoleRead;
  readonly fromMs: number;
  readonly untilMs: number;
}

/** The read result of `object` alone at `expiryNowMs`; undefined when the object is corrupt (the request path reports it). */
export function soleReadOf(object: Uint8Array | undefined, policy: ConflictPolicy, expiryNowMs: number): SoleReadMemo | undefined {
  let decoded: StoredObject | undefined;
  try {
    decoded = object === undefined ? undefined : decodeObject(object);
  } catch (error) {
    if (isRingkvError(error, ErrorCode.corruption)) return undefined;
    throw error;
  }
  const view = readView(decoded, policy, expiryNowMs);
  const result: SoleRead = { type: 'read', found: view.found, values: view.values, context: view.context, latest: view.latest, expiresAtMs: view.expiresAtMs };
  return { result, fromMs: expiryNowMs, untilMs: nextExpiryOf(decoded, expiryNowMs) };
}

/** The earliest expiry after `nowMs` of any sibling (Infinity: none falls due). */
function nextExpiryOf(object: StoredObject | undefined, nowMs: number): number {
  let atMs = Infinity;
  if (object === undefined) return atMs;
  for (const entry of object) {
    for (const sibling of entry.siblings) {
      const expiresAtMs = sibling.expiresAtMs;
      if (expiresAtMs !== undefined && expiresAtMs > nowMs && expiresAtMs < atMs) atMs = expiresAtMs;
    }
  }
  return atMs;
}
