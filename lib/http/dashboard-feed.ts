/**
 * The dashboard's live feed: GET /events is a Server-Sent Events stream of DashboardFrames
 * (dashboard-view.ts), one per `dashboardTickMs`, after one `history` event holding the chart
 * points of the last minutes; GET /feed/local is this node's LocalSample, which the feeds of
 * the other members fetch. Both are authenticated like a client (the client token, as
 * `authorization: Bearer` or `?token=` since EventSource cannot set headers) when the node
 * requires one. Owned by the main thread.
 *
 * The feed ticks only while at least one stream is open (a node nobody watches does no work
 * and fetches nothing); each tick asks every other up member for its sample with a short
 * timeout, so a slow or dead member only loses its chart point. Bounded: at most
 * `dashboardSubscribersMax` streams (503 past it), `dashboardHistoryPoints` points kept.
 * Peers behind wss:// with a private CA are drawn without live figures (fetch cannot be given
 * the CA); their status rows still show.
 */

import { systemClock, type Clock } from '../base/clock.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import type { StatusJson } from '../supervisor/index.js';
import { buildFrame, chartPoint, type ChartPoint, type LocalSample, localSample } from './dashboard-view.js';
import type { RequestSnapshot } from './request-totals.js';

export interface LiveFeedOptions {
  readonly status: () => StatusJson;
  readonly requests: () => RequestSnapshot;
  readonly logger: Logger;
  /** The client token peers require, sent with the sample requests. */
  readonly token?: string;
  readonly tickMs?: number;
  /** Sample times (wall clock); default the system's. */
  readonly clock?: Clock;
  /** GET a peer's /feed/local; default fetch with the token. */
  readonly fetchSample?: (httpBase: string) => Promise<LocalSample | undefined>;
}

export class LiveFeed {
  readonly #options: LiveFeedOptions;
  readonly #subscribers = new Set<ServerResponse>();
  readonly #history: ChartPoint[] = [];
  #previous = new Map<string, LocalSample>();
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;

  constructor(options: LiveFeedOptions) {
    this.#options = options;
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** This node's sample now (GET /feed/local). */
  local(): LocalSample {
    return localSample(this.#options.status(), this.#options.requests(), (this.#options.clock ?? systemClock).wallMs());
  }

  /** Serves GET /events: opens an SSE stream (auth already checked by the route). */
  subscribe(request: IncomingMessage, response: ServerResponse): void {
    if (this.#subscribers.size >= limits.dashboardSubscribersMax) {
      response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
      response.end(JSON.stringify({ error: 'KV_OVERLOADED', message: 'too many dashboard feeds open' }));
      return;
    }
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    response.write(`retry: 2000\nevent: history\ndata: ${JSON.stringify(this.#history)}\n\n`);
    this.#subscribers.add(response);
    const drop = (): void => {
      this.#subscribers.delete(response);
      if (this.#subscribers.size === 0) this.#stop();
    };
    request.once('close', drop);
    response.once('error', drop);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => void this.tick(), this.#options.tickMs ?? limits.dashboardTickMs);
      this.#timer.unref();
      void this.tick();
    }
  }

  /** One point: every member's sample, one frame to every stream. */
  async tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      const status = this.#options.status();
      const peers = status.members.filter((m) => m.id !== status.node && m.up && m.status !== 'left');
      const fetched = await Promise.all(peers.map((m) => this.#fetchSample(m.url)));
      const samples = [this.local(), ...fetched.filter((s): s is LocalSample => s !== undefined)];
      const point = chartPoint((this.#options.clock ?? systemClock).wallMs(), samples, this.#previous);
      this.#previous = new Map(samples.map((s) => [s.node, s]));
      this.#history.push(point);
      if (this.#history.length > limits.dashboardHistoryPoints) this.#history.shift();
      const frame = `event: frame\ndata: ${JSON.stringify(buildFrame(status, samples, point))}\n\n`;
      for (const response of this.#subscribers) response.write(frame);
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'dashboard tick failed');
    } finally {
      this.#ticking = false;
    }
  }

  #fetchSample(nodeUrl: string): Promise<LocalSample | undefined> {
    const base = nodeUrl.replace(/^ws(s?):/, 'http$1:');
    const headers: Record<string, string> = this.#options.token ? { authorization: `Bearer ${this.#options.token}` } : {};
    const fetchSample = this.#options.fetchSample ?? ((b: string) => fetch(`${b}/feed/local`, { headers, signal: AbortSignal.timeout(limits.dashboardPeerTimeoutMs) }).then((r) => (r.ok ? (r.json() as Promise<LocalSample>) : undefined)));
    // A peer that fails only loses its chart point; the frame still goes out.
    return Promise.resolve()
      .then(() => fetchSample(base))
      .catch((error: unknown) => {
        this.#options.logger.debug({ err: error, peer: base }, 'no live sample from peer');
        return undefined;
      });
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  close(): void {
    this.#stop();
    for (const response of this.#subscribers) response.end();
    this.#subscribers.clear();
  }
}
