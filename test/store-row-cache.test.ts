/**
 * The row cache (lib/store/row-cache.ts): its coherence rules one by one, a seeded randomized
 * model where reads and changes of a few keys overlap and answer in any order (a hit must
 * always be what the shard holds), its bounds, and the replica store with a row cache on real
 * shards: every kind of change (coordinated writes, merges, purges, puts, deletes, batches,
 * partition drops) is seen by the next read.
 */
import t, { type Test } from 'tap';
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { partitionOfToken, tokenOf } from '../lib/base/hash.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { decodeObject, readView } from '../lib/causality/index.js';
import { openReplicaStore, type ReplicaStore } from '../lib/store/index.js';
import { RowCache, rowEntryOverheadBytes } from '../lib/store/row-cache.js';
import { totalmem } from 'node:os';
import { limits, processMemoryBytes, rowCacheBytesDefault } from '../lib/base/limits.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string): Uint8Array => enc.encode(s);

t.test('a read fills; a change drops; a read that a change may have raced does not fill', (t) => {
  const cache = new RowCache(1 << 20);
  const key = b('k');
  t.equal(cache.get(key), undefined);
  cache.fill(key, cache.readStarted(), b('v1'));
  t.same(cache.get(key)?.object, b('v1'));

  // A change in flight: the entry goes, and neither a read sent before nor one sent during fills.
  const before = cache.readStarted();
  const seq = cache.changing(key);
  t.equal(cache.get(key), undefined);
  const during = cache.readStarted();
  cache.fill(key, before, b('stale'));
  cache.fill(key, during, b('maybe-stale'));
  t.equal(cache.get(key), undefined, 'no fill while a change of the key is in flight');
  cache.changed(key, seq);
  cache.fill(key, before, b('stale'));
  cache.fill(key, during, b('maybe-stale'));
  t.equal(cache.get(key), undefined, 'no fill by a read sent before the change ended');
  cache.fill(key, cache.readStarted(), b('v2'));
  t.same(cache.get(key)?.object, b('v2'), 'a read sent after the change fills');

  // Absence is cached too.
  const missing = b('missing');
  cache.fill(missing, cache.readStarted(), undefined);
  const entry = cache.get(missing);
  t.ok(entry !== undefined && entry.object === undefined);
  t.end();
});

t.test('a change answered with its object fills only when no other change of the key overlapped it', (t) => {
  const cache = new RowCache(1 << 20);
  const key = b('k');
  const alone = cache.changing(key);
  cache.changed(key, alone, b('after-alone'));
  t.same(cache.get(key)?.object, b('after-alone'));

  const first = cache.changing(key);
  const second = cache.changing(key);
  cache.changed(key, second, b('second'));
  t.equal(cache.get(key), undefined, 'the other change is still in flight');
  cache.changed(key, first, b('first'));
  t.equal(cache.get(key), undefined, 'answered last but maybe applied first: not cached');

  const failed = cache.changing(key);
  cache.changed(key, failed);
  t.equal(cache.get(key), undefined, 'a failed change fills nothing');
  t.end();
});

t.test('clear bars every read started before it; a change of another key bars a fill only if it shares its slot', (t) => {
  const cache = new RowCache(1 << 20);
  const key = b('k');
  const started = cache.readStarted();
  cache.clear();
  cache.fill(key, started, b('old'));
  t.equal(cache.get(key), undefined);

  const before = cache.readStarted();
  cache.changed(b('x'), cache.changing(b('x')));
  cache.fill(key, before, b('v1'));
  t.same(cache.get(key)?.object, b('v1'), 'another key in another slot changed meanwhile: the read fills');

  // Find a key that shares the slot (hashes are fixed: the same key every run).
  let sharing: string | undefined;
  for (let i = 0; i < 5_000_000 && sharing === undefined; i++) {
    cache.changed(key, cache.changing(key)); // drops the entry
    const read = cache.readStarted();
    const other = `other-${i}`;
    cache.changed(b(other), cache.changing(b(other)));
    cache.fill(key, read, b('v2'));
    if (cache.get(key) === undefined) sharing = other;
  }
  t.ok(sharing !== undefined, `${sharing} shares the slot: its change barred the fill (conservative, never wrong)`);
  cache.fill(key, cache.readStarted(), b('new'));
  t.same(cache.get(key)?.object, b('new'));
  t.end();
});

t.test('bounded by its budget: oldest first, a second chance for entries read since', (t) => {
  const entryBytes = 100 + 6 + rowEntryOverheadBytes;
  const cache = new RowCache(entryBytes * 10);
  const value = new Uint8Array(100).fill(7);
  for (let i = 0; i < 10; i++) cache.fill(b(`k-${String(i).padStart(4, '0')}`), cache.readStarted(), value);
  t.equal(cache.stats().entries, 10);
  t.ok(cache.get(b('k-0000')), 'read: gets a second chance');
  for (let i = 10; i < 15; i++) cache.fill(b(`k-${String(i).padStart(4, '0')}`), cache.readStarted(), value);
  const stats = cache.stats();
  t.ok(stats.bytes <= stats.budgetBytes, `${stats.bytes} <= ${stats.budgetBytes}`);
  t.equal(stats.entries, 10);
  t.ok(cache.get(b('k-0000')), 'the entry read survived');
  t.equal(cache.get(b('k-0001')), undefined, 'the oldest unread went first');
  t.ok(stats.evictions >= 5);
  t.same(cache.get(b('k-0000'))?.object, value, 'a moved entry keeps its bytes');

  const none = new RowCache(0);
  none.fill(b('k'), none.readStarted(), value);
  t.equal(none.get(b('k')), undefined, 'budget 0: nothing is cached');
  t.throws(() => new RowCache(-1), RangeError);
  t.end();
});

t.test('entries own their bytes: the buffers they were filled from may change', (t) => {
  const cache = new RowCache(1 << 20);
  const key = b('key');
  const object = b('object');
  cache.fill(key, cache.readStarted(), object);
  key.fill(0);
  object.fill(0);
  t.same(cache.get(b('key'))?.object, b('object'));
  t.end();
});

/**
 * The model: a shard holds a version per key and applies requests in the order sent; replies
 * come back in any order. The cache is driven as the store drives it. Whenever it has an entry,
 * the entry must be the shard's current version, unless a change of that key is still in
 * flight (the entry was dropped when it started, and nothing fills meanwhile).
 */
t.test('randomized: a hit is always what the shard holds', (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed} (RINGKV_SEED=${seed} repeats this run)`);
  const rng = new SeededRng(seed);
  const random = (): number => rng.next();
  const keys = [b('a'), b('b'), b('c')];
  const cache = new RowCache(4 * (1 + 8 + rowEntryOverheadBytes) * 2);
  const shard = new Map<number, number>();
  let version = 0;
  type Pending = { kind: 'read' | 'change'; key: number; startedSeq: number; result?: number; applied: boolean; fills: boolean };
  const pending: Pending[] = [];
  const bytesOf = (v: number | undefined): Uint8Array | undefined => (v === undefined ? undefined : b(String(v).padStart(8, '0')));
  let hits = 0;
  let wrong: string | undefined;
  for (let step = 0; step < 20_000; step++) {
    const roll = random();
    const k = Math.floor(random() * keys.length);
    const key = keys[k]!;
    if (roll < 0.25) {
      const hit = cache.get(key);
      if (hit !== undefined) {
        hits++;
        const expected = bytesOf(shard.get(k));
        if (dec.decode(hit.object ?? new Uint8Array()) !== dec.decode(expected ?? new Uint8Array())) {
          wrong = `step ${step}: key ${k} cached ${hit.object === undefined ? 'absent' : dec.decode(hit.object)}, the shard holds ${expected === undefined ? 'nothing' : dec.decode(expected)}`;
          break;
        }
      } else {
        pending.push({ kind: 'read', key: k, startedSeq: cache.readStarted(), applied: false, fills: false });
      }
    } else if (roll < 0.3) {
      pending.push({ kind: 'change', key: k, startedSeq: cache.changing(key), applied: false, fills: random() < 0.7 });
    } else if (roll < 0.65) {
      // The shard applies the oldest request not applied yet (FIFO per shard).
      const next = pending.find((p) => !p.applied);
      if (next !== undefined) {
        next.applied = true;
        if (next.kind === 'change') shard.set(next.key, ++version);
        next.result = shard.get(next.key);
      }
    } else if (random() < 0.02) {
      cache.clear();
    } else {
      // Some applied request's reply arrives (any of them).
      const applied = pending.filter((p) => p.applied);
      if (applied.length === 0) continue;
      const reply = applied[Math.floor(random() * applied.length)]!;
      pending.splice(pending.indexOf(reply), 1);
      const replyKey = keys[reply.key]!;
      if (reply.kind === 'read') cache.fill(replyKey, reply.startedSeq, bytesOf(reply.result));
      else if (reply.fills) cache.changed(replyKey, reply.startedSeq, bytesOf(reply.result));
      else cache.changed(replyKey, reply.startedSeq);
    }
  }
  t.comment(JSON.stringify({ ...cache.stats(), pending: pending.length }));
  t.equal(wrong, undefined, 'every hit was the shard\'s state');
  t.ok(hits > 100, `${hits} hits checked`);
  t.end();
});

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-rowcache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const shown = (bytes: Uint8Array | undefined): string[] => (bytes === undefined ? [] : readView(decodeObject(bytes)).values.map((v) => dec.decode(v)).sort());

t.test('a replica store with a row cache: every kind of change is seen by the next read', async (t) => {
  const store = await openReplicaStore({ dir: tempDir(t), shards: 2, partitionBits: 6, actor: 'node-a', sync: 'none', rowCacheBytes: 1 << 20 });
  const other = await openReplicaStore({ dir: tempDir(t), shards: 1, partitionBits: 6, actor: 'node-b', sync: 'none' });
  t.teardown(() => Promise.all([store.close(), other.close()]));
  const key = b('key');

  t.same(await store.readObject(key), undefined);
  t.same(await store.readObject(key), undefined, 'absence, from the cache');
  const written = await store.coordinateWrite(key, b('one'), undefined);
  t.same(shown(store.cachedRow(key)?.object), ['one'], 'a coordinated write fills with its object');
  t.same(shown(await store.readObject(key)), ['one']);

  // A merge of another replica's concurrent write.
  const theirs = await other.coordinateWrite(key, b('two'), undefined);
  await store.mergeObject(key, theirs.object);
  t.same(shown(await store.readObject(key)), ['one', 'two'], 'a merge drops the entry');
  t.same(shown(await store.readObject(key)), ['one', 'two'], 'and the next read fills it again');

  // The embedded API's put, delete and batch go through the same store.
  const both = await store.readObject(key);
  await store.put(key, b('three'), { context: encodeContextOf(both) });
  t.same(shown(await store.readObject(key)), ['three']);
  await store.batch([{ type: 'put', key, value: b('four') }]);
  t.same(shown(await store.readObject(key)), ['four', 'three']);
  await store.delete(key, { context: encodeContextOf(await store.readObject(key)) });
  const tombstone = await store.readObject(key);
  t.same(shown(tombstone), [], 'a delete is seen');

  // Purge: the tombstone goes.
  t.equal(await store.purgeIf(key, tombstone!), true);
  t.equal(await store.readObject(key), undefined, 'a purge is seen');

  // A partition drop.
  await store.coordinateWrite(key, b('five'), undefined);
  t.same(shown(await store.readObject(key)), ['five']);
  const partition = partitionOfToken(tokenOf(key), 6);
  await store.dropPartition(partition);
  t.equal(await store.readObject(key), undefined, 'a partition drop is seen');

  const stats = await store.stats();
  t.ok(stats.rowCache !== undefined && stats.rowCache.hits > 0 && stats.rowCache.budgetBytes === 1 << 20);
  t.equal(written.object.length > 0, true);
  t.end();
});

t.test('many overlapping writes and reads of a few keys through the store end coherent', async (t) => {
  const store = await openReplicaStore({ dir: tempDir(t), shards: 2, partitionBits: 6, actor: 'node-a', sync: 'none', rowCacheBytes: 1 << 20 });
  t.teardown(() => store.close());
  const keys = [b('x'), b('y'), b('z')];
  for (let round = 0; round < 20; round++) {
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      const key = keys[i % keys.length]!;
      work.push(i % 3 === 0 ? store.coordinateWrite(key, b(`r${round}-${i}`), undefined, { overwrite: true }) : store.readObject(key));
    }
    await Promise.all(work);
    for (const key of keys) {
      const cached = store.cachedRow(key);
      if (cached === undefined) continue;
      t.same(shown(cached.object), shown(await freshRead(store, key)), `round ${round}`);
    }
  }
  t.end();
});

/** The shard's object for `key`, not the cache's: a change of the key drops its entry first. */
async function freshRead(store: ReplicaStore, key: Uint8Array): Promise<Uint8Array | undefined> {
  const current = await store.readObject(key);
  if (current !== undefined) await store.mergeObject(key, current); // a no-op merge: drops the entry
  return store.readObject(key);
}

function encodeContextOf(object: Uint8Array | undefined): Uint8Array {
  return readView(object === undefined ? undefined : decodeObject(object)).context;
}


t.test('plainRead answers from the view derive made at fill, inside the entry\'s own bytes', (t) => {
  const cache = new RowCache(1 << 20);
  let nowMs = 1_000;
  const seen: string[] = [];
  // The view: the object's bytes after a 1-byte header are the value; header 0 means "no value".
  cache.derive = (key, object) => {
    seen.push(dec.decode(key));
    if (object === undefined) return { latest: null, fromMs: nowMs, untilMs: Infinity };
    if (object[0] === 0) return { latest: undefined, fromMs: nowMs, untilMs: nowMs + 100 };
    if (object[0] === 2) return { latest: b('elsewhere'), fromMs: nowMs, untilMs: Infinity };
    return { latest: object.subarray(1), fromMs: nowMs, untilMs: object[0] === 3 ? nowMs + 50 : Infinity };
  };
  const plain = (key: string): string | null | undefined => {
    const bytes = b(`..${key}..`);
    if (!cache.plainRead(bytes, 2, bytes.length - 2, tokenOf(b(key)), nowMs)) return undefined;
    return cache.plainLength < 0 ? null : dec.decode(cache.arena.subarray(cache.plainAt, cache.plainAt + cache.plainLength));
  };
  const object = b('\x01v1');
  cache.fill(b('k'), cache.readStarted(), object);
  object.fill(0);
  t.equal(plain('k'), 'v1', 'made from the cache\'s copy, not the caller\'s bytes');
  t.equal(plain('other'), undefined, 'a key not cached');
  cache.fill(b('gone'), cache.readStarted(), undefined);
  t.equal(plain('gone'), null, 'absence answers nil');
  cache.changed(b('k'), cache.changing(b('k')), b('\x01v2'));
  t.equal(plain('k'), 'v2', 'a write that fills derives too');
  t.same(seen, ['k', 'gone', 'k']);

  cache.fill(b('copy'), cache.readStarted(), b('\x02xx'));
  t.equal(plain('copy'), undefined, 'a value that is not a view of the object is not answered');
  cache.fill(b('later'), cache.readStarted(), b('\x00'));
  t.equal(plain('later'), undefined, 'derive said: ask the usual way');
  seen.length = 0;
  t.equal(plain('later'), undefined);
  t.same(seen, [], 'and is not asked again inside its window');
  nowMs += 100;
  t.equal(plain('later'), undefined);
  t.same(seen, ['later'], 'past its window, derive is asked again');

  cache.fill(b('ttl'), cache.readStarted(), b('\x03short'));
  t.equal(plain('ttl'), 'short');
  seen.length = 0;
  nowMs += 50;
  t.equal(plain('ttl'), 'short', 'the view is made again when its window ends');
  t.same(seen, ['ttl']);
  nowMs -= 1;
  t.equal(plain('ttl'), 'short', 'a clock stepped back before the window: derived again');
  t.same(seen, ['ttl', 'ttl']);
  t.equal(cache.stats().hits, 6);
  t.end();
});

/**
 * The arena (a ring that grows, wraps, leaves holes and moves entries read since they were
 * written) against a plain Map: whatever the cache answers is the last bytes filled for that
 * key, and it stays within its budget. Keys and sizes are random; small budgets force every
 * path.
 */
t.test('randomized: the arena keeps every entry\'s bytes through growth, wraps, holes and moves', (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed} (RINGKV_SEED=${seed} repeats this run)`);
  const rng = new SeededRng(seed);
  const random = (): number => rng.next();
  for (const budget of [4 * 1024, 40 * 1024, 600 * 1024]) {
    const cache = new RowCache(budget);
    const model = new Map<string, Uint8Array | undefined>();
    let hits = 0;
    for (let step = 0; step < 20_000; step++) {
      const k = `key-${Math.floor(random() * 300)}`;
      const key = b(k);
      const roll = random();
      if (roll < 0.35) {
        const object = roll < 0.05 ? undefined : new Uint8Array(1 + Math.floor(random() * (random() < 0.1 ? budget / 10 : 300))).map(() => Math.floor(random() * 256));
        cache.fill(key, cache.readStarted(), object);
        model.set(k, object);
      } else if (roll < 0.45) {
        cache.changed(key, cache.changing(key));
        model.delete(k);
      } else {
        const entry = cache.get(key);
        if (entry !== undefined) {
          hits++;
          if (!model.has(k)) return t.fail(`step ${step}: ${k} answered after it was dropped`);
          const expected = model.get(k);
          if (expected === undefined ? entry.object !== undefined : entry.object === undefined || Buffer.compare(entry.object, expected) !== 0) {
            return t.fail(`step ${step}: ${k} answered other bytes`);
          }
        }
      }
      const stats = cache.stats();
      if (stats.bytes > budget) return t.fail(`step ${step}: ${stats.bytes} bytes over a budget of ${budget}`);
    }
    const stats = cache.stats();
    t.ok(hits > 100, `budget ${budget}: ${hits} hits, ${stats.entries} entries, ${stats.evictions} evictions`);
    t.ok(budget > 500_000 || stats.evictions > 0, 'small budgets evict');
  }
  t.end();
});

t.test('the default budget is a 24th of the memory the process may use, within its bounds; larger budgets hold at most the cap', (t) => {
  const MiB = 1024 * 1024;
  t.equal(rowCacheBytesDefault(3 * 1024 * MiB), 128 * MiB);
  t.equal(rowCacheBytesDefault(512 * MiB), limits.rowCacheBytesDefaultMin, 'at least 64 MiB');
  t.equal(rowCacheBytesDefault(64 * 1024 * MiB), limits.rowCacheBytesHeldMax, 'at most 512 MiB');
  t.equal(rowCacheBytesDefault(6 * 1024 * MiB + 5), 256 * MiB, 'whole MiB');
  t.ok(rowCacheBytesDefault() >= limits.rowCacheBytesDefaultMin);
  t.ok(processMemoryBytes() > 0 && processMemoryBytes() <= totalmem(), 'the machine, or less under a container limit');
  for (const budget of [limits.rowCacheBytesMax, 2000 * MiB, limits.rowCacheBytesHeldMax + 8]) {
    const large = new RowCache(budget);
    t.equal(large.budgetBytes, limits.rowCacheBytesHeldMax, `a budget of ${budget} is accepted and holds at most the cap`);
    large.fill(b('k'), large.readStarted(), b('v'));
    t.same(large.get(b('k'))?.object, b('v'), 'and works');
  }
  t.end();
});
