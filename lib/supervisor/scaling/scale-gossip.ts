/**
 * Gossips load reports and the autoscaler's decision record between members (lib/autoscale
 * load-report.ts): every scaleReportIntervalMs this node samples its own load, then pushes
 * every report it knows and the decision record to scaleGossipFanout random up members
 * (`scale-gossip` rpc); each answers with what it knows (push-pull), so a report reaches the
 * whole cluster in O(log n) intervals and a new autoscaler leader finds the last decision.
 * Owned by the supervisor (main thread); every wait is an rpc or a timer.
 *
 * A report counts as fresh while the receiver saw a newer one of that node within
 * scaleReportStaleMs of its own monotonic clock.
 */

import type { Clock } from '../../base/clock.js';
import { limits } from '../../base/limits.js';
import type { Logger } from '../../base/log.js';
import type { Rng } from '../../base/rng.js';
import { isNewerReport, mergeDecision, parseDecision, parseLoadReport, type DecisionRecord, type LoadReport } from '../../autoscale/index.js';
import type { LoadSampler } from './load-sampler.js';

export interface ScaleGossipOptions {
  readonly selfId: string;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly logger: Logger;
  readonly sampler: LoadSampler;
  /** This node's other figures: bytes stored, capacity, partitions moving, held for a plan. */
  readonly local: () => { bytesStored: number; capacityBytes: number; transfers: number; held: boolean };
  /** Up members other than this node. */
  readonly peers: () => readonly string[];
  readonly call: (nodeId: string, body: object, timeoutMs: number) => Promise<unknown>;
  readonly intervalMs?: number;
  /** A new decision record arrived (logged and counted by the autoscaler). */
  readonly onDecision?: (record: DecisionRecord) => void;
}

interface Entry {
  report: LoadReport;
  seenMs: number;
}

export function isScaleMessage(body: unknown): boolean {
  const t = (body as { t?: unknown } | null)?.t;
  return typeof t === 'string' && (t.startsWith('scale-') || t.startsWith('plan-'));
}

export class ScaleGossip {
  readonly #o: ScaleGossipOptions;
  readonly #reports = new Map<string, Entry>();
  readonly #incarnation: number;
  #seq = 0;
  #decision: DecisionRecord | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ScaleGossipOptions) {
    this.#o = options;
    this.#incarnation = options.clock.wallMs();
  }

  start(): void {
    this.#timer ??= setInterval(() => this.tick(), this.#o.intervalMs ?? limits.scaleReportIntervalMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  get decision(): DecisionRecord | undefined {
    return this.#decision;
  }

  /** Records a decision of ours (or its resolution) and spreads it on the next rounds. */
  setDecision(record: DecisionRecord): void {
    this.#mergeDecision(record);
  }

  /** Fresh reports by node id (our own included once sampled). */
  fresh(): Map<string, LoadReport> {
    const out = new Map<string, LoadReport>();
    const nowMs = this.#o.clock.monotonicMs();
    for (const [id, entry] of this.#reports) if (nowMs - entry.seenMs <= limits.scaleReportStaleMs) out.set(id, entry.report);
    return out;
  }

  /** Samples our load and runs one push-pull with up to fanout peers. */
  tick(): void {
    const nowMs = this.#o.clock.monotonicMs();
    const sample = this.#o.sampler.sample(nowMs);
    const local = this.#o.local();
    this.#seq++;
    this.#reports.set(this.#o.selfId, { report: { id: this.#o.selfId, incarnation: this.#incarnation, seq: this.#seq, ...sample, ...local }, seenMs: nowMs });
    const peers = [...this.#o.peers()];
    for (let i = 0; i < limits.scaleGossipFanout && peers.length > 0; i++) {
      const [peer] = peers.splice(Math.floor(this.#o.rng.next() * peers.length), 1);
      void this.#o.call(peer!, this.#message(), limits.scaleReportIntervalMs * 2).then((reply) => this.#absorb(reply));
    }
  }

  /** Serves a `scale-gossip` rpc: merges what the peer knows, answers with what we know. */
  serve(body: unknown): object {
    this.#absorb(body);
    return { ...this.#message(), t: 'scale-gossip-reply' };
  }

  #message(): { t: string; reports: LoadReport[]; decision?: DecisionRecord } {
    const reports = [...this.fresh().values()];
    return { t: 'scale-gossip', reports, ...(this.#decision ? { decision: this.#decision } : {}) };
  }

  #absorb(body: unknown): void {
    const b = body as { reports?: unknown; decision?: unknown } | undefined;
    if (b === undefined || b === null) return;
    const nowMs = this.#o.clock.monotonicMs();
    if (Array.isArray(b.reports)) {
      for (const raw of b.reports.slice(0, limits.membersMax)) {
        const report = parseLoadReport(raw);
        if (report === undefined || report.id === this.#o.selfId) continue;
        if (isNewerReport(report, this.#reports.get(report.id)?.report)) this.#reports.set(report.id, { report, seenMs: nowMs });
      }
    }
    if (b.decision !== undefined) {
      const record = parseDecision(b.decision);
      if (record !== undefined) this.#mergeDecision(record);
    }
  }

  #mergeDecision(record: DecisionRecord): void {
    const merged = mergeDecision(this.#decision, record);
    if (merged === this.#decision) return;
    this.#decision = merged;
    if (merged !== undefined) this.#o.onDecision?.(merged);
  }
}
