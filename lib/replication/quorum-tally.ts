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

export class QuorumTally {
  readonly requirement: Requirement;
  readonly #pending = new Map<string, string>();
  readonly #acked = new Set<string>();
  readonly #failed = new Set<string>();
  readonly #ackedPerDc = new Map<string, number>();
  readonly #pendingPerDc = new Map<string, number>();

  constructor(requirement: Requirement, targets: readonly TallyTarget[]) {
    this.requirement = requirement;
    for (const { id, dc } of targets) {
      if (this.#pending.has(id)) continue;
      this.#pending.set(id, dc);
      bump(this.#pendingPerDc, dc, 1);
    }
  }

  /** Adds a pending target (a spare asked after another failed); false if it was known already. */
  add(target: TallyTarget): boolean {
    if (this.#pending.has(target.id) || this.#acked.has(target.id) || this.#failed.has(target.id)) return false;
    this.#pending.set(target.id, target.dc);
    bump(this.#pendingPerDc, target.dc, 1);
    return true;
  }

  /** Records a good answer; false if `id` is not a pending target (unknown or already counted). */
  ack(id: string): boolean {
    const dc = this.#settle(id);
    if (dc === undefined) return false;
    this.#acked.add(id);
    bump(this.#ackedPerDc, dc, 1);
    return true;
  }

  /** Records a bad answer (error, lost link); false if `id` is not a pending target. */
  fail(id: string): boolean {
    if (this.#settle(id) === undefined) return false;
    this.#failed.add(id);
    return true;
  }

  #settle(id: string): string | undefined {
    const dc = this.#pending.get(id);
    if (dc === undefined) return undefined;
    this.#pending.delete(id);
    bump(this.#pendingPerDc, dc, -1);
    return dc;
  }

  /** The targets still pending, in the order given. */
  pendingTargets(): string[] {
    return [...this.#pending.keys()];
  }

  isPending(id: string): boolean {
    return this.#pending.has(id);
  }

  get acked(): ReadonlySet<string> {
    return this.#acked;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Every target has answered, one way or the other. */
  get settled(): boolean {
    return this.#pending.size === 0;
  }

  get met(): boolean {
    if (this.#acked.size < this.requirement.total) return false;
    for (const [dc, need] of this.requirement.perDc) if ((this.#ackedPerDc.get(dc) ?? 0) < need) return false;
    return true;
  }

  /** The requirement is met, or would be if every pending target acked. */
  get possible(): boolean {
    if (this.#acked.size + this.#pending.size < this.requirement.total) return false;
    for (const [dc, need] of this.requirement.perDc) {
      if ((this.#ackedPerDc.get(dc) ?? 0) + (this.#pendingPerDc.get(dc) ?? 0) < need) return false;
    }
    return true;
  }
}

function bump(counts: Map<string, number>, dc: string, delta: number): void {
  counts.set(dc, (counts.get(dc) ?? 0) + delta);
}

/** Whether these targets, all answering well, would meet the requirement. */
export function canMeet(requirement: Requirement, targets: readonly TallyTarget[]): boolean {
  return new QuorumTally(requirement, targets).possible;
}
