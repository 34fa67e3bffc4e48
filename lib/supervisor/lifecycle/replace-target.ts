/**
 * Resolving `--replace <host:port or node id>` to the node id to take over, before the node
 * starts (its id is bound into every peer handshake, so it must be known first). A node id is
 * taken as is; an address is looked up in the members a seed reports on GET /status (the
 * same document `ringkv status` reads). The lookup only names the member: whether it may be
 * replaced (it owns partitions, is down, was not removed) is decided by the start check over
 * the authenticated peer links (start-check.ts). Owned by the main thread, at start only.
 */

import { readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { systemClock, type Clock } from '../../base/clock.js';
import { ErrorCode, RingkvError } from '../../base/errors.js';

export interface ReplaceLookup {
  /** The --replace value: host:port or a node id. */
  readonly target: string;
  readonly seeds: readonly string[];
  readonly scheme: 'ws' | 'wss';
  readonly caFile?: string;
  /** Give up after this long without a seed that knows the target. */
  readonly timeoutMs: number;
  /** The clock the deadline is judged by (the node's; default the system's). */
  readonly clock?: Clock;
}

const addressPattern = /^[^\s:]+:\d+$/;

interface StatusMembers {
  members?: { id?: unknown; address?: unknown; status?: unknown }[];
}

function fetchStatus(seed: string, scheme: 'ws' | 'wss', caFile: string | undefined, timeoutMs: number): Promise<StatusMembers | undefined> {
  return new Promise((resolve) => {
    const url = `${scheme === 'wss' ? 'https' : 'http'}://${seed}/status`;
    const onResponse = (response: import('node:http').IncomingMessage): void => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (body.length < 4 * 1024 * 1024) body += chunk;
      });
      response.on('end', () => {
        try {
          resolve(JSON.parse(body) as StatusMembers);
        } catch {
          resolve(undefined); // not a ringkv node, or a truncated answer: ask the next seed
        }
      });
    };
    const request = scheme === 'wss' ? httpsGet(url, caFile ? { ca: readFileSync(caFile) } : {}, onResponse) : httpGet(url, onResponse);
    request.setTimeout(timeoutMs, () => request.destroy());
    request.on('error', () => resolve(undefined));
  });
}

/** The node id `--replace` names; RingkvError when no seed knows such a member in time. */
export async function resolveReplaceTarget(lookup: ReplaceLookup): Promise<string> {
  if (!addressPattern.test(lookup.target)) return lookup.target;
  const clock = lookup.clock ?? systemClock;
  const deadline = clock.monotonicMs() + lookup.timeoutMs;
  for (;;) {
    const views = await Promise.all(lookup.seeds.filter((s) => s !== lookup.target).map((seed) => fetchStatus(seed, lookup.scheme, lookup.caFile, 2_000)));
    for (const view of views) {
      const member = view?.members?.find((m) => m.address === lookup.target && m.status !== 'left');
      if (typeof member?.id === 'string') return member.id;
    }
    if (views.some((v) => v !== undefined) || clock.monotonicMs() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new RingkvError(ErrorCode.unavailable, `--replace ${lookup.target}: no seed (${lookup.seeds.join(', ') || 'none given'}) knows a member at that address`, {
    target: lookup.target,
  });
}
