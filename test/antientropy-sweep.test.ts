/**
 * The anti-entropy schedule (issue 10): lib/antientropy/sweep-schedule.ts picks dirty pairs of
 * up peers first and otherwise sweeps every (partition, up peer) pair once per period, at a gap
 * of period / pairs capped by the configured interval; supervisor/anti-entropy-scheduler.ts
 * runs it on timers and keeps dirty marks across restarts (AE_DIRTY); supervisor/missed-writes.ts
 * turns a coordinator's `missed` action into a durable hint and a dirty mark.
 */

import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, systemClock } from '../lib/base/clock.js';
import { silentLogger } from '../lib/base/log.js';
import { seedFromEnvironment } from '../lib/base/rng.js';
import { SweepSchedule, type SweepPick } from '../lib/antientropy/index.js';
import { MemoryFileSystem } from '../lib/storage/index.js';
import { AntiEntropyScheduler } from '../lib/supervisor/anti-entropy-scheduler.js';
import { HintStore } from '../lib/supervisor/hint-store.js';
import { MissedWrites } from '../lib/supervisor/missed-writes.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

t.test('property: one sweep exchanges every (partition, up peer) pair exactly once, at period / pairs apart', async (t) => {
  const shape = fc.record({
    partitions: fc.uniqueArray(fc.nat(63), { minLength: 1, maxLength: 40 }),
    peerCount: fc.integer({ min: 0, max: 4 }),
    periodMs: fc.integer({ min: 1_000, max: 10_000_000 }),
    intervalMsMax: fc.integer({ min: 1, max: 100_000 }),
  });
  fc.assert(
    fc.property(shape, ({ partitions, peerCount, periodMs, intervalMsMax }) => {
      const peersOf = (p: number): string[] => Array.from({ length: (p % (peerCount + 1)) }, (_, i) => `n${i}`);
      const schedule = new SweepSchedule({ sweepPeriodMs: periodMs, intervalMsMax, nowMs: 0 });
      const pairs = partitions.reduce((sum, p) => sum + peersOf(p).length, 0);
      const seen = new Map<string, number>();
      for (let i = 0; i < pairs; i++) {
        const pick = schedule.next(partitions, peersOf, i);
        if (pick === undefined || pick.dirty) return false;
        const id = `${pick.partition}/${pick.peer}`;
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      if (pairs === 0) return schedule.next(partitions, peersOf, 0) === undefined;
      const expected = Math.max(1, Math.min(intervalMsMax, Math.floor(periodMs / pairs)));
      const stats = schedule.stats();
      return seen.size === pairs && [...seen.values()].every((n) => n === 1) && schedule.intervalMs === expected && stats.pairs === pairs && stats.done === pairs;
    }),
    { seed, numRuns: 300 },
  );
});

t.test('dirty pairs of up peers go first, lowest partition first; a complete exchange clears them; others wait', async (t) => {
  const schedule = new SweepSchedule({ sweepPeriodMs: 3_600_000, intervalMsMax: 10_000, nowMs: 0 });
  const partitions = [1, 2, 3, 4];
  let upPeers = ['b'];
  const peersOf = (): string[] => upPeers;
  t.equal(schedule.markDirty(3, 'c'), true);
  t.equal(schedule.markDirty(3, 'c'), false, 'a mark is set once');
  schedule.markDirty(2, 'c');
  schedule.markDirty(9, 'c'); // not ours: dropped when met
  const first = schedule.next(partitions, peersOf, 0);
  t.same(first, { partition: 1, peer: 'b', dirty: false }, 'c is down: its marks wait and the sweep goes on');
  upPeers = ['b', 'c'];
  t.same(schedule.next(partitions, peersOf, 1), { partition: 2, peer: 'c', dirty: true }, 'c is back: its dirty partitions come first');
  schedule.onExchanged(2, 'c', false);
  t.same(schedule.nextDirty(partitions, peersOf), { partition: 2, peer: 'c', dirty: true }, 'an incomplete exchange keeps the mark');
  schedule.onExchanged(2, 'c', true);
  t.same(schedule.nextDirty(partitions, peersOf), { partition: 3, peer: 'c', dirty: true });
  t.same(schedule.dirtyEntries(), [['c', [3]]], 'the mark of a partition not ours was dropped');
  schedule.onExchanged(3, 'c', true);
  t.equal(schedule.nextDirty(partitions, peersOf), undefined);
  t.same(schedule.dirtyEntries(), []);
  t.equal(schedule.stats().dirty, 0);
});

t.test('the marks of a removed peer are dropped; the others stay', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-ae-dirty-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const removed = new Set<string>();
  const make = (): AntiEntropyScheduler =>
    new AntiEntropyScheduler({ clock: systemClock, logger: silentLogger, sweepPeriodMs: 2_000, intervalMsMax: 50, myPartitions: () => [1, 2], peersOf: () => [], run: async () => true, dir, isMember: (peer) => !removed.has(peer) });
  const first = make();
  first.markDirty(1, 'gone');
  first.markDirty(2, 'back-later');
  first.start();
  await sleep(120);
  t.same(first.dirtyEntries(), [['gone', [1]], ['back-later', [2]]], 'members keep their marks while down');
  removed.add('gone');
  for (let i = 0; i < 100 && first.dirtyEntries().length > 1; i++) await sleep(20);
  t.same(first.dirtyEntries(), [['back-later', [2]]], "a removed peer's marks went");
  first.close();
  t.same(make().dirtyEntries(), [['back-later', [2]]], 'and stay gone after a restart');
});

t.test('a sweep that wraps is counted with its duration', async (t) => {
  const schedule = new SweepSchedule({ sweepPeriodMs: 4_000, intervalMsMax: 10_000, nowMs: 0 });
  const peersOf = (): string[] => ['b', 'c'];
  for (let i = 0; i < 4; i++) schedule.nextSweep([1, 2], peersOf, i * 1_000);
  t.equal(schedule.intervalMs, 1_000, '4 pairs in 4 s: one a second');
  t.equal(schedule.stats().sweeps, 0);
  schedule.nextSweep([1, 2], peersOf, 4_000);
  t.equal(schedule.stats().sweeps, 1);
  t.equal(schedule.stats().lastSweepMs, 4_000);
  t.throws(() => new SweepSchedule({ sweepPeriodMs: 0, intervalMsMax: 1, nowMs: 0 }), RangeError);
  t.throws(() => new SweepSchedule({ sweepPeriodMs: 1, intervalMsMax: Number.NaN, nowMs: 0 }), RangeError);
});

t.test('the scheduler runs dirty pairs back to back, then the sweep, and keeps marks across a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-ae-dirty-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const runs: SweepPick[] = [];
  const make = (run: (pick: SweepPick) => Promise<boolean | undefined>): AntiEntropyScheduler =>
    new AntiEntropyScheduler({ clock: systemClock, logger: silentLogger, sweepPeriodMs: 2_000, intervalMsMax: 100, myPartitions: () => [1, 2, 3], peersOf: () => ['b'], run, dir });
  const first = make(async () => undefined);
  first.markDirty(2, 'b');
  first.markDirty(3, 'b');
  first.close(); // saves at once
  const second = make(async (pick) => {
    runs.push(pick);
    return true;
  });
  t.same(second.dirtyEntries(), [['b', [2, 3]]], 'the marks were reloaded from AE_DIRTY');
  second.onExchanged(2, 'b', true); // an exchange elsewhere (a repair) clears a mark too
  second.start();
  t.teardown(() => second.close());
  for (let i = 0; i < 200 && runs.length < 3; i++) await sleep(20);
  t.same(runs[0], { partition: 3, peer: 'b', dirty: true }, 'the remaining dirty pair went first');
  t.equal(runs[1]?.dirty, false, 'then the sweep');
  t.equal(second.stats().dirty, 0);
  t.equal(second.stats().intervalMs, 100, 'capped by the configured interval (2 s / 3 pairs is longer)');
  second.close();
  const third = make(async () => true);
  t.same(third.dirtyEntries(), [], 'the cleared marks stay cleared after a restart');
  third.close();
  writeFileSync(join(dir, 'AE_DIRTY'), 'not json');
  const fourth = make(async () => true);
  t.same(fourth.dirtyEntries(), [], 'an unreadable file costs the marks, not the node');
  fourth.markDirty(1, 'b');
  fourth.close();
  t.same(make(async () => true).dirtyEntries(), [['b', [1]]], 'and is replaced by the next save');
});

t.test('a failing dirty pair waits for the poll instead of looping', async (t) => {
  const runs: SweepPick[] = [];
  const scheduler = new AntiEntropyScheduler({
    clock: systemClock,
    logger: silentLogger,
    sweepPeriodMs: 3_600_000,
    intervalMsMax: 60_000,
    myPartitions: () => [1],
    peersOf: () => ['b'],
    run: async (pick) => {
      runs.push(pick);
      return false;
    },
  });
  scheduler.markDirty(1, 'b');
  scheduler.start();
  t.teardown(() => scheduler.close());
  await sleep(400);
  t.ok(runs.length >= 1 && runs.length <= 2, `one failed attempt, then a wait (${runs.length} runs in 400 ms)`);
  scheduler.close();
});

t.test('a missed write keeps a durable hint at the coordinator when no stand-in holds one, and marks the partition dirty', async (t) => {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock();
  const open = (bytesMax: number): HintStore =>
    HintStore.open({ fs, dir: `/hints-${bytesMax}`, clock, logger: silentLogger, bytesMax, windowMs: 60_000, segmentBytes: 4096, partitionOf: (key) => key[0]! });
  const hints = open(1 << 20);
  const dirty: [number, string][] = [];
  const missed = new MissedWrites({ clock, logger: silentLogger, hints, partitionOf: (key) => key[0]!, markDirty: (p, r) => dirty.push([p, r]) });
  missed.onMissed('c', Uint8Array.of(7, 1), Uint8Array.of(9), undefined);
  missed.onMissed('c', Uint8Array.of(8, 1), Uint8Array.of(9), 'd');
  await sleep(10);
  t.same(dirty, [[7, 'c'], [8, 'c']], 'both partitions are dirty for c');
  t.same(hints.summaries().map((s) => [s.target, s.hints]), [['c', 1]], 'one hint kept here; the other is the stand-in d');
  t.same(missed.stats(), { missed: 2, hinted: 1, refused: 0 });
  const full = open(0);
  const refusing = new MissedWrites({ clock, logger: silentLogger, hints: full, partitionOf: (key) => key[0]!, markDirty: (p, r) => dirty.push([p, r]) });
  refusing.onMissed('c', Uint8Array.of(5), Uint8Array.of(9), undefined);
  refusing.onMissed('c', Uint8Array.of(6), Uint8Array.of(9), undefined);
  await sleep(10);
  t.same(refusing.stats(), { missed: 2, hinted: 0, refused: 2 }, 'past the bound hints are refused, counted');
  t.same(dirty.slice(2), [[5, 'c'], [6, 'c']], 'but the partitions are still dirty: anti-entropy repairs them');
  const noStore = new MissedWrites({ clock, logger: silentLogger, hints: undefined, partitionOf: () => 1, markDirty: (p, r) => dirty.push([p, r]) });
  noStore.onMissed('c', Uint8Array.of(1), Uint8Array.of(9), undefined);
  t.same(noStore.stats(), { missed: 1, hinted: 0, refused: 0 });
});
