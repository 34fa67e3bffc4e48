/**
 * The embedded Store on real worker threads and a real temp directory: API shape, argument
 * errors, siblings, batch, reopen, shard-count mismatch, shard crash and restart, SIGKILL.
 */
import { runUntilAcks } from './fixtures/kill-after-acks.js';
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { limits } from '../lib/base/limits.js';
import { ErrorCode, openStore, RingkvError, type Store } from '../lib/index.js';
import type { EmbeddedStore } from '../lib/store/store.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const texts = (values: Uint8Array[]): string[] => values.map((v) => dec.decode(v)).sort();

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}


/** A key that lands on `shard` of `store`, distinct per `n`. */
function keyOn(store: Store, shard: number, n: number): string {
  const s = store as unknown as EmbeddedStore;
  for (let i = 0; ; i++) {
    const key = `s${shard}-${n}-${i}`;
    if (s.shardOf(enc.encode(key)) === shard) return key;
  }
}

t.test('get, put, delete with string or byte keys; not-found is a result', async (t) => {
  await using store = await openStore({ dir: tempDir(t), shards: 2 });
  t.equal(store.shards, 2);
  const written = await store.put('a', 'one');
  t.ok(written.context instanceof Uint8Array, 'put returns a context');
  const got = await store.get(enc.encode('a'));
  t.equal(got.found, true);
  t.same(texts(got.values), ['one'], 'a string key and its bytes are the same key');
  await store.put(Uint8Array.of(0, 255, 1), Uint8Array.of(9, 8));
  t.same((await store.get(Uint8Array.of(0, 255, 1))).values, [Uint8Array.of(9, 8)]);
  const missing = await store.get('missing', {});
  t.same({ found: missing.found, values: missing.values }, { found: false, values: [] });
  t.ok(missing.context instanceof Uint8Array);
  const deleted = await store.delete('a', { context: got.context });
  t.ok(deleted.context instanceof Uint8Array);
  t.equal((await store.get('a')).found, false, 'deleted');
  const stats = await store.stats();
  t.equal(stats.shards.length, 2);
  t.equal(stats.shards[0]!.restarts, 0);
  await store.flush();
  await store.compact();
  t.same(texts((await store.get(Uint8Array.of(0, 255, 1))).values), [dec.decode(Uint8Array.of(9, 8))], 'readable after flush and compact');
});

t.test('argument mistakes are TypeError/RangeError naming the field; limits are KV_TOO_LARGE', async (t) => {
  const dir = tempDir(t);
  await t.rejects(openStore(undefined as never), TypeError);
  await t.rejects(openStore({} as never), { name: 'TypeError', message: /dir/ });
  await t.rejects(openStore({ dir, shards: 0 }), { name: 'RangeError', message: /shards/ });
  await t.rejects(openStore({ dir, shards: 1.5 }), { name: 'RangeError', message: /shards/ });
  await t.rejects(openStore({ dir, sync: 'maybe' as never }), { name: 'TypeError', message: /sync/ });
  await t.rejects(openStore({ dir, conflicts: 'merge' as never }), { name: 'TypeError', message: /conflicts/ });
  const store = await openStore({ dir, shards: 1 });
  await t.rejects(store.put(1 as never, 'v'), { name: 'TypeError', message: /key/ });
  await t.rejects(store.put('k', 5 as never), { name: 'TypeError', message: /value/ });
  await t.rejects(store.put('k', 'v', { context: 'x' as never }), { name: 'TypeError', message: /context/ });
  await t.rejects(store.put('k', 'v', 7 as never), { name: 'TypeError', message: /options/ });
  await t.rejects(store.get('k', 5 as never), { name: 'TypeError', message: /options/ });
  await t.rejects(store.delete(null as never), { name: 'TypeError', message: /key/ });
  await t.rejects(store.batch('x' as never), { name: 'TypeError', message: /ops/ });
  await t.rejects(store.batch([null as never]), { name: 'TypeError', message: /ops\[0\]/ });
  await t.rejects(store.batch([{ type: 'put', key: 'k', value: 'v' }, { type: 'nope', key: 'k' } as never]), { name: 'TypeError', message: /ops\[1\]\.type/ });
  await t.rejects(store.batch([{ type: 'put', key: 3 as never, value: 'v' }]), { name: 'TypeError', message: /ops\[0\]\.key/ });
  await t.rejects(store.batch(new Array(limits.batchOpsMax + 1).fill({ type: 'get', key: 'k' })), { code: ErrorCode.tooLarge });
  t.equal((await store.get('k')).found, false, 'a rejected batch applied nothing');
  await t.rejects(store.put('k', new Uint8Array(limits.valueBytesMax + 1)), { code: ErrorCode.tooLarge });
  await t.rejects(store.get(new Uint8Array(limits.keyBytesMax + 1)), { code: ErrorCode.tooLarge });
  await t.rejects(store.put('k', 'v', { context: enc.encode('not a context') }), { code: ErrorCode.badContext });
  await store.close();
  await store.close();
  await t.rejects(store.get('k'), { code: ErrorCode.closed });
});

t.test('two concurrent blind puts become siblings; a put with their context resolves them', async (t) => {
  await using store = await openStore({ dir: tempDir(t), shards: 2 });
  await Promise.all([store.put('k', 'x'), store.put('k', 'y')]);
  const both = await store.get('k');
  t.same(texts(both.values), ['x', 'y']);
  await store.put('k', 'z', { context: both.context });
  t.same(texts((await store.get('k')).values), ['z']);
});

t.test('lww keeps one value', async (t) => {
  await using store = await openStore({ dir: tempDir(t), shards: 1, conflicts: 'lww', sync: 'none' });
  await Promise.all([store.put('k', 'x'), store.put('k', 'y')]);
  t.equal((await store.get('k')).values.length, 1);
});

t.test('batch runs many ops across shards and returns results in order', async (t) => {
  await using store = await openStore({ dir: tempDir(t), shards: 2 });
  const keys = Array.from({ length: 20 }, (_, i) => `b-${i}`);
  const puts = await store.batch(keys.map((key) => ({ type: 'put' as const, key, value: `v-${key}` })));
  t.equal(puts.length, 20);
  const gets = await store.batch([...keys.map((key) => ({ type: 'get' as const, key })), { type: 'delete', key: 'b-0' }, { type: 'get', key: 'b-0' }]);
  t.same(gets.slice(0, 20).map((r) => texts((r as { values: Uint8Array[] }).values)[0]), keys.map((k) => `v-${k}`));
  t.same(texts((gets[21] as { values: Uint8Array[] }).values), ['v-b-0'], 'a blind delete is concurrent with the value: it does not hide it');
  const seen = await store.get('b-0');
  await store.batch([{ type: 'delete', key: 'b-0', context: seen.context }]);
  t.equal((await store.get('b-0')).found, false, 'a delete with the context of a get hides what the get saw');
});

t.test('close and reopen keep data; another shard count is KV_INCOMPATIBLE naming both', async (t) => {
  const dir = tempDir(t);
  const store = await openStore({ dir, shards: 2 });
  await store.batch(Array.from({ length: 50 }, (_, i) => ({ type: 'put' as const, key: `r-${i}`, value: `v-${i}` })));
  await t.rejects(openStore({ dir, shards: 2 }), { code: ErrorCode.locked }, 'a second open of a live store is refused');
  await store.close();
  const mismatch = await openStore({ dir, shards: 3 }).then(
    () => undefined,
    (error: unknown) => error,
  );
  t.ok(mismatch instanceof RingkvError, 'a RingkvError');
  t.match(mismatch, { code: ErrorCode.incompatible, message: /created with 2 shards.*opened with 3/ }, 'names both counts');
  const again = await openStore({ dir });
  t.equal(again.shards, 2, 'without a shard count the stored one is used');
  const reads = await again.batch(Array.from({ length: 50 }, (_, i) => ({ type: 'get' as const, key: `r-${i}` })));
  t.same(
    reads.map((r) => texts((r as { values: Uint8Array[] }).values)),
    Array.from({ length: 50 }, (_, i) => [`v-${i}`]),
    'every key is there after reopening',
  );
  await again.close();
});

t.test('a crashed shard fails its in-flight writes as indeterminate, restarts from its log, others keep serving', async (t) => {
  await using store = await openStore({ dir: tempDir(t), shards: 2 });
  const s = store as unknown as EmbeddedStore;
  const acked = Array.from({ length: 20 }, (_, i) => keyOn(store, 0, i));
  await store.batch(acked.map((key) => ({ type: 'put' as const, key, value: `acked-${key}` })));
  // One turn: writes before and after the crash frame share the dying worker's batch.
  const inFlight = Array.from({ length: 10 }, (_, i) => store.put(keyOn(store, 0, 100 + i), 'maybe'));
  const crash = s.crashShardForTest(0);
  inFlight.push(store.put(keyOn(store, 0, 200), 'maybe'));
  const other = store.put(keyOn(store, 1, 0), 'other shard');
  const outcomes = await Promise.allSettled([...inFlight, crash]);
  for (const o of outcomes) {
    if (o.status === 'rejected') t.match(o.reason, { code: ErrorCode.indeterminate }, 'indeterminate, never another failure');
  }
  t.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 0, 'no write of the crashed batch reported success');
  t.ok((await other).context, 'the other shard served during the crash');
  await s.shardReady(0);
  for (const key of acked) t.same(texts((await store.get(key)).values), [`acked-${key}`]);
  await store.put(keyOn(store, 0, 300), 'after');
  t.same(texts((await store.get(keyOn(store, 0, 300))).values), ['after'], 'the restarted shard serves writes');
  t.equal((await store.stats()).shards[0]!.restarts, 1);
});

const writer = fileURLToPath(new URL('./fixtures/store-kill-writer.js', import.meta.url));


t.test('every write a store acknowledged survives SIGKILL of its process', async (t) => {
  const dir = tempDir(t);
  const acked = await runUntilAcks(writer, dir, 3000);
  t.ok(acked.size >= 3000, `child acknowledged ${acked.size} writes before SIGKILL`);
  await using store = await openStore({ dir });
  let missing = 0;
  for (const n of acked) {
    const got = await store.get(`key-${n}`);
    if (!got.found || !dec.decode(got.values[0]).startsWith(`value-${n}-`)) missing++;
  }
  t.equal(missing, 0, `0 of ${acked.size} acknowledged writes missing`);
});
