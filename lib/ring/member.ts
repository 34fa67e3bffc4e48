/**
 * A ring member as placement sees it: id, weight, datacenter, rack and status, validated and
 * put in the canonical order every node uses (ids compared by UTF-16 code units), so that the
 * ring is a function of the member *set*, never of the order gossip delivered it in.
 *
 * Which statuses own partitions (DESIGN.md §3; the handoff issue streams the difference):
 *  - the current ring: `normal` and `leaving` members (a leaving node serves until handed off);
 *  - the target ring a membership change is heading to: `normal` and `joining` members
 *    (`includeJoining: true, excludeLeaving: true`);
 *  - `replacing` members (a node that took a dead member's id with `--replace`, streaming its
 *    partitions) own exactly what that member owned, in both rings: nothing moves; the
 *    coordinator treats them as pending replicas until they turn `normal`;
 *  - `left` members never own anything.
 *
 * Pure values and functions, any thread. Argument mistakes throw TypeError/RangeError naming
 * the field, e.g. `members[2].weight`. The record is structurally a subset of membership's
 * gossiped MemberState, so a membership view can be passed as is.
 */

import { limits } from '../base/limits.js';

export const memberStatuses = ['joining', 'replacing', 'normal', 'leaving', 'left'] as const;
export type MemberStatus = (typeof memberStatuses)[number];

export interface Member {
  readonly id: string;
  /** Relative capacity: a member with weight w owns about w times as many partitions. */
  readonly weight: number;
  readonly dc: string;
  readonly rack: string;
  readonly status: MemberStatus;
}

/** What callers pass: weight defaults to 1, dc to 'dc1', rack to 'rack1', status to 'normal'. */
export interface MemberInput {
  readonly id: string;
  readonly weight?: number;
  readonly dc?: string;
  readonly rack?: string;
  readonly status?: MemberStatus;
}

export interface OwnershipOptions {
  /** Count `joining` members as owners (the target ring of a join). Default false. */
  readonly includeJoining?: boolean;
  /** Leave `leaving` members out (the target ring of a leave). Default false. */
  readonly excludeLeaving?: boolean;
}

export const memberDefaults = { weight: 1, dc: 'dc1', rack: 'rack1', status: 'normal' } as const;

function validateName(value: unknown, maxBytes: number, field: string): string {
  if (typeof value !== 'string') throw new TypeError(`${field} must be a string`);
  if (value.length === 0) throw new RangeError(`${field} must not be empty`);
  if (value.length > maxBytes || Buffer.byteLength(value, 'utf8') > maxBytes) {
    throw new RangeError(`${field} must be at most ${maxBytes} UTF-8 bytes`);
  }
  return value;
}

function validateWeight(value: unknown, field: string): number {
  if (value === undefined) return memberDefaults.weight;
  if (typeof value !== 'number') throw new TypeError(`${field} must be a number`);
  if (!Number.isFinite(value) || value <= 0 || value > limits.memberWeightMax) {
    throw new RangeError(`${field} must be a positive number at most ${limits.memberWeightMax}, got ${value}`);
  }
  return value;
}

function validateStatus(value: unknown, field: string): MemberStatus {
  if (value === undefined) return memberDefaults.status;
  if (typeof value !== 'string') throw new TypeError(`${field} must be a string`);
  if (!(memberStatuses as readonly string[]).includes(value)) {
    throw new RangeError(`${field} must be one of ${memberStatuses.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as MemberStatus;
}

/** A validated, frozen copy of one member (defaults filled in, extra fields dropped). */
export function validateMember(value: unknown, field = 'member'): Member {
  if (typeof value !== 'object' || value === null) throw new TypeError(`${field} must be an object`);
  const input = value as Record<string, unknown>;
  const dc = input.dc === undefined ? memberDefaults.dc : input.dc;
  const rack = input.rack === undefined ? memberDefaults.rack : input.rack;
  return Object.freeze({
    id: validateName(input.id, limits.memberIdBytesMax, `${field}.id`),
    weight: validateWeight(input.weight, `${field}.weight`),
    dc: validateName(dc, limits.memberLabelBytesMax, `${field}.dc`),
    rack: validateName(rack, limits.memberLabelBytesMax, `${field}.rack`),
    status: validateStatus(input.status, `${field}.status`),
  });
}

/** The canonical order of member ids: by UTF-16 code units, the same on every node. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Validates a member list and returns it frozen, in canonical (id) order. Duplicate ids and
 * lists longer than membersMax are RangeErrors naming the field.
 */
export function normalizeMembers(members: unknown, field = 'members'): readonly Member[] {
  if (!Array.isArray(members)) throw new TypeError(`${field} must be an array`);
  if (members.length > limits.membersMax) {
    throw new RangeError(`${field} must hold at most ${limits.membersMax} members, got ${members.length}`);
  }
  const out = members.map((member, i) => validateMember(member, `${field}[${i}]`));
  out.sort((a, b) => compareIds(a.id, b.id));
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.id === out[i - 1]!.id) throw new RangeError(`${field}: duplicate member id ${JSON.stringify(out[i]!.id)}`);
  }
  return Object.freeze(out);
}

/** Whether a member with this status owns partitions in the ring these options describe. */
export function ownsPartitions(status: MemberStatus, options: OwnershipOptions = {}): boolean {
  switch (status) {
    case 'normal':
    case 'replacing':
      return true;
    case 'joining':
      return options.includeJoining === true;
    case 'leaving':
      return options.excludeLeaving !== true;
    case 'left':
      return false;
  }
}
