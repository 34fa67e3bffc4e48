/**
 * The RESP command table: every command this node answers, with Redis's arity, flags and key
 * positions (what COMMAND reports, so redis-cli and cluster-aware clients are content), and
 * COMMAND itself. Anything not in it is answered with Redis's "unknown command" error.
 */

import { Buffer } from 'node:buffer';
import { type RespReply } from '../protocol/resp-reply.js';
import type { CommandContext, CommandRun, CommandSpec } from './command-context.js';
import { expire, persist, ttl } from './expiry-commands.js';
import { ringkvConsistency, ringkvDel, ringkvGet, ringkvPut } from './ringkv-commands.js';
import { auth, client, dbsize, echo, hello, info, ping, quit, select } from './server-commands.js';
import * as strings from './string-commands.js';
import type { Args } from './resp-operations.js';

type Row = [name: string, arity: number, flags: string, firstKey: number, lastKey: number, step: number, run: CommandRun];

const rows: Row[] = [
  ['get', 2, 'readonly fast', 1, 1, 1, strings.get],
  ['set', -3, 'write denyoom', 1, 1, 1, strings.set],
  ['setnx', 3, 'write denyoom fast', 1, 1, 1, strings.setnx],
  ['setex', 4, 'write denyoom', 1, 1, 1, strings.setex('EX', 'setex')],
  ['psetex', 4, 'write denyoom', 1, 1, 1, strings.setex('PX', 'psetex')],
  ['getdel', 2, 'write fast', 1, 1, 1, strings.getdel],
  ['mget', -2, 'readonly fast', 1, -1, 1, strings.mget],
  ['mset', -3, 'write denyoom', 1, -1, 2, strings.mset],
  ['del', -2, 'write', 1, -1, 1, strings.del],
  ['unlink', -2, 'write fast', 1, -1, 1, strings.del],
  ['exists', -2, 'readonly fast', 1, -1, 1, strings.exists],
  ['type', 2, 'readonly fast', 1, 1, 1, strings.type],
  ['strlen', 2, 'readonly fast', 1, 1, 1, strings.strlen],
  ['append', 3, 'write denyoom', 1, 1, 1, strings.append],
  ['incr', 2, 'write denyoom fast', 1, 1, 1, strings.incrBy(1n, 1n)],
  ['decr', 2, 'write denyoom fast', 1, 1, 1, strings.incrBy(-1n, 1n)],
  ['incrby', 3, 'write denyoom fast', 1, 1, 1, strings.incrBy(1n, undefined)],
  ['decrby', 3, 'write denyoom fast', 1, 1, 1, strings.incrBy(-1n, undefined)],
  ['expire', -3, 'write fast', 1, 1, 1, expire(1000, 'expire')],
  ['pexpire', -3, 'write fast', 1, 1, 1, expire(1, 'pexpire')],
  ['persist', 2, 'write fast', 1, 1, 1, persist],
  ['ttl', 2, 'readonly fast', 1, 1, 1, ttl(1000)],
  ['pttl', 2, 'readonly fast', 1, 1, 1, ttl(1)],
  ['ping', -1, 'fast stale', 0, 0, 0, ping],
  ['echo', 2, 'fast', 0, 0, 0, echo],
  ['hello', -1, 'noauth fast', 0, 0, 0, hello],
  ['auth', -2, 'noauth fast', 0, 0, 0, auth],
  ['select', 2, 'loading stale fast', 0, 0, 0, select],
  ['quit', -1, 'noauth fast', 0, 0, 0, quit],
  ['client', -2, 'admin', 0, 0, 0, client],
  ['command', -1, 'loading stale', 0, 0, 0, command],
  ['info', -1, 'loading stale', 0, 0, 0, info],
  ['dbsize', 1, 'readonly fast', 0, 0, 0, dbsize],
  ['config', -2, 'admin loading stale', 0, 0, 0, config],
  ['ringkv.get', 2, 'readonly', 1, 1, 1, ringkvGet],
  ['ringkv.put', -3, 'write denyoom', 1, 1, 1, ringkvPut],
  ['ringkv.del', -2, 'write', 1, 1, 1, ringkvDel],
  ['ringkv.consistency', 2, 'fast', 0, 0, 0, ringkvConsistency],
];

export const commands: ReadonlyMap<string, CommandSpec> = new Map(
  rows.map(([name, arity, flags, firstKey, lastKey, step, run]) => [name, { name, arity, flags: flags.split(' '), firstKey, lastKey, step, run }]),
);

function describe(spec: CommandSpec): RespReply {
  const flags = spec.flags.map((f): RespReply => ({ simple: f }));
  return [Buffer.from(spec.name), spec.arity, flags, spec.firstKey, spec.lastKey, spec.step];
}

/** CONFIG GET answers no parameters (tools such as redis-benchmark ask); nothing is settable. */
function config(_c: CommandContext, args: Args): RespReply {
  if (args[1]!.toString('latin1').toUpperCase() === 'GET') return { map: [] };
  return { error: `ERR CONFIG ${args[1]!.toString('latin1')} is not supported by ringkv` };
}

/** COMMAND, COMMAND COUNT, COMMAND INFO name..., COMMAND DOCS (empty: no docs to offer), COMMAND LIST. */
function command(_c: CommandContext, args: Args): RespReply {
  const sub = args[1]?.toString('latin1').toUpperCase();
  if (sub === undefined) return [...commands.values()].map(describe);
  if (sub === 'COUNT') return commands.size;
  if (sub === 'DOCS') return { map: [] };
  if (sub === 'LIST') return [...commands.keys()].map((name) => Buffer.from(name));
  if (sub === 'INFO') {
    const names = args.length > 2 ? args.slice(2).map((a) => a.toString('latin1').toLowerCase()) : [...commands.keys()];
    return names.map((name) => {
      const spec = commands.get(name);
      return spec === undefined ? null : describe(spec);
    });
  }
  return { error: `ERR unknown subcommand '${args[1]!.toString('latin1')}'. Try COMMAND HELP.` };
}
