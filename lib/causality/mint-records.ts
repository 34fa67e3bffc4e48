/**
 * One client write, one sibling — on every merge path. Pure, any thread (the shard that owns
 * the key, and the coordinator's read merge).
 *
 * A client that hears nothing from a coordinator sends the same write (same rid) to another
 * one. If the silent coordinator had applied it before going quiet (paused, or cut off from
 * its peers), the write now has two events: two dots, two siblings with one value. Replica
 * writes name their mint, and replicas that see both mints drop one (lib/replication
 * duplicate-dots.ts), but a mint that travels later by hint, anti-entropy or read repair
 * arrives as a plain object, possibly after the client has already written over its twin, and
 * would come back as an old sibling beside newer writes.
 *
 * So the stored object itself remembers mints:
 *  - a sibling written for a client write carries its `mint`: the write's rid and which client
 *    attempt the coordinator served (0: the first);
 *  - when a minted sibling is superseded, its actor's entry keeps a `record` of it (rid,
 *    attempt, counter, timestamp): a retry's (attempt >= 1, whose twin is a first attempt by
 *    a coordinator that went silent) for `limits.mintRecordRetentionMs` of the object's
 *    history, a first attempt's (whose twin is a hedge minted while it was in flight) for
 *    `limits.mintRecordFirstRetentionMs`; at most `limits.mintRetryRecordsPerActor` retries
 *    and `limits.mintRecordsPerActor` first attempts per actor (a partition makes many retries).
 *
 * `settleMints` runs after every merge and client write. A live sibling whose rid has a
 * record under another dot is the twin of a write already superseded; of two live siblings
 * with one rid, the earlier attempt's (ties: the smaller actor id) is the twin. A twin is
 * voided: its sibling becomes a tombstone that expired at `voidExpiresAtMs`, keeping its dot,
 * timestamp and mint. Reads never show an expired sibling, and the DVV sync prefers the voided
 * copy of a dot to any other copy of it (dvv-set.ts sameDot), so voiding is a one-way change
 * of a dot's state and the merge stays a join: replicas converge once they have exchanged
 * their states. (Records are bounded, so two replicas that merged the same states in different
 * orders may have voided different twins on the way; the exchange voids both everywhere.) A
 * later write with the key's context supersedes the void like any sibling.
 *
 * What it does not cover: a twin arriving after its record's retention or cap (a key written
 * more than the cap times through one coordinator meanwhile), and retention judged against
 * clocks skewed by about that much. Writes that cannot have twins (the RESP front door's:
 * one coordinator, no retries elsewhere) carry no mint and cost nothing.
 */

import { Buffer } from 'node:buffer';
import { limits } from '../base/limits.js';
import { voidExpiresAtMs, type DvvEntry, type DvvSet, type MintRecord, type Sibling } from './dvv-set.js';

interface LiveMint {
  readonly entry: number;
  readonly index: number;
  readonly actor: string;
  readonly counter: number;
  readonly sibling: Sibling;
}

const isVoid = (sibling: Sibling): boolean => sibling.expiresAtMs === voidExpiresAtMs && sibling.value === null;

const ridKey = (rid: Uint8Array): string => Buffer.from(rid.buffer, rid.byteOffset, rid.length).toString('latin1');

/** Whether some entry of `set` keeps a record. */
function hasRecords(set: DvvSet): boolean {
  for (const entry of set) if (entry.records !== undefined && entry.records.length > 0) return true;
  return false;
}

/** How many siblings of `set` carry a mint (counting stops at 2). */
function mintedSiblings(set: DvvSet): number {
  let count = 0;
  for (const entry of set) for (const sibling of entry.siblings) if (sibling.mint !== undefined && ++count > 1) return count;
  return count;
}

/** Whether `set` holds the dot (actor, counter) as a live sibling. */
function holds(set: DvvSet, actor: string, counter: number): boolean {
  for (const entry of set) {
    if (entry.actor !== actor) continue;
    return counter <= entry.counter && counter > entry.counter - entry.siblings.length;
  }
  return false;
}

/** Whether `actor`'s entry in `set` holds, above `counter`, a copy (live or voided) minted for rid `key`. */
function heldAbove(set: DvvSet, actor: string, counter: number, key: string): boolean {
  for (const entry of set) {
    if (entry.actor !== actor) continue;
    for (let k = 0; k < entry.siblings.length && entry.counter - k > counter; k++) {
      const mint = entry.siblings[k]!.mint;
      if (mint !== undefined && ridKey(mint.rid) === key) return true;
    }
  }
  return false;
}

/** Every record of `inputs` and `next`, and of the mints of `inputs` that `next` superseded, by actor then counter. */
function gatherRecords(inputs: readonly (DvvSet | undefined)[], next: DvvSet): Map<string, Map<number, MintRecord>> {
  const out = new Map<string, Map<number, MintRecord>>();
  const add = (actor: string, record: MintRecord): void => {
    let byCounter = out.get(actor);
    if (byCounter === undefined) out.set(actor, (byCounter = new Map()));
    if (!byCounter.has(record.counter)) byCounter.set(record.counter, record);
  };
  for (const entry of next) for (const record of entry.records ?? []) add(entry.actor, record);
  for (const input of inputs) {
    if (input === undefined) continue;
    for (const entry of input) {
      for (const record of entry.records ?? []) add(entry.actor, record);
      for (let k = 0; k < entry.siblings.length; k++) {
        // Live or voided alike (one dot, two possible states): a state that held the void also
        // held its winner's history, so whatever superseded the void superseded the winner too.
        const { mint, timestampMs } = entry.siblings[k]!;
        const counter = entry.counter - k;
        // Not when its own actor holds a later copy of the same write (live or voided): the
        // dot then only looks superseded (the actor re-minted the write after losing the first
        // copy, and its counter covers it), and the record would void the last live copy.
        // Any other covering is a write that saw this copy: the write is superseded.
        if (mint !== undefined && !holds(next, entry.actor, counter) && !heldAbove(next, entry.actor, counter, ridKey(mint.rid))) add(entry.actor, { counter, rid: mint.rid, attempt: mint.attempt, timestampMs });
      }
    }
  }
  return out;
}

function liveMints(set: DvvSet): Map<string, LiveMint[]> {
  const out = new Map<string, LiveMint[]>();
  set.forEach((entry, e) => {
    entry.siblings.forEach((sibling, index) => {
      if (sibling.mint === undefined || isVoid(sibling)) return;
      const key = ridKey(sibling.mint.rid);
      const list = out.get(key) ?? [];
      list.push({ entry: e, index, actor: entry.actor, counter: entry.counter - index, sibling });
      out.set(key, list);
    });
  });
  return out;
}

const beats = (a: LiveMint, b: LiveMint): boolean => a.sibling.mint!.attempt > b.sibling.mint!.attempt || (a.sibling.mint!.attempt === b.sibling.mint!.attempt && a.actor > b.actor);

/** The live mints to void: twins of a recorded (superseded) mint, and all but one of live twins. */
function losers(live: Map<string, LiveMint[]>, records: Map<string, Map<number, MintRecord>>): LiveMint[] {
  const recorded = new Map<string, { actor: string; counter: number }[]>();
  for (const [actor, byCounter] of records) {
    for (const record of byCounter.values()) {
      const key = ridKey(record.rid);
      const list = recorded.get(key) ?? [];
      list.push({ actor, counter: record.counter });
      recorded.set(key, list);
    }
  }
  const out: LiveMint[] = [];
  for (const [key, mints] of live) {
    const twins = recorded.get(key);
    if (twins !== undefined) {
      for (const mint of mints) if (twins.some((t) => t.actor !== mint.actor || t.counter !== mint.counter)) out.push(mint);
      continue;
    }
    if (mints.length < 2) continue;
    const winner = mints.reduce((best, m) => (beats(m, best) ? m : best));
    for (const mint of mints) if (mint !== winner && sameValue(mint.sibling.value, winner.sibling.value)) out.push(mint);
  }
  return out;
}

const sameValue = (a: Uint8Array | null, b: Uint8Array | null): boolean => (a === null || b === null ? a === b : Buffer.compare(a, b) === 0);

/**
 * The records an entry keeps: those within their retention of the object's newest timestamp,
 * the newest `mintRetryRecordsPerActor` retries (attempt >= 1, whose twins are first attempts
 * by coordinators that went silent: `mintRecordRetentionMs`) and the newest
 * `mintRecordsPerActor` first attempts (whose twins are hedges minted while they were in
 * flight: `mintRecordFirstRetentionMs`). A function of the union of records alone, so every
 * merge order keeps the same; newest first.
 */
function trimmed(records: Iterable<MintRecord>, newestMs: number): MintRecord[] {
  const retries: MintRecord[] = [];
  const firsts: MintRecord[] = [];
  for (const r of records) {
    if (r.attempt > 0 && r.timestampMs >= newestMs - limits.mintRecordRetentionMs) retries.push(r);
    if (r.attempt === 0 && r.timestampMs >= newestMs - limits.mintRecordFirstRetentionMs) firsts.push(r);
  }
  const newest = (a: MintRecord, b: MintRecord): number => b.counter - a.counter;
  const kept = retries.sort(newest).slice(0, limits.mintRetryRecordsPerActor).concat(firsts.sort(newest).slice(0, limits.mintRecordsPerActor));
  return kept.sort(newest);
}

function newestTimestamp(set: DvvSet, records: Map<string, Map<number, MintRecord>>): number {
  let newest = 0;
  for (const entry of set) for (const s of entry.siblings) newest = Math.max(newest, s.timestampMs);
  for (const byCounter of records.values()) for (const r of byCounter.values()) newest = Math.max(newest, r.timestampMs);
  return newest;
}

/** The voided copy of a twin: a tombstone expired since `voidExpiresAtMs`, same dot, time and mint. */
function voidOf(sibling: Sibling): Sibling {
  return { value: null, timestampMs: sibling.timestampMs, expiresAtMs: voidExpiresAtMs, mint: sibling.mint! };
}

/**
 * `next` (a merge or client write of `inputs`) with the mint rules of the header applied:
 * records carried over and added, duplicate mints voided. Returns `next` itself when no
 * input or result carries a mint.
 */
export function settleMints(inputs: readonly (DvvSet | undefined)[], next: DvvSet): DvvSet {
  // Decided without allocating: no records, no minted sibling an input could lose here, and at
  // most one in the result (nothing to compare it with).
  if (!hasRecords(next) && mintedSiblings(next) <= 1 && inputs.every((input) => input === undefined || (!hasRecords(input) && mintedSiblings(input) === 0))) return next;
  const live = liveMints(next);
  const gathered = gatherRecords(inputs, next);
  const newestMs = newestTimestamp(next, gathered);
  // Trimmed before they are used: a record only some merge orders would still hold must not
  // void anything, or the orders would disagree.
  const records = new Map<string, Map<number, MintRecord>>();
  for (const [actor, byCounter] of gathered) records.set(actor, new Map(trimmed(byCounter.values(), newestMs).map((r) => [r.counter, r])));
  const voided = new Set(losers(live, records).map((m) => `${m.entry}:${m.index}`));
  return next.map((entry, e): DvvEntry => {
    let siblings = entry.siblings;
    for (let k = 0; voided.size > 0 && k < siblings.length; k++) {
      if (!voided.has(`${e}:${k}`)) continue;
      if (siblings === entry.siblings) siblings = siblings.slice();
      (siblings as Sibling[])[k] = voidOf(siblings[k]!);
    }
    const recordsKept = [...(records.get(entry.actor)?.values() ?? [])];
    if (recordsKept.length === 0 && siblings === entry.siblings && entry.records === undefined) return entry;
    const out: DvvEntry = { actor: entry.actor, counter: entry.counter, siblings };
    return recordsKept.length > 0 ? { ...out, records: recordsKept } : out;
  });
}
