/**
 * The staged-plan and autoscaler routes (lib/supervisor/scaling): GET /plan (the staged plan's
 * report against today's ring, and the committed plans), POST /plan/join?node=<host:port|id>,
 * POST /plan/leave?node=..., POST /plan/replace?dead=...&new=..., POST /plan/clear, POST
 * /commit (409 KV_PLAN_REFUSED with the reasons when unsafe), GET /autoscale (the autoscaler's
 * status; 404 without --autoscale). POSTs need the client token when the node has one.
 * Also the Prometheus lines of the same figures, appended to GET /metrics. Owned by the main
 * thread; errors become JSON bodies (400 for a bad argument, 409 for a refusal).
 */

import type { IncomingMessage } from 'node:http';
import { isRingkvError } from '../base/errors.js';
import type { ScalingStatus } from '../supervisor/scaling/scaling.js';

/** What the routes need of the node's scaling part (lib/supervisor/scaling/scaling.ts). */
export interface PlanActions {
  stage(type: 'join' | 'leave' | 'replace', node: string, replacement?: string): unknown;
  show(): unknown;
  commit(): unknown;
  clear(): unknown;
  autoscaleStatus(): unknown;
}

export function isPlanPath(path: string): boolean {
  return path === '/plan' || path.startsWith('/plan/') || path === '/commit' || path === '/autoscale';
}

type Send = (code: number, body: unknown) => void;

function post(url: URL, actions: PlanActions, send: Send): void {
  const q = (name: string): string => {
    const value = url.searchParams.get(name);
    if (value === null || value === '') throw new RangeError(`${name} is required`);
    return value;
  };
  switch (url.pathname) {
    case '/plan/join':
      return send(200, actions.stage('join', q('node')));
    case '/plan/leave':
      return send(200, actions.stage('leave', q('node')));
    case '/plan/replace':
      return send(200, actions.stage('replace', q('dead'), q('new')));
    case '/plan/clear':
      return send(200, actions.clear());
    case '/commit':
      return send(202, actions.commit());
    default:
      return send(404, { error: 'not found', path: url.pathname });
  }
}

/** Serves one plan/autoscale request; `authorized` is whether a POST carried the token (when one is required). */
export function planRoute(request: IncomingMessage, url: URL, actions: PlanActions, authorized: boolean, send: Send): void {
  try {
    if (request.method === 'GET' || request.method === 'HEAD') {
      if (url.pathname === '/plan') return send(200, actions.show());
      if (url.pathname === '/autoscale') {
        const status = actions.autoscaleStatus();
        return status === undefined ? send(404, { error: 'not found', message: 'this node runs no autoscaler (start it with --autoscale)' }) : send(200, status);
      }
      return send(405, { error: 'method not allowed' });
    }
    if (request.method !== 'POST' || url.pathname === '/autoscale' || url.pathname === '/plan') return send(405, { error: 'method not allowed' });
    if (!authorized) return send(401, { error: 'KV_AUTH', message: 'a client token is required' });
    post(url, actions, send);
  } catch (error) {
    if (error instanceof RangeError || error instanceof TypeError) send(400, { error: 'KV_BAD_REQUEST', message: error.message });
    else if (isRingkvError(error)) send(409, { error: error.code, message: error.message });
    else throw error;
  }
}

const counter = (name: string, help: string): string[] => [`# HELP ${name} ${help}`, `# TYPE ${name} counter`];

/** Prometheus text for the plan and autoscaler figures of this node. */
export function scalingMetricsText(scaling: ScalingStatus | undefined): string {
  if (scaling === undefined) return '';
  const lines = [...counter('ringkv_plan_commits_total', 'Staged plans committed on this node.'), `ringkv_plan_commits_total ${scaling.plan.commits}`];
  lines.push(...counter('ringkv_plan_refused_total', 'Plan commits refused as unsafe.'), `ringkv_plan_refused_total ${scaling.plan.refused}`);
  const a = scaling.autoscale;
  if (a !== undefined) {
    lines.push(...counter('ringkv_autoscale_decisions_total', 'Autoscaling decisions this node recorded, by action and state.'));
    for (const [key, count] of Object.entries(a.counts)) {
      const [action, state] = key.split('/');
      lines.push(`ringkv_autoscale_decisions_total{action="${action}",state="${state}"} ${count}`);
    }
    lines.push('# HELP ringkv_autoscale_leader Whether this node leads the autoscaler.', '# TYPE ringkv_autoscale_leader gauge', `ringkv_autoscale_leader ${a.isLeader ? 1 : 0}`);
    if (a.figures) {
      lines.push('# HELP ringkv_autoscale_ops_per_node Mean client ops/s per normal node, as the autoscaler sees it.', '# TYPE ringkv_autoscale_ops_per_node gauge', `ringkv_autoscale_ops_per_node ${a.figures.opsPerNode}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
