/**
 * TTL: expiry is part of the stored object (codec round trip, canonical encoding), reads hide
 * expired values exactly at the instant they are judged (ManualClock, skewed replicas), an
 * expired value never resurrects an older one, replicas merge expiring values like any
 * other, the shard honours ttlMs/overwrite/keepTtl, the embedded Store takes { ttlMs }, and
 * a process under `faketime` judges expiry by its own clock.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';
import { ManualClock } from '../lib/base/clock.js';
import { limits } from '../lib/base/limits.js';
import { decodeObject, encodeObject, expireValues, join as joinSet, mergeReplicas, readView, sync, update, type StoredObject } from '../lib/causality/index.js';
import { decodeRequest, encodeRequest, type ShardReply, type ShardRequest } from '../lib/protocol/shard-frames.js';
import { expireRecord, expiryFilterName, registerExpiryFilter, ShardActor } from '../lib/shard/index.js';
import { Engine } from '../lib/storage/engine.js';
import { MemoryFileSystem } from '../lib/storage/index.js';
import { openStore } from '../lib/store/index.js';
import { CountingFileSystem } from './fixtures/counting-file-system.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string): Uint8Array => enc.encode(s);

t.test('expiry is part of the stored object, encoded only when some sibling expires', async (t) => {
  const plain: StoredObject = [{ actor: 'a', counter: 1, siblings: [{ value: b('v'), timestampMs: 10 }] }];
  t.equal(encodeObject(plain)[1], 0, 'no TTL: flags 0, the old encoding');
  const expiring: StoredObject = [
    { actor: 'a', counter: 2, siblings: [{ value: b('v'), timestampMs: 10, expiresAtMs: 1_010 }, { value: null, timestampMs: 5 }] },
    { actor: 'b', counter: 1, siblings: [{ value: null, timestampMs: 7, expiresAtMs: 900 }] },
  ];
  const bytes = encodeObject(expiring);
  t.equal(bytes[1], 1, 'flag 1: siblings carry expiresAtMs');
  t.same(decodeObject(bytes), expiring, 'round trip');
  t.same(encodeObject(decodeObject(bytes)), bytes, 'canonical');
  const badFlags = Uint8Array.from(bytes);
  badFlags[1] = 4;
  t.throws(() => decodeObject(badFlags), /unknown flags/);
  t.throws(() => decodeObject(bytes.subarray(0, bytes.length - 1)), /truncated/);
});

t.test('reads hide expired values at the instant they are judged; GET shows the newest live sibling', async (t) => {
  const object: StoredObject = [
    { actor: 'a', counter: 1, siblings: [{ value: b('old-concurrent'), timestampMs: 100 }] },
    { actor: 'b', counter: 1, siblings: [{ value: b('newest'), timestampMs: 200, expiresAtMs: 1_000 }] },
  ];
  const before = readView(object, 'siblings', 999);
  t.equal(before.values.length, 2);
  t.equal(dec.decode(before.latest), 'newest');
  t.equal(before.expiresAtMs, 1_000);
  const after = readView(object, 'siblings', 1_000);
  t.same(after.values.map((v) => dec.decode(v)), ['old-concurrent'], 'expired at exactly expiresAtMs');
  t.equal(dec.decode(after.latest), 'old-concurrent', 'a concurrent sibling stays');
  t.equal(after.expiresAtMs, undefined);
  t.equal(readView(object, 'lww', 1_000).values.length, 1, 'lww sees only live siblings');
  t.equal(readView(object).values.length, 2, 'no clock: nothing expires');
  const tombstoneNewest: StoredObject = [{ actor: 'a', counter: 2, siblings: [{ value: null, timestampMs: 300 }, { value: b('x'), timestampMs: 100 }] }];
  t.equal(readView(tombstoneNewest, 'siblings', 0).latest, undefined, 'a newest delete shows nothing');
});

t.test('an expired value never resurrects the value it superseded, on any replica', async (t) => {
  const v1: StoredObject = update([], [], { value: b('v1'), timestampMs: 100 }, 'a');
  // v2 with a TTL supersedes v1 (the context of a read of v1).
  const v2 = update(v1, joinSet(v1), { value: b('v2'), timestampMs: 200, expiresAtMs: 500 }, 'a');
  // A replica that missed v2 still holds v1; merging in either order keeps v2's history.
  for (const merged of [mergeReplicas(v1, v2), mergeReplicas(v2, v1)]) {
    const view = readView(merged, 'siblings', 600);
    t.equal(view.found, false, 'after expiry: nothing, not v1');
    t.ok(view.tombstoneOnly);
  }
  // Compaction turns the expired value into a tombstone that keeps its expiry; replicas
  // converge on it whatever the merge order.
  const compacted = expireValues(v2, 600);
  t.equal(compacted[0]!.siblings[0]!.value, null);
  t.equal(compacted[0]!.siblings[0]!.expiresAtMs, 500);
  t.equal(expireValues(v2, 400), v2, 'nothing expired: the same object');
  t.same(sync(compacted, v2), compacted);
  t.same(sync(v2, compacted), compacted);
});

t.test('a replica whose clock lags by up to the skew bound never serves an expired value', async (t) => {
  const writer = new ManualClock(1_000_000);
  const lagMs = limits.clockSkewMsDefault;
  const reader = new ManualClock(1_000_000 - lagMs); // behind by the whole bound
  const ttlMs = 10_000;
  const object: StoredObject = [{ actor: 'w', counter: 1, siblings: [{ value: b('v'), timestampMs: writer.wallMs(), expiresAtMs: writer.wallMs() + ttlMs }] }];
  for (const step of [0, ttlMs - lagMs - 1, 1, 1, lagMs]) {
    writer.advance(step);
    reader.advance(step);
    const expiredForWriter = writer.wallMs() >= object[0]!.siblings[0]!.expiresAtMs!;
    // Nodes judge at their clock plus the bound (CoordinatorDriver.expiryNowMs).
    const shown = readView(object, 'siblings', reader.wallMs() + lagMs).found;
    if (expiredForWriter) t.notOk(shown, `expired at writer time ${writer.wallMs()}: not shown by the lagging reader`);
  }
  t.notOk(readView(object, 'siblings', reader.wallMs() + lagMs).found);
});

t.test('shard: ttlMs, overwrite and keepTtl, on a ManualClock', async (t) => {
  const fs = new CountingFileSystem();
  const engine = Engine.open({ fs, dir: '/shard-0', partitionBits: 4, valueBytesMax: limits.entryBytesMax - limits.keyBytesCeiling });
  const clock = new ManualClock();
  const actor = new ShardActor({ engine, actor: 'store-test', policy: 'siblings', clock });
  let id = 0;
  const one = async (r: ShardRequest): Promise<ShardReply> => (await actor.handle([decodeRequest(encodeRequest({ ...r, requestId: ++id }))]))[0]!;
  const get = async (key: string): Promise<string[]> => {
    const r = await one({ op: 'get', requestId: 0, key: b(key) });
    return r.kind === 'read' ? r.values.map((v) => dec.decode(v)).sort() : [];
  };
  await one({ op: 'put', requestId: 0, key: b('k'), value: b('v'), context: undefined, ttlMs: 1_000 });
  t.same(await get('k'), ['v']);
  clock.advance(999);
  t.same(await get('k'), ['v'], 'one ms before expiry');
  clock.advance(1);
  t.same(await get('k'), [], 'gone at expiry');
  await one({ op: 'put', requestId: 0, key: b('s'), value: b('a'), context: undefined });
  await one({ op: 'put', requestId: 0, key: b('s'), value: b('b'), context: undefined });
  t.same(await get('s'), ['a', 'b'], 'blind writes: siblings');
  await one({ op: 'put', requestId: 0, key: b('s'), value: b('c'), context: undefined, overwrite: true, ttlMs: 5_000 });
  t.same(await get('s'), ['c'], 'overwrite supersedes everything held');
  clock.advance(1_000);
  await one({ op: 'put', requestId: 0, key: b('s'), value: b('d'), context: undefined, overwrite: true, keepTtl: true });
  clock.advance(3_999);
  t.same(await get('s'), ['d'], 'keepTtl: still there before the kept expiry');
  clock.advance(1);
  t.same(await get('s'), [], 'keepTtl: gone at the kept expiry');
  await one({ op: 'delete', requestId: 0, key: b('s'), context: undefined, overwrite: true });
  t.same(await get('s'), []);
  await engine.close();
});

t.test('compaction drops expired values through the engine record filter', async (t) => {
  registerExpiryFilter();
  const clock = new ManualClock(1_000_000);
  const engine = Engine.open({ fs: new MemoryFileSystem(), dir: '/e', partitionBits: 4, clock, recordFilter: expiryFilterName, valueSeparationBytes: Infinity });
  const expiring: StoredObject = [{ actor: 'a', counter: 1, siblings: [{ value: b('x'.repeat(1000)), timestampMs: 1_000_000, expiresAtMs: 1_005_000 }] }];
  const forever: StoredObject = [{ actor: 'a', counter: 1, siblings: [{ value: b('keep'), timestampMs: 1_000_000 }] }];
  await engine.write([
    { type: 'put', key: b('exp'), value: encodeObject(expiring) },
    { type: 'put', key: b('keep'), value: encodeObject(forever) },
  ]);
  await engine.compact();
  t.same(decodeObject(engine.get(b('exp'))!), expiring, 'not expired yet: kept as it is');
  clock.advance(5_000 + limits.clockSkewMsMax);
  await engine.write([{ type: 'put', key: b('other'), value: encodeObject(forever) }]);
  await engine.compact();
  const after = decodeObject(engine.get(b('exp'))!);
  t.equal(after[0]!.siblings[0]!.value, null, 'expired past the margin: the value bytes are gone');
  t.equal(after[0]!.siblings[0]!.expiresAtMs, 1_005_000, 'the tombstone keeps its expiry');
  t.same(decodeObject(engine.get(b('keep'))!), forever, 'values without TTL are untouched');
  const plain = encodeObject(forever);
  t.equal(expireRecord(b('k'), plain, Number.MAX_SAFE_INTEGER), plain, 'objects without the expiry flag pass through');
  const garbled = Uint8Array.from([1, 1, 9, 9]);
  t.equal(expireRecord(b('k'), garbled, Number.MAX_SAFE_INTEGER), garbled, 'what does not decode is left for reads to report');
  await engine.close();
  const unknown = Engine.open({ fs: new MemoryFileSystem(), dir: '/u', partitionBits: 4, clock, recordFilter: 'no-such-filter' });
  await unknown.write([{ type: 'put', key: b('k'), value: encodeObject(forever) }]);
  await t.rejects(unknown.compact(), /no compaction record filter/);
  await unknown.close().catch(() => undefined);
});

t.test('embedded store: put with { ttlMs }', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-ttl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openStore({ dir, shards: 1, sync: 'none' });
  t.teardown(() => store.close());
  await store.put('long', 'v', { ttlMs: 600_000 });
  t.equal((await store.get('long')).found, true, 'a value before its expiry');
  await store.put('k', 'v', { ttlMs: 200 });
  await store.batch([{ type: 'put', key: 'b', value: 'v', ttlMs: 200 }]);
  // No timing assertion: poll until both expired (each get judges at its own clock).
  const started = Date.now();
  while ((await store.get('k')).found || (await store.get('b')).found) {
    if (Date.now() - started > 30_000) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.equal((await store.get('k')).found, false, 'expired');
  t.equal((await store.get('b')).found, false, 'expired (batch)');
  t.equal((await store.get('long')).found, true, 'the long TTL is still there');
  await t.rejects(store.put('k', 'v', { ttlMs: 0 }), RangeError);
  await t.rejects(store.put('k', 'v', { ttlMs: 1.5 }), RangeError);
});

t.test('faketime: a process judges expiry by its own (shifted) clock', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-faketime-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const storeUrl = new URL('../lib/store/index.js', import.meta.url).href;
  const script = join(dir, 'write.mjs');
  writeFileSync(
    script,
    `import { openStore } from ${JSON.stringify(storeUrl)};
     const store = await openStore({ dir: ${JSON.stringify(join(dir, 'data'))}, shards: 1 });
     await store.put('k', 'v', { ttlMs: 3_600_000 });
     const seen = (await store.get('k')).found;
     await store.close();
     console.log(JSON.stringify({ nowMs: Date.now(), seen }));`,
  );
  // The writer's clock is 2 h behind: its one-hour TTL ends an hour before real now.
  const out = await new Promise<string>((resolve, reject) =>
    execFile('faketime', ['-f', '-2h', process.execPath, script], { timeout: 60_000 }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message} ${stderr}`)) : resolve(stdout))),
  );
  const written = JSON.parse(out.trim().split('\n').pop()!) as { nowMs: number; seen: boolean };
  t.ok(Date.now() - written.nowMs > 3_600_000, 'the child ran two hours in the past');
  t.equal(written.seen, true, 'the writer sees its value (its clock says an hour is left)');
  const store = await openStore({ dir: join(dir, 'data'), shards: 1 });
  t.teardown(() => store.close());
  t.equal((await store.get('k')).found, false, 'a process on the real clock never serves it');
});


