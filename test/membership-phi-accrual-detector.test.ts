/**
 * The phi accrual failure detector on virtual time, and the member record's merge laws and
 * validation. Property tests print their seed; rerun one with RINGKV_SEED=<seed>.
 */
import t from 'tap';
import fc from 'fast-check';
import { deepEqual } from 'node:assert/strict';
import { limits } from '../lib/base/limits.js';
import { seedFromEnvironment } from '../lib/base/rng.js';
import {
  compareVersion,
  createMemberState,
  defaultPhiAccrualOptions,
  mergeMemberState,
  nextGeneration,
  PhiAccrualDetector,
  statusRank,
  validateMemberState,
  type MemberState,
  type MemberStatus,
} from '../lib/membership/index.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);

function regular(detector: PhiAccrualDetector, id: string, count: number, intervalMs: number, startMs = 0): number {
  let nowMs = startMs;
  for (let i = 0; i < count; i++) {
    detector.report(id, nowMs);
    nowMs += intervalMs;
  }
  return nowMs - intervalMs;
}

/** The first whole millisecond after `fromMs` at which `id` is convictable. */
function convictionMs(detector: PhiAccrualDetector, id: string, fromMs: number): number {
  let nowMs = fromMs;
  while (!detector.isConvictable(id, nowMs)) nowMs += 1;
  return nowMs;
}

t.test('phi is zero right after an arrival and grows with silence', async (t) => {
  const detector = new PhiAccrualDetector();
  t.equal(detector.phi('x', 0), 0, 'unknown member');
  t.notOk(detector.isConvictable('x', 1e9));
  const lastMs = regular(detector, 'x', 50, 1000);
  t.equal(detector.phi('x', lastMs), 0);
  let previous = 0;
  for (let silenceMs = 500; silenceMs <= 30_000; silenceMs += 500) {
    const phi = detector.phi('x', lastMs + silenceMs);
    t.ok(phi > previous, `phi grows at ${silenceMs} ms`);
    previous = phi;
  }
  t.equal(detector.size, 1);
  detector.remove('x');
  t.equal(detector.size, 0);
  t.equal(detector.phi('x', lastMs + 30_000), 0);
});

t.test('the threshold is crossed after threshold · ln 10 · mean of silence (exponential model)', async (t) => {
  for (const intervalMs of [250, 1000, 3000]) {
    const detector = new PhiAccrualDetector({ ...defaultPhiAccrualOptions(), meanMinMs: 1 });
    const lastMs = regular(detector, 'x', 200, intervalMs);
    const meanMs = detector.meanIntervalMs('x')!;
    const expectedMeanMs = (limits.arrivalBootstrapIntervalMs + 199 * intervalMs) / 200;
    t.ok(Math.abs(meanMs - expectedMeanMs) < 1e-6, `mean ${meanMs}: 199 intervals and the bootstrap sample`);
    const expectedMs = 8 * Math.LN10 * meanMs;
    const measuredMs = convictionMs(detector, 'x', lastMs) - lastMs;
    t.comment(`interval ${intervalMs} ms: convicted after ${measuredMs} ms, model ${expectedMs.toFixed(0)} ms`);
    t.ok(Math.abs(measuredMs - expectedMs) <= 2, 'matches the model');
  }
});

t.test('a member with few samples is judged on the bootstrap interval, which errs on the late side', async (t) => {
  const detector = new PhiAccrualDetector();
  detector.report('new', 0);
  t.equal(detector.sampleCount('new'), 1, 'only the bootstrap sample');
  t.equal(detector.meanIntervalMs('new'), limits.arrivalBootstrapIntervalMs);
  const measuredMs = convictionMs(detector, 'new', 0);
  t.ok(measuredMs > 8 * Math.LN10 * limits.gossipIntervalMs * 1.9, `a new member gets ${measuredMs} ms`);
  t.equal(detector.meanIntervalMs('missing'), undefined);
  t.equal(detector.sampleCount('missing'), 0);
});

t.test('the window is bounded, forgets old intervals, and does not record outages or restarts', async (t) => {
  const detector = new PhiAccrualDetector({ ...defaultPhiAccrualOptions(), windowSize: 100 });
  let lastMs = regular(detector, 'x', 250, 1000);
  t.equal(detector.sampleCount('x'), 100);
  lastMs = regular(detector, 'x', 101, 500, lastMs + 500);
  t.equal(detector.meanIntervalMs('x'), 500, 'the window now holds only the recent intervals');
  detector.report('x', lastMs + 60_000);
  t.equal(detector.meanIntervalMs('x'), 500, 'a gap longer than intervalMaxMs is an outage, not a sample');
  detector.restart('x', lastMs + 70_000);
  detector.report('x', lastMs + 75_000);
  t.equal(detector.meanIntervalMs('x'), 500, 'the interval ending a restart is not a sample');
  t.equal(detector.phi('x', lastMs + 75_000), 0);
  detector.restart('fresh', 0);
  detector.report('fresh', 9000);
  t.equal(detector.sampleCount('fresh'), 1, 'first sight through restart records nothing either');
  t.throws(() => new PhiAccrualDetector({ ...defaultPhiAccrualOptions(), bootstrapIntervalMs: 20_000 }), /bootstrap/);
  t.throws(() => new PhiAccrualDetector({ ...defaultPhiAccrualOptions(), threshold: 0 }));
  t.throws(() => new PhiAccrualDetector({ ...defaultPhiAccrualOptions(), meanMinMs: 0 }));
});

t.test('the mean never drops below meanMinMs, so bursts of arrivals do not make the detector trigger-happy', async (t) => {
  const detector = new PhiAccrualDetector({ ...defaultPhiAccrualOptions(), windowSize: 10 });
  const lastMs = regular(detector, 'x', 50, 1);
  t.ok(detector.meanIntervalMs('x')! < 2);
  t.notOk(detector.isConvictable('x', lastMs + 3000), 'three seconds of silence after a burst is not a conviction');
});

t.test('our own pause is not held against others: silence is forgiven and convictions wait for a grace period', async (t) => {
  const detector = new PhiAccrualDetector();
  let nowMs = 0;
  for (let i = 0; i < 60; i++, nowMs += 1000) {
    detector.observeTick(nowMs);
    detector.report('x', nowMs);
  }
  const lastArrivalMs = nowMs - 1000;
  t.equal(detector.observeTick(nowMs), 0, 'an on-time tick is no pause');
  t.equal(detector.observeTick(nowMs + 1000 + limits.selfLagToleranceMs), 0, 'lag within tolerance is no pause');
  nowMs += 1000 + limits.selfLagToleranceMs;
  const resumedMs = nowMs + 31_000;
  const phiWithoutForgiveness = (resumedMs - lastArrivalMs) / (1000 * Math.LN10);
  t.ok(phiWithoutForgiveness > 8, 'without the pause logic this would convict');
  const pauseMs = detector.observeTick(resumedMs);
  t.equal(pauseMs, 30_000, 'the pause is reported');
  t.ok(detector.isLagging(resumedMs));
  t.ok(detector.phi('x', resumedMs) < 3, `phi after forgiveness is ${detector.phi('x', resumedMs).toFixed(2)}`);
  detector.report('x', resumedMs + 10);
  t.ok(Math.abs(detector.meanIntervalMs('x')! - 1000) < 30, 'the interval spanning the pause is not a sample');

  // A member that really was silent is still convicted, but only after the grace period.
  detector.report('dead', 0);
  const gracedMs = detector.observeTick(resumedMs + 60_000) > 0 ? resumedMs + 60_000 : 0;
  t.ok(gracedMs > 0);
  t.notOk(detector.isConvictable('dead', gracedMs + 1), 'no convictions right after a pause');
  t.ok(detector.isConvictable('dead', gracedMs + limits.selfLagGraceMs), 'convicted once the grace period is over');
});

t.test('a flapping link makes at most one down and one up per outage long enough to convict', async (t) => {
  // A link that drops for `downMs` then delivers for `upMs`, forever; the caller convicts on
  // each tick and un-convicts on each arrival, as Gossip does.
  for (const [downMs, upMs] of [
    [3000, 2000],
    [9000, 3000],
    [30_000, 5000],
  ] as const) {
    const detector = new PhiAccrualDetector();
    let alive = true;
    let transitions = 0;
    let outagesLongEnough = 0;
    const cycleMs = downMs + upMs;
    for (let nowMs = 0; nowMs < 600_000; nowMs += 1000) {
      const phase = nowMs % cycleMs;
      if (phase >= downMs) {
        detector.report('x', nowMs);
        if (!alive) transitions++;
        alive = true;
      }
      if (alive && detector.isConvictable('x', nowMs)) {
        transitions++;
        alive = false;
      }
      // Samples are 1 s apart while the link is up, so silence convicts after 8 · ln 10 · 1 s.
      if (phase === 0 && downMs > 8 * Math.LN10 * 1000) outagesLongEnough++;
    }
    t.comment(`down ${downMs} ms / up ${upMs} ms: ${transitions} transitions in 10 minutes`);
    t.ok(transitions <= 2 * outagesLongEnough, 'bounded by the outages that outlast the detector');
  }
});

// ------------------------------------------------------------------ member records

/** States from one owner's history: restarts, heartbeats, forward status changes. */
const history = fc
  .array(fc.constantFrom('beat', 'beat', 'beat', 'status', 'weight', 'restart'), { minLength: 1, maxLength: 40 })
  .map((steps) => {
    const statuses: MemberStatus[] = ['joining', 'normal', 'leaving', 'left'];
    let state = createMemberState({ id: 'm', address: 'm:1', generation: 5, heartbeat: 0, status: 'joining', statusVersion: 0, weight: 1, dc: 'dc1', rack: 'r1' });
    const out = [state];
    for (const step of steps) {
      if (step === 'beat') state = { ...state, heartbeat: state.heartbeat + 1 };
      if (step === 'restart') state = { ...state, generation: state.generation + 1, heartbeat: 0, statusVersion: 0, status: 'joining' };
      if (step === 'status' || step === 'weight') {
        const heartbeat = state.heartbeat + 1;
        const status = step === 'status' ? statuses[Math.min(3, statusRank(state.status) + 1)]! : state.status;
        state = { ...state, heartbeat, statusVersion: heartbeat, status, weight: step === 'weight' ? state.weight + 1 : state.weight };
      }
      out.push(state);
    }
    return out;
  });

const threeOf = history.chain((states) => fc.tuple(fc.constantFrom(...states), fc.constantFrom(...states), fc.constantFrom(...states)));

t.test('merge is commutative, associative and idempotent, and never goes back in version', async (t) => {
  fc.assert(
    fc.property(threeOf, ([a, b, c]) => {
      deepEqual(mergeMemberState(a, b), mergeMemberState(b, a));
      deepEqual(mergeMemberState(mergeMemberState(a, b), c), mergeMemberState(a, mergeMemberState(b, c)));
      deepEqual(mergeMemberState(a, a), a);
      const merged = mergeMemberState(a, b);
      return compareVersion(merged, a) >= 0 && compareVersion(merged, b) >= 0 && merged.statusVersion <= merged.heartbeat;
    }),
    { seed, numRuns: 300 },
  );
  t.pass('laws hold');
});

t.test('a status change is not undone by a copy with a newer heartbeat but an older status', async (t) => {
  const base = createMemberState({ id: 'm', address: 'm:1', generation: 5, heartbeat: 10, status: 'leaving', statusVersion: 10, weight: 1, dc: 'dc1', rack: 'r1' });
  const olderStatus = { ...base, heartbeat: 12, status: 'normal' as const, statusVersion: 3 };
  const merged = mergeMemberState(base, olderStatus);
  t.equal(merged.status, 'leaving');
  t.equal(merged.heartbeat, 12);
  const forgedTie = { ...base, address: 'evil:1' };
  t.same(mergeMemberState(base, forgedTie), mergeMemberState(forgedTie, base), 'a forged tie still merges the same both ways');
  t.same(mergeMemberState({ ...base, weight: 2 }, base), mergeMemberState(base, { ...base, weight: 2 }));
  t.same(mergeMemberState({ ...base, dc: 'dc0' }, base), mergeMemberState(base, { ...base, dc: 'dc0' }));
  t.same(mergeMemberState({ ...base, status: 'left' }, base).status, 'left');
  const restarted = { ...base, generation: 6, heartbeat: 0, statusVersion: 0, status: 'joining' as const };
  t.equal(mergeMemberState(base, restarted), restarted, 'a higher generation wins outright');
  t.equal(compareVersion(base, base), 0);
  t.equal(compareVersion(base, restarted), -1);
  t.equal(compareVersion(base, olderStatus), -1);
});

t.test('generations increase across restarts even when the persisted counter or the clock goes back', async (t) => {
  t.equal(nextGeneration(undefined, 1_700_000_000_000), 1_700_000_000);
  t.equal(nextGeneration(1_700_000_500, 1_700_000_000_000), 1_700_000_501, 'the clock went back: the counter wins');
  t.equal(nextGeneration(undefined, 0), 1, 'never 0');
  t.equal(nextGeneration(7, 0), 8);
  t.throws(() => nextGeneration(-1, 0), RangeError);
  t.throws(() => nextGeneration(1.5, 0), RangeError);
  t.throws(() => nextGeneration(undefined, Number.NaN), RangeError);
  t.throws(() => nextGeneration(undefined, 1e30), RangeError);
  fc.assert(
    fc.property(fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: undefined }), fc.integer({ min: 0, max: 2 ** 50 }), (previous, wallMs) => {
      return nextGeneration(previous, wallMs) > (previous ?? 0);
    }),
    { seed, numRuns: 200 },
  );
});

t.test('validation keeps only well-formed records and copies only known fields', async (t) => {
  const good: MemberState = { id: 'm', address: 'm:1', generation: 5, heartbeat: 10, status: 'normal', statusVersion: 3, weight: 1.5, dc: 'dc1', rack: 'r1' };
  const checked = validateMemberState({ ...good, extra: 1 });
  t.ok(checked.ok);
  if (checked.ok) t.same(checked.value, good);
  t.notOk(validateMemberState(undefined).ok);
  t.notOk(validateMemberState({ ...good, id: 7 }).ok);
  t.notOk(validateMemberState({ ...good, id: '🦀'.repeat(limits.memberIdBytesMax / 4 + 1) }).ok, 'bytes, not characters, are counted');
  t.ok(validateMemberState({ ...good, id: '🦀'.repeat(limits.memberIdBytesMax / 4) }).ok);
  t.throws(() => createMemberState({ ...good, status: 'gone' as MemberStatus }), RangeError);
});
