/**
 * One member's gossiped record, the rule that merges two copies of it, and the checks that
 * untrusted copies pass before they are merged. Pure values and functions; used on the main
 * thread by the supervisor's membership.
 *
 * A record is what its owner last said about itself (address, weight, datacenter, rack,
 * status), stamped with the owner's generation (one per process start, strictly increasing
 * across restarts: see `nextGeneration`) and heartbeat (bumped by the owner once per gossip
 * interval and on every change of its own record). Follows Cassandra's EndpointState: a
 * HeartBeatState (generation, version) plus versioned application states.
 *
 * Invariants:
 *  - generation >= 1 (0 means "unknown" in digests); 0 <= statusVersion <= heartbeat.
 *  - Only the owner mints a new (generation, heartbeat); every other node only copies.
 *  - Merge: the higher generation wins outright (a restart replaces everything). Within one
 *    generation the heartbeat is the maximum, and the descriptive fields come from the copy
 *    with the higher statusVersion (the heartbeat at which the owner last changed them), so a
 *    status change such as leaving or left cannot be undone by a copy carrying an older
 *    status, whatever its heartbeat. On copies of one owner's history the merge is
 *    commutative, associative and idempotent, so the order gossip arrives in does not matter.
 *  - Status only moves forward within a generation: joining → normal → leaving → left, or
 *    replacing → normal → ... (a node taking a dead member's place: `ringkv start --replace`).
 */

import { isIntegerIn } from '../base/guards.js';
import { limits } from '../base/limits.js';

export const memberStatuses = ['joining', 'replacing', 'normal', 'leaving', 'left'] as const;
export type MemberStatus = (typeof memberStatuses)[number];

export interface MemberState {
  readonly id: string;
  /** Where peers reach this member's /peer endpoint (host:port or URL). */
  readonly address: string;
  readonly generation: number;
  readonly heartbeat: number;
  readonly status: MemberStatus;
  /** Heartbeat at which the owner last changed status, address, weight, dc or rack. */
  readonly statusVersion: number;
  readonly weight: number;
  readonly dc: string;
  readonly rack: string;
}

/** A member's place in its history: what digests carry and what "newer" compares. */
export interface MemberVersion {
  readonly generation: number;
  readonly heartbeat: number;
}

export type Validated<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/** -1, 0 or 1: (generation, heartbeat) order, generation first. */
export function compareVersion(a: MemberVersion, b: MemberVersion): number {
  if (a.generation !== b.generation) return a.generation < b.generation ? -1 : 1;
  if (a.heartbeat !== b.heartbeat) return a.heartbeat < b.heartbeat ? -1 : 1;
  return 0;
}

/** Position of a status in the forward-only order joining → normal → leaving → left. */
export function statusRank(status: MemberStatus): number {
  return memberStatuses.indexOf(status);
}

/** The merge of two copies of one member's record (see the header for the rule). */
export function mergeMemberState(a: MemberState, b: MemberState): MemberState {
  if (a.generation !== b.generation) return a.generation > b.generation ? a : b;
  const described = describedBy(a, b);
  const heartbeat = Math.max(a.heartbeat, b.heartbeat);
  if (described.heartbeat === heartbeat) return described;
  return { ...described, heartbeat };
}

/**
 * The copy whose descriptive fields win within one generation: the higher statusVersion. Two
 * honest copies with equal statusVersion describe the member identically; a forged one may
 * not, and a fixed order between descriptions keeps the merge commutative even then.
 */
function describedBy(a: MemberState, b: MemberState): MemberState {
  if (a.statusVersion !== b.statusVersion) return a.statusVersion > b.statusVersion ? a : b;
  return compareDescription(a, b) >= 0 ? a : b;
}

function compareDescription(a: MemberState, b: MemberState): number {
  const byStatus = statusRank(a.status) - statusRank(b.status);
  if (byStatus !== 0) return byStatus;
  const fields = [
    [a.address, b.address],
    [a.dc, b.dc],
    [a.rack, b.rack],
  ] as const;
  for (const [x, y] of fields) if (x !== y) return x < y ? -1 : 1;
  return a.weight === b.weight ? 0 : a.weight < b.weight ? -1 : 1;
}

/** Whether two records describe the member the same way (ignoring versions). */
export function sameDescription(a: MemberState, b: MemberState): boolean {
  return a.status === b.status && a.address === b.address && a.weight === b.weight && a.dc === b.dc && a.rack === b.rack;
}

/**
 * The generation for a process start: above every earlier one. `previous` is the persisted
 * generation of the last start (undefined on a first start); the wall clock in seconds keeps
 * generations increasing even if the persisted counter was lost (as Cassandra does).
 */
export function nextGeneration(previous: number | undefined, wallMs: number): number {
  if (previous !== undefined && !isIntegerIn(previous, 0, limits.generationMax - 1)) {
    throw new RangeError('previous generation out of range');
  }
  if (!Number.isFinite(wallMs) || wallMs < 0) throw new RangeError('wallMs must be a non-negative number');
  const generation = Math.max((previous ?? 0) + 1, Math.floor(wallMs / 1000));
  if (generation > limits.generationMax) throw new RangeError('generation above generationMax');
  return generation;
}

// ---------------------------------------------------------------- validation of untrusted input

export { isIntegerIn };

/** A non-empty string of at most maxBytes UTF-8 bytes. */
export function isBoundedString(value: unknown, maxBytes: number): value is string {
  if (typeof value !== 'string' || value.length === 0) return false;
  // UTF-8 never takes fewer bytes than UTF-16 code units, so a long string is refused unread.
  if (value.length > maxBytes) return false;
  return Buffer.byteLength(value, 'utf8') <= maxBytes;
}

export function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStatus(value: unknown): value is MemberStatus {
  return typeof value === 'string' && (memberStatuses as readonly string[]).includes(value);
}

function isWeight(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= limits.memberWeightMax;
}

/**
 * Checks an untrusted member record field by field and returns a fresh copy holding only the
 * known fields (so nothing else a peer attached travels on). Never throws.
 */
export function validateMemberState(raw: unknown): Validated<MemberState> {
  if (!isPlainRecord(raw)) return { ok: false, reason: 'member entry is not an object' };
  const { id, address, generation, heartbeat, status, statusVersion, weight, dc, rack } = raw;
  if (!isBoundedString(id, limits.memberIdBytesMax)) return { ok: false, reason: 'member id missing or too long' };
  if (!isBoundedString(address, limits.memberAddressBytesMax)) return { ok: false, reason: 'member address missing or too long' };
  if (!isIntegerIn(generation, 1, limits.generationMax)) return { ok: false, reason: 'member generation out of range' };
  if (!isIntegerIn(heartbeat, 0, limits.heartbeatMax)) return { ok: false, reason: 'member heartbeat out of range' };
  if (!isIntegerIn(statusVersion, 0, heartbeat)) return { ok: false, reason: 'member statusVersion out of range' };
  if (!isStatus(status)) return { ok: false, reason: 'member status unknown' };
  if (!isWeight(weight)) return { ok: false, reason: 'member weight out of range' };
  if (!isBoundedString(dc, limits.memberLabelBytesMax)) return { ok: false, reason: 'member dc missing or too long' };
  if (!isBoundedString(rack, limits.memberLabelBytesMax)) return { ok: false, reason: 'member rack missing or too long' };
  return { ok: true, value: { id, address, generation, heartbeat, status, statusVersion, weight, dc, rack } };
}

/** A member record from our own code: mistakes are programmer errors (TypeError/RangeError). */
export function createMemberState(fields: MemberState): MemberState {
  const checked = validateMemberState(fields);
  if (!checked.ok) throw new RangeError(checked.reason);
  return checked.value;
}
