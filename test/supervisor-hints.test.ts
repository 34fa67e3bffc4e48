/**
 * The hint store (lib/supervisor/hint-store.ts) on the crash-simulating file system: hints
 * are durable once `add` resolves (they survive a crash, unsynced ones may not), bounded per
 * target in bytes and age with the skipped partitions recorded, delivered in batches and
 * deleted only after every hint of a segment was acknowledged.
 */

import t from 'tap';
import { ManualClock } from '../lib/base/clock.js';
import { isRingkvError } from '../lib/base/errors.js';
import { silentLogger } from '../lib/base/log.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { MemoryFileSystem } from '../lib/storage/index.js';
import { decodeHint, encodeHint, HintStore, type Hint, type HintStoreOptions } from '../lib/supervisor/index.js';

const enc = new TextEncoder();
const text = (b: Uint8Array): string => Buffer.from(b).toString();

function options(fs: MemoryFileSystem, clock: ManualClock, overrides: Partial<HintStoreOptions> = {}): HintStoreOptions {
  return {
    fs,
    dir: '/hints',
    clock,
    logger: silentLogger,
    bytesMax: 1024 * 1024,
    windowMs: 60_000,
    segmentBytes: 4096,
    partitionOf: (key) => key[0] ?? 0,
    ...overrides,
  };
}

t.test('the hint record codec round-trips and refuses malformed records', async (t) => {
  const hint = { key: enc.encode('k'), object: enc.encode('object'), createdMs: 1234.5 };
  t.same(decodeHint(encodeHint(hint), 'f'), hint);
  const bytes = encodeHint(hint);
  for (const bad of [bytes.subarray(0, 10), bytes.subarray(0, bytes.length - 1), Uint8Array.from([2, ...bytes.subarray(1)])]) {
    try {
      decodeHint(bad, 'f');
      t.fail('accepted a malformed record');
    } catch (error) {
      t.ok(isRingkvError(error, 'KV_CORRUPTION'), 'KV_CORRUPTION');
    }
  }
});

t.test('acknowledged hints survive a crash and are delivered in order, then deleted', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed}`);
  const fs = new MemoryFileSystem();
  const clock = new ManualClock();
  let store = HintStore.open(options(fs, clock));
  const keys = Array.from({ length: 300 }, (_, i) => `key-${i}`);
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(keys.slice(i, i + 50).map((k) => store.add('node-b', enc.encode(k), enc.encode(`obj-${k}`))));
  }
  await store.add('node-c', enc.encode('other'), enc.encode('x'));
  t.same(store.targetsWithHints().sort(), ['node-b', 'node-c']);
  fs.crash(new SeededRng(seed));
  store = HintStore.open(options(fs, clock));
  const summary = store.summaries().find((s) => s.target === 'node-b')!;
  t.equal(summary.hints, 300, 'every acknowledged hint is there after the crash');
  t.ok(fs.list('/hints/' + Buffer.from('node-b').toString('hex')).length > 1, 'hints span several segments');

  const received: Hint[] = [];
  let failNext = true;
  const first = await store.deliver('node-b', 64, async (batch) => {
    if (received.length >= 128 && failNext) {
      failNext = false;
      return false;
    }
    received.push(...batch);
    return true;
  });
  t.equal(first.complete, false, 'a failed batch stops delivery');
  t.ok(store.summaries().find((s) => s.target === 'node-b')!.hints > 0, 'undelivered hints are kept');
  const second = await store.deliver('node-b', 64, async (batch) => {
    received.push(...batch);
    return true;
  });
  t.equal(second.complete, true);
  const delivered = new Set(received.map((h) => text(h.key)));
  t.same([...delivered].sort(), [...keys].sort(), 'every hint was delivered (a segment cut short is sent again: merges are idempotent)');
  t.same(store.targetsWithHints(), ['node-c'], 'node-b owes nothing now');
  t.same(fs.list('/hints/' + Buffer.from('node-b').toString('hex')).filter((n) => n.endsWith('.hints')), [], 'its segments are deleted');
  store.close();
});

t.test('past the byte or age bound a target gets no more hints, and its partitions are recorded', async (t) => {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock();
  const store = HintStore.open(options(fs, clock, { bytesMax: 100 }));
  await store.add('b', Uint8Array.of(1), new Uint8Array(60));
  try {
    await store.add('b', Uint8Array.of(7), new Uint8Array(60));
    t.fail('went past the byte bound');
  } catch (error) {
    t.ok(isRingkvError(error, 'KV_OVERLOADED'), 'KV_OVERLOADED past the byte bound');
  }
  t.same(store.summaries()[0]!.skippedPartitions, [7]);
  t.equal(store.refused, 1);

  const aged = HintStore.open(options(fs, clock, { dir: '/aged', windowMs: 1_000 }));
  await aged.add('c', Uint8Array.of(3), Uint8Array.of(1));
  clock.advance(2_000);
  await t.rejects(aged.add('c', Uint8Array.of(4), Uint8Array.of(1)), { code: 'KV_OVERLOADED' }, 'KV_OVERLOADED past the age bound');
  const reopened = HintStore.open(options(fs, clock, { dir: '/aged', windowMs: 1_000 }));
  t.same(reopened.summaries()[0]!.skippedPartitions, [4], 'skipped partitions survive a restart');
  t.same(reopened.takeSkipped('c'), [4]);
  t.same(reopened.takeSkipped('c'), [], 'taken once');
  reopened.close();
  await t.rejects(
    (async () => {
      const closing = aged.add('d', Uint8Array.of(1), Uint8Array.of(1));
      aged.close();
      await closing;
    })(),
    { code: 'KV_CLOSED' },
    'hints pending at close fail with KV_CLOSED',
  );
});

t.test('a failing fsync fails the pending hints with KV_IO and the store keeps working', async (t) => {
  const fs = new MemoryFileSystem();
  const store = HintStore.open(options(fs, new ManualClock()));
  fs.failNextSync('EIO');
  await t.rejects(store.add('b', Uint8Array.of(1), Uint8Array.of(1)), { code: 'KV_IO' });
  await store.add('b', Uint8Array.of(2), Uint8Array.of(2));
  t.equal(store.summaries()[0]!.hints >= 1, true, 'later hints are stored in a fresh segment');
  store.close();
});
