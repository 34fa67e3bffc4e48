/**
 * The replica store (openReplicaStore) on real worker threads: coordinated writes carry their
 * stored object, replicas converge by merging each other's objects, replica reads, partition
 * scans, argument errors, the identity fixed in the STORE file, and a shard crash under a merge.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '../lib/base/errors.js';
import { partitionOfToken, tokenOf } from '../lib/base/hash.js';
import { decodeObject, readView } from '../lib/causality/index.js';
import { openReplicaStore, openStore, type ReplicaStore } from '../lib/store/index.js';
import type { EmbeddedStore } from '../lib/store/store.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string): Uint8Array => enc.encode(s);
const shown = (bytes: Uint8Array | undefined): string[] =>
  bytes === undefined ? [] : readView(decodeObject(bytes)).values.map((v) => dec.decode(v)).sort();

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-replica-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function pair(t: Test): Promise<[ReplicaStore, ReplicaStore]> {
  const a = await openReplicaStore({ dir: tempDir(t), shards: 2, partitionBits: 6, actor: 'node-a', sync: 'none' });
  const c = await openReplicaStore({ dir: tempDir(t), shards: 1, partitionBits: 6, actor: 'node-b', sync: 'none' });
  t.teardown(() => Promise.all([a.close(), c.close()]));
  return [a, c];
}

t.test('coordinated writes carry the stored object; replicas converge by merging', async (t) => {
  const [a, c] = await pair(t);
  t.equal(a.partitionBits, 6);
  t.equal(a.actor, 'node-a');
  const key = b('k');
  const written = await a.coordinateWrite(key, b('from-a'), undefined);
  t.ok(written.context.length > 0, 'a context');
  t.same(await a.readObject(key), written.object, 'readObject returns the same bytes');
  t.same((await a.get(key)).values.map((v) => dec.decode(v)), ['from-a'], 'the Store API sees it');
  t.equal(await c.readObject(key), undefined, 'missing on the other replica');
  await c.mergeObject(key, written.object);
  t.same(await c.readObject(key), written.object, 'the other replica stores it as is');
  // Concurrent coordinated writes on both, then cross-merge: both keep both, byte-identical.
  const onA = await a.coordinateWrite(key, b('a2'), written.context);
  const onC = await c.coordinateWrite(key, b('c2'), written.context);
  await c.mergeObject(key, onA.object);
  await a.mergeObject(key, onC.object);
  t.same(shown(await a.readObject(key)), ['a2', 'c2']);
  t.same(await a.readObject(key), await c.readObject(key), 'the replicas converged');
  const converged = await c.readObject(key);
  await c.mergeObject(key, written.object);
  t.same(await c.readObject(key), converged, 'merging an older object changes nothing');
  const deleted = await a.coordinateWrite(key, null, (await a.get(key)).context);
  await c.mergeObject(key, deleted.object);
  t.equal((await c.get(key)).found, false, 'a coordinated delete replicates as a tombstone');
});

t.test('replica operations reject bad arguments and malformed objects', async (t) => {
  const [a] = await pair(t);
  await t.rejects(a.mergeObject(b('k'), b('garbage')), { code: ErrorCode.badRequest });
  t.equal(await a.readObject(b('k')), undefined, 'nothing stored');
  const longKey = new Uint8Array(2_000).fill(1);
  const object = (await a.coordinateWrite(b('seed'), b('v'), undefined)).object;
  await a.mergeObject(longKey, object);
  t.same(await a.readObject(longKey), object, 'replica keys beyond the client key limit are stored');
  await t.rejects(a.coordinateWrite('k' as never, b('v'), undefined), TypeError);
  await t.rejects(a.coordinateWrite(b('k'), 'v' as never, undefined), TypeError);
  await t.rejects(a.coordinateWrite(b('k'), b('v'), 'ctx' as never), TypeError);
  await t.rejects(a.coordinateWrite(b('k'), b('v'), b('not a context')), { code: ErrorCode.badContext });
  await t.rejects(a.readObject(new Uint8Array(70_000)), { code: ErrorCode.tooLarge });
  await t.rejects(a.mergeObject(b('k'), 'x' as never), TypeError);
  await t.rejects(a.scanPartition(64, { limit: 1 }), RangeError);
  await t.rejects(a.scanPartition(0, { limit: 0 }), RangeError);
  await t.rejects(a.scanPartition(0, null as never), TypeError);
});

t.test('scanPartition pages through one partition of the right shard', async (t) => {
  const [a] = await pair(t);
  const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`);
  for (const key of keys) await a.coordinateWrite(b(key), b(`v-${key}`), undefined);
  for (const partition of [partitionOfToken(tokenOf(b(keys[0]!)), 6), partitionOfToken(tokenOf(b(keys[1]!)), 6)]) {
    const expected = keys.filter((k) => partitionOfToken(tokenOf(b(k)), 6) === partition).sort();
    const seen: string[] = [];
    let afterKey: Uint8Array | undefined;
    for (let page = 0; page < 100; page++) {
      const result = await a.scanPartition(partition, afterKey ? { afterKey, limit: 2 } : { limit: 2 });
      for (const e of result.entries) {
        seen.push(dec.decode(e.key));
        t.same(shown(e.value), [`v-${dec.decode(e.key)}`], 'entries are raw stored objects');
      }
      afterKey = result.nextAfterKey;
      if (!afterKey) break;
    }
    t.same(seen.sort(), expected, `partition ${partition}`);
  }
});

t.test('partitionBits and actor are fixed in the STORE file', async (t) => {
  const dir = tempDir(t);
  await (await openReplicaStore({ dir, shards: 1, partitionBits: 5, actor: 'node-x', sync: 'none' })).close();
  await t.rejects(openReplicaStore({ dir, partitionBits: 6 }), { code: ErrorCode.incompatible, message: /partitionBits 5.*opened with 6/ });
  await t.rejects(openReplicaStore({ dir, actor: 'node-y' }), { code: ErrorCode.incompatible, message: /actor node-x/ });
  const again = await openReplicaStore({ dir, partitionBits: 5, actor: 'node-x' });
  t.equal(again.actor, 'node-x');
  await again.close();
  const plain = await openStore({ dir });
  t.equal((plain as unknown as ReplicaStore).partitionBits, 5, 'openStore uses the stored partitionBits');
  await plain.close();
  t.throws(() => openReplicaStore({ dir, partitionBits: 17 }), RangeError);
  t.throws(() => openReplicaStore({ dir, partitionBits: 1.5 }), RangeError);
  t.throws(() => openReplicaStore({ dir, actor: '' }));
  t.throws(() => openReplicaStore(null as never), TypeError);
  const fresh = await openReplicaStore({ dir: tempDir(t), shards: 1, sync: 'none' });
  t.match(fresh.actor, /^store-/, 'a generated actor id by default');
  await fresh.close();
});

t.test('a merge in flight when its shard dies is KV_INDETERMINATE, never success', async (t) => {
  const store = await openReplicaStore({ dir: tempDir(t), shards: 1, actor: 'node-a', sync: 'none' });
  t.teardown(() => store.close());
  const object = (await store.coordinateWrite(b('seed'), b('v'), undefined)).object;
  const merges = [store.mergeObject(b('m1'), object), store.readObject(b('seed'))];
  const crash = (store as unknown as EmbeddedStore).crashShardForTest(0);
  merges.push(store.mergeObject(b('m2'), object));
  const outcomes = await Promise.allSettled([...merges, crash]);
  t.match(outcomes[0], { status: 'rejected', reason: { code: ErrorCode.indeterminate } });
  t.match(outcomes[1], { status: 'rejected', reason: { code: ErrorCode.unavailable } });
  t.match(outcomes[2], { status: 'rejected', reason: { code: ErrorCode.indeterminate } });
  await (store as unknown as EmbeddedStore).shardReady(0);
  await store.mergeObject(b('m3'), object);
  t.same(await store.readObject(b('m3')), object, 'the restarted shard merges');
});
