/**
 * Mailbox specification: frames cross in order, whole, once; a full mailbox refuses or waits and
 * never overwrites; wake-ups are not lost; and a real worker thread echoes 200k checksummed
 * frames of random sizes back intact while its event loop stays served.
 */

import { strict as assertStrict } from 'node:assert';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import t from 'tap';
import { AssertionError } from '../lib/base/assert.js';
import { ManualClock } from '../lib/base/clock.js';
import { crc32c } from '../lib/base/crc32c.js';
import { ErrorCode, isRingkvError } from '../lib/base/errors.js';
import { limits } from '../lib/base/limits.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import {
  MAILBOX_HEADER_BYTES,
  MailboxConsumer,
  MailboxProducer,
  createMailbox,
  frameBytesMaxFor,
  recordBytesOf,
} from '../lib/mailbox/index.js';
import { HEADER_BYTES, MAILBOX_VERSION, Word } from '../lib/mailbox/mailbox-layout.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);

/** A frame whose bytes depend on its sequence number (and which carries it when ≥ 4 bytes). */
function makeFrame(sequence: number, lengthBytes: number): Uint8Array {
  const frame = new Uint8Array(lengthBytes);
  for (let i = 0; i < lengthBytes; i++) frame[i] = (sequence * 131 + i * 7 + 1) & 0xff;
  if (lengthBytes >= 4) new DataView(frame.buffer).setUint32(0, sequence, true);
  return frame;
}

/** A mailbox pair on one thread, with head and tail both starting at `startPosition`. */
function openMailbox(capacityBytes: number, startPosition = 0, options: { clock?: ManualClock; waitSliceMs?: number } = {}) {
  const buffer = createMailbox(capacityBytes);
  const words = new Int32Array(buffer);
  words[Word.head] = startPosition;
  words[Word.tail] = startPosition;
  return { buffer, producer: new MailboxProducer(buffer, options), consumer: new MailboxConsumer(buffer, options) };
}

function drainAll(consumer: MailboxConsumer, maxFrames?: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  consumer.drain((frame) => void frames.push(frame.slice()), maxFrames);
  return frames;
}

t.test('createMailbox accepts only power-of-two capacities within the limits', async (t) => {
  for (const bad of [0, 48, 100, 3 * 1024, limits.mailboxBytesMax * 2, 1.5, Number.NaN]) {
    t.throws(() => createMailbox(bad), RangeError, `capacity ${bad}`);
  }
  const buffer = createMailbox(1024);
  t.equal(buffer.byteLength, HEADER_BYTES + 1024);
  t.equal(new MailboxProducer(buffer).frameBytesMax, frameBytesMaxFor(1024));
  t.equal(createMailbox().byteLength, HEADER_BYTES + limits.mailboxBytesDefault, 'default capacity');
});

t.test('attaching refuses buffers that are not mailboxes of this version', async (t) => {
  t.throws(() => new MailboxConsumer(new ArrayBuffer(4096) as unknown as SharedArrayBuffer), TypeError, 'not shared');
  t.throws(() => new MailboxConsumer(new SharedArrayBuffer(64)), TypeError, 'too short');
  t.throws(() => new MailboxConsumer(new SharedArrayBuffer(HEADER_BYTES + 1024)), /bad magic/);
  const wrongVersion = createMailbox(1024);
  new Int32Array(wrongVersion)[Word.version] = MAILBOX_VERSION + 1;
  t.throws(() => new MailboxProducer(wrongVersion), /version/);
  const wrongLength = new SharedArrayBuffer(HEADER_BYTES + 2048);
  new Uint8Array(wrongLength).set(new Uint8Array(createMailbox(1024), 0, HEADER_BYTES));
  t.throws(() => new MailboxProducer(wrongLength), /length does not match/);
});

t.test('records are 8-aligned with a 4-byte length prefix', async (t) => {
  t.same([0, 1, 4, 5, 12, 13].map(recordBytesOf), [8, 8, 8, 16, 16, 24]);
  t.equal(recordBytesOf(frameBytesMaxFor(4096)), 2048, 'the largest record is half the capacity');
});

t.test('an empty mailbox accepts the largest frame at every head offset', async (t) => {
  for (const capacityBytes of [64, 256]) {
    const { producer, consumer } = openMailbox(capacityBytes);
    for (let offsetBytes = 0; offsetBytes < capacityBytes; offsetBytes += 8) {
      const largest = makeFrame(offsetBytes, producer.frameBytesMax);
      t.ok(producer.tryWrite(largest), `capacity ${capacityBytes} offset ${offsetBytes}`);
      producer.publish();
      t.same(drainAll(consumer), [largest]);
      t.ok(producer.tryWrite(new Uint8Array(4)), 'an 8-byte record moves the head by 8');
      producer.publish();
      t.equal(drainAll(consumer).length, 1);
    }
  }
});

type WriteVia = 'tryWrite' | 'tryWriteSpan' | 'reserve' | 'reserveSpan';

type Op =
  | { kind: 'write'; lengthBytes: number; via: WriteVia; shrinkBytes: number }
  | { kind: 'publish' }
  | { kind: 'drain'; maxFrames: number; refuseAt: number; spans: boolean };

function opArbitrary(frameBytesMax: number): fc.Arbitrary<Op> {
  const lengthBytes = fc.oneof(
    fc.constantFrom(0, 1, 3, 4, 5, 8, frameBytesMax - 1, frameBytesMax),
    fc.integer({ min: 0, max: frameBytesMax }),
  );
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('write' as const), lengthBytes, via: fc.constantFrom<WriteVia>('tryWrite', 'tryWriteSpan', 'reserve', 'reserveSpan'), shrinkBytes: fc.nat(9) }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'publish' as const }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('drain' as const), maxFrames: fc.integer({ min: 0, max: 8 }), refuseAt: fc.integer({ min: -1, max: 4 }), spans: fc.boolean() }) },
  );
}

const scenarioArbitrary = fc
  .record({
    capacityBytes: fc.constantFrom(64, 128, 256, 1024),
    startPosition: fc.oneof(fc.constantFrom(0, 0x7fffffc0, -64, -8), fc.integer()).map((position) => position & ~7),
  })
  .chain(({ capacityBytes, startPosition }) =>
    fc.record({
      capacityBytes: fc.constant(capacityBytes),
      startPosition: fc.constant(startPosition),
      ops: fc.array(opArbitrary(frameBytesMaxFor(capacityBytes)), { maxLength: 150 }),
    }),
  );

/** Runs ops against a mailbox and a plain-array model; throws at the first disagreement. */
function runScenario(scenario: { capacityBytes: number; startPosition: number; ops: Op[] }): void {
  const { producer, consumer } = openMailbox(scenario.capacityBytes, scenario.startPosition);
  const pending: Uint8Array[] = [];
  const published: Uint8Array[] = [];
  let sequence = 0;
  for (const op of scenario.ops) {
    if (op.kind === 'write') {
      const frame = makeFrame(sequence, op.lengthBytes);
      const committed = writeOne(producer, frame, op);
      if (committed === null) {
        assertStrict.ok(pending.length + published.length > 0, 'an empty mailbox refused a frame');
        assertStrict.ok(producer.freeBytes() < 2 * recordBytesOf(op.lengthBytes), 'refused while room was left');
      } else {
        pending.push(committed);
        sequence++;
      }
    } else if (op.kind === 'publish') {
      assertStrict.equal(producer.publish(), pending.length);
      published.push(...pending.splice(0));
    } else {
      const frames: Uint8Array[] = [];
      const visit = (frame: Uint8Array): boolean | void => (frames.length === op.refuseAt ? false : void frames.push(frame.slice()));
      const consumed = op.spans
        ? consumer.drainSpans((bytes, startBytes, lengthBytes) => visit(bytes.slice(startBytes, startBytes + lengthBytes)), op.maxFrames)
        : consumer.drain(visit, op.maxFrames);
      const limit = Math.min(op.maxFrames, op.refuseAt < 0 ? Infinity : op.refuseAt, published.length);
      assertStrict.equal(consumed, limit, 'drain consumed the wrong number of frames');
      assertStrict.deepEqual(frames, published.splice(0, consumed), 'frames out of order or corrupt');
    }
    assertStrict.equal(consumer.depthFrames(), published.length);
    assertStrict.equal(consumer.available(), published.length > 0);
  }
}

function writeOne(producer: MailboxProducer, frame: Uint8Array, op: Op & { kind: 'write' }): Uint8Array | null {
  if (op.via === 'tryWrite') return producer.tryWrite(frame) ? frame : null;
  if (op.via === 'tryWriteSpan') {
    // The frame sits inside a larger buffer, `shrinkBytes` bytes in.
    const source = new Uint8Array(frame.length + 20).fill(0xee);
    source.set(frame, op.shrinkBytes);
    return producer.tryWriteSpan(source, op.shrinkBytes, frame.length) ? frame : null;
  }
  let view: Uint8Array | null;
  if (op.via === 'reserve') {
    view = producer.reserve(frame.length);
  } else {
    const startBytes = producer.reserveSpan(frame.length);
    view = startBytes < 0 ? null : producer.bytes.subarray(startBytes, startBytes + frame.length);
  }
  if (view === null) return null;
  assertStrict.equal(view.length, frame.length);
  const usedBytes = Math.max(0, frame.length - op.shrinkBytes);
  view.set(frame.subarray(0, usedBytes));
  producer.commit(usedBytes);
  return frame.slice(0, usedBytes);
}

t.test('random writes, publishes and drains keep FIFO order, frame boundaries and every byte', async (t) => {
  fc.assert(fc.property(scenarioArbitrary, runScenario), { seed, numRuns: 300 });
  t.pass('model agreed');
});

t.test('a long run wraps many times and past the 32-bit position overflow', async (t) => {
  const rng = new SeededRng(seed);
  const { producer, consumer } = openMailbox(256, -4096);
  const expected: Uint8Array[] = [];
  let received = 0;
  for (let sequence = 0; sequence < 5000; sequence++) {
    const frame = makeFrame(sequence, rng.int(producer.frameBytesMax + 1));
    while (!producer.tryWrite(frame)) {
      producer.publish();
      consumer.drain((got) => void assertStrict.deepEqual(got, expected[received++]));
    }
    expected.push(frame);
  }
  producer.publish();
  consumer.drain((got) => void assertStrict.deepEqual(got, expected[received++]), Infinity);
  t.equal(received, 5000);
});

t.test('frames are invisible until published, and publish reports the batch size', async (t) => {
  const { producer, consumer } = openMailbox(1024);
  t.equal(producer.publish(), 0, 'nothing pending');
  producer.tryWrite(makeFrame(1, 10));
  producer.tryWrite(makeFrame(2, 0));
  t.equal(producer.pendingFrames, 2);
  t.notOk(consumer.available());
  t.equal(drainAll(consumer).length, 0);
  t.equal(producer.publish(), 2);
  t.equal(consumer.depthFrames(), 2);
  t.same(drainAll(consumer), [makeFrame(1, 10), new Uint8Array(0)]);
});

t.test('reserve and commit encode in place and reject misuse', async (t) => {
  const { producer, consumer } = openMailbox(1024);
  const view = producer.reserve(16)!;
  t.equal(view.length, 16);
  t.ok(view.buffer instanceof SharedArrayBuffer, 'the view is the shared buffer itself');
  t.throws(() => producer.reserve(4), AssertionError, 'second reserve');
  t.throws(() => producer.tryWrite(new Uint8Array(1)), AssertionError, 'tryWrite during a reservation');
  t.throws(() => producer.commit(17), RangeError, 'commit longer than reserved');
  view.set([1, 2, 3]);
  producer.commit(3);
  t.throws(() => producer.commit(), AssertionError, 'commit without reserve');
  producer.publish();
  t.same(drainAll(consumer), [Uint8Array.of(1, 2, 3)]);
});

t.test('frame lengths are checked', async (t) => {
  const { producer } = openMailbox(1024);
  for (const bad of [-1, 1.5, Number.NaN]) t.throws(() => producer.reserve(bad), RangeError, `length ${bad}`);
  const tooLarge = producer.frameBytesMax + 1;
  t.throws(() => producer.reserve(tooLarge), { name: 'RingkvError', code: ErrorCode.tooLarge });
  t.throws(() => producer.tryWrite(new Uint8Array(tooLarge)), { code: ErrorCode.tooLarge });
  await t.rejects(producer.write(new Uint8Array(tooLarge)), { code: ErrorCode.tooLarge });
  t.throws(() => producer.tryWriteSpan(new Uint8Array(8), 0, 1.5), RangeError, 'fractional span length');
  t.throws(() => producer.tryWriteSpan(new Uint8Array(8), 4, 5), RangeError, 'span past the source end');
  t.throws(() => producer.tryWriteSpan(new Uint8Array(8), -1, 2), RangeError, 'negative span start');
  t.equal(producer.pendingFrames, 0, 'nothing written by the refused calls');
  await t.rejects(producer.waitForSpace(tooLarge), { code: ErrorCode.tooLarge });
});

t.test('a visitor may leave frames for later, and a throwing visitor consumes only its frame', async (t) => {
  const { producer, consumer } = openMailbox(1024);
  for (let sequence = 0; sequence < 4; sequence++) producer.tryWrite(makeFrame(sequence, 8));
  producer.publish();
  t.equal(consumer.drain(() => false), 0, 'refused the first frame');
  t.equal(consumer.depthFrames(), 4);
  let visits = 0;
  t.throws(() => consumer.drain(() => {
    if (visits++ === 1) throw new Error('visitor failed');
  }), /visitor failed/);
  t.equal(consumer.depthFrames(), 2, 'the good frame and the failing one were consumed');
  t.same(drainAll(consumer), [makeFrame(2, 8), makeFrame(3, 8)]);
});

t.test('a full mailbox refuses without overwriting, and write fails with KV_OVERLOADED after its timeout', async (t) => {
  const { producer, consumer } = openMailbox(64, 0, { waitSliceMs: 5 });
  const frames = [makeFrame(0, 20), makeFrame(1, 20)];
  for (const frame of frames) t.ok(producer.tryWrite(frame));
  t.notOk(producer.tryWrite(makeFrame(2, 20)), 'full');
  t.equal(producer.reserve(20), null, 'full for reserve too');
  const error = await producer.write(makeFrame(2, 20), { timeoutMs: 20 }).catch((caught: unknown) => caught);
  t.ok(isRingkvError(error, ErrorCode.overloaded), 'KV_OVERLOADED');
  t.match((error as Error).message, /mailbox full/);
  t.equal(producer.pendingFrames, 0, 'waiting published the pending batch first');
  t.same(drainAll(consumer), frames, 'the earlier frames are intact');
  const manual = openMailbox(64, 0, { clock: new ManualClock() });
  manual.producer.tryWrite(makeFrame(0, 28));
  manual.producer.tryWrite(makeFrame(1, 28));
  t.equal(await manual.producer.waitForSpace(28, 0), false, 'a zero timeout gives up at once');
});

t.test('a producer waiting for space is woken by the drain that frees it', { timeout: 10_000 }, async (t) => {
  // The slice and timeout are far longer than the test timeout: only a notify can pass it.
  const { producer, consumer } = openMailbox(64, 0, { waitSliceMs: 60_000 });
  producer.tryWrite(makeFrame(0, 28));
  producer.tryWrite(makeFrame(1, 28));
  const writing = producer.write(makeFrame(2, 28), { timeoutMs: 120_000 });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(consumer.drain(() => {}, 1), 1);
  await writing;
  producer.publish();
  t.same(drainAll(consumer), [makeFrame(1, 28), makeFrame(2, 28)]);
  t.ok(await producer.waitForSpace(28), 'room now: resolves without waiting');
});

t.test('a consumer waiting for frames is woken by publish, and times out when none come', { timeout: 10_000 }, async (t) => {
  const { producer, consumer } = openMailbox(256, 0, { waitSliceMs: 60_000 });
  t.equal(await consumer.waitForFrames(1), false, 'timed out empty');
  const waiting = consumer.waitForFrames(120_000);
  await new Promise((resolve) => setImmediate(resolve));
  producer.tryWrite(makeFrame(0, 3));
  t.equal(producer.publish(), 1);
  t.equal(await waiting, true, 'woken by the doorbell');
  t.equal(await consumer.waitForFrames(), true, 'frames already there');
  t.equal(drainAll(consumer).length, 1);
});

t.test('closing wakes both sides; writes then fail with KV_CLOSED and pump drains what was published', { timeout: 10_000 }, async (t) => {
  const { producer, consumer } = openMailbox(64, 0, { waitSliceMs: 60_000 });
  const waiting = consumer.waitForFrames(120_000);
  await new Promise((resolve) => setImmediate(resolve));
  producer.tryWrite(makeFrame(7, 10));
  producer.close();
  t.ok(producer.closed && consumer.closed);
  t.equal(await waiting, true, 'the close published the last batch');
  t.throws(() => producer.tryWrite(new Uint8Array(1)), { code: ErrorCode.closed });
  const frames: Uint8Array[] = [];
  await consumer.pump({ visit: (frame) => void frames.push(frame.slice()) });
  t.same(frames, [makeFrame(7, 10)], 'pump returned after draining the closed mailbox');
  t.equal(await consumer.waitForFrames(), false, 'closed and empty');

  const full = openMailbox(64, 0, { waitSliceMs: 60_000 });
  full.producer.tryWrite(makeFrame(0, 28));
  full.producer.tryWrite(makeFrame(1, 28));
  const blocked = full.producer.write(makeFrame(2, 28), { timeoutMs: 120_000 });
  await new Promise((resolve) => setImmediate(resolve));
  full.consumer.close();
  await t.rejects(blocked, { code: ErrorCode.closed }, 'a waiting writer learns of the close');
});

t.test('pump relays between two mailboxes with backpressure and yields between turns', async (t) => {
  const requests = openMailbox(1024);
  const replies = openMailbox(64);
  const rng = new SeededRng(seed);
  const sent = Array.from({ length: 300 }, (_, sequence) => makeFrame(sequence, rng.int(29)));
  let refusedBytes = 0;
  let yields = 0;
  let refusals = 0;
  const relaying = requests.consumer.pump(
    {
      visit(frame) {
        if (replies.producer.tryWrite(frame)) return true;
        refusedBytes = frame.length;
        refusals++;
        return false;
      },
      afterDrain: () => replies.producer.publish(),
      whenRefused: () => replies.producer.waitForSpace(refusedBytes, 60_000),
    },
    { framesPerTurnMax: 4, yieldToEventLoop: () => new Promise((resolve) => setImmediate(() => resolve(yields++))) },
  );
  const received: Uint8Array[] = [];
  const receiving = replies.consumer.pump({ visit: (frame) => void received.push(frame.slice()) });
  for (const frame of sent) await requests.producer.write(frame);
  requests.producer.close();
  await relaying;
  replies.producer.close();
  await receiving;
  t.same(received, sent, 'every frame relayed once, in order');
  t.ok(refusals > 0, 'the small reply mailbox pushed back');
  t.ok(yields > 0, 'the relay yielded to the event loop between turns');
});

t.test('pump serves span visitors and rejects a handler without exactly one visitor', async (t) => {
  const { producer, consumer } = openMailbox(256);
  await t.rejects(consumer.pump({}), TypeError);
  await t.rejects(consumer.pump({ visit: () => {}, visitSpan: () => {} }), TypeError);
  producer.tryWrite(makeFrame(3, 9));
  producer.close();
  const spans: number[][] = [];
  await consumer.pump({ visitSpan: (bytes, startBytes, lengthBytes) => void spans.push([bytes.length, lengthBytes, bytes[startBytes]!]) });
  t.same(spans, [[MAILBOX_HEADER_BYTES + 256, 9, makeFrame(3, 9)[0]]], 'the whole buffer and the frame span');
});

t.test('pump rejects when a visitor throws, and a refusing pump without whenRefused yields', async (t) => {
  const { producer, consumer } = openMailbox(256);
  producer.tryWrite(makeFrame(0, 4));
  producer.publish();
  await t.rejects(consumer.pump({ visit: () => { throw new Error('bad frame'); } }), /bad frame/);
  producer.tryWrite(makeFrame(1, 4));
  producer.publish();
  let refusals = 0;
  await consumer.pump({
    visit: () => {
      if (refusals++ < 2) return false;
      producer.close();
      return true;
    },
  });
  t.equal(refusals, 3, 'retried after yielding');
});

interface StressPlan {
  sizes: Int32Array;
  crcs: Uint32Array;
  pool: Uint8Array;
}

function stressPlan(frameCount: number, frameBytesMax: number, rng: SeededRng): StressPlan {
  const sizes = new Int32Array(frameCount);
  const logMax = Math.log2(frameBytesMax + 1);
  for (let i = 0; i < frameCount; i++) {
    const pick = rng.int(100);
    sizes[i] = pick < 3 ? 0 : pick < 6 ? frameBytesMax : pick < 12 ? rng.int(8) : Math.floor(2 ** (rng.next() * logMax)) - 1;
  }
  return { sizes, crcs: new Uint32Array(frameCount), pool: rng.bytes(2 * frameBytesMax) };
}

/** Fills a frame: [u32 sequence][u32 crc32c of the rest][pool bytes], or a pattern if < 8 bytes. */
function fillStressFrame(view: Uint8Array, sequence: number, plan: StressPlan): void {
  if (view.length < 8) {
    for (let i = 0; i < view.length; i++) view[i] = (sequence + i) & 0xff;
  } else {
    const start = (sequence * 8191) % (plan.pool.length - view.length + 1);
    view.set(plan.pool.subarray(start, start + view.length - 8), 8);
    const header = new DataView(view.buffer, view.byteOffset, 8);
    header.setUint32(0, sequence, true);
    header.setUint32(4, crc32c(view, 0, 8), true);
  }
  plan.crcs[sequence] = crc32c(view);
}

function checkStressFrame(frame: Uint8Array, sequence: number, plan: StressPlan): void {
  const where = `frame ${sequence}`;
  assertStrict.equal(frame.length, plan.sizes[sequence], `${where}: length (lost, duplicated or reordered)`);
  if (frame.length >= 8) {
    const header = new DataView(frame.buffer, frame.byteOffset, 8);
    assertStrict.equal(header.getUint32(0, true), sequence, `${where}: sequence number`);
    assertStrict.equal(header.getUint32(4, true), crc32c(frame, 0, 8), `${where}: embedded crc32c`);
  }
  assertStrict.equal(crc32c(frame), plan.crcs[sequence], `${where}: crc32c`);
}

async function sendStressFrames(producer: MailboxProducer, plan: StressPlan): Promise<void> {
  for (let sequence = 0; sequence < plan.sizes.length; ) {
    const lengthBytes = plan.sizes[sequence]!;
    const view = producer.reserve(lengthBytes);
    if (view === null) {
      assertStrict.ok(await producer.waitForSpace(lengthBytes, 60_000), 'the echo worker stopped draining');
      continue;
    }
    fillStressFrame(view, sequence, plan);
    producer.commit();
    if (++sequence % 512 === 0) {
      producer.publish();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  producer.close();
}

t.test('a worker echoes 200k checksummed frames of 0..frameBytesMax bytes: no loss, duplication, reordering or corruption', { timeout: 60_000 }, async (t) => {
  const frameCount = 200_000;
  const requests = createMailbox(16 * 1024);
  const replies = createMailbox(16 * 1024);
  const producer = new MailboxProducer(requests);
  const consumer = new MailboxConsumer(replies);
  const plan = stressPlan(frameCount, producer.frameBytesMax, new SeededRng(seed));
  const worker = new Worker(new URL('./fixtures/mailbox-echo-worker.js', import.meta.url), { workerData: { requests, replies } });
  let pongs = 0;
  let finished = false;
  worker.on('message', () => {
    pongs++;
    if (!finished) worker.postMessage('ping');
  });
  worker.postMessage('ping');
  try {
    let received = 0;
    const receiving = consumer.pump({ visit: (frame) => checkStressFrame(frame, received++, plan) });
    await Promise.all([sendStressFrames(producer, plan), receiving]);
    finished = true;
    t.equal(received, frameCount, 'every frame came back');
    t.ok(pongs > 0, `the worker answered ${pongs} pings while echoing`);
    t.ok(plan.sizes.includes(0) && plan.sizes.includes(producer.frameBytesMax), 'both size extremes were sent');
  } finally {
    if (!finished) producer.close(); // unblocks the sender if the receiver failed
    await worker.terminate();
  }
});
