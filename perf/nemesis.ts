/**
 * The nemesis soak (issue 10): the test's nemesis run (test/fixtures/nemesis.ts) for longer and
 * over several seeds, on 4 real nodes (N=3, writers at W=2) in network namespaces as root, behind
 * fault proxies otherwise. Each seed runs on a fresh cluster; its figures print as one line and
 * go to perf/results/. The suite's short run is test/cluster-nemesis.test.ts.
 *
 *   npm run bench -- nemesis [--seconds 600] [--seeds 1,2,3,4,5] [--writers 4] [--nodes 4]
 *
 * A seed's run fails loudly (exit code 1) when an acknowledged write is lost or replicas still
 * disagree after repair.
 */

import { Cluster } from '../test/fixtures/cluster.js';
import { createFaultNet } from '../test/fixtures/fault-net.js';
import { formatFigures, runNemesis, type NemesisFigures } from '../test/fixtures/nemesis.js';
import { printMachine, recordResult } from './harness.js';

function flag(argv: readonly string[], name: string): string | undefined {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? argv[at + 1] : undefined;
}

async function runSeed(seed: number, seconds: number, writers: number, nodes: number): Promise<NemesisFigures> {
  const net = await createFaultNet({ nodes });
  const cluster = new Cluster({ nodes, secret: 'nemesis-soak', replication: 3, network: net });
  try {
    await cluster.start();
    const partitionBits = (await cluster.status(0)).partitionBits;
    return await runNemesis({ cluster, net, seed, durationMs: seconds * 1000, writers, partitionBits, replicas: 3, log: (line) => console.log(`  ${line}`) });
  } finally {
    await cluster.stop();
    await net.close();
  }
}

export async function runNemesisBench(argv: readonly string[]): Promise<void> {
  const seconds = Number(flag(argv, 'seconds') ?? 600);
  const writers = Number(flag(argv, 'writers') ?? 4);
  const nodes = Number(flag(argv, 'nodes') ?? 4);
  const seeds = (flag(argv, 'seeds') ?? String(Date.now() % 1_000_000)).split(',').map(Number);
  printMachine();
  console.log(`nemesis soak: ${nodes} nodes, N=3, W=2, ${writers} writers, ${seconds} s per seed, seeds ${seeds.join(',')}`);
  let failed = false;
  for (const seed of seeds) {
    const figures = await runSeed(seed, seconds, writers, nodes);
    console.log(formatFigures(figures));
    recordResult('nemesis', { ...figures, lost: figures.lost.length, faults: figures.faults.length });
    if (figures.lost.length > 0 || figures.divergedAfterRepair > 0) {
      failed = true;
      console.log(`  LOST: ${figures.lost.slice(0, 20).join(', ')}`);
    }
  }
  if (failed) process.exitCode = 1;
}
