/**
 * GET answered from the row cache (lib/store/row-cache.ts, CoordinatorDriver.readNow) on real
 * nodes over RESP: a cached value expires exactly when its TTL says, a key whose only replica
 * is another node is never answered from this one's cache, and a write that reaches the
 * owning node through another node (forwarded) is seen by the next GET there. GETs of a
 * pipeline answered by the listener at once (plainGetAt) keep their order with the rest.
 */

import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { silentLogger } from '../lib/base/log.js';
import { startNode, type RingkvNode } from '../lib/server/index.js';
import { plainGetAt, plainGetKey } from '../lib/protocol/resp-parser.js';
import { startRespNode } from './fixtures/resp-node.js';

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function rowCacheHits(node: RingkvNode): Promise<number> {
  const text = await (await fetch(`http://${node.address}/metrics`)).text();
  return Number(/ringkv_row_cache_lookups_total\{result="hit"\} (\d+)/.exec(text)?.[1] ?? 'NaN');
}

t.test('a cached value is served from the cache and still expires on time', { timeout: 120_000 }, async (t) => {
  const { node, port, close } = await startRespNode();
  t.teardown(close);
  const redis = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0 });
  t.teardown(() => redis.disconnect());
  await redis.connect();
  t.equal(await redis.set('plain', 'v1'), 'OK');
  for (let i = 0; i < 50; i++) t.equal(await redis.get('plain'), 'v1');
  t.equal(await redis.get('never-written'), null);
  t.equal(await redis.get('never-written'), null, 'absence, cached');
  t.equal(await redis.set('plain', 'v2'), 'OK');
  t.equal(await redis.get('plain'), 'v2', 'a SET drops the cached value');
  await until(async () => (await rowCacheHits(node)) > 40, 'row cache hits in /metrics (refreshed every 2 s)');

  t.equal(await redis.set('short', 'soon-gone', 'PX', 1500), 'OK');
  t.equal(await redis.get('short'), 'soon-gone');
  t.equal(await redis.get('short'), 'soon-gone', 'served again (from the cache)');
  await until(async () => (await redis.get('short')) === null, 'the cached value to expire', 20_000);
  t.equal(await redis.get('short'), null, 'and it stays expired');
  t.equal(await redis.exists('short'), 0);
});

t.test('a sole replica elsewhere, and writes that reach the owner through another node', { timeout: 180_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ringkv-rowcache-nodes-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const common = { port: 0, respPort: 0, secret: 'shh', host: '127.0.0.1', gossipIntervalMs: 50, shards: 1, logger: silentLogger, replication: 1 } as const;
  const a = await startNode({ ...common, dir: join(root, 'a'), id: 'node-a' });
  t.teardown(() => a.close());
  const b = await startNode({ ...common, dir: join(root, 'b'), id: 'node-b', seeds: [a.address] });
  t.teardown(() => b.close());
  await until(() => [a, b].every((n) => n.status().members.filter((m) => m.up && m.status === 'normal').length === 2), 'two normal members');
  const viaA = new Redis({ port: a.respPort!, lazyConnect: true, maxRetriesPerRequest: 0 });
  const viaB = new Redis({ port: b.respPort!, lazyConnect: true, maxRetriesPerRequest: 0 });
  t.teardown(() => (viaA.disconnect(), viaB.disconnect()));
  await viaA.connect();
  await viaB.connect();
  // Keys of each owner: written and read through both nodes, alternately, many times.
  let checked = 0;
  for (let i = 0; i < 40; i++) {
    const key = `key-${i}`;
    for (let round = 0; round < 4; round++) {
      const writer = round % 2 === 0 ? viaB : viaA;
      const value = `${key}-r${round}`;
      t.equal(await writer.set(key, value), 'OK');
      if ((await viaA.get(key)) !== value) t.fail(`node a shows a stale ${key} after round ${round}`);
      if ((await viaB.get(key)) !== value) t.fail(`node b shows a stale ${key} after round ${round}`);
      if ((await viaA.get(key)) !== value) t.fail(`node a shows a stale ${key} on a second read`);
      checked++;
    }
  }
  t.equal(checked, 160, 'every write was read back through both nodes');
  await until(async () => (await rowCacheHits(a)) > 0 && (await rowCacheHits(b)) > 0, 'both nodes answered from their row cache');
});

t.test('plainGetAt: the exact shape of GET <key>, nothing else', (t) => {
  const enc = (s: string): Buffer => Buffer.from(s, 'latin1');
  const one = enc('*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n');
  t.equal(plainGetAt(one, 0, 100), one.length);
  t.equal(Buffer.from(one.subarray(plainGetKey.start, plainGetKey.end)).toString(), 'hello');
  const two = Buffer.concat([one, enc('*2\r\n$3\r\nget\r\n$0\r\n\r\n')]);
  t.equal(plainGetAt(two, one.length, 100), two.length, 'lower case, an empty key');
  t.equal(plainGetKey.end - plainGetKey.start, 0);
  for (const bad of [
    '*2\r\n$3\r\nGET\r\n$5\r\nhell', // truncated
    '*2\r\n$3\r\nGET\r\n$5\r\nhello\r', // no LF
    '*2\r\n$3\r\nGET\r\n$5\r\nhelloX\n', // wrong length
    '*2\r\n$3\r\nSET\r\n$5\r\nhello\r\n',
    '*3\r\n$3\r\nGET\r\n$5\r\nhello\r\n',
    '*2\r\n$3\r\nGET\r\n$x\r\nhello\r\n',
    '*2\r\n$3\r\nGET\r\n$-1\r\n\r\n',
    '*2\r\n$4\r\nGETX\r\n$1\r\na\r\n',
    'GET hello\r\n',
  ]) t.equal(plainGetAt(enc(bad), 0, 100), -1, JSON.stringify(bad));
  t.equal(plainGetAt(enc('*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n'), 0, 4), -1, 'a key over the bound is the parser\'s');
  t.end();
});

t.test('pipelines mixing GETs answered at once with everything else keep their order', { timeout: 120_000 }, async (t) => {
  const { port, close } = await startRespNode();
  t.teardown(close);
  const redis = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0 });
  t.teardown(() => redis.disconnect());
  await redis.connect();
  await redis.set('k', 'v0');
  t.equal(await redis.get('k'), 'v0');
  for (let round = 1; round <= 30; round++) {
    const results = await redis
      .pipeline()
      .get('k')
      .get('k')
      .set('k', `v${round}`)
      .get('k')
      .incr('n')
      .get('k')
      .get('missing')
      .exec();
    const values = results!.map(([error, value]) => (error ? `error: ${String(error)}` : value));
    t.same(values, [`v${round - 1}`, `v${round - 1}`, 'OK', `v${round}`, round, `v${round}`, null], `round ${round}`);
  }
  // Raw input split at every byte: GETs straddling chunks go to the parser and still answer in order.
  const raw = Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nget\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n', 'latin1');
  const { createConnection } = await import('node:net');
  const socket = createConnection({ port, host: '127.0.0.1' });
  t.teardown(() => socket.destroy());
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  for (let i = 0; i < raw.length; i += 7) socket.write(raw.subarray(i, i + 7));
  const expected = '$3\r\nv30\r\n$3\r\nv30\r\n+PONG\r\n$3\r\nv30\r\n';
  await until(() => received.length >= expected.length, 'the replies');
  t.equal(received, expected);
});
