/**
 * The shard's version-header cache (lib/shard/header-cache.ts, lib/causality version-headers.ts):
 * writes drafted on cached headers store byte-identical objects and give identical replies to
 * writes on the whole stored object, through random histories (seeded, printed); the cases that
 * need the old values read them; the cache stays within its budget; a restart starts empty.
 */
import t, { type Test } from 'tap';
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { ManualClock } from '../lib/base/clock.js';
import { partitionOfToken, tokenOf } from '../lib/base/hash.js';
import { openStore } from '../lib/index.js';
import type { EmbeddedStore } from '../lib/store/store.js';
import { limits } from '../lib/base/limits.js';
import { SeededRng, seedFromEnvironment, type Rng } from '../lib/base/rng.js';
import {
  applyClientWrite,
  applyClientWriteToHeaders,
  decodeObject,
  encodeObject,
  encodeHeaders,
  headersOf,
  headerValue,
  join,
  mergeIntoHeaders,
  mergeReplicas,
  type Mint,
  type StoredObject,
} from '../lib/causality/index.js';
import type { ShardReply, ShardRequest } from '../lib/protocol/shard-frames.js';
import { estimateBytes, expiryFilterName, HeaderCache, registerExpiryFilter, ShardActor } from '../lib/shard/index.js';
import { Engine } from '../lib/storage/engine.js';
import { MemoryFileSystem } from '../lib/storage/memory-file-system.js';

const enc = new TextEncoder();
const b = (s: string): Uint8Array => enc.encode(s);
registerExpiryFilter();

interface Side {
  fs: MemoryFileSystem;
  engine: Engine;
  actor: ShardActor;
}

function openSide(fs: MemoryFileSystem, clock: ManualClock, policy: 'siblings' | 'lww', headerCacheBytes: number, headerCacheObjectBytesMin = 0): Side {
  const engine = Engine.open({
    fs,
    dir: '/shard',
    partitionBits: 4,
    clock,
    recordFilter: expiryFilterName,
    valueSeparationBytes: 64, // larger values go to the value log
    keyBytesMax: limits.keyBytesCeiling,
    valueBytesMax: limits.entryBytesMax - limits.keyBytesCeiling,
  });
  return { fs, engine, actor: new ShardActor({ engine, actor: 'node-a', policy, clock, headerCacheBytes, headerCacheObjectBytesMin, siblingsMax: 8 }) };
}

const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'].map(b);
const rids = ['r0', 'r1', 'r2'].map(b);

/** One random request; `contexts` holds the last context seen per key (from either reply). */
function randomRequest(rng: Rng, key: number, contexts: (Uint8Array | undefined)[], remote: Map<number, StoredObject>, local: Uint8Array | undefined): ShardRequest {
  const pick = rng.int(100);
  const context = rng.int(3) > 0 ? contexts[key] : undefined;
  const mint: Mint | undefined = rng.int(4) === 0 ? { rid: rids[rng.int(rids.length)]!, attempt: rng.int(3) } : undefined;
  const flags = { overwrite: rng.int(4) === 0 ? true : undefined, mint, wantObject: rng.int(2) === 0 };
  const k = keys[key]!;
  if (pick < 40) {
    const value = rng.bytes(rng.int(3) === 0 ? 200 : 1 + rng.int(40));
    const ttl = rng.int(4) === 0 ? { ttlMs: 1 + rng.int(100_000) } : rng.int(5) === 0 ? { keepTtl: true } : {};
    return { op: 'put', requestId: 0, key: k, value, context, ...flags, ...ttl };
  }
  if (pick < 52) return { op: 'delete', requestId: 0, key: k, context, ...flags };
  if (pick < 70) return { op: 'get', requestId: 0, key: k };
  if (pick < 92) return { op: 'mergeObject', requestId: 0, key: k, object: encodeObject(remoteStep(rng, key, remote, local)) };
  if (pick < 96) return { op: 'readObject', requestId: 0, key: k };
  return { op: 'purgeIf', requestId: 0, key: k, expected: local !== undefined && rng.int(2) === 0 ? local : rng.bytes(8) };
}

/** Another replica's state of the key, moved on: it learns ours, writes, or both. */
function remoteStep(rng: Rng, key: number, remote: Map<number, StoredObject>, local: Uint8Array | undefined): StoredObject {
  let object = remote.get(key);
  if (local !== undefined && rng.int(2) === 0) object = mergeReplicas(object, decodeObject(local));
  if (object !== undefined && rng.int(4) === 0) return object; // a repeated delivery
  const actor = rng.int(2) === 0 ? 'node-b' : 'node-c';
  const context = object !== undefined && rng.int(2) === 0 ? join(object) : undefined;
  const mint: Mint | undefined = rng.int(4) === 0 ? { rid: rids[rng.int(rids.length)]!, attempt: rng.int(3) } : undefined;
  const value = rng.int(5) === 0 ? null : rng.bytes(1 + rng.int(100));
  object = applyClientWrite(object, { value, context, actor, timestampMs: 1_700_000_000_000 + rng.int(200_000), policy: 'siblings', siblingsMax: 1_000, mint });
  remote.set(key, object);
  return object;
}

const same = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean => (a === undefined || b === undefined ? a === b : Buffer.from(a).equals(b));

async function randomHistory(t: Test, policy: 'siblings' | 'lww', budgetBytes: number, steps: number, objectBytesMin = 0): Promise<void> {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed} (RINGKV_SEED=${seed} replays it), policy ${policy}, budget ${budgetBytes} B, objects of ${objectBytesMin} B or more`);
  const rng = new SeededRng(seed);
  const clock = new ManualClock();
  let cached = openSide(new MemoryFileSystem(), clock, policy, budgetBytes, objectBytesMin);
  const plain = openSide(new MemoryFileSystem(), clock, policy, 0);
  const contexts: (Uint8Array | undefined)[] = [];
  const remote = new Map<number, StoredObject>();
  const mismatches: string[] = [];
  let requests = 0;
  let hits = 0;
  let fallbacks = 0;
  for (let step = 0; step < steps && mismatches.length === 0; step++) {
    const roll = rng.int(100);
    if (roll < 8) clock.advance(rng.int(3) === 0 ? 70_000 + rng.int(100_000) : rng.int(30));
    else if (roll < 9) clock.skewWall(-rng.int(120_000)); // a wall clock stepping back
    else if (roll < 12) await Promise.all([cached, plain].map(async (s) => (await s.actor.idle(), await s.engine.flush(), await s.engine.compact())));
    else if (roll < 13) {
      // Restart: the cached side reopens from its files with an empty cache.
      await cached.actor.idle();
      const before = cached.actor.headerCacheStats();
      hits += before.hits;
      fallbacks += before.fallbacks;
      await cached.engine.close();
      cached = openSide(cached.fs, clock, policy, budgetBytes, objectBytesMin);
      if (cached.actor.headerCacheStats().entries !== 0) mismatches.push(`step ${step}: a reopened shard's cache is not empty`);
    }
    // One or two batches in flight at once, of one to four requests each.
    const batches: ShardRequest[][] = [];
    for (let n = 1 + (rng.int(4) === 0 ? 1 : 0); n > 0; n--) {
      const batch: ShardRequest[] = [];
      for (let m = 1 + rng.int(4); m > 0; m--) {
        const key = rng.int(keys.length);
        batch.push({ ...randomRequest(rng, key, contexts, remote, plain.engine.get(keys[key]!)), requestId: ++requests });
      }
      batches.push(batch);
    }
    const [withCache, without] = await Promise.all([cached, plain].map((s) => Promise.all(batches.map((batch) => s.actor.handle(batch)))));
    compareReplies(step, batches.flat(), without!.flat(), withCache!.flat(), contexts, mismatches);
    for (const key of keys) if (!same(cached.engine.get(key), plain.engine.get(key))) mismatches.push(`step ${step}: stored objects of ${Buffer.from(key)} differ`);
  }
  const last = cached.actor.headerCacheStats();
  t.same(mismatches, [], `seed ${seed}: the cached shard stores and replies exactly what the shard without a cache does`);
  t.ok(hits + last.hits > 0 && fallbacks + last.fallbacks > 0, `both paths ran (hits ${hits + last.hits}, fallbacks ${fallbacks + last.fallbacks})`);
  t.ok(last.bytes <= budgetBytes, `within the budget: ${last.bytes} <= ${budgetBytes}`);
  if (budgetBytes < 10_000) t.ok(last.evictions > 0, `a small budget evicts (${last.evictions} evictions)`);
  await cached.engine.close();
  await plain.engine.close();
}

function compareReplies(step: number, requests: ShardRequest[], expected: ShardReply[], actual: ShardReply[], contexts: (Uint8Array | undefined)[], out: string[]): void {
  for (let i = 0; i < requests.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    const request = requests[i]!;
    if (JSON.stringify(normalize(e)) !== JSON.stringify(normalize(a))) out.push(`step ${step}: ${request.op} replies differ: ${JSON.stringify(normalize(e))} vs ${JSON.stringify(normalize(a))}`);
    const key = 'key' in request ? keys.findIndex((k) => same(k, request.key)) : -1;
    if ((e.kind === 'read' || e.kind === 'written') && key >= 0) contexts[key] = e.context;
  }
}

function normalize(reply: ShardReply): unknown {
  return JSON.parse(JSON.stringify(reply, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));
}

t.test('random histories: writes and merges on cached headers store what writes on whole objects store', async (t) => {
  await randomHistory(t, 'siblings', 1 * 1024 * 1024, 600);
  await randomHistory(t, 'lww', 1 * 1024 * 1024, 600);
  // A budget of a few keys: evictions all the time.
  await randomHistory(t, 'siblings', 1_500, 400);
  await randomHistory(t, 'lww', 1_500, 400);
  // Objects growing over and shrinking under the size that is cached.
  await randomHistory(t, 'siblings', 1024 * 1024, 400, 230);
  await randomHistory(t, 'lww', 1024 * 1024, 400, 230);
});

function single(policy: 'siblings' | 'lww' = 'siblings', headerCacheBytes = 1024 * 1024) {
  const clock = new ManualClock();
  const side = openSide(new MemoryFileSystem(), clock, policy, headerCacheBytes);
  let id = 0;
  const one = async (r: ShardRequest): Promise<ShardReply> => (await side.actor.handle([{ ...r, requestId: ++id }]))[0]!;
  const put = (key: string, value: Uint8Array, extra: Partial<Extract<ShardRequest, { op: 'put' }>> = {}) => one({ op: 'put', requestId: 0, key: b(key), value, context: undefined, ...extra });
  const get = async (key: string) => {
    const reply = await one({ op: 'get', requestId: 0, key: b(key) });
    if (reply.kind !== 'read') throw new Error(`get replied ${reply.kind}`);
    return reply;
  };
  return { clock, side, one, put, get, reads: countEngineReads(side.engine) };
}

/** Counts the engine reads the shard makes (the stored objects it decodes). */
function countEngineReads(engine: Engine): () => number {
  let reads = 0;
  const get = engine.get.bind(engine);
  engine.get = (key: Uint8Array) => (reads++, get(key));
  return () => reads;
}

const big = (fill: number): Uint8Array => new Uint8Array(10_240).fill(fill);

t.test('a put with the context of a get, an overwrite and an lww put skip the read of the stored object', async (t) => {
  const { side, put, get, reads } = single();
  await put('k', big(1));
  const read = await get('k');
  const before = reads();
  await put('k', big(2), { context: read.context });
  t.equal(reads(), before, 'no engine read for a put that supersedes every sibling');
  await put('k', big(3), { overwrite: true });
  t.equal(reads(), before, 'nor for an overwrite');
  t.match(side.actor.headerCacheStats(), { hits: 2, misses: 0, fallbacks: 0, entries: 1 }, 'the first (blind) put did not look, the next two hit');
  t.same((await get('k')).values, [big(3)]);
  await side.engine.close();

  const lww = single('lww');
  await lww.put('k', big(1));
  lww.clock.advance(1);
  const lwwBefore = lww.reads();
  await lww.put('k', big(2));
  t.equal(lww.reads(), lwwBefore, 'an lww put that wins reads nothing');
  t.same((await lww.get('k')).values, [big(2)]);
  await lww.side.engine.close();
});

t.test('a blind siblings put and an lww put that loses read the old value and keep it', async (t) => {
  const { side, put, get, reads } = single();
  await put('k', big(1));
  const before = reads();
  await put('k', big(2));
  t.equal(reads(), before + 1, 'the old value is read');
  t.match(side.actor.headerCacheStats(), { hits: 0, misses: 0 }, 'a blind siblings put does not even look at the cache');
  t.same((await get('k')).values.map((v) => v[0]).sort(), [1, 2], 'both values are siblings');
  await side.engine.close();

  const lww = single('lww');
  await lww.put('k', big(1));
  lww.clock.skewWall(-1_000); // the next write's timestamp is older: it loses
  const lwwBefore = lww.reads();
  await lww.put('k', big(2));
  t.equal(lww.reads(), lwwBefore + 1, 'the winner is read to be kept');
  t.equal(lww.side.actor.headerCacheStats().fallbacks, 1);
  t.same((await lww.get('k')).values, [big(1)], 'the newer write still wins');
  await lww.side.engine.close();
});

t.test('a replica merge that supersedes the cached state skips the read; one that keeps it reads', async (t) => {
  const { side, one, put, get, reads } = single();
  await put('k', big(1));
  const local = decodeObject(side.engine.get(b('k'))!);
  const superseding = applyClientWrite(local, { value: big(2), context: join(local), actor: 'node-b', timestampMs: 1_700_000_000_005, policy: 'siblings', siblingsMax: 10 });
  const before = reads();
  t.match(await one({ op: 'mergeObject', requestId: 0, key: b('k'), object: encodeObject(superseding) }), { kind: 'merged' });
  t.equal(reads(), before, 'no read: the incoming state supersedes every cached sibling');
  t.same(side.engine.get(b('k')), encodeObject(superseding));
  const middle = reads();
  const concurrent = applyClientWrite(undefined, { value: big(3), context: undefined, actor: 'node-c', timestampMs: 1_700_000_000_006, policy: 'siblings', siblingsMax: 10 });
  await one({ op: 'mergeObject', requestId: 0, key: b('k'), object: encodeObject(concurrent) });
  t.equal(reads(), middle + 1, 'a concurrent state keeps the cached value: it is read');
  t.same((await get('k')).values.map((v) => v[0]).sort(), [2, 3]);
  await side.engine.close();
});

t.test('the cache stays within its budget and evicts the least recently used key', async (t) => {
  const headers = applyClientWrite(undefined, { value: big(1), context: undefined, actor: 'node-a', timestampMs: 5, policy: 'siblings', siblingsMax: 10 });
  const one = estimateBytes(b('key-00'), encodeHeaders(headers)!.length);
  const cache = new HeaderCache(3 * one);
  for (const k of ['key-00', 'key-01', 'key-02']) cache.set(b(k), headers);
  t.ok(cache.get(b('key-00')), 'key-00 is cached (and now the most recently used)');
  cache.set(b('key-03'), headers);
  t.equal(cache.get(b('key-01')), undefined, 'the least recently used key went');
  t.ok(cache.get(b('key-00')) && cache.get(b('key-02')) && cache.get(b('key-03')));
  t.match(cache.stats(), { entries: 3, bytes: 3 * one, budgetBytes: 3 * one, evictions: 1 });
  cache.delete(b('key-02'));
  cache.delete(b('key-02'));
  t.match(cache.stats(), { entries: 2, bytes: 2 * one });
  cache.clear();
  t.match(cache.stats(), { entries: 0, bytes: 0 });
  t.throws(() => new HeaderCache(-1), RangeError);

  const { side, put, get } = single('siblings', 10 * one);
  for (let i = 0; i < 100; i++) await put(`key-${String(i).padStart(2, '0')}`, big(i));
  const stats = side.actor.headerCacheStats();
  t.ok(stats.bytes <= 10 * one && stats.entries <= 10 && stats.evictions >= 90, `bounded: ${JSON.stringify(stats)}`);
  for (let i = 0; i < 100; i += 9) t.same((await get(`key-${String(i).padStart(2, '0')}`)).values, [big(i)]);
  await side.engine.close();

  const off = single('siblings', 0);
  await off.put('k', big(1));
  await off.put('k', big(2));
  t.match(off.side.actor.headerCacheStats(), { entries: 0, hits: 0, misses: 0, budgetBytes: 0 });
  await off.side.engine.close();
});

t.test('a restarted shard starts with an empty cache and reads what it needs', async (t) => {
  const { clock, side, put, get } = single();
  await put('k', big(1));
  const read = await get('k');
  await side.actor.idle();
  await side.engine.close();
  const reopened = openSide(side.fs, clock, 'siblings', 1024 * 1024);
  t.match(reopened.actor.headerCacheStats(), { entries: 0, hits: 0 });
  const [reply] = await reopened.actor.handle([{ op: 'put', requestId: 1, key: b('k'), value: big(2), context: read.context }]);
  t.match(reply, { kind: 'written' });
  t.match(reopened.actor.headerCacheStats(), { entries: 1, hits: 0, misses: 1 });
  const [after] = await reopened.actor.handle([{ op: 'get', requestId: 2, key: b('k') }]);
  t.same(after!.kind === 'read' ? after!.values : [], [big(2)]);
  reopened.actor.forgetHeaders();
  t.equal(reopened.actor.headerCacheStats().entries, 0, 'forgetHeaders empties it');
  await reopened.engine.close();
});

t.test('version headers: placeholders for values, rids copied, values expiring at the void instant refused', (t) => {
  const rid = b('rid-1');
  const object = applyClientWrite(undefined, { value: b('v'), context: undefined, actor: 'node-a', timestampMs: 5, policy: 'siblings', siblingsMax: 10, mint: { rid, attempt: 0 } });
  const headers = headersOf(object)!;
  t.equal(headers[0]!.siblings[0]!.value, headerValue);
  t.not(headers[0]!.siblings[0]!.mint!.rid, rid, 'the rid is a copy');
  t.same(headers[0]!.siblings[0]!.mint!.rid, rid);
  const tombstone = applyClientWrite(object, { value: null, context: join(object), actor: 'node-a', timestampMs: 6, policy: 'siblings', siblingsMax: 10 });
  t.equal(headersOf(tombstone)![0]!.siblings[0]!.value, null, 'a tombstone stays a tombstone');
  const voidish: StoredObject = [{ actor: 'node-a', counter: 1, siblings: [{ value: b('v'), timestampMs: 0, expiresAtMs: 1 }] }];
  t.equal(headersOf(voidish), undefined);
  t.equal(encodeHeaders(voidish), undefined);
  const empty = applyClientWrite(undefined, { value: new Uint8Array(0), context: undefined, actor: 'node-a', timestampMs: 5, policy: 'siblings', siblingsMax: 10 });
  t.equal(headersOf(empty)![0]!.siblings[0]!.value, headerValue, 'an empty value is a placeholder too (a write keeping it reads the object)');
  // A blind write keeps the placeholder: no result; with the context, the whole object's result.
  const write = { value: b('w'), actor: 'node-a', timestampMs: 7, policy: 'siblings' as const, siblingsMax: 10 };
  t.equal(applyClientWriteToHeaders(headers, { ...write, context: undefined }), undefined);
  t.same(applyClientWriteToHeaders(headers, { ...write, context: join(object) }), applyClientWrite(object, { ...write, context: join(object) }));
  // A merge where both hold a dot compares values: no result from headers.
  t.equal(mergeIntoHeaders(headers, object), undefined);
  t.end();
});

t.test('a purge, a failed commit and compaction behind the cache keep writes exact', async (t) => {
  // Purge: the key is gone; a blind write then starts it afresh, as without a cache.
  const clock = new ManualClock();
  const cached = openSide(new MemoryFileSystem(), clock, 'lww', 1024 * 1024);
  const plain = openSide(new MemoryFileSystem(), clock, 'lww', 0);
  const both = async (request: ShardRequest): Promise<ShardReply[]> => [(await cached.actor.handle([request]))[0]!, (await plain.actor.handle([request]))[0]!];
  const incoming = applyClientWrite(undefined, { value: b('remote'), context: undefined, actor: 'node-b', timestampMs: 1, policy: 'siblings', siblingsMax: 10 });
  await both({ op: 'put', requestId: 1, key: b('k'), value: b('v1'), context: undefined });
  await both({ op: 'mergeObject', requestId: 2, key: b('k'), object: encodeObject(incoming) });
  const purged = await both({ op: 'purgeIf', requestId: 3, key: b('k'), expected: plain.engine.get(b('k'))! });
  t.match(purged, [{ kind: 'purged', deleted: true }, { kind: 'purged', deleted: true }]);
  clock.advance(5);
  await both({ op: 'put', requestId: 4, key: b('k'), value: b('v2'), context: undefined });
  t.same(cached.engine.get(b('k')), plain.engine.get(b('k')), 'after a purge, a blind write stores what it stores without a cache');

  // A failed commit: what the engine holds is unknown, the key is forgotten.
  cached.fs.setCapacityBytes(1);
  const [failed] = await cached.actor.handle([{ op: 'put', requestId: 5, key: b('k'), value: b('v3'), context: undefined }]);
  t.match(failed, { kind: 'error' });
  cached.fs.setCapacityBytes(Infinity);
  t.equal(cached.actor.headerCacheStats().entries, 0, 'the failed batch forgot its key');
  await cached.engine.close();
  await plain.engine.close();

  // Compaction turns an expired value into a tombstone behind the cache; with the wall clock
  // stepped back before its expiry, SET KEEPTTL must see the tombstone, not the cached value.
  const clock2 = new ManualClock();
  const sides = [openSide(new MemoryFileSystem(), clock2, 'siblings', 1024 * 1024), openSide(new MemoryFileSystem(), clock2, 'siblings', 0)];
  for (const s of sides) await s.actor.handle([{ op: 'put', requestId: 1, key: b('t'), value: b('short-lived'), context: undefined, ttlMs: 1_000 }]);
  clock2.advance(limits.clockSkewMsMax + 10_000);
  for (const s of sides) (await s.engine.flush(), await s.engine.compact());
  t.equal(readValueKind(sides[1]!.engine.get(b('t'))!), null, 'compaction made the expired value a tombstone');
  clock2.skewWall(-(limits.clockSkewMsMax + 9_500)); // now before the expiry again
  const keep: ShardRequest = { op: 'put', requestId: 2, key: b('t'), value: b('kept-ttl'), context: undefined, overwrite: true, keepTtl: true };
  for (const s of sides) await s.actor.handle([keep]);
  t.same(sides[0]!.engine.get(b('t')), sides[1]!.engine.get(b('t')), 'the cached shard stored what the shard without a cache stored');
  t.equal(sides[0]!.actor.headerCacheStats().fallbacks, 1, 'keepTtl on headers with an expiring value read the object');
  for (const s of sides) await s.engine.close();
});

function readValueKind(bytes: Uint8Array): Uint8Array | null {
  return decodeObject(bytes)[0]!.siblings[0]!.value;
}

t.test('the Store reports the header cache of each shard in stats(); dropping a partition empties it', async (t) => {
  const dir = mkdtempSync(joinPath(tmpdir(), 'ringkv-header-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = (await openStore({ dir, shards: 1 })) as EmbeddedStore;
  const large = new Uint8Array(limits.headerCacheObjectBytesMin);
  for (let i = 0; i < 20; i++) await store.put(`key-${i}`, large);
  await store.put('small', 'v');
  const read = await store.get('key-0');
  await store.put('key-0', large, { context: read.context });
  const cache = (await store.stats()).shards[0]!.headerCache;
  t.match(cache, { entries: 20, hits: 1, fallbacks: 0, budgetBytes: limits.headerCacheBytesDefault }, 'large objects are cached, a small one is not');
  t.ok(cache.bytes > 0 && cache.bytes <= cache.budgetBytes);
  await store.dropPartition(partitionOfToken(tokenOf(b('key-0')), store.partitionBits));
  t.equal((await store.stats()).shards[0]!.headerCache.entries, 0, 'a dropped partition clears the cache');
  t.equal((await store.get('key-0')).found, false, 'the dropped key is gone');
  await store.close();
});

t.test('openStore takes the header cache budget (0 turns it off) and refuses a bad one', async (t) => {
  const dir = mkdtempSync(joinPath(tmpdir(), 'ringkv-header-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await t.rejects(openStore({ dir, headerCacheBytes: -1 }), RangeError);
  const off = (await openStore({ dir, shards: 1, headerCacheBytes: 0 })) as EmbeddedStore;
  const large = new Uint8Array(limits.headerCacheObjectBytesMin);
  for (let i = 0; i < 5; i++) await off.put(`key-${i}`, large);
  t.match((await off.stats()).shards[0]!.headerCache, { entries: 0, budgetBytes: 0 });
  await off.close();
  const small = (await openStore({ dir, shards: 1, headerCacheBytes: 1 << 20 })) as EmbeddedStore;
  for (let i = 0; i < 5; i++) await small.put(`key-${i}`, large, { context: (await small.get(`key-${i}`)).context });
  t.match((await small.stats()).shards[0]!.headerCache, { budgetBytes: 1 << 20 });
  t.ok((await small.stats()).shards[0]!.headerCache.entries > 0);
  await small.close();
});
