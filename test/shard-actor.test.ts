/**
 * The shard actor on the main thread (engine on a MemoryFileSystem), the shard frame codec,
 * and the frame sender over a real mailbox.
 */
import t from 'tap';
import fc from 'fast-check';
import { MessageChannel } from 'node:worker_threads';
import { ManualClock } from '../lib/base/clock.js';
import { ErrorCode, RingkvError } from '../lib/base/errors.js';
import { partitionOfToken, tokenOf } from '../lib/base/hash.js';
import { limits } from '../lib/base/limits.js';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { createMailbox, MailboxConsumer, MailboxProducer } from '../lib/mailbox/index.js';
import { murmur3 } from '../lib/base/hash.js';
import {
  decodeReply,
  decodeReplySpan,
  decodeRequest,
  decodeRequestSpan,
  encodeReply,
  encodeReplyInto,
  encodeRequest,
  errorReply,
  replyBytes,
  type ShardReply,
  type ShardRequest,
} from '../lib/protocol/shard-frames.js';
import { exposeBackgroundRunner, FrameArena, FrameSender, Overlay, ShardActor } from '../lib/shard/index.js';
import { Engine } from '../lib/storage/engine.js';
import { CountingFileSystem } from './fixtures/counting-file-system.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string): Uint8Array => enc.encode(s);
const texts = (r: ShardReply): string[] => (r.kind === 'read' ? r.values.map((v) => dec.decode(v)).sort() : []);

function setup(extra: { policy?: 'siblings' | 'lww'; siblingsMax?: number } = {}) {
  const fs = new CountingFileSystem();
  const engine = Engine.open({ fs, dir: '/shard-0', partitionBits: 4, valueBytesMax: limits.entryBytesMax - limits.keyBytesCeiling });
  const clock = new ManualClock();
  const actor = new ShardActor({ engine, actor: 'store-test', policy: extra.policy ?? 'siblings', clock, siblingsMax: extra.siblingsMax ?? limits.siblingsMax });
  let id = 0;
  const one = async (r: ShardRequest): Promise<ShardReply> => (await actor.handle([{ ...r, requestId: ++id }]))[0]!;
  const get = (key: string) => one({ op: 'get', requestId: 0, key: b(key) });
  const put = (key: string, value: string, context?: Uint8Array) => one({ op: 'put', requestId: 0, key: b(key), value: b(value), context });
  const del = (key: string, context?: Uint8Array) => one({ op: 'delete', requestId: 0, key: b(key), context });
  return { fs, engine, clock, actor, get, put, del };
}

function contextOf(r: ShardReply): Uint8Array {
  if (r.kind !== 'read' && r.kind !== 'written') throw new Error(`no context in ${r.kind}`);
  return r.context;
}

t.test('get, put and delete: not-found is a result, a delete with context hides the value', async (t) => {
  const { get, put, del, engine } = setup();
  t.match(await get('a'), { kind: 'read', found: false, values: [] });
  t.match(await put('a', 'one'), { kind: 'written' });
  const read = await get('a');
  t.same(texts(read), ['one']);
  t.match(await del('a', contextOf(read)), { kind: 'written' });
  t.match(await get('a'), { kind: 'read', found: false, values: [] }, 'deleted');
  t.ok(engine.get(b('a')), 'the tombstone is stored as an object, not an engine delete');
  await engine.close();
});

t.test('concurrent blind puts become siblings; a context supersedes exactly what it saw', async (t) => {
  const { get, put, clock, engine } = setup();
  await put('k', 'x');
  clock.advance(1);
  await put('k', 'y');
  const both = await get('k');
  t.same(texts(both), ['x', 'y'], 'two blind puts are siblings');
  await put('k', 'z', contextOf(both));
  t.same(texts(await get('k')), ['z'], 'the context superseded both');
  const seen = contextOf(await get('k'));
  await put('k', 'p', seen);
  await put('k', 'q', seen);
  t.same(texts(await get('k')), ['p', 'q'], 'a stale context makes a sibling');
  await engine.close();
});

t.test('lww keeps one value per key', async (t) => {
  const { get, put, clock, engine } = setup({ policy: 'lww' });
  await put('k', 'old');
  clock.advance(5);
  await put('k', 'new');
  t.same(texts(await get('k')), ['new']);
  await engine.close();
});

t.test('two puts to one key in one batch reconcile in order and share one fdatasync', async (t) => {
  const { actor, fs, engine, get } = setup();
  const before = fs.syncs;
  const replies = await actor.handle([
    { op: 'put', requestId: 1, key: b('k'), value: b('first'), context: undefined },
    { op: 'put', requestId: 2, key: b('k'), value: b('second'), context: undefined },
    { op: 'get', requestId: 3, key: b('k') },
    { op: 'put', requestId: 4, key: b('other'), value: b('v'), context: undefined },
  ]);
  t.same(replies.map((r) => r.requestId), [1, 2, 3, 4], 'one reply per request, in order');
  t.same(texts(replies[2]!), ['first', 'second'], 'the get in the batch sees both');
  t.equal(fs.syncs - before, 1, 'one fdatasync for the whole batch');
  t.same(texts(await get('k')), ['first', 'second'], 'neither put was lost');
  t.equal(actor.overlaySize, 0, 'the overlay is empty once committed');
  await engine.close();
});

t.test('batches in flight at once see each other through the overlay', async (t) => {
  const { actor, engine, get } = setup();
  const a = actor.handle([{ op: 'put', requestId: 1, key: b('k'), value: b('a'), context: undefined }]);
  const c = actor.handle([{ op: 'put', requestId: 2, key: b('k'), value: b('c'), context: undefined }, { op: 'get', requestId: 3, key: b('k') }]);
  t.ok(actor.overlaySize > 0, 'uncommitted objects are in the overlay');
  const [ra, rc] = await Promise.all([a, c]);
  t.match(ra[0], { kind: 'written' });
  t.same(texts(rc[1]!), ['a', 'c']);
  t.same(texts(await get('k')), ['a', 'c']);
  await actor.idle();
  await engine.close();
});

t.test('client-path limits become error replies and spare the rest of the batch', async (t) => {
  const { actor, engine } = setup({ siblingsMax: 1 });
  const replies = await actor.handle([
    { op: 'put', requestId: 1, key: b('big'), value: new Uint8Array(limits.valueBytesMax + 1), context: undefined },
    { op: 'put', requestId: 2, key: new Uint8Array(limits.keyBytesMax + 1), value: b('v'), context: undefined },
    { op: 'get', requestId: 3, key: new Uint8Array(limits.keyBytesMax + 1) },
    { op: 'put', requestId: 4, key: b('s'), value: b('1'), context: undefined },
    { op: 'put', requestId: 5, key: b('s'), value: b('2'), context: undefined },
    { op: 'put', requestId: 6, key: b('c'), value: b('v'), context: b('not a context') },
    { op: 'delete', requestId: 7, key: b('ok'), context: undefined },
  ]);
  t.match(replies[0], { kind: 'error', code: ErrorCode.tooLarge });
  t.match(replies[1], { kind: 'error', code: ErrorCode.tooLarge });
  t.match(replies[2], { kind: 'error', code: ErrorCode.tooLarge });
  t.match(replies[3], { kind: 'written' });
  t.match(replies[4], { kind: 'error', code: ErrorCode.tooManySiblings });
  t.match(replies[5], { kind: 'error', code: ErrorCode.badContext });
  t.match(replies[6], { kind: 'written' });
  await engine.close();
});

t.test('a failed commit makes the batch writes KV_INDETERMINATE and uncommitted reads KV_UNAVAILABLE', async (t) => {
  const { actor, fs, engine, put } = setup();
  await put('old', 'v');
  fs.failNextSync('EIO');
  const replies = await actor.handle([
    { op: 'put', requestId: 1, key: b('k'), value: b('v'), context: undefined },
    { op: 'get', requestId: 2, key: b('k') },
    { op: 'get', requestId: 3, key: b('old') },
    { op: 'delete', requestId: 4, key: b('old'), context: undefined },
  ]);
  t.match(replies[0], { kind: 'error', code: ErrorCode.indeterminate });
  t.match(replies[1], { kind: 'error', code: ErrorCode.unavailable });
  t.same(texts(replies[2]!), ['v'], 'a committed read is unaffected');
  t.match(replies[3], { kind: 'error', code: ErrorCode.indeterminate });
  t.equal(actor.overlaySize, 0);
  await engine.close().catch(() => undefined);
});

t.test('a later batch that read a failed batch fails its reads too', async (t) => {
  const { actor, fs, engine } = setup();
  fs.failNextSync('EIO');
  const first = actor.handle([{ op: 'put', requestId: 1, key: b('k'), value: b('v'), context: undefined }]);
  const second = actor.handle([{ op: 'get', requestId: 2, key: b('k') }]);
  t.match((await first)[0], { kind: 'error', code: ErrorCode.indeterminate });
  t.match((await second)[0], { kind: 'error', code: ErrorCode.unavailable });
  await engine.close().catch(() => undefined);
});

t.test('a crash request throws out of handle, as a bug would', async (t) => {
  const { actor, engine } = setup();
  t.throws(() => actor.handle([{ op: 'crash', requestId: 1 }]), /crash requested/);
  await engine.close();
});

t.test('partition scan pages through raw stored objects; a bad partition is an error reply', async (t) => {
  const { actor, engine, put } = setup();
  const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
  for (const k of keys) await put(k, 'v');
  const partition = partitionOfToken(tokenOf(b(keys[0]!)), 4);
  const inPartition = keys.filter((k) => partitionOfToken(tokenOf(b(k)), 4) === partition);
  const seen: string[] = [];
  let afterKey: Uint8Array | undefined;
  for (let page = 0; page < 100; page++) {
    const [reply] = await actor.handle([{ op: 'scan', requestId: 1, partition, limit: 1, afterKey }]);
    if (reply!.kind !== 'scan') throw new Error('expected a scan reply');
    for (const e of reply.entries) seen.push(dec.decode(e.key));
    afterKey = reply.nextAfterKey;
    if (!afterKey) break;
  }
  t.same(seen.sort(), inPartition.sort());
  const [bad] = await actor.handle([{ op: 'scan', requestId: 9, partition: 1 << 20, limit: 1, afterKey: undefined }]);
  t.match(bad, { kind: 'error', code: ErrorCode.badRequest, requestId: 9 });
  await engine.close();
});

const requests: ShardRequest[] = [
  { op: 'get', requestId: 1, key: b('k') },
  { op: 'get', requestId: 0xffffffff, key: new Uint8Array(0) },
  { op: 'put', requestId: 2, key: b('k'), value: b('v'), context: undefined, wantObject: false },
  { op: 'put', requestId: 3, key: b('k'), value: new Uint8Array(0), context: b('ctx'), wantObject: true },
  { op: 'delete', requestId: 4, key: b('k'), context: undefined, wantObject: true },
  { op: 'delete', requestId: 5, key: b('k'), context: new Uint8Array(0), wantObject: false },
  { op: 'readObject', requestId: 10, key: b('k') },
  { op: 'put', requestId: 13, key: b('k'), value: b('v'), context: undefined, wantObject: true, ttlMs: undefined, overwrite: undefined, keepTtl: undefined, mint: { attempt: 2, rid: b('0123456789abcdef') } },
  { op: 'delete', requestId: 14, key: b('k'), context: b('c'), wantObject: false, overwrite: undefined, mint: { attempt: 0, rid: b('r') } },
  { op: 'mergeObject', requestId: 11, key: b('k'), object: b('object bytes') },
  { op: 'mergeObject', requestId: 12, key: new Uint8Array(0), object: new Uint8Array(0) },
  { op: 'scan', requestId: 6, partition: 7, limit: 100, afterKey: undefined },
  { op: 'scan', requestId: 7, partition: 0, limit: 1, afterKey: b('after') },
  { op: 'crash', requestId: 8 },
];
const replies: ShardReply[] = [
  { kind: 'read', requestId: 1, found: true, values: [b('a'), b('')], context: b('c') },
  { kind: 'read', requestId: 2, found: false, values: [], context: new Uint8Array(0) },
  { kind: 'written', requestId: 3, context: b('ctx'), object: undefined },
  { kind: 'written', requestId: 7, context: b('ctx'), object: b('obj') },
  { kind: 'object', requestId: 8, object: b('obj') },
  { kind: 'object', requestId: 9, object: undefined },
  { kind: 'merged', requestId: 10 },
  { kind: 'scan', requestId: 4, entries: [{ key: b('k'), value: b('v') }], nextAfterKey: b('k') },
  { kind: 'scan', requestId: 5, entries: [], nextAfterKey: undefined },
  { kind: 'error', requestId: 6, code: ErrorCode.tooLarge, message: 'too big ✓' },
];

t.test('shard frames round-trip every request and reply kind', async (t) => {
  for (const r of requests) t.same(decodeRequest(encodeRequest(r)), r, r.op);
  for (const r of replies) t.same(decodeReply(encodeReply(r)), r, r.kind);
  t.throws(() => encodeRequest({ op: 'get', requestId: 1, key: new Uint8Array(0x10000) }), { code: ErrorCode.tooLarge });
  const emptyRid = encodeRequest({ op: 'put', requestId: 5, key: b('k'), value: b('v'), context: undefined, mint: { attempt: 0, rid: new Uint8Array(0) } });
  t.throws(() => decodeRequest(emptyRid), { code: ErrorCode.badRequest }, 'a mint with an empty rid is a malformed frame, not a shard crash');
  t.match(errorReply(3, new Error('boom')), { kind: 'error', code: ErrorCode.badRequest, message: 'boom' });
  t.match(errorReply(3, 'text', ErrorCode.io), { code: ErrorCode.io, message: 'text' });
  t.match(errorReply(3, new RingkvError(ErrorCode.closed, 'c')), { code: ErrorCode.closed });
});

t.test('malformed frames throw KV_BAD_REQUEST, never crash', async (t) => {
  const bad = (bytes: Uint8Array, decode: (b: Uint8Array) => unknown, what: string) =>
    t.throws(() => decode(bytes), { code: ErrorCode.badRequest }, what);
  const get = encodeRequest(requests[0]!);
  bad(get.subarray(0, 5), decodeRequest, 'shorter than the header');
  bad(get.subarray(0, get.length - 1), decodeRequest, 'truncated');
  bad(new Uint8Array([...get, 0]), decodeRequest, 'trailing byte');
  bad(Uint8Array.from(get, (x, i) => (i === 0 ? 9 : x)), decodeRequest, 'version');
  bad(Uint8Array.from(get, (x, i) => (i === 1 ? 99 : x)), decodeRequest, 'unknown request tag');
  bad(Uint8Array.from(get, (x, i) => (i === 2 ? 0x80 : x)), decodeRequest, 'unknown flag');
  bad(get, decodeReply, 'a request is not a reply');
  const error = encodeReply(replies.find((r) => r.kind === 'error')!);
  bad(Uint8Array.from(error, (x, i) => (i === 9 ? 0x41 : x)), decodeReply, 'unknown error code');
  try {
    decodeRequest(get.subarray(0, get.length - 1));
  } catch (e) {
    t.equal((e as RingkvError).details.requestId, 1, 'the request id is reported when readable');
  }
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed}`);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (bytes, asRequest) => {
      try {
        if (asRequest) decodeRequest(bytes);
        else decodeReply(bytes);
      } catch (e) {
        if (!(e instanceof RingkvError) || e.code !== ErrorCode.badRequest) throw e;
      }
    }),
    { seed, numRuns: 2000 },
  );
});

t.test('the frame sender keeps order through a full mailbox and bounds its backlog', async (t) => {
  const buffer = createMailbox(1024);
  const producer = new MailboxProducer(buffer);
  const consumer = new MailboxConsumer(buffer);
  const errors: unknown[] = [];
  const sender = new FrameSender(producer, { backlogFramesMax: 50, onError: (e) => errors.push(e) });
  t.throws(() => sender.send(new Uint8Array(producer.frameBytesMax + 1)), { code: ErrorCode.tooLarge });
  for (let i = 0; i < 40; i++) sender.send(Uint8Array.of(i, ...new Uint8Array(60)));
  t.ok(sender.backlogFrames > 0, 'frames wait for space');
  t.throws(() => {
    for (let i = 0; i < 60; i++) sender.send(new Uint8Array(60));
  }, { code: ErrorCode.overloaded });
  const seen: number[] = [];
  while (seen.length < 40) {
    await consumer.waitForFrames(50);
    consumer.drain((frame) => void (frame.length === 61 && seen.push(frame[0]!)));
  }
  t.same(seen, Array.from({ length: 40 }, (_, i) => i), 'in send order');
  // Drain the rest, then fill again and close under the backlog: the loop reports KV_CLOSED.
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 5));
    consumer.drain(() => undefined);
  }
  for (let i = 0; i < 30; i++) sender.send(new Uint8Array(60));
  sender.flush();
  consumer.close();
  await new Promise((r) => setTimeout(r, 50));
  t.match(errors, [{ code: ErrorCode.closed }]);
});

t.test('the background runner is served over a message port', async (t) => {
  const { port1, port2 } = new MessageChannel();
  const jobs: unknown[] = [];
  exposeBackgroundRunner({ run: async (job) => (jobs.push(job), { outputs: [], bytesRead: 0, bytesWritten: 0 }) as never }, port1);
  const { wrap } = await import('comlink');
  const remote = wrap<{ run(job: unknown): Promise<unknown> }>(port2 as never);
  t.ok(await remote.run({ kind: 'flush' }));
  t.same(jobs, [{ kind: 'flush' }]);
  port1.close();
  port2.close();
});

t.test('span decoding reads a frame inside a larger buffer, as copies or as views', async (t) => {
  const frame = encodeRequest({ op: 'put', requestId: 5, key: b('key'), value: b('value'), context: undefined, wantObject: false });
  const buffer = new Uint8Array(frame.length + 10).fill(0xee);
  buffer.set(frame, 7);
  const copied = decodeRequestSpan(buffer, 7, frame.length);
  const viewed = decodeRequestSpan(buffer, 7, frame.length, false);
  t.same(viewed, copied);
  buffer.fill(0, 7);
  t.same(dec.decode((copied as { value: Uint8Array }).value), 'value', 'a copy outlives the buffer');
  t.same((viewed as { value: Uint8Array }).value, new Uint8Array(5), 'a view shows the buffer');
  t.throws(() => decodeRequestSpan(buffer, 7, 4), { code: ErrorCode.badRequest }, 'a span shorter than a header');
  const reply: ShardReply = { kind: 'read', requestId: 9, found: true, values: [new Uint8Array(300).fill(3), b('x')], context: b('ctx') };
  const out = new Uint8Array(replyBytes(reply) + 4);
  t.equal(encodeReplyInto(reply, out, 4), out.length, 'encodes exactly its size');
  t.same(decodeReplySpan(out, 4, out.length - 4), reply);
});

t.test('the overlay keeps keys whose tokens collide apart and releases only the last writer', async (t) => {
  const seen = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; pair === undefined; i++) {
    const key = `k${i}`;
    const token = murmur3(b(key));
    const other = seen.get(token);
    if (other !== undefined) pair = [other, key];
    seen.set(token, key);
  }
  const [x, y] = pair.map(b) as [Uint8Array, Uint8Array];
  const overlay = new Overlay();
  t.equal(overlay.get(x), undefined, 'empty');
  const ex = overlay.set(x, [], b('x1'), 1);
  const ey = overlay.set(y, [], b('y1'), 1);
  const ez = overlay.set(b('z'), [], b('z1'), 1);
  t.equal(overlay.size, 3);
  t.same(overlay.get(b(dec.decode(x)))?.bytes, b('x1'), 'found by bytes, not identity');
  t.same(overlay.get(y)?.bytes, b('y1'), 'a colliding key has its own entry');
  t.equal(overlay.set(x, [], b('x2'), 2), ex, 'a later write updates the entry in place');
  overlay.release(ex, 1);
  t.same(overlay.get(x)?.bytes, b('x2'), 'an earlier batch does not release a later write');
  overlay.release(ey, 1);
  t.equal(overlay.get(y), undefined);
  t.same(overlay.get(x)?.bytes, b('x2'), 'releasing one colliding key keeps the other');
  overlay.release(ex, 2);
  overlay.release(ez, 1);
  overlay.release(ez, 1);
  t.equal(overlay.size, 0);
  const again = overlay.set(y, [], b('y2'), 3);
  overlay.set(x, [], b('x3'), 3);
  overlay.release(again, 3);
  t.same(overlay.get(x)?.bytes, b('x3'), 'releasing the head of a chain keeps the rest');
});

t.test('the frame arena packs small frames into chunks and gives large ones their own array', async (t) => {
  const arena = new FrameArena(64);
  const source = Uint8Array.from({ length: 40 }, (_, i) => i);
  const a = arena.copy(source, 2, 8);
  const chunk = arena.chunk;
  const c = arena.copy(source, 10, 8);
  t.equal(arena.chunk, chunk, 'small frames share a chunk');
  t.same(chunk.subarray(a, a + 8), source.subarray(2, 10));
  t.same(chunk.subarray(c, c + 8), source.subarray(10, 18));
  const big = arena.copy(source, 0, 30);
  t.not(arena.chunk, chunk, 'a frame over a quarter chunk gets its own array');
  t.equal(big, 0);
  t.same(arena.chunk, source.subarray(0, 30));
  arena.copy(source, 0, 16);
  t.equal(arena.chunk.length, 64, 'then a fresh chunk');
  const wide = new FrameArena(1024);
  const long = new Uint8Array(200).fill(7);
  t.same(wide.chunk.subarray(wide.copy(long, 0, 200), 200), long, 'frames over 64 bytes are copied with set');
  for (let i = 0; i < 8; i++) wide.copy(long, 0, 200);
  t.ok(wide.chunk.length === 1024, 'a full chunk is replaced, never overwritten');
});

t.test('sendEncoded writes in place when there is room and keeps order through the backlog', async (t) => {
  const buffer = createMailbox(1024);
  const producer = new MailboxProducer(buffer);
  const consumer = new MailboxConsumer(buffer);
  const sender = new FrameSender(producer, { onError: (e) => t.fail(String(e)) });
  const fill = (n: number, out: Uint8Array, start: number): number => (out.fill(n, start, start + 60), start + 60);
  for (let i = 0; i < 40; i++) sender.sendEncoded(60, fill, i);
  t.ok(sender.backlogFrames > 0, 'frames that do not fit wait in the backlog');
  t.throws(() => sender.sendEncoded(producer.frameBytesMax + 1, fill, 0), { code: ErrorCode.tooLarge });
  const seen: number[] = [];
  while (seen.length < 40) {
    await consumer.waitForFrames(50);
    consumer.drain((frame) => void seen.push(frame[0]!));
  }
  t.same(seen, Array.from({ length: 40 }, (_, i) => i), 'in send order');
  t.throws(() => sender.sendEncoded(10, () => 3, 0), /another length/, 'an encoder that lies about its size is a bug');
  consumer.close();
});

t.test('with deferEncoding a frame waiting for space is encoded once, in place, when it fits, in send order', async (t) => {
  const buffer = createMailbox(1024);
  const producer = new MailboxProducer(buffer);
  const consumer = new MailboxConsumer(buffer);
  const sender = new FrameSender(producer, { backlogFramesMax: 30, deferEncoding: true, onError: (e) => t.fail(String(e)) });
  const encoded: number[] = [];
  const fill = (n: number, out: Uint8Array, start: number): number => (encoded.push(n), out.fill(n, start, start + 60), start + 60);
  for (let i = 0; i < 25; i++) {
    if (i % 5 === 4) sender.send(new Uint8Array(60).fill(i));
    else sender.sendEncoded(60, fill, i);
  }
  const waiting = sender.backlogFrames;
  t.ok(waiting > 0, 'frames wait for space');
  const sentAtOnce = Array.from({ length: 25 - waiting }, (_, i) => i).filter((i) => i % 5 !== 4);
  t.same(encoded, sentAtOnce, 'frames waiting for space are not encoded yet');
  t.throws(() => {
    for (let i = 0; i < 40; i++) sender.sendEncoded(60, fill, 99);
  }, { code: ErrorCode.overloaded }, 'the backlog stays bounded');
  const seen: number[] = [];
  while (seen.length < 25) {
    await consumer.waitForFrames(50);
    consumer.drain((frame) => void (frame[0]! < 25 && seen.push(frame[0]!)));
  }
  t.same(seen, Array.from({ length: 25 }, (_, i) => i), 'in send order');
  t.equal(encoded.filter((n) => n < 25).length, 20, 'each encoded frame was encoded exactly once');
  while (sender.backlogFrames > 0) {
    await consumer.waitForFrames(50);
    consumer.drain(() => undefined);
  }
  consumer.close();
});

t.test('a batch over the engine batch limits is committed in slices, in one group commit', async (t) => {
  const { actor, fs, engine, get } = setup();
  const count = limits.batchOpsMax + 5;
  const before = fs.syncs;
  const replies = await actor.handle(Array.from({ length: count }, (_, i) => ({ op: 'put' as const, requestId: i, key: b(`k${i}`), value: b('v'), context: undefined })));
  t.equal(replies.filter((r) => r.kind === 'written').length, count, 'every put was written');
  t.ok(fs.syncs - before <= 2, 'the slices share the group commit');
  t.same(texts(await get(`k${count - 1}`)), ['v']);
  await engine.close();
});
