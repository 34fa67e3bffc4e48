/**
 * Redis 7 as the peer of the cluster benchmark (PERF.md): start `redis-server` as a child on
 * a loopback port without persistence, run `redis-benchmark --csv` against it, parse the CSV.
 * Redis comes from Debian (`apt-get install -y redis-server redis-tools`); when it is missing
 * the caller is told so and the Redis rows are skipped, never faked.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RedisRow {
  test: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

export interface RedisServer {
  readonly port: number;
  stop(): Promise<void>;
}

/** Whether redis-server and redis-benchmark are installed. */
export async function redisAvailable(): Promise<boolean> {
  try {
    await run('redis-server', ['--version']);
    await run('redis-benchmark', ['--version']);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

export async function redisVersion(): Promise<string> {
  const { stdout } = await run('redis-server', ['--version']);
  return /v=(\S+)/.exec(stdout)?.[1] ?? stdout.trim();
}

async function ping(port: number): Promise<boolean> {
  try {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'ping']);
    return stdout.trim() === 'PONG';
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') throw error;
    return false;
  }
}

/**
 * `redis-server --port <p> --save '' --appendonly no`, resolved once it answers PING. With
 * `aofDir`: `--appendonly yes --appendfsync always --dir <aofDir>` instead (fsync per write
 * batch: the peer with ringkv's durability).
 */
export async function startRedis(port: number, aofDir?: string): Promise<RedisServer> {
  const persistence = aofDir === undefined ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', aofDir];
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 100 && !(await ping(port)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!(await ping(port))) {
    child.kill('SIGKILL');
    throw new Error(`redis-server did not answer on port ${port}`);
  }
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Parses `redis-benchmark --csv` (Redis 7: "test","rps","avg_latency_ms",...,"p50_latency_ms",...,"p99_latency_ms",...). */
export function parseRedisCsv(text: string): RedisRow[] {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('"'));
  if (lines.length === 0) throw new Error(`no CSV in redis-benchmark output: ${text.slice(0, 200)}`);
  const cells = (line: string): string[] => line.split(',').map((c) => c.replace(/^"|"$/g, ''));
  const header = cells(lines[0]!);
  const column = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`redis-benchmark CSV has no ${name} column: ${lines[0]}`);
    return i;
  };
  const [test, rps, p50, p99] = [column('test'), column('rps'), column('p50_latency_ms'), column('p99_latency_ms')];
  return lines.slice(1).map((line) => {
    const c = cells(line);
    return { test: c[test]!, rps: Number(c[rps]), p50Ms: Number(c[p50]), p99Ms: Number(c[p99]) };
  });
}

export interface RedisBenchOptions {
  clients: number;
  requests: number;
  keyspace: number;
  valueBytes: number;
  pipeline: number;
}

/** `redis-benchmark -p <p> -c <clients> -n <requests> -r <keyspace> -d <bytes> -t set,get -P <pipeline> --csv`. */
export async function redisBenchmark(port: number, o: RedisBenchOptions): Promise<RedisRow[]> {
  const args = ['-p', String(port), '-c', String(o.clients), '-n', String(o.requests), '-r', String(o.keyspace)];
  args.push('-d', String(o.valueBytes), '-t', 'set,get', '-P', String(o.pipeline), '--csv');
  const { stdout } = await run('redis-benchmark', args, { maxBuffer: 16 * 2 ** 20 });
  return parseRedisCsv(stdout);
}
