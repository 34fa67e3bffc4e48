/**
 * The node's plain-HTTP routes, served on the same port as the WebSockets: GET /status (JSON),
 * GET /metrics (Prometheus text), GET / (a small text page pointing at both), POST /repair
 * [?partition=p] (starts a Merkle repair; answers 202 with its progress, which /status then
 * shows under antiEntropy.repair), POST /cleanup (drops partitions this node no longer
 * replicates after handing them over; answers with what it dropped). Anything else is 404, a wrong method 405. POST /repair
 * needs the client token when the node has one (header `authorization: Bearer <token>`).
 * GET /merkle?partition=p[,q...] (read-only, for convergence checks) answers this node's
 * Merkle root (hex) and key count of each listed partition it replicates, built from a fresh
 * scan; partitions it does not replicate are left out, unless `&held=1`, which adds those it
 * still holds keys of (`replica: false`: data awaiting cleanup). POST /leave (`ringkv leave`: this node
 * hands its partitions off and leaves; 202, or 409 unless it is normal) and POST
 * /removenode?id=<node> (`ringkv removenode`: removes a dead member on its behalf and
 * re-replicates its partitions; 202, 400 without an id, 409 when the member is up) need the
 * client token too. Owned by the main thread; never throws
 * into the HTTP server (a failure is a 500 with a JSON error body).
 */

import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isRingkvError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import type { StatusJson } from '../supervisor/index.js';
import type { NodeMetrics } from './metrics.js';
import { isPlanPath, planRoute, scalingMetricsText, type PlanActions } from './plan-routes.js';

export interface HttpActions {
  repair(partition: number | undefined): unknown;
  /** POST /cleanup: drops partitions this node no longer replicates; answers when done. */
  cleanup?(): Promise<unknown>;
  /** This node's Merkle roots of the partitions it replicates among `partitions`. */
  merkleRoots?(partitions: readonly number[], held?: boolean): Promise<unknown>;
  /** POST /leave: starts leaving; throws a RingkvError when this node cannot leave now. */
  leave?(): unknown;
  /** POST /removenode?id=: removes a dead member; RangeError for an unknown id, RingkvError when it is up. */
  removeNode?(id: string): Promise<unknown>;
  /** Staged plans and the autoscaler (plan-routes.ts). */
  scaling?: PlanActions;
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
  if ((path === '/leave' || path === '/removenode') && actions !== undefined) return membershipChange(request, response, url, actions);
  if (isPlanPath(path) && actions?.scaling !== undefined) {
    const authorized = actions.token === undefined || tokenMatches(request.headers.authorization, actions.token);
    return planRoute(request, url, actions.scaling, authorized, (code, body) => send(response, code, 'application/json', JSON.stringify(body)));
  }
  if (path === '/cleanup' && actions?.cleanup !== undefined) {
    if (request.method !== 'POST') return notAllowed(response, 'POST');
    if (actions.token !== undefined && !tokenMatches(request.headers.authorization, actions.token)) {
      send(response, 401, 'application/json', JSON.stringify({ error: 'KV_AUTH', message: 'a client token is required' }));
      return;
    }
    send(response, 200, 'application/json', JSON.stringify(await actions.cleanup()));
    return;
  }
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
    case '/merkle':
      return merkle(response, url, status().partitionBits, actions);
    case '/status':
      send(response, 200, 'application/json', JSON.stringify(status()));
      return;
    case '/metrics':
      send(response, 200, metrics.contentType, (await metrics.text()) + scalingMetricsText(status().scaling));
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

async function merkle(response: ServerResponse, url: URL, partitionBits: number, actions: HttpActions | undefined): Promise<void> {
  if (actions?.merkleRoots === undefined) {
    send(response, 404, 'application/json', JSON.stringify({ error: 'not found', path: url.pathname }));
    return;
  }
  const raw = (url.searchParams.get('partition') ?? '').split(',').filter((p) => p !== '');
  const partitions = [...new Set(raw.map(Number))];
  if (partitions.length === 0 || partitions.some((p) => !(Number.isInteger(p) && p >= 0 && p < 2 ** partitionBits))) {
    send(response, 400, 'application/json', JSON.stringify({ error: 'KV_BAD_REQUEST', message: 'partition must list integers within the ring, comma-separated' }));
    return;
  }
  send(response, 200, 'application/json', JSON.stringify(await actions.merkleRoots(partitions, url.searchParams.get('held') === '1')));
}

async function membershipChange(request: IncomingMessage, response: ServerResponse, url: URL, actions: HttpActions): Promise<void> {
  if (request.method !== 'POST') return notAllowed(response, 'POST');
  if (actions.token !== undefined && !tokenMatches(request.headers.authorization, actions.token)) {
    send(response, 401, 'application/json', JSON.stringify({ error: 'KV_AUTH', message: 'a client token is required' }));
    return;
  }
  const id = url.searchParams.get('id');
  try {
    if (url.pathname === '/leave') {
      if (actions.leave === undefined) return notFound(response, url.pathname);
      send(response, 202, 'application/json', JSON.stringify(actions.leave()));
    } else {
      if (actions.removeNode === undefined) return notFound(response, url.pathname);
      if (id === null || id === '') {
        send(response, 400, 'application/json', JSON.stringify({ error: 'KV_BAD_REQUEST', message: 'id is required: /removenode?id=<node id>' }));
        return;
      }
      send(response, 202, 'application/json', JSON.stringify(await actions.removeNode(id)));
    }
  } catch (error) {
    if (error instanceof RangeError) send(response, 400, 'application/json', JSON.stringify({ error: 'KV_BAD_REQUEST', message: error.message }));
    else if (isRingkvError(error)) send(response, 409, 'application/json', JSON.stringify({ error: error.code, message: error.message }));
    else throw error;
  }
}

function notFound(response: ServerResponse, path: string): void {
  send(response, 404, 'application/json', JSON.stringify({ error: 'not found', path }));
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
