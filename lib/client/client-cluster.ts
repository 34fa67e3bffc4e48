/**
 * The client's connections and its ring: which node each request goes to, and the retry
 * loop that decides, from what the network saw, whether a request may go to another node.
 * client.ts states the outcome rules; this file enforces them.
 *
 * Owner: the client's thread. Timers: one ring-refresh interval and one liveness-probe
 * interval (both unref'd, so an idle client never keeps a process alive), and one deadline
 * per request (kept referenced: a request in flight is work the process waits for) with its
 * hedge timer (hedged-request.ts).
 *
 * Fast failover: requests are hedged (hedged-request.ts) with per-node latency estimates kept
 * here; every `limits.clientPingIdleMs / 2` the probe pings connections that heard nothing for
 * `clientPingIdleMs` and marks those that stay silent suspect (node-connection.ts); routes put
 * suspect nodes after the others (ring-view.ts), so a paused node costs new requests nothing.
 *
 * Invariants: at most one connection per URL; a connection is made only when a request or
 * a ring refresh needs it, and closed when its node leaves the ring (seeds stay); at most one
 * ring refresh runs at a time; a request is sent to each node at most once.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { HedgeBudget, LatencyEstimator, type LatencyBounds } from '../replication/index.js';
import type { WireMessage } from '../transport/index.js';
import { runHedged, timedOut } from './hedged-request.js';
import { type ConnectionSettings, NodeConnection, type CallOutcome } from './node-connection.js';
import { errorOfReply } from './replies.js';
import { type ClusterView, clusterViewOf, routeKey } from './ring-view.js';

export interface ClusterSettings extends ConnectionSettings {
  ringRefreshMs: number;
  requestTimeoutMs: number;
  /** Prefer coordinators in this datacenter (see routeKey). */
  localDc?: string | undefined;
  /** Liveness probes (node-connection.ts probe). */
  pingIdleMs: number;
  pingTimeoutMs: number;
  /** Bounds of the hedge delays and attempt timeouts. */
  hedge: Partial<LatencyBounds>;
}


export class ClientCluster {
  readonly #seeds: readonly string[];
  readonly #settings: ClusterSettings;
  readonly #byUrl = new Map<string, NodeConnection>();
  #view: ClusterView | undefined;
  #refreshing: Promise<void> | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #probeTimer: NodeJS.Timeout | undefined;
  /** Per node and kind ('r url' / 'w url'): the hedge delays and attempt timeouts. */
  readonly #latency: LatencyEstimator;
  readonly #budget = new HedgeBudget();
  #closed = false;

  constructor(seeds: readonly string[], settings: ClusterSettings) {
    this.#seeds = seeds;
    this.#settings = { ...settings, onRing: (ring) => this.#adopt(ring) };
    this.#latency = new LatencyEstimator(settings.hedge, 2 * limits.membersMax);
  }

  get view(): ClusterView | undefined {
    return this.#view;
  }

  /** Connections by URL (tests and tools look at their states). */
  get connections(): ReadonlyMap<string, NodeConnection> {
    return this.#byUrl;
  }

  /**
   * Learns the ring from the first seed that answers. Fails only when no node could be
   * reached (KV_AUTH when a node refused the token); a node that answers the ring request
   * with an error leaves the client routing through the seeds until a refresh succeeds.
   */
  async start(): Promise<void> {
    for (const url of this.#seeds) this.#connection(url).open();
    await this.refreshRing().catch((error: unknown) => {
      if (error instanceof RingkvError && error.details.sent === true) {
        this.#settings.logger.warn({ err: error }, 'ring request failed; routing through the seeds until a refresh succeeds');
        return;
      }
      throw error;
    });
    this.#refreshTimer = setInterval(() => this.#refreshSoon(), this.#settings.ringRefreshMs);
    this.#refreshTimer.unref();
    const { pingIdleMs, pingTimeoutMs } = this.#settings;
    this.#probeTimer = setInterval(() => {
      const nowMs = performance.now();
      for (const connection of this.#byUrl.values()) connection.probe(nowMs, pingIdleMs, pingTimeoutMs);
    }, Math.max(10, Math.floor(pingIdleMs / 2)));
    this.#probeTimer.unref();
  }

  /** The latency estimates behind hedge delays (tests and tools). */
  get latency(): LatencyEstimator {
    return this.#latency;
  }

  refreshRing(): Promise<void> {
    this.#refreshing ??= this.#fetchRing().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#refreshTimer);
    clearInterval(this.#probeTimer);
    for (const connection of this.#byUrl.values()) connection.close();
  }

  /**
   * Sends `message` for `key` and returns the reply that stands, following the retry rules
   * of client.ts; throws KV_TIMEOUT, KV_INDETERMINATE, KV_UNAVAILABLE or the last error.
   */
  async execute(
    key: Uint8Array,
    message: { t: string; [field: string]: unknown },
    write: boolean,
    timeoutMs: number,
  ): Promise<{ message: WireMessage; node: string | undefined }> {
    if (this.#closed) throw new RingkvError(ErrorCode.closed, 'the client is closed', {});
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<typeof timedOut>((resolve) => {
      timer = setTimeout(() => resolve(timedOut), timeoutMs);
    });
    try {
      return await this.#attempts(key, message, write, timeoutMs, deadline);
    } finally {
      clearTimeout(timer);
    }
  }

  #attempts(
    key: Uint8Array,
    message: { t: string; [field: string]: unknown },
    write: boolean,
    timeoutMs: number,
    deadline: Promise<typeof timedOut>,
  ): Promise<{ message: WireMessage; node: string | undefined }> {
    const host = {
      route: () => this.#route(key),
      latency: this.#latency,
      budget: this.#budget,
      attemptsMax: limits.clientAttemptsMax,
      refreshSoon: () => this.#refreshSoon(),
      closed: () => this.#closed,
    };
    return runHedged(host, message, write, timeoutMs, deadline);
  }

  /** Connections in the order a request for `key` tries them. */
  #route(key: Uint8Array): NodeConnection[] {
    const out: NodeConnection[] = [];
    const view = this.#view;
    if (view !== undefined) {
      const ids = routeKey(view, key, (id) => this.#connectionOfNode(id).isDown, this.#settings.localDc, (id) => this.#connectionOfNode(id).isSuspect);
      for (const id of ids) out.push(this.#connectionOfNode(id));
    }
    const seeds = this.#seeds.map((url) => this.#connection(url)).filter((c) => !out.includes(c));
    const healthy = (c: NodeConnection): boolean => !c.isDown && !c.isSuspect;
    out.push(...seeds.filter(healthy), ...seeds.filter((c) => c.isSuspect), ...seeds.filter((c) => c.isDown));
    return out;
  }

  #connection(url: string): NodeConnection {
    let connection = this.#byUrl.get(url);
    if (connection === undefined) {
      connection = new NodeConnection(url, this.#settings);
      this.#byUrl.set(url, connection);
    }
    return connection;
  }

  /** The connection to a ring member: one already welcomed by that node id, else its URL's. */
  #connectionOfNode(id: string): NodeConnection {
    const member = this.#view!.byId.get(id)!;
    const direct = this.#byUrl.get(member.url);
    if (direct !== undefined) return direct;
    for (const connection of this.#byUrl.values()) if (connection.nodeId === id && connection.state === 'open') return connection;
    return this.#connection(member.url);
  }

  #refreshSoon(): void {
    if (this.#closed) return;
    this.refreshRing().catch((error: unknown) => this.#settings.logger.debug({ err: error }, 'ring refresh failed'));
  }

  async #fetchRing(): Promise<void> {
    const candidates = [...this.#byUrl.values()].sort((a, b) => rank(a) - rank(b));
    let lastError: RingkvError | undefined;
    for (const connection of candidates.slice(0, limits.clientAttemptsMax + this.#seeds.length)) {
      if (this.#closed) break;
      const outcome = await withDeadline(connection.call({ t: 'ring' }), this.#settings.requestTimeoutMs);
      if (outcome.kind === 'reply' && outcome.message.t === 'ring') {
        this.#adopt(outcome.message.ring);
        return;
      }
      lastError =
        outcome.kind !== 'reply'
          ? outcome.error
          : outcome.message.t === 'error'
            ? errorOfReply(outcome.message, false, connection.nodeId)
            : new RingkvError(ErrorCode.badRequest, `unexpected ${String(outcome.message.t)} reply to ring`, {});
      if (outcome.kind !== 'not-sent') lastError = new RingkvError(lastError.code, lastError.message, { ...lastError.details, sent: true });
    }
    throw lastError ?? new RingkvError(ErrorCode.unavailable, 'no node is reachable', {});
  }

  #adopt(raw: unknown): void {
    if (this.#closed) return;
    try {
      this.#view = clusterViewOf(raw, this.#view);
    } catch (error) {
      this.#settings.logger.warn({ err: error }, 'ignoring a malformed ring view');
      return;
    }
    const keep = new Set<string>(this.#seeds);
    for (const member of this.#view.view.members) if (member.status !== 'left') keep.add(member.url);
    for (const [url, connection] of this.#byUrl) {
      if (!keep.has(url)) {
        connection.close();
        this.#byUrl.delete(url);
      }
    }
  }
}

/** Open connections first, then those still connecting, then idle, then suspect, then down. */
function rank(connection: NodeConnection): number {
  if (connection.isSuspect) return 2.5;
  return { open: 0, connecting: 1, idle: 2, down: 3, closed: 4 }[connection.state];
}

async function withDeadline(call: { outcome: Promise<CallOutcome>; cancel(): void }, timeoutMs: number): Promise<CallOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<CallOutcome>((resolve) => {
    timer = setTimeout(() => {
      call.cancel();
      resolve({ kind: 'lost', error: new RingkvError(ErrorCode.timeout, `no reply within ${timeoutMs} ms`, {}) });
    }, timeoutMs);
  });
  try {
    return await Promise.race([call.outcome, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
