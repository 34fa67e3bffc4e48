/**
 * Merkle exchanges between two in-memory replicas of one partition: after one exchange both
 * hold exactly mergeReplicas of both states for every key, whatever the divergence (random
 * puts, deletes, concurrent writes) and however small the batches; a second exchange moves
 * nothing beyond the root; traffic grows with the differences, not the data set (200k keys
 * here, 1M in perf/antientropy.ts); the token bucket paces the sends; hostile or broken
 * messages on either side end in a typed refusal, never a throw.
 */

import t from 'tap';
import fc from 'fast-check';
import { setInvariantsEnabled } from '../lib/base/assert.js';
import { ErrorCode } from '../lib/base/errors.js';
import { partitionOfToken, tokenOf } from '../lib/base/hash.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { applyClientWrite, decodeObject, encodeObject, join, type StoredObject } from '../lib/causality/index.js';
import {
  Exchange,
  ExchangeResponder,
  messageBytes,
  objectHashOf,
  parseExchangeMessage,
  TokenBucket,
  treeHashVersion,
  type ExchangeAction,
  type ExchangeMessage,
  type ExchangeOptions,
  type ExchangeResult,
} from '../lib/antientropy/index.js';

import { dvvMerge, largerBytesMerge, Replica, type Entry } from './fixtures/ae-replica.js';

setInvariantsEnabled(true);
const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);

const text = new TextEncoder();
const bytes = (s: string): Uint8Array => text.encode(s);

interface RunOptions extends Partial<ExchangeOptions> {
  /** How many of the asked leaves the initiator's store lists per list-local (default all). */
  readonly localLeavesPerList?: number;
  /** Rewrites a reply before the initiator sees it (hostile responders). */
  readonly tamper?: (reply: unknown, request: ExchangeMessage) => unknown;
  readonly startMs?: number;
}

/** Runs one exchange from `a` to `b` to completion, in virtual time; returns its result. */
function runExchange(a: Replica, b: Replica, options: RunOptions = {}): ExchangeResult & { endMs: number } {
  const exchange = new Exchange({ exchangeId: 1, peer: b.id, tree: a.tree, ...options });
  let nowMs = options.startMs ?? 0;
  let timerAtMs: number | undefined;
  const queue: (() => ExchangeAction[])[] = [() => exchange.start(nowMs)];
  let result: ExchangeResult | undefined;
  for (let steps = 0; result === undefined; steps++) {
    if (steps > 1_000_000) throw new Error('exchange does not end');
    const next = queue.shift();
    if (next === undefined) {
      if (timerAtMs === undefined) throw new Error('exchange stalled');
      nowMs = Math.max(nowMs, timerAtMs);
      const atMs = nowMs;
      timerAtMs = undefined;
      queue.push(() => exchange.onTimer(atMs));
      continue;
    }
    for (const action of next()) {
      switch (action.type) {
        case 'send':
          for (const reply of b.answer(a.id, structuredClone(action.message))) {
            const seen = options.tamper ? options.tamper(reply, action.message) : reply;
            queue.push(() => exchange.onReply(seen, nowMs));
          }
          break;
        case 'list-local': {
          const count = Math.min(action.leaves.length, options.localLeavesPerList ?? action.leaves.length);
          queue.push(() => exchange.onLocalList(a.list(action.leaves, count), count, nowMs));
          break;
        }
        case 'read-local':
          queue.push(() => exchange.onLocalRead(action.keys.map((k) => a.get(k)), nowMs));
          break;
        case 'merge-local':
          a.mergeIn(action.key, action.object);
          break;
        case 'set-timer':
          timerAtMs = action.atMs;
          break;
        case 'complete':
          result = action.result;
          break;
      }
    }
  }
  return { ...result, endMs: nowMs };
}

/** Keys k0, k1, ... that fall in `partition` of 2^partitionBits. */
function keysIn(partition: number, partitionBits: number, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; out.length < count; i++) {
    const key = bytes(`k${i}`);
    if (partitionOfToken(tokenOf(key), partitionBits) === partition) out.push(key);
  }
  return out;
}

// --- convergence with real version vectors ---

type Op = { where: 'a' | 'b' | 'both'; key: number; value: number | null; blind: boolean };

function clientWrite(stored: Uint8Array | undefined, value: number | null, actor: string, blind: boolean, timestampMs: number): Uint8Array {
  const before: StoredObject | undefined = stored === undefined ? undefined : decodeObject(stored);
  const context = blind || before === undefined ? undefined : join(before);
  const after = applyClientWrite(before, { value: value === null ? null : bytes(`v${value}`), context, actor, timestampMs, policy: 'siblings', siblingsMax: 1000 });
  return encodeObject(after);
}

t.test('property: one exchange leaves both replicas with mergeReplicas of both, a second moves only the root', async (t) => {
  const op = fc.record({ where: fc.constantFrom<Op['where']>('a', 'b', 'both', 'both'), key: fc.nat(29), value: fc.option(fc.nat(9), { nil: null }), blind: fc.boolean() });
  const shape = fc.record({ partitionBits: fc.nat(3), leafBits: fc.nat(6), fanoutBits: fc.integer({ min: 1, max: 4 }) });
  const knobs = fc.record({
    keysPerRoundMax: fc.integer({ min: 1, max: 8 }),
    nodesPerRequestMax: fc.integer({ min: 1, max: 8 }),
    localLeavesPerList: fc.integer({ min: 1, max: 4 }),
    messageBytesSoft: fc.constantFrom(1, 100, 1 << 20),
    tightListing: fc.boolean(),
  });
  fc.assert(
    fc.property(shape, knobs, fc.array(op, { maxLength: 120 }), ({ partitionBits, leafBits, fanoutBits }, knobs, ops) => {
      const partition = partitionBits === 0 ? 0 : 2 ** partitionBits - 1;
      const keys = keysIn(partition, partitionBits, 30);
      const treeShape = { partition, partitionBits, leafBits, fanoutBits };
      const a = new Replica('a', treeShape);
      // Listing replies no larger than the fullest leaf, so they cover a few leaves at a time.
      const b = new Replica('b', treeShape, dvvMerge, { listEntriesMax: knobs.tightListing ? 30 : undefined, messageBytesSoft: knobs.messageBytesSoft });
      ops.forEach(({ where, key, value, blind }, i) => {
        const k = keys[key]!;
        const coordinator = where === 'b' ? b : a;
        const object = clientWrite(coordinator.get(k), value, coordinator.id, blind, 1000 + i);
        coordinator.put(k, object);
        if (where === 'both') b.mergeIn(k, object);
      });
      const expected = new Map<string, Uint8Array>();
      for (const id of new Set([...a.keys(), ...b.keys()])) {
        const key = new Uint8Array(Buffer.from(id, 'latin1'));
        const [x, y] = [a.get(key), b.get(key)];
        expected.set(id, x === undefined ? y! : y === undefined ? x : dvvMerge(x, y));
      }
      const first = runExchange(a, b, knobs);
      if (!first.ok) throw new Error(`exchange failed: ${first.message}`);
      for (const [id, object] of expected) {
        const key = new Uint8Array(Buffer.from(id, 'latin1'));
        if (Buffer.compare(a.get(key)!, object) !== 0 || Buffer.compare(b.get(key)!, object) !== 0) return false;
      }
      if (a.keys().length !== expected.size || b.keys().length !== expected.size) return false;
      a.tree.checkInvariants();
      if (Buffer.compare(a.tree.rootHash(), b.tree.rootHash()) !== 0) return false;
      const second = runExchange(a, b, knobs);
      const secondToo = runExchange(b, a, knobs);
      return second.ok && second.stats.messagesSent === 1 && second.stats.keysDiffering === 0 && secondToo.ok && secondToo.stats.messagesSent === 1;
    }),
    { seed, numRuns: 150 },
  );
});

t.test('a concurrent write on each side becomes two siblings on both', async (t) => {
  const shape = { partition: 0, partitionBits: 0, leafBits: 4, fanoutBits: 2 };
  const a = new Replica('a', shape);
  const b = new Replica('b', shape);
  const key = bytes('cart');
  a.put(key, clientWrite(undefined, 1, 'a', true, 10));
  b.put(key, clientWrite(undefined, 2, 'b', true, 11));
  const result = runExchange(a, b);
  t.ok(result.ok);
  t.same(result.stats.keysDiffering, 1);
  t.same(result.stats.keysFetched, 1);
  t.same(result.stats.keysPushed, 1);
  t.same(a.get(key), b.get(key));
  t.equal(decodeObject(a.get(key)!).length, 2, 'one entry per writer, each holding its sibling');
});

// --- traffic ---

/** Synthetic keys with 16-byte objects, computed once per size and shared by the pairs. */
const syntheticData = new Map<number, Entry[]>();

function syntheticEntries(count: number): Entry[] {
  let entries = syntheticData.get(count);
  if (entries === undefined) {
    const rng = new SeededRng(count);
    entries = [];
    for (let i = 0; i < count; i++) {
      const key = new Uint8Array(Buffer.from(`user:${i.toString(36).padStart(8, '0')}`, 'latin1'));
      const object = rng.bytes(16);
      entries.push({ key, token: tokenOf(key), object, hash: objectHashOf(object) });
    }
    syntheticData.set(count, entries);
  }
  return entries;
}

/** Replicas of one partition holding `count` synthetic keys; b differs in `differing` of them. */
function syntheticPair(count: number, differing: number, rng: SeededRng): { a: Replica; b: Replica } {
  const shape = { partition: 0, partitionBits: 0 };
  const a = new Replica('a', shape, largerBytesMerge);
  const b = new Replica('b', shape, largerBytesMerge);
  const entries = syntheticEntries(count);
  a.load(entries);
  b.load(entries);
  for (let d = 0; d < differing; d++) b.put(entries[rng.int(count)]!.key, rng.bytes(16));
  return { a, b };
}

t.test('traffic grows with the differences, not with the data set (200k keys)', async (t) => {
  const rng = new SeededRng(seed);
  const totals: number[] = [];
  for (const differing of [0, 1, 1000]) {
    const { a, b } = syntheticPair(200_000, differing, rng);
    const result = runExchange(a, b);
    t.ok(result.ok, `${differing} differing: ok`);
    t.same(a.tree.rootHash(), b.tree.rootHash(), `${differing} differing: roots equal afterwards`);
    const total = result.stats.bytesSent + result.stats.bytesReceived;
    t.comment(`200k keys, ${differing} differing: ${total} bytes in ${result.stats.messagesSent} requests, ${result.stats.leavesDiffering} leaves, ${result.stats.keysDiffering} keys`);
    totals.push(total);
    if (differing > 0) t.ok(result.stats.keysDiffering >= 1 && result.stats.keysDiffering <= differing);
  }
  const [equal, one, thousand] = totals as [number, number, number];
  t.ok(equal < 200, 'equal trees: one root request and its reply');
  t.ok(one < 100 * 1024, '1 differing key: under 100 KB');
  t.ok(thousand > 100 * one, '1,000 differing keys: proportionally more');
  t.ok(thousand < 1000 * one, '... but no more than 1,000 times one difference');
});

t.test('the token bucket paces the sends: traffic over time stays near its rate', async (t) => {
  const { a, b } = syntheticPair(5_000, 200, new SeededRng(seed));
  const bucket = new TokenBucket({ bytesPerSecond: 10_000, burstBytes: 2_000, nowMs: 0 });
  const result = runExchange(a, b, { bucket });
  t.ok(result.ok);
  const total = result.stats.bytesSent + result.stats.bytesReceived;
  t.ok(total > 20_000, `moved ${total} bytes`);
  t.ok(result.endMs >= ((total - 2_000 - 100_000) / 10_000) * 1000, `took ${result.endMs} virtual ms`);
  t.ok(result.endMs >= (total / 10_000) * 1000 * 0.5, 'at least half the time the rate implies');
  t.same(a.tree.rootHash(), b.tree.rootHash());
});

t.test('keysPerExchangeMax ends an exchange as partial; the next one continues', async (t) => {
  const { a, b } = syntheticPair(2_000, 100, new SeededRng(seed));
  const first = runExchange(a, b, { keysPerExchangeMax: 10, keysPerRoundMax: 5, nodesPerRequestMax: 4 });
  t.ok(first.ok && first.partial);
  t.notSame(a.tree.rootHash(), b.tree.rootHash());
  const options = { keysPerExchangeMax: 10, keysPerRoundMax: 5, nodesPerRequestMax: 4 };
  let rounds = 1;
  for (let partial = true; partial && rounds < 100; rounds++) {
    const next = runExchange(a, b, options);
    t.ok(next.ok);
    partial = next.ok && next.partial;
  }
  t.ok(rounds > 2 && rounds < 100, `${rounds} exchanges`);
  t.same(a.tree.rootHash(), b.tree.rootHash());
});

// --- hostile and failing peers ---

t.test('validators refuse malformed messages with a reason and never throw', async (t) => {
  const header = { exchangeId: 1, seq: 0 };
  const shape = { hashVersion: 1, partitionBits: 0, leafBits: 4, fanoutBits: 2 };
  const bad: unknown[] = [
    null,
    'x',
    [],
    new Uint8Array(3),
    { t: 'ae-hashes' },
    { ...header, t: 'nope' },
    { ...header, exchangeId: -1, t: 'ae-push-reply' },
    { ...header, seq: 2 ** 31, t: 'ae-push-reply' },
    { ...header, t: 'ae-hashes', partition: 2 ** 16, ...shape, level: 0, parents: [] },
    { ...header, t: 'ae-hashes', partition: 0, ...shape, hashVersion: 256, level: 0, parents: [] },
    { ...header, t: 'ae-hashes', partition: 0, ...shape, level: 0, parents: [1] },
    { ...header, t: 'ae-hashes', partition: 0, ...shape, level: 1, parents: [] },
    { ...header, t: 'ae-hashes', partition: 0, ...shape, level: 17, parents: [0] },
    { ...header, t: 'ae-hashes', partition: 0, ...shape, level: 1, parents: [-1] },
    { ...header, t: 'ae-hashes', partition: 0, ...shape, level: 1, parents: new Array(4097).fill(0) },
    { ...header, t: 'ae-list', partition: 0, ...shape, leaves: [] },
    { ...header, t: 'ae-list', partition: 0, ...shape, leaves: [2, 1] },
    { ...header, t: 'ae-list', partition: 0, ...shape, fanoutBits: 0, leaves: [1] },
    { ...header, t: 'ae-fetch', partition: 0, keys: [] },
    { ...header, t: 'ae-fetch', partition: 0, keys: ['k'] },
    { ...header, t: 'ae-fetch', partition: 0, keys: [new Uint8Array(65536)] },
    { ...header, t: 'ae-push', partition: 0, keys: [bytes('k')], objects: [] },
    { ...header, t: 'ae-push', partition: 0, keys: [bytes('k')], objects: [null] },
    { ...header, t: 'ae-hashes-reply', hashes: new Uint8Array(7) },
    { ...header, t: 'ae-list-reply', leafCount: 0, keys: [], hashes: new Uint8Array(0) },
    { ...header, t: 'ae-list-reply', leafCount: 1, keys: [bytes('k')], hashes: new Uint8Array(0) },
    { ...header, t: 'ae-list-reply', leafCount: 1, keys: 'k', hashes: new Uint8Array(0) },
    { ...header, t: 'ae-fetch-reply', objects: [] },
    { ...header, t: 'ae-fetch-reply', objects: [1] },
    { ...header, t: 'ae-error', code: 'NOPE', message: 'x' },
    { ...header, t: 'ae-error', code: ErrorCode.timeout, message: 'x'.repeat(5000) },
    { ...header, t: 'ae-push', partition: 0, keys: [bytes('k'), bytes('j')], objects: [new Uint8Array(20 << 20), new Uint8Array(20 << 20)] },
  ];
  for (const [i, raw] of bad.entries()) {
    const parsed = parseExchangeMessage(raw);
    t.notOk(parsed.ok, `refused: case ${i} (${parsed.ok ? '' : parsed.reason})`);
    if (!parsed.ok) t.ok(parsed.reason.length > 0);
  }
  const good = parseExchangeMessage({ ...header, t: 'ae-fetch-reply', objects: [null, bytes('o')] });
  t.ok(good.ok);
  if (good.ok) t.equal(messageBytes(good.value), 64 + 1 + 5 + 1);
  const error = parseExchangeMessage({ ...header, t: 'ae-error', code: ErrorCode.timeout, message: 'slow' });
  t.ok(error.ok && messageBytes(error.value) > 64);
  fc.assert(
    fc.property(fc.anything({ withTypedArray: true }), (raw) => {
      parseExchangeMessage(raw);
      parseExchangeMessage({ ...header, t: 'ae-list-reply', leafCount: 1, keys: raw, hashes: raw });
      return true;
    }),
    { seed, numRuns: 300 },
  );
});

t.test('the responder refuses requests it cannot or must not answer', async (t) => {
  const shape = { partition: 1, partitionBits: 1, leafBits: 4, fanoutBits: 2 };
  const b = new Replica('b', shape);
  const base = { exchangeId: 9, seq: 3, partition: 1 };
  const treeFields = { hashVersion: treeHashVersion, partitionBits: 1, leafBits: 4, fanoutBits: 2 };
  const codeOf = (body: unknown): string | undefined => {
    const [reply] = b.answer('a', body) as { t: string; code?: string; exchangeId?: number; seq?: number }[];
    return reply?.t === 'ae-error' ? reply.code : reply?.t;
  };
  t.equal(codeOf({ t: 'garbage' }), ErrorCode.badRequest);
  t.equal(codeOf({ ...base, t: 'ae-push-reply' }), ErrorCode.badRequest, 'a reply is not a request');
  t.equal(codeOf({ ...base, partition: 0, t: 'ae-hashes', ...treeFields, level: 0, parents: [] }), ErrorCode.unavailable);
  t.equal(codeOf({ ...base, t: 'ae-hashes', ...treeFields, leafBits: 5, level: 0, parents: [] }), ErrorCode.incompatible);
  t.equal(codeOf({ ...base, t: 'ae-list', ...treeFields, hashVersion: 2, leaves: [0] }), ErrorCode.incompatible);
  t.equal(codeOf({ ...base, t: 'ae-hashes', ...treeFields, level: 3, parents: [0] }), ErrorCode.badRequest, 'below the leaves');
  t.equal(codeOf({ ...base, t: 'ae-hashes', ...treeFields, level: 2, parents: [4] }), ErrorCode.badRequest, 'parent outside the tree');
  t.equal(codeOf({ ...base, t: 'ae-list', ...treeFields, leaves: [16] }), ErrorCode.badRequest, 'leaf outside the tree');
  const [foreign] = keysIn(0, 1, 1);
  t.equal(codeOf({ ...base, t: 'ae-fetch', keys: [foreign] }), ErrorCode.badRequest, 'key of another partition');
  t.equal(codeOf({ ...base, t: 'ae-push', keys: [foreign], objects: [bytes('x')] }), ErrorCode.badRequest);
  t.equal(codeOf({ ...base, t: 'ae-hashes', ...treeFields, level: 1, parents: [0] }), 'ae-hashes-reply');
  const [reply] = b.answer('a', { ...base, seq: 'x', t: 'ae-fetch' }) as { exchangeId: number; seq: number }[];
  t.same([reply!.exchangeId, reply!.seq], [9, 0], 'a malformed request is answered with the ids it has');
  t.equal(b.responder.stats().refused, 11);
  t.throws(() => new ExchangeResponder({ treeOf: () => undefined, listEntriesMax: 0 }), RangeError);
  t.throws(() => new ExchangeResponder({ treeOf: () => undefined, messageBytesSoft: 0 }), RangeError);
});

t.test('listing and fetch replies stay bounded: whole leaves, objects under the soft size', async (t) => {
  const shape = { partition: 0, partitionBits: 0, leafBits: 2, fanoutBits: 1 };
  const b = new Replica('b', shape, dvvMerge, { listEntriesMax: 30, messageBytesSoft: 25 });
  const keys = keysIn(0, 0, 80);
  for (const key of keys) b.put(key, clientWrite(undefined, 1, 'b', true, 1));
  const request = { t: 'ae-list' as const, exchangeId: 1, seq: 1, partition: 0, hashVersion: treeHashVersion, partitionBits: 0, leafBits: 2, fanoutBits: 1, leaves: [0, 1, 2, 3] };
  const entries = b.list(request.leaves);
  const sizes = [0, 1, 2, 3].map((leaf) => b.list([leaf]).length);
  const listed = b.responder.listReply(request, entries);
  t.equal(listed.type, 'reply');
  const message = listed.type === 'reply' ? listed.message : undefined;
  t.equal(message?.t, 'ae-list-reply');
  if (message?.t === 'ae-list-reply') {
    let covered = 0;
    let total = 0;
    while (covered < 4 && total + sizes[covered]! <= 30) total += sizes[covered++]!;
    t.equal(message.leafCount, covered, 'as many whole leaves as fit');
    t.equal(message.keys.length, total);
  }
  const tooBig = new ExchangeResponder({ treeOf: () => b.tree, listEntriesMax: 1 });
  const refused = tooBig.listReply(request, entries);
  t.equal(refused.type === 'reply' && refused.message.t === 'ae-error' ? refused.message.code : undefined, ErrorCode.tooLarge);
  const gone = new ExchangeResponder({ treeOf: () => undefined });
  const unavailable = gone.listReply(request, []);
  t.equal(unavailable.type === 'reply' && unavailable.message.t === 'ae-error' ? unavailable.message.code : undefined, ErrorCode.unavailable);
  const fetch = { t: 'ae-fetch' as const, exchangeId: 1, seq: 2, partition: 0, keys: keys.slice(0, 3) };
  const fetched = b.responder.fetchReply(fetch, [new Uint8Array(20), undefined, new Uint8Array(20)]);
  t.same(fetched.type === 'reply' && fetched.message.t === 'ae-fetch-reply' ? fetched.message.objects.map((o) => o?.length ?? null) : [], [20, null], 'stops before going over the soft size');
});

/** A pair with one differing key, for the failure cases. */
function divergedPair(): { a: Replica; b: Replica } {
  const shape = { partition: 0, partitionBits: 0, leafBits: 4, fanoutBits: 2 };
  const a = new Replica('a', shape);
  const b = new Replica('b', shape);
  for (const key of keysIn(0, 0, 20)) {
    const object = clientWrite(undefined, 1, 'a', true, 1);
    a.put(key, object);
    b.put(key, object);
  }
  b.put(bytes('extra'), clientWrite(undefined, 2, 'b', true, 2));
  a.put(bytes('mine'), clientWrite(undefined, 3, 'a', true, 3));
  return { a, b };
}

t.test('the initiator ends with KV_BAD_REQUEST on replies that do not answer its request', async (t) => {
  const cases: [string, (reply: any, request: ExchangeMessage) => unknown][] = [
    ['garbage', () => 'garbage'],
    ['wrong type', (reply, request) => (request.t === 'ae-hashes' ? { ...reply, t: 'ae-push-reply' } : reply)],
    ['short hashes', (reply) => (reply.t === 'ae-hashes-reply' ? { ...reply, hashes: new Uint8Array(0) } : reply)],
    ['too many leaves', (reply) => (reply.t === 'ae-list-reply' ? { ...reply, leafCount: 99 } : reply)],
    ['key outside the leaves', (reply) => (reply.t === 'ae-list-reply' ? { ...reply, keys: [bytes('zz-not-here-0'), ...reply.keys.slice(1)] } : reply)],
    ['a key twice', (reply) => (reply.t === 'ae-list-reply' && reply.keys.length > 1 ? { ...reply, keys: [reply.keys[0], reply.keys[0], ...reply.keys.slice(2)] } : reply)],
    ['extra objects', (reply) => (reply.t === 'ae-fetch-reply' ? { ...reply, objects: [...reply.objects, null] } : reply)],
    ['wrong push reply', (reply, request) => (request.t === 'ae-push' ? { ...reply, t: 'ae-fetch-reply', objects: [null] } : reply)],
    ['wrong list reply', (reply, request) => (request.t === 'ae-list' ? { ...reply, t: 'ae-push-reply' } : reply)],
    ['wrong fetch reply', (reply, request) => (request.t === 'ae-fetch' ? { ...reply, t: 'ae-push-reply' } : reply)],
  ];
  for (const [name, tamper] of cases) {
    const { a, b } = divergedPair();
    const result = runExchange(a, b, { tamper });
    t.equal(result.ok ? 'ok' : result.code, ErrorCode.badRequest, name);
  }
});

t.test('the initiator ends with the responder error, a timeout, or a failure the driver reports', async (t) => {
  const { a, b } = divergedPair();
  const errored = runExchange(a, b, { tamper: (reply) => ({ ...(reply as object), t: 'ae-error', code: ErrorCode.overloaded, message: 'busy' }) });
  t.equal(errored.ok ? 'ok' : errored.code, ErrorCode.overloaded);

  const exchange = new Exchange({ exchangeId: 5, peer: 'b', tree: a.tree, requestTimeoutMs: 1000 });
  const started = exchange.start(0);
  t.same(started.map((x) => x.type), ['send', 'set-timer']);
  const send = started[0]!.type === 'send' ? started[0]!.message : undefined;
  t.same(exchange.onTimer(500), [], 'not yet due');
  t.same(exchange.onReply({ t: 'ae-push-reply', exchangeId: 5, seq: 99 }, 600), [], 'a stale reply is ignored');
  t.same(exchange.onReply({ t: 'ae-push-reply', exchangeId: 6, seq: send!.seq }, 600), [], 'another exchange');
  t.equal(exchange.stats().repliesIgnored, 2);
  const timedOut = exchange.onTimer(1000);
  t.equal(timedOut[0]?.type === 'complete' && !timedOut[0].result.ok ? timedOut[0].result.code : undefined, ErrorCode.timeout);
  t.ok(exchange.done);
  t.equal(exchange.result?.ok, false);
  t.same(exchange.onReply({}, 2000), [], 'answers after the end are ignored');
  t.same(exchange.fail(ErrorCode.io, 'late', 2000), []);

  const failing = new Exchange({ exchangeId: 7, peer: 'b', tree: a.tree });
  failing.start(0);
  const failed = failing.fail(ErrorCode.unavailable, 'link closed', 1);
  t.equal(failed[0]?.type === 'complete' && !failed[0].result.ok ? failed[0].result.code : undefined, ErrorCode.unavailable);
  t.same(failing.onLocalList([], 1, 2), [], 'local answers after the end are ignored');
  t.same(failing.onLocalRead([], 2), []);

  t.throws(() => new Exchange({ exchangeId: -1, peer: 'b', tree: a.tree }), RangeError);
  t.throws(() => new Exchange({ exchangeId: 1, peer: '', tree: a.tree }), TypeError);
  t.throws(() => new Exchange({ exchangeId: 1, peer: 'b', tree: a.tree, keysPerRoundMax: 0 }), RangeError);
  const twice = new Exchange({ exchangeId: 1, peer: 'b', tree: a.tree });
  twice.start(0);
  t.throws(() => twice.start(0));
});

t.test('a responder with another tree shape makes the exchange fail as KV_INCOMPATIBLE', async (t) => {
  const a = new Replica('a', { partition: 0, partitionBits: 0, leafBits: 4 });
  const b = new Replica('b', { partition: 0, partitionBits: 0, leafBits: 5 });
  const result = runExchange(a, b);
  t.equal(result.ok ? 'ok' : result.code, ErrorCode.incompatible);
});

t.test('keys gone locally between listing and reading are not pushed', async (t) => {
  const { a, b } = divergedPair();
  const exchange = new Exchange({ exchangeId: 3, peer: 'b', tree: a.tree });
  let actions = exchange.start(0);
  let pushed = 0;
  for (let steps = 0; steps < 100 && !exchange.done; steps++) {
    const next: ExchangeAction[] = [];
    for (const action of actions) {
      if (action.type === 'send') {
        if (action.message.t === 'ae-push') pushed += action.message.keys.length;
        for (const reply of b.answer('a', action.message)) next.push(...exchange.onReply(reply, 0));
      } else if (action.type === 'list-local') next.push(...exchange.onLocalList(a.list(action.leaves), action.leaves.length, 0));
      else if (action.type === 'read-local') next.push(...exchange.onLocalRead(action.keys.map(() => undefined), 0));
      else if (action.type === 'merge-local') a.mergeIn(action.key, action.object);
    }
    actions = next;
  }
  t.ok(exchange.done && exchange.result?.ok);
  t.equal(pushed, 0);
  t.equal(exchange.stats().keysFetched, 1);
});
