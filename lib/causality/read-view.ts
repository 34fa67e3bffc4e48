/**
 * What a read shows of a key's stored object, and how expiry (TTL) hides values. Pure, any
 * thread: the shard (embedded gets) and the read's coordinator (cluster gets) call it.
 *
 * Expiry. A sibling written with a TTL carries `expiresAtMs`, a wall-clock instant of the
 * clock of the replica that coordinated the write. A reader given `nowMs` treats every sibling
 * with `expiresAtMs <= nowMs` as absent: it is never returned, whatever other replicas hold.
 * Callers in a cluster pass their wall clock plus the documented skew bound (the node's
 * `clockSkewMs`), so that a node whose clock lags the writer's by up to that bound still never
 * returns an expired value; values then vanish up to that bound early. An expired sibling
 * keeps its dot, so it still supersedes whatever it superseded when written: expiry never
 * resurrects an older value. Compaction turns expired values into tombstones that remember
 * their expiry (`expireValues`); tombstone purging then drops them after its grace period.
 *
 * The single value (`latest`) is what a Redis-style GET returns when a key holds concurrent
 * siblings: the live sibling with the highest (timestampMs, actor, dot) — the last writer by
 * the coordinators' clocks, tombstones included (a newest delete shows nothing).
 */

import type { DvvSet, Sibling } from './dvv-set.js';
import { lwwWinner, voidExpiresAtMs } from './dvv-set.js';
import { compareActors } from './actor-id.js';
import type { ConflictPolicy } from './stored-object.js';
import { encodeContext } from './version-vector.js';

export interface ReadView {
  /** At least one live sibling is a value (not a tombstone, not expired). */
  readonly found: boolean;
  /** The values of the live non-tombstone siblings; more than one means concurrent writes. */
  readonly values: Uint8Array[];
  /** Every sibling is a tombstone or expired (and there is at least one). */
  readonly tombstoneOnly: boolean;
  /** The encoded causal context: covers every sibling, tombstones and expired ones included. */
  readonly context: Uint8Array;
  /** The newest live sibling's value (undefined when none or a tombstone): GET's one value. */
  readonly latest: Uint8Array | undefined;
  /** `latest`'s expiry; undefined when it never expires. */
  readonly expiresAtMs: number | undefined;
}

/** Whether `sibling` is expired at wall-clock `nowMs`; a voided twin (mint-records.ts) always is. */
export function isExpired(sibling: Sibling, nowMs: number): boolean {
  return sibling.expiresAtMs !== undefined && (sibling.expiresAtMs <= nowMs || sibling.expiresAtMs === voidExpiresAtMs);
}

/**
 * What a get returns from this state at `nowMs` (default: no expiry applies). With `lww` only
 * the last writer shows (replica merges may have left concurrent siblings; the next write
 * collapses them).
 */
export function readView(stored: DvvSet | undefined, policy: ConflictPolicy = 'siblings', nowMs = -Infinity): ReadView {
  const object = stored ?? [];
  const found: Uint8Array[] = [];
  let shown = 0;
  let newest: Sibling | undefined;
  let newestActor = '';
  let newestDot = 0;
  if (policy === 'lww') {
    const live = nowMs === -Infinity ? object : liveOnly(object, nowMs);
    const winner = lwwWinner(live);
    if (winner !== undefined) shown = 1;
    if (winner?.value) found.push(winner.value);
    newest = winner;
  } else {
    for (const entry of object) {
      for (let k = 0; k < entry.siblings.length; k++) {
        const sibling = entry.siblings[k]!;
        shown++;
        if (isExpired(sibling, nowMs)) continue;
        if (sibling.value !== null) found.push(sibling.value);
        const dot = entry.counter - k;
        if (newest === undefined || isNewer(sibling, entry.actor, dot, newest, newestActor, newestDot)) {
          newest = sibling;
          newestActor = entry.actor;
          newestDot = dot;
        }
      }
    }
  }
  const latest = newest?.value ?? undefined;
  const expiresAtMs = latest === undefined ? undefined : newest!.expiresAtMs;
  // A DVV set is a version vector with siblings: encoding it directly skips join's copy.
  return { found: found.length > 0, values: found, tombstoneOnly: found.length === 0 && shown > 0, context: encodeContext(object), latest, expiresAtMs };
}

function isNewer(a: Sibling, actorA: string, dotA: number, b: Sibling, actorB: string, dotB: number): boolean {
  if (a.timestampMs !== b.timestampMs) return a.timestampMs > b.timestampMs;
  const order = compareActors(actorA, actorB);
  return order !== 0 ? order > 0 : dotA > dotB;
}

function liveOnly(object: DvvSet, nowMs: number): DvvSet {
  return object.map((entry) => ({ ...entry, siblings: entry.siblings.filter((s) => !isExpired(s, nowMs)) }));
}

/**
 * The state with every value expired at `nowMs` turned into a tombstone that keeps its
 * timestamp and expiry (compaction's drop of expired data); the same object when none is.
 */
export function expireValues(object: DvvSet, nowMs: number): DvvSet {
  let changed = false;
  const out = object.map((entry) => {
    if (!entry.siblings.some((s) => s.value !== null && isExpired(s, nowMs))) return entry;
    changed = true;
    // The tombstone keeps the event's mint, and the entry its mint records (mint-records.ts).
    const siblings = entry.siblings.map((s) => (s.value !== null && isExpired(s, nowMs) ? { ...s, value: null } : s));
    return { ...entry, siblings };
  });
  return changed ? out : object;
}
