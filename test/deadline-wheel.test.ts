/**
 * The coordinator driver's shared deadline timer (lib/supervisor/deadline-wheel.ts): wake-ups
 * fire once, in due order, after their delay on the wheel's clock; clearing and moving work;
 * a callback's own sets wait for the next timer; stale entries are compacted away; close stops
 * everything. A manual clock drives due times; the Node timer only wakes the wheel, so the test
 * polls for the outcome instead of timing anything.
 */
import t from 'tap';
import { DeadlineWheel } from '../lib/supervisor/deadline-wheel.js';

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

t.test('wake-ups fire once each, in due order, once the clock reaches them', async (t) => {
  let nowMs = 0;
  const fired: number[] = [];
  const wheel = new DeadlineWheel({ onDue: (id) => fired.push(id), realNowMs: () => nowMs });
  wheel.set(3, 30);
  wheel.set(1, 10);
  wheel.set(2, 20);
  t.equal(wheel.size, 3);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.same(fired, [], 'nothing fires before the clock reaches a due time');
  nowMs = 25;
  wheel.set(9, 100); // a set re-arms nothing later than the armed timer; the armed timer re-checks
  await until(() => fired.length === 2, 'two wake-ups');
  t.same(fired, [1, 2]);
  nowMs = 1000;
  wheel.set(10, 0);
  await until(() => fired.length === 5, 'the rest');
  t.same(fired.slice(2).sort((a, b) => a - b), [3, 9, 10]);
  t.equal(wheel.size, 0);
  wheel.close();
});

t.test('clear drops a wake-up and set moves one', async (t) => {
  let nowMs = 0;
  const fired: number[] = [];
  const wheel = new DeadlineWheel({ onDue: (id) => fired.push(id), realNowMs: () => nowMs });
  wheel.set(1, 5);
  wheel.set(2, 5);
  wheel.clear(1);
  wheel.set(2, 50); // moved later: its first entry is stale
  nowMs = 10;
  wheel.set(3, 0);
  await until(() => fired.length === 1, 'the moved-past wake-up');
  t.same(fired, [3], 'a cleared id never fires; a moved one waits for its new time');
  nowMs = 60;
  wheel.set(4, 0);
  await until(() => fired.length === 3, 'the moved wake-up');
  t.same(fired, [3, 2, 4]);
  wheel.close();
});

t.test('a callback that sets its own id again fires at the next timer, not in the same pass', async (t) => {
  let nowMs = 0;
  const fired: number[] = [];
  let passes = 0;
  const wheel = new DeadlineWheel({
    onDue: (id) => {
      fired.push(id);
      if (++passes < 3) wheel.set(id, 0);
    },
    realNowMs: () => nowMs,
  });
  wheel.set(7, 0);
  await until(() => fired.length === 3, 'three firings');
  t.same(fired, [7, 7, 7]);
  t.equal(wheel.size, 0);
  wheel.close();
});

t.test('stale entries are compacted, and live ones still fire', async (t) => {
  let nowMs = 0;
  const fired: number[] = [];
  const wheel = new DeadlineWheel({ onDue: (id) => fired.push(id), realNowMs: () => nowMs });
  for (let id = 1; id <= 20_000; id++) {
    wheel.set(id, 1000 + id);
    if (id % 100 !== 0) wheel.clear(id);
  }
  t.equal(wheel.size, 200, 'only the uncleared ids are live');
  nowMs = 100_000;
  wheel.set(0, 0);
  await until(() => fired.length === 201, 'every live wake-up');
  t.equal(new Set(fired).size, 201, 'each fired once');
  t.ok(fired.every((id) => id % 100 === 0), 'no cleared id fired');
  wheel.close();
});

t.test('close clears everything and ignores later sets', async (t) => {
  let nowMs = 0;
  const fired: number[] = [];
  const wheel = new DeadlineWheel({ onDue: (id) => fired.push(id), realNowMs: () => nowMs });
  wheel.set(1, 0);
  wheel.close();
  wheel.set(2, 0);
  nowMs = 100;
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.same(fired, []);
  t.equal(wheel.size, 0);
});

t.test('the default clock is real time', async (t) => {
  const fired: number[] = [];
  const wheel = new DeadlineWheel({ onDue: (id) => fired.push(id) });
  wheel.set(1, 1);
  await until(() => fired.length === 1, 'a real-time wake-up');
  t.same(fired, [1]);
  wheel.close();
});
