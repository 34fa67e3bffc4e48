/**
 * The node's plain-HTTP routes, served on the same port as the WebSockets: GET /status (JSON),
 * GET /metrics (Prometheus text), GET / (a small text page pointing at both), POST /repair
 * [?partition=p] (starts a Merkle repair; answers 202 with its progress, which /status then
 * shows under antiEntropy.repair). Anything else is 404, a wrong method 405. POST /repair
 * needs the client token when the node has one (header `authorization: Bearer <token>`). Owned by the main thread; never throws into the
 * HTTP server (a failure is a 500 with a JSON error body).
 */

import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../base/log.js';
import type { StatusJson } from '../supervisor/index.js';
import type { NodeMetrics } from './metrics.js';

export interface HttpActions {
  repair(partition: number | undefined): unknown;
  /** When set, POST routes require `authorization: Bearer <token>`. */
  readonly token?: string;
}

export function createHttpHandler(
  status: () => StatusJson,
  metrics: NodeMetrics,
  logger: Logger,
  actions?: HttpActions,
): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    void respond(request, response, status, metrics, actions).catch((error: unknown) => {
      logger.error({ err: error, url: request.url }, 'http handler failed');
      if (!response.headersSent) send(response, 500, 'application/json', JSON.stringify({ error: 'internal error' }));
      else response.destroy();
    });
  };
}

async function respond(request: IncomingMessage, response: ServerResponse, status: () => StatusJson, metrics: NodeMetrics, actions: HttpActions | undefined): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://node');
  const path = url.pathname;
  if (path === '/repair' && actions !== undefined) {
    if (request.method !== 'POST') return notAllowed(response, 'POST');
    if (actions.token !== undefined && !tokenMatches(request.headers.authorization, actions.token)) {
      send(response, 401, 'application/json', JSON.stringify({ error: 'KV_AUTH', message: 'a client token is required' }));
      return;
    }
    const raw = url.searchParams.get('partition');
    const partition = raw === null ? undefined : Number(raw);
    if (partition !== undefined && !(Number.isInteger(partition) && partition >= 0 && partition < 2 ** status().partitionBits)) {
      send(response, 400, 'application/json', JSON.stringify({ error: 'KV_BAD_REQUEST', message: 'partition must be an integer within the ring' }));
      return;
    }
    send(response, 202, 'application/json', JSON.stringify(actions.repair(partition)));
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') return notAllowed(response, 'GET, HEAD');
  switch (path) {
    case '/status':
      send(response, 200, 'application/json', JSON.stringify(status()));
      return;
    case '/metrics':
      send(response, 200, metrics.contentType, await metrics.text());
      return;
    case '/': {
      const s = status();
      const up = s.members.filter((m) => m.up).length;
      send(response, 200, 'text/plain; charset=utf-8', `ringkv node ${s.node} at ${s.address}: ${up}/${s.members.length} members up\nGET /status (JSON), GET /metrics (Prometheus)\n`);
      return;
    }
    default:
      send(response, 404, 'application/json', JSON.stringify({ error: 'not found', path }));
  }
}

function notAllowed(response: ServerResponse, allow: string): void {
  response.setHeader('allow', allow);
  send(response, 405, 'application/json', JSON.stringify({ error: 'method not allowed' }));
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice(7) : '');
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

function send(response: ServerResponse, code: number, type: string, body: string): void {
  response.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}
