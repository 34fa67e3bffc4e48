/**
 * The node's one listener (DESIGN.md §3 "Network"): one HTTP(S) server on one port. Upgrades
 * on /peer (authenticated node-to-node links) and /client (client links) become FrameLinks;
 * every other request goes to `onHttp` (/status, /metrics, the dashboard). Main thread.
 *
 * Hardening (RELIABILITY.md §1.8, B4-B7, S7): an 'error' listener on the server, on every raw
 * socket and on every WebSocket; `headersTimeout` against slow headers; ws `maxPayload` and
 * `maxFragments`; a handshake deadline and, for server-side links, an idle deadline and pings;
 * at most `connectionsPerAddressMax` open links per remote address (503 beyond); after
 * `authFailuresPerAddressMax` refused handshakes from one address within `authFailureWindowMs`,
 * its upgrades get 429 (auth-throttle.ts; loopback addresses are exempt unless
 * `throttleLoopback`: every node of a dev cluster shares 127.0.0.1, and one misconfigured node
 * must not lock the others out); upgrades on any other path get 404. A node without a cluster secret refuses to listen beyond loopback.
 *
 * close(): stops accepting, closes every link with 1001 "going away", cuts the links still
 * open after `closeGraceMs`, and resolves once the HTTP server has closed.
 */

import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { systemClock, type Clock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import { AuthThrottle } from './auth-throttle.js';
import { FrameLink, type Link } from './frame-link.js';
import { acceptClient, acceptPeer } from './server-handshake.js';
import { Upgrader } from './websocket.js';
import { CloseCode, wireTuning, type WireTuning } from './wire-tuning.js';

export interface TransportServerOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  nodeId: string;
  /** undefined: the empty key, and `host` must be loopback (else a RangeError naming host). */
  secret: Uint8Array | undefined;
  clientToken?: string | undefined;
  tls?: { certFile: string; keyFile: string } | undefined;
  logger: Logger;
  onPeer(link: Link): void;
  onClient(link: Link): void;
  /** Plain HTTP (/status, /metrics, /). */
  onHttp(request: IncomingMessage, response: ServerResponse): void;
  /** Small values for tests; defaults from limits.ts. */
  tuning?: Partial<WireTuning>;
  /** For the auth throttle's window; default the system clock. */
  clock?: Clock;
  /** Throttle failed handshakes from loopback addresses too (tests); default false. */
  throttleLoopback?: boolean;
}

export interface TransportServer {
  readonly port: number;
  readonly host: string;
  /** ws://host:port or wss://host:port. */
  readonly url: string;
  /** Open links (handshaking ones included). */
  readonly linkCount: number;
  close(): Promise<void>;
}

/** Whether a host name or address is loopback-only. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare) || bare === '::ffff:127.0.0.1';
}

function rejectUpgrade(socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

async function createServer(options: TransportServerOptions): Promise<Server> {
  if (options.tls === undefined) return createHttpServer();
  const [cert, key] = await Promise.all([readFile(options.tls.certFile), readFile(options.tls.keyFile)]);
  const server = createHttpsServer({ cert, key, minVersion: 'TLSv1.2' });
  server.on('tlsClientError', (error) => options.logger.debug({ err: error }, 'TLS client error'));
  return server;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

class Listener implements TransportServer {
  readonly host: string;
  readonly url: string;
  readonly #server: Server;
  readonly #options: TransportServerOptions;
  readonly #tuning: WireTuning;
  readonly #upgrader: Upgrader;
  readonly #links = new Set<FrameLink>();
  readonly #linksPerAddress = new Map<string, number>();
  readonly #throttle: AuthThrottle;
  readonly #clock: Clock;
  #closing: Promise<void> | undefined;

  constructor(server: Server, options: TransportServerOptions, tuning: WireTuning) {
    this.#server = server;
    this.#options = options;
    this.#tuning = tuning;
    this.#clock = options.clock ?? systemClock;
    this.#throttle = new AuthThrottle({ failuresMax: tuning.authFailuresPerAddressMax, windowMs: tuning.authFailureWindowMs, addressesMax: limits.wireAuthAddressesTrackedMax });
    this.host = options.host;
    const scheme = options.tls === undefined ? 'ws' : 'wss';
    this.url = `${scheme}://${options.host.includes(':') ? `[${options.host}]` : options.host}:${this.port}`;
    this.#upgrader = new Upgrader(tuning, (error) => options.logger.warn({ err: error }, 'WebSocket server error'));
    server.headersTimeout = Math.min(tuning.headersTimeoutMs, server.requestTimeout || tuning.headersTimeoutMs);
    server.on('request', (request, response) => options.onHttp(request, response));
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(request, socket, head));
    server.on('clientError', (error, socket) => {
      options.logger.debug({ err: error }, 'HTTP client error');
      socket.destroy();
    });
    server.on('error', (error) => options.logger.error({ err: error }, 'HTTP server error'));
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get linkCount(): number {
    return this.#links.size;
  }

  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (error) => this.#options.logger.debug({ err: error }, 'socket error during upgrade'));
    const path = new URL(request.url ?? '/', 'http://upgrade.invalid').pathname;
    if (path !== '/peer' && path !== '/client') return rejectUpgrade(socket, '404 Not Found');
    if (this.#closing !== undefined) return rejectUpgrade(socket, '503 Service Unavailable');
    const address = request.socket.remoteAddress ?? 'unknown';
    const throttled = this.#options.throttleLoopback === true || !isLoopbackHost(address);
    if (throttled && this.#throttle.blocked(address, this.#clock.monotonicMs())) {
      if (this.#throttle.refused % 100 === 1) this.#options.logger.warn({ remote: address, refused: this.#throttle.refused }, 'too many failed handshakes from one address');
      return rejectUpgrade(socket, '429 Too Many Requests');
    }
    const open = this.#linksPerAddress.get(address) ?? 0;
    if (open >= this.#tuning.connectionsPerAddressMax) {
      this.#options.logger.warn({ remote: address, open }, 'too many connections from one address');
      return rejectUpgrade(socket, '503 Service Unavailable');
    }
    this.#linksPerAddress.set(address, open + 1);
    let counted = true;
    const release = (): void => {
      if (!counted) return;
      counted = false;
      const left = (this.#linksPerAddress.get(address) ?? 1) - 1;
      if (left > 0) this.#linksPerAddress.set(address, left);
      else this.#linksPerAddress.delete(address);
    };
    socket.once('close', release);
    this.#upgrader.upgrade(request, socket, head, (webSocket) => {
      const kind = path === '/peer' ? 'peer' : 'client';
      const remoteAddress = `${address}:${request.socket.remotePort ?? 0}`;
      const link = new FrameLink(webSocket, { remoteAddress, kind, serverSide: true, tuning: this.#tuning, logger: this.#options.logger });
      this.#links.add(link);
      link.whenClosed(() => this.#links.delete(link));
      const onAuthFailure = (): void => {
        if (throttled) this.#throttle.recordFailure(address, this.#clock.monotonicMs());
      };
      const context = { ...this.#options, clientToken: this.#options.clientToken ?? undefined, onAuthFailure };
      if (kind === 'peer') acceptPeer(link, context);
      else acceptClient(link, context);
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const links = [...this.#links];
    const linksClosed = Promise.all(links.map((link) => new Promise<void>((resolve) => link.whenClosed(() => resolve()))));
    for (const link of links) link.close(CloseCode.goingAway, 'going away');
    let graceTimer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, this.#tuning.closeGraceMs)));
    await Promise.race([linksClosed, grace]);
    clearTimeout(graceTimer);
    for (const link of this.#links) link.terminate();
    this.#server.closeAllConnections();
    await closed;
  }
}

/** Starts the node's listener; resolves once it is bound. */
export async function startTransportServer(options: TransportServerOptions): Promise<TransportServer> {
  const tuning = wireTuning(options.tuning);
  if (options.secret === undefined) {
    if (!isLoopbackHost(options.host)) {
      throw new RangeError(`host ${options.host} is not loopback: a node without a cluster secret listens on loopback only`);
    }
    options.logger.warn({ host: options.host }, 'no cluster secret: listening on loopback only');
  }
  const server = await createServer(options);
  await listen(server, options.port, options.host);
  return new Listener(server, options, tuning);
}
