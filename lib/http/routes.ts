/**
 * The node's plain-HTTP routes, served on the same port as the WebSockets: GET /status (JSON),
 * GET /metrics (Prometheus text), GET / (a small text page pointing at both). Anything else is
 * 404, a method other than GET/HEAD is 405. Owned by the main thread; never throws into the
 * HTTP server (a failure is a 500 with a JSON error body).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../base/log.js';
import type { StatusJson } from '../supervisor/index.js';
import type { NodeMetrics } from './metrics.js';

export function createHttpHandler(status: () => StatusJson, metrics: NodeMetrics, logger: Logger): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    void respond(request, response, status, metrics).catch((error: unknown) => {
      logger.error({ err: error, url: request.url }, 'http handler failed');
      if (!response.headersSent) send(response, 500, 'application/json', JSON.stringify({ error: 'internal error' }));
      else response.destroy();
    });
  };
}

async function respond(request: IncomingMessage, response: ServerResponse, status: () => StatusJson, metrics: NodeMetrics): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    send(response, 405, 'application/json', JSON.stringify({ error: 'method not allowed' }));
    return;
  }
  const path = (request.url ?? '/').split('?')[0];
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

function send(response: ServerResponse, code: number, type: string, body: string): void {
  response.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}
