/**
 * One client request across nodes, hedged ("The Tail at Scale", Dean and Barroso 2013): it is
 * sent to the first node of its route; when no answer came within that node's hedge delay
 * (near its observed p99, lib/replication latency-estimator.ts, kept per node and per kind:
 * reads and writes), it is sent to the next node as well, and so on, at most `attemptsMax`
 * nodes; the first good answer wins and the other attempts are cancelled (their late replies
 * are dropped). A node that leaves an attempt unanswered past its attempt timeout is marked
 * suspect (node-connection.ts), so later requests go to others first.
 *
 * Owner: the client's thread; timers are this request's and end with it.
 *
 * Outcome rules (client.ts states them; RELIABILITY.md §0 "three-valued outcomes"):
 *  - get: the first `read` reply wins. KV_UNAVAILABLE, KV_OVERLOADED and KV_TIMEOUT replies,
 *    links that died and requests that could not be sent move on to the next node at once; an
 *    attempt past its attempt timeout is abandoned for a trusted node not tried yet (a read has
 *    no side effect, and this failover is not rationed), or else still waited for; any other
 *    reply stands.
 *  - put/delete: hedged only when the client asks (ClientOptions.hedgeWrites), failed over
 *    always. Every attempt carries the same rid and its attempt number, and the event each
 *    coordinator mints carries them into the stored object, so a write applied by several
 *    coordinators collapses to one sibling on every merge path, even when one copy returns
 *    after the client wrote over the other (lib/causality mint-records.ts, coordinator.ts). The first `written` reply wins. An error
 *    reply stands only once no other attempt is in flight; if another attempt's link died
 *    after sending, a definite error becomes KV_INDETERMINATE (that attempt may have applied
 *    it). A link that dies before any reply moves the write to the next node, same rid. An
 *    attempt past its attempt timeout marks its node suspect and the write also goes to a
 *    trusted node not tried yet (even when hedges are rationed away), but the silent attempt
 *    is still waited for: its outcome matters.
 *  - the request's deadline (`deadline`) cancels every attempt: KV_TIMEOUT, indeterminate for
 *    a write.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import type { HedgeBudget, LatencyEstimator } from '../replication/index.js';
import type { WireMessage } from '../transport/index.js';
import type { Call, CallOutcome, NodeConnection } from './node-connection.js';
import { errorOfReply } from './replies.js';

export const timedOut = Symbol('timed out');

/** Reads and writes of one node are estimated apart (writes wait for W fsyncs). */
export function latencyKey(write: boolean, url: string): string {
  return `${write ? 'w' : 'r'} ${url}`;
}

/** Reply codes after which a get may be tried on another node. */
const retryableReadCodes = new Set<string>([ErrorCode.unavailable, ErrorCode.overloaded, ErrorCode.timeout]);

export interface HedgeHost {
  /** Connections in the order this request tries them, as of now. */
  route(): NodeConnection[];
  readonly latency: LatencyEstimator;
  /** Rations hedges (not failovers): a hedge goes out only if the budget allows. */
  readonly budget: HedgeBudget;
  readonly attemptsMax: number;
  /** Whether a write is hedged (false: a write moves on only past its attempt timeout). */
  readonly hedgeWrites?: boolean;
  /** A link failed: re-read the ring soon. */
  refreshSoon(): void;
  closed(): boolean;
}

export interface HedgedReply {
  message: WireMessage;
  node: string | undefined;
}

interface Attempt {
  readonly connection: NodeConnection;
  readonly call: Call;
  readonly startedMs: number;
  suspected: boolean;
}

type Event = { kind: 'outcome'; attempt: Attempt; outcome: CallOutcome } | { kind: 'deadline' } | { kind: 'tick' };

export async function runHedged(
  host: HedgeHost,
  message: { t: string; [field: string]: unknown },
  write: boolean,
  timeoutMs: number,
  deadline: Promise<typeof timedOut>,
): Promise<HedgedReply> {
  const run = new HedgedRun(host, message, write);
  void deadline.then(() => run.push({ kind: 'deadline' }));
  try {
    return await run.loop(timeoutMs);
  } finally {
    run.cancelAll();
  }
}

class HedgedRun {
  readonly #host: HedgeHost;
  readonly #message: { t: string; [field: string]: unknown };
  readonly #write: boolean;
  readonly #tried = new Set<NodeConnection>();
  readonly #live = new Set<Attempt>();
  readonly #events: Event[] = [];
  #wake: () => void = () => undefined;
  #newest: Attempt | undefined;
  #canHedge = true;
  #lastError: RingkvError | undefined;
  #lost = false;
  #standing: HedgedReply | undefined;

  constructor(host: HedgeHost, message: { t: string; [field: string]: unknown }, write: boolean) {
    this.#host = host;
    this.#message = message;
    this.#write = write;
    this.#canHedge = !write || host.hedgeWrites === true;
  }

  push(event: Event): void {
    this.#events.push(event);
    this.#wake();
  }

  /** The request is over: attempts still in flight are dropped, and watched until their attempt timeout. */
  cancelAll(): void {
    const nowMs = performance.now();
    for (const a of this.#live) {
      if (a.suspected) a.call.cancel();
      else a.call.abandon(a.startedMs + this.#host.latency.attemptTimeoutMs(this.#latencyKey(a)) - nowMs);
    }
    this.#live.clear();
  }

  async loop(timeoutMs: number): Promise<HedgedReply> {
    this.#host.budget.earn();
    this.#start(false);
    for (;;) {
      if (this.#live.size === 0 && (this.#standing !== undefined || !this.#start(false))) return this.#settle();
      const event = await this.#next(this.#wakeAtMs() - performance.now());
      if (event.kind === 'deadline') throw timeoutError(this.#message.t, this.#write, timeoutMs, this.#newest);
      if (event.kind === 'tick') this.#onTick();
      else {
        const done = this.#onOutcome(event.attempt, event.outcome);
        if (done !== undefined) return done;
      }
    }
  }

  /**
   * Sends the request to the next untried node of the route; false when there is none. A
   * hedge (the other attempts still in flight) never goes to a suspect node: it would only
   * queue there. Writes after the first carry their attempt number, so the coordinator also
   * tells the replicas it believes down (coordinator.ts `hedged`).
   */
  #start(hedge: boolean): boolean {
    if (this.#tried.size >= this.#host.attemptsMax || this.#host.closed()) return false;
    const connection = this.#host.route().find((c) => !this.#tried.has(c) && !(hedge && c.isSuspect));
    if (connection === undefined) return false;
    const message = this.#write && this.#tried.size > 0 ? { ...this.#message, attempt: this.#tried.size } : this.#message;
    this.#tried.add(connection);
    const attempt: Attempt = { connection, call: connection.call(message), startedMs: performance.now(), suspected: false };
    this.#live.add(attempt);
    this.#newest = attempt;
    void attempt.call.outcome.then((outcome) => this.push({ kind: 'outcome', attempt, outcome }));
    return true;
  }

  /** Whether an attempt in flight is still within its attempt timeout. */
  #anyWithinTimeout(nowMs: number): boolean {
    for (const a of this.#live) if (!a.suspected && nowMs - a.startedMs < this.#host.latency.attemptTimeoutMs(this.#latencyKey(a))) return true;
    return false;
  }

  /** The next hedge (from the newest attempt) or attempt timeout, whichever is first. */
  #wakeAtMs(): number {
    const { latency } = this.#host;
    let atMs = Infinity;
    const newest = this.#newest;
    if (this.#canHedge && newest !== undefined && this.#live.has(newest)) atMs = newest.startedMs + latency.hedgeDelayMs(this.#latencyKey(newest));
    for (const a of this.#live) if (!a.suspected) atMs = Math.min(atMs, a.startedMs + latency.attemptTimeoutMs(this.#latencyKey(a)));
    return atMs;
  }

  #latencyKey(attempt: Attempt): string {
    return latencyKey(this.#write, attempt.connection.url);
  }

  async #next(delayMs: number): Promise<Event> {
    if (this.#events.length === 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        if (Number.isFinite(delayMs)) timer = setTimeout(resolve, Math.max(0, delayMs));
      });
      clearTimeout(timer);
      this.#wake = () => undefined;
    }
    return this.#events.shift() ?? { kind: 'tick' };
  }

  #onTick(): void {
    const nowMs = performance.now();
    const { latency } = this.#host;
    for (const a of this.#live) {
      const limitMs = latency.attemptTimeoutMs(this.#latencyKey(a));
      if (a.suspected || nowMs - a.startedMs < limitMs) continue;
      a.suspected = true;
      a.connection.markSuspect(`no answer to a ${this.#message.t} within ${Math.round(limitMs)} ms`);
      // Fail over to a trusted node (not rationed: this is no hedge), or, when none is left and
      // no attempt in flight is still within its timeout, to a suspect one (suspicion under
      // load is often wrong; a silent node past its timeout is worse). A read, which has no
      // side effect, stops waiting for the silent node; a write still waits for its outcome.
      const started = this.#start(true) || (!this.#anyWithinTimeout(nowMs) && this.#start(false));
      if (!started || this.#write) continue;
      a.call.cancel();
      this.#live.delete(a);
    }
    const newest = this.#newest;
    if (this.#canHedge && newest !== undefined && this.#live.has(newest) && nowMs - newest.startedMs >= latency.hedgeDelayMs(this.#latencyKey(newest))) {
      this.#canHedge = this.#host.budget.spend() && this.#start(true);
    }
  }

  /** Handles one attempt's outcome; returns the answer when it settles the request. */
  #onOutcome(attempt: Attempt, outcome: CallOutcome): HedgedReply | undefined {
    if (!this.#live.delete(attempt)) return undefined;
    const node = attempt.connection.nodeId;
    if (outcome.kind === 'reply') {
      const code = outcome.message.t === 'error' ? outcome.message.code : undefined;
      if (code === undefined) {
        // Karn's rule: an attempt that was hedged past is no clean sample of its node.
        if (attempt === this.#newest) this.#host.latency.sample(this.#latencyKey(attempt), performance.now() - attempt.startedMs);
        return { message: outcome.message, node };
      }
      if (this.#write) {
        // An error stands once nothing else is in flight; no new attempt after it.
        this.#standing ??= { message: outcome.message, node };
        this.#canHedge = false;
        return undefined;
      }
      if (typeof code !== 'string' || !retryableReadCodes.has(code)) return { message: outcome.message, node };
      this.#lastError = errorOfReply(outcome.message, false, node);
      this.#start(this.#live.size > 0);
      return undefined;
    }
    this.#lastError = outcome.error;
    this.#lost ||= outcome.kind === 'lost';
    if (this.#host.closed()) return undefined;
    this.#host.refreshSoon();
    if (this.#standing === undefined) this.#start(this.#live.size > 0);
    return undefined;
  }

  /** Nothing in flight and nowhere left to send: the outcome that stands. */
  #settle(): HedgedReply {
    const standing = this.#standing;
    if (standing !== undefined && !(this.#lost && standing.message.code !== ErrorCode.indeterminate)) return standing;
    if (this.#write && this.#lost) {
      throw new RingkvError(ErrorCode.indeterminate, `${this.#message.t} may have been applied: a connection died before a reply and no other node took the retry`, {
        indeterminate: true,
        cause: standing?.message.message ?? this.#lastError?.message,
      });
    }
    throw this.#lastError ?? new RingkvError(ErrorCode.unavailable, 'no node is reachable', {});
  }
}

function timeoutError(tag: string, write: boolean, timeoutMs: number, last: Attempt | undefined): RingkvError {
  const node = last === undefined ? 'no node' : (last.connection.nodeId ?? last.connection.url);
  const what = write ? `${tag} may or may not have been applied` : `${tag} got no reply`;
  return new RingkvError(ErrorCode.timeout, `${what} within ${timeoutMs} ms (last tried ${node})`, { indeterminate: write, timeoutMs, node });
}
