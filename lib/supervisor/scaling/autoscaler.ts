/**
 * The autoscaler driver: runs the pure policy (lib/autoscale policy.ts) every
 * evaluateIntervalMs on every node with `--autoscale`; only the member the policy names
 * leader acts. A decision becomes a numbered record, gossiped (scale-gossip.ts) before
 * anything is done, then carried out: scale-out asks the provisioner for a node (which joins
 * through its seeds like any node); scale-in commits a plan that decommissions the victim
 * (plan-service.ts: streaming, no acknowledged write lost), waits for it to leave, then asks
 * the provisioner to release it. The policy resolves the record by what the cluster shows, or
 * fails it after decisionTimeoutMs; a provisioner or plan failure fails it at once.
 * Every decision and resolution is logged with its reason and figures, kept for `ringkv
 * autoscale status` and /status, and counted for /metrics. Owned by the supervisor (main
 * thread).
 */

import type { Clock } from '../../base/clock.js';
import { limits } from '../../base/limits.js';
import type { Logger } from '../../base/log.js';
import { evaluatePolicy, type DecisionRecord, type PolicyConfig, type PolicyMember, type PolicyResult, type PolicyState } from '../../autoscale/index.js';
import type { Replication } from '../../ring/index.js';
import type { PlanService } from './plan-service.js';
import type { ProvisionedNode, Provisioner } from './provisioner.js';
import type { ScaleGossip } from './scale-gossip.js';

export interface AutoscalerOptions {
  readonly selfId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: PolicyConfig;
  readonly replication: Replication;
  readonly provisioner: Provisioner;
  readonly gossip: ScaleGossip;
  readonly plans: PlanService;
  readonly members: () => readonly PolicyMember[];
  readonly addressOf: (id: string) => string | undefined;
  readonly evaluateIntervalMs?: number;
}

export interface AutoscaleStatus {
  readonly provisioner: string;
  readonly config: PolicyConfig;
  readonly leader: string | undefined;
  readonly isLeader: boolean;
  readonly reason: string;
  readonly figures?: PolicyResult['figures'];
  readonly lastDecision?: DecisionRecord;
  /** Decisions this node recorded, newest last (bounded). */
  readonly history: readonly DecisionRecord[];
  /** Decisions this node made or resolved, by `<action>/<state>`. */
  readonly counts: Readonly<Record<string, number>>;
  readonly provisioned: readonly ProvisionedNode[];
}

const historyMax = 32;

export class Autoscaler {
  readonly #o: AutoscalerOptions;
  #state: PolicyState = {};
  #last: PolicyResult | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #history: DecisionRecord[] = [];
  readonly #counts: Record<string, number> = {};
  /** The seq of a record whose action this node is carrying out. */
  #acting: number | undefined;

  constructor(options: AutoscalerOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.evaluate(), this.#o.evaluateIntervalMs ?? limits.autoscaleEvaluateIntervalMsDefault);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#o.provisioner.close();
  }

  /** One evaluation (the timer's; tests call it). */
  evaluate(): void {
    const o = this.#o;
    const result = evaluatePolicy(o.config, this.#state, { nowMs: o.clock.wallMs(), selfId: o.selfId, members: o.members(), replication: o.replication, ...(o.gossip.decision ? { lastDecision: o.gossip.decision } : {}) });
    this.#state = result.state;
    this.#last = result;
    if (result.resolved !== undefined && this.#acting !== result.resolved.seq) this.#record(result.resolved);
    if (result.decision === undefined) return;
    const d = result.decision;
    const record: DecisionRecord = {
      seq: (o.gossip.decision?.seq ?? 0) + 1,
      leader: o.selfId,
      action: d.action,
      fromNodes: d.fromNodes,
      targetNodes: d.targetNodes,
      ...(d.victim !== undefined ? { victim: d.victim } : {}),
      atMs: o.clock.wallMs(),
      state: 'pending',
      reason: d.reason,
    };
    this.#record(record);
    this.#acting = record.seq;
    void this.#carryOut(record).finally(() => {
      if (this.#acting === record.seq) this.#acting = undefined;
    });
  }

  #record(record: DecisionRecord): void {
    this.#o.gossip.setDecision(record);
    this.#history.push(record);
    if (this.#history.length > historyMax) this.#history.shift();
    const key = `${record.action}/${record.state}`;
    this.#counts[key] = (this.#counts[key] ?? 0) + 1;
    const log = record.state === 'failed' ? this.#o.logger.warn.bind(this.#o.logger) : this.#o.logger.info.bind(this.#o.logger);
    log({ seq: record.seq, action: record.action, from: record.fromNodes, target: record.targetNodes, victim: record.victim, state: record.state, reason: record.reason, detail: record.detail, figures: this.#last?.figures }, 'autoscale decision');
  }

  async #carryOut(record: DecisionRecord): Promise<void> {
    const o = this.#o;
    try {
      if (record.action === 'scale-out') {
        await o.provisioner.scaleOut(record.targetNodes);
        return; // the policy resolves it once the new node is normal
      }
      const victim = record.victim;
      if (victim === undefined) {
        // The platform picks the node and its shutdown hook decommissions it (`ringkv autoscale prestop`).
        await o.provisioner.release(undefined, record.targetNodes);
        return;
      }
      const address = o.addressOf(victim) ?? '';
      const { plan } = o.plans.commit([{ type: 'leave', id: victim }]);
      while (plan.state === 'queued' || plan.state === 'executing') await new Promise((r) => setTimeout(r, limits.planPollMs));
      if (plan.state === 'failed') throw new Error(`decommission plan failed: ${plan.reason ?? ''}`);
      await o.provisioner.release({ id: victim, address }, record.targetNodes);
    } catch (error) {
      const current = o.gossip.decision;
      if (current?.seq !== record.seq || current.state !== 'pending') return;
      this.#record({ ...record, state: 'failed', resolvedAtMs: o.clock.wallMs(), detail: error instanceof Error ? error.message.slice(0, 1000) : String(error) });
    }
  }

  status(): AutoscaleStatus {
    const last = this.#last;
    return {
      provisioner: this.#o.provisioner.name,
      config: this.#o.config,
      leader: last?.leader,
      isLeader: last?.leader === this.#o.selfId,
      reason: last?.reason ?? 'not evaluated yet',
      ...(last?.figures ? { figures: last.figures } : {}),
      ...(this.#o.gossip.decision ? { lastDecision: this.#o.gossip.decision } : {}),
      history: [...this.#history],
      counts: { ...this.#counts },
      provisioned: this.#o.provisioner.nodes(),
    };
  }
}
