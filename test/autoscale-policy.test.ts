/**
 * The autoscaling policy over synthetic load series (issue 13): hysteresis (no flapping on load
 * oscillating around a watermark), windows, cooldowns, the health gates, min/max, the victim
 * choice, leader election, and a leader handover in the middle of a decision. Also the load
 * report and decision record merge rules the gossip relies on.
 */

import t from 'tap';
import {
  evaluatePolicy,
  healthGate,
  isNewerReport,
  leaderOf,
  mergeDecision,
  parseDecision,
  parseLoadReport,
  validatePolicyConfig,
  type DecisionRecord,
  type LoadReport,
  type PolicyConfig,
  type PolicyInput,
  type PolicyMember,
  type PolicyResult,
  type PolicyState,
} from '../lib/autoscale/index.js';

const config: PolicyConfig = {
  minNodes: 3,
  maxNodes: 5,
  targetOpsPerNode: 100,
  scaleOutAbove: 1.0,
  scaleInBelow: 0.4,
  scaleOutWindowMs: 60_000,
  scaleInWindowMs: 150_000,
  cooldownMs: 60_000,
  decisionTimeoutMs: 600_000,
  eluHigh: 0.9,
  capacityHigh: 0.8,
  p99HighMs: 0,
};

function report(id: string, opsPerSecond: number, extra: Partial<LoadReport> = {}): LoadReport {
  return { id, incarnation: 1, seq: 1, opsPerSecond, elu: 0.1, cpu: 0.1, p99Ms: 2, bytesStored: 1000, capacityBytes: 0, transfers: 0, held: false, ...extra };
}

function members(count: number, opsPerNode: number, extra: (i: number) => Partial<PolicyMember> = () => ({})): PolicyMember[] {
  return Array.from({ length: count }, (_, i) => ({ id: `n${i}`, dc: 'dc1', status: 'normal' as const, up: true, report: report(`n${i}`, opsPerNode + i), ...extra(i) }));
}

/** Runs the policy every second over a per-second series of ops/s per node; returns the decisions with their times. */
function run(series: readonly number[], options: { nodes?: number; last?: DecisionRecord; startMs?: number; cfg?: PolicyConfig } = {}): { atMs: number; result: PolicyResult }[] {
  let state: PolicyState = {};
  const out: { atMs: number; result: PolicyResult }[] = [];
  const startMs = options.startMs ?? 1_000_000;
  series.forEach((ops, s) => {
    const input: PolicyInput = { nowMs: startMs + s * 1000, selfId: 'n0', members: members(options.nodes ?? 3, ops), replication: 3, ...(options.last ? { lastDecision: options.last } : {}) };
    const result = evaluatePolicy(options.cfg ?? config, state, input);
    state = result.state;
    if (result.decision) {
      out.push({ atMs: input.nowMs, result });
      state = {};
    }
  });
  return out;
}

t.test('sustained load above the high watermark scales out after the window, once', async (t) => {
  const decisions = run(Array.from({ length: 90 }, () => 150));
  t.equal(decisions.length, 1, 'one decision (the next waits for the pending record)');
  const d = decisions[0]!.result.decision!;
  t.equal(d.action, 'scale-out');
  t.equal(d.fromNodes, 3);
  t.equal(d.targetNodes, 4);
  t.equal(decisions[0]!.atMs - 1_000_000, 60_000, 'after exactly the 60 s window');
  t.match(d.reason, /ops\/s per node > 100/);
});

t.test('load oscillating around the high watermark never scales (hysteresis)', async (t) => {
  const series = Array.from({ length: 600 }, (_, s) => (s % 50 < 45 ? 130 : 90));
  t.same(run(series), [], 'each dip restarts the window');
  const between = Array.from({ length: 600 }, (_, s) => (s % 2 === 0 ? 95 : 45));
  t.same(run(between), [], 'between the watermarks nothing happens');
});

t.test('sustained low load scales in after the longer window, never under minNodes', async (t) => {
  const decisions = run(Array.from({ length: 200 }, () => 10), { nodes: 4 });
  t.equal(decisions.length, 1);
  const d = decisions[0]!.result.decision!;
  t.equal(d.action, 'scale-in');
  t.equal(d.targetNodes, 3);
  t.equal(decisions[0]!.atMs - 1_000_000, 150_000);
  t.equal(d.victim, 'n1', 'the least-loaded node other than the leader');
  t.same(run(Array.from({ length: 300 }, () => 10), { nodes: 3 }), [], 'at minNodes: no scale-in');
  const atMin = evaluatePolicy(config, { belowSinceMs: 0 }, { nowMs: 200_000, selfId: 'n0', members: members(3, 10), replication: 3 });
  t.match(atMin.reason, /at minNodes 3/);
  t.same(run(Array.from({ length: 120 }, () => 500), { nodes: 5 }), [], 'at maxNodes: no scale-out');
});

t.test('with scaleInVictim provisioner the decision names no victim and resolves by count', async (t) => {
  const cfg = { ...config, scaleInVictim: 'provisioner' as const };
  const decisions = run(Array.from({ length: 200 }, () => 10), { nodes: 4, cfg });
  t.equal(decisions.length, 1);
  t.equal(decisions[0]!.result.decision!.victim, undefined, 'the platform picks the node');
  const record: DecisionRecord = { seq: 2, leader: 'n0', action: 'scale-in', fromNodes: 4, targetNodes: 3, atMs: 0, state: 'pending', reason: 'r' };
  const input = (m: PolicyMember[]): PolicyInput => ({ nowMs: 1000, selfId: 'n0', members: m, replication: 3, lastDecision: record });
  t.equal(evaluatePolicy(cfg, {}, input(members(4, 1))).resolved, undefined, 'four normal: not yet');
  t.equal(evaluatePolicy(cfg, {}, input(members(4, 1, (i) => (i === 3 ? { status: 'leaving' } : {})))).resolved, undefined, 'one leaving: not yet');
  t.equal(evaluatePolicy(cfg, {}, input(members(4, 1, (i) => (i === 3 ? { status: 'left' } : {})))).resolved?.state, 'done');
  t.throws(() => validatePolicyConfig({ ...config, scaleInVictim: 'random' as 'provisioner' }), /scaleInVictim/);
});

t.test('scale-in needs the load after removal to stay at or under the target', async (t) => {
  // 4 nodes at 39 ops/s: below 40, but 3 nodes would carry 52+ each: fine (<= 100). At 2 nodes' worth it would not be.
  const cfg = { ...config, scaleInBelow: 0.9, minNodes: 1 };
  const decisions = run(Array.from({ length: 200 }, () => 80), { nodes: 2, cfg });
  t.same(decisions, [], '2 nodes at 80 would be 161 on one node: no scale-in');
});

t.test('cooldown after a decision, counted from its resolution', async (t) => {
  const last: DecisionRecord = { seq: 4, leader: 'n0', action: 'scale-out', fromNodes: 2, targetNodes: 3, atMs: 990_000, resolvedAtMs: 1_000_000, state: 'done', reason: 'x' };
  const decisions = run(Array.from({ length: 100 }, () => 200), { last });
  t.equal(decisions.length, 1);
  t.equal(decisions[0]!.atMs - 1_000_000, 60_000, 'the window ran during the cooldown; the decision waits for both');
  const during = evaluatePolicy(config, {}, { nowMs: 1_030_000, selfId: 'n0', members: members(3, 200), replication: 3, lastDecision: last });
  t.match(during.reason, /cooldown: 30 s left/);
});

t.test('health gates hold every decision', async (t) => {
  const base = (m: PolicyMember[]): PolicyInput => ({ nowMs: 10_000_000, selfId: 'n0', members: m, replication: 3 });
  const hot = { aboveSinceMs: 0 };
  const cases: [string, PolicyMember[], RegExp][] = [
    ['a member down', members(4, 500, (i) => (i === 2 ? { up: false } : {})), /n2 is down/],
    ['a member joining', [...members(3, 500), { id: 'n9', dc: 'dc1', status: 'joining', up: true, report: report('n9', 0) }], /n9 is joining/],
    ['a member leaving', members(4, 500, (i) => (i === 3 ? { status: 'leaving' } : {})), /n3 is leaving/],
    ['a transfer in flight', members(3, 500, (i) => (i === 1 ? { report: report('n1', 500, { transfers: 4 }) } : {})), /n1 is moving 4 partition/],
    ['a silent member', members(3, 500, (i) => (i === 2 ? { report: undefined } : {})), /no fresh load report from n2/],
    ['under-replication', members(2, 500), /under-replicated: 2 node\(s\) for N=3/],
  ];
  for (const [what, m, reason] of cases) {
    const result = evaluatePolicy(config, hot, base(m));
    t.equal(result.decision, undefined, `${what}: no decision`);
    t.match(result.reason, reason, what);
  }
  const held = [...members(3, 500), { id: 'n9', dc: 'dc1', status: 'joining' as const, up: true, report: report('n9', 0, { held: true }) }];
  t.equal(healthGate(base(held)), undefined, 'a node waiting for a plan does not block');
  const perDc: PolicyInput = { nowMs: 0, selfId: 'n0', members: members(3, 1, (i) => ({ dc: i === 0 ? 'dc2' : 'dc1' })), replication: { dc1: 2, dc2: 2 } };
  t.match(healthGate(perDc)!, /dc2 has 1 node\(s\) for 2 copies/);
});

t.test('scale-in never takes a datacenter under its replica count', async (t) => {
  const m = members(5, 1, (i) => ({ dc: i < 3 ? 'dc1' : 'dc2' }));
  const input: PolicyInput = { nowMs: 10_000_000, selfId: 'n0', members: m, replication: { dc1: 3, dc2: 2 } };
  const result = evaluatePolicy({ ...config, minNodes: 1 }, { belowSinceMs: 0 }, input);
  t.equal(result.decision, undefined);
  t.match(result.reason, /no node can leave without under-replicating/);
  const roomy = members(6, 1, (i) => ({ dc: i < 4 ? 'dc1' : 'dc2' }));
  const ok = evaluatePolicy({ ...config, minNodes: 1 }, { belowSinceMs: 0 }, { ...input, members: roomy });
  t.equal(ok.decision?.victim, 'n1', 'only dc1 has a node to spare; its least loaded other than the leader');
});

t.test('other signals: event loop, capacity and p99 count as above', async (t) => {
  const input = (r: Partial<LoadReport>): PolicyInput => ({ nowMs: 100_000, selfId: 'n0', members: members(3, 50, (i) => ({ report: report(`n${i}`, 50, r) })), replication: 3 });
  const cfg = { ...config, scaleOutWindowMs: 0, p99HighMs: 20 };
  t.match(evaluatePolicy(cfg, {}, input({ elu: 0.95 })).decision?.reason ?? '', /event-loop utilisation 0.95/);
  t.match(evaluatePolicy(cfg, {}, input({ bytesStored: 90, capacityBytes: 100 })).decision?.reason ?? '', /90% of its capacity/);
  t.match(evaluatePolicy(cfg, {}, input({ p99Ms: 35 })).decision?.reason ?? '', /p99 35 ms > 20 ms/);
  t.equal(evaluatePolicy(cfg, {}, input({})).decision, undefined, 'quiet figures: nothing');
  t.match(evaluatePolicy(cfg, {}, input({})).reason, /steady/);
});

t.test('only the lowest-id up, normal member leads', async (t) => {
  const m = members(3, 500, (i) => (i === 0 ? { up: false } : {}));
  t.equal(leaderOf(m), 'n1');
  const notMe = evaluatePolicy(config, { aboveSinceMs: 0 }, { nowMs: 1e7, selfId: 'n2', members: members(3, 500), replication: 3 });
  t.equal(notMe.decision, undefined);
  t.equal(notMe.leader, 'n0');
  t.match(notMe.reason, /n0 leads/);
  t.equal(leaderOf([]), undefined);
});

t.test('a new leader mid-decision waits for the pending record instead of repeating it', async (t) => {
  // n0 decided scale-out to 4 and died before the new node joined; n1 now leads.
  const pending: DecisionRecord = { seq: 7, leader: 'n0', action: 'scale-out', fromNodes: 3, targetNodes: 4, atMs: 1_000_000, state: 'pending', reason: 'hot' };
  const view = (extra: PolicyMember[]): PolicyMember[] => [{ id: 'n0', dc: 'dc1', status: 'normal', up: false }, ...members(3, 500).slice(1), ...extra];
  let state: PolicyState = {};
  for (let s = 0; s < 120; s++) {
    const r = evaluatePolicy(config, state, { nowMs: 1_000_000 + s * 1000, selfId: 'n1', members: view([]), replication: 3, lastDecision: pending });
    state = r.state;
    t.equal(r.decision, undefined);
    if (s === 0) t.match(r.reason, /waiting for decision 7/);
  }
  const joined = view([{ id: 'n5', dc: 'dc1', status: 'normal', up: true, report: report('n5', 0) }, { id: 'n6', dc: 'dc1', status: 'normal', up: true, report: report('n6', 0) }]);
  const resolved = evaluatePolicy(config, state, { nowMs: 1_200_000, selfId: 'n1', members: joined, replication: 3, lastDecision: pending });
  t.equal(resolved.resolved?.state, 'done', 'resolved by what the cluster shows');
  t.equal(resolved.resolved?.seq, 7);
  const timedOut = evaluatePolicy(config, {}, { nowMs: 1_000_000 + 600_001, selfId: 'n1', members: view([]), replication: 3, lastDecision: pending });
  t.equal(timedOut.resolved?.state, 'failed');
  t.match(timedOut.resolved?.detail ?? '', /not complete after 600 s/);
  const scaleIn: DecisionRecord = { ...pending, action: 'scale-in', targetNodes: 2, victim: 'n2' };
  const gone = evaluatePolicy(config, {}, { nowMs: 1_000_500, selfId: 'n1', members: view([]).map((m) => (m.id === 'n2' ? { ...m, status: 'left' as const } : m)), replication: 3, lastDecision: scaleIn });
  t.equal(gone.resolved?.state, 'done', 'a scale-in is done once its victim left');
});

t.test('decision records merge: higher seq wins, a resolution wins over pending, idempotent', async (t) => {
  const a: DecisionRecord = { seq: 1, leader: 'n0', action: 'scale-out', fromNodes: 3, targetNodes: 4, atMs: 5, state: 'pending', reason: 'r' };
  const done: DecisionRecord = { ...a, state: 'done', resolvedAtMs: 9 };
  const b: DecisionRecord = { ...a, seq: 2 };
  t.equal(mergeDecision(a, done), done);
  t.equal(mergeDecision(done, a), done);
  t.equal(mergeDecision(a, b), b);
  t.equal(mergeDecision(b, done), b);
  t.equal(mergeDecision(a, a), a);
  t.equal(mergeDecision(undefined, a), a);
  t.equal(mergeDecision(a, undefined), a);
  t.same(parseDecision(JSON.parse(JSON.stringify({ ...done, victim: 'n3', detail: 'd' }))), { ...done, victim: 'n3', detail: 'd' });
  for (const bad of [null, { ...a, seq: 0 }, { ...a, action: 'grow' }, { ...a, state: 'maybe' }, { ...a, victim: 4 }, { ...a, reason: 'x'.repeat(2000) }, { ...a, resolvedAtMs: -1 }, { ...a, fromNodes: 1.5 }]) {
    t.equal(parseDecision(bad), undefined, `refused: ${JSON.stringify(bad)?.slice(0, 60)}`);
  }
});

t.test('load reports: validated, newer (incarnation, seq) wins', async (t) => {
  const r = report('n1', 10);
  t.same(parseLoadReport(JSON.parse(JSON.stringify(r))), r);
  for (const bad of [undefined, [], { ...r, elu: 2 }, { ...r, id: '' }, { ...r, seq: -1 }, { ...r, held: 'no' }, { ...r, opsPerSecond: Number.NaN }, { ...r, transfers: 0.5 }]) {
    t.equal(parseLoadReport(bad), undefined);
  }
  t.ok(isNewerReport({ ...r, seq: 2 }, r));
  t.notOk(isNewerReport(r, { ...r, seq: 2 }));
  t.ok(isNewerReport({ ...r, incarnation: 2, seq: 1 }, { ...r, seq: 50 }), 'a restart wins whatever its seq');
  t.ok(isNewerReport(r, undefined));
});

t.test('configs are checked', async (t) => {
  t.same(validatePolicyConfig(config), config);
  t.throws(() => validatePolicyConfig({ ...config, maxNodes: 2 }), /maxNodes must be at least minNodes/);
  t.throws(() => validatePolicyConfig({ ...config, scaleInBelow: 1.5 }), /scaleInBelow/);
  t.throws(() => validatePolicyConfig({ ...config, targetOpsPerNode: 0 }), /targetOpsPerNode/);
  t.throws(() => validatePolicyConfig({ ...config, cooldownMs: -1 }), /cooldownMs/);
  t.throws(() => validatePolicyConfig({ ...config, eluHigh: 2 }), /eluHigh/);
  t.throws(() => validatePolicyConfig({ ...config, minNodes: 0 }), /minNodes/);
});
