/**
 * The RESP expiry commands: EXPIRE, PEXPIRE (with NX|XX|GT|LT), PERSIST, TTL, PTTL. Expiry is
 * part of the stored value (lib/causality read-view.ts): EXPIRE and PERSIST re-write the
 * current value with a new expiry, as read-modify-writes holding the key (key-locks.ts). TTL
 * and PTTL count from the instant this node judges expiry at (its clock plus the skew bound),
 * so what they report is exactly when reads stop showing the value here. Main thread.
 */

import { respError, type RespReply } from '../protocol/resp-reply.js';
import { guarded, parseSafeInteger, upper, type CommandContext } from './command-context.js';
import type { Args } from './resp-operations.js';
import { writeAfter } from './string-commands.js';
import { limits } from '../base/limits.js';

/** EXPIRE key seconds / PEXPIRE key ms [NX|XX|GT|LT]: 1 when the expiry was set. */
export function expire(unitMs: 1000 | 1, name: string) {
  return (c: CommandContext, args: Args): RespReply | Promise<RespReply> => {
    const n = parseSafeInteger(args[2]);
    if (n === undefined) return respError('ERR value is not an integer or out of range');
    if (n * unitMs > limits.ttlMsMax) return respError(`ERR invalid expire time in '${name}' command`);
    const condition = upper(args[3]);
    if (args.length > 4 || (args.length === 4 && !['NX', 'XX', 'GT', 'LT'].includes(condition))) {
      return respError(`ERR Unsupported option ${args[3]?.toString('latin1') ?? ''}`);
    }
    const key = args[1]!;
    const ttlMs = n * unitMs;
    return guarded(
      c.locks.exclusive(key, async () => {
        const before = await c.ops.read(key, c.session.consistency);
        if (before.latest === undefined) return 0;
        const current = before.expiresAtMs === undefined ? Infinity : before.expiresAtMs - c.ops.expiryNowMs();
        if (!conditionHolds(condition, current, ttlMs)) return 0;
        // A non-positive TTL deletes the key, as in Redis.
        await writeAfter(c, key, before, ttlMs <= 0 ? null : before.latest, { ttlMs: ttlMs <= 0 ? undefined : ttlMs });
        return 1;
      }),
    );
  };
}

function conditionHolds(condition: string, currentMs: number, nextMs: number): boolean {
  switch (condition) {
    case 'NX':
      return currentMs === Infinity;
    case 'XX':
      return currentMs !== Infinity;
    case 'GT':
      return currentMs !== Infinity && nextMs > currentMs;
    case 'LT':
      return nextMs < currentMs;
    default:
      return true;
  }
}

export function persist(c: CommandContext, args: Args): Promise<RespReply> {
  const key = args[1]!;
  return guarded(
    c.locks.exclusive(key, async () => {
      const before = await c.ops.read(key, c.session.consistency);
      if (before.latest === undefined || before.expiresAtMs === undefined) return 0;
      await writeAfter(c, key, before, before.latest);
      return 1;
    }),
  );
}

/** TTL (seconds, rounded as Redis does) / PTTL (ms): -2 no key, -1 no expiry. */
export function ttl(unitMs: 1000 | 1) {
  return (c: CommandContext, args: Args): Promise<RespReply> => {
    const key = args[1]!;
    return guarded(
      c.locks.ordered(key, async () => {
        const r = await c.ops.read(key, c.session.consistency);
        if (r.latest === undefined) return -2;
        if (r.expiresAtMs === undefined) return -1;
        const remainingMs = Math.max(0, r.expiresAtMs - c.ops.expiryNowMs());
        return unitMs === 1 ? remainingMs : Math.floor((remainingMs + 500) / 1000);
      }),
    );
  };
}
