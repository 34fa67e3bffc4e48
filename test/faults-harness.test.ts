/**
 * The fault harness itself (issue 5 §5): the fault proxy holds and releases connections by
 * source address without corrupting streams, the fault network's cuts select the right links
 * in proxy mode (and, as root, namespaces are created, removed, and stale ones cleaned), and
 * the history checker catches stale reads, lost writes, failed writes seen and sibling
 * explosions with token coverage, while passing a correct register.
 */

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RingkvError } from '../lib/base/errors.js';
import { seedFromEnvironment } from '../lib/base/rng.js';
import type { Client } from '../lib/client/index.js';
import { createFaultNet, faultMode } from './fixtures/fault-net.js';
import { FaultProxy } from './fixtures/fault-proxy.js';
import { ClusterHistory, History, runRegisterWorkload, tokenCoverage, writeOutcomeOf } from './fixtures/history.js';
import { checkHistory } from './fixtures/sim-history.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function echoServer(host: string): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** A socket from `localAddress` to host:port that collects what it receives. */
async function dial(host: string, port: number, localAddress?: string): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const socket = netConnect({ host, port, ...(localAddress ? { localAddress } : {}) });
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => data, closed };
}

async function until(what: () => boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!what()) {
    if (performance.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

t.test('the fault proxy holds a blocked source without closing it and delivers its bytes intact after unblocking', async (t) => {
  const echo = await echoServer('127.0.0.1');
  t.teardown(() => echo.server.close());
  const proxy = await FaultProxy.listen('127.0.0.1');
  t.teardown(() => proxy.close());
  const early = await dial(proxy.host, proxy.port, '127.0.0.2');
  early.socket.write('before-target;');
  await sleep(100);
  t.equal(early.received(), '', 'nothing flows before the proxy has a target');
  proxy.setTarget({ host: '127.0.0.1', port: echo.port });
  t.ok(await until(() => early.received() === 'before-target;'), 'a connection made before the target flows once it is set');

  const other = await dial(proxy.host, proxy.port, '127.0.0.3');
  proxy.setBlocked(new Set(['127.0.0.2']));
  t.ok(proxy.isHeld('127.0.0.2') && !proxy.isHeld('127.0.0.3'), 'only the named source is held');
  const big = 'x'.repeat(600_000);
  early.socket.write(`held-1;${big};held-2;`);
  other.socket.write('free;');
  t.ok(await until(() => other.received() === 'free;'), 'another source keeps flowing');
  await sleep(200);
  t.equal(early.received(), 'before-target;', 'the held source receives nothing, and its connection stays open');
  t.equal(early.socket.destroyed, false, 'held, not closed');
  proxy.setBlocked(new Set());
  t.ok(await until(() => early.received().length === 'before-target;'.length + 'held-1;'.length + big.length + ';held-2;'.length), 'all held bytes arrive after the block is lifted');
  t.equal(early.received(), `before-target;held-1;${big};held-2;`, 'in order and intact (more than the per-direction buffer bound)');

  proxy.setBlocked(new Set(), true);
  const fresh = await dial(proxy.host, proxy.port, '127.0.0.4');
  fresh.socket.write('new;');
  await sleep(100);
  t.equal(fresh.received(), '', 'blocking all holds new connections too');
  proxy.setBlocked(new Set());
  t.ok(await until(() => fresh.received() === 'new;'), 'and they flow after the block');

  proxy.delayMs = 150;
  const startMs = performance.now();
  other.socket.write('slow;');
  t.ok(await until(() => other.received() === 'free;slow;'), 'delayed bytes arrive');
  t.ok(performance.now() - startMs >= 150 * 2 - 5, 'each direction added its delay');
  proxy.delayMs = 0;

  t.equal(proxy.connectionCount, 3, 'three connections are open');
  other.socket.destroy();
  t.ok(await until(() => proxy.connectionCount === 2), 'a closed client closes its upstream too');
  await proxy.close();
  await Promise.all([early.closed, fresh.closed]);
  t.pass('close() closes every connection');
});

t.test('the fault proxy closes a connection whose node is not listening', async (t) => {
  const proxy = await FaultProxy.listen('127.0.0.1');
  t.teardown(() => proxy.close());
  const unused = await echoServer('127.0.0.1');
  await new Promise((resolve) => unused.server.close(resolve));
  proxy.setTarget({ host: '127.0.0.1', port: unused.port });
  const client = await dial(proxy.host, proxy.port);
  await client.closed;
  t.equal(proxy.connectionCount, 0, 'refused upstream: the client connection is closed, like a refused connect');
});

t.test('proxy mode: partition cuts exactly the named node pairs, isolate also cuts the test host, heal restores all', async (t) => {
  const net = await createFaultNet({ nodes: 3, mode: 'proxy' });
  t.teardown(() => net.close());
  t.equal(net.mode, 'proxy');
  t.comment(net.description);
  const places = [0, 1, 2].map((i) => net.placement(i) as { options: { host: string; advertise: string; sourceAddress: string } });
  t.ok(places.every((p) => p.options.sourceAddress === p.options.host && p.options.advertise.startsWith(`${p.options.host}:`)), 'each node binds, dials from and advertises its own address');
  t.throws(() => net.placement(3), RangeError, 'a node outside the network is refused');
  await t.rejects(net.partition([0], [5]), RangeError);
  const echoes = await Promise.all(places.map((p) => echoServer(p.options.host)));
  t.teardown(() => echoes.forEach((e) => e.server.close()));
  echoes.forEach((e, i) => net.ready!(i, e.port));
  const target = (i: number): [string, number] => {
    const [host, port] = places[i]!.options.advertise.split(':');
    return [host!, Number(port)];
  };
  const from0to1 = await dial(...target(1), places[0]!.options.sourceAddress);
  const from2to1 = await dial(...target(1), places[2]!.options.sourceAddress);
  const host1 = await dial(...target(1));
  await net.partition([0], [1]);
  for (const c of [from0to1, from2to1, host1]) c.socket.write('p;');
  t.ok(await until(() => from2to1.received() === 'p;' && host1.received() === 'p;'), 'node 2 and the test host still reach node 1');
  await sleep(150);
  t.equal(from0to1.received(), '', 'node 0 does not reach node 1');
  await net.heal();
  t.ok(await until(() => from0to1.received() === 'p;'), 'after heal node 0 reaches node 1, held bytes included');
  await net.isolate(1);
  host1.socket.write('i;');
  await sleep(150);
  t.equal(host1.received(), 'p;', 'isolate cuts the test host from the node too');
  await net.heal();
  t.ok(await until(() => host1.received() === 'p;i;'), 'and heal restores it');
  t.equal(await net.delay(0), true, 'the proxy can delay');
  t.same(net.actions.map((a) => a.action), ['partition [0] | [1]', 'heal', 'partition [1] | [0,2]', 'isolate 1', 'heal', 'delay 0 ms'], 'every action is logged');
});

t.test('the mode follows RINGKV_FAULTS, else root with ip/iptables', async (t) => {
  const saved = process.env.RINGKV_FAULTS;
  t.teardown(() => {
    if (saved === undefined) delete process.env.RINGKV_FAULTS;
    else process.env.RINGKV_FAULTS = saved;
  });
  process.env.RINGKV_FAULTS = 'proxy';
  t.equal(faultMode(), 'proxy');
  process.env.RINGKV_FAULTS = 'bogus';
  t.throws(() => faultMode(), RangeError);
  delete process.env.RINGKV_FAULTS;
  t.equal(faultMode(), process.getuid?.() === 0 ? 'netns' : 'proxy', 'default by privileges (ip and iptables are installed here)');
});

t.test('netns mode creates one namespace per node, removes them on close, and removes stale ones of dead runs', async (t) => {
  if (process.getuid?.() !== 0) {
    await t.rejects(createFaultNet({ nodes: 1, mode: 'netns' }), 'without root, netns mode refuses to start (tests then use proxy mode)');
    return;
  }
  const stale = 'rkv-99999-0';
  execFileSync('ip', ['netns', 'add', stale]);
  const net = await createFaultNet({ nodes: 2, mode: 'netns' });
  let closed = false;
  t.teardown(() => (closed ? undefined : net.close()));
  t.match(net.description, /removed stale: .*rkv-99999-0/, 'a namespace of a dead pid is removed at start');
  const list = (): string => execFileSync('ip', ['netns', 'list']).toString();
  t.match(list(), new RegExp(`rkv-${process.pid}-0`), 'namespace of node 0 exists');
  t.match(list(), new RegExp(`rkv-${process.pid}-1`), 'namespace of node 1 exists');
  t.notMatch(list(), /rkv-99999-0/);
  const placement = net.placement(1) as { command: string[]; options: { host: string; advertise: string } };
  t.same(placement.command, ['ip', 'netns', 'exec', `rkv-${process.pid}-1`], 'the node runs inside its namespace');
  t.equal(placement.options.advertise, `${placement.options.host}:7000`);
  await net.partition([0], [1]);
  const rules = execFileSync('ip', ['netns', 'exec', `rkv-${process.pid}-1`, 'iptables', '-S', 'INPUT']).toString();
  t.match(rules, /-A INPUT -s \S+\/32 -j DROP/, 'a partition is an INPUT DROP rule in the receiving namespace');
  await net.heal();
  t.notMatch(execFileSync('ip', ['netns', 'exec', `rkv-${process.pid}-1`, 'iptables', '-S', 'INPUT']).toString(), /DROP/, 'heal flushes it');
  t.comment(`tc netem ${(await net.delay(10)) ? 'available' : 'unavailable'}`);
  await net.close();
  closed = true;
  t.notMatch(list(), new RegExp(`rkv-${process.pid}-`), 'close removes the namespaces');
  t.notMatch(execFileSync('ip', ['-o', 'link', 'show']).toString(), new RegExp(`rkvb${process.pid}\\b`), 'and the bridge');
});

t.test('the checker with token coverage catches stale reads, lost and failed writes and sibling explosion', async (t) => {
  const h = new History();
  const put = (key: string, token: string, outcome: 'ok' | 'fail' | 'info', covers?: string[]): void => {
    h.complete(h.invoke({ process: 0, kind: 'put', key, token, ...(covers ? { covers } : {}) }), outcome);
  };
  const get = (key: string, values: string[]): void => h.complete(h.invoke({ process: 1, kind: 'get', key }), 'ok', { values });
  put('a', 'a1', 'ok');
  put('a', 'a2', 'ok', ['a1']);
  put('a', 'a3', 'ok', ['a2']);
  get('a', ['a3']);
  t.same(checkHistory(h, () => ['a3'], tokenCoverage(h)), [], 'a chain of writes supersedes transitively');
  get('a', ['a2']);
  put('b', 'b1', 'fail');
  get('b', ['b1']);
  put('c', 'c1', 'ok');
  put('c', 'c2', 'info');
  get('c', ['c1', 'c2', 'c9']);
  const kinds = [...new Set(checkHistory(h, (key) => (key === 'c' ? [] : ['a3']), tokenCoverage(h)).map((a) => a.kind))].sort();
  t.same(kinds, ['failed-write-visible', 'garbage-read', 'lost-write', 'sibling-explosion', 'stale-read', 'superseded-sibling'], 'each violation is reported');
});

/** An in-memory register as a Client: `stale` makes every other read return the previous value. */
function fakeClient(stale: boolean): Client {
  const state = new Map<string, { current: string[]; previous: string[] }>();
  let reads = 0;
  let writes = 0;
  const encoder = new TextEncoder();
  return {
    async get(key: string) {
      await sleep(1);
      const s = state.get(key) ?? { current: [], previous: [] };
      const values = stale && reads++ % 2 === 1 ? s.previous : s.current;
      return { found: values.length > 0, values: values.map((v) => encoder.encode(v)), context: new Uint8Array() };
    },
    async put(key: string, value: string) {
      await sleep(1);
      if (writes++ % 7 === 3) throw new RingkvError('KV_TIMEOUT', 'may or may not have been applied', {});
      if (writes % 11 === 5) throw new RingkvError('KV_UNAVAILABLE', 'refused', {});
      const s = state.get(key) ?? { current: [], previous: [] };
      state.set(key, { current: [value], previous: s.current });
      return { context: new Uint8Array() };
    },
  } as unknown as Client;
}

t.test('the register workload records a correct register without anomaly and a stale one with stale reads', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed}`);
  for (const stale of [false, true]) {
    const h = new ClusterHistory();
    h.attachFaults([{ atMs: performance.now(), action: 'nothing' }]);
    const stopAt = performance.now() + 300;
    await runRegisterWorkload(h, { clients: [fakeClient(stale)], keys: ['k1', 'k2'], writersPerKey: 1, readers: 2, seed, done: () => performance.now() > stopAt, thinkMs: 1 });
    const counts = h.counts();
    t.ok(counts['write-ok']! > 0 && counts['write-info']! > 0 && counts['write-fail']! > 0, `ok, info and fail writes recorded: ${JSON.stringify(counts)}`);
    const kinds = new Set(h.check().map((a) => a.kind));
    if (stale) t.ok(kinds.has('stale-read'), 'stale reads are caught');
    else t.same([...kinds], [], 'a correct register has no anomaly');
    const events = h.events();
    t.ok(events.every((e, i) => i === 0 || events[i - 1]!.timeMs <= e.timeMs), 'events are in time order');
    t.ok(events.some((e) => e.process === 'nemesis' && e.value === 'nothing'), 'nemesis actions are in the log');
    const path = join(tmpdir(), `ringkv-history-${process.pid}.jsonl`);
    h.save(path);
    t.equal(readFileSync(path, 'utf8').trim().split('\n').length, events.length, 'save writes one JSON line per event');
    rmSync(path);
  }
  t.same(writeOutcomeOf(new RingkvError('KV_UNAVAILABLE', 'x', {})), { outcome: 'fail', code: 'KV_UNAVAILABLE' }, 'unavailable is a definite failure');
  t.same(writeOutcomeOf(new RingkvError('KV_INDETERMINATE', 'x', {})).outcome, 'info');
  t.same(writeOutcomeOf(new Error('boom')), { outcome: 'info', code: 'Error' }, 'anything unknown is indeterminate');
});
