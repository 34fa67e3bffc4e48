/**
 * Pending replicas (lib/supervisor/pending-replicas.ts): while a member joins or leaves, the
 * nodes that replicate a partition in the target ring but not in the current one.
 */

import t from 'tap';
import type { MemberState, MemberStatus } from '../lib/membership/index.js';
import { computeRing, computeTargetRing, diffRings } from '../lib/ring/index.js';
import { PendingReplicas } from '../lib/supervisor/pending-replicas.js';

const partitionBits = 6;
const member = (id: string, status: MemberStatus): MemberState => ({
  id,
  address: `${id}:1`,
  generation: 1,
  heartbeat: 1,
  status,
  statusVersion: 1,
  weight: 1,
  dc: 'dc1',
  rack: 'r1',
});

t.test('a joining node is pending exactly for the partitions the target ring gives it', async (t) => {
  const members = [member('a', 'normal'), member('b', 'normal'), member('c', 'normal'), member('d', 'joining')];
  const ring = computeRing(members, { partitionBits, replication: 2 });
  const target = computeTargetRing(members, { partitionBits, replication: 2 });
  const pending = new PendingReplicas(partitionBits, 2);
  // A join can also hand partitions to others (a preference list walks past the newcomer).
  const added = new Map(diffRings(ring, target).map((c) => [c.partition, c.added]));
  const gained = [...added].filter(([, ids]) => ids.includes('d')).map(([p]) => p);
  t.ok(gained.length > 0, `d gains ${gained.length} partitions`);
  const wrong: string[] = [];
  for (let p = 0; p < 2 ** partitionBits; p++) {
    const ids = pending.of(p, ring, () => members);
    if (ids.join() !== (added.get(p) ?? []).join()) wrong.push(`${p}: ${ids.join(',')}`);
  }
  t.same(wrong, [], 'every partition: pending is what the target ring adds');
  const allNormal = members.map((m) => ({ ...m, status: 'normal' as const }));
  t.same(pending.of(gained[0]!, computeRing(allNormal, { partitionBits, replication: 2 }), () => allNormal), [], 'nothing is pending once everyone is normal');
});

t.test('a leaving node hands its partitions to nodes that are pending until it has left', async (t) => {
  const members = [member('a', 'normal'), member('b', 'normal'), member('c', 'leaving')];
  const ring = computeRing(members, { partitionBits, replication: 2 });
  const pending = new PendingReplicas(partitionBits, 2);
  let some = 0;
  for (let p = 0; p < 2 ** partitionBits; p++) {
    const ids = pending.of(p, ring, () => members);
    if (ids.includes('c')) t.fail('a leaving node is never pending');
    some += ids.length;
  }
  t.ok(some > 0, `${some} pending replica(s) while c leaves`);
  const alone = [member('a', 'leaving')];
  t.same(pending.of(0, computeRing(alone, { partitionBits, replication: 2 }), () => alone), [], 'no target ring when every owner leaves: nothing pending');
});
