/**
 * What makes a staged plan unsafe (refused at commit) or worth a warning (shown by `ringkv
 * plan`). Pure functions over the membership view and the two rings; any thread.
 *
 * Refused:
 *  - a change naming an unknown node, a node twice, a join of a node that is not waiting for a
 *    plan (`ringkv start --staged-join`), a leave of a node that is not up and normal, a
 *    replace whose dead side is up (stop it first) or whose new side is not waiting;
 *  - a plan after which nobody owns partitions;
 *  - a partition the plan moves while none of its current copies can be streamed (every
 *    replica down, or the dead side of a replace);
 *  - a datacenter losing every copy of a partition it holds today, when the replication names
 *    that datacenter (per-datacenter counts): its clients would lose their local copies.
 * Warned: fewer nodes than the replication asks for (under-replication), a rack or a
 * datacenter with no node left (with plain N the copies move to other datacenters), members
 * that are down outside the plan.
 */

import type { Ring } from '../ring/index.js';
import { removedBy, type PlanInput, type PlanMember } from './staged-plan.js';

export interface PlanProblems {
  readonly warnings: string[];
  readonly refusals: string[];
}

/** At most this many partition numbers are listed in one message. */
const listedMax = 8;

const listed = (partitions: readonly number[]): string =>
  `${partitions.slice(0, listedMax).join(', ')}${partitions.length > listedMax ? `, ... (${partitions.length} in all)` : ''}`;

function changeProblems(input: PlanInput): string[] {
  const byId = new Map(input.members.map((m) => [m.id, m]));
  const refusals: string[] = [];
  const seen = new Set<string>();
  const once = (id: string): void => {
    if (seen.has(id)) refusals.push(`${id} appears in more than one change`);
    seen.add(id);
  };
  const waiting = (id: string, what: string): void => {
    const m = byId.get(id);
    if (m === undefined) refusals.push(`${what} ${id}: no such node (start it with --seeds <a member> --staged-join)`);
    else if (m.status === 'joining' && m.held === undefined) refusals.push(`${what} ${id}: no load report from it yet (is it waiting for a plan?); try again in a moment`);
    else if (m.status !== 'joining' || m.held !== true) refusals.push(`${what} ${id}: it is ${m.status}, not waiting for a plan (start it with --staged-join)`);
    else if (!m.up) refusals.push(`${what} ${id}: it is down`);
  };
  for (const change of input.changes) {
    once(change.id);
    if (change.type === 'join') waiting(change.id, 'join');
    else if (change.type === 'leave') {
      const m = byId.get(change.id);
      if (m === undefined || m.status === 'left') refusals.push(`leave ${change.id}: not a member`);
      else if (m.status !== 'normal') refusals.push(`leave ${change.id}: it is ${m.status}; only a normal node can leave`);
      else if (!m.up) refusals.push(`leave ${change.id}: it is down and cannot stream its data; use plan replace or removenode`);
    } else {
      once(change.dead);
      const dead = byId.get(change.dead);
      if (dead === undefined || dead.status === 'left') refusals.push(`replace ${change.dead}: not a member`);
      else if (dead.up) refusals.push(`replace ${change.dead}: it is up; stop it first, or plan a leave`);
      waiting(change.id, 'replace with');
    }
  }
  return refusals;
}

function copyProblems(input: PlanInput, current: Ring, planned: Ring, refusals: string[]): void {
  const byId = new Map(input.members.map((m) => [m.id, m]));
  const removed = removedBy(input.changes);
  const dcOf = (id: string): string => byId.get(id)?.dc ?? '?';
  const namedDcs = typeof input.replication === 'number' ? [] : Object.keys(input.replication);
  const noSource: number[] = [];
  const dcLoss = new Map<string, number[]>();
  for (let p = 0; p < current.partitionCount; p++) {
    const before = current.replicasOf(p);
    const after = planned.replicasOf(p);
    if (before.length === after.length && before.every((id) => after.includes(id))) continue;
    const sources = before.filter((id) => byId.get(id)?.up === true && !(removed.has(id) && byId.get(id)?.status !== 'normal'));
    if (sources.length === 0) noSource.push(p);
    for (const dc of namedDcs) {
      if (before.some((id) => dcOf(id) === dc) && !after.some((id) => dcOf(id) === dc)) {
        let list = dcLoss.get(dc);
        if (list === undefined) dcLoss.set(dc, (list = []));
        list.push(p);
      }
    }
  }
  if (noSource.length > 0) refusals.push(`every copy of partition ${listed(noSource)} is on a node that is down or removed: nothing to stream from`);
  for (const [dc, partitions] of dcLoss) refusals.push(`datacenter ${dc} would lose every copy of partition ${listed(partitions)}`);
}

function placeWarnings(input: PlanInput, current: Ring, planned: Ring, warnings: string[]): void {
  const placeOf = (ring: Ring, key: (m: PlanMember) => string): Set<string> => {
    const byId = new Map(input.members.map((m) => [m.id, m]));
    return new Set(ring.owners.map((o) => key(byId.get(o.id)!)));
  };
  const dcsAfter = placeOf(planned, (m) => m.dc);
  for (const dc of placeOf(current, (m) => m.dc)) {
    if (!dcsAfter.has(dc)) warnings.push(`datacenter ${dc} would have no node left: its copies move to other datacenters`);
  }
  const racksAfter = placeOf(planned, (m) => `${m.dc}/${m.rack}`);
  for (const rack of placeOf(current, (m) => `${m.dc}/${m.rack}`)) {
    if (!racksAfter.has(rack) && dcsAfter.has(rack.split('/')[0]!)) warnings.push(`rack ${rack} would have no node left: its copies move to other racks`);
  }
  const requested = typeof input.replication === 'number' ? input.replication : Object.values(input.replication).reduce((a, b) => a + b, 0);
  if (planned.replicaCount < requested) {
    warnings.push(`under-replicated: the replication asks for ${requested} copies but only ${planned.owners.length} node(s) would own partitions (${planned.replicaCount} copies)`);
  } else if (typeof input.replication !== 'number') {
    for (const [dc, count] of Object.entries(input.replication)) {
      const owners = planned.owners.filter((o) => o.dc === dc).length;
      if (owners < count) warnings.push(`under-replicated: ${dc} asks for ${count} copies but would have ${owners} node(s)`);
    }
  }
}

/** The warnings and refusals of a plan (see the header). */
export function planProblems(input: PlanInput, current: Ring | undefined, planned: Ring | undefined): PlanProblems {
  const refusals = changeProblems(input);
  const warnings: string[] = [];
  const inPlan = new Set(input.changes.flatMap((c) => (c.type === 'replace' ? [c.id, c.dead] : [c.id])));
  for (const m of input.members) {
    if (!m.up && m.status !== 'left' && !inPlan.has(m.id)) warnings.push(`${m.id} is down: the partitions it replicates stream from other replicas`);
  }
  if (planned === undefined) refusals.push('no node would own partitions after this plan');
  if (current === undefined) refusals.push('the cluster has no ring yet');
  if (current !== undefined && planned !== undefined) {
    copyProblems(input, current, planned, refusals);
    placeWarnings(input, current, planned, warnings);
  }
  return { warnings, refusals };
}
