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
 * dropped from its actor's entry while the entry's counter is kept. The edited object merged
 * anywhere drops the loser there too: a dot another state has seen but no longer holds is
 * superseded (dvv-set.ts sync), so every replica converges on one sibling, whatever the order.
 *
 * A loser can be dropped only when it is the oldest sibling its actor's entry still holds (an
 * entry holds a contiguous run of dots); otherwise, or when the winner has not arrived yet,
 * nothing changes and the two siblings stay (a later write with their context supersedes
 * both). A loser whose value differs from a live winner is never dropped (a bug guard).
 */

import { Buffer } from 'node:buffer';
import { decodeObject, encodeObject, type DvvEntry } from '../causality/index.js';

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
    if (k < 0 || k !== entry.siblings.length - 1) return entry;
    if (winnerSibling !== undefined && !sameValue(winnerSibling.value, entry.siblings[k]!.value)) return entry;
    changed = true;
    return { ...entry, siblings: entry.siblings.slice(0, -1) };
  });
  return changed ? encodeObject(out) : undefined;
}
