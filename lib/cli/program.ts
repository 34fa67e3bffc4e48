/**
 * The `ringkv` command line: commander wiring (the ONLY file importing commander), flag
 * parsing, and exit codes. The commands themselves live in kv-commands.ts,
 * cluster-commands.ts and node-commands.ts and take a CliIo, so `runCli(argv, io)` runs the
 * whole CLI in-process (tests pass a fake client and capture output).
 *
 * Exit codes: 0 ok; 1 error, printed as `error KV_CODE: message` on stderr; 2 usage (bad
 * flag, missing argument, no command). `get` of a missing key prints `(not found)` and exits
 * 0, as redis-cli (`(nil)`) and cqlsh (empty result) do: absence is an answer, not a failure.
 *
 * Owner: the CLI process's main thread.
 */

import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { isRingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { type LogFormat, logFormats, type LogLevel } from '../base/log.js';
import { nodeUrlOf } from '../client/index.js';
import { type CliIo, defaultUrl, exitError, exitOk, exitUsage, UsageError } from './cli-io.js';
import { endpointsCommand, hintsCommand, ringCommand, statusCommand } from './cluster-commands.js';
import { cleanupCommand, leaveCommand, removeNodeCommand, repairCommand, watchStatusCommand } from './work-commands.js';
import { type ConnectionFlags, deleteCommand, getCommand, putCommand, type RequestFlags } from './kv-commands.js';
import { devClusterCommand, startCommand, type StartFlags } from './node-commands.js';
import { autoscaleStatusCommand, commitCommand, planCommand, prestopCommand, type PlanAction } from './plan-commands.js';
import { envNameOf, resolveStartFlags, type StartOptionSpec } from './start-config.js';

function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer in [${min}, ${max}]`);
    return n;
  };
}

function positive(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function victimChoice(value: string): 'least-loaded' | 'provisioner' {
  if (value !== 'least-loaded' && value !== 'provisioner') throw new InvalidArgumentError("must be 'least-loaded' or 'provisioner'");
  return value;
}

function logLevel(value: string): LogLevel {
  if (!(logLevels as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${logLevels.join(', ')}`);
  return value as LogLevel;
}

function logFormat(value: string): LogFormat {
  if (!(logFormats as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${logFormats.join(', ')}`);
  return value as LogFormat;
}

function seedList(value: string): string[] {
  const seeds = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const seed of seeds) if (!/^[^\s:]+:\d{1,5}$/.test(seed)) throw new InvalidArgumentError(`${JSON.stringify(seed)} is not host:port`);
  return seeds;
}

const afterHelp = `
Environment:
  RINGKV_URL           node to talk to when --url is not given (default ${defaultUrl})
  RINGKV_TOKEN         client token when --token is not given
  RINGKV_SECRET        cluster secret for 'start' when --secret-file is not given
  RINGKV_CLIENT_TOKEN  client token a node started with 'start' requires

Exit codes: 0 ok, 1 error ("error KV_CODE: message" on stderr), 2 usage.
A missing key is not an error: 'get' prints "(not found)" and exits 0, like redis-cli.

Examples:
  ringkv dev-cluster --nodes 3
  ringkv put greeting hello --w 3
  ringkv get greeting
  ringkv put greeting bonjour --context <base64 from get>
  ringkv status`;

function connectionOf(io: CliIo, command: Command): ConnectionFlags {
  const o = command.optsWithGlobals<{ url?: string; token?: string; caFile?: string; timeout?: number }>();
  const raw = o.url ?? io.env.RINGKV_URL ?? defaultUrl;
  let url: string;
  try {
    url = nodeUrlOf(raw, '--url');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return { url, token: o.token ?? io.env.RINGKV_TOKEN, caFile: o.caFile, timeoutMs: o.timeout };
}

/** A TTL: a number with ms, s, m or h (bare: seconds); returns milliseconds. */
function ttlDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
  const ms = match ? Math.round(Number(match[1]) * unitMs[(match[2] ?? 's') as keyof typeof unitMs]) : NaN;
  if (!(ms >= 1 && ms <= limits.ttlMsMax)) throw new InvalidArgumentError('expected a duration such as 500ms, 30s, 10m or 2h');
  return ms;
}

function addRequestFlags(command: Command, write: boolean): Command {
  if (write) command.option('--w <n>', 'replica acks to wait for', integer(1, 16));
  else command.option('--r <n>', 'replica replies to wait for', integer(1, 16));
  command.option('--consistency <level>', 'ONE, TWO, QUORUM, ALL, LOCAL_QUORUM or EACH_QUORUM (explicit --r/--w win)');
  if (write) command.option('--context <base64>', 'the context printed by get: supersede exactly what it saw');
  if (write) command.option('--ttl <duration>', 'put only: the value expires after this long (500ms, 30s, 10m, 2h; a bare number is seconds)', ttlDuration);
  command.option('--base64', write ? 'the value is base64' : 'print values as base64');
  return command;
}

function addKvCommands(program: Command, io: CliIo, done: (code: number) => void): void {
  const put = program.command('put <key> <value>').description('write a value, superseding what a read of the key sees now (or --context, or --blind)');
  addRequestFlags(put, true).option('--blind', 'write without reading first: a concurrent version (sibling) of what is there');
  put.action(async (key: string, value: string, flags: RequestFlags, command: Command) => {
    done(await putCommand(io, connectionOf(io, command), key, value, flags));
  });
  const get = program.command('get <key>').description('read a key: its value, or its siblings numbered, and its context');
  addRequestFlags(get, false).action(async (key: string, flags: RequestFlags, command: Command) => {
    done(await getCommand(io, connectionOf(io, command), key, flags));
  });
  const del = program.command('del <key>').alias('delete').description('delete a key (a tombstone; pass --context to supersede a get)');
  addRequestFlags(del, true).action(async (key: string, flags: RequestFlags, command: Command) => {
    done(await deleteCommand(io, connectionOf(io, command), key, flags));
  });
}

function addClusterCommands(program: Command, io: CliIo, done: (code: number) => void): void {
  program
    .command('status')
    .description('one row per node, like nodetool status: UN/DN/UJ/UL, address, load, ownership, dc, rack')
    .option('--json', 'print the raw /status JSON')
    .option('--watch', 'follow the table and the work in progress (bars on a terminal) until Ctrl-C')
    .action(async (flags: { json?: boolean; watch?: boolean }, command: Command) =>
      done(flags.watch ? await watchStatusCommand(io, connectionOf(io, command)) : await statusCommand(io, connectionOf(io, command), flags.json === true)),
    );
  program
    .command('ring')
    .description('partition ranges and their primary owners')
    .action(async (_flags: unknown, command: Command) => done(await ringCommand(io, connectionOf(io, command))));
  program
    .command('repair')
    .description('Merkle anti-entropy now: every partition this node replicates (or --partition p) against its peer replicas')
    .option('--partition <p>', 'repair one partition', integer(0, 65_535))
    .action(async (flags: { partition?: number }, command: Command) => done(await repairCommand(io, connectionOf(io, command), flags.partition)));
  program
    .command('cleanup')
    .description('drop the partitions this node no longer replicates, after handing them to their replicas (like nodetool cleanup)')
    .action(async (_flags: unknown, command: Command) => done(await cleanupCommand(io, connectionOf(io, command))));
  program
    .command('hints')
    .description('hints this node holds for nodes that were down (sloppy quorum), per target')
    .action(async (_flags: unknown, command: Command) => done(await hintsCommand(io, connectionOf(io, command))));
  program
    .command('leave')
    .description('the node at --url hands its partitions to their new replicas and leaves the cluster (its process exits)')
    .action(async (_flags: unknown, command: Command) => done(await leaveCommand(io, connectionOf(io, command))));
  program
    .command('removenode <id>')
    .description('remove a dead node from the cluster (asked of any live node at --url); its partitions are re-replicated')
    .action(async (id: string, _flags: unknown, command: Command) => done(await removeNodeCommand(io, connectionOf(io, command), id)));
  program
    .command('endpoints <key>')
    .description("a key's token, partition and preference list (its replicas, in order)")
    .action(async (key: string, _flags: unknown, command: Command) => done(await endpointsCommand(io, connectionOf(io, command), key)));
}

/** The start flags as start-config.ts sees them (env names, file keys, parsers). */
function startSpecs(start: Command): StartOptionSpec[] {
  return start.options.map((o) => ({
    attr: o.attributeName(),
    long: o.long!,
    takesValue: o.required || o.optional,
    ...(o.parseArg ? { parse: (value: string) => o.parseArg!(value, undefined) } : {}),
  }));
}

function startHelp(start: Command): string {
  const names = start.options.filter((o) => o.long !== '--config').map((o) => envNameOf(o.long!));
  return `
Settings come from, highest first: flags, RINGKV_* environment variables, the --config YAML
file (keys as the flags without dashes: "min-nodes: 3" or "minNodes: 3"), then the defaults.
Environment variables: ${names.join(', ')}, RINGKV_CONFIG.
Secrets never come from flags or the file: RINGKV_SECRET (or --secret-file), RINGKV_CLIENT_TOKEN.
A node listening beyond loopback requires RINGKV_CLIENT_TOKEN unless --insecure-clients.`;
}

/** The deployment flags of `start`: config file, TLS, client protection. */
function addDeploymentStartFlags(start: Command): void {
  start
    .option('--config <file>', 'YAML file of start settings (below flags and RINGKV_* variables)')
    .option('--tls-cert <file>', 'PEM certificate: serve wss:// and https:// (peers too)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--tls-ca <file>', 'PEM CA to trust when dialing peers over TLS')
    .option('--insecure-clients', 'allow clients without a token on a non-loopback address (default: refuse to start)');
}

/** The staged-join and autoscaling flags of `start` (lib/cli/scaling-flags.ts). */
function addScalingStartFlags(start: Command): void {
  addDeploymentStartFlags(start);
  start
    .option('--partition-bits <b>', 'log2 of the partition count, fixed when the cluster is created (default 10)', integer(1, 16))
    .option('--gossip-interval-ms <ms>', 'gossip round interval (default 1000)', integer(10, 60_000))
    .option('--id <id>', 'the node id of a new data directory (default n-<8 random hex digits>)')
    .option('--staged-join', 'join only when a committed plan names this node (ringkv plan join <host:port>; ringkv commit)')
    .option('--capacity-gib <n>', 'bytes this node may store, GiB; the autoscaler scales out past 80% of it', positive)
    .option('--autoscale <provisioner>', "run the autoscaler: 'local' (ringkv processes on this machine) or 'command:<program>'")
    .option('--min-nodes <n>', 'autoscale: fewest nodes (default 3)', integer(1, 1024))
    .option('--max-nodes <n>', 'autoscale: most nodes (default 8)', integer(1, 1024))
    .option('--target-ops-per-node <n>', 'autoscale: client ops/s per node to track (default 1000)', positive)
    .option('--scale-out-above <ratio>', 'autoscale: high watermark, a multiple of the target (default 1.0)', positive)
    .option('--scale-in-below <ratio>', 'autoscale: low watermark, a multiple of the target (default 0.4)', positive)
    .option('--scale-out-window-seconds <s>', 'autoscale: load above the high watermark this long scales out (default 60)', positive)
    .option('--scale-in-window-seconds <s>', 'autoscale: load below the low watermark this long scales in (default 150)', positive)
    .option('--cooldown-seconds <s>', 'autoscale: no decision this long after the last one completed (default 60)', positive)
    .option('--scale-in-victim <who>', "autoscale: 'least-loaded' (default) or 'provisioner' (the platform picks it; its preStop runs ringkv autoscale prestop)", victimChoice)
    .option('--autoscale-interval-ms <ms>', 'autoscale: load report and evaluation interval (default 1000)', integer(10, 60_000));
}

function addPlanCommands(program: Command, io: CliIo, done: (code: number) => void): void {
  const plan = program
    .command('plan')
    .description('staged membership changes (like riak cluster plan): with no subcommand, show the staged plan against today\'s ring')
    .option('--json', 'print the raw JSON')
    .action(async (flags: { json?: boolean }, command: Command) => done(await planCommand(io, connectionOf(io, command), { type: 'show' }, flags.json === true)));
  const sub = (name: string, description: string, action: (args: string[]) => PlanAction): void => {
    plan
      .command(name)
      .description(description)
      .action(async (...args: unknown[]) => {
        const command = args[args.length - 1] as Command;
        done(await planCommand(io, connectionOf(io, command), action(args.slice(0, -2) as string[]), false));
      });
  };
  sub('join <host:port>', 'stage the join of a node started with --seeds <a member> --staged-join', ([node]) => ({ type: 'join', node: node! }));
  sub('leave <node>', 'stage the decommission of a node (id or host:port)', ([node]) => ({ type: 'leave', node: node! }));
  sub('replace <dead> <new>', 'stage the removal of a dead node and the join of a waiting one in its stead', ([dead, node]) => ({ type: 'replace', dead: dead!, node: node! }));
  sub('clear', 'drop the staged changes', () => ({ type: 'clear' }));
  program
    .command('commit')
    .description('apply the staged plan as one change (refused when unsafe); steps run one at a time on a settled cluster')
    .option('--wait', 'wait until the plan is done or failed')
    .action(async (flags: { wait?: boolean }, command: Command) => done(await commitCommand(io, connectionOf(io, command), flags.wait === true)));
  const autoscale = program.command('autoscale').description('the autoscaler: ringkv autoscale status | prestop');
  autoscale
    .command('status')
    .description('the autoscaler leader, the load it sees, what it waits for, its last decision')
    .option('--json', 'print the raw JSON')
    .action(async (flags: { json?: boolean }, command: Command) => done(await autoscaleStatusCommand(io, connectionOf(io, command), flags.json === true)));
  autoscale
    .command('prestop')
    .description('a Kubernetes preStop hook: decommission this node only when a scale-in removes this pod')
    .option('--ordinal <n>', "this pod's StatefulSet ordinal (default: from HOSTNAME, ringkv-<n>)", integer(0, 100_000))
    .action(async (flags: { ordinal?: number }, command: Command) => done(await prestopCommand(io, connectionOf(io, command), flags.ordinal)));
}

function addNodeCommands(program: Command, io: CliIo, done: (code: number) => void): void {
  const start = program
    .command('start')
    .description('run a node in this process until SIGINT/SIGTERM')
    .option('--port <port>', 'port of HTTP, /client and /peer', integer(0, 65535), 7070)
    .option('--host <host>', 'address to listen on (default 127.0.0.1 without a secret, 0.0.0.0 with one)')
    .option('--dir <dir>', 'data directory', './data')
    .option('--seeds <host:port,...>', 'nodes to join through; a node that finds its own address here may found the cluster', seedList)
    .option('--advertise <host:port>', 'the address peers and clients reach this node at (behind NAT, in a pod)')
    .option('--replace <host:port|id>', "take a dead member's place: its partitions, streamed from the surviving replicas (empty data directory)")
    .option('--dc <name>', 'datacenter')
    .option('--rack <name>', 'rack')
    .option('--weight <w>', 'relative capacity (owns about w times as many partitions)', positive)
    .option('--shards <n>', 'shard worker threads', integer(1, 1024))
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', logLevel)
    .option('--log-format <format>', 'json or pretty (default: pretty on a terminal, else json; or RINGKV_LOG_FORMAT)', logFormat)
    .option('--secret-file <path>', 'file holding the cluster secret (else RINGKV_SECRET)')
    .option('--stream-mib-per-second <n>', 'pace of partition streaming on joins and leaves (default 2)', integer(1, 10_000))
    .option('--tombstone-grace-seconds <s>', 'keep tombstones at least this long after a delete (default 864000, 10 days)', integer(0, 10 * 365 * 86_400))
    .option('--resp-port <port>', 'also speak the Redis protocol on this port (redis-cli -p <port>)', integer(0, 65535))
    .option('--clock-skew-ms <ms>', 'bound on clock skew between nodes that TTL expiry tolerates (default 50)', integer(0, 60_000))
    .option('--row-cache-mb <mb>', 'memory for recently read keys on the main thread (default: a 24th of the memory the process may use, 64-512; at most 512 is used; 0: none)', integer(0, 16_384))
    .option('--anti-entropy-sweep-seconds <s>', 'exchange every partition with every peer replica once per this period (default 3600)', integer(1, 30 * 86_400))
    .option('--max-hint-window-seconds <s>', 'stop hinting for a node whose oldest undelivered hint is older than this (default 10800, 3 h)', integer(0, 30 * 86_400));
  addScalingStartFlags(start);
  start.action(async (flags: StartFlags, command: Command) => done(await startCommand(io, resolveStartFlags(startSpecs(command), flags, (a) => command.getOptionValueSource(a), io.env, io.readFile))));
  start.addHelpText('after', startHelp(start));
  program
    .command('dev-cluster')
    .description('run N nodes as child processes on loopback ports base-port.. (data under <dir>/node-<i>) until Ctrl-C')
    .option('--nodes <n>', 'how many nodes', integer(1, 64), 3)
    .option('--base-port <port>', 'port of the first node', integer(1, 65535 - 64), 7070)
    .option('--dir <dir>', 'data directory root', './data')
    .option('--shards <n>', 'shard worker threads per node', integer(1, 1024))
    .option('--log-level <level>', 'log level of the nodes', logLevel)
    .option('--log-format <format>', 'json or pretty log lines of the nodes', logFormat)
    .option('--autoscale <provisioner>', "'local': every node runs the autoscaler (min nodes = --nodes)")
    .option('--max-nodes <n>', 'with --autoscale: most nodes (default --nodes + 2)', integer(1, 64))
    .option('--resp-base-port <port>', 'RESP port of the first node (node i: +i)', integer(1, 65535 - 64), 6380)
    .action(async (flags: { nodes: number; basePort: number; dir: string; shards?: number; logLevel?: string; logFormat?: string; autoscale?: string; maxNodes?: number; respBasePort?: number }) =>
      done(await devClusterCommand(io, flags)),
    );
}

export function buildProgram(io: CliIo, done: (code: number) => void): Command {
  const program = new Command('ringkv')
    .description('ringkv: a Dynamo-style distributed key-value store')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError('(run ringkv --help for usage)')
    .option('--url <url>', `node to talk to: ws://host:port, wss://host:port or host:port (default ${defaultUrl}, or RINGKV_URL)`)
    .option('--token <token>', 'client token (else RINGKV_TOKEN)')
    .option('--ca-file <path>', 'CA certificate to trust for wss:// and https://')
    .option('--timeout <ms>', 'request budget in milliseconds, retries included', integer(1, 600_000))
    .addHelpText('after', afterHelp);
  if (io.version !== undefined) program.version(io.version);
  addKvCommands(program, io, done);
  addClusterCommands(program, io, done);
  addNodeCommands(program, io, done);
  addPlanCommands(program, io, done);
  return program;
}

function exitCodeOf(error: unknown, io: CliIo): number {
  if (error instanceof CommanderError) {
    return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? exitOk : exitUsage;
  }
  if (error instanceof UsageError || error instanceof TypeError || error instanceof RangeError) {
    io.err(`error: ${error.message}\n`);
    return exitUsage;
  }
  if (isRingkvError(error)) {
    io.err(`error ${error.code}: ${error.message}\n`);
    return exitError;
  }
  io.err(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  return exitError;
}

/** Runs `ringkv <argv...>` and resolves with its exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let code = exitOk;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    return exitCodeOf(error, io);
  }
  return code;
}
