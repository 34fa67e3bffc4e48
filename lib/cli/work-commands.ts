/**
 * The CLI verbs that start long work on a node and show its progress until it ends —
 * `ringkv repair [--partition p]`, `leave`, `removenode <id>`, `cleanup` — and
 * `ringkv status --watch`, which follows every node's table and the work in progress until
 * Ctrl-C. Each polls GET /status every `cliProgressPollMs` and draws through progress.ts
 * (bars on a terminal, plain periodic lines elsewhere, always on stderr); the final result
 * goes to stdout. Owner: the CLI's main thread.
 */

import { limits } from '../base/limits.js';
import type { StatusJson } from '../server/index.js';
import { type CliIo, exitError, exitOk, statusUrlOf } from './cli-io.js';
import { compactRanges, formatStatus } from './cluster-commands.js';
import type { ConnectionFlags } from './kv-commands.js';
import { Progress, type ProgressItem } from './progress.js';
import { workFiguresOf, workItems } from './work-items.js';

function requestOptions(conn: ConnectionFlags, timeoutMs?: number): { token?: string; caFile?: string; timeoutMs: number } {
  return {
    ...(conn.token !== undefined ? { token: conn.token } : {}),
    ...(conn.caFile !== undefined ? { caFile: conn.caFile } : {}),
    timeoutMs: timeoutMs ?? conn.timeoutMs ?? limits.clientRequestTimeoutMs,
  };
}

function baseOf(conn: ConnectionFlags): string {
  return statusUrlOf(conn.url).replace(/\/status$/, '');
}

function statusOf(io: CliIo, conn: ConnectionFlags): Promise<StatusJson> {
  return io.fetchStatus(statusUrlOf(conn.url), requestOptions(conn));
}

/** Polls the node's status, showing `itemOf(status)` until `finished(status)` (or the node is gone: undefined). */
async function follow(io: CliIo, conn: ConnectionFlags, itemOf: (s: StatusJson) => ProgressItem | undefined, finished: (s: StatusJson) => boolean): Promise<StatusJson | undefined> {
  const progress = new Progress(io);
  let last: ProgressItem | undefined;
  try {
    for (;;) {
      const status = await statusOf(io, conn).catch(() => undefined);
      if (status === undefined) return undefined;
      const item = itemOf(status);
      if (item !== undefined) last = item;
      progress.update(item ? [item] : []);
      if (finished(status)) return status;
      await io.sleep(limits.cliProgressPollMs);
    }
  } finally {
    progress.stop(last ? [last] : []);
  }
}

/** `ringkv repair [--partition p]`: Merkle exchanges of every partition this node replicates (or one) with its peer replicas. */
export async function repairCommand(io: CliIo, conn: ConnectionFlags, partition: number | undefined): Promise<number> {
  await io.startRepair(`${baseOf(conn)}/repair${partition === undefined ? '' : `?partition=${partition}`}`, requestOptions(conn));
  const repairOf = (s: StatusJson): ProgressItem => ({ key: 'repair', what: 'repair', done: s.antiEntropy.repair.done, total: s.antiEntropy.repair.total, unit: 'exchanges' });
  const end = await follow(io, conn, repairOf, (s) => !s.antiEntropy.repair.running);
  const repair = end?.antiEntropy.repair;
  if (repair === undefined) {
    io.err('error: the node stopped answering during the repair\n');
    return exitError;
  }
  io.out(`repair done: ${repair.done} exchanges, ${repair.keysRepaired} keys repaired\n`);
  return exitOk;
}

/** `ringkv leave`: the node at --url hands its partitions to their new replicas and leaves (its process exits). */
export async function leaveCommand(io: CliIo, conn: ConnectionFlags): Promise<number> {
  // startRepair is CliIo's POST-expecting-202 seam.
  await io.startRepair(`${baseOf(conn)}/leave`, requestOptions(conn));
  const leaveOf = (s: StatusJson): ProgressItem | undefined => (s.transfers ? { key: 'leave', what: `leave (${s.transfers.keys} keys)`, done: s.transfers.done, total: s.transfers.total, unit: 'partitions' } : undefined);
  await follow(io, conn, leaveOf, (s) => s.transfers === undefined || s.transfers.phase === 'left');
  io.out('left the cluster\n');
  return exitOk;
}

/** `ringkv removenode <id>`: the node at --url removes a dead member; its partitions are re-replicated. */
export async function removeNodeCommand(io: CliIo, conn: ConnectionFlags, id: string): Promise<number> {
  await io.startRepair(`${baseOf(conn)}/removenode?id=${encodeURIComponent(id)}`, requestOptions(conn));
  const removalOf = (s: StatusJson): ProgressItem | undefined =>
    s.transfers && s.transfers.phase !== 'idle' ? { key: 'removal', what: `re-replicating ${id}`, done: s.transfers.done, total: s.transfers.total, unit: 'partitions' } : undefined;
  const end = await follow(io, conn, removalOf, (s) => s.transfers === undefined || s.transfers.phase === 'idle');
  io.out(end === undefined ? `removed ${id}; the node stopped answering before its partitions were re-replicated\n` : `removed ${id}; its partitions are re-replicated\n`);
  return exitOk;
}

const cleanupTimeoutMs = 10 * 60_000;

/**
 * `ringkv cleanup` (Cassandra's `nodetool cleanup`): the node at --url drops every partition
 * it no longer replicates, after handing its copies to the current replicas. The POST answers
 * when done (at least cleanupTimeoutMs allowed); meanwhile its progress is polled.
 */
export async function cleanupCommand(io: CliIo, conn: ConnectionFlags): Promise<number> {
  let done = false;
  const posted = io.postJson(`${baseOf(conn)}/cleanup`, requestOptions(conn, Math.max(conn.timeoutMs ?? 0, cleanupTimeoutMs))).finally(() => (done = true));
  const cleanupOf = (s: StatusJson): ProgressItem | undefined => {
    const c = s.antiEntropy.cleanup;
    return c ? { key: 'cleanup', what: 'cleanup', done: c.done, total: c.total, unit: 'partitions' } : undefined;
  };
  const following = follow(io, conn, cleanupOf, (s) => done || s.antiEntropy.cleanup?.running === false);
  const result = (await posted) as { dropped?: number[]; entries?: number; kept?: { partition: number; reason: string }[] };
  await following;
  const dropped = result.dropped ?? [];
  const kept = result.kept ?? [];
  io.out(`cleanup: dropped ${dropped.length} partition(s), ${result.entries ?? 0} entries${dropped.length > 0 ? ` (${compactRanges(dropped)})` : ''}\n`);
  for (const k of kept) io.out(`kept partition ${k.partition}: ${k.reason}\n`);
  return kept.length > 0 ? exitError : exitOk;
}

/** `ringkv status --watch`: the status table whenever it changes, and a bar per piece of work, until Ctrl-C. */
export async function watchStatusCommand(io: CliIo, conn: ConnectionFlags): Promise<number> {
  let stopped = false;
  void io.waitForSignal().then(() => (stopped = true));
  const progress = new Progress(io);
  let shown = '';
  try {
    while (!stopped) {
      const status = await statusOf(io, conn).catch((error: unknown) => error as Error);
      const text = status instanceof Error ? `${conn.url} does not answer: ${status.message}\n` : formatStatus(status);
      if (text !== shown) {
        progress.log(progress.isTerminal ? `\n${new Date().toISOString()}\n${text}` : text);
        shown = text;
      }
      progress.update(status instanceof Error ? [] : workItems(workFiguresOf(status)));
      await io.sleep(limits.cliProgressPollMs);
    }
  } finally {
    progress.stop();
  }
  return exitOk;
}
