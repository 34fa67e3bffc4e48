/**
 * `ringkv put | get | del`: one request through the remote client (lib/client) to the node
 * at --url (or RINGKV_URL; default ws://127.0.0.1:7070; host:port accepted).
 *
 * Output (stdout), chosen to be read by people and by `cut`/`sed` alike:
 *   get, one value:     <value>
 *   get, siblings:      1) <value>  2) <value> ... one per line
 *   get, not found:     (not found)                 exit 0, as redis-cli's (nil) and cqlsh's
 *                                                    empty result: absence is an answer
 *   then, when there is one:  context: <base64>      pass back with --context to supersede
 *   put / del:          OK, then context: <base64>
 * `put` and `del` without --context first read the key (at the request's r/consistency) and
 * write with that read's context, as Riak's client does: the write supersedes what the read
 * saw, so two `put`s in a row leave one value (not two siblings), and a delete removes the
 * values instead of adding a tombstone sibling beside them. With --context they supersede
 * exactly what that context saw; `put --blind` writes with no context (a concurrent version:
 * a sibling of whatever is there, unless the cluster is last-writer-wins).
 * Values print as text when they are UTF-8 without control bytes, else as `base64:<...>`;
 * --base64 reads the put value as base64 and prints every value as plain base64.
 *
 * Owner: the CLI process's main thread.
 */

import type { Client, Consistency, RequestOptions } from '../client/index.js';
import { base64Of, type CliIo, exitOk, printable, toBase64, UsageError } from './cli-io.js';

export interface ConnectionFlags {
  url: string;
  token: string | undefined;
  caFile: string | undefined;
  timeoutMs: number | undefined;
}

export interface RequestFlags {
  r?: number;
  w?: number;
  consistency?: string;
  context?: string;
  base64?: boolean;
  /** put: TTL in ms. */
  ttl?: number;
  /** put: write without reading first (no context). */
  blind?: boolean;
}

async function withClient<T>(io: CliIo, flags: ConnectionFlags, run: (client: Client) => Promise<T>): Promise<T> {
  const client = await io.connect([flags.url], {
    ...(flags.token !== undefined ? { token: flags.token } : {}),
    ...(flags.caFile !== undefined ? { caFile: flags.caFile } : {}),
    ...(flags.timeoutMs !== undefined ? { timeoutMs: flags.timeoutMs } : {}),
  });
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}

function requestOptionsOf(flags: RequestFlags, write: boolean): RequestOptions {
  const options: RequestOptions = {};
  if (flags.consistency !== undefined) options.consistency = flags.consistency.toUpperCase() as Consistency;
  if (write) {
    if (flags.w !== undefined) options.w = flags.w;
    if (flags.context !== undefined) options.context = base64Of(flags.context, '--context');
    if (flags.ttl !== undefined) options.ttlMs = flags.ttl;
  } else if (flags.r !== undefined) {
    options.r = flags.r;
  }
  return options;
}

export async function putCommand(io: CliIo, conn: ConnectionFlags, key: string, value: string, flags: RequestFlags): Promise<number> {
  const bytes = flags.base64 ? base64Of(value, 'value') : value;
  const options = requestOptionsOf(flags, true);
  if (flags.blind && flags.context !== undefined) throw new UsageError('--blind and --context cannot be used together');
  const result = await withClient(io, conn, async (client) => {
    if (options.context !== undefined || flags.blind) return client.put(key, bytes, options);
    const read = await client.get(key, requestOptionsOf(flags, false));
    return client.put(key, bytes, read.context.length > 0 ? { ...options, context: read.context } : options);
  });
  io.out('OK\n');
  io.out(`context: ${toBase64(result.context)}\n`);
  return exitOk;
}

export async function deleteCommand(io: CliIo, conn: ConnectionFlags, key: string, flags: RequestFlags): Promise<number> {
  const options = requestOptionsOf(flags, true);
  const result = await withClient(io, conn, async (client) => {
    if (options.context !== undefined) return client.delete(key, options);
    const read = await client.get(key, requestOptionsOf(flags, false));
    return client.delete(key, { ...options, context: read.context });
  });
  io.out('OK\n');
  io.out(`context: ${toBase64(result.context)}\n`);
  return exitOk;
}

export async function getCommand(io: CliIo, conn: ConnectionFlags, key: string, flags: RequestFlags): Promise<number> {
  const options = requestOptionsOf(flags, false);
  const result = await withClient(io, conn, (client) => client.get(key, options));
  const asBase64 = flags.base64 === true;
  if (!result.found || result.values.length === 0) io.out('(not found)\n');
  else if (result.values.length === 1) io.out(`${printable(result.values[0]!, asBase64)}\n`);
  else result.values.forEach((value, i) => io.out(`${i + 1}) ${printable(value, asBase64)}\n`));
  if (result.context.length > 0) io.out(`context: ${toBase64(result.context)}\n`);
  return exitOk;
}
