/**
 * Cluster benchmark (issue 4 §7; PERF.md): ringkv nodes as child processes on loopback
 * (`node <build>/lib/cli/main.js start`, fresh temp dirs, durable: fsync per group commit),
 * one node and three nodes (N=3, W=2, R=2, the node defaults), loaded by a pipelining
 * generator in this process (several client connections, a window of requests in flight
 * each), YCSB mixes A (50% read / 50% update) and C (read only) over uniformly chosen keys
 * with 100 B values; updates pass the key's last known context, as a Dynamo client should.
 * In the same run Redis 7 (no persistence) under `redis-benchmark -c 50 -d 100 -t set,get`
 * with -P 1 and -P 16; ours at the same total in flight (50 and 800) is printed as a ratio.
 *
 *   npm run bench -- cluster [--nodes 1,3] [--records 100000] [--ops 200000] [--connections 4]
 *                            [--inflight 50,800] [--workloads A,C] [--rounds 1] [--shards 1] [--redis yes|no]
 *                            [--record yes|no]   (no: do not append to perf/results/cluster.jsonl)
 *
 * The generator takes about one core; on 2 cores three nodes and the generator share the
 * CPU, so the 3-node figure measures the protocol's cost more than the cluster's capacity.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Client } from '../lib/client/index.js';
import { closedLoop, formatRow, keyBytes, type Measurement, median, printMachine, randomIndices, recordResult, valueBytes } from './harness.js';
import { redisAvailable, redisBenchmark, redisVersion, startRedis, type RedisRow } from './redis.js';

const mainScript = join(dirname(fileURLToPath(import.meta.url)), '../lib/cli/main.js');

export interface ClusterBenchOptions {
  nodeCounts: number[];
  records: number;
  operations: number;
  connections: number;
  inflights: number[];
  workloads: string[];
  rounds: number;
  shards: number;
  valueBytes: number;
  redis: boolean;
  record: boolean;
}

interface Cluster {
  urls: string[];
  stop(): Promise<void>;
}

function flagsOf(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) if (argv[i]!.startsWith('--')) out.set(argv[i]!.slice(2), argv[i + 1] ?? '');
  return out;
}

export function clusterOptionsOf(argv: string[]): ClusterBenchOptions {
  const f = flagsOf(argv);
  const num = (k: string, d: number): number => (f.has(k) ? Number(f.get(k)) : d);
  const list = (k: string, d: string): string[] => (f.get(k) ?? d).split(',').filter((s) => s !== '');
  return {
    nodeCounts: list('nodes', '1,3').map(Number),
    records: num('records', 100_000),
    operations: num('ops', 200_000),
    connections: num('connections', 4),
    inflights: list('inflight', '50,800').map(Number),
    workloads: list('workloads', 'A,C').map((w) => w.toUpperCase()),
    rounds: num('rounds', 1),
    shards: num('shards', 1),
    valueBytes: num('value', 100),
    redis: (f.get('redis') ?? 'yes') !== 'no',
    record: (f.get('record') ?? 'yes') !== 'no',
  };
}

/** Starts `ringkv start <args>` as a child process; resolves once it is serving. */
export function startNodeProcess(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [mainScript, 'start', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('Press Ctrl-C')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`ringkv start ${args.join(' ')} exited with ${code}: ${out}`)));
  });
}

async function startCluster(count: number, shards: number, basePort: number): Promise<Cluster> {
  const root = mkdtempSync(join(tmpdir(), 'ringkv-bench-'));
  const children: ChildProcess[] = [];
  const urls: string[] = [];
  for (let i = 0; i < count; i++) {
    const args = ['--port', String(basePort + i), '--dir', join(root, `node-${i}`), '--shards', String(shards), '--log-level', 'warn'];
    if (i > 0) args.push('--seeds', `127.0.0.1:${basePort}`);
    children.push(await startNodeProcess(args));
    urls.push(`ws://127.0.0.1:${basePort + i}`);
  }
  return {
    urls,
    stop: async () => {
      await Promise.all(children.map((c) => new Promise((resolve) => (c.once('exit', resolve), c.kill('SIGTERM')))));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Waits until a client sees `count` normal, up members (gossip has converged). */
async function awaitMembers(client: Client, count: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    await client.refreshRing().catch(() => undefined);
    const members = client.ringView()?.members ?? [];
    if (members.filter((m) => m.status === 'normal' && m.up).length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the cluster did not reach ${count} normal members in 60 s`);
}

interface Generator {
  clients: Client[];
  contexts: (Uint8Array | undefined)[];
  values: Uint8Array[];
  errors: Map<string, number>;
}

async function preload(g: Generator, records: number): Promise<void> {
  const batchSize = 500;
  for (let start = 0; start < records; start += batchSize * g.clients.length) {
    await Promise.all(
      g.clients.map(async (client, c) => {
        const from = start + c * batchSize;
        const ops = [];
        for (let i = from; i < Math.min(records, from + batchSize); i++) ops.push({ type: 'put' as const, key: keyBytes(i), value: g.values[i % g.values.length]! });
        const results = await client.batch(ops);
        results.forEach((r, j) => (g.contexts[from + j] = r.context));
      }),
    );
  }
}

function countError(g: Generator, error: unknown): void {
  const code = (error as { code?: string }).code ?? 'other';
  g.errors.set(code, (g.errors.get(code) ?? 0) + 1);
}

async function runWorkload(g: Generator, workload: string, o: ClusterBenchOptions, inFlight: number, round: number): Promise<Measurement> {
  const keys = randomIndices(o.operations, o.records, 1000 + round);
  const mix = randomIndices(o.operations, 100, 2000 + round);
  return closedLoop(o.operations, inFlight, async (i) => {
    const client = g.clients[i % g.clients.length]!;
    const k = keys[i]!;
    try {
      if (workload === 'C' || mix[i]! < 50) {
        const r = await client.get(keyBytes(k));
        g.contexts[k] = r.context;
      } else {
        const context = g.contexts[k];
        const r = await client.put(keyBytes(k), g.values[i % g.values.length]!, context ? { context } : {});
        g.contexts[k] = r.context;
      }
    } catch (error) {
      countError(g, error);
    }
  });
}

async function benchOurs(o: ClusterBenchOptions, nodes: number, basePort: number, results: Map<string, Measurement[]>): Promise<void> {
  const cluster = await startCluster(nodes, o.shards, basePort);
  try {
    const clients = await Promise.all(Array.from({ length: o.connections }, () => connect(cluster.urls)));
    await awaitMembers(clients[0]!, nodes);
    await Promise.all(clients.map((c) => c.refreshRing()));
    const g: Generator = { clients, contexts: new Array(o.records), values: Array.from({ length: 1024 }, (_, i) => valueBytes(o.valueBytes, i)), errors: new Map() };
    const t0 = process.hrtime.bigint();
    await preload(g, o.records);
    console.log(`  ${nodes} node(s): preloaded ${o.records} records in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`);
    for (let round = 0; round < o.rounds; round++) {
      for (const inFlight of o.inflights) {
        for (const workload of o.workloads) {
          const label = `ringkv ${nodes}n YCSB-${workload} inflight ${inFlight}`;
          const m = await runWorkload(g, workload, o, inFlight, round);
          console.log(formatRow(label, m));
          results.set(label, [...(results.get(label) ?? []), m]);
        }
      }
    }
    if (g.errors.size > 0) console.log(`  errors: ${[...g.errors].map(([c, n]) => `${c} ${n}`).join(', ')}`);
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    await cluster.stop();
  }
}

async function benchRedis(o: ClusterBenchOptions, port: number): Promise<Map<string, RedisRow>> {
  const out = new Map<string, RedisRow>();
  const server = await startRedis(port);
  try {
    for (const pipeline of [1, 16]) {
      const rows = await redisBenchmark(port, { clients: 50, requests: 200_000, keyspace: 100_000, valueBytes: o.valueBytes, pipeline });
      for (const row of rows) {
        out.set(`${row.test} P${pipeline}`, row);
        console.log(`${`redis ${row.test} -c 50 -P ${pipeline} (inflight ${50 * pipeline})`.padEnd(44)} ${(row.rps / 1e3).toFixed(1).padStart(7)}k ops/s  p50 ${(row.p50Ms * 1000).toFixed(1).padStart(8)} µs  p99 ${(row.p99Ms * 1000).toFixed(1).padStart(9)} µs`);
      }
    }
  } finally {
    await server.stop();
  }
  return out;
}

function printRatios(o: ClusterBenchOptions, ours: Map<string, Measurement[]>, redis: Map<string, RedisRow>): Record<string, number> {
  const ratios: Record<string, number> = {};
  const rate = (label: string): number | undefined => {
    const m = ours.get(label);
    return m ? median(m.map((x) => x.opsPerSec)) : undefined;
  };
  for (const inFlight of o.inflights) {
    for (const workload of o.workloads) {
      const one = rate(`ringkv 1n YCSB-${workload} inflight ${inFlight}`);
      const three = rate(`ringkv 3n YCSB-${workload} inflight ${inFlight}`);
      if (one === undefined || three === undefined) continue;
      ratios[`3n/1n-${workload}-${inFlight}`] = three / one;
      console.log(`ratio ringkv 3n / 1n YCSB-${workload} inflight ${inFlight}: ${(three / one).toFixed(2)}x`);
    }
  }
  for (const nodes of o.nodeCounts) {
    for (const [inFlight, pipeline] of o.inflights.map((f) => [f, f >= 800 ? 16 : 1] as const)) {
      const get = redis.get(`GET P${pipeline}`);
      const set = redis.get(`SET P${pipeline}`);
      if (!get || !set) continue;
      for (const workload of o.workloads) {
        const mine = rate(`ringkv ${nodes}n YCSB-${workload} inflight ${inFlight}`);
        if (mine === undefined) continue;
        const peer = workload === 'C' ? get.rps : 2 / (1 / get.rps + 1 / set.rps);
        const ratio = mine / peer;
        ratios[`${nodes}n-${workload}-P${pipeline}`] = ratio;
        console.log(`ratio ringkv ${nodes}n YCSB-${workload} / redis ${workload === 'C' ? 'GET' : 'SET+GET'} -P ${pipeline}: ${ratio.toFixed(2)}x`);
      }
    }
  }
  return ratios;
}

export async function runClusterBench(argv: string[]): Promise<void> {
  const o = clusterOptionsOf(argv);
  printMachine();
  console.log(
    `config: nodes ${o.nodeCounts.join(',')}, N=3 W=2 R=2, fsync per group commit, ${o.shards} shard(s)/node, ${o.records} records x ${o.valueBytes} B, ` +
      `${o.operations} ops per run, ${o.connections} client connections, total inflight ${o.inflights.join(',')}, uniform keys, ${o.rounds} round(s)`,
  );
  const basePort = 21_000 + ((process.pid * 7) % 20_000);
  const ours = new Map<string, Measurement[]>();
  for (const nodes of o.nodeCounts) await benchOurs(o, nodes, basePort, ours);
  let redis = new Map<string, RedisRow>();
  if (o.redis && (await redisAvailable())) {
    console.log(`peer: redis ${await redisVersion()}, no persistence, redis-benchmark -c 50 -n 200000 -r 100000 -d ${o.valueBytes} -t set,get`);
    redis = await benchRedis(o, basePort + 100);
  } else if (o.redis) {
    console.log('peer: redis-server/redis-benchmark not installed (apt-get install -y redis-server redis-tools): no ratios');
  }
  const ratios = printRatios(o, ours, redis);
  if (!o.record) return;
  recordResult('cluster', {
    options: o,
    ours: Object.fromEntries([...ours].map(([k, v]) => [k, v])),
    redis: Object.fromEntries(redis),
    ratios,
  });
}
