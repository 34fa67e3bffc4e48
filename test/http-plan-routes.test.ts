/**
 * The plan and autoscale HTTP routes (lib/http/plan-routes.ts) over a fake scaling part:
 * methods, the token, argument errors (400), refusals (409), the missing autoscaler (404), and
 * the Prometheus lines; plus startNode's scaling options checks (lib/server/scaling-options.ts).
 */

import t from 'tap';
import type { IncomingMessage } from 'node:http';
import { ErrorCode, RingkvError } from '../lib/base/errors.js';
import { planRoute, scalingMetricsText, type PlanActions } from '../lib/http/plan-routes.js';
import { scalingOptionsOf } from '../lib/server/scaling-options.js';
import type { ScalingStatus } from '../lib/supervisor/scaling/scaling.js';

function call(method: string, path: string, actions: PlanActions, authorized = true): { code: number; body: unknown } {
  let out = { code: 0, body: undefined as unknown };
  planRoute({ method } as IncomingMessage, new URL(path, 'http://node'), actions, authorized, (code, body) => (out = { code, body }));
  return out;
}

const actions: PlanActions = {
  stage: (type, node, replacement) => {
    if (node === 'ghost') throw new RangeError('node: no member "ghost"');
    return { staged: [type, node, replacement] };
  },
  show: () => ({ report: 'r' }),
  commit: () => {
    throw new RingkvError(ErrorCode.planRefused, 'plan refused: dc2 would lose every copy');
  },
  clear: () => ({ staged: [] }),
  autoscaleStatus: () => undefined,
};

t.test('routes: methods, token, errors', async (t) => {
  t.same(call('GET', '/plan', actions), { code: 200, body: { report: 'r' } });
  t.same(call('POST', '/plan/join?node=a:1', actions), { code: 200, body: { staged: ['join', 'a:1', undefined] } });
  t.same(call('POST', '/plan/leave?node=n1', actions).body, { staged: ['leave', 'n1', undefined] });
  t.same(call('POST', '/plan/replace?dead=n1&new=b:2', actions).body, { staged: ['replace', 'n1', 'b:2'] });
  t.same(call('POST', '/plan/clear', actions).body, { staged: [] });
  t.same(call('POST', '/plan/join', actions), { code: 400, body: { error: 'KV_BAD_REQUEST', message: 'node is required' } });
  t.equal(call('POST', '/plan/join?node=ghost', actions).code, 400);
  t.same(call('POST', '/commit', actions), { code: 409, body: { error: 'KV_PLAN_REFUSED', message: 'plan refused: dc2 would lose every copy' } });
  t.equal(call('POST', '/plan/join?node=a:1', actions, false).code, 401, 'POSTs need the token');
  t.equal(call('GET', '/plan', actions, false).code, 200, 'GET /plan does not');
  t.equal(call('POST', '/plan', actions).code, 405);
  t.equal(call('PUT', '/commit', actions).code, 405);
  t.equal(call('GET', '/commit', actions).code, 405);
  t.equal(call('POST', '/plan/other', actions).code, 404);
  t.equal(call('GET', '/autoscale', actions).code, 404, 'no autoscaler: 404');
  t.same(call('GET', '/autoscale', { ...actions, autoscaleStatus: () => ({ leader: 'n1' }) }), { code: 200, body: { leader: 'n1' } });
  const broken = { ...actions, show: () => { throw new Error('bug'); } };
  t.throws(() => call('GET', '/plan', broken), /bug/, 'our bugs are not turned into 4xx');
});

t.test('metrics lines', async (t) => {
  t.equal(scalingMetricsText(undefined), '');
  const status = {
    held: false,
    plan: { staged: [], plans: [], commits: 3, refused: 1 },
    autoscale: { counts: { 'scale-out/pending': 2, 'scale-out/done': 1 }, isLeader: true, figures: { opsPerNode: 12.5 } },
  } as unknown as ScalingStatus;
  const text = scalingMetricsText(status);
  t.match(text, /^ringkv_plan_commits_total 3$/m);
  t.match(text, /^ringkv_plan_refused_total 1$/m);
  t.match(text, /^ringkv_autoscale_decisions_total\{action="scale-out",state="pending"\} 2$/m);
  t.match(text, /^ringkv_autoscale_leader 1$/m);
  t.match(text, /^ringkv_autoscale_ops_per_node 12.5$/m);
});

t.test('startNode scaling options are checked', async (t) => {
  t.same(scalingOptionsOf({}, '/d/n0'), {});
  t.same(scalingOptionsOf({ stagedJoin: true, capacityBytes: 10, scaleReportIntervalMs: 100 }, '/d/n0'), { stagedJoin: true, capacityBytes: 10, reportIntervalMs: 100 });
  const full = scalingOptionsOf({ autoscale: { provisioner: 'local', minNodes: 2, maxNodes: 4, localArgs: ['--shards', '1'], localCommand: ['node', 'x.js'], evaluateIntervalMs: 200 } }, '/d/n0');
  t.same(full.autoscale?.local, { dir: '/d/autoscaled', command: ['node', 'x.js'], args: ['--shards', '1'] }, 'new nodes live next to this one');
  t.equal(full.autoscale?.evaluateIntervalMs, 200);
  t.same(full.autoscale?.policy, { minNodes: 2, maxNodes: 4 });
  t.throws(() => scalingOptionsOf({ stagedJoin: 'yes' as unknown as boolean }, '.'), /stagedJoin must be a boolean/);
  t.throws(() => scalingOptionsOf({ capacityBytes: -1 }, '.'), /capacityBytes/);
  t.throws(() => scalingOptionsOf({ scaleReportIntervalMs: 1 }, '.'), /scaleReportIntervalMs/);
  t.throws(() => scalingOptionsOf({ autoscale: 'local' as unknown as { provisioner: string } }, '.'), /autoscale must be an object/);
  t.throws(() => scalingOptionsOf({ autoscale: { provisioner: 'cloud' } }, '.'), /autoscale must be 'local'/);
  t.throws(() => scalingOptionsOf({ autoscale: { provisioner: 'local', minNodes: 5, maxNodes: 2 } }, '.'), /maxNodes/);
  t.throws(() => scalingOptionsOf({ autoscale: { provisioner: 'local', evaluateIntervalMs: 1 } }, '.'), /evaluateIntervalMs/);
  t.throws(() => scalingOptionsOf({ autoscale: { provisioner: 'local', localArgs: [1 as unknown as string] } }, '.'), /localArgs must be an array of strings/);
});
