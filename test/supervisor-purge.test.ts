/**
 * Tombstone purging (issue 5 §2): the purge pass (lib/supervisor/purge.ts) over a fake store
 * and a manual clock, the anti-entropy driver recording exchanges and purging across three
 * in-process replicas (one of them away during the delete), the shard's compare-and-delete
 * (`purgeIf`) in the shard actor on the main thread and through real workers, and its frames.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ManualClock } from '../lib/base/clock.js';
import { ErrorCode } from '../lib/base/errors.js';
import { partitionOfToken, tokenOf } from '../lib/base/hash.js';
import { silentLogger } from '../lib/base/log.js';
import { PurgeLedger } from '../lib/antientropy/index.js';
import { applyClientWrite, decodeObject, encodeObject, mergeReplicas, readView, type StoredObject } from '../lib/causality/index.js';
import { decodeReply, decodeRequest, encodeReply, encodeRequest } from '../lib/protocol/shard-frames.js';
import { ShardActor } from '../lib/shard/index.js';
import { Engine } from '../lib/storage/engine.js';
import { MemoryFileSystem } from '../lib/storage/memory-file-system.js';
import { openReplicaStore, type ReplicaStore, type ScanPartitionPage } from '../lib/store/index.js';
import { startNode } from '../lib/server/index.js';
import { AntiEntropy } from '../lib/supervisor/anti-entropy.js';
import { TombstonePurger } from '../lib/supervisor/purge.js';

const partitionBits = 2;
const enc = new TextEncoder();
const b = (s: string): Uint8Array => enc.encode(s);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const partitionOf = (key: Uint8Array): number => partitionOfToken(tokenOf(key), partitionBits);
const write = (before: StoredObject | undefined, value: Uint8Array | null, timestampMs: number, context?: StoredObject): StoredObject =>
  applyClientWrite(before, {
    value,
    context: context === undefined ? undefined : context.map((e) => ({ actor: e.actor, counter: e.counter })),
    actor: 'n1',
    timestampMs,
    policy: 'siblings',
    siblingsMax: 100,
  });

/** A value written at `timestampMs - 10` and deleted at `timestampMs`. */
function tombstoneAt(timestampMs: number): { live: Uint8Array; dead: Uint8Array } {
  const live = write(undefined, b('v'), timestampMs - 10);
  return { live: encodeObject(live), dead: encodeObject(write(live, null, timestampMs, live)) };
}

/** A replica store over a Map: scans in (token, key) order, merges with mergeReplicas, compare-and-delete. */
class FakeStore {
  readonly data = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  /** Runs once after the next scan page is made (a write racing the purge pass). */
  afterScan: (() => void) | undefined;
  purges = 0;

  set(key: Uint8Array, value: Uint8Array): void {
    this.data.set(hex(key), { key, value });
  }

  has(key: Uint8Array): boolean {
    return this.data.has(hex(key));
  }

  async readObject(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.data.get(hex(key))?.value;
  }

  async mergeObject(key: Uint8Array, object: Uint8Array): Promise<void> {
    const before = this.data.get(hex(key))?.value;
    const merged = mergeReplicas(before === undefined ? undefined : decodeObject(before), decodeObject(object));
    this.set(key, encodeObject(merged));
  }

  async purgeIf(key: Uint8Array, expected: Uint8Array): Promise<boolean> {
    const current = this.data.get(hex(key));
    if (current === undefined || hex(current.value) !== hex(expected)) return false;
    this.purges++;
    return this.data.delete(hex(key));
  }

  async scanPartition(partition: number, options: { afterKey?: Uint8Array; limit: number }): Promise<ScanPartitionPage> {
    const order = (x: Uint8Array, y: Uint8Array): number => tokenOf(x) - tokenOf(y) || Buffer.compare(x, y);
    const all = [...this.data.values()].filter((e) => partitionOf(e.key) === partition).sort((x, y) => order(x.key, y.key));
    const rest = options.afterKey === undefined ? all : all.filter((e) => order(e.key, options.afterKey!) > 0);
    const entries = rest.slice(0, options.limit);
    const hook = this.afterScan;
    this.afterScan = undefined;
    hook?.();
    return rest.length > options.limit ? { entries, nextAfterKey: entries[entries.length - 1]!.key } : { entries };
  }
}

function purgerOf(store: FakeStore, clock: ManualClock, replicas: string[], extra: { trackedMax?: number } = {}) {
  const ledger = new PurgeLedger({ self: 'a', clockSkewMarginMs: 0 });
  const purger = new TombstonePurger({ store: store as unknown as ReplicaStore, ledger, clock, graceMs: 1_000, replicasOf: () => replicas, ...extra });
  return { ledger, purger };
}

t.test('the pass purges only after the grace AND an exchange with every other replica after it first saw the tombstone', async (t) => {
  const clock = new ManualClock();
  const store = new FakeStore();
  const key = b('gone');
  const p = partitionOf(key);
  const { dead } = tombstoneAt(clock.wallMs());
  store.set(key, dead);
  store.set(b('alive'), encodeObject(write(undefined, b('x'), clock.wallMs())));
  const { ledger, purger } = purgerOf(store, clock, ['a', 'b', 'c']);
  ledger.recordExchange(p, 'b', clock.monotonicMs());
  ledger.recordExchange(p, 'c', clock.monotonicMs());
  clock.advance(5_000);
  let pass = await purger.purgePartition(p);
  t.match(pass, { tombstones: 1, purged: 0 }, 'exchanges before the pass first saw it do not count');
  t.equal(purger.tracked, 1, 'its first-seen time is kept');
  clock.advance(10);
  ledger.recordExchange(p, 'b', clock.monotonicMs());
  clock.advance(10);
  pass = await purger.purgePartition(p);
  t.equal(pass.purged, 0, 'never while one replica (c) has not exchanged since');
  t.ok(store.has(key));
  ledger.recordExchange(p, 'c', clock.monotonicMs());
  clock.advance(10);
  pass = await purger.purgePartition(p);
  t.match(pass, { purged: 1, changed: 0 }, 'purged once every other replica exchanged after it');
  t.notOk(store.has(key));
  t.equal(purger.tracked, 0, 'a purged key is forgotten');
  t.equal(store.data.size, 1, 'live keys are never touched');
});

t.test('the grace counts from the delete: exchanges alone never purge a young tombstone', async (t) => {
  const clock = new ManualClock();
  const store = new FakeStore();
  const key = b('young');
  const p = partitionOf(key);
  store.set(key, tombstoneAt(clock.wallMs()).dead);
  const { ledger, purger } = purgerOf(store, clock, ['a', 'b']);
  await purger.purgePartition(p);
  clock.advance(100);
  ledger.recordExchange(p, 'b', clock.monotonicMs());
  clock.advance(100);
  t.equal((await purger.purgePartition(p)).purged, 0, 'within the grace');
  clock.advance(1_000);
  t.equal((await purger.purgePartition(p)).purged, 1, 'after the grace');
});

t.test('a changed tombstone restarts its clock, and the compare-and-delete keeps a key rewritten in between', async (t) => {
  const clock = new ManualClock();
  const store = new FakeStore();
  const [k1, k2] = [b('k1'), b('k2')];
  const p1 = partitionOf(k1);
  store.set(k1, tombstoneAt(clock.wallMs()).dead);
  const { ledger, purger } = purgerOf(store, clock, ['a', 'b']);
  clock.advance(5_000);
  await purger.purgePartition(p1);
  // Another delete of k1 lands (a new tombstone object): it must wait for a new exchange.
  const again = write(decodeObject(store.data.get(hex(k1))!.value), null, clock.wallMs() - 2_000);
  store.set(k1, encodeObject(again));
  clock.advance(10);
  ledger.recordExchange(p1, 'b', clock.monotonicMs());
  clock.advance(10);
  t.equal((await purger.purgePartition(p1)).purged, 0, 'the changed object was first seen only now');
  clock.advance(10);
  ledger.recordExchange(p1, 'b', clock.monotonicMs());
  clock.advance(10);
  // A write lands between the scan and the compare-and-delete.
  const rewritten = encodeObject(write(again, b('back'), clock.wallMs(), again));
  store.afterScan = () => store.set(k1, rewritten);
  const pass = await purger.purgePartition(p1);
  t.match(pass, { purged: 0, changed: 1 }, 'the purge lost the race');
  t.same(store.data.get(hex(k1))!.value, rewritten, 'the new write is kept');
  t.same(readView(decodeObject(store.data.get(hex(k1))!.value)).values, [b('back')]);
  const p2 = partitionOf(k2);
  t.equal((await purger.purgePartition(p2)).scanned, p2 === p1 ? 1 : 0);
});

t.test('tracking is bounded (an untracked tombstone waits) and forgotten with the partition', async (t) => {
  const clock = new ManualClock();
  const store = new FakeStore();
  const keys = Array.from({ length: 40 }, (_, i) => b(`t${i}`));
  const p = partitionOf(keys[0]!);
  const mine = keys.filter((k) => partitionOf(k) === p);
  for (const key of mine) store.set(key, tombstoneAt(clock.wallMs()).dead);
  const { ledger, purger } = purgerOf(store, clock, ['a', 'b'], { trackedMax: 1 });
  clock.advance(5_000);
  await purger.purgePartition(p);
  t.equal(purger.tracked, 1, 'only trackedMax first-seen times are kept');
  clock.advance(10);
  ledger.recordExchange(p, 'b', clock.monotonicMs());
  clock.advance(10);
  t.equal((await purger.purgePartition(p)).purged, 1, 'only the tracked one may go');
  t.equal(store.data.size, mine.length - 1);
  purger.forgetPartition(p);
  t.equal(purger.tracked, 0);
  const notMine = purgerOf(store, clock, ['b', 'c']).purger;
  t.match(await notMine.purgePartition(p), { scanned: 0, purged: 0 }, 'a partition this node does not replicate is not scanned');
  const single = purgerOf(store, clock, ['a']).purger;
  t.equal((await single.purgePartition(p)).purged, mine.length - 1, 'a single replica waits only for the grace');
  t.throws(() => new TombstonePurger({ store: store as unknown as ReplicaStore, ledger, clock, graceMs: Infinity, replicasOf: () => [] }), RangeError);
  t.throws(() => new TombstonePurger({ store: store as unknown as ReplicaStore, ledger, clock, graceMs: 1, replicasOf: () => [], trackedMax: -1 }), RangeError);
});

interface Replica {
  id: string;
  store: FakeStore;
  ae: AntiEntropy;
}

/** Three AntiEntropy drivers whose rpcs call each other's `serve`; every key has all three as replicas. */
function threeReplicas(t: Test, clock: ManualClock, down: Set<string>): Map<string, Replica> {
  const ids = ['a', 'b', 'c'];
  const replicas = new Map<string, Replica>();
  for (const id of ids) {
    const store = new FakeStore();
    const ae = new AntiEntropy({
      store: store as unknown as ReplicaStore,
      partitionBits,
      clock,
      logger: silentLogger,
      call: async (to, body) => (down.has(to) || down.has(id) ? undefined : replicas.get(to)!.ae.serve(id, body)),
      myPartitions: () => [0, 1, 2, 3],
      peersOf: () => ids.filter((peer) => peer !== id && !down.has(peer)),
      replicasOf: () => ids,
      isUp: (peer) => !down.has(peer),
      selfId: id,
      tombstoneGraceMs: 1_000,
    });
    t.teardown(() => ae.close());
    replicas.set(id, { id, store, ae });
  }
  return replicas;
}

t.test('driver: nobody purges while a replica that missed the delete is away; once back, all purge and nothing returns', async (t) => {
  const clock = new ManualClock();
  const down = new Set(['c']);
  const replicas = threeReplicas(t, clock, down);
  const [a, bb, c] = ['a', 'b', 'c'].map((id) => replicas.get(id)!);
  const repairOn = async (r: Replica): Promise<void> => {
    clock.advance(10); // time moves between repairs, as it does between real ones
    await r.ae.repair();
  };
  const keys = Array.from({ length: 12 }, (_, i) => b(`doomed-${i}`));
  for (const key of keys) {
    const { live, dead } = tombstoneAt(clock.wallMs());
    c.store.set(key, live); // c was down for the delete
    a.store.set(key, dead);
    bb.store.set(key, dead);
  }
  await repairOn(a);
  await repairOn(bb);
  clock.advance(5_000);
  await repairOn(a);
  await repairOn(bb);
  t.equal(a.store.data.size + bb.store.data.size, 2 * keys.length, 'no purge: c has not exchanged since the delete');
  t.equal(a.ae.stats().tombstonesPurged, 0);

  down.clear();
  await repairOn(c); // c gets the tombstones (its pass sees them first now)
  t.ok(keys.every((key) => readView(decodeObject(c.store.data.get(hex(key))!.value)).found === false), 'c holds the tombstones');
  await repairOn(a);
  t.equal(a.store.data.size, 0, 'a purged once c had exchanged with it since');
  t.equal(a.ae.stats().tombstonesPurged, keys.length);
  await repairOn(c);
  t.equal(a.store.data.size, 0, 'an expired tombstone is not re-seeded into a replica that purged it');
  await repairOn(c);
  await repairOn(bb);
  await repairOn(bb);
  t.equal(bb.store.data.size + c.store.data.size, 0, 'every replica purged');
  await repairOn(a);
  t.equal(a.store.data.size + bb.store.data.size + c.store.data.size, 0, 'nothing came back');
});

t.test('driver: partial or failed exchanges are not recorded; scheduled ticks run purge passes', async (t) => {
  const clock = new ManualClock();
  const down = new Set<string>();
  const replicas = threeReplicas(t, clock, down);
  const a = replicas.get('a')!;
  const key = b('scheduled');
  for (const r of replicas.values()) r.store.set(key, tombstoneAt(clock.wallMs()).dead);
  await a.ae.repair();
  clock.advance(5_000);
  down.add('b');
  t.equal((await a.ae.exchange(partitionOf(key), 'b')).ok, false, 'an exchange with a down peer fails');
  await a.ae.repair(); // only c is up: b's failed exchange does not count
  t.ok(a.store.has(key), 'kept: b never completed an exchange since');
  down.clear();
  // A fresh driver (as after a restart: empty ledger) on a clock that moves with every reading.
  let monotonicMs = clock.monotonicMs();
  const moving = { wallMs: () => clock.wallMs(), monotonicMs: () => ++monotonicMs };
  const tick = new AntiEntropy({
    store: a.store as unknown as ReplicaStore,
    partitionBits,
    clock: moving,
    logger: silentLogger,
    call: async (to, body) => replicas.get(to)!.ae.serve('a', body),
    myPartitions: () => [partitionOf(key)],
    peersOf: () => ['b', 'c'],
    replicasOf: () => ['a', 'b', 'c'],
    selfId: 'a',
    tombstoneGraceMs: 1_000,
    intervalMs: 5,
  });
  t.teardown(() => tick.close());
  tick.start();
  const deadline = Date.now() + 10_000;
  while (a.store.has(key) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.notOk(a.store.has(key), 'scheduled exchanges with b and c, then a purge pass, dropped it');
  t.ok((tick.stats().tombstonesPurged ?? 0) >= 1);
  t.throws(() => new AntiEntropy({ ...optionsOf(a.store), tombstoneGraceMs: -1 }), RangeError);
  const off = new AntiEntropy({ ...optionsOf(a.store), tombstoneGraceMs: Infinity });
  t.equal((await off.repair()).total, 0, 'Infinity: purging off, nothing to repair without peers');
  const corrupt = new FakeStore();
  const badKey = [0, 1, 2, 3].map((i) => b(`bad-${i}`)).find((k) => partitionOf(k) === 0)!;
  corrupt.set(badKey, b('not an object'));
  const failing = new AntiEntropy({ ...optionsOf(corrupt), tombstoneGraceMs: 1 });
  await failing.repair();
  t.ok(corrupt.has(badKey), 'a pass that fails (corrupt object) is logged and purges nothing');
});

function optionsOf(store: FakeStore) {
  return {
    store: store as unknown as ReplicaStore,
    partitionBits,
    clock: new ManualClock(),
    logger: silentLogger,
    call: async () => undefined,
    myPartitions: () => [0],
    peersOf: () => [],
    replicasOf: () => ['a'],
    selfId: 'a',
  };
}

t.test('shard actor: purgeIf deletes only the exact object, in the group commit, and later reads see it gone', async (t) => {
  const engine = Engine.open({ fs: new MemoryFileSystem(), dir: '/shard-0', partitionBits: 4 });
  t.teardown(() => engine.close());
  const actor = new ShardActor({ engine, actor: 'purge-test', policy: 'siblings', clock: new ManualClock() });
  const key = b('k');
  const [written] = await actor.handle([{ op: 'delete', requestId: 1, key, context: undefined, wantObject: true }]);
  const object = written!.kind === 'written' ? written!.object! : new Uint8Array();
  const [wrong] = await actor.handle([{ op: 'purgeIf', requestId: 2, key, expected: b('other') }]);
  t.same(wrong, { kind: 'purged', requestId: 2, deleted: false }, 'another object: kept');
  const replies = await actor.handle([
    { op: 'purgeIf', requestId: 3, key, expected: object },
    { op: 'readObject', requestId: 4, key },
    { op: 'purgeIf', requestId: 5, key, expected: object },
  ]);
  t.same(replies[0], { kind: 'purged', requestId: 3, deleted: true });
  t.same(replies[1], { kind: 'object', requestId: 4, object: undefined }, 'the uncommitted delete is visible in the batch');
  t.same(replies[2], { kind: 'purged', requestId: 5, deleted: false }, 'already gone');
  t.equal(engine.get(key), undefined, 'an engine delete');
  const race = await actor.handle([
    { op: 'put', requestId: 6, key, value: b('new'), context: undefined },
    { op: 'purgeIf', requestId: 7, key, expected: object },
  ]);
  t.match(race[1], { kind: 'purged', deleted: false }, 'a write earlier in the batch wins');
  const [big] = await actor.handle([{ op: 'purgeIf', requestId: 8, key: new Uint8Array(70_000), expected: object }]);
  t.match(big, { kind: 'error', code: ErrorCode.tooLarge });
});

t.test('purgeIf and purged frames round-trip; a bad purged flag is malformed', async (t) => {
  const request = { op: 'purgeIf' as const, requestId: 9, key: b('key'), expected: b('object') };
  t.same(decodeRequest(encodeRequest(request)), request);
  for (const deleted of [true, false]) t.same(decodeReply(encodeReply({ kind: 'purged', requestId: 3, deleted })), { kind: 'purged', requestId: 3, deleted });
  const bad = encodeReply({ kind: 'purged', requestId: 3, deleted: true });
  bad[bad.length - 1] = 2;
  t.throws(() => decodeReply(bad), { code: ErrorCode.badRequest });
});

t.test('replica store on real workers: purgeIf is a durable compare-and-delete', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-purge-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let store = await openReplicaStore({ dir, shards: 2, partitionBits: 6, actor: 'node-a', sync: 'none' });
  t.teardown(() => store.close());
  const key = b('doomed');
  const live = await store.coordinateWrite(key, b('v'), undefined);
  t.equal(await store.purgeIf(key, live.object), true, 'the store does not judge; the caller decides');
  t.equal(await store.readObject(key), undefined);
  const dead = await store.coordinateWrite(key, null, undefined);
  const stale = dead.object;
  const back = await store.coordinateWrite(key, b('back'), dead.context);
  t.equal(await store.purgeIf(key, stale), false, 'rewritten since the scan: kept');
  t.same(await store.readObject(key), back.object);
  const [purged, rewritten] = await Promise.all([store.purgeIf(key, back.object), store.coordinateWrite(key, b('again'), undefined)]);
  t.equal(purged, true, 'the purge came first in the shard');
  t.same(readView(decodeObject(rewritten.object)).values, [b('again')], 'the write after it is kept');
  const other = b('other-key');
  const otherDead = await store.coordinateWrite(other, null, undefined);
  t.equal(await store.purgeIf(other, otherDead.object), true);
  await store.close();
  store = await openReplicaStore({ dir, sync: 'none' });
  t.equal(await store.readObject(other), undefined, 'the delete is durable across a reopen');
  t.same(readView(decodeObject((await store.readObject(key))!)).values, [b('again')]);
  await t.rejects(store.purgeIf(key, 'x' as never), TypeError);
  await t.rejects(store.purgeIf('k' as never, b('x')), TypeError);
});

t.test('startNode checks tombstoneGraceMs before starting anything', async (t) => {
  for (const bad of [-1, 1.5, NaN]) await t.rejects(startNode({ tombstoneGraceMs: bad }), RangeError);
});
