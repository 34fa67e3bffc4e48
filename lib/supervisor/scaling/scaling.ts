/**
 * The node's scaling part, wired by the supervisor as one piece: the load sampler and the load
 * gossip every node runs, the staged-plan service (`ringkv plan` / `commit`), the hold of a
 * node started with `--staged-join`, and, with `autoscale`, the autoscaler and its
 * provisioner. Serves the `scale-*` and `plan-*` peer rpcs. Owned by the supervisor (main
 * thread).
 */

import type { Clock } from '../../base/clock.js';
import { ErrorCode, isRingkvError, RingkvError } from '../../base/errors.js';
import { limits } from '../../base/limits.js';
import type { Logger } from '../../base/log.js';
import type { Rng } from '../../base/rng.js';
import { validatePolicyConfig, type PolicyConfig, type PolicyMember } from '../../autoscale/index.js';
import type { MemberState } from '../../membership/index.js';
import type { PlanChange, PlanMember, PlanReport } from '../../plan/index.js';
import type { Replication } from '../../ring/index.js';
import type { RequestObserver } from '../client-service.js';
import { Autoscaler, type AutoscaleStatus } from './autoscaler.js';
import { LoadSampler } from './load-sampler.js';
import { PlanService, type ExecutedPlan, type PlanStatus } from './plan-service.js';
import { createProvisioner, type ProvisionerContext } from './provisioner.js';
import { ScaleGossip } from './scale-gossip.js';

export interface AutoscaleOptions {
  /** `local` or `command:<program>`. */
  readonly provisioner: string;
  readonly policy?: Partial<PolicyConfig>;
  /** For `local`: where new nodes keep their data and which flags they start with. */
  readonly local?: ProvisionerContext['local'];
  readonly evaluateIntervalMs?: number;
}

export interface ScalingOptions {
  readonly selfId: string;
  readonly address: string;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly logger: Logger;
  readonly partitionBits: number;
  readonly replication: Replication;
  readonly members: () => readonly MemberState[];
  readonly isUp: (id: string) => boolean;
  readonly call: (nodeId: string, body: object, timeoutMs: number) => Promise<unknown>;
  readonly leaveSelf: () => void;
  readonly removeNode: (id: string) => Promise<unknown>;
  /** Partitions this node is moving or catching up (0 when idle). */
  readonly transfers: () => number;
  readonly bytesStored: () => number;
  readonly capacityBytes?: number;
  /** Started with --staged-join: wait for a committed plan before joining. */
  readonly stagedJoin?: boolean;
  readonly autoscale?: AutoscaleOptions;
  readonly reportIntervalMs?: number;
}

export interface ScalingStatus {
  /** This node waits for a committed plan to join. */
  readonly held: boolean;
  readonly plan: PlanStatus;
  readonly autoscale?: AutoscaleStatus;
}

/** The policy config from defaults (limits) and the given overrides, checked. */
export function policyConfigOf(overrides: Partial<PolicyConfig> = {}): PolicyConfig {
  return validatePolicyConfig({
    minNodes: limits.autoscaleMinNodesDefault,
    maxNodes: limits.autoscaleMaxNodesDefault,
    targetOpsPerNode: limits.autoscaleTargetOpsPerNodeDefault,
    scaleOutAbove: limits.autoscaleScaleOutAboveDefault,
    scaleInBelow: limits.autoscaleScaleInBelowDefault,
    scaleOutWindowMs: limits.autoscaleScaleOutWindowMsDefault,
    scaleInWindowMs: limits.autoscaleScaleInWindowMsDefault,
    cooldownMs: limits.autoscaleCooldownMsDefault,
    decisionTimeoutMs: limits.autoscaleDecisionTimeoutMsDefault,
    eluHigh: limits.autoscaleEluHighDefault,
    capacityHigh: limits.autoscaleCapacityHighDefault,
    p99HighMs: 0,
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  });
}

export class Scaling {
  readonly #o: ScalingOptions;
  readonly sampler: LoadSampler;
  readonly #gossip: ScaleGossip;
  readonly plans: PlanService;
  readonly #autoscaler: Autoscaler | undefined;
  #held: boolean;

  constructor(options: ScalingOptions) {
    this.#o = options;
    this.#held = options.stagedJoin === true;
    this.sampler = new LoadSampler(options.rng, options.clock.monotonicMs());
    this.#gossip = new ScaleGossip({
      selfId: options.selfId,
      clock: options.clock,
      rng: options.rng,
      logger: options.logger,
      sampler: this.sampler,
      local: () => ({ bytesStored: options.bytesStored(), capacityBytes: options.capacityBytes ?? 0, transfers: options.transfers(), held: this.#held }),
      peers: () => options.members().filter((m) => m.id !== options.selfId && m.status !== 'left' && options.isUp(m.id)).map((m) => m.id),
      call: options.call,
      ...(options.reportIntervalMs ? { intervalMs: options.reportIntervalMs } : {}),
    });
    this.plans = new PlanService({
      selfId: options.selfId,
      partitionBits: options.partitionBits,
      replication: options.replication,
      clock: options.clock,
      logger: options.logger,
      members: () => this.planMembers(),
      unsettled: () => this.unsettled(),
      call: options.call,
      leaveSelf: options.leaveSelf,
      releaseSelf: () => this.#release(),
      removeNode: options.removeNode,
    });
    this.#autoscaler = options.autoscale === undefined ? undefined : this.#buildAutoscaler(options.autoscale);
  }

  #buildAutoscaler(autoscale: AutoscaleOptions): Autoscaler {
    const o = this.#o;
    const provisioner = createProvisioner(autoscale.provisioner, { logger: o.logger, address: o.address, ...(autoscale.local ? { local: autoscale.local } : {}) });
    return new Autoscaler({
      selfId: o.selfId,
      clock: o.clock,
      logger: o.logger,
      config: policyConfigOf(autoscale.policy),
      replication: o.replication,
      provisioner,
      gossip: this.#gossip,
      plans: this.plans,
      members: () => this.policyMembers(),
      addressOf: (id) => o.members().find((m) => m.id === id)?.address,
      ...(autoscale.evaluateIntervalMs ? { evaluateIntervalMs: autoscale.evaluateIntervalMs } : {}),
    });
  }

  get observer(): RequestObserver {
    return this.sampler;
  }

  /** Whether this node still waits for a committed plan before it joins. */
  holdsJoin(): boolean {
    return this.#held;
  }

  #release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#o.logger.info('a committed plan released this node: joining');
  }

  start(): void {
    this.#gossip.start();
    this.#gossip.tick();
    this.#autoscaler?.start();
  }

  async close(): Promise<void> {
    this.#gossip.close();
    this.plans.close();
    await this.#autoscaler?.close();
  }

  planMembers(): PlanMember[] {
    const reports = this.#gossip.fresh();
    return this.#o.members().map((m) => {
      const report = reports.get(m.id);
      const held = m.id === this.#o.selfId ? this.#held : report?.held;
      return { id: m.id, address: m.address, weight: m.weight, dc: m.dc, rack: m.rack, status: m.status, up: this.#o.isUp(m.id), ...(held !== undefined ? { held } : {}), ...(report ? { loadBytes: report.bytesStored } : {}) };
    });
  }

  policyMembers(): PolicyMember[] {
    const reports = this.#gossip.fresh();
    return this.#o.members().map((m) => ({ id: m.id, dc: m.dc, status: m.status, up: this.#o.isUp(m.id), ...(reports.has(m.id) ? { report: reports.get(m.id)! } : {}) }));
  }

  /** Why the cluster is not settled for the next plan step, or undefined. */
  unsettled(): string | undefined {
    const reports = this.#gossip.fresh();
    for (const m of this.planMembers()) {
      if (m.status === 'left') continue;
      if (!m.up) return `${m.id} is down`;
      if (m.status === 'leaving' || m.status === 'replacing' || (m.status === 'joining' && !m.held)) return `${m.id} is ${m.status}`;
      const report = reports.get(m.id);
      if (m.status === 'normal' && report === undefined) return `no load report from ${m.id} yet`;
      if (report !== undefined && report.transfers > 0) return `${m.id} is moving ${report.transfers} partition(s)`;
    }
    return undefined;
  }

  /** Serves `scale-gossip`, `plan-release` and `plan-leave` from the authenticated peer `from`. */
  async serve(from: string, body: unknown): Promise<unknown> {
    const t = (body as { t?: unknown }).t;
    try {
      switch (t) {
        case 'scale-gossip':
          return this.#gossip.serve(body);
        case 'plan-release':
          if (!this.#held) throw new RingkvError(ErrorCode.unavailable, 'this node is not waiting for a plan', {});
          this.#o.logger.info({ by: from }, 'plan step: join');
          this.#release();
          return { t: 'plan-ok' };
        case 'plan-leave':
          this.#o.logger.info({ by: from }, 'plan step: leave');
          this.#o.leaveSelf();
          return { t: 'plan-ok' };
      }
    } catch (error) {
      return { t: 'plan-error', code: isRingkvError(error) ? error.code : ErrorCode.badRequest, message: error instanceof Error ? error.message : String(error) };
    }
    return { t: 'plan-error', code: ErrorCode.badRequest, message: 'unknown scaling request' };
  }

  status(): ScalingStatus {
    return { held: this.#held, plan: this.plans.status(), ...(this.#autoscaler ? { autoscale: this.#autoscaler.status() } : {}) };
  }

  autoscaleStatus(): AutoscaleStatus | undefined {
    return this.#autoscaler?.status();
  }

  // --- the HTTP actions (lib/http/plan-routes.ts)

  stage(type: PlanChange['type'], node: string, replacement?: string): PlanReport {
    return this.plans.stage(type, node, replacement);
  }

  show(): { report: PlanReport; status: PlanStatus } {
    return { report: this.plans.show(), status: this.plans.status() };
  }

  commit(): { report: PlanReport; plan: ExecutedPlan } {
    return this.plans.commit();
  }

  clear(): PlanStatus {
    return this.plans.clear();
  }
}
