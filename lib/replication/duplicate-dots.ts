/**
 * Duplicate mints of one client write (rid) and how they are undone. Pure, any thread (the
 * supervisor's main thread in practice).
 *
 * Tied hedges (coordinator.ts) leave one window: a coordinator that applied a write locally
 * and then stopped (a pause) before replicating it, while the client's hedge was minted by
 * another coordinator after waiting for it in vain. The same client write then has two dots.
 * Every replica write of a client write names its mint — `{actor, counter, attempt}`, the
 * event the minting coordinator created and which client attempt it served — so any replica
 * that has seen two mints of one rid knows it, and every such replica undoes all but one the
 * same way: the winner is the mint of the latest attempt (the hedge, whose answer the client
 * got while the first coordinator was stopped), ties broken by actor id; each loser sibling is
 * voided in place (a tombstone expired since `voidExpiresAtMs`, keeping its dot and mint), as
 * every merge of objects carrying mints also does (lib/causality mint-records.ts). The edited
 * object merged anywhere voids the loser there too (a voided copy of a dot wins over any
 * other, dvv-set.ts sameDot), so every replica converges on one sibling, whatever the order.
 * Removing the loser instead would make its dot look superseded, and a superseded mint's
 * record voids every other copy of its write: the write would be lost.
 *
 * Nothing changes when the winner has not arrived yet. A loser whose value differs from a
 * live winner is never voided (a bug guard).
 */

import { Buffer } from 'node:buffer';
import { decodeObject, encodeObject, voidExpiresAtMs, type DvvEntry } from '../causality/index.js';

/** The event a coordinator minted for a client write, and which attempt of the client it served. */
export interface MintDot {
  readonly actor: string;
  readonly counter: number;
  readonly attempt: number;
}

/** The mint that stays: the latest attempt, then the larger actor id. */
export function winnerOf(dots: readonly MintDot[]): MintDot {
  return dots.reduce((best, dot) => (dot.attempt > best.attempt || (dot.attempt === best.attempt && dot.actor > best.actor) ? dot : best));
}

function siblingOf(entry: DvvEntry | undefined, counter: number): { value: Uint8Array | null } | undefined {
  if (entry === undefined) return undefined;
  const k = entry.counter - counter;
  return k >= 0 && k < entry.siblings.length ? entry.siblings[k] : undefined;
}

const sameValue = (a: Uint8Array | null, b: Uint8Array | null): boolean => (a === null || b === null ? a === b : Buffer.compare(a, b) === 0);

/**
 * The stored object `bytes` with every losing mint of `dots` dropped, or undefined when
 * nothing can or need be dropped (see the header). Throws KV_CORRUPTION on a malformed object.
 */
export function dropDuplicateDots(bytes: Uint8Array, dots: readonly MintDot[]): Uint8Array | undefined {
  const set = decodeObject(bytes);
  const winner = winnerOf(dots);
  const winnerEntry = set.find((e) => e.actor === winner.actor);
  if (winnerEntry === undefined || winnerEntry.counter < winner.counter) return undefined;
  const winnerSibling = siblingOf(winnerEntry, winner.counter);
  let changed = false;
  const out = set.map((entry) => {
    const loser = dots.find((d) => d.actor === entry.actor && d.actor !== winner.actor);
    if (loser === undefined) return entry;
    const k = entry.counter - loser.counter;
    if (k < 0 || k >= entry.siblings.length) return entry;
    const sibling = entry.siblings[k]!;
    if (sibling.value === null && sibling.expiresAtMs === voidExpiresAtMs) return entry; // voided already
    if (winnerSibling !== undefined && !sameValue(winnerSibling.value, sibling.value)) return entry;
    changed = true;
    // Voided, not removed: a removed dot reads as superseded, and its mint record would then
    // void the winner too (lib/causality mint-records.ts).
    const siblings = entry.siblings.slice();
    siblings[k] = { value: null, timestampMs: sibling.timestampMs, expiresAtMs: voidExpiresAtMs, ...(sibling.mint === undefined ? {} : { mint: sibling.mint }) };
    return { ...entry, siblings };
  });
  return changed ? encodeObject(out) : undefined;
}
