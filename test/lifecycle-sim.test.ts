/**
 * Whole-node simulation of restarts (issue 10): three real Supervisors on virtual time
 * (test/fixtures/node-sim.ts). The whole-cluster restart of case 1 — every node stopped and
 * started again with the other two as seeds — must give every node a ring and `normal` status
 * within a few virtual seconds; the same restart without the persisted view (what a node knew
 * before this issue) must not, which is what this simulation would have caught in
 * milliseconds. Also a removed node coming back is refused. Seeds are printed; a failure
 * replays from its seed (RINGKV_SEED).
 */

import t from 'tap';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { NodeSim } from './fixtures/node-sim.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);

function settled(sim: NodeSim): boolean {
  return sim.nodes.every((n) => {
    const s = n.supervisor;
    if (s === undefined) return false;
    const view = s.status();
    return view.members.filter((m) => m.status === 'normal' && m.up).length === sim.nodes.length && view.ring.owners.length > 0;
  });
}

async function formCluster(sim: NodeSim): Promise<number | undefined> {
  sim.start(0, []);
  sim.start(1, [sim.nodes[0]!.address]);
  sim.start(2, [sim.nodes[0]!.address]);
  return sim.runUntil(() => settled(sim), 60_000);
}

const othersOf = (sim: NodeSim, i: number): string[] => sim.nodes.filter((n) => n.index !== i).map((n) => n.address);

t.test('a simulated whole-cluster restart with the others as seeds serves again within seconds', async (t) => {
  for (const round of [0, 1, 2]) {
    const sim = new NodeSim(seed + round, 3);
    try {
      const formedMs = await formCluster(sim);
      t.ok(formedMs !== undefined, `seed ${seed + round}: the cluster formed (${formedMs} virtual ms)`);
      for (const i of [0, 1, 2]) await sim.stop(i);
      await sim.run(5_000);
      for (const i of [0, 1, 2]) sim.start(i, othersOf(sim, i));
      const backMs = await sim.runUntil(() => settled(sim), 60_000);
      t.ok(backMs !== undefined, `seed ${seed + round}: every node normal with a ring again after ${backMs} virtual ms`);
      t.same(sim.nodes.map((n) => n.refusal), [undefined, undefined, undefined], 'no node was refused');
      const transfers = sim.nodes.map((n) => n.supervisor!.status().transfers?.total ?? 0);
      t.same(transfers, [0, 0, 0], 'no node streamed anything after the restart');
    } finally {
      await sim.dispose();
    }
  }
});

t.test('a simulated staggered restart: owners started seconds apart are never refused by their own records', async (t) => {
  const sim = new NodeSim(seed, 3);
  try {
    t.ok((await formCluster(sim)) !== undefined, 'the cluster formed');
    for (const i of [0, 1, 2]) await sim.stop(i);
    for (const i of [0, 1, 2]) {
      sim.start(i, othersOf(sim, i));
      await sim.run(5_000); // past the start check's window: node 0 starts unanswered and checks on
    }
    t.ok((await sim.runUntil(() => settled(sim), 60_000)) !== undefined, 'every node normal with a ring');
    await sim.run(5_000);
    t.same(sim.nodes.map((n) => n.refusal), [undefined, undefined, undefined], 'the late checks saw each node\'s own new incarnation and passed');
    t.ok(sim.nodes.every((n) => n.supervisor !== undefined), 'every node still running');
  } finally {
    await sim.dispose();
  }
});

t.test('without the persisted view the same restart never gets a ring (the bug the view fixes)', async (t) => {
  const sim = new NodeSim(seed, 3);
  try {
    t.ok((await formCluster(sim)) !== undefined, 'the cluster formed');
    for (const i of [0, 1, 2]) await sim.stop(i);
    for (const i of [0, 1, 2]) sim.start(i, othersOf(sim, i), { forget: true });
    t.equal(await sim.runUntil(() => settled(sim), 30_000), undefined, 'forgetting the view: no ring after 30 virtual seconds');
    t.ok(sim.nodes.every((n) => n.supervisor!.status().members.every((m) => m.status === 'joining')), 'every node stays joining');
  } finally {
    await sim.dispose();
  }
});

t.test('a simulated node removed while down is refused when it restarts with its old data', async (t) => {
  const sim = new NodeSim(seed, 3);
  try {
    t.ok((await formCluster(sim)) !== undefined, 'the cluster formed');
    await sim.stop(2);
    const removed = sim.nodes[2]!;
    await sim.runUntil(() => sim.nodes[0]!.supervisor!.status().members.some((m) => m.address === removed.address && !m.up), 60_000);
    const id = sim.nodes[0]!.supervisor!.status().members.find((m) => m.address === removed.address)!.id;
    const removing = sim.nodes[0]!.supervisor!.removeNode(id);
    await sim.run(1_000);
    t.same((await removing).removed, id, 'removenode done');
    sim.start(2, [sim.nodes[0]!.address]);
    await sim.runUntil(() => removed.refusal !== undefined, 30_000);
    t.match(removed.refusal, { code: 'KV_INCOMPATIBLE', message: /was removed/ }, 'the removed node is refused');
  } finally {
    await sim.dispose();
  }
});
