/**
 * The RESP front door in a two-node cluster in one process (N=2): a TTL written through one
 * node is carried to the other replica with the value (it is part of the stored object), read
 * and expired there; the remote client's put takes { ttlMs } too; SET through either node
 * supersedes what its coordinating replica holds.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Redis } from 'ioredis';
import { silentLogger } from '../lib/base/log.js';
import { connect } from '../lib/client/index.js';
import { startNode } from '../lib/server/index.js';

const root = mkdtempSync(join(tmpdir(), 'ringkv-resp-cluster-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test('TTL travels with the value between replicas; expiry holds on both', { timeout: 180_000 }, async (t) => {
  const common = { port: 0, respPort: 0, secret: 'shh', host: '127.0.0.1', gossipIntervalMs: 50, shards: 1, logger: silentLogger, replication: 2 } as const;
  const a = await startNode({ ...common, dir: join(root, 'a'), id: 'node-a', rack: 'r1' });
  t.teardown(() => a.close());
  const b = await startNode({ ...common, dir: join(root, 'b'), id: 'node-b', seeds: [a.address], rack: 'r2' });
  t.teardown(() => b.close());
  await until(async () => a.status().members.filter((m) => m.up && m.status === 'normal').length === 2 && b.status().members.filter((m) => m.up && m.status === 'normal').length === 2, 'two normal members');
  const viaA = new Redis({ port: a.respPort!, lazyConnect: true, maxRetriesPerRequest: 0 });
  const viaB = new Redis({ port: b.respPort!, lazyConnect: true, maxRetriesPerRequest: 0 });
  t.teardown(() => (viaA.disconnect(), viaB.disconnect()));
  await viaA.connect();
  await viaB.connect();
  t.equal(await viaA.set('k', 'v', 'PX', 600_000), 'OK');
  // Each node reads at ONE from itself only: both replicas hold the value and its expiry.
  await viaB.call('RINGKV.CONSISTENCY', 'ONE');
  await viaA.call('RINGKV.CONSISTENCY', 'ONE');
  t.equal(await viaB.get('k'), 'v', 'the other replica has the value');
  const pttl = await viaB.pttl('k');
  t.ok(pttl > 500_000 && pttl <= 600_000, `...and its expiry (PTTL ${pttl})`);
  t.equal(await viaA.pexpire('k', 300), 1, 'a shorter expiry through the first node');
  await until(async () => (await viaB.get('k')) === null && (await viaA.get('k')) === null, 'expiry on both nodes', 30_000);
  t.equal(await viaB.exists('k'), 0);
  await viaA.call('RINGKV.CONSISTENCY', 'ALL');
  t.equal(await viaA.get('k'), null, 'at ALL too');

  await viaB.set('s', 'one');
  await viaA.set('s', 'two');
  await viaB.set('s', 'three');
  const all = (await viaA.callBuffer('RINGKV.GET', 's')) as [Buffer, Buffer[]];
  t.same(all[1].map((v) => v.toString()), ['three'], 'SETs through either node leave one value');

  const client = await connect([a.url, b.url]);
  t.teardown(() => client.close());
  await client.put('c', 'temp', { ttlMs: 600_000 });
  t.equal(await viaB.get('c'), 'temp');
  t.ok((await viaB.pttl('c')) > 500_000, 'the client put carried its TTL');
  // (A blind put to 'c' would be a concurrent sibling of 'temp', which stays: a fresh key.)
  await client.put('c2', 'short', { ttlMs: 200 });
  await until(async () => !(await client.get('c2')).found, 'client-side expiry', 30_000);
  await t.rejects(client.put('c', 'x', { ttlMs: 0 }), RangeError);
});
