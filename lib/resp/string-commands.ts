/**
 * The RESP string commands over the coordinator: GET, SET (all options), SETNX, SETEX,
 * PSETEX, GETDEL, MGET, MSET, DEL, UNLINK, EXISTS, TYPE, STRLEN, APPEND, INCR, DECR, INCRBY,
 * DECRBY. Main thread.
 *
 * Versions: a key may hold concurrent siblings (Dynamo). GET shows one — the newest live one
 * by the coordinators' clocks (`latest`, lib/causality read-view.ts). Plain SET and DEL
 * supersede everything the coordinating replica holds (`overwrite`), so repeated SETs never
 * pile up siblings. Read-modify-writes (INCR, APPEND, SET NX|XX|GET, GETDEL, SETNX) read at the
 * connection's consistency, then write with that read's context while holding the key
 * (key-locks.ts): through one node they are exact; concurrent writers through other nodes can
 * make siblings, and GET then shows the newest (an increment can be lost).
 */

import { Buffer } from 'node:buffer';
import { ok, respError, type RespReply } from '../protocol/resp-reply.js';
import { answer, guarded, isInt64, notInteger, parseInteger, syntaxError, wrongArity, type CommandContext } from './command-context.js';
import type { Args, RespRead } from './resp-operations.js';
import { invalidExpire, parseSetOptions, ttlOf, type SetOptions } from './set-options.js';

const stringType: RespReply = Object.freeze({ simple: 'string' });
const noneType: RespReply = Object.freeze({ simple: 'none' });

function read(c: CommandContext, key: Buffer): Promise<RespRead> {
  return c.ops.read(key, c.session.consistency);
}

/** A plain write: supersedes what the coordinating replica holds. */
function overwrite(c: CommandContext, key: Buffer, value: Uint8Array | null, ttlMs?: number, keepTtl = false): Promise<{ context: Uint8Array }> {
  if (value !== null && ttlMs !== undefined && ttlMs <= 0) value = null; // an absolute expiry already past
  return c.ops.write(key, value, { overwrite: true, ttlMs: value === null ? undefined : ttlMs, keepTtl: value !== null && keepTtl, consistency: c.session.consistency });
}

/** A read-modify-write's write: supersedes what its read saw. */
export function writeAfter(c: CommandContext, key: Buffer, seen: RespRead, value: Uint8Array | null, options: { ttlMs?: number | undefined; keepTtl?: boolean } = {}): Promise<{ context: Uint8Array }> {
  return c.ops.write(key, value, { context: seen.context, ttlMs: options.ttlMs, keepTtl: options.keepTtl === true, consistency: c.session.consistency });
}

const latestOf = (r: RespRead): RespReply => r.latest ?? null;
const okOf = (): RespReply => ok;

/**
 * GET answered in this turn, without a promise, when the node can (a hot key on its only
 * replica: resp-operations.ts readNow) and no read-modify-write holds a key; else undefined.
 * The command below and the listener's plain-GET path (resp-service.ts) both ask it.
 */
export function getNow(c: Pick<CommandContext, 'ops' | 'locks' | 'session'>, key: Uint8Array): RespReply | undefined {
  if (c.locks.size > 0) return undefined;
  if (c.session.consistency === undefined && c.ops.plainRead !== undefined) {
    const hit = c.ops.plainRead(key, 0, key.length);
    // A copy: the reply may wait behind earlier ones, and the cache's bytes may move meanwhile.
    if (hit !== undefined) return hit.plainLength < 0 ? null : Buffer.from(hit.arena.subarray(hit.plainAt, hit.plainAt + hit.plainLength));
  }
  const now = c.ops.readNow?.(key, c.session.consistency);
  return now === undefined ? undefined : (now.latest ?? null);
}

export function get(c: CommandContext, args: Args): RespReply | Promise<RespReply> {
  const key = args[1]!;
  const now = getNow(c, key);
  if (now !== undefined) return now;
  if (c.locks.size === 0) return answer(read(c, key), latestOf);
  return answer(c.locks.ordered(key, () => read(c, key)), latestOf);
}

export function set(c: CommandContext, args: Args): RespReply | Promise<RespReply> {
  const parsed = parseSetOptions(args, c.ops.wallMs());
  if (!isSetOptions(parsed)) return parsed;
  const key = args[1]!;
  const value = args[2]!;
  if (parsed.condition === undefined && !parsed.get) {
    if (c.locks.size === 0) return answer(overwrite(c, key, value, parsed.ttlMs, parsed.keepTtl), okOf);
    return answer(c.locks.ordered(key, () => overwrite(c, key, value, parsed.ttlMs, parsed.keepTtl)), okOf);
  }
  return guarded(c.locks.exclusive(key, () => conditionalSet(c, key, value, parsed)));
}

function isSetOptions(parsed: SetOptions | RespReply): parsed is SetOptions {
  return typeof parsed === 'object' && parsed !== null && 'get' in parsed && 'condition' in parsed;
}

async function conditionalSet(c: CommandContext, key: Buffer, value: Buffer, options: SetOptions): Promise<RespReply> {
  const before = await read(c, key);
  const exists = before.latest !== undefined;
  const refused = (options.condition === 'NX' && exists) || (options.condition === 'XX' && !exists);
  if (!refused) {
    const expired = options.ttlMs !== undefined && options.ttlMs <= 0;
    await writeAfter(c, key, before, expired ? null : value, { ttlMs: expired ? undefined : options.ttlMs, keepTtl: options.keepTtl });
  }
  if (options.get) return before.latest ?? null;
  return refused ? null : ok;
}

export function setnx(c: CommandContext, args: Args): Promise<RespReply> {
  const key = args[1]!;
  return guarded(
    c.locks.exclusive(key, async () => {
      const before = await read(c, key);
      if (before.latest !== undefined) return 0;
      await writeAfter(c, key, before, args[2]!);
      return 1;
    }),
  );
}

/** SETEX key seconds value / PSETEX key ms value. */
export function setex(unit: 'EX' | 'PX', name: string) {
  return (c: CommandContext, args: Args): RespReply | Promise<RespReply> => {
    const ttlMs = ttlOf(unit, args[2]!, 0);
    if (ttlMs === undefined) return invalidExpire(name);
    const key = args[1]!;
    return guarded(c.locks.ordered(key, () => overwrite(c, key, args[3]!, ttlMs)).then(() => ok));
  };
}

export function getdel(c: CommandContext, args: Args): Promise<RespReply> {
  const key = args[1]!;
  return guarded(
    c.locks.exclusive(key, async () => {
      const before = await read(c, key);
      if (before.latest === undefined) return null;
      await writeAfter(c, key, before, null);
      return before.latest;
    }),
  );
}

export function mget(c: CommandContext, args: Args): Promise<RespReply> {
  const reads = args.slice(1).map((key) => c.locks.ordered(key, () => read(c, key)).then((r) => r.latest ?? null));
  return guarded(Promise.all(reads));
}

export function mset(c: CommandContext, args: Args): RespReply | Promise<RespReply> {
  if (args.length % 2 !== 1) return wrongArity('mset');
  const writes: Promise<unknown>[] = [];
  for (let i = 1; i < args.length; i += 2) writes.push(c.locks.ordered(args[i]!, () => overwrite(c, args[i]!, args[i + 1]!)));
  return guarded(Promise.all(writes).then(() => ok));
}

/** DEL / UNLINK: the number of keys that existed. */
export function del(c: CommandContext, args: Args): Promise<RespReply> {
  const deletes = args.slice(1).map((key) =>
    c.locks.exclusive(key, async () => {
      const before = await read(c, key);
      if (before.latest === undefined) return 0;
      await writeAfter(c, key, before, null);
      return 1;
    }),
  );
  return guarded(Promise.all(deletes).then((found) => found.reduce<number>((sum, n) => sum + n, 0)));
}

export function exists(c: CommandContext, args: Args): Promise<RespReply> {
  const reads = args.slice(1).map((key) => c.locks.ordered(key, () => read(c, key)).then((r) => (r.latest === undefined ? 0 : 1)));
  return guarded(Promise.all(reads).then((found) => found.reduce<number>((sum, n) => sum + n, 0)));
}

export function type(c: CommandContext, args: Args): Promise<RespReply> {
  const key = args[1]!;
  return guarded(c.locks.ordered(key, () => read(c, key)).then((r) => (r.latest === undefined ? noneType : stringType)));
}

export function strlen(c: CommandContext, args: Args): Promise<RespReply> {
  const key = args[1]!;
  return guarded(c.locks.ordered(key, () => read(c, key)).then((r) => r.latest?.length ?? 0));
}

/** APPEND keeps the key's TTL, as in Redis. */
export function append(c: CommandContext, args: Args): Promise<RespReply> {
  const key = args[1]!;
  return guarded(
    c.locks.exclusive(key, async () => {
      const before = await read(c, key);
      const value = before.latest === undefined ? args[2]! : Buffer.concat([before.latest, args[2]!]);
      await writeAfter(c, key, before, value, { keepTtl: true });
      return value.length;
    }),
  );
}

/** INCR / DECR (delta fixed) and INCRBY / DECRBY (delta from args[2]); the TTL is kept. */
export function incrBy(sign: 1n | -1n, fixed: bigint | undefined) {
  return (c: CommandContext, args: Args): RespReply | Promise<RespReply> => {
    const delta = fixed ?? parseInteger(args[2]);
    if (delta === undefined) return notInteger;
    const key = args[1]!;
    return guarded(
      c.locks.exclusive(key, async () => {
        const before = await read(c, key);
        const current = before.latest === undefined ? 0n : parseInteger(before.latest);
        if (current === undefined) return notInteger;
        const next = current + sign * delta;
        if (!isInt64(next)) return respError('ERR increment or decrement would overflow');
        await writeAfter(c, key, before, Buffer.from(next.toString(), 'latin1'), { keepTtl: true });
        return next;
      }),
    );
  };
}

export { syntaxError };
