/**
 * The RESP handler: looks a command up (command-table.ts), checks its arity and the
 * connection's authentication, and runs it with the node's operations. Main thread; the RESP
 * listener (lib/transport/resp-listener.ts) calls `execute` once per parsed command, in order.
 */

import type { Buffer } from 'node:buffer';
import { respError, type RespReply, type RespWriter } from '../protocol/resp-reply.js';
import type { RespHandler, RespListener, RespSession } from '../transport/resp-listener.js';
import { wrongArity, type CommandContext } from './command-context.js';
import { commands } from './command-table.js';
import { KeyLocks } from './key-locks.js';
import type { RespOperations } from './resp-operations.js';

const noAuth = respError('NOAUTH Authentication required.');
const argsShownMax = 8;

export class RespService implements RespHandler {
  readonly #ops: RespOperations;
  readonly #locks = new KeyLocks();
  readonly #startedMs: number;
  #listener: Pick<RespListener, 'stats' | 'sessions'> | undefined;
  /** Command names as received (often upper case) → lower case, so lookups allocate nothing. */
  readonly #names = new Map<string, string>();

  constructor(ops: RespOperations) {
    this.#ops = ops;
    this.#startedMs = ops.wallMs();
  }

  /** Whether a connection starts authenticated (no client token required). */
  get open(): boolean {
    return this.#ops.clientToken === undefined;
  }

  attach(listener: Pick<RespListener, 'stats' | 'sessions'>): void {
    this.#listener = listener;
  }

  /** A plain GET answered at once into `writer`, from the node's row cache (resp-operations.ts plainRead); false: run it as a command. */
  getInto(session: RespSession, chunk: Uint8Array, start: number, end: number, writer: RespWriter): boolean {
    if (!session.authenticated || session.consistency !== undefined || this.#locks.size > 0) return false;
    const hit = this.#ops.plainRead?.(chunk, start, end);
    if (hit === undefined) return false;
    if (hit.plainLength < 0) writer.nil();
    else writer.bulkRange(hit.arena, hit.plainAt, hit.plainLength);
    return true;
  }

  execute(session: RespSession, args: Buffer[]): RespReply | Promise<RespReply> {
    const raw = args[0]!.toString('latin1');
    let name = this.#names.get(raw);
    if (name === undefined) {
      name = raw.toLowerCase();
      if (this.#names.size < 1024) this.#names.set(raw, name);
    }
    const spec = commands.get(name);
    if (spec === undefined) return unknownCommand(raw, args);
    if (!session.authenticated && !spec.flags.includes('noauth')) return noAuth;
    if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) return wrongArity(name);
    session.lastCommand = name;
    return spec.run(this.#contextOf(session), args);
  }

  /** The connection's command context, made once and kept in its session. */
  #contextOf(session: RespSession): CommandContext {
    let context = session.handlerState as CommandContext | undefined;
    if (context === undefined) {
      context = { session, ops: this.#ops, locks: this.#locks, listener: this.#listener!, startedMs: this.#startedMs };
      session.handlerState = context;
    }
    return context;
  }
}

function unknownCommand(name: string, args: Buffer[]): RespReply {
  const shown = args
    .slice(1, 1 + argsShownMax)
    .map((a) => `'${a.toString('latin1').slice(0, 128)}' `)
    .join('');
  return respError(`ERR unknown command '${name.slice(0, 128)}', with args beginning with: ${shown}`);
}
