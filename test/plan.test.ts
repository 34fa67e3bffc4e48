/**
 * Staged plans as pure functions (lib/plan): the planned ring is computeRing of the members
 * the plan leaves, per-node rows and byte estimates follow the ring diff, and the safety
 * rules refuse or warn as documented. Plus the executor's step order (joins, replaces, leaves)
 * and the re-plan of what is left.
 */

import t from 'tap';
import { computePlan, currentRingOf, plannedRingOf, type PlanMember } from '../lib/plan/index.js';
import { computeRing } from '../lib/ring/index.js';
import { remainingChanges, stepsOf } from '../lib/supervisor/scaling/plan-service.js';

const partitionBits = 6;

function member(id: string, extra: Partial<PlanMember> = {}): PlanMember {
  return { id, address: `127.0.0.1:${7000 + Number(id.slice(1))}`, weight: 1, dc: 'dc1', rack: 'rack1', status: 'normal', up: true, loadBytes: 64_000, ...extra };
}

const four = [member('n1'), member('n2'), member('n3'), member('n4', { status: 'joining', held: true, loadBytes: 0 })];

t.test('a join: the planned ring is the ring with the joiner normal; rows and bytes follow the diff', async (t) => {
  const report = computePlan({ members: four, changes: [{ type: 'join', id: 'n4' }], partitionBits, replication: 3 });
  t.same(report.refusals, []);
  const expected = computeRing(four.map((m) => ({ id: m.id, status: 'normal' as const })), { partitionBits, replication: 3 });
  t.equal(report.plannedVersion, expected.version);
  t.equal(report.currentVersion, computeRing(four.slice(0, 3).map((m) => ({ id: m.id })), { partitionBits, replication: 3 }).version);
  const n4 = report.nodes.find((n) => n.id === 'n4')!;
  t.equal(n4.primaryAfter, expected.partitionsOf('n4').length);
  t.equal(n4.primaryNow, 0);
  t.match(n4.now, /waiting for a plan/);
  t.equal(n4.after, 'normal');
  t.equal(report.copiesToStream, expected.replicaPartitionsOf('n4').length, 'every partition n4 replicates is one copy to stream');
  // Each of n1..n3 replicates all 64 partitions today (N=3, 3 nodes): 1000 bytes per partition.
  t.equal(n4.bytesIn, 1000 * report.copiesToStream);
  t.equal(report.nodes.reduce((a, n) => a + n.bytesOut, 0), n4.bytesIn, 'what is sent is what is received');
  t.equal(report.partitionsMoving, report.copiesToStream);
  t.same(report.warnings, []);
});

t.test('leave and replace: rings, warnings and refusals', async (t) => {
  const base = [member('n1'), member('n2'), member('n3'), member('n4')];
  const leave = computePlan({ members: base, changes: [{ type: 'leave', id: 'n2' }], partitionBits, replication: 3 });
  t.same(leave.refusals, []);
  t.equal(leave.plannedVersion, plannedRingOf({ members: base, changes: [{ type: 'leave', id: 'n2' }], partitionBits, replication: 3 })!.version);
  t.equal(leave.nodes.find((n) => n.id === 'n2')!.after, 'removed');
  t.ok(leave.nodes.find((n) => n.id === 'n2')!.bytesOut > 0, 'the leaving node streams its copies out');

  const two = computePlan({ members: base, changes: [{ type: 'leave', id: 'n2' }, { type: 'leave', id: 'n3' }], partitionBits, replication: 3 });
  t.match(two.warnings.join('\n'), /under-replicated: the replication asks for 3 copies but only 2 node/);

  const dead = [member('n1'), member('n2'), member('n3', { up: false }), member('n5', { status: 'joining', held: true, loadBytes: 0 })];
  const replace = computePlan({ members: dead, changes: [{ type: 'replace', dead: 'n3', id: 'n5' }], partitionBits, replication: 3 });
  t.same(replace.refusals, []);
  t.equal(replace.plannedVersion, computeRing(['n1', 'n2', 'n5'].map((id) => ({ id })), { partitionBits, replication: 3 }).version);

  const allDown = [member('n1'), member('n2', { up: false }), member('n3', { up: false }), member('n5', { status: 'joining', held: true })];
  const lost = computePlan({ members: allDown, changes: [{ type: 'replace', dead: 'n3', id: 'n5' }], partitionBits, replication: 2 });
  t.match(lost.refusals.join('\n'), /every copy of partition .* is on a node that is down or removed/);
  t.match(lost.warnings.join('\n'), /n2 is down/);
});

t.test('refusals: bad changes, a datacenter losing its copies, nobody left', async (t) => {
  const dcs = [member('n1'), member('n2'), member('n3', { dc: 'dc2' })];
  const replication = { dc1: 2, dc2: 1 };
  const dcLoss = computePlan({ members: dcs, changes: [{ type: 'leave', id: 'n3' }], partitionBits, replication });
  t.match(dcLoss.refusals.join('\n'), /datacenter dc2 would lose every copy of partition 0, 1, 2, 3, 4, 5, 6, 7, \.\.\. \(64 in all\)/);
  t.match(dcLoss.warnings.join('\n'), /datacenter dc2 would have no node left/);
  const plainN = computePlan({ members: dcs, changes: [{ type: 'leave', id: 'n3' }], partitionBits, replication: 2 });
  t.same(plainN.refusals, [], 'with plain N the copies move to the other datacenter');
  const racks = [member('n1'), member('n2', { rack: 'r2' }), member('n3', { rack: 'r3' }), member('n4', { rack: 'r3' })];
  const rackGone = computePlan({ members: racks, changes: [{ type: 'leave', id: 'n2' }], partitionBits, replication: 2 });
  t.match(rackGone.warnings.join('\n'), /rack dc1\/r2 would have no node left/);

  const members = [member('n1'), member('n2', { up: false }), member('n3', { status: 'leaving' }), member('n4', { status: 'joining', held: false }), member('n5', { status: 'joining' })];
  const bad = computePlan({
    members,
    changes: [
      { type: 'join', id: 'n9' },
      { type: 'join', id: 'n4' },
      { type: 'join', id: 'n5' },
      { type: 'leave', id: 'n2' },
      { type: 'leave', id: 'n3' },
      { type: 'leave', id: 'n1' },
      { type: 'leave', id: 'n1' },
      { type: 'replace', dead: 'n1', id: 'n4' },
    ],
    partitionBits,
    replication: 3,
  });
  const text = bad.refusals.join('\n');
  t.match(text, /join n9: no such node/);
  t.match(text, /join n4: it is joining, not waiting for a plan/);
  t.match(text, /join n5: no load report from it yet/);
  t.match(text, /leave n2: it is down/);
  t.match(text, /leave n3: it is leaving/);
  t.match(text, /n1 appears in more than one change/);
  t.match(text, /replace n1: it is up/);
  const empty = computePlan({ members: [member('n1')], changes: [{ type: 'leave', id: 'n1' }], partitionBits, replication: 1 });
  t.match(empty.refusals.join('\n'), /no node would own partitions/);
  t.same(empty.nodes, []);
  t.equal(currentRingOf({ members: [member('n1', { status: 'joining' })], partitionBits, replication: 1 }), undefined);
  const noRing = computePlan({ members: [member('n1', { status: 'joining', held: true })], changes: [{ type: 'join', id: 'n1' }], partitionBits, replication: 1 });
  t.match(noRing.refusals.join('\n'), /the cluster has no ring yet/);
});

t.test('steps run joins, then replaces (remove, join), then leaves; the rest is re-planned', async (t) => {
  const changes = [{ type: 'leave' as const, id: 'a' }, { type: 'replace' as const, dead: 'b', id: 'c' }, { type: 'join' as const, id: 'd' }];
  const steps = stepsOf(changes);
  t.same(steps.map((s) => `${s.kind} ${s.id}`), ['join d', 'remove b', 'join c', 'leave a']);
  t.same(remainingChanges(changes, steps.slice(2)), [{ type: 'leave', id: 'a' }, { type: 'join', id: 'c' }], 'after the removal the replace is a join');
  t.same(remainingChanges(changes, steps), changes);
  t.same(remainingChanges(changes, []), []);
});
