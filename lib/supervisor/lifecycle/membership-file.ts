/**
 * The `MEMBERS` file: the membership view a node needs to come back as an owner after any
 * restart, alone or with the whole cluster, whatever its seeds (issue 10; RELIABILITY.md A10;
 * Riak persists its ring file, Cassandra its system.peers table for the same reason). Owned by
 * the supervisor (main thread); read once at start, rewritten when the view changes.
 *
 * Format: UTF-8 JSON `{ "format": "ringkv-members", "formatVersion": 1, "self": "<status>",
 * "members": [{ id, address, generation, status, weight, dc, rack }...], "removals":
 * [{ id, generation }...] }`, written atomically (temp file, fsync, rename, fsync the
 * directory: lib/storage/json-file.ts). `self` is this node's own status; `members` are the
 * other members that own partitions (normal, leaving, replacing): joining members re-announce
 * themselves, left ones are gone. Heartbeats are not kept: a restored member is down until its
 * own heartbeat arrives. `removals` are the ids removed with `removenode` (any incarnation of
 * them stays out of the ring).
 *
 * Invariants: written only when the view (not a heartbeat or liveness) changes, so a steady
 * cluster never writes it; a file that does not parse or whose members do not validate is
 * KV_CORRUPTION, never silently ignored (a node would otherwise restart as a stranger).
 */

import { join } from 'node:path';
import { ErrorCode, RingkvError } from '../../base/errors.js';
import { limits } from '../../base/limits.js';
import { memberStatuses, validateMemberState, type MemberState, type MemberStatus } from '../../membership/index.js';
import { readJsonFile, writeJsonFileAtomically } from '../../storage/json-file.js';

/** Frozen. */
export const membersFormatVersion = 1;
export const MEMBERS_FILE_NAME = 'MEMBERS';

export interface MembershipView {
  readonly self: MemberStatus;
  readonly members: readonly MemberState[];
  readonly removals: readonly { readonly id: string; readonly generation: number }[];
}

/** Statuses that own partitions in the current ring: what a restart must remember. */
export function isOwnerStatus(status: MemberStatus): boolean {
  return status === 'normal' || status === 'leaving' || status === 'replacing';
}

function corrupt(dir: string, what: string): RingkvError {
  const path = join(dir, MEMBERS_FILE_NAME);
  return new RingkvError(ErrorCode.corruption, `${path}: ${what}`, { path });
}

/** The view persisted in `dir`, or undefined when this node never recorded one. */
export function readMembershipFile(dir: string): MembershipView | undefined {
  const record = readJsonFile(dir, MEMBERS_FILE_NAME, 'ringkv-members', membersFormatVersion);
  if (record === undefined) return undefined;
  const { self, members, removals } = record;
  if (typeof self !== 'string' || !(memberStatuses as readonly string[]).includes(self)) throw corrupt(dir, 'self status missing or unknown');
  if (!Array.isArray(members) || members.length > limits.membersMax) throw corrupt(dir, 'members missing or too many');
  if (!Array.isArray(removals) || removals.length > limits.membersMax) throw corrupt(dir, 'removals missing or too many');
  const checked = members.map((m: unknown) => validateMemberState({ ...(m as object), heartbeat: 0, statusVersion: 0 }));
  const bad = checked.find((c) => !c.ok);
  if (bad !== undefined && !bad.ok) throw corrupt(dir, bad.reason);
  const removed = removals.map((r: unknown) => r as { id?: unknown; generation?: unknown });
  if (removed.some((r) => typeof r.id !== 'string' || !Number.isSafeInteger(r.generation))) throw corrupt(dir, 'a removal lacks an id or generation');
  return {
    self: self as MemberStatus,
    members: checked.map((c) => (c.ok ? c.value : undefined)!),
    removals: removed.map((r) => ({ id: r.id as string, generation: r.generation as number })),
  };
}

/** Writes `view` to `dir` when it differs from what this recorder wrote last. */
export class MembershipRecorder {
  readonly #dir: string;
  #last = '';

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Records the view; true when the file was (re)written. */
  record(view: MembershipView): boolean {
    const members = view.members
      .filter((m) => isOwnerStatus(m.status))
      .map((m) => ({ id: m.id, address: m.address, generation: m.generation, status: m.status, weight: m.weight, dc: m.dc, rack: m.rack }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const removals = [...view.removals].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const file = { format: 'ringkv-members', formatVersion: membersFormatVersion, self: view.self, members, removals };
    const text = JSON.stringify(file);
    if (text === this.#last) return false;
    writeJsonFileAtomically(this.#dir, MEMBERS_FILE_NAME, file);
    this.#last = text;
    return true;
  }
}
