/**
 * The plan and autoscale commands over a fake node (the HTTP seam of CliIo): `ringkv
 * autoscale prestop` decommissions only on a scale-in that removes this pod's ordinal, the
 * plan report's formatting, errors from the node. Real nodes: cluster-plan.test.ts.
 */

import t from 'tap';
import type { CliIo } from '../lib/cli/cli-io.js';
import { formatPlan, ordinalOf } from '../lib/cli/plan-commands.js';
import { devNodeArgs } from '../lib/cli/node-commands.js';
import { runCli } from '../lib/cli/program.js';
import type { StatusJson } from '../lib/supervisor/index.js';
import type { DecisionRecord } from '../lib/autoscale/index.js';

function fakeNode(decision: DecisionRecord | undefined, leaveAfterPolls = 2): { io: CliIo; calls: string[]; out: () => string } {
  const calls: string[] = [];
  let out = '';
  let polls = 0;
  let committed = false;
  const status = (): StatusJson =>
    ({
      node: 'ringkv-3',
      members: [{ id: 'ringkv-3', status: committed && polls > leaveAfterPolls ? 'left' : 'normal' }],
      scaling: { held: false, plan: { staged: [], plans: [], commits: 0, refused: 0 }, ...(decision ? { autoscale: { lastDecision: decision } } : {}) },
    }) as unknown as StatusJson;
  const io = {
    out: (text: string) => void (out += text),
    err: (text: string) => void (out += text),
    env: { HOSTNAME: 'ringkv-3' },
    fetchStatus: async () => {
      if (committed) polls++;
      return status();
    },
    httpJson: async (method: string, url: string) => {
      calls.push(`${method} ${new URL(url).pathname}${new URL(url).search}`);
      if (url.endsWith('/commit')) {
        committed = true;
        return { status: 202, body: {} };
      }
      return { status: 200, body: {} };
    },
    sleep: async () => undefined,
  } as unknown as CliIo;
  return { io, calls, out: () => out };
}

const scaleIn: DecisionRecord = { seq: 5, leader: 'ringkv-0', action: 'scale-in', fromNodes: 4, targetNodes: 3, atMs: 1, state: 'pending', reason: 'low' };

t.test('autoscale prestop decommissions only the pod a scale-in removes', async (t) => {
  const removed = fakeNode(scaleIn);
  t.equal(await runCli(['autoscale', 'prestop'], removed.io), 0);
  t.same(removed.calls, ['POST /plan/leave?node=ringkv-3', 'POST /commit'], 'through the plan path');
  t.match(removed.out(), /scale-in to 3 nodes removes this pod \(ordinal 3\)[\s\S]*ringkv-3 left the cluster/);

  for (const [what, decision, args] of [
    ['a restart (no decision)', undefined, []],
    ['a scale-out', { ...scaleIn, action: 'scale-out', targetNodes: 5 }, []],
    ['a resolved scale-in', { ...scaleIn, state: 'done' }, []],
    ['a scale-in that keeps this ordinal', { ...scaleIn, targetNodes: 4 }, ['--ordinal', '3']],
    ['a scale-in with a named victim', { ...scaleIn, victim: 'ringkv-1' }, []],
  ] as const) {
    const node = fakeNode(decision as DecisionRecord | undefined);
    t.equal(await runCli(['autoscale', 'prestop', ...args], node.io), 0, what);
    t.same(node.calls, [], `${what}: nothing posted`);
    t.match(node.out(), /keeping its place/);
  }
  t.equal(ordinalOf('ringkv-12'), 12);
  t.equal(ordinalOf('web'), undefined);
  t.equal(ordinalOf(undefined), undefined);
});

t.test('plan commands print the node\'s refusals and errors', async (t) => {
  let out = '';
  const io = {
    out: (text: string) => void (out += text),
    err: (text: string) => void (out += text),
    env: {},
    httpJson: async (_method: string, url: string) =>
      url.endsWith('/commit') ? { status: 409, body: { error: 'KV_PLAN_REFUSED', message: 'plan refused: dc2 would lose every copy' } }
      : url.includes('/autoscale') ? { status: 404, body: { error: 'not found', message: 'this node runs no autoscaler' } }
      : { status: 400, body: { error: 'KV_BAD_REQUEST', message: 'node: no member "x"' } },
    sleep: async () => undefined,
  } as unknown as CliIo;
  t.equal(await runCli(['commit'], io), 1);
  t.match(out, /error KV_PLAN_REFUSED: plan refused: dc2 would lose every copy/);
  t.equal(await runCli(['plan', 'join', 'x:1'], io), 1);
  t.match(out, /error KV_BAD_REQUEST: node: no member "x"/);
  t.equal(await runCli(['autoscale', 'status'], io), 1);
  t.match(out, /this node runs no autoscaler/);
  const noHttp = { ...io, httpJson: undefined } as unknown as CliIo;
  t.equal(await runCli(['plan'], noHttp), 1);
  const empty = formatPlan({ changes: [], currentVersion: 'a', plannedVersion: 'a', partitionCount: 64, partitionsMoving: 0, copiesToStream: 0, nodes: [], warnings: ['n2 is down'], refusals: [] });
  t.match(empty, /No changes staged[\s\S]*WARNING: n2 is down/);
});

t.test('dev-cluster --autoscale local gives every node the autoscaler, min = --nodes', async (t) => {
  const args = devNodeArgs({ nodes: 3, basePort: 7070, dir: 'd', autoscale: 'local' }, 1);
  t.same(args.slice(-6), ['--autoscale', 'local', '--min-nodes', '3', '--max-nodes', '5']);
  t.notOk(devNodeArgs({ nodes: 3, basePort: 7070, dir: 'd' }, 1).includes('--autoscale'));
});
