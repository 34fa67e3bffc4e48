/**
 * startNode in this process: option checks, the NODE identity file, the HTTP routes
 * (/status, /metrics, /, 404, 405), a two-node cluster in one process with a shared secret,
 * and a clean close.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { isRingkvError } from '../lib/base/errors.js';
import { silentLogger } from '../lib/base/log.js';
import { connect } from '../lib/client/index.js';
import { readSecretFile, startNode } from '../lib/server/index.js';
import { startIdentity } from '../lib/supervisor/index.js';

const root = mkdtempSync(join(tmpdir(), 'ringkv-node-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(root, `n${dirs++}`);

t.test('bad options are TypeError/RangeError naming the option, before anything opens', async (t) => {
  await t.rejects(startNode({ port: 70_000 }), RangeError);
  await t.rejects(startNode({ weight: -1 }), RangeError);
  await t.rejects(startNode({ seeds: ['no-port'] }), TypeError);
  await t.rejects(startNode({ shards: 0 }), RangeError);
  await t.rejects(startNode({ dc: '' }), TypeError);
  await t.rejects(startNode({ secret: '' }), RangeError);
  await t.rejects(startNode({ gossipIntervalMs: 1 }), RangeError);
  await t.rejects(startNode({ autoCleanupIntervalMs: -1 }), RangeError);
  await t.rejects(startNode({ autoCleanupSettleMs: 1.5 }), RangeError);
  await t.rejects(startNode({ antiEntropySweepPeriodMs: 999 }), /antiEntropySweepPeriodMs/);
  await t.rejects(startNode({ maxHintWindowMs: -1 }), /maxHintWindowMs/);
  await t.rejects(startNode({ hintBytesMaxPerTarget: 0.5 }), /hintBytesMaxPerTarget/);
  await t.rejects(startNode({ handoffBytesPerSecond: 0 }), RangeError);
  await t.rejects(startNode({ host: '0.0.0.0', dir: freshDir(), logger: silentLogger }), /loopback/, 'no secret: a public host is refused');
});

t.test('the NODE file keeps the id and raises the generation on every start', async (t) => {
  const dir = freshDir();
  const first = startIdentity(dir, 'node-a', 1_000_000);
  const second = startIdentity(dir, undefined, 1_000_000);
  t.equal(second.id, 'node-a');
  t.ok(second.generation > first.generation, 'generation increases');
  t.throws(() => startIdentity(dir, 'node-b', 1_000_000), /belongs to node node-a/);
  writeFileSync(join(dir, 'NODE'), '{not json');
  try {
    startIdentity(dir, undefined, 1);
    t.fail('corrupt NODE file accepted');
  } catch (error) {
    t.ok(isRingkvError(error, 'KV_CORRUPTION'), 'corrupt NODE file is KV_CORRUPTION');
  }
  writeFileSync(join(dir, 'NODE'), JSON.stringify({ format: 'ringkv-node', formatVersion: 99, id: 'x', generation: 1 }));
  try {
    startIdentity(dir, undefined, 1);
    t.fail('future NODE format accepted');
  } catch (error) {
    t.ok(isRingkvError(error, 'KV_INCOMPATIBLE'), 'another format version is KV_INCOMPATIBLE');
  }
  writeFileSync(join(dir, 'NODE'), JSON.stringify({ format: 'ringkv-node', formatVersion: 1 }));
  t.throws(() => startIdentity(dir, undefined, 1), /lacks an id/);
});

t.test('readSecretFile strips the trailing newline and refuses an empty file', async (t) => {
  const path = join(root, 'secret');
  writeFileSync(path, 'abc\n');
  t.same(Buffer.from(readSecretFile(path)).toString(), 'abc');
  writeFileSync(path, '\n');
  t.throws(() => readSecretFile(path), /empty/);
});

t.test('two nodes in one process: gossip, status, metrics, routes, client round trip', async (t) => {
  const common = { port: 0, secret: 'shh', host: '127.0.0.1', gossipIntervalMs: 50, shards: 1, logger: silentLogger, replication: 2 } as const;
  const a = await startNode({ ...common, dir: freshDir(), id: 'node-a', dc: 'dc1', rack: 'r1' });
  t.teardown(() => a.close());
  const b = await startNode({ ...common, dir: freshDir(), id: 'node-b', seeds: [a.address], rack: 'r2' });
  t.teardown(() => b.close());
  for (let i = 0; i < 200 && a.status().members.filter((m) => m.up && m.status === 'normal').length < 2; i++) await new Promise((r) => setTimeout(r, 50));
  const status = a.status();
  t.same(status.members.map((m) => [m.id, m.up, m.status, m.rack]), [['node-a', true, 'normal', 'r1'], ['node-b', true, 'normal', 'r2']]);
  t.equal(status.underReplicated, false, 'two owners hold N=2');
  t.equal(status.ring.owners.length, 2 ** status.partitionBits, 'an owner per partition');
  t.equal(status.members[0]!.ownershipPercent, 100, 'with N=2 of 2 nodes each holds every partition');

  const client = await connect([a.url, b.url]);
  t.teardown(() => client.close());
  await client.put('k', 'v');
  t.same(Buffer.from((await client.get('k', { consistency: 'ALL' })).values[0]!).toString(), 'v');

  const http = `http://${a.address}`;
  const statusJson = (await (await fetch(`${http}/status`)).json()) as { node: string };
  t.equal(statusJson.node, 'node-a', '/status is JSON for this node');
  const metrics = await (await fetch(`${http}/metrics`)).text();
  t.match(metrics, /ringkv_requests_total\{op="put",outcome="ok"\}/, '/metrics counts requests');
  t.match(metrics, /ringkv_members\{state="up"\} 2/, '/metrics has members');
  t.match(await (await fetch(`${http}/`)).text(), /<title>ringkv dashboard<\/title>/, '/ is the dashboard');
  t.equal((await fetch(`${http}/nope`)).status, 404);
  t.equal((await fetch(`${http}/status`, { method: 'POST' })).status, 405);

  await b.close();
  await b.close();
  t.pass('close is idempotent');
  const c = await startNode({ ...common, dir: join(root, 'n' + (dirs - 1)), seeds: [a.address] });
  t.equal(c.id, 'node-b', 'a restarted node keeps its id');
  t.ok(JSON.parse(readFileSync(join(root, 'n' + (dirs - 1), 'NODE'), 'utf8')).generation > 0);
  await c.close();
});
