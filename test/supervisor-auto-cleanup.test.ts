/**
 * The automatic cleanup schedule (lib/supervisor/auto-cleanup.ts) with fakes: which partitions
 * it hands over and drops, and when it holds back. The exchanges and the drop itself are
 * AntiEntropy.cleanupPartition, exercised on real processes by test/cluster-membership.test.ts.
 */

import t from 'tap';
import { ManualClock } from '../lib/base/clock.js';
import { silentLogger } from '../lib/base/log.js';
import { AutoCleanup, type CleanupOutcome } from '../lib/supervisor/auto-cleanup.js';

interface World {
  mine: number[];
  settled: boolean;
  /** Per partition: what cleanupPartition answers (default: dropped with 5 entries). */
  answers: Map<number, CleanupOutcome | Error>;
  calls: number[];
}

function setup(settleMs = 1_000): { auto: AutoCleanup; clock: ManualClock; world: World } {
  const clock = new ManualClock();
  const world: World = { mine: [], settled: true, answers: new Map(), calls: [] };
  const auto = new AutoCleanup({
    partitionCount: 8,
    clock,
    logger: silentLogger,
    myPartitions: () => world.mine,
    settled: () => world.settled,
    cleanupPartition: async (p) => {
      world.calls.push(p);
      const answer = world.answers.get(p) ?? { outcome: 'dropped', entries: 5 };
      if (answer instanceof Error) throw answer;
      return answer;
    },
    intervalMs: 100,
    settleMs,
  });
  return { auto, clock, world };
}

t.test('after start it sweeps every partition it does not replicate once, then only what ring changes take away', async (t) => {
  const { auto, clock, world } = setup();
  world.mine = [0, 1, 2, 3];
  auto.onRingChange();
  await auto.tick();
  t.same(world.calls, [], 'nothing within the settle time after a ring change');
  clock.advance(1_000);
  world.answers.set(5, { outcome: 'empty' });
  await auto.tick();
  t.same(world.calls, [4, 5, 6, 7], 'the first pass looks at every partition outside its own');
  t.same(auto.stats(), { pending: 0, dropped: 3, entriesDropped: 15 }, 'an empty partition is done without counting as dropped');
  world.calls = [];
  await auto.tick();
  t.same(world.calls, [], 'nothing is pending afterwards');

  world.mine = [2, 3, 4];
  auto.onRingChange();
  clock.advance(999);
  await auto.tick();
  t.same(world.calls, [], 'the settle time restarts at each ring change');
  clock.advance(1);
  await auto.tick();
  t.same(world.calls, [0, 1], 'the partitions the change took away are handed over and dropped');
});

t.test('a partition kept back is tried again; one that becomes ours again leaves the list', async (t) => {
  const { auto, clock, world } = setup(0);
  world.mine = [0, 1, 2, 3, 4, 5, 6];
  auto.onRingChange();
  await auto.tick();
  t.same(world.calls, [7]);
  world.calls = [];
  world.mine = [0, 1, 2, 3, 7];
  world.answers.set(4, { outcome: 'kept', reason: 'a replica is down' });
  world.answers.set(5, new Error('store closed'));
  auto.onRingChange();
  await auto.tick();
  t.same(world.calls, [4, 5], 'a throw ends the pass');
  t.equal(auto.stats().lastKept, '4: a replica is down');
  t.equal(auto.stats().pending, 3, 'both stay pending, and 6 was not reached');
  world.calls = [];
  world.mine = [0, 1, 2, 3, 4, 7];
  auto.onRingChange();
  world.answers.delete(5);
  clock.advance(1);
  await auto.tick();
  t.same(world.calls, [5, 6], '4 is ours again: never dropped');
});

t.test('nothing runs while the cluster is not settled, before the ring is known, or after close', async (t) => {
  const { auto, clock, world } = setup(0);
  await auto.tick();
  t.same(world.calls, [], 'no ring yet: every partition would look foreign');
  world.mine = [0];
  world.settled = false;
  auto.onRingChange();
  await auto.tick();
  t.same(world.calls, [], 'a membership change is in progress');
  world.settled = true;
  auto.start();
  auto.close();
  clock.advance(10);
  await auto.tick();
  t.same(world.calls, [], 'closed');
  t.throws(() => setup(-1), RangeError);
});

t.test('the timer runs passes by itself', async (t) => {
  const { auto, world } = setup(0);
  world.mine = [0, 1, 2, 3, 4, 5, 6];
  auto.onRingChange();
  auto.start();
  t.teardown(() => auto.close());
  for (let i = 0; i < 100 && world.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.same(world.calls, [7]);
});
