/**
 * Staged plans on real processes (issue 13): a node started with --staged-join waits; `ringkv
 * plan join` shows the ring it leads to; `ringkv commit` applies it, and the ring that results
 * is exactly the one shown. A leave committed while that join still streams is queued and
 * re-planned when its turn comes, never interleaved. A plan that would leave a datacenter
 * without any copy of its partitions is refused.
 */

import t from 'tap';
import { computeRing } from '../lib/ring/index.js';
import type { PlanReport } from '../lib/plan/index.js';
import type { PlanStatus } from '../lib/supervisor/scaling/plan-service.js';
import type { StatusJson } from '../lib/supervisor/index.js';
import { Cluster } from './fixtures/cluster.js';
import { ringkvCli } from './fixtures/cli-capture.js';
import { until } from './fixtures/history.js';

const replication = { dc1: 2, dc2: 1 };
const partitionBits = 6;

function ringOf(status: StatusJson): ReturnType<typeof computeRing> {
  const members = status.members.filter((m) => m.status !== 'left').map((m) => ({ id: m.id, weight: m.weight, dc: m.dc, rack: m.rack, status: m.status }));
  return computeRing(members, { partitionBits: status.partitionBits, replication: status.replication });
}

t.test('plan, commit, re-plan and refusal on real nodes', async (t) => {
  const cluster = new Cluster({
    nodes: 3,
    secret: 'plan',
    replication,
    nodeOptions: (i) => ({ dc: i === 2 ? 'dc2' : 'dc1', partitionBits, scaleReportIntervalMs: 200, autoCleanupIntervalMs: 0 }),
  });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const url = cluster.nodes[0]!.url;
  const cli = (...args: string[]): ReturnType<typeof ringkvCli> => ringkvCli(['--url', url, ...args]);

  const waiting = await cluster.startNode(3, { stagedJoin: true });
  await until('node 0 sees node 3 waiting for a plan', async () => {
    const s = await cluster.status(0);
    return s.members.some((m) => m.id === waiting.id && m.status === 'joining');
  });
  await new Promise((r) => setTimeout(r, 1_500));
  t.equal((await cluster.status(3)).members.find((m) => m.id === waiting.id)?.status, 'joining', 'a --staged-join node does not join by itself');
  t.equal((await cluster.status(3)).scaling?.held, true, 'it reports that it waits for a plan');

  const staged = await cli('plan', 'join', waiting.address);
  t.equal(staged.code, 0, staged.err);
  t.match(staged.out, new RegExp(`join ${waiting.id}`));
  t.match(staged.out, /Partitions moving: \d+/);
  const shown = JSON.parse((await cli('plan', '--json')).out) as { report: PlanReport; status: PlanStatus };
  t.same(shown.report.refusals, [], 'the join is safe');
  t.ok(shown.report.partitionsMoving > 0, `${shown.report.partitionsMoving} partitions move`);
  const joinPlan = shown.report;

  const committed = await cli('commit');
  t.equal(committed.code, 0, committed.err);
  // Stage and commit a leave while the join is still streaming: it waits and is re-planned.
  const leaver = cluster.nodes[1]!;
  t.equal((await cli('plan', 'leave', leaver.id)).code, 0);
  const leaveShown = JSON.parse((await cli('plan', '--json')).out) as { report: PlanReport };
  const secondDone = cli('commit', '--wait');
  await until('the second plan is committed', async () => (JSON.parse((await cli('plan', '--json')).out) as { status: PlanStatus }).status.plans.length === 2);
  const early = (JSON.parse((await cli('plan', '--json')).out) as { status: PlanStatus }).status.plans;
  t.equal(early.length, 2);
  t.equal(early[1]!.state, 'queued', 'the second plan waits while the first executes');

  let interleaved = false;
  await until('both plans complete', async () => {
    const plans = (JSON.parse((await cli('plan', '--json')).out) as { status: PlanStatus }).status.plans;
    if (plans[1]!.state === 'executing' && plans[1]!.step !== undefined) {
      const s = await cluster.status(0);
      if (s.members.find((m) => m.id === waiting.id)?.status !== 'normal') interleaved = true;
    }
    return plans.every((p) => p.state === 'done' || p.state === 'failed');
  }, 240_000);
  t.notOk(interleaved, 'the leave started only once the join had completed');
  const second = await secondDone;
  t.equal(second.code, 0, second.err);
  t.match(second.out, /committed: leave \S+;[\s\S]*plan done; ring [0-9a-f]{12}/);
  const plans = (JSON.parse((await cli('plan', '--json')).out) as { status: PlanStatus }).status.plans;
  t.same(plans.map((p) => p.state), ['done', 'done'], JSON.stringify(plans));
  t.equal(plans[0]!.plannedVersion, joinPlan.plannedVersion);
  t.not(plans[1]!.finalPlannedVersion, leaveShown.report.plannedVersion, 'the leave was re-planned against the ring after the join');

  await until('node 1 has left', async () => (await cluster.status(0)).members.find((m) => m.id === leaver.id)?.status === 'left', 60_000);
  const final = await cluster.status(0);
  const ring = ringOf(final);
  t.equal(plans[1]!.resultVersion, ring.version, 'the ring that resulted is the one the executor recorded');
  t.equal(plans[1]!.finalPlannedVersion, ring.version, 'the re-planned leave showed exactly the ring that resulted');
  for (const m of final.members.filter((x) => x.status === 'normal')) {
    t.equal(m.partitions, ring.partitionsOf(m.id).length, `${m.id} owns what the ring code says`);
  }

  // The join alone: what `plan` showed equals the ring of its members (node 1 back in as normal).
  const joinRing = computeRing(
    final.members.filter((m) => m.status !== 'left' || m.id === leaver.id).map((m) => ({ id: m.id, weight: m.weight, dc: m.dc, rack: m.rack, status: 'normal' as const })),
    { partitionBits, replication },
  );
  t.equal(joinPlan.plannedVersion, joinRing.version, 'the join plan showed the ring of the four members');
  for (const row of joinPlan.nodes) t.equal(row.primaryAfter, joinRing.partitionsOf(row.id).length, `plan row of ${row.id} matches the ring`);

  const dc2 = cluster.nodes[2]!;
  t.equal((await cli('plan', 'leave', dc2.address)).code, 0);
  const refusedShow = await cli('plan');
  t.match(refusedShow.out, /REFUSED: datacenter dc2 would lose every copy of partition/);
  const refused = await cli('commit');
  t.equal(refused.code, 1, 'the commit is refused');
  t.match(refused.err, /KV_PLAN_REFUSED.*dc2 would lose every copy/);
  t.equal((await cluster.status(2)).members.find((m) => m.id === dc2.id)?.status, 'normal', 'nothing changed');
  t.equal((await cli('plan', 'clear')).code, 0);
  t.match((await cli('plan')).out, /No changes staged/);
  const metrics = await (await fetch(`http://${cluster.nodes[0]!.address}/metrics`)).text();
  t.match(metrics, /ringkv_plan_commits_total 2/);
  t.match(metrics, /ringkv_plan_refused_total 1/);
});
