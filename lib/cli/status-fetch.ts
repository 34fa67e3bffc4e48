/**
 * GET /status of a node over HTTP(S) (wire.md "Status JSON"), for `ringkv status | ring |
 * endpoints | hints`, and POST /repair for `ringkv repair`. The token, when given, goes as `Authorization: Bearer`; --ca-file is trusted
 * for https. Failures are RingkvErrors: KV_UNAVAILABLE (cannot connect, non-200),
 * KV_TIMEOUT, KV_BAD_REQUEST (not JSON or not a status object), KV_TOO_LARGE (a body
 * over limits.clientStatusBytesMax). Owner: the CLI's main thread.
 */

import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { StatusJson } from '../server/index.js';

const statusBytesMax = limits.clientStatusBytesMax;

function collect(response: IncomingMessage, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > statusBytesMax) {
        response.destroy();
        reject(new RingkvError(ErrorCode.tooLarge, `${url} sent more than ${statusBytesMax} bytes`, { url }));
      } else {
        chunks.push(chunk);
      }
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', (error) => reject(new RingkvError(ErrorCode.unavailable, `reading ${url} failed: ${error.message}`, { url })));
  });
}

function parseStatus(body: string, url: string): StatusJson {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new RingkvError(ErrorCode.badRequest, `${url} did not return JSON`, { url }, { cause: error });
  }
  const s = value as Partial<StatusJson> | null;
  if (typeof s !== 'object' || s === null || !Array.isArray(s.members) || typeof s.partitionBits !== 'number' || !Array.isArray(s.ring?.owners)) {
    throw new RingkvError(ErrorCode.badRequest, `${url} did not return a ringkv status object`, { url });
  }
  return s as StatusJson;
}

export async function fetchStatus(url: string, options: { token?: string; caFile?: string; timeoutMs: number }): Promise<StatusJson> {
  return parseStatus(await httpText('GET', url, 200, options), url);
}

/** POST /repair[?partition=p] (`ringkv repair`): resolves once the node accepted it (HTTP 202). */
export async function startRepair(url: string, options: { token?: string; caFile?: string; timeoutMs: number }): Promise<void> {
  await httpText('POST', url, 202, options);
}

/** A POST answered with 200 and a JSON body (`ringkv cleanup`). */
export async function postJson(url: string, options: { token?: string; caFile?: string; timeoutMs: number }): Promise<unknown> {
  const body = await httpText('POST', url, 200, options);
  try {
    return JSON.parse(body);
  } catch (error) {
    throw new RingkvError(ErrorCode.badRequest, `${url} did not return JSON`, { url }, { cause: error });
  }
}

/** A request answered with JSON whatever its status (`ringkv plan`, `commit`: a refusal's reasons are in a 409 body). */
export async function httpJson(method: 'GET' | 'POST', url: string, options: { token?: string; caFile?: string; timeoutMs: number }): Promise<{ status: number; body: unknown }> {
  const { status, text } = await httpRaw(method, url, options);
  try {
    return { status, body: JSON.parse(text) };
  } catch (error) {
    throw new RingkvError(ErrorCode.badRequest, `${url} did not return JSON (HTTP ${status})`, { url }, { cause: error });
  }
}

async function httpText(method: 'GET' | 'POST', url: string, expected: number, options: { token?: string; caFile?: string; timeoutMs: number }): Promise<string> {
  const { status, text } = await httpRaw(method, url, options);
  if (status !== expected) throw new RingkvError(ErrorCode.unavailable, `${url} answered HTTP ${status}`, { url, httpStatus: status });
  return text;
}

function httpRaw(method: 'GET' | 'POST', url: string, options: { token?: string; caFile?: string; timeoutMs: number }): Promise<{ status: number; text: string }> {
  const secure = url.startsWith('https:');
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const ca = secure && options.caFile !== undefined ? readFileSync(options.caFile) : undefined;
  return new Promise((resolve, reject) => {
    const request = (secure ? httpsRequest : httpRequest)(url, { method, headers, ...(ca ? { ca } : {}) }, (response) => {
      collect(response, url).then((text) => resolve({ status: response.statusCode ?? 0, text }), reject);
    });
    request.setTimeout(options.timeoutMs, () => {
      request.destroy();
      reject(new RingkvError(ErrorCode.timeout, `${url} did not answer within ${options.timeoutMs} ms`, { url }));
    });
    request.on('error', (error) => reject(new RingkvError(ErrorCode.unavailable, `cannot reach ${url}: ${error.message}`, { url })));
    request.end();
  });
}
