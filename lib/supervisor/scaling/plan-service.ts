/**
 * Staged membership plans on a node (Riak's claimant): `ringkv plan join|leave|replace`
 * stage changes here, `ringkv plan` shows their report (lib/plan), `ringkv commit` checks it
 * and queues it, `ringkv plan clear` drops the staged changes. Owned by the supervisor (main
 * thread); every wait is a timer or an rpc.
 *
 * Execution, never interleaved: a committed plan runs as a sequence of steps, joins first
 * (capacity before anything leaves), then each replace (the dead node removed, then its
 * replacement joins), then leaves, one membership change at a time. Before each step the
 * executor waits until the cluster has settled (every member up and normal, or waiting for a
 * plan; no node moving partitions, by the gossiped load reports) and re-plans what is left of
 * the plan against the ring of that moment; if the re-plan is refused (a node went down
 * meanwhile, say) the plan stops there with the reason. A plan committed while another is
 * executing, or while a transfer from any other change is still streaming, waits its turn in
 * the queue and is re-planned the same way when it starts, so two changes never stream at
 * once and every step's ring is computed from a settled one.
 *
 * Steps act through the existing paths: a join releases a node started with `--staged-join`
 * (`plan-release` rpc; it then streams its partitions as any joining node does), a leave asks
 * the node to decommission (`plan-leave`; it streams out and exits), a removal is `removenode`.
 * The staged changes and the queue live in this node's memory: a plan committed on a node that
 * dies stops with it (the step in progress completes by itself).
 */

import { ErrorCode, RingkvError } from '../../base/errors.js';
import type { Clock } from '../../base/clock.js';
import { limits } from '../../base/limits.js';
import type { Logger } from '../../base/log.js';
import { computePlan, currentRingOf, type PlanChange, type PlanMember, type PlanReport } from '../../plan/index.js';
import type { Replication } from '../../ring/index.js';

export interface PlanServiceOptions {
  readonly selfId: string;
  readonly partitionBits: number;
  readonly replication: Replication;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Every member with liveness, hold and load. */
  readonly members: () => readonly PlanMember[];
  /** Why the cluster is not settled, or undefined when it is. */
  readonly unsettled: () => string | undefined;
  readonly call: (nodeId: string, body: object, timeoutMs: number) => Promise<unknown>;
  /** This node leaves (decommission). */
  readonly leaveSelf: () => void;
  /** This node's own hold is released (it was started with --staged-join). */
  readonly releaseSelf: () => void;
  readonly removeNode: (id: string) => Promise<unknown>;
  readonly pollMs?: number;
  readonly stepTimeoutMs?: number;
}

export interface ExecutedPlan {
  readonly changes: readonly PlanChange[];
  readonly committedAtMs: number;
  state: 'queued' | 'executing' | 'done' | 'failed';
  step?: string;
  /** The ring version the plan showed at commit and the version when it completed. */
  readonly plannedVersion: string;
  finalPlannedVersion?: string;
  resultVersion?: string;
  reason?: string;
  finishedAtMs?: number;
}

export interface PlanStatus {
  readonly staged: readonly PlanChange[];
  readonly plans: readonly ExecutedPlan[];
  readonly commits: number;
  readonly refused: number;
}

type Step = { readonly kind: 'join' | 'leave' | 'remove'; readonly id: string };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class PlanService {
  readonly #o: PlanServiceOptions;
  #staged: PlanChange[] = [];
  readonly #plans: ExecutedPlan[] = [];
  #running = false;
  #closed = false;
  #commits = 0;
  #refused = 0;

  constructor(options: PlanServiceOptions) {
    this.#o = options;
  }

  close(): void {
    this.#closed = true;
  }

  status(): PlanStatus {
    return { staged: [...this.#staged], plans: this.#plans.map((p) => ({ ...p })), commits: this.#commits, refused: this.#refused };
  }

  /** Resolves a node given by id or host:port among the members. */
  #resolve(node: string, field: string): string {
    const matches = this.#o.members().filter((x) => x.id === node || x.address === node || x.address.endsWith(`//${node}`));
    const m = matches.find((x) => x.status !== 'left') ?? matches[0];
    if (m === undefined) throw new RangeError(`${field}: no member ${JSON.stringify(node)} (a node to join must be running with --seeds <a member> --staged-join)`);
    return m.id;
  }

  /** Stages one change (join <node>, leave <node>, replace <dead> <new>); returns the report. */
  stage(type: PlanChange['type'], node: string, replacement?: string): PlanReport {
    if (this.#staged.length >= limits.planChangesMax) throw new RangeError(`a plan holds at most ${limits.planChangesMax} changes`);
    const id = this.#resolve(type === 'replace' ? (replacement ?? '') : node, type === 'replace' ? 'new' : 'node');
    const change: PlanChange = type === 'replace' ? { type, dead: this.#resolve(node, 'dead'), id } : { type, id };
    this.#staged.push(change);
    return this.show();
  }

  clear(): PlanStatus {
    this.#staged = [];
    return this.status();
  }

  /** The staged plan's report against the cluster as it is now. */
  show(changes: readonly PlanChange[] = this.#staged): PlanReport {
    return computePlan({ members: this.#o.members(), changes, partitionBits: this.#o.partitionBits, replication: this.#o.replication });
  }

  /** Commits the staged plan (or `changes`): refused with KV_PLAN_REFUSED when unsafe; else queued. */
  commit(changes: readonly PlanChange[] = this.#staged): { report: PlanReport; plan: ExecutedPlan } {
    if (changes.length === 0) throw new RingkvError(ErrorCode.planRefused, 'nothing staged: stage changes with plan join|leave|replace first', {});
    const report = this.show(changes);
    if (report.refusals.length > 0) {
      this.#refused++;
      throw new RingkvError(ErrorCode.planRefused, `plan refused: ${report.refusals.join('; ')}`, {});
    }
    if (this.#plans.filter((p) => p.state === 'queued').length >= limits.planQueueMax) throw new RingkvError(ErrorCode.overloaded, 'too many committed plans waiting', {});
    const plan: ExecutedPlan = { changes: [...changes], committedAtMs: this.#o.clock.wallMs(), state: 'queued', plannedVersion: report.plannedVersion };
    this.#commits++;
    this.#plans.push(plan);
    while (this.#plans.length > limits.planHistoryMax && this.#plans[0]!.state !== 'queued' && this.#plans[0]!.state !== 'executing') this.#plans.shift();
    if (changes === this.#staged) this.#staged = [];
    this.#o.logger.info({ changes: plan.changes, plannedVersion: plan.plannedVersion, moving: report.partitionsMoving }, 'plan committed');
    void this.#drain();
    return { report, plan };
  }

  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (let plan = this.#next(); plan !== undefined && !this.#closed; plan = this.#next()) await this.#execute(plan);
    } finally {
      this.#running = false;
    }
  }

  #next(): ExecutedPlan | undefined {
    return this.#plans.find((p) => p.state === 'queued');
  }

  async #execute(plan: ExecutedPlan): Promise<void> {
    plan.state = 'executing';
    const steps = stepsOf(plan.changes);
    try {
      for (let i = 0; i < steps.length; i++) {
        await this.#waitSettled(plan);
        const rest = remainingChanges(plan.changes, steps.slice(i));
        const replan = this.show(rest);
        if (replan.refusals.length > 0) throw new Error(`re-planned and refused: ${replan.refusals.join('; ')}`);
        plan.finalPlannedVersion = replan.plannedVersion;
        plan.step = `${steps[i]!.kind} ${steps[i]!.id}`;
        this.#o.logger.info({ step: plan.step, of: steps.length }, 'plan step');
        await this.#act(steps[i]!);
        await this.#waitStep(plan, steps[i]!);
      }
      await this.#waitSettled(plan);
      plan.resultVersion = currentRingOf({ members: this.#o.members(), partitionBits: this.#o.partitionBits, replication: this.#o.replication })?.version ?? '';
      plan.state = 'done';
      this.#o.logger.info({ changes: plan.changes, resultVersion: plan.resultVersion }, 'plan complete');
    } catch (error) {
      plan.state = 'failed';
      plan.reason = error instanceof Error ? error.message : String(error);
      this.#o.logger.warn({ changes: plan.changes, reason: plan.reason }, 'plan failed');
    }
    plan.step = undefined;
    plan.finishedAtMs = this.#o.clock.wallMs();
  }

  async #act(step: Step): Promise<void> {
    const o = this.#o;
    if (step.kind === 'remove') {
      await o.removeNode(step.id);
      return;
    }
    if (step.id === o.selfId) {
      if (step.kind === 'join') o.releaseSelf();
      else o.leaveSelf();
      return;
    }
    const reply = (await o.call(step.id, { t: step.kind === 'join' ? 'plan-release' : 'plan-leave' }, limits.handoffRequestTimeoutMs)) as { t?: unknown; message?: unknown } | undefined;
    if (reply?.t !== 'plan-ok') throw new Error(`${step.id} refused ${step.kind}: ${typeof reply?.message === 'string' ? reply.message : 'no answer'}`);
  }

  /** Waits until the step's effect is visible: the joiner normal, the leaver or removed node gone. */
  async #waitStep(plan: ExecutedPlan, step: Step): Promise<void> {
    const done = (): boolean => {
      const m = this.#o.members().find((x) => x.id === step.id);
      return step.kind === 'join' ? m?.status === 'normal' : m === undefined || m.status === 'left';
    };
    await this.#until(plan, done, `${step.kind} of ${step.id} to complete`);
  }

  async #waitSettled(plan: ExecutedPlan): Promise<void> {
    // Load reports trail by an interval: let them catch up with the last step first.
    await sleep(Math.max(this.#o.pollMs ?? limits.planPollMs, 2 * limits.scaleReportIntervalMs));
    await this.#until(plan, () => this.#o.unsettled() === undefined, 'the cluster to settle');
  }

  async #until(plan: ExecutedPlan, condition: () => boolean, what: string): Promise<void> {
    const deadline = this.#o.clock.monotonicMs() + (this.#o.stepTimeoutMs ?? limits.planStepTimeoutMs);
    while (!condition()) {
      if (this.#closed) throw new Error('node closing');
      if (this.#o.clock.monotonicMs() > deadline) throw new Error(`timed out waiting for ${what} (${this.#o.unsettled() ?? 'settled'})`);
      plan.reason = `waiting for ${what}: ${this.#o.unsettled() ?? 'in progress'}`;
      await sleep(this.#o.pollMs ?? limits.planPollMs);
    }
    plan.reason = undefined;
  }
}

/** Joins first, then each replace (remove, then join), then leaves. */
export function stepsOf(changes: readonly PlanChange[]): Step[] {
  const steps: Step[] = [];
  for (const c of changes) if (c.type === 'join') steps.push({ kind: 'join', id: c.id });
  for (const c of changes) if (c.type === 'replace') steps.push({ kind: 'remove', id: c.dead }, { kind: 'join', id: c.id });
  for (const c of changes) if (c.type === 'leave') steps.push({ kind: 'leave', id: c.id });
  return steps;
}

/** The changes still to apply when `steps` are left (a replace whose removal is done becomes a join). */
export function remainingChanges(changes: readonly PlanChange[], steps: readonly Step[]): PlanChange[] {
  const out: PlanChange[] = [];
  for (const c of changes) {
    if (c.type === 'replace') {
      if (steps.some((s) => s.kind === 'remove' && s.id === c.dead)) out.push(c);
      else if (steps.some((s) => s.kind === 'join' && s.id === c.id)) out.push({ type: 'join', id: c.id });
    } else if (steps.some((s) => s.kind === c.type && s.id === c.id)) out.push(c);
  }
  return out;
}
