/**
 * The dashboard's HTTP routes: GET / (the page), GET /dashboard/<file> (its scripts and
 * styles, the static files of lib/http/dashboard/), GET /vendor/uplot.js and uplot.css (uPlot
 * from node_modules: nothing comes from a CDN), GET /events (the live SSE feed) and GET
 * /feed/local (this node's live sample, for the other members' feeds). The page and its files
 * carry no data and are public; the two feeds need the client token when the node has one.
 * Files are read once at startup from an allowlist (the folder's listing), so no request path
 * ever reaches the file system. Owned by the main thread.
 */

import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LiveFeed } from './dashboard-feed.js';

/** lib/http/dashboard/ of the package, from build/lib/http/ (or lib/http/ when run from sources). */
export function dashboardDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(`${join('build', 'lib', 'http')}`) ? join(here, '..', '..', '..', 'lib', 'http', 'dashboard') : join(here, 'dashboard');
}

const types: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

interface Asset {
  type: string;
  body: Buffer;
}

function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const dir = dashboardDir();
  for (const name of readdirSync(dir)) {
    const extension = /^[a-z0-9-]+\.([a-z]+)$/.exec(name)?.[1];
    if (extension === undefined || types[extension] === undefined) continue;
    assets.set(`/dashboard/${name}`, { type: types[extension], body: readFileSync(join(dir, name)) });
  }
  assets.set('/', assets.get('/dashboard/index.html')!);
  const uplot = dirname(createRequire(import.meta.url).resolve('uplot'));
  assets.set('/vendor/uplot.js', { type: types.js!, body: readFileSync(join(uplot, 'uPlot.iife.min.js')) });
  assets.set('/vendor/uplot.css', { type: types.css!, body: readFileSync(join(uplot, 'uPlot.min.css')) });
  return assets;
}

export interface DashboardRoutes {
  /** Answers the request when it is a dashboard route; false otherwise. */
  handle(path: string, request: IncomingMessage, response: ServerResponse, authorized: boolean): boolean;
}

export function dashboardRoutes(feed: LiveFeed): DashboardRoutes {
  const assets = loadAssets();
  return {
    handle(path, request, response, authorized) {
      const asset = assets.get(path);
      if (asset !== undefined) {
        response.writeHead(200, { 'content-type': asset.type, 'content-length': asset.body.length, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
        response.end(request.method === 'HEAD' ? undefined : asset.body);
        return true;
      }
      if (path !== '/events' && path !== '/feed/local') return false;
      if (!authorized) {
        response.writeHead(401, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: 'KV_AUTH', message: 'a client token is required' }));
      } else if (path === '/events') {
        feed.subscribe(request, response);
      } else {
        const body = JSON.stringify(feed.local());
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        response.end(body);
      }
      return true;
    },
  };
}
