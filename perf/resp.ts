/**
 * RESP benchmark (issue 12; PERF.md): the same C load generator, `redis-benchmark -c 50
 * -n <requests> -r 100000 -t set,get`, at -P 1 and -P 16 and with 100 B and 10 KiB values,
 * against, alternately in each round:
 *   ringkv-1   one ringkv node (child process, durable: fsync per group commit) on its RESP port;
 *   redis      Redis 7 without persistence;
 *   redis-aof  Redis 7 with `appendfsync always` (the peer with our durability);
 *   ringkv-3   three ringkv nodes (N=3, W=2, R=2, the defaults) through node 0's RESP port;
 *   node-bare  a bare Node RESP server (redis-parser and a Map; fixtures/bare-resp-server.ts):
 *              not a subject of the goals, the ceiling of one Node thread on this machine.
 * Each subject starts fresh (new temp dirs, new processes) per round. Prints every run, then
 * the median ops/s, p50 and p99 per (subject, test, depth, size) and the median ratios the
 * issue's goals name: GET vs Redis at -P 1 and -P 16, SET vs Redis appendfsync always,
 * 3 nodes vs 1 node.
 *
 *   npm run bench -- resp [--rounds 3] [--requests 200000] [--requests-large 200000]
 *                         [--sizes 100,10240] [--depths 1,16] [--subjects ringkv-1,redis,redis-aof,ringkv-3,node-bare]
 *
 * On 2 cores the generator takes about one core and shares it with the node(s).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNodeProcess } from './cluster.js';
import { median, printMachine, recordResult } from './harness.js';
import { redisAvailable, redisBenchmark, redisVersion, startRedis, type RedisRow } from './redis.js';

const subjectsAll = ['ringkv-1', 'redis', 'redis-aof', 'ringkv-3', 'node-bare'] as const;
type Subject = (typeof subjectsAll)[number];

interface Running {
  port: number;
  stop(): Promise<void>;
}

interface Sample {
  round: number;
  subject: Subject;
  test: string;
  depth: number;
  size: number;
  row: RedisRow;
}

function flagsOf(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) if (argv[i]!.startsWith('--')) out.set(argv[i]!.slice(2), argv[i + 1] ?? '');
  return out;
}


async function waitForMembers(port: number, count: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { members: { status: string; up: boolean }[] };
      if (status.members.filter((m) => m.status === 'normal' && m.up).length >= count) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the cluster did not reach ${count} normal members in 60 s`);
}

async function startRingkv(count: number, basePort: number): Promise<Running> {
  const root = mkdtempSync(join(tmpdir(), 'ringkv-resp-bench-'));
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    const args = ['--port', String(basePort + i), '--resp-port', String(basePort + 100 + i), '--dir', join(root, `node-${i}`), '--log-level', 'warn'];
    if (i > 0) args.push('--seeds', `127.0.0.1:${basePort}`);
    children.push(await startNodeProcess(args));
  }
  await waitForMembers(basePort, count);
  return {
    port: basePort + 100,
    stop: async () => {
      await Promise.all(children.map((c) => new Promise((resolve) => (c.once('exit', resolve), c.kill('SIGTERM')))));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function startBare(port: number): Promise<Running> {
  const child = fork(fileURLToPath(new URL('./fixtures/bare-resp-server.js', import.meta.url)), [String(port)], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the bare RESP server exited with ${code}`)));
  });
  return { port, stop: () => new Promise((resolve) => (child.once('exit', () => resolve()), child.kill('SIGTERM'))) };
}

async function startSubject(subject: Subject, basePort: number): Promise<Running> {
  if (subject === 'ringkv-1') return startRingkv(1, basePort);
  if (subject === 'ringkv-3') return startRingkv(3, basePort);
  if (subject === 'node-bare') return startBare(basePort + 100);
  const dir = subject === 'redis-aof' ? mkdtempSync(join(tmpdir(), 'redis-aof-')) : undefined;
  const server = await startRedis(basePort + 100, dir);
  return {
    port: server.port,
    stop: async () => {
      await server.stop();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function fmt(n: number): string {
  return n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0);
}

export async function runRespBench(argv: string[]): Promise<void> {
  const f = flagsOf(argv);
  const rounds = Number(f.get('rounds') ?? 3);
  const requests = Number(f.get('requests') ?? 200_000);
  const requestsLarge = Number(f.get('requests-large') ?? requests);
  const sizes = (f.get('sizes') ?? '100,10240').split(',').map(Number);
  const depths = (f.get('depths') ?? '1,16').split(',').map(Number);
  const subjects = (f.get('subjects') ?? subjectsAll.join(',')).split(',') as Subject[];
  if (subjects.some((s) => !subjectsAll.includes(s))) throw new RangeError(`--subjects takes ${subjectsAll.join(', ')}`);
  if (!(await redisAvailable())) throw new Error('redis-server and redis-benchmark are needed (apt-get install -y redis-server redis-tools)');
  printMachine();
  console.log(`redis ${await redisVersion()}; redis-benchmark -c 50 -r 100000 -t set,get; -n ${requests} (100 B) / ${requestsLarge} (larger); rounds ${rounds}`);
  const samples: Sample[] = [];
  let basePort = 21_000 + Math.floor(Math.random() * 2_000);
  for (let round = 1; round <= rounds; round++) {
    // Alternate: the subject order turns every round.
    const order = subjects.map((_, i) => subjects[(i + round - 1) % subjects.length]!);
    for (const subject of order) {
      for (const size of sizes) {
        for (const depth of depths) {
          basePort += 10;
          const running = await startSubject(subject, basePort);
          try {
            const n = size > 1024 ? requestsLarge : requests;
            const rows = await redisBenchmark(running.port, { clients: 50, requests: n, keyspace: 100_000, valueBytes: size, pipeline: depth });
            for (const row of rows) {
              samples.push({ round, subject, test: row.test, depth, size, row });
              console.log(`round ${round} ${subject.padEnd(9)} ${row.test.padEnd(3)} -d ${String(size).padEnd(5)} -P ${String(depth).padEnd(2)} ${fmt(row.rps).padStart(7)} ops/s  p50 ${row.p50Ms.toFixed(2)} ms  p99 ${row.p99Ms.toFixed(2)} ms`);
            }
          } finally {
            await running.stop();
          }
        }
      }
    }
  }
  report(samples, subjects, sizes, depths);
}

function pick(samples: Sample[], subject: Subject, test: string, size: number, depth: number): Sample[] {
  return samples.filter((s) => s.subject === subject && s.test === test && s.size === size && s.depth === depth);
}

/** Median of per-round ratios a/b. */
function ratio(samples: Sample[], a: Subject, b: Subject, test: string, size: number, depth: number): number | undefined {
  const xs = pick(samples, a, test, size, depth);
  const ys = pick(samples, b, test, size, depth);
  const ratios = xs.flatMap((x) => ys.filter((y) => y.round === x.round).map((y) => x.row.rps / y.row.rps));
  return ratios.length === 0 ? undefined : median(ratios);
}

function report(samples: Sample[], subjects: Subject[], sizes: number[], depths: number[]): void {
  console.log('\nmedians: subject, test, value bytes, pipeline depth → ops/s, p50, p99');
  const table: Record<string, unknown>[] = [];
  for (const size of sizes) {
    for (const depth of depths) {
      for (const test of ['SET', 'GET']) {
        for (const subject of subjects) {
          const xs = pick(samples, subject, test, size, depth);
          if (xs.length === 0) continue;
          const row = { subject, test, size, depth, rps: median(xs.map((x) => x.row.rps)), p50Ms: median(xs.map((x) => x.row.p50Ms)), p99Ms: median(xs.map((x) => x.row.p99Ms)) };
          table.push(row);
          console.log(`${subject.padEnd(9)} ${test} -d ${String(size).padEnd(5)} -P ${String(depth).padEnd(2)} ${fmt(row.rps).padStart(7)} ops/s  p50 ${row.p50Ms.toFixed(2)} ms  p99 ${row.p99Ms.toFixed(2)} ms`);
        }
      }
    }
  }
  console.log('\nratios (median of per-round ratios):');
  const ratios: Record<string, number | undefined> = {};
  for (const size of sizes) {
    for (const depth of depths) {
      for (const test of ['SET', 'GET']) {
        for (const [a, b] of [['ringkv-1', 'redis'], ['ringkv-1', 'redis-aof'], ['ringkv-3', 'ringkv-1'], ['ringkv-3', 'redis'], ['node-bare', 'redis'], ['ringkv-1', 'node-bare']] as const) {
          const r = ratio(samples, a, b, test, size, depth);
          if (r === undefined) continue;
          const name = `${a}/${b} ${test} -d ${size} -P ${depth}`;
          ratios[name] = r;
          console.log(`${name.padEnd(42)} ${r.toFixed(2)}x`);
        }
      }
    }
  }
  console.log('\ngoals: GET >= 1x redis at -P 1 and >= 0.5x at -P 16; SET >= 1x redis-aof; ringkv-3 >= 0.5x ringkv-1');
  recordResult('resp', { samples: samples.map((s) => ({ round: s.round, subject: s.subject, size: s.size, depth: s.depth, ...s.row })), medians: table, ratios });
}
