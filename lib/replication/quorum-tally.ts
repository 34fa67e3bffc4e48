/**
 * The quorum tally of one request: which targets have answered well, which badly, which are
 * still pending, and whether the requirement is met or can still be met. Pure, owned by the
 * coordinator that created it (riak_kv's get_core/put_core tallies, kept apart from the FSM).
 *
 * Invariants: a target counts at most once, whatever the network duplicates; only targets
 * named at creation count (a reply from anyone else is ignored); a target moves from pending
 * to exactly one of acked or failed, never back.
 */

import type { Requirement } from './consistency-level.js';

export interface TallyTarget {
  readonly id: string;
  readonly dc: string;
}

const pendingState = 0;
const ackedState = 1;
const failedState = 2;

/**
 * Kept in two parallel arrays (targets, states), not Maps and Sets: a request has a few
 * targets, a linear scan is cheaper than hashing, and a tally allocates two exact-size arrays.
 */
export class QuorumTally {
  readonly requirement: Requirement;
  readonly #targets: TallyTarget[];
  readonly #states: number[];
  #pendingCount = 0;
  #ackedCount = 0;
  /** Per-datacenter counts, kept only when the requirement names datacenters. */
  readonly #ackedPerDc: Map<string, number> | undefined;
  readonly #pendingPerDc: Map<string, number> | undefined;

  constructor(requirement: Requirement, targets: readonly TallyTarget[]) {
    this.requirement = requirement;
    const perDc = requirement.perDc.size > 0;
    this.#ackedPerDc = perDc ? new Map() : undefined;
    this.#pendingPerDc = perDc ? new Map() : undefined;
    if (distinctCount(targets) === targets.length && !perDc) {
      this.#targets = targets.slice();
      this.#states = targets.map(() => pendingState);
      this.#pendingCount = targets.length;
      return;
    }
    this.#targets = [];
    this.#states = [];
    for (const target of targets) this.add(target);
  }

  /** Adds a pending target (a spare asked after another failed); false if it was known already. */
  add(target: TallyTarget): boolean {
    for (const known of this.#targets) if (known.id === target.id) return false;
    this.#targets.push(target);
    this.#states.push(pendingState);
    this.#pendingCount++;
    if (this.#pendingPerDc !== undefined) bump(this.#pendingPerDc, target.dc, 1);
    return true;
  }

  /** Records a good answer; false if `id` is not a pending target (unknown or already counted). */
  ack(id: string): boolean {
    const i = this.#settle(id, ackedState);
    if (i < 0) return false;
    this.#ackedCount++;
    if (this.#ackedPerDc !== undefined) bump(this.#ackedPerDc, this.#targets[i]!.dc, 1);
    return true;
  }

  /** Records a bad answer (error, lost link); false if `id` is not a pending target. */
  fail(id: string): boolean {
    return this.#settle(id, failedState) >= 0;
  }

  /** Moves pending target `id` to `state`; its index, or -1 when it is not pending. */
  #settle(id: string, state: number): number {
    const i = this.#pendingIndex(id);
    if (i < 0) return -1;
    this.#states[i] = state;
    this.#pendingCount--;
    if (this.#pendingPerDc !== undefined) bump(this.#pendingPerDc, this.#targets[i]!.dc, -1);
    return i;
  }

  #pendingIndex(id: string): number {
    for (let i = 0; i < this.#targets.length; i++) if (this.#targets[i]!.id === id) return this.#states[i] === pendingState ? i : -1;
    return -1;
  }

  /** The targets still pending, in the order given. */
  pendingTargets(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.#targets.length; i++) if (this.#states[i] === pendingState) out.push(this.#targets[i]!.id);
    return out;
  }

  isPending(id: string): boolean {
    return this.#pendingIndex(id) >= 0;
  }

  /** The targets that acked (a new set per call: for settling a put, not for the hot path). */
  get acked(): ReadonlySet<string> {
    const out = new Set<string>();
    for (let i = 0; i < this.#targets.length; i++) if (this.#states[i] === ackedState) out.add(this.#targets[i]!.id);
    return out;
  }

  get ackedCount(): number {
    return this.#ackedCount;
  }

  get pendingCount(): number {
    return this.#pendingCount;
  }

  /** Every target has answered, one way or the other. */
  get settled(): boolean {
    return this.#pendingCount === 0;
  }

  get met(): boolean {
    if (this.#ackedCount < this.requirement.total) return false;
    if (this.#ackedPerDc === undefined) return true;
    for (const [dc, need] of this.requirement.perDc) if ((this.#ackedPerDc.get(dc) ?? 0) < need) return false;
    return true;
  }

  /** The requirement is met, or would be if every pending target acked. */
  get possible(): boolean {
    if (this.#ackedCount + this.#pendingCount < this.requirement.total) return false;
    if (this.#ackedPerDc === undefined || this.#pendingPerDc === undefined) return true;
    for (const [dc, need] of this.requirement.perDc) {
      if ((this.#ackedPerDc.get(dc) ?? 0) + (this.#pendingPerDc.get(dc) ?? 0) < need) return false;
    }
    return true;
  }
}

function bump(counts: Map<string, number>, dc: string, delta: number): void {
  counts.set(dc, (counts.get(dc) ?? 0) + delta);
}

/**
 * Whether these targets, all answering well, would meet the requirement. Allocates nothing
 * for the common case (no per-datacenter counts, targets already distinct).
 */
export function canMeet(requirement: Requirement, targets: readonly TallyTarget[]): boolean {
  if (requirement.perDc.size === 0 && distinctCount(targets) >= requirement.total) return true;
  return new QuorumTally(requirement, targets).possible;
}

/** The number of distinct ids among `targets` (quadratic: preference lists are a few entries). */
function distinctCount(targets: readonly TallyTarget[]): number {
  let count = 0;
  for (let i = 0; i < targets.length; i++) {
    let seen = false;
    for (let j = 0; j < i && !seen; j++) seen = targets[j]!.id === targets[i]!.id;
    if (!seen) count++;
  }
  return count;
}
