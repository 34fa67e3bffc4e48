/**
 * THE cluster simulation of issue 4 §4 (test/fixtures/cluster-sim.ts): 5 nodes, N=3, seeded
 * drops, duplicates, reordering, delays and healing partitions on virtual time, clients doing
 * gets, blind and read-modify-write puts and deletes. With R+W>N the history checker
 * (test/fixtures/sim-history.ts) must find no anomaly on any seed; with R=1, W=1 it must find
 * stale reads, which shows that it can fail. Every run prints its seed; replay one with
 * RINGKV_SEED=<seed> (that seed alone runs).
 */
import t from 'tap';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { ClusterSim } from './fixtures/cluster-sim.js';
import { checkHistory } from './fixtures/sim-history.js';

const replay = process.env.RINGKV_SEED !== undefined && process.env.RINGKV_SEED !== '';
const baseSeed = seedFromEnvironment();
const runs = replay ? 1 : 200;

t.test('with N=3, R=2, W=2 every acked write is read after its ack, through drops, duplicates and partitions', async (t) => {
  const totals: Record<string, number> = {};
  let readRepairs = 0;
  let partitions = 0;
  for (let i = 0; i < runs; i++) {
    const seed = (baseSeed + i) | 0;
    const sim = new ClusterSim({ seed, r: 2, w: 2 });
    sim.run();
    const anomalies = checkHistory(sim.history, (key) => sim.finalValues(key));
    const counts = sim.history.counts();
    for (const [name, count] of Object.entries(counts)) totals[name] = (totals[name] ?? 0) + count;
    readRepairs += sim.readRepairs();
    partitions += sim.partitionsMade;
    t.comment(`seed ${seed}: ${JSON.stringify(counts)}, ${sim.messages} messages, ${sim.partitionsMade} partitions`);
    if (anomalies.length > 0) t.fail(`seed ${seed}: ${anomalies.length} anomalies, first: ${JSON.stringify(anomalies.slice(0, 3))}`);
  }
  t.comment(`totals over ${runs} runs: ${JSON.stringify(totals)}, ${readRepairs} read repairs, ${partitions} partitions`);
  t.ok((totals['write-ok'] ?? 0) > 0 && (totals['get-ok'] ?? 0) > 0, 'writes and reads succeeded');
  if (!replay) {
    t.ok((totals['write-fail'] ?? 0) > 0, 'some writes failed definitely (unavailable)');
    t.ok((totals['write-info'] ?? 0) > 0, 'some writes ended indeterminate');
    t.ok(readRepairs > 0, 'read repair ran');
  }
});

t.test('with R=1, W=1 the checker catches stale reads', async (t) => {
  let caught: number | undefined;
  for (let i = 0; i < runs && caught === undefined; i++) {
    const seed = (baseSeed + i) | 0;
    const sim = new ClusterSim({ seed, r: 1, w: 1 });
    sim.run();
    const anomalies = checkHistory(sim.history, (key) => sim.finalValues(key));
    const stale = anomalies.filter((a) => a.kind === 'stale-read');
    t.comment(`seed ${seed}: ${stale.length} stale reads, ${anomalies.length} anomalies`);
    if (stale.length > 0) caught = seed;
    const others = anomalies.filter((a) => !['stale-read', 'superseded-sibling', 'sibling-explosion'].includes(a.kind));
    t.same(others, [], `seed ${seed}: R=1/W=1 breaks freshness only, never safety`);
  }
  t.ok(caught !== undefined, `stale read caught${caught === undefined ? '' : ` (seed ${caught})`}`);
});
