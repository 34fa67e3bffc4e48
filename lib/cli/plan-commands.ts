/**
 * `ringkv plan [join <host:port> | leave <node> | replace <dead> <new> | clear]`, `ringkv
 * commit [--wait]` and `ringkv autoscale status`: staged membership plans (Riak's `cluster
 * plan` / `cluster commit`) and the autoscaler's state, over the node's /plan, /commit and
 * /autoscale routes (lib/http/plan-routes.ts). Pure formatting plus HTTP; owner: the CLI's
 * main thread.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { PlanChange, PlanReport } from '../plan/index.js';
import type { AutoscaleStatus } from '../supervisor/scaling/autoscaler.js';
import type { ExecutedPlan, PlanStatus } from '../supervisor/scaling/plan-service.js';
import { type CliIo, exitError, exitOk, formatBytes, statusUrlOf } from './cli-io.js';
import type { ConnectionFlags } from './kv-commands.js';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]! + 2))).join('').trimEnd()).join('\n');
}

export function changeText(c: PlanChange): string {
  return c.type === 'replace' ? `replace ${c.dead} with ${c.id}` : `${c.type} ${c.id}`;
}

/** `ringkv plan`: the staged changes, the ring they lead to against today's, warnings and refusals. */
export function formatPlan(report: PlanReport, status?: PlanStatus): string {
  const lines: string[] = [];
  if (report.changes.length === 0) lines.push('No changes staged (ringkv plan join <host:port> | leave <node> | replace <dead> <new>).');
  else {
    lines.push('Staged changes:');
    for (const c of report.changes) lines.push(`  ${changeText(c)}`);
    lines.push('', `Ring: ${report.partitionCount} partitions; today ${report.currentVersion.slice(0, 12)}, after the plan ${report.plannedVersion.slice(0, 12)}`);
    lines.push(`Partitions moving: ${report.partitionsMoving}; replica copies to stream: ${report.copiesToStream}`, '');
    const rows = [['Node', 'Address', 'Now', 'After', 'Primary', 'Owns now', 'Owns after', 'Stream in', 'Stream out']];
    for (const n of report.nodes) {
      rows.push([n.id, n.address, n.now, n.after, `${n.primaryNow} -> ${n.primaryAfter}`, `${n.ownsNowPercent.toFixed(1)}%`, `${n.ownsAfterPercent.toFixed(1)}%`, formatBytes(n.bytesIn), formatBytes(n.bytesOut)]);
    }
    lines.push(table(rows));
  }
  for (const w of report.warnings) lines.push(`WARNING: ${w}`);
  for (const r of report.refusals) lines.push(`REFUSED: ${r}`);
  if (report.changes.length > 0) lines.push(report.refusals.length > 0 ? 'ringkv commit would be refused.' : 'Run ringkv commit to apply, ringkv plan clear to drop.');
  for (const p of status?.plans ?? []) lines.push(planLine(p));
  return `${lines.join('\n')}\n`;
}

function planLine(p: ExecutedPlan): string {
  const what = p.changes.map(changeText).join(', ');
  const extra = p.step ? ` (step: ${p.step})` : '';
  return `Committed ${new Date(p.committedAtMs).toISOString()}: ${what}: ${p.state}${extra}${p.reason ? ` - ${p.reason}` : ''}`;
}

function base(conn: ConnectionFlags): string {
  return statusUrlOf(conn.url).replace(/\/status$/, '');
}

async function request(io: CliIo, conn: ConnectionFlags, method: 'GET' | 'POST', path: string): Promise<{ status: number; body: unknown }> {
  if (io.httpJson === undefined) throw new RingkvError(ErrorCode.badRequest, 'this CLI cannot make plan requests', {});
  return io.httpJson(method, `${base(conn)}${path}`, {
    ...(conn.token !== undefined ? { token: conn.token } : {}),
    ...(conn.caFile !== undefined ? { caFile: conn.caFile } : {}),
    timeoutMs: conn.timeoutMs ?? limits.clientRequestTimeoutMs,
  });
}

function failure(io: CliIo, reply: { status: number; body: unknown }): number {
  const body = reply.body as { error?: string; message?: string };
  io.err(`error ${body.error ?? `HTTP ${reply.status}`}: ${body.message ?? JSON.stringify(reply.body)}\n`);
  return exitError;
}

export type PlanAction = { type: 'show' } | { type: 'clear' } | { type: 'join' | 'leave'; node: string } | { type: 'replace'; dead: string; node: string };

export async function planCommand(io: CliIo, conn: ConnectionFlags, action: PlanAction, json: boolean): Promise<number> {
  const q = encodeURIComponent;
  const path =
    action.type === 'show' ? '/plan'
    : action.type === 'clear' ? '/plan/clear'
    : action.type === 'replace' ? `/plan/replace?dead=${q(action.dead)}&new=${q(action.node)}`
    : `/plan/${action.type}?node=${q(action.node)}`;
  const reply = await request(io, conn, action.type === 'show' ? 'GET' : 'POST', path);
  if (reply.status !== 200) return failure(io, reply);
  if (json) io.out(`${JSON.stringify(reply.body, null, 2)}\n`);
  else if (action.type === 'clear') io.out('staged plan cleared\n');
  else if (action.type === 'show') {
    const { report, status } = reply.body as { report: PlanReport; status: PlanStatus };
    io.out(formatPlan(report, status));
  } else io.out(formatPlan(reply.body as PlanReport));
  return exitOk;
}

/** `ringkv commit [--wait]`: applies the staged plan; with --wait, polls until it is done or failed. */
export async function commitCommand(io: CliIo, conn: ConnectionFlags, wait: boolean): Promise<number> {
  const reply = await request(io, conn, 'POST', '/commit');
  if (reply.status !== 202) return failure(io, reply);
  const { report, plan } = reply.body as { report: PlanReport; plan: ExecutedPlan };
  io.out(`committed: ${report.changes.map(changeText).join(', ')}; ${report.partitionsMoving} partitions move (ring ${report.plannedVersion.slice(0, 12)})\n`);
  if (!wait) return exitOk;
  for (;;) {
    await io.sleep(500);
    const shown = await request(io, conn, 'GET', '/plan').catch(() => undefined);
    if (shown === undefined || shown.status !== 200) continue; // the node may be the one leaving
    const mine = (shown.body as { status: PlanStatus }).status.plans.find((p) => p.committedAtMs === plan.committedAtMs && p.plannedVersion === plan.plannedVersion);
    if (mine === undefined) continue;
    io.err(`\r${mine.state}${mine.step ? `: ${mine.step}` : ''}${mine.reason ? ` (${mine.reason})` : ''}`.slice(0, 160).padEnd(80));
    if (mine.state === 'done' || mine.state === 'failed') {
      io.err('\n');
      io.out(`plan ${mine.state}${mine.reason ? `: ${mine.reason}` : ''}; ring ${(mine.resultVersion ?? '').slice(0, 12)}\n`);
      return mine.state === 'done' ? exitOk : exitError;
    }
  }
}

export function formatAutoscale(s: AutoscaleStatus): string {
  const c = s.config;
  const lines = [
    `Autoscaler (${s.provisioner}): ${s.isLeader ? 'this node leads' : `leader ${s.leader ?? 'none'}`}`,
    `  nodes ${c.minNodes}..${c.maxNodes}, target ${c.targetOpsPerNode} ops/s per node (out above x${c.scaleOutAbove} for ${c.scaleOutWindowMs / 1000} s, in below x${c.scaleInBelow} for ${c.scaleInWindowMs / 1000} s), cooldown ${c.cooldownMs / 1000} s`,
    `  now: ${s.reason}`,
  ];
  if (s.figures) {
    const f = s.figures;
    lines.push(`  load: ${f.nodes} nodes, ${f.opsPerSecond.toFixed(1)} ops/s (${f.opsPerNode.toFixed(1)} per node), event loop max ${f.eluMax.toFixed(2)}, p99 max ${f.p99MsMax.toFixed(1)} ms`);
  }
  const d = s.lastDecision;
  if (d) lines.push(`  last decision #${d.seq} by ${d.leader} at ${new Date(d.atMs).toISOString()}: ${d.action} ${d.fromNodes} -> ${d.targetNodes}${d.victim ? ` (decommission ${d.victim})` : ''}: ${d.state}; ${d.reason}${d.detail ? `; ${d.detail}` : ''}`);
  for (const n of s.provisioned) lines.push(`  provisioned here: ${n.id ?? '(starting)'} pid ${n.pid ?? '?'} ${n.dir ?? ''}`);
  return `${lines.join('\n')}\n`;
}

export async function autoscaleStatusCommand(io: CliIo, conn: ConnectionFlags, json: boolean): Promise<number> {
  const reply = await request(io, conn, 'GET', '/autoscale');
  if (reply.status !== 200) return failure(io, reply);
  io.out(json ? `${JSON.stringify(reply.body, null, 2)}\n` : formatAutoscale(reply.body as AutoscaleStatus));
  return exitOk;
}

/** The StatefulSet ordinal of a pod name (`ringkv-3` → 3), or undefined. */
export function ordinalOf(name: string | undefined): number | undefined {
  const match = /-(\d+)$/.exec(name ?? '');
  return match ? Number(match[1]) : undefined;
}

/**
 * `ringkv autoscale prestop` (a Kubernetes preStop hook): decommissions the local node only
 * when the cluster's last autoscaling decision is a scale-in left to the platform (no victim
 * named) down to fewer nodes than this pod's ordinal + 1, the pod a StatefulSet scale-down
 * removes. Any other stop (a rolling restart, an eviction, a node drain) keeps the node's
 * place and data. The decommission goes through a plan (`plan leave` + `commit`); the hook
 * returns once the node has left (its process then exits).
 */
export async function prestopCommand(io: CliIo, conn: ConnectionFlags, ordinal: number | undefined): Promise<number> {
  const own = ordinal ?? ordinalOf(io.env.HOSTNAME ?? io.env.POD_NAME);
  const status = await io.fetchStatus(statusUrlOf(conn.url), { ...(conn.token !== undefined ? { token: conn.token } : {}), timeoutMs: conn.timeoutMs ?? limits.clientRequestTimeoutMs });
  const d = status.scaling?.autoscale?.lastDecision;
  const scaleIn = d !== undefined && d.action === 'scale-in' && d.state === 'pending' && d.victim === undefined;
  if (own === undefined || !scaleIn || own < d.targetNodes) {
    io.out(`not a scale-in of this pod (ordinal ${own ?? '?'}; last decision ${d ? `#${d.seq} ${d.action} to ${d.targetNodes} ${d.state}` : 'none'}): keeping its place\n`);
    return exitOk;
  }
  io.out(`scale-in to ${d.targetNodes} nodes removes this pod (ordinal ${own}): decommissioning ${status.node}\n`);
  const staged = await request(io, conn, 'POST', `/plan/leave?node=${encodeURIComponent(status.node)}`);
  if (staged.status !== 200) return failure(io, staged);
  const committed = await request(io, conn, 'POST', '/commit');
  if (committed.status !== 202) return failure(io, committed);
  for (;;) {
    await io.sleep(1_000);
    const now = await io.fetchStatus(statusUrlOf(conn.url), { timeoutMs: 5_000, ...(conn.token !== undefined ? { token: conn.token } : {}) }).catch(() => undefined);
    if (now === undefined || now.members.find((m) => m.id === status.node)?.status === 'left') break;
  }
  io.out(`${status.node} left the cluster\n`);
  return exitOk;
}
