/**
 * Progress and logs as an operator sees them. In-process (fake CliIo and clock): plain lines
 * off a terminal (one when work starts, one per `cliProgressLineMs` while it moves, one at
 * the end; rate and ETA), `status --watch` and `cleanup` following a node's work. Real
 * processes: the `ringkv` CLI against two real nodes, piped (plain lines, no escape codes) and
 * under a pseudo-terminal (`script` from util-linux: cli-progress bars drawn in place). Logs:
 * JSON lines off a terminal, pino-pretty lines on one or with --log-format pretty.
 */

import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { limits } from '../lib/base/limits.js';
import { createLogger, logFormatOf, silentLogger } from '../lib/base/log.js';
import type { CliIo } from '../lib/cli/cli-io.js';
import { Progress, progressText } from '../lib/cli/progress.js';
import { cleanupCommand, watchStatusCommand } from '../lib/cli/work-commands.js';
import { workItems } from '../lib/cli/work-items.js';
import { startNode, type StatusJson } from '../lib/server/index.js';

const run = promisify(execFile);
const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'lib', 'cli', 'main.js');

function fakeIo(statuses: (StatusJson | Error)[], clock: { ms: number }, extra: Partial<CliIo> = {}): CliIo & { text: () => string; outText: () => string } {
  let err = '';
  let out = '';
  return {
    out: (s) => (out += s),
    err: (s) => (err += s),
    env: {},
    now: () => clock.ms,
    sleep: async (ms) => void (clock.ms += ms),
    fetchStatus: async () => {
      const next = statuses.length > 1 ? statuses.shift()! : statuses[0]!;
      if (next instanceof Error) throw next;
      return next;
    },
    text: () => err,
    outText: () => out,
    ...extra,
  } as CliIo & { text: () => string; outText: () => string };
}

function doc(overrides: Partial<StatusJson> = {}, repair = { running: false, done: 0, total: 0, keysRepaired: 0 }): StatusJson {
  return {
    node: 'n1',
    version: '0.1.0',
    address: '127.0.0.1:1',
    uptimeMs: 1,
    partitionBits: 4,
    replication: 1,
    underReplicated: false,
    warnings: [],
    members: [{ id: 'n1', address: '127.0.0.1:1', url: 'ws://127.0.0.1:1', dc: 'dc1', rack: 'r1', weight: 1, status: 'normal', up: true, generation: 1, heartbeat: 1, partitions: 16, ownershipPercent: 100 }],
    shards: [],
    ring: { owners: [] },
    hints: [],
    hintsDelivered: 0,
    antiEntropy: { exchanges: 0, failed: 0, keysRepaired: 0, bytesSent: 0, bytesReceived: 0, repair },
    ...overrides,
  };
}

t.test('progress text: done/total, percent, rate since start, ETA', async (t) => {
  t.equal(progressText({ key: 'k', what: 'w', done: 30, total: 40, unit: 'exchanges' }, 10_000, 20), '30/40 exchanges (75%), 2.0/s, ETA 5s');
  t.equal(progressText({ key: 'k', what: 'w', done: 0, total: 40, unit: 'x' }, 0, 0), '0/40 x (0%), 0.0/s, ETA ?', 'no rate yet, no ETA');
  t.equal(progressText({ key: 'k', what: 'w', done: 0, total: 0, unit: 'x' }, 5, 0), '0/0 x (100%), 0.0/s, ETA 0s');
  t.match(progressText({ key: 'k', what: 'w', done: 1, total: 10_000, unit: 'x' }, 1000, 1), /ETA 2h 46m$/);
  t.match(progressText({ key: 'k', what: 'w', done: 1, total: 200, unit: 'x' }, 1000, 1), /ETA 3m 19s$/);
});

t.test('off a terminal: a line when work starts, at most one per interval while it moves, one when it ends', async (t) => {
  const clock = { ms: 0 };
  const io = fakeIo([], clock);
  const progress = new Progress(io);
  t.equal(progress.isTerminal, false);
  const item = (done: number) => ({ key: 'r', what: 'repair', done, total: 100, unit: 'exchanges' });
  progress.update([item(0)]);
  for (let done = 1; done <= 62; done++) {
    clock.ms += 250;
    progress.update([item(done)]);
  }
  progress.log('a note');
  progress.stop([item(62)]);
  const lines = io.text().trim().split('\n');
  t.equal(lines[0], 'repair: 0/100 exchanges (0%), 0.0/s, ETA ?');
  t.equal(lines.length, 1 + Math.floor((62 * 250) / limits.cliProgressLineMs) + 2, `start, one per ${limits.cliProgressLineMs} ms, the note, the end: ${lines.join(' | ')}`);
  t.equal(lines[1], 'repair: 20/100 exchanges (20%), 4.0/s, ETA 20s');
  t.equal(lines.at(-1), 'repair: 62/100 exchanges (62%), 4.0/s, ETA 10s');
  t.notMatch(io.text(), /\x1b/);
});

t.test('status --watch: the table when it changes and each piece of work, until a signal', async (t) => {
  const clock = { ms: 0 };
  let stop!: (signal: string) => void;
  const signal = new Promise<string>((resolve) => (stop = resolve));
  const repairing = (done: number) => doc({}, { running: true, done, total: 8, keysRepaired: done });
  const statuses: (StatusJson | Error)[] = [repairing(0), repairing(2), new Error('connect ECONNREFUSED'), repairing(8), doc({ hints: [{ target: 'n2', hints: 4, bytes: 40, oldestAgeMs: 5, skippedPartitions: [] }] })];
  let polls = 0;
  const io = fakeIo(statuses, clock, {
    waitForSignal: () => signal,
    sleep: async (ms: number) => {
      clock.ms += ms;
      if (++polls === 6) stop('SIGINT');
    },
  });
  t.equal(await watchStatusCommand(io, { url: 'ws://127.0.0.1:1', token: undefined, caFile: undefined, timeoutMs: undefined }), 0);
  const text = io.text();
  t.match(text, /Cluster seen from n1/);
  t.match(text, /repair \(0 keys\): 0\/8 exchanges/);
  t.match(text, /does not answer: connect ECONNREFUSED/);
  t.match(text, /hints for n2: 0\/4 hints/);
  t.equal(text.match(/Cluster seen from n1/g)!.length, 2, 'the table again only when it changed (after the outage)');
});

t.test('cleanup follows the node cleanup progress while its POST runs', async (t) => {
  const clock = { ms: 0 };
  let answer!: (value: unknown) => void;
  const cleaning = (done: number, running = true) => doc({ antiEntropy: { ...doc().antiEntropy, cleanup: { running, done, total: 16, dropped: 1 } } });
  const statuses = [cleaning(4), cleaning(12), cleaning(16, false)];
  const io = fakeIo(statuses, clock, {
    postJson: () => new Promise((resolve) => (answer = resolve)),
    sleep: async (ms: number) => {
      clock.ms += ms;
      if (statuses.length === 1) answer({ dropped: [3], entries: 5, kept: [] });
    },
  });
  t.equal(await cleanupCommand(io, { url: 'ws://127.0.0.1:1', token: undefined, caFile: undefined, timeoutMs: undefined }), 0);
  t.match(io.text(), /^cleanup: 4\/16 partitions/m);
  t.match(io.text(), /^cleanup: 16\/16 partitions \(100%\)/m);
  t.equal(io.outText(), 'cleanup: dropped 1 partition(s), 5 entries (3)\n');
});

t.test('work items from a status: transfers, repair, cleanup, hints, auto-cleanup', async (t) => {
  const items = workItems({
    transfers: { phase: 'leaving', done: 1, total: 3, keys: 7, bytes: 1, partitions: [] },
    repair: { running: false, done: 0, total: 0, keysRepaired: 0 },
    cleanupRun: { running: true, done: 2, total: 16, dropped: 0 },
    hints: [{ target: 'x', hints: 0, bytes: 0, oldestAgeMs: undefined, skippedPartitions: [] }],
    cleanupPending: 0,
  });
  t.same(items.map((i) => [i.key, i.done, i.total]), [['transfers', 1, 3], ['cleanup', 2, 16]]);
});

t.test('logs: JSON off a terminal, pino-pretty on one or when asked', async (t) => {
  t.equal(logFormatOf({ isTerminal: false }, {}), 'json');
  t.equal(logFormatOf({ isTerminal: true }, {}), 'pretty');
  t.equal(logFormatOf({ isTerminal: true }, { RINGKV_LOG_FORMAT: 'json' }), 'json');
  t.equal(logFormatOf({ format: 'pretty', isTerminal: false }, { RINGKV_LOG_FORMAT: 'json' }), 'pretty', 'the flag wins');
  const lines: string[] = [];
  const destination = { write: (line: string) => void lines.push(line) };
  createLogger({ level: 'info', format: 'json', destination }).info({ member: 'n2', token: 'secret!' }, 'member up');
  const json = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.equal(json.msg, 'member up');
  t.equal(json.token, '[Redacted]');
  createLogger({ level: 'info', format: 'pretty', destination }).info({ member: 'n2', token: 'secret!' }, 'member up');
  t.match(lines[1], /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(ringkv\): member up\n\s+member: "n2"\n\s+token: "\[Redacted\]"/);
  t.notMatch(lines[1], /\x1b/, 'no colours when the destination is not a terminal');
});

t.test('the real CLI against two real nodes: plain lines when piped, bars under a pseudo-terminal', { timeout: 120_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ringkv-progress-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const common = { port: 0, host: '127.0.0.1', shards: 1, logger: silentLogger, replication: 2, gossipIntervalMs: 50, antiEntropyIntervalMs: 0 } as const;
  const a = await startNode({ ...common, dir: join(root, 'a') });
  t.teardown(() => a.close());
  const b = await startNode({ ...common, dir: join(root, 'b'), seeds: [a.address] });
  t.teardown(() => b.close());
  for (let i = 0; i < 200 && a.status().members.filter((m) => m.up && m.status === 'normal').length < 2; i++) await new Promise((r) => setTimeout(r, 50));
  const env = { ...process.env, RINGKV_URL: a.url };

  const piped = await run(process.execPath, [cli, 'repair', '--partition', '3'], { env });
  t.equal(piped.stdout, 'repair done: 1 exchanges, 0 keys repaired\n');
  t.match(piped.stderr, /^repair: 1\/1 exchanges \(100%\), [\d.]+\/s, ETA 0s$/m, 'plain lines on stderr');
  t.notMatch(piped.stderr, /\x1b/, 'no escape codes in a pipe');

  const script = '/usr/bin/script';
  const tty = await run(script, ['-qfec', `${process.execPath} ${cli} repair --partition 5`, '/dev/null'], { env }).catch((error: { stdout?: string; message: string }) => ({ stdout: error.stdout ?? '', stderr: error.message }));
  t.match(tty.stdout, /repair\s+[█░]{24} 1\/1 exchanges \(100%\)/, `a bar drawn on the terminal: ${JSON.stringify(tty.stdout.slice(0, 300))}`);
  t.match(tty.stdout, /\x1b\[\?25l/, 'cursor hidden while drawing');
  t.match(tty.stdout, /repair done: 1 exchanges/);

  const watch = await run(script, ['-qfec', `timeout -s INT 8 ${process.execPath} ${cli} status --watch`, '/dev/null'], { env }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  t.match(watch.stdout, /Cluster seen from/, 'status --watch prints the table on a terminal');
  t.match(watch.stdout, /UN\s+127\.0\.0\.1/);
});

t.test('start --replace shows the replacement streaming until the node is normal', async (t) => {
  const clock = { ms: 0 };
  const replacing = (done: number) => doc({ transfers: { phase: 'replacing', done, total: 6, keys: done * 10, bytes: 0, partitions: [] }, members: [{ ...doc().members[0]!, status: 'replacing' }] });
  const sequence = [doc({ members: [{ ...doc().members[0]!, status: 'replacing' }] }), replacing(0), replacing(3), doc()];
  let stop!: (signal: string) => void;
  const io = fakeIo([], clock, {
    readFile: () => '',
    startNode: async () => ({ id: 'n1', url: 'ws://127.0.0.1:1', status: () => (sequence.length > 1 ? sequence.shift()! : sequence[0]!), close: async () => undefined }) as never,
    waitForSignal: () => new Promise<string>((resolve) => (stop = resolve)),
    sleep: async (ms: number) => {
      clock.ms += ms;
      if (sequence.length === 1) setTimeout(() => stop('SIGTERM'), 10);
    },
  });
  const { startCommand } = await import('../lib/cli/node-commands.js');
  t.equal(await startCommand(io, { port: 1, dir: '/tmp/x', replace: 'n-dead' }), 0);
  t.match(io.text(), /^replacing \(0 keys\): 0\/6 partitions/m);
  t.match(io.text(), /^replacing \(30 keys\): 6\/6 partitions \(100%\)/m, 'the last line says all partitions are in');
  t.match(io.text(), /replacement done: 6 partitions streamed; the node is normal/);
});
