/**
 * The shard actor's replica operations on the main thread (engine on a MemoryFileSystem):
 * a coordinated write replying with its stored object, replica reads of raw objects, and
 * merges of other replicas' objects — durable, written only when they change something,
 * never limited by client limits, waiting for (and failing with) the uncommitted state they
 * merged into.
 */
import t from 'tap';
import { ManualClock } from '../lib/base/clock.js';
import { ErrorCode } from '../lib/base/errors.js';
import { limits } from '../lib/base/limits.js';
import { applyClientWrite, decodeObject, encodeObject, readView, type StoredObject } from '../lib/causality/index.js';
import type { ShardReply, ShardRequest } from '../lib/protocol/shard-frames.js';
import { ShardActor } from '../lib/shard/index.js';
import { Engine } from '../lib/storage/engine.js';
import { CountingFileSystem } from './fixtures/counting-file-system.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string): Uint8Array => enc.encode(s);

function setup(siblingsMax: number = limits.siblingsMax) {
  const fs = new CountingFileSystem();
  const engine = Engine.open({ fs, dir: '/shard-0', partitionBits: 4, keyBytesMax: limits.keyBytesCeiling, valueBytesMax: limits.entryBytesMax - limits.keyBytesCeiling });
  const clock = new ManualClock();
  const actor = new ShardActor({ engine, actor: 'node-a', policy: 'siblings', clock, siblingsMax });
  let id = 0;
  const one = async (r: ShardRequest): Promise<ShardReply> => (await actor.handle([{ ...r, requestId: ++id }]))[0]!;
  return { fs, engine, clock, actor, one };
}

/** An object as another replica (`actor`) would hold it after blind writes of `texts`. */
function remoteObject(actor: string, texts: string[], base?: StoredObject): StoredObject {
  let object = base;
  for (const [i, text] of texts.entries()) {
    object = applyClientWrite(object, { value: b(text), context: undefined, actor, timestampMs: 1_000 + i, policy: 'siblings', siblingsMax: 1_000 });
  }
  return object ?? [];
}

const shown = (bytes: Uint8Array | undefined): string[] =>
  bytes === undefined ? [] : readView(decodeObject(bytes)).values.map((v) => dec.decode(v)).sort();

function objectOf(reply: ShardReply): Uint8Array | undefined {
  if (reply.kind === 'object' || reply.kind === 'written') return reply.object;
  throw new Error(`no object in a ${reply.kind} reply`);
}

t.test('a coordinated write replies with the stored object; a plain put does not', async (t) => {
  const { one, engine } = setup();
  const plain = await one({ op: 'put', requestId: 0, key: b('p'), value: b('v'), context: undefined });
  t.match(plain, { kind: 'written', object: undefined }, 'the plain put path carries no object');
  const put = await one({ op: 'put', requestId: 0, key: b('k'), value: b('one'), context: undefined, wantObject: true });
  t.same(objectOf(put), engine.get(b('k')), 'the object is exactly what the engine stores');
  t.same(shown(objectOf(put)), ['one']);
  const del = await one({ op: 'delete', requestId: 0, key: b('k'), context: put.kind === 'written' ? put.context : undefined, wantObject: true });
  const tombstone = decodeObject(objectOf(del)!);
  t.equal(readView(tombstone).found, false, 'a coordinated delete carries the tombstone');
  t.ok(readView(tombstone).tombstoneOnly);
  await engine.close();
});

t.test('readObject returns the raw stored object, or undefined when missing', async (t) => {
  const { one, engine } = setup();
  t.match(await one({ op: 'readObject', requestId: 0, key: b('none') }), { kind: 'object', object: undefined });
  await one({ op: 'put', requestId: 0, key: b('k'), value: b('v'), context: undefined });
  const read = await one({ op: 'readObject', requestId: 0, key: b('k') });
  t.same(objectOf(read), engine.get(b('k')));
  const longKey = new Uint8Array(limits.keyBytesMax + 1);
  t.match(await one({ op: 'readObject', requestId: 0, key: longKey }), { kind: 'object', object: undefined }, 'replica keys are not held to keyBytesMax');
  t.match(await one({ op: 'readObject', requestId: 0, key: new Uint8Array(limits.keyBytesCeiling + 1) }), { kind: 'error', code: ErrorCode.tooLarge });
  await engine.close();
});

t.test('a merge keeps concurrent siblings of both replicas, durably, in one group commit', async (t) => {
  const { one, actor, engine, fs } = setup();
  await one({ op: 'put', requestId: 0, key: b('k'), value: b('local'), context: undefined });
  const incoming = encodeObject(remoteObject('node-b', ['remote']));
  const before = fs.syncs;
  const replies = await actor.handle([
    { op: 'mergeObject', requestId: 1, key: b('k'), object: incoming },
    { op: 'mergeObject', requestId: 2, key: b('new'), object: incoming },
    { op: 'readObject', requestId: 3, key: b('k') },
  ]);
  t.match(replies, [{ kind: 'merged', requestId: 1 }, { kind: 'merged', requestId: 2 }, { kind: 'object', requestId: 3 }]);
  t.equal(fs.syncs - before, 1, 'both merges share one fdatasync');
  t.same(shown(engine.get(b('k'))), ['local', 'remote'], 'concurrent values are both kept');
  t.same(engine.get(b('new')), incoming, 'a merge into a missing key stores the object as it came');
  t.same(shown(objectOf(replies[2]!)), ['local', 'remote'], 'a replica read in the batch sees the merge');
  await engine.close();
});

t.test('merging an older or equal object changes nothing and writes nothing', async (t) => {
  const { one, engine, fs } = setup();
  const first = await one({ op: 'put', requestId: 0, key: b('k'), value: b('v1'), context: undefined, wantObject: true });
  const older = objectOf(first)!;
  const second = await one({ op: 'put', requestId: 0, key: b('k'), value: b('v2'), context: first.kind === 'written' ? first.context : undefined, wantObject: true });
  const stored = engine.get(b('k'));
  const before = fs.syncs;
  t.match(await one({ op: 'mergeObject', requestId: 0, key: b('k'), object: older }), { kind: 'merged' });
  t.match(await one({ op: 'mergeObject', requestId: 0, key: b('k'), object: objectOf(second)! }), { kind: 'merged' });
  t.match(await one({ op: 'mergeObject', requestId: 0, key: b('gone'), object: encodeObject([]) }), { kind: 'merged' });
  t.equal(fs.syncs, before, 'no engine write');
  t.same(engine.get(b('k')), stored, 'the stored object is unchanged');
  t.same(shown(stored), ['v2']);
  t.equal(engine.get(b('gone')), undefined, 'an empty object is not stored');
  await engine.close();
});

t.test('malformed or oversized replica objects are KV_BAD_REQUEST and never stored', async (t) => {
  const { one, engine } = setup();
  const good = encodeObject(remoteObject('node-b', ['x']));
  const cases: [string, Uint8Array][] = [
    ['garbage', b('not an object')],
    ['truncated', good.subarray(0, good.length - 1)],
    ['trailing byte', Uint8Array.of(...good, 0)],
    ['oversized', new Uint8Array(limits.entryBytesMax - limits.keyBytesCeiling + 1)],
  ];
  for (const [what, object] of cases) {
    t.match(await one({ op: 'mergeObject', requestId: 0, key: b('k'), object }), { kind: 'error', code: ErrorCode.badRequest }, what);
  }
  t.equal(engine.get(b('k')), undefined, 'nothing stored');
  t.match(await one({ op: 'mergeObject', requestId: 0, key: new Uint8Array(limits.keyBytesCeiling + 1), object: good }), { kind: 'error', code: ErrorCode.tooLarge });
  await engine.close();
});

t.test('merges never apply client limits: siblings and key length beyond them are kept', async (t) => {
  const { one, engine } = setup(2);
  const manySiblings = remoteObject('node-b', ['1', '2', '3', '4', '5']);
  const longKey = new Uint8Array(limits.keyBytesMax + 10).fill(7);
  t.match(await one({ op: 'mergeObject', requestId: 0, key: longKey, object: encodeObject(manySiblings) }), { kind: 'merged' });
  t.equal(readView(decodeObject(engine.get(longKey)!)).values.length, 5, 'five siblings over siblingsMax 2');
  t.match(await one({ op: 'mergeObject', requestId: 0, key: b('k'), object: encodeObject(manySiblings) }), { kind: 'merged' });
  t.match(await one({ op: 'put', requestId: 0, key: b('k'), value: b('6'), context: undefined }), { kind: 'error', code: ErrorCode.tooManySiblings }, 'the client path still is');
  await engine.close();
});

t.test('a merge in the same batch as a put reconciles in order; neither is lost', async (t) => {
  const { actor, engine } = setup();
  const replies = await actor.handle([
    { op: 'put', requestId: 1, key: b('k'), value: b('local'), context: undefined },
    { op: 'mergeObject', requestId: 2, key: b('k'), object: encodeObject(remoteObject('node-b', ['remote'])) },
    { op: 'put', requestId: 3, key: b('k'), value: b('later'), context: undefined, wantObject: true },
  ]);
  t.same(shown(objectOf(replies[2]!)), ['later', 'local', 'remote']);
  t.same(shown(engine.get(b('k'))), ['later', 'local', 'remote']);
  await engine.close();
});

t.test('a merge or replica read of uncommitted state waits for its commit and fails with it', async (t) => {
  const { actor, engine, fs } = setup();
  const object = encodeObject(remoteObject('node-b', ['x']));
  fs.failNextSync('EIO');
  const first = actor.handle([{ op: 'mergeObject', requestId: 1, key: b('k'), object }]);
  t.equal(actor.overlaySize, 1, 'the merged object is in the overlay until it commits');
  const second = actor.handle([
    { op: 'mergeObject', requestId: 2, key: b('k'), object },
    { op: 'readObject', requestId: 3, key: b('k') },
  ]);
  t.match((await first)[0], { kind: 'error', code: ErrorCode.indeterminate }, 'a merge whose commit failed is indeterminate');
  const [merge, read] = await second;
  t.match(merge, { kind: 'error', code: ErrorCode.unavailable }, 'a merge covered by failed uncommitted state is not acknowledged');
  t.match(read, { kind: 'error', code: ErrorCode.unavailable }, 'a replica read of failed uncommitted state fails');
  t.equal(actor.overlaySize, 0);
  await engine.close().catch(() => undefined);
});

t.test('a merge covered by uncommitted state is acknowledged once that state commits', async (t) => {
  const { actor, engine, fs } = setup();
  const object = encodeObject(remoteObject('node-b', ['x']));
  const first = actor.handle([{ op: 'mergeObject', requestId: 1, key: b('k'), object }]);
  const before = fs.syncs;
  const second = actor.handle([{ op: 'mergeObject', requestId: 2, key: b('k'), object }]);
  const [[a], [c]] = await Promise.all([first, second]);
  t.match(a, { kind: 'merged' });
  t.match(c, { kind: 'merged' });
  t.equal(fs.syncs - before, 1, 'only the first merge wrote');
  t.same(engine.get(b('k')), object);
  await engine.close();
});
