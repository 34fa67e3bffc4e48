/**
 * The client's picture of the cluster: the RingView a node sends (wire.md, `ring` reply),
 * checked, turned into a Ring with lib/ring exactly as the nodes do (`computeRing(members,
 * { partitionBits, replication })`, then the key's preference list), and the order in which a
 * request tries nodes.
 *
 * Owner: the client's thread. Pure: a view is immutable; a new view replaces it whole.
 *
 * Routing order for a key: the up replicas of its preference list in list order (the first
 * one coordinates without a forwarding hop), then the other up members (any node accepts
 * any request and forwards), then the members marked down (our view may be stale) or suspect
 * (the client's connection is open but they stopped answering). A node whose connection the
 * client knows to be down is moved behind all of those.
 */

import { limits } from '../base/limits.js';
import { computeRing, type MemberStatus, type Replication, type Ring, memberStatuses } from '../ring/index.js';
import type { RingView, RingViewMember } from '../protocol/client-messages.js';
import { nodeUrlOf } from './request-options.js';

export type { RingView, RingViewMember };

/** A checked view with its computed ring. */
export interface ClusterView {
  readonly view: RingView;
  readonly ring: Ring;
  /** Placement inputs as a string: equal keys, equal rings (so a refresh reuses the ring). */
  readonly placementKey: string;
  readonly byId: ReadonlyMap<string, RingViewMember>;
}

function fail(field: string, what: string): never {
  throw new TypeError(`${field} must be ${what}`);
}

function checkMember(raw: unknown, field: string): RingViewMember {
  if (typeof raw !== 'object' || raw === null) fail(field, 'an object');
  const m = raw as Record<string, unknown>;
  if (typeof m.id !== 'string') fail(`${field}.id`, 'a string');
  if (typeof m.dc !== 'string') fail(`${field}.dc`, 'a string');
  if (typeof m.rack !== 'string') fail(`${field}.rack`, 'a string');
  if (typeof m.weight !== 'number') fail(`${field}.weight`, 'a number');
  if (typeof m.up !== 'boolean') fail(`${field}.up`, 'a boolean');
  if (typeof m.status !== 'string' || !(memberStatuses as readonly string[]).includes(m.status)) {
    fail(`${field}.status`, `one of ${memberStatuses.join(', ')}`);
  }
  if (typeof m.url !== 'string' || m.url.length > limits.memberAddressBytesMax) fail(`${field}.url`, 'a short string');
  const url = nodeUrlOf(m.url, `${field}.url`);
  return { id: m.id, url, dc: m.dc, rack: m.rack, weight: m.weight, status: m.status as MemberStatus, up: m.up };
}

/** Checks a RingView from the wire; throws TypeError/RangeError naming the field. */
export function checkRingView(raw: unknown): RingView {
  if (typeof raw !== 'object' || raw === null) fail('ring', 'an object');
  const r = raw as Record<string, unknown>;
  if (typeof r.partitionBits !== 'number') fail('ring.partitionBits', 'a number');
  if (typeof r.replication !== 'number' && (typeof r.replication !== 'object' || r.replication === null)) {
    fail('ring.replication', 'a number or an object');
  }
  if (!Array.isArray(r.members)) fail('ring.members', 'an array');
  if (r.members.length > limits.membersMax) throw new RangeError(`ring.members holds more than ${limits.membersMax} members`);
  const members = r.members.map((m, i) => checkMember(m, `ring.members[${i}]`));
  return { partitionBits: r.partitionBits, replication: r.replication as Replication as RingView['replication'], members };
}

function placementKeyOf(view: RingView): string {
  const members = view.members
    .map((m) => [m.id, m.weight, m.dc, m.rack, m.status] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return JSON.stringify([view.partitionBits, view.replication, members]);
}

/**
 * The cluster view of a RingView; `previous` lends its ring when placement is unchanged
 * (only up/url moved), which keeps a periodic refresh O(members), not O(Q).
 */
export function clusterViewOf(raw: unknown, previous?: ClusterView): ClusterView {
  const view = checkRingView(raw);
  const placementKey = placementKeyOf(view);
  const ring =
    previous !== undefined && previous.placementKey === placementKey
      ? previous.ring
      : computeRing(view.members, { partitionBits: view.partitionBits, replication: view.replication });
  return { view, ring, placementKey, byId: new Map(view.members.map((m) => [m.id, m])) };
}

/**
 * Node ids in the order a request for `key` tries them (see the header). `isDown(id)` says
 * whether the client's own connection to that node is known to be down.
 */
export function routeKey(
  cluster: ClusterView,
  key: Uint8Array,
  isDown: (id: string) => boolean,
  localDc?: string,
  isSuspect: (id: string) => boolean = () => false,
): string[] {
  const preference = cluster.ring.replicasOfKey(key);
  const inList = new Set(preference);
  const live = (m: RingViewMember | undefined): boolean => m !== undefined && m.status !== 'left';
  const first: string[] = [];
  const second: string[] = [];
  const third: string[] = [];
  const last: string[] = [];
  const place = (id: string): void => {
    const member = cluster.byId.get(id);
    if (!live(member)) return;
    if (isDown(id)) last.push(id);
    else if (!member!.up || isSuspect(id)) third.push(id);
    else if (inList.has(id)) first.push(id);
    else second.push(id);
  };
  for (const id of preference) place(id);
  for (const member of cluster.view.members) if (!inList.has(member.id)) place(member.id);
  const order = [...first, ...second, ...third, ...last];
  if (localDc === undefined) return order;
  // Datacenter-aware (Cassandra's DCAwareRoundRobinPolicy): nodes of the local datacenter
  // first, in the same order, then the others — so LOCAL_QUORUM means this datacenter.
  const isLocal = (id: string): boolean => cluster.byId.get(id)?.dc === localDc;
  return [...order.filter(isLocal), ...order.filter((id) => !isLocal(id))];
}
