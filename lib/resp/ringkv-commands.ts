/**
 * ringkv's own RESP commands, for clients that want Dynamo's full control:
 *   RINGKV.GET key                → [context, [value, ...]]  every live sibling, and the
 *                                   context to pass back (empty context: never written)
 *   RINGKV.PUT key value [context] → context   supersedes exactly what the context saw (no
 *                                   context: a blind write, concurrent with what is there)
 *   RINGKV.DEL key [context]      → context
 *   RINGKV.CONSISTENCY ONE|TWO|THREE|QUORUM|ALL|LOCAL_QUORUM|EACH_QUORUM|DEFAULT → OK
 *                                   this connection's level for every read and write
 * Main thread.
 */

import { consistencyLevels } from '../replication/index.js';
import { ok, respError, type RespReply } from '../protocol/resp-reply.js';
import { guarded, upper, wrongArity, type CommandContext } from './command-context.js';
import type { Args } from './resp-operations.js';

export function ringkvGet(c: CommandContext, args: Args): Promise<RespReply> {
  const key = args[1]!;
  return guarded(c.locks.ordered(key, () => c.ops.read(key, c.session.consistency)).then((r): RespReply => [r.context, r.values]));
}

export function ringkvPut(c: CommandContext, args: Args): RespReply | Promise<RespReply> {
  if (args.length > 4) return wrongArity('ringkv.put');
  const key = args[1]!;
  const context = args[3];
  const write = (): Promise<{ context: Uint8Array }> => c.ops.write(key, args[2]!, { context: context?.length ? context : undefined, consistency: c.session.consistency });
  return guarded(c.locks.ordered(key, write).then((r) => r.context));
}

export function ringkvDel(c: CommandContext, args: Args): RespReply | Promise<RespReply> {
  if (args.length > 3) return wrongArity('ringkv.del');
  const key = args[1]!;
  const context = args[2];
  return guarded(
    c.locks.ordered(key, () => c.ops.write(key, null, { context: context?.length ? context : undefined, consistency: c.session.consistency })).then((r) => r.context),
  );
}

export function ringkvConsistency(c: CommandContext, args: Args): RespReply {
  const level = upper(args[1]);
  if (level === 'DEFAULT') {
    c.session.consistency = undefined;
    return ok;
  }
  if (!(consistencyLevels as readonly string[]).includes(level)) return respError(`ERR consistency must be one of ${consistencyLevels.join(', ')} or DEFAULT`);
  c.session.consistency = level;
  return ok;
}
