/**
 * The pure pieces of anti-entropy: object and entry hashes, the partition Merkle tree
 * (incremental updates equal a rebuild in any order; interior nodes are the XOR of their
 * children; shapes and bounds), the token bucket, and the tombstone purge rule (grace AND an
 * exchange with every replica since the tombstone was stored here).
 */

import t from 'tap';
import fc from 'fast-check';
import { AssertionError, setInvariantsEnabled } from '../lib/base/assert.js';
import { partitionOfToken, tokenOf } from '../lib/base/hash.js';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { applyClientWrite, readView, type StoredObject } from '../lib/causality/index.js';
import {
  entryHashInto,
  isExpiredTombstone,
  objectHashOf,
  PartitionTree,
  PurgeLedger,
  tombstoneTimeMs,
  TokenBucket,
  type ObjectHash,
} from '../lib/antientropy/index.js';

setInvariantsEnabled(true);
const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);

const text = new TextEncoder();
const bytes = (s: string): Uint8Array => text.encode(s);

/** Keys k0, k1, ... that fall in `partition` of 2^partitionBits. */
function keysIn(partition: number, partitionBits: number, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; out.length < count; i++) {
    const key = bytes(`k${i}`);
    if (partitionOfToken(tokenOf(key), partitionBits) === partition) out.push(key);
  }
  return out;
}

t.test('object hashes are 8 bytes, deterministic, and differ for different objects', async (t) => {
  const a = objectHashOf(bytes('hello'));
  t.equal(a.length, 8);
  t.same(objectHashOf(bytes('hello')), a);
  t.notSame(objectHashOf(bytes('hellp')), a);
  t.notSame(objectHashOf(new Uint8Array(0)), objectHashOf(new Uint8Array(1)));
});

t.test('the entry hash of one key differs whenever its object hash differs', async (t) => {
  const key = bytes('key');
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const h = entryHashInto(key, objectHashOf(bytes(`v${i}`)), new Uint32Array(2));
    seen.add(`${h[0]}:${h[1]}`);
  }
  t.equal(seen.size, 2000);
});

t.test('a tree has the levels its shape implies', async (t) => {
  const tree = new PartitionTree({ partition: 0, partitionBits: 10 });
  t.equal(tree.leafBits, 12);
  t.equal(tree.fanoutBits, 4);
  t.equal(tree.depth, 3);
  t.same([0, 1, 2, 3].map((l) => tree.levelSize(l)), [1, 16, 256, 4096]);
  t.same(tree.childRange(0, 0), [0, 16]);
  t.same(tree.childRange(2, 5), [80, 96]);
  const uneven = new PartitionTree({ partition: 1, partitionBits: 1, leafBits: 10, fanoutBits: 4 });
  t.same([0, 1, 2, 3].map((l) => uneven.levelSize(l)), [1, 4, 64, 1024], 'the top level takes the remainder');
  const flat = new PartitionTree({ partition: 0, partitionBits: 0, leafBits: 0 });
  t.equal(flat.depth, 0);
  t.equal(flat.leafOfToken(0xffffffff), 0);
  t.throws(() => flat.childRange(0, 0), AssertionError);
});

t.test('leaves are consecutive segments of the partition token range', async (t) => {
  const tree = new PartitionTree({ partition: 3, partitionBits: 2, leafBits: 4, fanoutBits: 2 });
  t.equal(tree.leafOfToken(0xc0000000), 0);
  t.equal(tree.leafOfToken(0xc3ffffff), 0);
  t.equal(tree.leafOfToken(0xc4000000), 1);
  t.equal(tree.leafOfToken(0xffffffff), 15);
  t.ok(tree.holdsToken(0xc0000000));
  t.notOk(tree.holdsToken(0xbfffffff));
});

t.test('bad shapes are refused with RangeError', async (t) => {
  t.throws(() => new PartitionTree({ partition: 0, partitionBits: 17 }), RangeError);
  t.throws(() => new PartitionTree({ partition: 4, partitionBits: 2 }), RangeError);
  t.throws(() => new PartitionTree({ partition: 0, partitionBits: 2, leafBits: 17 }), RangeError);
  t.throws(() => new PartitionTree({ partition: 0, partitionBits: 2, leafBits: 1.5 }), RangeError);
  t.throws(() => new PartitionTree({ partition: 0, partitionBits: 2, fanoutBits: 0 }), RangeError);
  t.throws(() => new PartitionTree({ partition: 0, partitionBits: 2, fanoutBits: 9 }), RangeError);
});

t.test('feeding a key of another partition is our bug: an assertion', async (t) => {
  const tree = new PartitionTree({ partition: 0, partitionBits: 1 });
  const [other] = keysIn(1, 1, 1);
  t.throws(() => tree.insert(other!, objectHashOf(bytes('x'))), AssertionError);
  t.throws(() => tree.remove(keysIn(0, 1, 1)[0]!, objectHashOf(bytes('x'))), AssertionError, 'removing from an empty tree');
  t.throws(() => tree.levelHashes(0, [1]), AssertionError);
  t.throws(() => tree.levelHashes(4, [0]), AssertionError);
});

t.test('an empty tree has a zero root; insert then remove returns to it', async (t) => {
  const tree = new PartitionTree({ partition: 0, partitionBits: 0, leafBits: 6, fanoutBits: 3 });
  const zero = new Uint8Array(8);
  t.same(tree.rootHash(), zero);
  const key = bytes('a');
  const hash = objectHashOf(bytes('v'));
  tree.insert(key, hash);
  t.notSame(tree.rootHash(), zero);
  t.equal(tree.entryCount, 1);
  tree.update(key, undefined, undefined);
  t.equal(tree.entryCount, 1, 'an update from nothing to nothing is no change');
  tree.remove(key, hash);
  t.same(tree.rootHash(), zero);
  tree.insert(key, hash);
  tree.clear();
  t.same(tree.rootHash(), zero);
  t.equal(tree.entryCount, 0);
});

t.test('property: incremental updates equal a rebuild from scratch, in any order', async (t) => {
  const op = fc.record({ key: fc.nat(40), value: fc.option(fc.nat(5), { nil: undefined }) });
  fc.assert(
    fc.property(fc.nat(3), fc.nat(7), fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 200 }), (partitionBits, leafBits, fanoutBits, ops) => {
      const partition = partitionBits === 0 ? 0 : 1;
      const keys = keysIn(partition, partitionBits, 41);
      const shape = { partition, partitionBits, leafBits, fanoutBits };
      const live = new PartitionTree(shape);
      const state = new Map<number, ObjectHash>();
      for (const { key, value } of ops) {
        const next = value === undefined ? undefined : objectHashOf(bytes(`v${value}`));
        live.update(keys[key]!, state.get(key), next);
        if (next === undefined) state.delete(key);
        else state.set(key, next);
      }
      live.checkInvariants();
      const rebuilt = new PartitionTree(shape);
      for (const [key, hash] of [...state].reverse()) rebuilt.insert(keys[key]!, hash);
      rebuilt.checkInvariants();
      for (let level = 0; level <= live.depth; level++) {
        const all = Array.from({ length: live.levelSize(level) }, (_, i) => i);
        if (Buffer.compare(live.levelHashes(level, all), rebuilt.levelHashes(level, all)) !== 0) return false;
      }
      return live.entryCount === state.size && live.entryCount === rebuilt.entryCount;
    }),
    { seed, numRuns: 200 },
  );
});

t.test('childHashes lists every child of each parent in order', async (t) => {
  const tree = new PartitionTree({ partition: 0, partitionBits: 0, leafBits: 4, fanoutBits: 2 });
  for (const key of keysIn(0, 0, 50)) tree.insert(key, objectHashOf(key));
  t.same(tree.childHashes(1, [2, 0]), tree.levelHashes(2, [8, 9, 10, 11, 0, 1, 2, 3]));
  t.ok(tree.sameShape({ partitionBits: 0, leafBits: 4, fanoutBits: 2 }));
  t.notOk(tree.sameShape({ partitionBits: 0, leafBits: 4, fanoutBits: 1 }));
});

t.test('token bucket: takes while tokens last, refills at its rate, charges into debt', async (t) => {
  const bucket = new TokenBucket({ bytesPerSecond: 1000, burstBytes: 500, nowMs: 0 });
  t.ok(bucket.tryTake(400, 0));
  t.notOk(bucket.tryTake(200, 0), 'only 100 left');
  t.equal(bucket.readyAtMs(200, 0), 100);
  t.ok(bucket.tryTake(200, 100));
  bucket.charge(1000, 100);
  t.equal(bucket.tokens(100), -1000);
  t.equal(bucket.readyAtMs(10, 100), 1110);
  t.notOk(bucket.tryTake(10, 1000));
  t.equal(bucket.tokens(50), bucket.tokens(1000), 'a clock going back refills nothing');
  t.ok(bucket.tryTake(10, 1110));
  t.equal(bucket.tokens(100_000), 500, 'never above the burst');
  t.equal(bucket.readyAtMs(100, 100_000), 100_000);
  t.ok(bucket.tryTake(5000, 100_000), 'larger than the burst: allowed when full');
  t.notOk(bucket.tryTake(5000, 100_001));
  t.equal(bucket.readyAtMs(5000, 100_001), 100_001 + Math.ceil((500 - bucket.tokens(100_001)) * 1000 / 1000));
  t.throws(() => new TokenBucket({ bytesPerSecond: 0, burstBytes: 1, nowMs: 0 }), RangeError);
  t.throws(() => new TokenBucket({ bytesPerSecond: 1, burstBytes: Infinity, nowMs: 0 }), RangeError);
  t.throws(() => new TokenBucket({ bytesPerSecond: 1, burstBytes: 1, nowMs: NaN }), RangeError);
});

function tombstone(timestampMs: number): StoredObject {
  const live = applyClientWrite(undefined, { value: bytes('v'), context: undefined, actor: 'n1', timestampMs: timestampMs - 10, policy: 'siblings', siblingsMax: 100 });
  return applyClientWrite(live, { value: null, context: readView(live).context, actor: 'n1', timestampMs, policy: 'siblings', siblingsMax: 100 });
}

t.test('purge rule: grace from the delete AND an exchange with every replica after the tombstone was stored', async (t) => {
  const ledger = new PurgeLedger({ self: 'a', clockSkewMarginMs: 100 });
  const base = { partition: 7, deletedAtMs: 1_000, storedAtMs: 5_000, graceMs: 10_000, replicas: ['a', 'b', 'c'] };
  t.notOk(ledger.canPurgeTombstones({ ...base, nowMs: 50_000 }), 'no exchange yet');
  ledger.recordExchange(7, 'b', 6_000);
  ledger.recordExchange(7, 'c', 4_000);
  t.notOk(ledger.canPurgeTombstones({ ...base, nowMs: 50_000 }), 'c exchanged before the tombstone arrived here');
  ledger.recordExchange(7, 'c', 5_050);
  t.notOk(ledger.canPurgeTombstones({ ...base, nowMs: 50_000 }), 'within the clock margin');
  ledger.recordExchange(7, 'c', 5_200);
  t.ok(ledger.canPurgeTombstones({ ...base, nowMs: 50_000 }));
  t.notOk(ledger.canPurgeTombstones({ ...base, nowMs: 10_999 }), 'grace not over');
  ledger.recordExchange(7, 'c', 3_000);
  t.equal(ledger.lastExchangeMs(7, 'c'), 5_200, 'an older record never replaces a newer one');
  t.notOk(ledger.canPurgeTombstones({ ...base, partition: 8, nowMs: 50_000 }), 'records are per partition');
  t.ok(ledger.canPurgeTombstones({ ...base, replicas: ['a'], nowMs: 50_000 }), 'a single replica waits only for the grace');
  ledger.forgetPeer('b');
  t.notOk(ledger.canPurgeTombstones({ ...base, nowMs: 50_000 }));
  ledger.recordExchange(7, 'b', 9_000);
  t.ok(ledger.canPurgeTombstones({ ...base, nowMs: 50_000 }));
  ledger.forgetPartition(7);
  t.equal(ledger.lastExchangeMs(7, 'b'), undefined);
  t.throws(() => ledger.canPurgeTombstones({ ...base, nowMs: NaN }), RangeError);
  t.throws(() => ledger.recordExchange(1, 'b', NaN), RangeError);
  t.throws(() => new PurgeLedger({ self: '' }), TypeError);
  t.throws(() => new PurgeLedger({ self: 'a', clockSkewMarginMs: -1 }), RangeError);
});

t.test('purge rule on stored objects: only tombstone-only objects, timed by their newest tombstone', async (t) => {
  const ledger = new PurgeLedger({ self: 'a' });
  const dead = tombstone(1_000);
  t.equal(tombstoneTimeMs(dead), 1_000);
  const live = applyClientWrite(undefined, { value: bytes('v'), context: undefined, actor: 'n1', timestampMs: 5, policy: 'siblings', siblingsMax: 100 });
  t.equal(tombstoneTimeMs(live), undefined);
  ledger.recordExchange(1, 'b', 200_000);
  const query = { partition: 1, storedAtMs: 2_000, nowMs: 1_000_000, graceMs: 500_000, replicas: ['a', 'b'] };
  t.ok(ledger.canPurgeObject(dead, query));
  t.notOk(ledger.canPurgeObject(live, query));
  t.notOk(ledger.canPurgeObject([], query), 'the empty set holds no tombstone');
  t.ok(isExpiredTombstone(dead, 501_000, 500_000));
  t.notOk(isExpiredTombstone(dead, 500_999, 500_000));
  t.notOk(isExpiredTombstone(live, 10_000_000, 1));
});
