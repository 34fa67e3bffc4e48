/**
 * The gossip messages, as plain data, and the checks an untrusted one passes before it is
 * used. Pure; any thread (in practice the supervisor's main thread). The protocol layer
 * (lib/protocol) gives these a numeric wire tag and msgpack framing; this file fixes their shape.
 *
 * One exchange is Cassandra's three-way handshake (GossipDigestSyn / Ack / Ack2):
 *
 *   initiator A                                  receiver B
 *   gossip-syn  { digests: (id, generation, heartbeat) of every member A knows }  →
 *            ←  gossip-ack  { entries: B's records newer than A's digests or absent from them,
 *                             requests: digests where A is newer (B's own version, 0 if unknown) }
 *   gossip-ack2 { entries: A's records newer than each request }               →
 *
 * so both sides leave with the newer copy of every record. Every list is bounded by
 * `gossipEntriesMax` (B11): a longer one rejects the whole message, as does any malformed
 * entry or a duplicated id (an honest peer never sends one). Digest generations may be 0 in
 * requests only ("I do not know this member").
 */

import { limits } from '../base/limits.js';
import {
  isBoundedString,
  isIntegerIn,
  isPlainRecord,
  validateMemberState,
  type MemberState,
  type Validated,
} from './member-state.js';

/** What a node knows of one member: its newest (generation, heartbeat). */
export interface GossipDigest {
  readonly id: string;
  readonly generation: number;
  readonly heartbeat: number;
}

export interface GossipSyn {
  readonly type: 'gossip-syn';
  readonly digests: readonly GossipDigest[];
}

export interface GossipAck {
  readonly type: 'gossip-ack';
  readonly entries: readonly MemberState[];
  readonly requests: readonly GossipDigest[];
}

export interface GossipAck2 {
  readonly type: 'gossip-ack2';
  readonly entries: readonly MemberState[];
}

export type GossipMessage = GossipSyn | GossipAck | GossipAck2;

export const gossipMessageTypes = ['gossip-syn', 'gossip-ack', 'gossip-ack2'] as const;

/** Checks an untrusted message (after decoding) and returns a fresh, well-formed copy. Never throws. */
export function parseGossipMessage(raw: unknown, entriesMax: number = limits.gossipEntriesMax): Validated<GossipMessage> {
  if (!isPlainRecord(raw)) return { ok: false, reason: 'message is not an object' };
  switch (raw.type) {
    case 'gossip-syn': {
      const digests = parseDigests(raw.digests, entriesMax, 1, 'digests');
      return digests.ok ? { ok: true, value: { type: 'gossip-syn', digests: digests.value } } : digests;
    }
    case 'gossip-ack': {
      const entries = parseEntries(raw.entries, entriesMax);
      if (!entries.ok) return entries;
      const requests = parseDigests(raw.requests, entriesMax, 0, 'requests');
      if (!requests.ok) return requests;
      return { ok: true, value: { type: 'gossip-ack', entries: entries.value, requests: requests.value } };
    }
    case 'gossip-ack2': {
      const entries = parseEntries(raw.entries, entriesMax);
      return entries.ok ? { ok: true, value: { type: 'gossip-ack2', entries: entries.value } } : entries;
    }
    default:
      return { ok: false, reason: 'unknown message type' };
  }
}

function parseDigests(raw: unknown, entriesMax: number, generationMin: number, field: string): Validated<GossipDigest[]> {
  if (!Array.isArray(raw)) return { ok: false, reason: `${field} is not an array` };
  if (raw.length > entriesMax) return { ok: false, reason: `${field} over gossipEntriesMax` };
  const out: GossipDigest[] = [];
  const seen = new Set<string>();
  for (const item of raw as unknown[]) {
    if (!isPlainRecord(item)) return { ok: false, reason: `${field} entry is not an object` };
    const { id, generation, heartbeat } = item;
    if (!isBoundedString(id, limits.memberIdBytesMax)) return { ok: false, reason: `${field} id missing or too long` };
    if (!isIntegerIn(generation, generationMin, limits.generationMax)) return { ok: false, reason: `${field} generation out of range` };
    if (!isIntegerIn(heartbeat, 0, limits.heartbeatMax)) return { ok: false, reason: `${field} heartbeat out of range` };
    if (seen.has(id)) return { ok: false, reason: `${field} repeat an id` };
    seen.add(id);
    out.push({ id, generation, heartbeat });
  }
  return { ok: true, value: out };
}

function parseEntries(raw: unknown, entriesMax: number): Validated<MemberState[]> {
  if (!Array.isArray(raw)) return { ok: false, reason: 'entries is not an array' };
  if (raw.length > entriesMax) return { ok: false, reason: 'entries over gossipEntriesMax' };
  const out: MemberState[] = [];
  const seen = new Set<string>();
  for (const item of raw as unknown[]) {
    const entry = validateMemberState(item);
    if (!entry.ok) return entry;
    if (seen.has(entry.value.id)) return { ok: false, reason: 'entries repeat an id' };
    seen.add(entry.value.id);
    out.push(entry.value);
  }
  return { ok: true, value: out };
}
