/**
 * `ringkv start` (one node in this process, until SIGINT/SIGTERM) and `ringkv dev-cluster`
 * (several `ringkv start` child processes on loopback for development, stopped together on
 * Ctrl-C).
 *
 * Secrets: the cluster secret comes from --secret-file (file contents, trailing newline
 * dropped) or RINGKV_SECRET, never from a command-line value (which `ps` would show); the
 * client token a node requires comes from RINGKV_CLIENT_TOKEN. Without a secret a node
 * listens on loopback only (the transport enforces it).
 *
 * Owner: the CLI's main thread.
 */

import { join } from 'node:path';
import { limits } from '../base/limits.js';
import type { LogFormat, LogLevel } from '../base/log.js';
import type { NodeOptions, RingkvNode } from '../server/index.js';
import { Progress, type ProgressItem } from './progress.js';
import { type ChildHandle, type CliIo, exitError, exitOk, statusUrlOf, UsageError } from './cli-io.js';
import { scalingNodeOptions, type ScalingFlags } from './scaling-flags.js';

export interface StartFlags extends ScalingFlags {
  /** log2 of the partition count, fixed at cluster creation. */
  partitionBits?: number;
  gossipIntervalMs?: number;
  /** The id of a new data directory (default n-<random hex>). */
  id?: string;
  config?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  insecureClients?: boolean;
  port: number;
  host?: string;
  dir: string;
  seeds?: string[];
  /** host:port peers and clients use (behind NAT or in a pod); matched against --seeds. */
  advertise?: string;
  /** host:port or node id of a dead member to replace. */
  replace?: string;
  dc?: string;
  rack?: string;
  weight?: number;
  shards?: number;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
  secretFile?: string;
  /** Tombstones are purged no sooner than this after their delete (Cassandra's gc_grace_seconds). */
  tombstoneGraceSeconds?: number;
  /** Partition streaming pace in MiB/s (Cassandra's stream_throughput). */
  streamMibPerSecond?: number;
  /** Port of the Redis-protocol listener (off unless given). */
  respPort?: number;
  /** Wall-clock skew between nodes that expiry tolerates, in ms. */
  clockSkewMs?: number;
  rowCacheMb?: number;
  /** Period of the full anti-entropy sweep, in seconds. */
  antiEntropySweepSeconds?: number;
  /** Max hint window, in seconds (Cassandra's max_hint_window). */
  maxHintWindowSeconds?: number;
}

export function nodeOptionsOf(io: CliIo, flags: StartFlags): NodeOptions {
  const options: NodeOptions = { port: flags.port, dir: flags.dir };
  if (flags.host !== undefined) options.host = flags.host;
  if (flags.seeds !== undefined && flags.seeds.length > 0) options.seeds = flags.seeds;
  if (flags.advertise !== undefined) options.advertise = flags.advertise;
  if (flags.replace !== undefined) options.replace = flags.replace;
  if (flags.dc !== undefined) options.dc = flags.dc;
  if (flags.rack !== undefined) options.rack = flags.rack;
  if (flags.weight !== undefined) options.weight = flags.weight;
  if (flags.shards !== undefined) options.shards = flags.shards;
  if (flags.logLevel !== undefined) options.logLevel = flags.logLevel;
  if (flags.logFormat !== undefined) options.logFormat = flags.logFormat;
  if (flags.tombstoneGraceSeconds !== undefined) options.tombstoneGraceMs = flags.tombstoneGraceSeconds * 1000;
  if (flags.streamMibPerSecond !== undefined) options.handoffBytesPerSecond = flags.streamMibPerSecond * 1024 * 1024;
  if (flags.respPort !== undefined) options.respPort = flags.respPort;
  if (flags.clockSkewMs !== undefined) options.clockSkewMs = flags.clockSkewMs;
  if (flags.rowCacheMb !== undefined) options.rowCacheBytes = flags.rowCacheMb * 1024 * 1024;
  if (flags.antiEntropySweepSeconds !== undefined) options.antiEntropySweepPeriodMs = flags.antiEntropySweepSeconds * 1000;
  if (flags.maxHintWindowSeconds !== undefined) options.maxHintWindowMs = flags.maxHintWindowSeconds * 1000;
  if (flags.partitionBits !== undefined) options.partitionBits = flags.partitionBits;
  if (flags.id !== undefined) options.id = flags.id;
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (flags.tlsCert !== undefined) options.tls = { certFile: flags.tlsCert, keyFile: flags.tlsKey!, ...(flags.tlsCa !== undefined ? { caFile: flags.tlsCa } : {}) };
  if (flags.insecureClients === true) options.insecureClients = true;
  if (flags.gossipIntervalMs !== undefined) options.gossipIntervalMs = flags.gossipIntervalMs;
  Object.assign(options, scalingNodeOptions(flags as StartFlags & Record<string, unknown>));
  const secret = flags.secretFile !== undefined ? io.readFile(flags.secretFile).replace(/\r?\n$/, '') : io.env.RINGKV_SECRET;
  if (secret !== undefined && secret !== '') options.secret = secret;
  const token = io.env.RINGKV_CLIENT_TOKEN;
  if (token !== undefined && token !== '') options.clientToken = token;
  return options;
}

/** A node started by the local provisioner stops when the node that started it is gone. */
function exitWithParent(io: CliIo): void {
  if (io.env.RINGKV_EXIT_WITH_PARENT !== '1') return;
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
  }, 1_000).unref();
}

export async function startCommand(io: CliIo, flags: StartFlags): Promise<number> {
  const node = await io.startNode(nodeOptionsOf(io, flags));
  exitWithParent(io);
  io.out(`ringkv node ${node.id} listening on ${node.url}\n`);
  io.out(`  status:  ${statusUrlOf(node.url)}\n`);
  if (node.respPort !== undefined) io.out(`  redis:   redis-cli -p ${node.respPort}\n`);
  io.out(`  try:     ringkv --url ${node.url} put hello world && ringkv --url ${node.url} get hello\n`);
  io.out('Press Ctrl-C to stop.\n');
  if (flags.replace !== undefined) void followReplacement(io, node);
  const endings: Promise<string>[] = [io.waitForSignal()];
  if (node.left !== undefined) endings.push(node.left.then(() => 'left'));
  let refusal = '';
  if (node.refused !== undefined) endings.push(node.refused.then((error) => ((refusal = `error ${error.code}: ${error.message}\n`), 'refused')));
  const signal = await Promise.race(endings);
  if (signal === 'refused') {
    io.err(refusal);
    return exitError;
  }
  if (signal === 'left') {
    io.out(`${node.id} left the cluster\n`);
    return exitOk;
  }
  io.out(`${signal}: stopping ${node.id}...\n`);
  await node.close();
  io.out('stopped\n');
  return exitOk;
}

/**
 * `start --replace`: the dead member's partitions stream in from the surviving replicas;
 * their progress goes to stderr (bars on a terminal, plain lines elsewhere) until the
 * replacement is done and the node is normal.
 */
async function followReplacement(io: CliIo, node: RingkvNode): Promise<void> {
  const progress = new Progress(io);
  let last: ProgressItem | undefined;
  let finished = false;
  try {
    // Until the streaming starts the node may still be checking its start (bounded wait).
    for (let idle = 0; idle < replaceStartPollsMax; ) {
      const status = node.status();
      const transfers = status.transfers;
      const replacing = transfers !== undefined && transfers.phase === 'replacing';
      if (replacing) last = { key: 'replace', what: `replacing (${transfers.keys} keys)`, done: transfers.done, total: transfers.total, unit: 'partitions' };
      else if (last !== undefined || status.members.find((m) => m.id === node.id)?.status === 'normal') {
        finished = last !== undefined;
        break;
      } else idle++;
      progress.update(replacing && last ? [last] : []);
      await io.sleep(limits.cliProgressPollMs);
    }
  } catch (error) {
    // The node closed under us (Ctrl-C during the replacement): its own shutdown says so.
    io.err(`replacement progress stopped: ${(error as Error).message}\n`);
  } finally {
    // The phase leaves 'replacing' only once every partition is in (a failed attempt retries).
    progress.stop(last ? [{ ...last, done: finished ? last.total : last.done }] : []);
  }
  if (finished) io.err(`replacement done: ${last!.total} partitions streamed; the node is normal\n`);
}

/** How many polls `start --replace` waits for the streaming to begin before it stops watching (2 minutes). */
const replaceStartPollsMax = 240;

export interface DevClusterFlags {
  nodes: number;
  basePort: number;
  dir: string;
  shards?: number;
  logLevel?: string;
  /** RESP port of node 0; node i listens on respBasePort + i (default 6380). */
  respBasePort?: number;
  logFormat?: string;
  /** `local`: every node runs the autoscaler with the local provisioner (min nodes = --nodes). */
  autoscale?: string;
  maxNodes?: number;
}

/** The `ringkv start` arguments of dev-cluster node i: loopback, ports basePort+i, RESP respBasePort+i, seeds → node 0. */
export function devNodeArgs(flags: DevClusterFlags, i: number): string[] {
  const args = ['start', '--host', '127.0.0.1', '--port', String(flags.basePort + i), '--dir', join(flags.dir, `node-${i}`)];
  if (i > 0) args.push('--seeds', `127.0.0.1:${flags.basePort}`);
  if (flags.shards !== undefined) args.push('--shards', String(flags.shards));
  if (flags.logLevel !== undefined) args.push('--log-level', flags.logLevel);
  args.push('--resp-port', String((flags.respBasePort ?? devRespBasePort) + i));
  if (flags.logFormat !== undefined) args.push('--log-format', flags.logFormat);
  if (flags.autoscale !== undefined) args.push('--autoscale', flags.autoscale, '--min-nodes', String(flags.nodes), '--max-nodes', String(flags.maxNodes ?? flags.nodes + 2));
  return args;
}

const devRespBasePort = 6380;

/** SIGTERM to every node (one already stopping ignores it), SIGKILL to any still up after cliChildStopTimeoutMs. */
async function stopAll(io: CliIo, children: ChildHandle[]): Promise<void> {
  for (const child of children) child.kill('SIGTERM');
  const timer = setTimeout(() => {
    io.err(`error: nodes still running after ${limits.cliChildStopTimeoutMs} ms; killing them\n`);
    for (const child of children) child.kill('SIGKILL');
  }, limits.cliChildStopTimeoutMs);
  await Promise.all(children.map((child) => child.exited));
  clearTimeout(timer);
  io.out('all nodes stopped\n');
}

export async function devClusterCommand(io: CliIo, flags: DevClusterFlags): Promise<number> {
  const children: ChildHandle[] = [];
  for (let i = 0; i < flags.nodes; i++) children.push(io.spawnRingkv(devNodeArgs(flags, i)));
  io.out(`dev cluster: ${flags.nodes} nodes, data under ${flags.dir}/node-<i>\n`);
  for (let i = 0; i < flags.nodes; i++) {
    const url = `ws://127.0.0.1:${flags.basePort + i}`;
    io.out(`  node ${i}: ${url}  redis-cli -p ${(flags.respBasePort ?? devRespBasePort) + i}  (pid ${children[i]!.pid ?? '?'}, status ${statusUrlOf(url)})\n`);
  }
  io.out(`try: ringkv --url ws://127.0.0.1:${flags.basePort} status\nPress Ctrl-C to stop them all.\n`);
  const firstExit = Promise.race(children.map((child, i) => child.exited.then((code) => ({ i, code }))));
  const event = await Promise.race([io.waitForSignal().then((signal) => ({ signal })), firstExit]);
  if ('signal' in event) {
    io.out(`${event.signal}: stopping ${flags.nodes} nodes...\n`);
    await stopAll(io, children);
    return exitOk;
  }
  io.err(`error: node ${event.i} exited early (code ${event.code}); stopping the others\n`);
  await stopAll(io, children);
  return exitError;
}
