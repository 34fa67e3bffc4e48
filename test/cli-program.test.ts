/**
 * The `ringkv` CLI run in-process (runCli with a fake CliIo): flag parsing, what each command
 * prints, exit codes (0 ok, 1 `error KV_CODE: message`, 2 usage), `(not found)` exiting 0,
 * status/ring/endpoints formatting from a /status document (endpoints computed with
 * lib/ring), start and dev-cluster wiring with fake nodes and children, and GET /status
 * over a real loopback HTTP server.
 */

import t from 'tap';
import { createServer, type Server } from 'node:http';
import { ErrorCode, RingkvError } from '../lib/base/errors.js';
import type { Client, ClientOptions, GetResult, RequestOptions } from '../lib/client/index.js';
import type { ChildHandle, CliIo } from '../lib/cli/cli-io.js';
import { printable, statusUrlOf } from '../lib/cli/cli-io.js';
import { compactRanges } from '../lib/cli/cluster-commands.js';
import { runCli } from '../lib/cli/program.js';
import { fetchStatus } from '../lib/cli/status-fetch.js';
import { computeRing } from '../lib/ring/index.js';
import type { NodeOptions, RingkvNode, StatusJson } from '../lib/server/index.js';

interface Recorded {
  urls: string[][];
  clientOptions: ClientOptions[];
  calls: { op: string; key: unknown; value?: unknown; options?: RequestOptions }[];
  closed: number;
}

function fakeClient(rec: Recorded, getResult: GetResult | Error): Client {
  const context = new Uint8Array([1, 2, 3]);
  return {
    get: async (key, options) => {
      rec.calls.push({ op: 'get', key, options });
      if (getResult instanceof Error) throw getResult;
      return getResult;
    },
    put: async (key, value, options) => {
      rec.calls.push({ op: 'put', key, value, options });
      return { context };
    },
    delete: async (key, options) => {
      rec.calls.push({ op: 'delete', key, options });
      return { context };
    },
    batch: async () => [],
    ringView: () => undefined,
    refreshRing: async () => undefined,
    nodeHealth: () => [],
    close: async () => {
      rec.closed++;
    },
    [Symbol.asyncDispose]: async () => undefined,
  };
}

function statusDoc(): StatusJson {
  const members = ['node-a', 'node-b', 'node-c', 'node-d'].map((id, i) => ({
    id,
    address: `127.0.0.1:${7070 + i}`,
    url: `ws://127.0.0.1:${7070 + i}`,
    dc: i < 3 ? 'dc1' : 'dc2',
    rack: `rack${i % 2}`,
    weight: 1,
    status: (['normal', 'normal', 'joining', 'leaving'] as const)[i]!,
    up: i !== 1,
    generation: 1,
    heartbeat: 5,
    partitions: 0,
    ownershipPercent: 66.666,
    ...(i === 0 ? { loadBytes: 5 * 1024 * 1024 } : {}),
  }));
  const ring = computeRing(members, { partitionBits: 4, replication: 2 });
  const owners = Array.from({ length: 16 }, (_, p) => ring.ownerOf(p));
  return {
    node: 'node-a',
    version: '0.1.0',
    address: '127.0.0.1:7070',
    uptimeMs: 1000,
    partitionBits: 4,
    replication: 2,
    underReplicated: false,
    hints: [],
    hintsDelivered: 0,
    antiEntropy: { exchanges: 0, failed: 0, keysRepaired: 0, bytesSent: 0, bytesReceived: 0, repair: { running: false, done: 0, total: 0, keysRepaired: 0 } },
    warnings: [],
    members,
    shards: [],
    ring: { owners },
  };
}

interface Harness {
  io: CliIo;
  rec: Recorded;
  out: () => string;
  err: () => string;
  started: NodeOptions[];
  spawned: string[][];
  killed: string[];
  statusUrls: string[];
  repairUrls: string[];
  closedNodes: number;
  childExit: (code: number | null) => void;
}

function harness(
  options: { getResult?: GetResult | Error; env?: Record<string, string>; status?: StatusJson; statuses?: StatusJson[]; signal?: Promise<string>; cleanup?: unknown } = {},
): Harness {
  let out = '';
  let err = '';
  const rec: Recorded = { urls: [], clientOptions: [], calls: [], closed: 0 };
  let exitChild!: (code: number | null) => void;
  const firstChildExit = new Promise<number | null>((resolve) => (exitChild = resolve));
  const h: Harness = {
    rec,
    out: () => out,
    err: () => err,
    started: [],
    spawned: [],
    killed: [],
    statusUrls: [],
    repairUrls: [],
    closedNodes: 0,
    childExit: (code) => exitChild(code),
    io: {
      out: (s) => (out += s),
      err: (s) => (err += s),
      env: options.env ?? {},
      connect: async (urls, o) => {
        rec.urls.push(urls);
        rec.clientOptions.push(o);
        return fakeClient(rec, options.getResult ?? { found: true, values: [new TextEncoder().encode('world')], context: new Uint8Array([7]) });
      },
      fetchStatus: async (url) => {
        h.statusUrls.push(url);
        return options.statuses?.shift() ?? options.status ?? statusDoc();
      },
      startRepair: async (url) => {
        h.repairUrls.push(url);
      },
      postJson: async (url) => {
        h.repairUrls.push(url);
        return options.cleanup ?? { dropped: [], entries: 0, kept: [] };
      },
      sleep: async () => undefined,
      startNode: async (o) => {
        h.started.push(o);
        const node: RingkvNode = {
          id: 'node-x',
          port: o.port ?? 7070,
          url: `ws://127.0.0.1:${o.port}`,
          status: () => statusDoc(),
          close: async () => {
            h.closedNodes++;
          },
          [Symbol.asyncDispose]: async () => undefined,
        } as unknown as RingkvNode;
        return node;
      },
      readFile: (path) => (path === '/secret' ? 's3cret\n' : (() => { throw new Error(`ENOENT ${path}`); })()),
      spawnRingkv: (args) => {
        const index = h.spawned.length;
        h.spawned.push(args);
        let resolveExit!: (code: number | null) => void;
        const exited = new Promise<number | null>((resolve) => (resolveExit = resolve));
        if (index === 1) void firstChildExit.then((code) => resolveExit(code));
        const child: ChildHandle = {
          pid: 100 + index,
          kill: (signal) => {
            h.killed.push(`${index}:${signal}`);
            resolveExit(null);
          },
          exited,
        };
        return child;
      },
      waitForSignal: () => options.signal ?? Promise.resolve('SIGINT'),
      version: '9.9.9',
    },
  };
  return h;
}

t.test('put, get and del send what the flags say and print OK/value/context', async (t) => {
  const h = harness();
  t.equal(await runCli(['--url', '10.0.0.1:7000', 'put', 'k', 'v', '--w', '3', '--consistency', 'quorum', '--context', 'AQID'], h.io), 0);
  t.same(h.rec.urls[0], ['ws://10.0.0.1:7000']);
  t.same(h.rec.calls[0], { op: 'put', key: 'k', value: 'v', options: { consistency: 'QUORUM', w: 3, context: new Uint8Array([1, 2, 3]) } });
  t.equal(h.out(), 'OK\ncontext: AQID\n');
  t.equal(h.rec.closed, 1, 'the client is closed after the command');

  const g = harness({ env: { RINGKV_URL: 'ws://db:1', RINGKV_TOKEN: 'tok' } });
  t.equal(await runCli(['get', 'k', '--r', '1', '--timeout', '250'], g.io), 0);
  t.same(g.rec.urls[0], ['ws://db:1']);
  t.same(g.rec.clientOptions[0], { token: 'tok', timeoutMs: 250 });
  t.same(g.rec.calls[0]!.options, { r: 1 });
  t.equal(g.out(), 'world\ncontext: Bw==\n');

  const d = harness();
  t.equal(await runCli(['del', 'k', '--token', 'x', '--ca-file', '/ca.pem'], d.io), 0);
  t.same(d.rec.urls[0], ['ws://127.0.0.1:7070'], 'default url');
  t.same(d.rec.clientOptions[0], { token: 'x', caFile: '/ca.pem' });
  t.same(d.rec.calls.map((c) => c.op), ['get', 'delete'], 'del without --context reads first');
  t.same(d.rec.calls[1]!.options!.context, new Uint8Array([7]), '...and deletes with the context it read');

  const dc = harness();
  t.equal(await runCli(['del', 'k', '--context', 'AQID'], dc.io), 0);
  t.same(dc.rec.calls.map((c) => c.op), ['delete'], 'del with --context deletes exactly what that context saw');

  const b = harness();
  t.equal(await runCli(['put', 'k', 'AAEC', '--base64'], b.io), 0);
  t.same(b.rec.calls.map((c) => c.op), ['get', 'put'], 'put without --context reads first');
  t.same(b.rec.calls[1]!.value, new Uint8Array([0, 1, 2]));
  t.same(b.rec.calls[1]!.options!.context, new Uint8Array([7]), '...and supersedes what it read');

  const fresh = harness({ getResult: { found: false, values: [], context: new Uint8Array([]) } });
  t.equal(await runCli(['put', 'new', 'v', '--consistency', 'all'], fresh.io), 0);
  t.same(fresh.rec.calls[0]!.options, { consistency: 'ALL' }, 'the read uses the consistency asked for');
  t.same(fresh.rec.calls[1]!.options, { consistency: 'ALL' }, 'a key never written: no context');

  const blind = harness();
  t.equal(await runCli(['put', 'k', 'v', '--blind'], blind.io), 0);
  t.same(blind.rec.calls.map((c) => [c.op, c.options?.context]), [['put', undefined]], '--blind writes without reading or a context');
  t.equal(await runCli(['put', 'k', 'v', '--blind', '--context', 'AQID'], harness().io), 2, '--blind with --context is a usage error');

  for (const [ttl, ms] of [['30', 30_000], ['500ms', 500], ['1.5s', 1_500], ['2m', 120_000], ['1h', 3_600_000]] as const) {
    const ttlHarness = harness();
    t.equal(await runCli(['put', 'k', 'v', '--blind', '--ttl', ttl], ttlHarness.io), 0);
    t.same(ttlHarness.rec.calls[0]!.options, { ttlMs: ms }, `--ttl ${ttl}`);
  }
  const badTtl = harness();
  t.equal(await runCli(['put', 'k', 'v', '--ttl', 'soon'], badTtl.io), 2);
  t.match(badTtl.err(), /duration/);
});

t.test('get prints siblings numbered, binary as base64, and (not found) with exit 0', async (t) => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const s = harness({ getResult: { found: true, values: [enc('one'), new Uint8Array([0xff, 0x00])], context: new Uint8Array([9]) } });
  t.equal(await runCli(['get', 'k'], s.io), 0);
  t.equal(s.out(), '1) one\n2) base64:/wA=\ncontext: CQ==\n');
  const b64 = harness({ getResult: { found: true, values: [enc('one')], context: new Uint8Array([]) } });
  t.equal(await runCli(['get', 'k', '--base64'], b64.io), 0);
  t.equal(b64.out(), 'b25l\n', 'no context line when the context is empty');
  const missing = harness({ getResult: { found: false, values: [], context: new Uint8Array([4]) } });
  t.equal(await runCli(['get', 'nope'], missing.io), 0);
  t.equal(missing.out(), '(not found)\ncontext: BA==\n');
  t.equal(printable(enc('tab\tand\nnewline'), false), 'tab\tand\nnewline');
  t.equal(printable(enc('bell\u0007'), false), 'base64:YmVsbAc=');
});

t.test('errors exit 1 with "error KV_CODE: message"; usage mistakes exit 2', async (t) => {
  const e = harness({ getResult: new RingkvError(ErrorCode.unavailable, 'no node is reachable') });
  t.equal(await runCli(['get', 'k'], e.io), 1);
  t.equal(e.err(), 'error KV_UNAVAILABLE: no node is reachable\n');
  const other = harness({ getResult: new Error('boom') });
  t.equal(await runCli(['get', 'k'], other.io), 1);
  t.equal(other.err(), 'error: boom\n');
  const typed = harness({ getResult: new RangeError('options.r must be ...') });
  t.equal(await runCli(['get', 'k'], typed.io), 2);
  for (const argv of [
    [],
    ['get'],
    ['put', 'k'],
    ['get', 'k', '--r', '0'],
    ['get', 'k', '--r', 'two'],
    ['put', 'k', 'v', '--context', 'not base64!'],
    ['put', 'k', '@@', '--base64'],
    ['--url', 'http://x:1', 'get', 'k'],
    ['frobnicate'],
    ['start', '--port', '70000'],
    ['start', '--seeds', 'nohostport'],
    ['start', '--weight', '-1'],
    ['start', '--log-level', 'loud'],
    ['dev-cluster', '--nodes', '0'],
  ]) {
    const u = harness();
    t.equal(await runCli(argv, u.io), 2, `usage: ${argv.join(' ') || '(nothing)'}`);
    t.ok(u.err().length > 0);
    t.same(u.rec.calls, [], 'nothing sent');
  }
  const help = harness();
  t.equal(await runCli(['--help'], help.io), 0);
  t.match(help.out(), /Usage: ringkv \[options\] \[command\][\s\S]*put \[options\] <key> <value>[\s\S]*Exit codes: 0 ok/);
  const version = harness();
  t.equal(await runCli(['--version'], version.io), 0);
  t.equal(version.out(), '9.9.9\n');
  const getHelp = harness();
  t.equal(await runCli(['get', '--help'], getHelp.io), 0);
  t.match(getHelp.out(), /--consistency <level>/);
});

t.test('status prints one nodetool-style row per node, grouped by datacenter', async (t) => {
  const h = harness();
  t.equal(await runCli(['--url', 'wss://db.example:7443', 'status'], h.io), 0);
  t.same(h.statusUrls, ['https://db.example:7443/status']);
  const out = h.out();
  t.match(out, /Datacenter: dc1\n=+\n/);
  t.match(out, /UN  127\.0\.0\.1:7070 +5\.00 MiB +66\.7% +0 +node-a +rack0/);
  t.match(out, /DN  127\.0\.0\.1:7071 +\? /);
  t.match(out, /UJ  127\.0\.0\.1:7072/);
  t.match(out, /Datacenter: dc2[\s\S]*UL  127\.0\.0\.1:7073/);
  const warn = harness({ status: { ...statusDoc(), underReplicated: true, warnings: [] } });
  await runCli(['status'], warn.io);
  t.match(warn.out(), /WARNING: fewer nodes/);
  const moving = harness({ status: { ...statusDoc(), transfers: { phase: 'replacing', done: 3, total: 10, keys: 42, bytes: 2048, partitions: [] } } });
  await runCli(['status'], moving.io);
  t.match(moving.out(), /Transfers: replacing, 3\/10 partitions, 42 keys, 2\.00 KiB/, 'a replace in progress shows its progress');
  const told = harness({ status: { ...statusDoc(), underReplicated: true, warnings: ['only 1 node'], replication: { dc1: 2, dc2: 1 } } });
  await runCli(['status'], told.io);
  t.match(told.out(), /WARNING: only 1 node/);
  t.match(told.out(), /replication dc1:2, dc2:1/);
  t.notMatch(told.out(), /fewer nodes/, "the node's own warning is enough");
  const json = harness();
  await runCli(['status', '--json'], json.io);
  t.same(JSON.parse(json.out()), statusDoc());
});

t.test('ring groups partitions per owner as compact ranges; endpoints computes the preference list', async (t) => {
  t.equal(compactRanges([0, 1, 2, 5, 9, 10, 11]), '0-2,5,9-11');
  t.equal(compactRanges([]), '');
  const h = harness();
  t.equal(await runCli(['ring'], h.io), 0);
  const doc = statusDoc();
  const aOwns = doc.ring.owners.map((o, p) => (o === 'node-a' ? p : -1)).filter((p) => p >= 0);
  t.match(h.out(), /Partitions: 16 \(2\^4\)/);
  t.match(h.out(), new RegExp(`node-a +127\\.0\\.0\\.1:7070 +UN +${aOwns.length} +[0-9.]+% +${compactRanges(aOwns)}`));
  const e = harness();
  t.equal(await runCli(['endpoints', 'hello'], e.io), 0);
  const ring = computeRing(doc.members, { partitionBits: 4, replication: 2 });
  const replicas = ring.replicasOfKey(new TextEncoder().encode('hello'));
  t.match(e.out(), new RegExp(`^key "hello": token 0x[0-9a-f]{8}, partition ${ring.partitionOfKey(new TextEncoder().encode('hello'))}\n`));
  t.match(e.out(), new RegExp(`1 +${replicas[0]} [\\s\\S]*2 +${replicas[1]} `));
  t.notMatch(e.out(), /WARNING/);
  const skewed = statusDoc();
  skewed.ring.owners = skewed.ring.owners.map(() => 'node-z');
  const w = harness({ status: skewed });
  await runCli(['endpoints', 'hello'], w.io);
  t.match(w.out(), /WARNING: node-a reports node-z as the owner/);
  t.equal(statusUrlOf('ws://h:1'), 'http://h:1/status');
});

t.test('start passes its flags to startNode, reads the secret from a file, and stops on a signal', async (t) => {
  const h = harness();
  const argv = ['start', '--port', '7171', '--host', '0.0.0.0', '--dir', '/d', '--seeds', 'a:1, b:2', '--dc', 'east', '--rack', 'r9'];
  argv.push('--weight', '2', '--shards', '3', '--log-level', 'warn', '--secret-file', '/secret', '--tombstone-grace-seconds', '60', '--stream-mib-per-second', '3');
  t.equal(await runCli(argv, h.io), 0);
  t.same(h.started[0], { port: 7171, host: '0.0.0.0', dir: '/d', seeds: ['a:1', 'b:2'], dc: 'east', rack: 'r9', weight: 2, shards: 3, logLevel: 'warn', secret: 's3cret', tombstoneGraceMs: 60_000, handoffBytesPerSecond: 3 * 1024 * 1024 });
  t.match(h.out(), /ringkv node node-x listening on ws:\/\/127\.0\.0\.1:7171[\s\S]*SIGINT: stopping node-x[\s\S]*stopped\n$/);
  t.equal(h.closedNodes, 1);
  const env = harness({ env: { RINGKV_SECRET: 'envsecret', RINGKV_CLIENT_TOKEN: 'ct' } });
  t.equal(await runCli(['start'], env.io), 0);
  t.same(env.started[0], { port: 7070, dir: './data', secret: 'envsecret', clientToken: 'ct' });
  const resp = harness();
  resp.io.startNode = async (options) => {
    resp.started.push(options);
    return { ...(await harness().io.startNode(options)), respPort: 6390 };
  };
  t.equal(await runCli(['start', '--resp-port', '6390', '--clock-skew-ms', '20'], resp.io), 0);
  t.same(resp.started[0], { port: 7070, dir: './data', respPort: 6390, clockSkewMs: 20 });
  t.match(resp.out(), /redis-cli -p 6390/);
  const missing = harness();
  t.equal(await runCli(['start', '--secret-file', '/nope'], missing.io), 1);
  t.match(missing.err(), /ENOENT/);
  const failing = harness();
  failing.io.startNode = async () => {
    throw new RingkvError(ErrorCode.locked, 'the data directory is locked');
  };
  t.equal(await runCli(['start'], failing.io), 1);
  t.equal(failing.err(), 'error KV_LOCKED: the data directory is locked\n');
});

t.test('start passes --advertise and --replace, and exits 1 when the cluster refuses the node later', async (t) => {
  const h = harness();
  t.equal(await runCli(['start', '--advertise', 'pod-0.svc:7070', '--replace', '10.0.0.3:7070'], h.io), 0);
  t.same(h.started[0], { port: 7070, dir: './data', advertise: 'pod-0.svc:7070', replace: '10.0.0.3:7070' });
  const refused = harness();
  const start = refused.io.startNode;
  refused.io.startNode = async (o) => ({ ...(await start(o)), refused: Promise.resolve(new RingkvError(ErrorCode.incompatible, 'node node-x was removed')) });
  refused.io.waitForSignal = () => new Promise(() => undefined);
  t.equal(await runCli(['start'], refused.io), 1);
  t.match(refused.err(), /error KV_INCOMPATIBLE: node node-x was removed/);
});

t.test('dev-cluster starts N loopback nodes seeded by the first and stops them all', async (t) => {
  const h = harness();
  t.equal(await runCli(['dev-cluster', '--nodes', '3', '--base-port', '7200', '--dir', '/tmp/dc', '--shards', '2'], h.io), 0);
  t.same(h.spawned, [
    ['start', '--host', '127.0.0.1', '--port', '7200', '--dir', '/tmp/dc/node-0', '--shards', '2', '--resp-port', '6380'],
    ['start', '--host', '127.0.0.1', '--port', '7201', '--dir', '/tmp/dc/node-1', '--seeds', '127.0.0.1:7200', '--shards', '2', '--resp-port', '6381'],
    ['start', '--host', '127.0.0.1', '--port', '7202', '--dir', '/tmp/dc/node-2', '--seeds', '127.0.0.1:7200', '--shards', '2', '--resp-port', '6382'],
  ]);
  t.match(h.out(), /node 2: ws:\/\/127\.0\.0\.1:7202  redis-cli -p 6382/);
  t.same(h.killed, ['0:SIGTERM', '1:SIGTERM', '2:SIGTERM']);
  t.match(h.out(), /all nodes stopped\n$/);

  const early = harness({ signal: new Promise(() => undefined) });
  const run = runCli(['dev-cluster', '--nodes', '2', '--log-level', 'debug'], early.io);
  await new Promise((resolve) => setImmediate(resolve));
  early.childExit(3);
  t.equal(await run, 1);
  t.match(early.err(), /node 1 exited early \(code 3\)/);
  t.same(early.spawned[1]!.slice(-4), ['--log-level', 'debug', '--resp-port', '6381']);
});

async function serve(handler: (url: string, headers: Record<string, unknown>) => [number, string] | 'hang'): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    const answer = handler(request.url ?? '', request.headers);
    if (answer === 'hang') return;
    response.writeHead(answer[0], { 'content-type': 'application/json' });
    response.end(answer[1]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${address.port}/status` };
}

t.test('GET /status over HTTP: token header, HTTP errors, bad bodies, refusal and timeout', async (t) => {
  let seenAuth: unknown;
  let mode: 'ok' | '500' | 'text' | 'shape' | 'hang' = 'ok';
  const { server, url } = await serve((_, headers) => {
    seenAuth = headers.authorization;
    if (mode === 'hang') return 'hang';
    if (mode === '500') return [500, '{}'];
    if (mode === 'text') return [200, 'hello'];
    if (mode === 'shape') return [200, '{"members": 3}'];
    return [200, JSON.stringify(statusDoc())];
  });
  t.teardown(() => server.closeAllConnections());
  t.teardown(() => server.close());
  t.same(await fetchStatus(url, { token: 'tok', timeoutMs: 5000 }), statusDoc());
  t.equal(seenAuth, 'Bearer tok');
  mode = '500';
  await t.rejects(fetchStatus(url, { timeoutMs: 5000 }), { code: 'KV_UNAVAILABLE', message: /HTTP 500/ });
  mode = 'text';
  await t.rejects(fetchStatus(url, { timeoutMs: 5000 }), { code: 'KV_BAD_REQUEST', message: /not return JSON/ });
  mode = 'shape';
  await t.rejects(fetchStatus(url, { timeoutMs: 5000 }), { code: 'KV_BAD_REQUEST', message: /status object/ });
  mode = 'hang';
  await t.rejects(fetchStatus(url, { timeoutMs: 50 }), { code: 'KV_TIMEOUT' });
  await t.rejects(fetchStatus('http://127.0.0.1:1/status', { timeoutMs: 5000 }), { code: 'KV_UNAVAILABLE', message: /cannot reach/ });
});

t.test('hints lists the hints a node holds per target, or says it holds none', async (t) => {
  const none = harness();
  t.equal(await runCli(['hints'], none.io), 0);
  t.match(none.out(), /node-a holds no hints \(0 delivered since start\)/);
  const some = harness({
    status: { ...statusDoc(), hintsDelivered: 7, hints: [{ target: 'node-b', hints: 3, bytes: 300, oldestAgeMs: 12_000, skippedPartitions: [4, 5] }] },
  });
  t.equal(await runCli(['hints'], some.io), 0);
  t.match(some.out(), /Hints held by node-a \(7 delivered since start\)/);
  t.match(some.out(), /node-b +3 +300 +12s +4,5/);
});

t.test('repair starts a Merkle repair on the node and draws its progress until done', async (t) => {
  const progress = (running: boolean, done: number): StatusJson => {
    const doc = statusDoc();
    return { ...doc, antiEntropy: { ...doc.antiEntropy, repair: { running, done, total: 4, keysRepaired: done * 2 } } };
  };
  const h = harness({ statuses: [progress(true, 1), progress(true, 3), progress(false, 4)] });
  t.equal(await runCli(['--url', '127.0.0.1:7071', 'repair', '--partition', '5'], h.io), 0);
  t.same(h.repairUrls, ['http://127.0.0.1:7071/repair?partition=5']);
  t.match(h.err(), /^repair: 1\/4 exchanges \(25%\), [\d.]+\/s, ETA /m, 'a plain line when it starts');
  t.match(h.err(), /^repair: 4\/4 exchanges \(100%\), [\d.]+\/s, ETA 0s$/m, 'and when it ends');
  t.notMatch(h.err(), /\x1b/, 'no escape codes off a terminal');
  t.equal(h.out(), 'repair done: 4 exchanges, 8 keys repaired\n');
  const all = harness({ statuses: [progress(false, 4)] });
  await runCli(['repair'], all.io);
  t.same(all.repairUrls, ['http://127.0.0.1:7070/repair'], 'without --partition: every partition');
  t.equal(await runCli(['repair', '--partition', 'x'], harness().io), 2, 'a bad partition is a usage error');
});

t.test('cleanup asks the node to drop partitions it no longer replicates and reports what it kept', async (t) => {
  const h = harness({ cleanup: { dropped: [1, 2, 3, 7], entries: 40, kept: [] } });
  t.equal(await runCli(['--url', '127.0.0.1:7072', 'cleanup'], h.io), 0);
  t.same(h.repairUrls, ['http://127.0.0.1:7072/cleanup']);
  t.equal(h.out(), 'cleanup: dropped 4 partition(s), 40 entries (1-3,7)\n');
  const k = harness({ cleanup: { dropped: [], entries: 0, kept: [{ partition: 9, reason: 'a replica is down' }] } });
  t.equal(await runCli(['cleanup'], k.io), 1, 'a partition kept back is exit 1');
  t.match(k.out(), /kept partition 9: a replica is down/);
});

t.test('start passes the anti-entropy sweep period and the max hint window to startNode, in ms', async (t) => {
  const h = harness();
  t.equal(await runCli(['start', '--anti-entropy-sweep-seconds', '1800', '--max-hint-window-seconds', '600'], h.io), 0);
  t.same(h.started[0], { port: 7070, dir: './data', antiEntropySweepPeriodMs: 1_800_000, maxHintWindowMs: 600_000 });
  const bad = harness();
  t.not(await runCli(['start', '--anti-entropy-sweep-seconds', '0'], bad.io), 0, 'a zero sweep period is refused');
  t.same(bad.started, [], 'and no node starts');
});
