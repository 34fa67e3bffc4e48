/**
 * The RESP connection and server commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, CLIENT
 * (SETNAME, GETNAME, ID, INFO, LIST, SETINFO), INFO and DBSIZE. COMMAND lives with the table
 * (command-table.ts). Main thread.
 *
 * AUTH: when the node requires a client token (`clientToken`), a connection must AUTH (or
 * HELLO ... AUTH) before anything but HELLO, AUTH and QUIT; the token is the password, the
 * user name (if given) must be `default`. Compared in constant time.
 */

import { Buffer } from 'node:buffer';
import { tokensEqual } from '../transport/index.js';
import { ok, pong, respError, type RespReply } from '../protocol/resp-reply.js';
import { guarded, syntaxError, upper, wrongArity, type CommandContext } from './command-context.js';
import type { Args } from './resp-operations.js';
import type { RespSession } from '../transport/resp-listener.js';

const wrongPass = respError('WRONGPASS invalid username-password pair or user is disabled.');

export function ping(_c: CommandContext, args: Args): RespReply {
  if (args.length > 2) return wrongArity('ping');
  return args.length === 2 ? args[1]! : pong;
}

export function echo(_c: CommandContext, args: Args): RespReply {
  return args[1]!;
}

export function select(_c: CommandContext, args: Args): RespReply {
  return args[1]!.toString('latin1') === '0' ? ok : respError('ERR DB index is out of range');
}

export function quit(c: CommandContext): RespReply {
  c.session.closeAfterReply();
  return ok;
}

/** Checks AUTH [user] password; true when accepted. */
function authenticate(c: CommandContext, user: Buffer | undefined, password: Buffer): RespReply | true {
  const token = c.ops.clientToken;
  if (token === undefined) {
    return respError('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
  }
  if (user !== undefined && user.toString('utf8') !== 'default') return wrongPass;
  if (!tokensEqual(token, password.toString('utf8'))) return wrongPass;
  c.session.authenticated = true;
  return true;
}

export function auth(c: CommandContext, args: Args): RespReply {
  if (args.length > 3) return syntaxError;
  const result = args.length === 3 ? authenticate(c, args[1], args[2]!) : authenticate(c, undefined, args[1]!);
  return result === true ? ok : result;
}

/** HELLO [protover [AUTH user pass] [SETNAME name]]. */
export function hello(c: CommandContext, args: Args): RespReply {
  let protocol = c.session.protocol;
  let i = 1;
  if (args.length > 1) {
    const version = args[1]!.toString('latin1');
    if (version !== '2' && version !== '3') return respError('NOPROTO unsupported protocol version');
    protocol = version === '3' ? 3 : 2;
    i = 2;
  }
  let name: string | undefined;
  for (; i < args.length; i++) {
    const option = upper(args[i]);
    if (option === 'AUTH' && i + 2 < args.length) {
      const result = authenticate(c, args[i + 1], args[i + 2]!);
      if (result !== true) return result;
      i += 2;
    } else if (option === 'SETNAME' && i + 1 < args.length) {
      name = args[++i]!.toString('utf8');
    } else {
      return respError(`ERR Syntax error in HELLO option '${args[i]!.toString('latin1')}'`);
    }
  }
  if (!c.session.authenticated) return respError('NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time');
  c.session.protocol = protocol;
  if (name !== undefined) c.session.name = name;
  const info = c.ops.info();
  return {
    map: [
      [text('server'), text('ringkv')],
      [text('version'), text(info.version)],
      [text('proto'), protocol],
      [text('id'), c.session.id],
      [text('mode'), text('cluster')],
      [text('role'), text('master')],
      [text('modules'), []],
    ],
  };
}

function text(value: string): Buffer {
  return Buffer.from(value, 'utf8');
}

export function clientInfoLine(session: RespSession, nowMs: number): string {
  const ageS = Math.floor((nowMs - session.createdMs) / 1000);
  return `id=${session.id} addr=${session.remoteAddress} name=${session.name ?? ''} age=${ageS} db=0 resp=${session.protocol} cmd=${session.lastCommand}`;
}

export function client(c: CommandContext, args: Args): RespReply {
  const sub = upper(args[1]);
  switch (sub) {
    case 'SETNAME': {
      if (args.length !== 3) return wrongArity('client|setname');
      const name = args[2]!.toString('utf8');
      if (/[\s]/.test(name)) return respError('ERR Client names cannot contain spaces, newlines or special characters.');
      c.session.name = name === '' ? undefined : name;
      return ok;
    }
    case 'GETNAME':
      return c.session.name === undefined ? null : text(c.session.name);
    case 'ID':
      return c.session.id;
    case 'INFO':
      return text(`${clientInfoLine(c.session, c.ops.wallMs())}\n`);
    case 'LIST':
      return text(c.listener.sessions().map((s) => `${clientInfoLine(s, c.ops.wallMs())}\n`).join(''));
    case 'SETINFO':
      return ok;
    default:
      return respError(`ERR unknown subcommand '${args[1]?.toString('latin1') ?? ''}'. Try CLIENT HELP.`);
  }
}

export function dbsize(c: CommandContext): Promise<RespReply> {
  return guarded(c.ops.estimateKeys().then((n) => Math.round(n)));
}

/** INFO [section ...]: server, clients, memory, stats, keyspace (default: all of them). */
export function info(c: CommandContext, args: Args): Promise<RespReply> {
  const wanted = new Set(args.slice(1).map((a) => a.toString('latin1').toLowerCase()));
  const all = wanted.size === 0 || wanted.has('all') || wanted.has('everything') || wanted.has('default');
  const show = (section: string): boolean => all || wanted.has(section);
  return guarded(
    (show('keyspace') ? c.ops.estimateKeys() : Promise.resolve(0)).then((keys) => {
      const node = c.ops.info();
      const memory = process.memoryUsage();
      const lines: string[] = [];
      if (show('server')) {
        lines.push('# Server', 'redis_version:7.0.0', `ringkv_version:${node.version}`, `ringkv_node_id:${node.nodeId}`, 'redis_mode:cluster');
        lines.push(`process_id:${process.pid}`, `tcp_port:${node.tcpPort}`, `uptime_in_seconds:${Math.floor(node.uptimeMs / 1000)}`, '');
      }
      if (show('clients')) lines.push('# Clients', `connected_clients:${c.listener.stats.connections}`, `rejected_connections:${c.listener.stats.rejectedConnections}`, '');
      if (show('memory')) lines.push('# Memory', `used_memory:${memory.heapUsed}`, `used_memory_rss:${memory.rss}`, `ringkv_load_bytes:${node.loadBytes}`, '');
      if (show('stats')) {
        lines.push('# Stats', `total_connections_received:${c.listener.stats.connectionsTotal}`, `total_commands_processed:${c.listener.stats.commands}`);
        lines.push(`protocol_errors:${c.listener.stats.protocolErrors}`, '');
      }
      if (show('replication')) lines.push('# Replication', 'role:master', `ringkv_members:${node.members}`, `ringkv_members_up:${node.membersUp}`, `ringkv_n:${node.replication.n}`, '');
      if (show('keyspace')) lines.push('# Keyspace', `db0:keys=${Math.round(keys)},expires=0,avg_ttl=0`, '');
      if (show('persistence')) lines.push('# Persistence', 'loading:0', '');
      return text(lines.join('\r\n'));
    }),
  );
}
