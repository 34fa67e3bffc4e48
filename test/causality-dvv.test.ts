/**
 * Dotted version vector sets and the replica-write operations: the paper's seed example,
 * contexts superseding exactly what they saw, siblings for concurrent and stale writes (C3, C7),
 * no sibling explosion (C8), bounded vectors (C9), deletes, last-writer-wins, limits, and the
 * merge laws over random executions checked against a causal model (V3, V4).
 */

import t from 'tap';
import fc from 'fast-check';
import { setInvariantsEnabled } from '../lib/base/assert.js';
import { ErrorCode } from '../lib/base/errors.js';
import { limits } from '../lib/base/limits.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import {
  applyClientWrite,
  canPurge,
  freshCounterFloor,
  checkActorId,
  checkSet,
  compareVectors,
  counterOf,
  decodeContext,
  descends,
  discard,
  emptySet,
  encodeContext,
  encodeObject,
  join,
  lww,
  lwwWinner,
  mergeReplicas,
  mergeVectors,
  readView,
  siblingCount,
  sync,
  update,
  values,
  type ClientWrite,
  type ConflictPolicy,
  type DvvSet,
  type Sibling,
  type VersionVector,
} from '../lib/causality/index.js';

setInvariantsEnabled(true);
const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);
const numRuns = 300;

const text = new TextEncoder();
const untext = new TextDecoder();
const bytes = (s: string): Uint8Array => text.encode(s);
const strings = (view: { values: Uint8Array[] }): string[] => view.values.map((v) => untext.decode(v)).sort();

function write(
  stored: DvvSet | undefined,
  value: string | null,
  actor: string,
  context?: Uint8Array | VersionVector,
  options: { policy?: ConflictPolicy; timestampMs?: number; siblingsMax?: number } = {},
): DvvSet {
  const request: ClientWrite = {
    value: value === null ? null : bytes(value),
    context,
    actor,
    timestampMs: options.timestampMs ?? 0, // floor 0: the paper's counters (see the kv679 test)
    policy: options.policy ?? 'siblings',
    siblingsMax: options.siblingsMax ?? limits.siblingsMax,
  };
  return applyClientWrite(stored, request);
}

const vv = (set: DvvSet): string => join(set).map((e) => `[${e.actor},${e.counter}]`).join('');

t.test('the seed example: D1 → D2 → D3 ∥ D4 → D5 supersedes both', async (t) => {
  const d1 = write(undefined, 'v1', 'Sx');
  t.equal(vv(d1), '[Sx,1]');
  const d2 = write(d1, 'v2', 'Sx', readView(d1).context);
  t.equal(vv(d2), '[Sx,2]');
  t.same(strings(readView(d2)), ['v2'], 'D2 supersedes D1');
  const context2 = readView(d2).context;
  const d3 = write(d2, 'v3', 'Sy', context2);
  const d4 = write(d2, 'v4', 'Sz', context2);
  t.equal(vv(d3), '[Sx,2][Sy,1]');
  t.equal(vv(d4), '[Sx,2][Sz,1]');
  t.equal(compareVectors(join(d3), join(d4)), 'concurrent');
  const merged = mergeReplicas(d3, d4);
  t.same(strings(readView(merged)), ['v3', 'v4'], 'D3 and D4 are siblings');
  const d5 = write(merged, 'v5', 'Sx', readView(merged).context);
  t.equal(vv(d5), '[Sx,3][Sy,1][Sz,1]');
  t.same(strings(readView(d5)), ['v5']);
  t.equal(compareVectors(join(d3), join(d5)), 'before');
  t.equal(compareVectors(join(d4), join(d5)), 'before');
  t.same(strings(readView(mergeReplicas(mergeReplicas(d3, d5), d4))), ['v5'], 'replicas holding D3 or D4 converge on D5');
});

t.test('the dvvset.erl update example: a stale context keeps the sibling it did not see', async (t) => {
  const a0 = update(emptySet, [], { value: bytes('v1'), timestampMs: 1 }, 'a');
  const context = join(a0);
  const a1 = update(a0, [], { value: bytes('v2'), timestampMs: 2 }, 'a');
  const shape = (set: DvvSet) => set.map((e) => [e.actor, e.counter, e.siblings.map((s) => untext.decode(s.value!))]);
  t.same(shape(a1), [['a', 2, ['v2', 'v1']]]);
  const a2 = update(a1, context, { value: bytes('v3'), timestampMs: 3 }, 'a');
  t.same(shape(a2), [['a', 3, ['v3', 'v2']]]);
  t.same(values(a2).map((s) => untext.decode(s.value!)), ['v3', 'v2']);
  t.same(shape(discard(a2, [{ actor: 'a', counter: 2 }])), [['a', 3, ['v3']]], 'discard drops what the context saw');
  t.same(shape(discard(a2, [{ actor: 'a', counter: 7 }])), [['a', 3, []]], 'a context ahead of the replica drops everything');
  const b1 = update(a2, [{ actor: 'a', counter: 3 }, { actor: 'c', counter: 4 }], { value: bytes('v4'), timestampMs: 4 }, 'b');
  t.same(shape(b1), [['a', 3, []], ['b', 1, ['v4']], ['c', 4, []]], 'a context names actors this replica has not heard of');
  t.same(shape(sync(b1, a2)), shape(b1), 'and the older state cannot revive what it superseded');
  t.equal(discard(a2, [{ actor: 'b', counter: 9 }]), a2, 'discard with nothing seen changes nothing');
  t.equal(discard(a2, []), a2);
});

t.test('C7: a stale context makes a sibling, not an overwrite', async (t) => {
  const v1 = write(undefined, 'v1', 'n1');
  const c1 = readView(v1).context; // client A reads
  const v2 = write(v1, 'v2', 'n1', c1); // client B writes with c1
  const v3 = write(v2, 'v3', 'n1', c1); // client A writes with the stale c1
  t.same(strings(readView(v3)), ['v2', 'v3']);
  // the same through two coordinators and a merge
  const b = write(v1, 'v2', 'n2', c1);
  const a = write(v1, 'v3', 'n1', c1);
  t.same(strings(readView(mergeReplicas(a, b))), ['v2', 'v3']);
});

t.test('C3: concurrent blind writes become siblings; a context that saw both collapses them', async (t) => {
  let ok = true;
  for (let key = 0; key < 1000; key++) {
    const coordinators = key % 2 === 0 ? ['n1', 'n1'] : ['n1', 'n2'];
    const a = write(undefined, `a${key}`, coordinators[0]!);
    const b = key % 2 === 0 ? write(a, `b${key}`, 'n1') : write(undefined, `b${key}`, coordinators[1]!);
    const merged = mergeReplicas(a, b);
    const view = readView(merged);
    ok &&= strings(view).join() === [`a${key}`, `b${key}`].join();
    const collapsed = write(merged, `c${key}`, coordinators[key % 2]!, view.context);
    ok &&= strings(readView(collapsed)).join() === `c${key}`;
    ok &&= strings(readView(mergeReplicas(collapsed, b))).join() === `c${key}`;
  }
  t.ok(ok, 'every key: both tokens read back, then one value after a write with the context');
});

/** Two clients doing read → write-with-context, steps interleaved at random (Riak's DVV example). */
function interleave(rounds: number, coordinators: [string, string], rngSeed: number): number {
  const rng = new SeededRng(rngSeed);
  const replicas: DvvSet[] = [emptySet, emptySet];
  const state = coordinators[0] === coordinators[1] ? [0, 0] : [0, 1];
  const contexts: (Uint8Array | undefined)[] = [undefined, undefined];
  const done = [0, 0];
  let maxSiblings = 0;
  while (done[0]! < rounds || done[1]! < rounds) {
    const client = done[0]! >= rounds ? 1 : done[1]! >= rounds ? 0 : rng.int(2);
    const replica = state[client]!;
    if (contexts[client] === undefined) {
      contexts[client] = readView(replicas[replica]).context;
      continue;
    }
    replicas[replica] = write(replicas[replica], `c${client}-${done[client]}`, coordinators[client]!, contexts[client]);
    replicas[1 - replica] = mergeReplicas(replicas[1 - replica], replicas[replica]!); // replication
    contexts[client] = undefined;
    done[client]!++;
    maxSiblings = Math.max(maxSiblings, siblingCount(replicas[0]!), siblingCount(replicas[1]!));
  }
  return maxSiblings;
}

t.test('C8: two clients interleaving read-modify-write 1,000 times never hold more than 2 siblings', async (t) => {
  t.equal(interleave(1000, ['n1', 'n1'], seed), 2, 'one coordinator');
  t.equal(interleave(1000, ['n1', 'n2'], seed + 1), 2, 'two coordinators with replication');
});

t.test('deletes are tombstones that follow the same rules', async (t) => {
  const v1 = write(undefined, 'v1', 'n1');
  const deleted = write(v1, null, 'n1', readView(v1).context);
  const view = readView(deleted);
  t.same([view.found, view.values.length, view.tombstoneOnly], [false, 0, true], 'a delete with context supersedes');
  t.ok(canPurge(deleted));
  const blind = write(v1, null, 'n2');
  t.same([readView(blind).found, strings(readView(blind)), readView(blind).tombstoneOnly], [true, ['v1'], false], 'a blind delete is a sibling');
  t.notOk(canPurge(blind));
  const revived = write(deleted, 'v2', 'n1', view.context);
  t.same(strings(readView(revived)), ['v2'], 'a write with the tombstone context supersedes the tombstone');
  const stale = mergeReplicas(revived, v1);
  t.same(strings(readView(stale)), ['v2'], 'merging an old replica never revives v1');
  const concurrent = mergeReplicas(deleted, write(v1, 'v3', 'n2', readView(v1).context));
  t.same([strings(readView(concurrent)), siblingCount(concurrent)], [['v3'], 2], 'a concurrent write survives a delete');
  t.notOk(canPurge(emptySet));
  t.same(readView(undefined).found, false);
  t.same(decodeContext(readView(undefined).context), [], 'a missing key has the empty context');
});

t.test('kv679: a write after a purge through the purged replica is not shadowed by the tombstone elsewhere', async (t) => {
  const dayMs = 86_400_000;
  const at = (ms: number) => ({ timestampMs: ms });
  // n1 coordinates a few writes and a delete; n2 holds the tombstone (replication).
  let n1 = write(undefined, 'v1', 'n1', undefined, at(dayMs));
  for (let i = 2; i <= 5; i++) n1 = write(n1, `v${i}`, 'n1', undefined, at(dayMs + i));
  n1 = write(n1, null, 'n1', readView(n1).context, at(dayMs + 10));
  const n2 = mergeReplicas(undefined, n1);
  t.ok(canPurge(n1), 'the key holds only the tombstone');
  // n1 purges its record after the grace period; n2 has not yet. A blind write comes to n1.
  const afterGraceMs = dayMs + 10 + 10 * dayMs;
  const reborn = write(undefined, 'new', 'n1', undefined, at(afterGraceMs));
  t.ok(counterOf(join(reborn), 'n1') > counterOf(join(n1), 'n1'), 'the new life starts above every counter of the purged one');
  t.same(strings(readView(mergeReplicas(n2, reborn))), ['new'], 'the replica still holding the tombstone keeps the new write');
  t.same(strings(readView(mergeReplicas(reborn, n2))), ['new'], 'in either merge order');
  // Without the floor (a counter restarted at 1) the tombstone covers the new dot: the bug.
  const restarted = update(emptySet, [], { value: bytes('new'), timestampMs: afterGraceMs }, 'n1');
  t.same(strings(readView(mergeReplicas(n2, restarted))), [], 'a restarted counter would be shadowed');
  // A stale context from before the delete, written after the purge: the write survives.
  const stale = write(undefined, 'late', 'n1', readView(mergeReplicas(undefined, write(undefined, 'v1', 'n1', undefined, at(dayMs)))).context, at(afterGraceMs));
  t.same(strings(readView(mergeReplicas(n2, stale))), ['late'], 'a pre-delete context does not pull the counter under the floor');
  // A replica holding the key's entry keeps counting from it (no jump per write).
  const next = write(reborn, 'again', 'n1', undefined, at(afterGraceMs + 5 * dayMs));
  t.equal(counterOf(join(next), 'n1'), counterOf(join(reborn), 'n1') + 1, 'later writes add one');
  const ahead = update(emptySet, [{ actor: 'n1', counter: 7e15 }], { value: bytes('x'), timestampMs: 1 }, 'n1', freshCounterFloor(1));
  t.equal(counterOf(join(ahead), 'n1'), 7e15 + 1, 'a context above the floor wins');
  t.equal(freshCounterFloor(Number.MAX_SAFE_INTEGER), 2 ** 52, 'floors are capped below the counter limit');
});

t.test('last-writer-wins keeps one sibling: highest (timestamp, actor id)', async (t) => {
  const opts = (timestampMs: number) => ({ policy: 'lww' as const, timestampMs });
  const a = write(undefined, 'a', 'n1', undefined, opts(10));
  const b = write(a, 'b', 'n2', undefined, opts(20));
  t.same(strings(readView(b)), ['b'], 'newer blind write wins');
  const c = write(b, 'c', 'n1', undefined, opts(5));
  t.same(strings(readView(c)), ['b'], 'an older timestamp loses even when it comes later');
  t.equal(counterOf(join(c), 'n1'), freshCounterFloor(10) + 2, 'the losing write is still in the history');
  const fromN2 = write(undefined, 'n2', 'n2', undefined, opts(20));
  t.same(strings(readView(write(fromN2, 'tie-n1', 'n1', undefined, opts(20)))), ['n2'], 'a timestamp tie goes to the higher actor id');
  const tieHigh = write(fromN2, 'tie-n3', 'n3', undefined, opts(20));
  t.same(strings(readView(tieHigh)), ['tie-n3']);
  const same = write(tieHigh, 'again', 'n3', undefined, opts(20));
  t.same(strings(readView(same)), ['again'], 'same timestamp and actor: the later event wins');
  const x = write(undefined, 'x', 'n1', undefined, opts(7));
  const y = write(undefined, 'y', 'n2', undefined, opts(3));
  const merged = mergeReplicas(x, y);
  t.equal(siblingCount(merged), 2, 'merges keep both (no policy on the repair path)');
  t.same(strings(readView(merged, 'lww')), ['x'], 'an lww read returns the newest');
  t.same(strings(readView(merged, 'siblings')), ['x', 'y']);
  const once = lww(merged, 'n3');
  const fresh = (ms: number): number => freshCounterFloor(ms) + 1;
  t.same([strings(readView(once)), vv(once)], [['x'], `[n1,${fresh(7)}][n2,${fresh(3)}][n3,1]`], 'lww reconcile re-writes the winner as a new event');
  t.equal(lww(once, 'n3'), once, 'lww of one sibling is itself');
  t.equal(lww(emptySet, 'n3'), emptySet);
  t.equal(lwwWinner(emptySet), undefined);
  const z = write(merged, 'z', 'n2', undefined, opts(1));
  t.same([strings(readView(z)), siblingCount(z)], [['x'], 1], 'an older value can win over the new write');
  t.same(strings(readView(mergeReplicas(z, y))), ['x'], 'and merging keeps it');
  const tombstoneWins = readView(mergeReplicas(x, write(undefined, null, 'n2', undefined, opts(8))), 'lww');
  t.same([tombstoneWins.found, tombstoneWins.tombstoneOnly], [false, true], 'an lww read of a newer tombstone finds nothing');
  t.same(readView(undefined, 'lww').found, false);
  t.same(strings(readView(mergeReplicas(write(z, null, 'n1', undefined, opts(9)), x))), [], 'a newer delete wins');
});

t.test('KV_TOO_MANY_SIBLINGS on the client path only; merges accept more', async (t) => {
  let a: DvvSet = emptySet;
  for (let i = 0; i < 5; i++) a = write(a, `a${i}`, 'n1', undefined, { siblingsMax: 5 });
  t.throws(() => write(a, 'one more', 'n1', undefined, { siblingsMax: 5 }), { code: ErrorCode.tooManySiblings });
  t.equal(siblingCount(a), 5, 'the refused write changed nothing');
  let b: DvvSet = emptySet;
  for (let i = 0; i < 5; i++) b = write(b, `b${i}`, 'n2', undefined, { siblingsMax: 5 });
  const merged = mergeReplicas(a, b);
  t.equal(siblingCount(merged), 10, 'replicas merge past the limit');
  t.same(strings(readView(write(merged, 'one', 'n1', readView(merged).context, { siblingsMax: 5 }))), ['one'], 'a write with context still collapses it');
  t.throws(() => write(merged, 'blind', 'n1', undefined, { siblingsMax: 5 }), { code: ErrorCode.tooManySiblings });
  let full: DvvSet = emptySet;
  for (let i = 0; i < limits.siblingsMax; i++) full = write(full, `${i}`, 'n1');
  t.throws(() => write(full, 'x', 'n1'), { code: ErrorCode.tooManySiblings }, `the default limit is ${limits.siblingsMax}`);
});

t.test('a context is checked before anything is stored', async (t) => {
  const v1 = write(undefined, 'v1', 'n1');
  t.throws(() => write(v1, 'x', 'n1', new Uint8Array([1, 2, 3])), { code: ErrorCode.badContext });
  const fake = (count: number): VersionVector =>
    Array.from({ length: count }, (_, i) => ({ actor: `fake${String(i).padStart(3, '0')}`, counter: 1 }));
  t.throws(() => write(v1, 'x', 'n1', encodeContext(fake(limits.contextEntriesMax))), { code: ErrorCode.badContext }, 'may not grow the vector past the limit');
  t.equal(join(write(v1, 'x', 'n1', encodeContext(fake(limits.contextEntriesMax - 1)))).length, limits.contextEntriesMax);
  t.throws(() => write(v1, 'x', 'n1', fake(limits.contextEntriesMax)), { code: ErrorCode.badContext }, 'decoded contexts too');
  // a key whose vector the replicas grew to the limit still takes writes from a new coordinator
  const wide = write(undefined, 'w', 'n1', fake(limits.contextEntriesMax - 1));
  t.equal(join(write(wide, 'y', 'zz-new', readView(wide).context)).length, limits.contextEntriesMax + 1);
});

t.test('client write arguments are checked', async (t) => {
  const base: ClientWrite = { value: bytes('v'), context: undefined, actor: 'n1', timestampMs: 1, policy: 'siblings', siblingsMax: 3 };
  t.throws(() => applyClientWrite(undefined, { ...base, actor: 3 as unknown as string }), TypeError);
  t.throws(() => applyClientWrite(undefined, { ...base, actor: '' }), RangeError);
  t.throws(() => applyClientWrite(undefined, { ...base, actor: 'a\uD800' }), RangeError);
  t.throws(() => applyClientWrite(undefined, { ...base, actor: 'x'.repeat(limits.actorIdBytesMax + 1) }), RangeError);
  t.throws(() => applyClientWrite(undefined, { ...base, value: 'v' as unknown as Uint8Array }), TypeError);
  t.throws(() => applyClientWrite(undefined, { ...base, timestampMs: -1 }), RangeError);
  t.throws(() => applyClientWrite(undefined, { ...base, timestampMs: 1.5 }), RangeError);
  t.throws(() => applyClientWrite(undefined, { ...base, siblingsMax: 0 }), RangeError);
  t.throws(() => applyClientWrite(undefined, { ...base, policy: 'first' as ConflictPolicy }), TypeError);
  t.equal(siblingCount(applyClientWrite(undefined, { ...base, actor: 'nœud-ü' })), 1, 'non-ASCII node ids work');
  for (let i = 0; i < 1100; i++) checkActorId(`node-${i}`); // past the bounded cache of checked ids
  t.throws(() => checkActorId(''), RangeError);
  const a = write(undefined, 'a', 'n1');
  t.equal(mergeReplicas(undefined, a), a, 'merging into a missing key takes the incoming state');
});

t.test('the O(n) invariant checks are optional', async (t) => {
  setInvariantsEnabled(false);
  const a = write(undefined, 'a', 'n1');
  t.equal(siblingCount(mergeReplicas(a, write(undefined, 'b', 'n2'))), 2);
  setInvariantsEnabled(true);
  t.throws(() => checkSet([{ actor: 'n1', counter: 1, siblings: [a[0]!.siblings[0]!, a[0]!.siblings[0]!] }]), /more siblings than events/);
});

t.test('version vectors: compare, descends, merge', async (t) => {
  const a = [{ actor: 'a', counter: 2 }, { actor: 'b', counter: 1 }];
  const b = [{ actor: 'a', counter: 2 }, { actor: 'c', counter: 1 }];
  t.equal(compareVectors(a, b), 'concurrent');
  t.equal(compareVectors(a, a), 'equal');
  t.equal(compareVectors([], a), 'before');
  t.equal(compareVectors(a, []), 'after');
  t.equal(compareVectors([{ actor: 'a', counter: 1 }], [{ actor: 'a', counter: 2 }]), 'before');
  t.equal(compareVectors([{ actor: 'a', counter: 3 }], [{ actor: 'a', counter: 2 }]), 'after');
  t.ok(descends(a, a));
  t.notOk(descends(a, b));
  t.same(mergeVectors(a, b), [{ actor: 'a', counter: 2 }, { actor: 'b', counter: 1 }, { actor: 'c', counter: 1 }]);
  t.equal(counterOf(a, 'b'), 1);
  t.equal(counterOf(a, 'z'), 0);
  const vectorArb = fc
    .dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.integer({ min: 1, max: 5 }))
    .map((d): VersionVector => Object.keys(d).sort().map((actor) => ({ actor, counter: d[actor]! })));
  fc.assert(
    fc.property(vectorArb, vectorArb, vectorArb, (x, y, z) => {
      const m = mergeVectors(x, y);
      return (
        compareVectors(m, mergeVectors(y, x)) === 'equal' &&
        compareVectors(mergeVectors(m, z), mergeVectors(x, mergeVectors(y, z))) === 'equal' &&
        compareVectors(mergeVectors(x, x), x) === 'equal' &&
        descends(m, x) && descends(m, y) &&
        (compareVectors(x, y) === 'before') === (compareVectors(y, x) === 'after')
      );
    }),
    { seed, numRuns },
  );
});

t.test('two replicas holding one dot with different siblings converge whatever the order', async (t) => {
  const make = (sibling: Sibling): DvvSet => [{ actor: 'n1', counter: 1, siblings: [sibling] }];
  const cases: [Sibling, Sibling][] = [
    [{ value: bytes('a'), timestampMs: 1 }, { value: bytes('b'), timestampMs: 2 }],
    [{ value: null, timestampMs: 1 }, { value: bytes('b'), timestampMs: 1 }],
    [{ value: bytes('ab'), timestampMs: 1 }, { value: bytes('b'), timestampMs: 1 }],
    [{ value: bytes('a'), timestampMs: 1 }, { value: bytes('ab'), timestampMs: 1 }],
  ];
  for (const [x, y] of cases) {
    t.same(encodeObject(sync(make(x), make(y))), encodeObject(sync(make(y), make(x))));
  }
});

// --- random executions against a causal model ---

type Op =
  | { kind: 'write'; replica: number; tombstone: boolean; read: number | null; timestampMs: number; raw: boolean }
  | { kind: 'read'; replica: number }
  | { kind: 'sync'; from: number; to: number };

const actors = ['n1', 'n2', 'n3'];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('write' as const), replica: fc.nat(2), tombstone: fc.boolean(), read: fc.option(fc.nat(40)), timestampMs: fc.nat(50), raw: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), replica: fc.nat(2) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('sync' as const), from: fc.nat(2), to: fc.nat(2) }) },
);

interface Event {
  /** The event's causal past: what its writer had seen. */
  readonly context: VersionVector;
  readonly sibling: Sibling;
}

/**
 * Replays ops on three replicas, checking each write against the rules: with `siblings` it
 * supersedes exactly what its context saw; with `lww` one sibling is left, the last writer.
 */
class Execution {
  readonly replicas: DvvSet[] = [emptySet, emptySet, emptySet];
  readonly reads: VersionVector[] = [];
  readonly events = new Map<string, Event>();
  readonly snapshots: DvvSet[] = [emptySet];
  readonly failures: string[] = [];

  constructor(ops: readonly Op[], readonly policy: ConflictPolicy = 'siblings') {
    for (const op of ops) this.#apply(op);
  }

  #apply(op: Op): void {
    if (op.kind === 'read') {
      this.reads.push(join(this.replicas[op.replica]!));
    } else if (op.kind === 'sync') {
      this.replicas[op.to] = mergeReplicas(this.replicas[op.to], this.replicas[op.from]!);
    } else {
      this.#write(op);
    }
    this.snapshots.push(...this.replicas);
  }

  #write(op: Extract<Op, { kind: 'write' }>): void {
    const before = this.replicas[op.replica]!;
    const context = op.read === null || this.reads.length === 0 ? [] : this.reads[op.read % this.reads.length]!;
    const actor = actors[op.replica]!;
    const value = op.tombstone ? null : `e${this.events.size}`;
    const options = { policy: this.policy, timestampMs: op.timestampMs, siblingsMax: 1000 };
    const after = write(before, value, actor, op.raw ? encodeContext(context) : context, options);
    const entry = after.find((e) => e.actor === actor)!;
    const dot = `${actor}:${entry.counter}`;
    const sibling = entry.siblings[0]!;
    const past = this.policy === 'lww' ? mergeVectors(join(before), context) : context;
    this.events.set(dot, { context: past, sibling });
    const candidates = dots(before).filter((d) => !covered(d, context));
    if (this.policy === 'siblings') {
      if ([...candidates, dot].sort().join() !== dots(after).sort().join()) this.failures.push(`${dot} did not supersede exactly its context`);
      if (String(sibling.value) !== String(value === null ? null : bytes(value))) this.failures.push(`${dot} holds the wrong value`);
    } else {
      const newest = [...candidates.map((d) => [d, siblingAt(before, d)] as const), [dot, { value: value === null ? null : bytes(value), timestampMs: op.timestampMs }] as const]
        .sort(([d1, s1], [d2, s2]) => s1.timestampMs - s2.timestampMs || compareDots(d1, d2))
        .at(-1)![1];
      if (siblingCount(after) !== 1 || String(newest.value) !== String(sibling.value) || newest.timestampMs !== sibling.timestampMs) {
        this.failures.push(`lww write ${dot} did not keep the last writer alone`);
      }
    }
    this.replicas[op.replica] = after;
  }

  /** The siblings causality allows: events the state has seen that no seen event has seen. */
  expectedDots(state: DvvSet): string[] {
    const seen = [...this.events.keys()].filter((d) => covered(d, join(state)));
    return seen.filter((d) => !seen.some((other) => other !== d && covered(d, this.events.get(other)!.context))).sort();
  }
}

function dots(state: DvvSet): string[] {
  return state.flatMap((entry) => entry.siblings.map((_, k) => `${entry.actor}:${entry.counter - k}`));
}

function siblingAt(state: DvvSet, dot: string): Sibling {
  const [actor, counter] = dot.split(':') as [string, string];
  const entry = state.find((e) => e.actor === actor)!;
  return entry.siblings[entry.counter - Number(counter)]!;
}

function compareDots(a: string, b: string): number {
  const [actorA, counterA] = a.split(':') as [string, string];
  const [actorB, counterB] = b.split(':') as [string, string];
  return actorA < actorB ? -1 : actorA > actorB ? 1 : Number(counterA) - Number(counterB);
}

function covered(dot: string, vector: VersionVector): boolean {
  const [actor, counter] = dot.split(':') as [string, string];
  return Number(counter) <= counterOf(vector, actor);
}

const same = (a: DvvSet, b: DvvSet): boolean => Buffer.compare(encodeObject(a), encodeObject(b)) === 0;
const executionArb = fc.array(opArb, { minLength: 1, maxLength: 40 });
const policyArb = fc.constantFrom<ConflictPolicy>('siblings', 'lww');
const pick = (pool: readonly DvvSet[], index: number): DvvSet => pool[index % pool.length]!;

t.test('every state of a random execution holds exactly the causally maximal siblings (V3, C9)', async (t) => {
  fc.assert(
    fc.property(executionArb, policyArb, fc.nat(), fc.nat(), (ops, policy, i, j) => {
      const run = new Execution(ops, policy);
      if (run.failures.length > 0) throw new Error(run.failures.join('; '));
      const merged = sync(pick(run.snapshots, i), pick(run.snapshots, j));
      for (const state of [...run.snapshots, merged]) {
        checkSet(state);
        if (dots(state).sort().join() !== run.expectedDots(state).join()) return false;
        for (const d of dots(state)) {
          const [held, event] = [siblingAt(state, d), run.events.get(d)!.sibling];
          if (String(held.value) !== String(event.value) || held.timestampMs !== event.timestampMs) return false;
        }
        if (join(state).length > actors.length) return false; // C9: bounded by the replicas
      }
      return true;
    }),
    { seed, numRuns },
  );
});

t.test('sync is commutative, associative and idempotent (V4)', async (t) => {
  fc.assert(
    fc.property(executionArb, policyArb, fc.nat(), fc.nat(), fc.nat(), (ops, policy, i, j, k) => {
      const pool = new Execution(ops, policy).snapshots;
      const [a, b, c] = [pick(pool, i), pick(pool, j), pick(pool, k)];
      return same(sync(a, b), sync(b, a)) && same(sync(sync(a, b), c), sync(a, sync(b, c))) && same(sync(a, a), a) && same(sync(a, emptySet), a);
    }),
    { seed, numRuns },
  );
});

t.test('sync covers both sides, keeps concurrent siblings, never revives superseded ones', async (t) => {
  fc.assert(
    fc.property(executionArb, fc.nat(), fc.nat(), (ops, i, j) => {
      const pool = new Execution(ops).snapshots;
      const [a, b] = [pick(pool, i), pick(pool, j)];
      const merged = dots(sync(a, b));
      if (!descends(join(sync(a, b)), join(a)) || !descends(join(sync(a, b)), join(b))) return false;
      const [inA, inB] = [new Set(dots(a)), new Set(dots(b))];
      for (const d of new Set([...inA, ...inB])) {
        const keep = (inA.has(d) && inB.has(d)) || (inA.has(d) && !covered(d, join(b))) || (inB.has(d) && !covered(d, join(a)));
        if (keep !== merged.includes(d)) return false;
      }
      return true;
    }),
    { seed, numRuns },
  );
});

t.test('lww reads show the last writer; an lww reconcile is an ordinary event', async (t) => {
  fc.assert(
    fc.property(executionArb, fc.nat(), (ops, i) => {
      const run = new Execution(ops);
      const state = pick(run.snapshots, i);
      const view = readView(state, 'lww');
      const winner = lwwWinner(state);
      const reconciled = lww(state, 'n1');
      return (
        view.values.length <= 1 &&
        (winner === undefined || values(state).every((s) => s.timestampMs <= winner.timestampMs)) &&
        siblingCount(reconciled) === Math.min(1, siblingCount(state)) &&
        descends(join(reconciled), join(state)) &&
        same(sync(reconciled, state), reconciled)
      );
    }),
    { seed, numRuns },
  );
});
