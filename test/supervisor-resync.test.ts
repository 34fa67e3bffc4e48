/**
 * Resync after an outage longer than the tombstone grace (issue 5 §2): the liveness decision
 * and its ALIVE file (lib/supervisor/liveness.ts), the pure tracker of pending partitions
 * (resync-tracker.ts) with a property over random exchange outcomes, the driver
 * (resync.ts) over a fake exchange and a manual clock, and the coordinator driver's read gate.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { ManualClock } from '../lib/base/clock.js';
import { ErrorCode, isRingkvError } from '../lib/base/errors.js';
import { limits } from '../lib/base/limits.js';
import { silentLogger, type Logger } from '../lib/base/log.js';
import { seedFromEnvironment } from '../lib/base/rng.js';
import type { ExchangeResult } from '../lib/antientropy/index.js';
import type { GetRequest } from '../lib/protocol/client-messages.js';
import { Coordinator } from '../lib/replication/index.js';
import type { ReplicaStore } from '../lib/store/index.js';
import { CoordinatorDriver } from '../lib/supervisor/coordinator-driver.js';
import { LIVENESS_FILE_NAME, livenessRefreshMs, livenessVerdict, readLiveness, writeLiveness } from '../lib/supervisor/liveness.js';
import { ResyncTracker, type ResyncView } from '../lib/supervisor/resync-tracker.js';
import { Resync, type ResyncOptions } from '../lib/supervisor/resync.js';
import { buildStatus } from '../lib/supervisor/status.js';

const graceMs = 10_000;
const tempDir = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-resync-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

const okResult = (partial = false): ExchangeResult => ({ ok: true, partial, stats: { bytesSent: 0, bytesReceived: 0, keysFetched: 0, keysPushed: 0 } as never });
const failResult = (): ExchangeResult => ({ ok: false, code: ErrorCode.unavailable, message: 'down', stats: { bytesSent: 0, bytesReceived: 0, keysFetched: 0, keysPushed: 0 } as never });

/** A view of three replicas per partition: self, a, b; `down` peers are not up. */
function view(partitions: number[], down: string[] = [], replicas: (p: number) => string[] = () => ['self', 'a', 'b']): ResyncView {
  return { selfId: 'self', partitions, replicasOf: replicas, isUp: (id) => !down.includes(id) };
}

/** A logger that keeps the messages of warn and up. */
function recordingLogger(): { logger: Logger; messages: string[] } {
  const messages: string[] = [];
  const record = (_fields: unknown, message?: string): void => void messages.push(message ?? String(_fields));
  const logger = { warn: record, error: record, info: () => undefined, debug: () => undefined, child: () => logger } as unknown as Logger;
  return { logger, messages };
}

t.test('liveness: a missing file is fresh, a long outage or an unfinished resync resyncs, a future time does not', async (t) => {
  t.same(livenessVerdict(undefined, 5_000, graceMs), { resync: false, reason: 'fresh' });
  t.same(livenessVerdict({ aliveAtMs: 1_000, resyncing: false }, 1_000 + graceMs, graceMs), { resync: false, reason: 'within-grace', downMs: graceMs });
  t.same(livenessVerdict({ aliveAtMs: 1_000, resyncing: false }, 1_001 + graceMs, graceMs), { resync: true, reason: 'down-too-long', downMs: graceMs + 1 });
  t.same(livenessVerdict({ aliveAtMs: 9_000, resyncing: false }, 1_000, graceMs), { resync: false, reason: 'clock-stepped-back', downMs: -8_000 });
  t.same(livenessVerdict({ aliveAtMs: 1_000, resyncing: true }, 1_500, graceMs), { resync: true, reason: 'unfinished-resync', downMs: 500 });
  t.equal(livenessRefreshMs(2_000), 500, 'a quarter of the grace');
  t.equal(livenessRefreshMs(10 * 86_400_000), limits.livenessRefreshMsMax, 'at most the max');
  t.equal(livenessRefreshMs(0), limits.livenessRefreshMsMin, 'at least the min');
});

t.test('liveness: the ALIVE file round-trips; a damaged one is KV_CORRUPTION, another version KV_INCOMPATIBLE', async (t) => {
  const dir = tempDir(t);
  t.equal(readLiveness(dir), undefined);
  writeLiveness(dir, { aliveAtMs: 1234.4, resyncing: true });
  t.same(readLiveness(dir), { aliveAtMs: 1234, resyncing: true });
  const path = join(dir, LIVENESS_FILE_NAME);
  writeFileSync(path, '{"format":"ringkv-alive","formatVersion":1,"aliveAtMs":"x","resyncing":false}');
  t.throws(() => readLiveness(dir), { code: ErrorCode.corruption });
  writeFileSync(path, 'not json');
  t.throws(() => readLiveness(dir), { code: ErrorCode.corruption });
  writeFileSync(path, '{"format":"ringkv-alive","formatVersion":2,"aliveAtMs":1,"resyncing":false}');
  t.throws(() => readLiveness(dir), { code: ErrorCode.incompatible });
});

t.test('tracker: inactive serves everything; active refuses everything until the ring names its partitions', async (t) => {
  const idle = new ResyncTracker(false);
  t.ok(idle.servesReads(3));
  t.same(idle.round(view([1, 2])), { work: [], skipped: [] });
  t.equal(idle.pendingAmong([1, 2]), 0);
  const tracker = new ResyncTracker(true);
  t.same(tracker.round(view([])), { work: [], skipped: [] }, 'no ring yet: nothing to do');
  t.notOk(tracker.planned);
  t.notOk(tracker.servesReads(1), 'before the plan no partition is served');
  t.equal(tracker.pendingAmong([1, 2, 3]), 3);
});

t.test('tracker: a partition is served once exchanged with every up peer; partial and failed exchanges do not count', async (t) => {
  const tracker = new ResyncTracker(true);
  const first = tracker.round(view([1, 2]));
  t.same(first.work, [{ partition: 1, peer: 'a' }, { partition: 1, peer: 'b' }, { partition: 2, peer: 'a' }, { partition: 2, peer: 'b' }]);
  tracker.recordExchange(1, 'a', true);
  tracker.recordExchange(1, 'b', false);
  tracker.recordExchange(2, 'a', true);
  tracker.recordExchange(2, 'b', true);
  const second = tracker.round(view([1, 2]));
  t.same(second.work, [{ partition: 1, peer: 'b' }], 'only the failed pair is left');
  t.notOk(tracker.servesReads(1));
  t.ok(tracker.servesReads(2), 'partition 2 is synced');
  t.equal(tracker.pendingAmong([1, 2]), 1);
  t.ok(tracker.active);
  tracker.recordExchange(1, 'b', true);
  t.same(tracker.round(view([1, 2])).work, []);
  t.notOk(tracker.active, 'done once every partition is synced');
  t.ok(tracker.servesReads(1));
  tracker.recordExchange(1, 'a', true); // after the end: ignored
  t.equal(tracker.pendingAmong([1, 2]), 0);
});

t.test('tracker: down peers are skipped, but a partition with every peer down stays pending', async (t) => {
  const tracker = new ResyncTracker(true);
  const round = tracker.round(view([1], ['b']));
  t.same(round.work, [{ partition: 1, peer: 'a' }]);
  t.same(round.skipped, [{ partition: 1, peer: 'b' }]);
  const lonely = new ResyncTracker(true);
  const none = lonely.round(view([1], ['a', 'b']));
  t.same(none.work, [], 'nobody to exchange with');
  t.equal(none.skipped.length, 2);
  t.ok(lonely.active, 'still refusing: no peer has been reached');
  tracker.recordExchange(1, 'a', true);
  tracker.round(view([1], ['b']));
  t.notOk(tracker.active, 'the up peer was enough');
});

t.test('tracker: a partition without other replicas is synced at once; one no longer ours does not block', async (t) => {
  const alone = new ResyncTracker(true);
  alone.round(view([1], [], () => ['self']));
  t.notOk(alone.active);
  const tracker = new ResyncTracker(true);
  tracker.round(view([1, 2]));
  tracker.recordExchange(1, 'a', true);
  tracker.recordExchange(1, 'b', true);
  tracker.round(view([]));
  t.ok(tracker.active, 'a ring that names no partition of ours (for now) does not end the resync');
  t.notOk(tracker.servesReads(2));
  tracker.round(view([1, 3]));
  t.notOk(tracker.active, 'partition 2 moved away and 3 was gained by handoff: nothing pending is ours');
});

t.test('tracker (property): a partition is served iff it exchanged with every up peer and at least one peer', async (t) => {
  const seed = seedFromEnvironment();
  t.comment(`seed ${seed}`);
  const peers = ['a', 'b', 'c'];
  const exchange = fc.record({ partition: fc.integer({ min: 0, max: 3 }), peer: fc.constantFrom(...peers), complete: fc.boolean() });
  fc.assert(
    fc.property(fc.array(exchange, { maxLength: 30 }), fc.subarray(peers), (exchanges, down) => {
      const tracker = new ResyncTracker(true);
      const v = view([0, 1, 2, 3], down, () => ['self', ...peers]);
      tracker.round(v);
      for (const e of exchanges) tracker.recordExchange(e.partition, e.peer, e.complete);
      tracker.round(v);
      for (let p = 0; p < 4; p++) {
        const done = new Set(exchanges.filter((e) => e.partition === p && e.complete).map((e) => e.peer));
        const expected = peers.every((id) => down.includes(id) || done.has(id)) && done.size > 0;
        const allSynced = [0, 1, 2, 3].every((q) => {
          const d = new Set(exchanges.filter((e) => e.partition === q && e.complete).map((e) => e.peer));
          return peers.every((id) => down.includes(id) || d.has(id)) && d.size > 0;
        });
        if (tracker.servesReads(p) !== (expected || allSynced)) return false;
      }
      return true;
    }),
    { seed, numRuns: 300 },
  );
  t.pass('the rule held for every run');
});

/** A Resync over `dir` with a manual clock and a scripted exchange. */
function makeResync(dir: string, clock: ManualClock, overrides: Partial<ResyncOptions> = {}): { resync: Resync; calls: string[] } {
  const calls: string[] = [];
  const resync = new Resync({
    selfId: 'self',
    dir,
    partitionBits: 2,
    clock,
    logger: silentLogger,
    graceMs,
    myPartitions: () => [0, 1, 2, 3],
    replicasOf: () => ['self', 'a', 'b'],
    isUp: () => true,
    exchange: async (partition, peer) => {
      calls.push(`${partition}/${peer}`);
      return okResult();
    },
    retryMs: 5,
    ringPollMs: 5,
    ...overrides,
  });
  return { resync, calls };
}

t.test('driver: a fresh node and a node back within the grace serve reads and keep ALIVE current', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(1_000_000);
  const fresh = makeResync(dir, clock);
  t.notOk(fresh.resync.active);
  fresh.resync.start();
  await fresh.resync.settled();
  t.ok(fresh.resync.readable(new Uint8Array([1])));
  t.same(fresh.resync.status(), { active: false, pendingPartitions: 0, reason: 'fresh' });
  t.same(readLiveness(dir), { aliveAtMs: 1_000_000, resyncing: false }, 'written at start');
  clock.advance(1_000);
  fresh.resync.close();
  fresh.resync.close();
  t.same(readLiveness(dir), { aliveAtMs: 1_001_000, resyncing: false }, 'written at close');
  clock.advance(graceMs);
  const back = makeResync(dir, clock);
  t.notOk(back.resync.active, 'down exactly the grace: no resync');
  t.equal(back.resync.status().reason, 'within-grace');
  back.resync.close();
  t.same(back.calls, []);
});

t.test('driver: after a long outage it refuses reads, exchanges every partition with every up peer, retries failures, then serves', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(1_000_000);
  writeLiveness(dir, { aliveAtMs: clock.wallMs() - graceMs - 1, resyncing: false });
  let ringKnown = false;
  let failures = 2;
  const { logger, messages } = recordingLogger();
  const { resync, calls } = makeResync(dir, clock, {
    logger,
    myPartitions: () => (ringKnown ? [0, 1, 2, 3] : []),
    exchange: async (partition, peer) => {
      calls.push(`${partition}/${peer}`);
      if (partition === 2 && peer === 'b' && failures-- > 0) {
        if (failures === 0) throw new Error('store closed');
        return failResult();
      }
      return partition === 3 && peer === 'a' && calls.filter((c) => c === '3/a').length === 1 ? okResult(true) : okResult();
    },
  });
  t.ok(resync.active);
  const key = new TextEncoder().encode('k');
  resync.start();
  t.same(readLiveness(dir)?.resyncing, true, 'the unfinished resync is on disk');
  t.notOk(resync.readable(key), 'no ring yet: every read is refused');
  t.equal(resync.status().pendingPartitions, 0);
  await new Promise((r) => setTimeout(r, 20));
  ringKnown = true;
  await resync.settled();
  t.notOk(resync.active);
  t.ok(resync.readable(key));
  t.same(resync.status(), { active: false, pendingPartitions: 0, reason: 'down-too-long' });
  t.equal(calls.filter((c) => c === '2/b').length, 3, 'a failed exchange and a thrown one are retried');
  t.equal(calls.filter((c) => c === '3/a').length, 2, 'a partial exchange is redone');
  t.equal(new Set(calls).size, 8, 'every partition with every peer');
  t.same(readLiveness(dir)?.resyncing, false, 'the end is on disk');
  t.ok(messages.some((m) => m.includes('resync: refusing reads')));
  t.ok(messages.some((m) => m.includes('resync complete')));
  t.ok(messages.some((m) => m.includes('resync exchange failed')));
  resync.close();
});

t.test('driver: a node closed mid-resync resumes it at the next start; down peers are logged once', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(1_000_000);
  writeLiveness(dir, { aliveAtMs: 0, resyncing: false });
  const { logger, messages } = recordingLogger();
  const { resync } = makeResync(dir, clock, { logger, isUp: () => false });
  resync.start();
  await new Promise((r) => setTimeout(r, 30));
  t.ok(resync.active, 'every peer down: still resyncing');
  t.equal(resync.status().pendingPartitions, 4);
  const key = new TextEncoder().encode('k');
  t.notOk(resync.readable(key));
  t.equal(messages.filter((m) => m.includes('peer replicas down')).length, 1, 'logged once, not every round');
  resync.close();
  await resync.settled();
  t.same(readLiveness(dir)?.resyncing, true);
  const again = makeResync(dir, clock);
  t.ok(again.resync.active, 'restarted at once, yet still resyncing');
  t.equal(again.resync.status().reason, 'unfinished-resync');
  again.resync.start();
  await again.resync.settled();
  t.notOk(again.resync.active);
  again.resync.close();
});

t.test('driver: a clock stepped back is logged and not a resync; a write failure of ALIVE is logged, not thrown', async (t) => {
  const dir = tempDir(t);
  const clock = new ManualClock(1_000_000);
  writeLiveness(dir, { aliveAtMs: 2_000_000, resyncing: false });
  const { logger, messages } = recordingLogger();
  const { resync } = makeResync(dir, clock, { logger });
  t.notOk(resync.active);
  t.ok(messages.some((m) => m.includes('clock stepped back')));
  resync.close();
  const file = join(dir, 'not-a-dir');
  writeFileSync(file, 'x');
  const broken = makeResync(file, clock, { logger });
  broken.resync.start();
  broken.resync.close();
  t.ok(messages.some((m) => m.includes('could not record the last-alive time')));
});

t.test('coordinator driver: a resyncing replica refuses its local read and replica-read with KV_UNAVAILABLE', async (t) => {
  let readable = false;
  const reads: Uint8Array[] = [];
  const store = { readObject: async (key: Uint8Array) => void reads.push(key), cachedRow: () => undefined } as unknown as ReplicaStore;
  const coordinator = new Coordinator({
    self: { id: 'self', dc: 'dc1' },
    placementOf: () => ({ replication: 1, replicas: [{ id: 'self', dc: 'dc1', up: true }] }),
  });
  const driver = new CoordinatorDriver({ coordinator, store, clock: new ManualClock(), logger: silentLogger, sendToNode: () => false, readable: () => readable });
  t.teardown(() => driver.close());
  const key = new TextEncoder().encode('k');
  t.same(await driver.serve({ t: 'replica-read', key }), { t: 'replica-error', code: ErrorCode.unavailable, message: 'replica is resyncing' });
  const get = { t: 'get', id: 1, key, r: 1 } as GetRequest;
  const error = await driver.get(get).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isRingkvError(error), 'the only replica refused: the read fails');
  t.same(reads, [], 'the store was not read');
  readable = true;
  t.same(await driver.serve({ t: 'replica-read', key }), { t: 'replica-read-reply' });
  t.same((await driver.get(get)).found, false);
  t.equal(reads.length, 2);
});

t.test('status: a resync shows in /status with a warning', async (t) => {
  const base = {
    selfId: 'n1',
    version: '0',
    uptimeMs: 1,
    scheme: 'ws' as const,
    ring: undefined,
    partitionBits: 2,
    replication: 3,
    members: [],
    isUp: () => true,
    shards: [],
    selfLoadBytes: undefined,
    hints: [],
    hintsDelivered: 0,
    antiEntropy: { exchanges: 0, failed: 0, keysRepaired: 0, bytesSent: 0, bytesReceived: 0, repair: { running: false, done: 0, total: 0, keysRepaired: 0 } },
  };
  const active = buildStatus({ ...base, resync: { active: true, pendingPartitions: 3, reason: 'down-too-long' } });
  t.same(active.resync, { active: true, pendingPartitions: 3, reason: 'down-too-long' });
  t.ok(active.warnings.some((w) => w.includes('resyncing') && w.includes('3 partition')));
  t.same(buildStatus(base).resync, { active: false, pendingPartitions: 0, reason: 'fresh' });
});
