/**
 * SET's options (Redis 7: NX|XX, GET, EX|PX|EXAT|PXAT|KEEPTTL) as one parsed value, and the
 * TTL rules shared with SETEX/PSETEX/EXPIRE: relative times count from this node's wall clock;
 * an absolute time already past makes the write a delete (Redis sets the key and expires it at
 * once). Pure.
 */

import type { Buffer } from 'node:buffer';
import { limits } from '../base/limits.js';
import { respError, type RespReply } from '../protocol/resp-reply.js';
import { parseSafeInteger, syntaxError, upper } from './command-context.js';

export interface SetOptions {
  condition: 'NX' | 'XX' | undefined;
  get: boolean;
  keepTtl: boolean;
  /** Relative TTL in ms (EX/PX, or EXAT/PXAT minus now); ≤ 0: already expired. */
  ttlMs: number | undefined;
}

export function invalidExpire(command: string): RespReply {
  return respError(`ERR invalid expire time in '${command}' command`);
}

/** Parses args[3..] of SET; a reply on error. `nowMs`: this node's wall clock. */
const plainSet: SetOptions = Object.freeze({ condition: undefined, get: false, keepTtl: false, ttlMs: undefined });

export function parseSetOptions(args: Buffer[], nowMs: number): SetOptions | RespReply {
  if (args.length === 3) return plainSet;
  const options: SetOptions = { condition: undefined, get: false, keepTtl: false, ttlMs: undefined };
  let expiry: string | undefined;
  for (let i = 3; i < args.length; i++) {
    const option = upper(args[i]);
    if (option === 'NX' || option === 'XX') {
      if (options.condition !== undefined) return syntaxError;
      options.condition = option;
    } else if (option === 'GET') {
      options.get = true;
    } else if (option === 'KEEPTTL') {
      if (expiry !== undefined) return syntaxError;
      expiry = option;
      options.keepTtl = true;
    } else if (option === 'EX' || option === 'PX' || option === 'EXAT' || option === 'PXAT') {
      if (expiry !== undefined || i + 1 >= args.length) return syntaxError;
      expiry = option;
      const ttl = ttlOf(option, args[++i]!, nowMs);
      if (ttl === undefined) return invalidExpire('set');
      options.ttlMs = ttl;
    } else {
      return syntaxError;
    }
  }
  return options;
}

/** The relative TTL in ms of EX/PX/EXAT/PXAT <n>; undefined when n is not a positive integer in range. */
export function ttlOf(unit: string, arg: Buffer, nowMs: number): number | undefined {
  const n = parseSafeInteger(arg);
  if (n === undefined || n <= 0) return undefined;
  const ms = unit === 'EX' || unit === 'EXAT' ? n * 1000 : n;
  if (ms > limits.ttlMsMax) return undefined;
  return unit === 'EXAT' || unit === 'PXAT' ? ms - Math.floor(nowMs) : ms;
}
