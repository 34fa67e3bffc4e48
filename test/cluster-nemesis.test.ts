/**
 * The nemesis test (issue 10; RELIABILITY.md D1, D2, A10, C2): four real nodes, N=3, writers at
 * W=2, and a seeded nemesis that kills, pauses, restarts one node, restarts the whole cluster at
 * once, and partitions a node (test/fixtures/nemesis.ts). After healing, every acknowledged
 * write must read back at R=2 and every replica must hold it (equal Merkle roots). A short run;
 * the soak is `npm run bench -- nemesis` (perf/nemesis.ts). RINGKV_SEED replays a schedule.
 */

import t from 'tap';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { startFaultCluster } from './fixtures/fault-net.js';
import { formatFigures, runNemesis } from './fixtures/nemesis.js';

t.setTimeout(280_000);

t.test('writes at W=2 under kills, pauses, restarts, a whole-cluster restart and a partition: no acknowledged write is lost', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed} (RINGKV_SEED=${seed} replays the fault schedule)`);
  const { cluster, net } = await startFaultCluster(t, { nodes: 4, replication: 3 });
  const partitionBits = (await cluster.status(0)).partitionBits;
  const figures = await runNemesis({ cluster, net, seed, durationMs: 40_000, writers: 4, partitionBits, replicas: 3, log: (line) => t.comment(line) });
  t.comment(formatFigures(figures));
  t.ok(figures.acknowledged > 0, 'writes were acknowledged during the run');
  t.same(figures.lost, [], `every acknowledged write reads back at R=2 (seed ${seed})`);
  t.equal(figures.divergedAfterRepair, 0, 'every replica of every written partition agrees after repair');
});
