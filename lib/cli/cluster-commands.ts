/**
 * `ringkv status | ring | endpoints <key>`: views of the cluster from one node's GET /status
 * (wire.md "Status JSON"), printed like Cassandra's `nodetool status` / `describering` /
 * `getendpoints`.
 *
 * `endpoints` computes the key's preference list itself with lib/ring from the members,
 * partition bits and replication the node reports (the same computation every node and
 * client does), and says so if the node's own owner of that partition differs (a ring
 * change in flight, or a bug).
 *
 * Pure formatting over the status object plus one fetch; owner: the CLI's main thread.
 */

import { limits } from '../base/limits.js';
import { computeRing, partitionOfToken, tokenOf } from '../ring/index.js';
import type { StatusJson, StatusMember } from '../server/index.js';
import { type CliIo, exitError, exitOk, formatBytes, statusUrlOf } from './cli-io.js';
import type { ConnectionFlags } from './kv-commands.js';

const stateLetter = { normal: 'N', joining: 'J', replacing: 'R', leaving: 'L', left: 'X' } as const;

/** nodetool's two letters: U/D (up/down) then N/J/R/L (normal/joining/replacing/leaving). */
export function stateOf(member: StatusMember): string {
  return `${member.up ? 'U' : 'D'}${stateLetter[member.status]}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]! + 2))).join('').trimEnd()).join('\n');
}

function replicationText(replication: StatusJson['replication']): string {
  if (typeof replication === 'number') return `N=${replication}`;
  return Object.entries(replication)
    .map(([dc, n]) => `${dc}:${n}`)
    .join(', ');
}

export function formatStatus(status: StatusJson): string {
  const lines: string[] = [];
  lines.push(`Cluster seen from ${status.node} (${status.address}), ringkv ${status.version}`);
  lines.push(`Partitions: ${2 ** status.partitionBits} (2^${status.partitionBits}), replication ${replicationText(status.replication)}`);
  for (const warning of status.warnings) lines.push(`WARNING: ${warning}`);
  if (status.underReplicated && status.warnings.length === 0) lines.push('WARNING: fewer nodes than the replication asks for: some keys have fewer replicas');
  const transfers = status.transfers;
  if (transfers !== undefined && transfers.phase !== 'idle') {
    lines.push(`Transfers: ${transfers.phase}, ${transfers.done}/${transfers.total} partitions, ${transfers.keys} keys, ${formatBytes(transfers.bytes)}`);
  }
  const dcs = [...new Set(status.members.map((m) => m.dc))].sort();
  for (const dc of dcs) {
    const members = status.members.filter((m) => m.dc === dc && m.status !== 'left').sort((a, b) => (a.address < b.address ? -1 : 1));
    if (members.length === 0) continue;
    lines.push('', `Datacenter: ${dc}`, '='.repeat(12 + dc.length), 'Status=Up/Down', '|/ State=Normal/Leaving/Joining/Replacing');
    const rows = [['--', 'Address', 'Load', 'Owns (effective)', 'Partitions', 'Node', 'Rack']];
    for (const m of members) {
      rows.push([stateOf(m), m.address, formatBytes(m.loadBytes), `${m.ownershipPercent.toFixed(1)}%`, String(m.partitions), m.id, m.rack]);
    }
    lines.push(table(rows));
  }
  return `${lines.join('\n')}\n`;
}

/** Ascending partition numbers as compact ranges: 0-2,5,9-11. */
export function compactRanges(partitions: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < partitions.length; ) {
    let j = i;
    while (j + 1 < partitions.length && partitions[j + 1] === partitions[j]! + 1) j++;
    parts.push(i === j ? `${partitions[i]}` : `${partitions[i]}-${partitions[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Each owner's primary partitions, as compact ranges (`nodetool ring`, without token spam). */
export function formatRing(status: StatusJson): string {
  const owners = status.ring.owners;
  const byOwner = new Map<string, number[]>();
  owners.forEach((owner, partition) => {
    let list = byOwner.get(owner);
    if (list === undefined) byOwner.set(owner, (list = []));
    list.push(partition);
  });
  const tokenSpan = 2 ** (32 - status.partitionBits);
  const lines = [
    `Partitions: ${owners.length} (2^${status.partitionBits}), each ${tokenSpan} tokens: partition p holds tokens [p*${tokenSpan}, (p+1)*${tokenSpan})`,
    `Replication: ${replicationText(status.replication)}; replicas of p are its owner and the next distinct owners clockwise`,
    '',
  ];
  const rows = [['Node', 'Address', 'State', 'Primary', 'Share', 'Partitions']];
  for (const [id, partitions] of [...byOwner].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const member = status.members.find((m) => m.id === id);
    const share = `${((100 * partitions.length) / owners.length).toFixed(1)}%`;
    rows.push([id, member?.address ?? '?', member ? stateOf(member) : '??', String(partitions.length), share, compactRanges(partitions)]);
  }
  lines.push(table(rows));
  return `${lines.join('\n')}\n`;
}

/** The key's token, partition and preference list, computed with lib/ring from the status. */
export function formatEndpoints(status: StatusJson, key: string): string {
  const bytes = new TextEncoder().encode(key);
  const token = tokenOf(bytes);
  const partition = partitionOfToken(token, status.partitionBits);
  const ring = computeRing(status.members, { partitionBits: status.partitionBits, replication: status.replication });
  const replicas = ring.replicasOf(partition);
  const lines = [`key ${JSON.stringify(key)}: token 0x${token.toString(16).padStart(8, '0')}, partition ${partition}`];
  const rows = [['#', 'Node', 'Address', 'State', 'DC', 'Rack']];
  replicas.forEach((id, i) => {
    const m = status.members.find((member) => member.id === id)!;
    rows.push([String(i + 1), id, m.address, stateOf(m), m.dc, m.rack]);
  });
  lines.push(table(rows));
  const reported = status.ring.owners[partition];
  if (reported !== undefined && reported !== replicas[0]) {
    lines.push(`WARNING: ${status.node} reports ${reported} as the owner of partition ${partition} (its ring differs from its members)`);
  }
  return `${lines.join('\n')}\n`;
}

async function statusOf(io: CliIo, conn: ConnectionFlags): Promise<StatusJson> {
  return io.fetchStatus(statusUrlOf(conn.url), {
    ...(conn.token !== undefined ? { token: conn.token } : {}),
    ...(conn.caFile !== undefined ? { caFile: conn.caFile } : {}),
    timeoutMs: conn.timeoutMs ?? limits.clientRequestTimeoutMs,
  });
}

export async function statusCommand(io: CliIo, conn: ConnectionFlags, json: boolean): Promise<number> {
  const status = await statusOf(io, conn);
  io.out(json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  return exitOk;
}

export async function ringCommand(io: CliIo, conn: ConnectionFlags): Promise<number> {
  io.out(formatRing(await statusOf(io, conn)));
  return exitOk;
}

export async function endpointsCommand(io: CliIo, conn: ConnectionFlags, key: string): Promise<number> {
  io.out(formatEndpoints(await statusOf(io, conn), key));
  return exitOk;
}

/** `ringkv hints`: the hints the node at --url holds, per target node. */
export function formatHints(status: StatusJson): string {
  if (status.hints.length === 0) return `${status.node} holds no hints (${status.hintsDelivered} delivered since start)\n`;
  const rows = [['Target', 'Hints', 'Bytes', 'Oldest', 'Skipped partitions']];
  for (const h of status.hints) {
    const age = h.oldestAgeMs === undefined ? '-' : `${Math.round(h.oldestAgeMs / 1000)}s`;
    rows.push([h.target, String(h.hints), String(h.bytes), age, h.skippedPartitions.length === 0 ? '-' : h.skippedPartitions.join(',')]);
  }
  return `Hints held by ${status.node} (${status.hintsDelivered} delivered since start)\n${table(rows)}\n`;
}

export async function hintsCommand(io: CliIo, conn: ConnectionFlags): Promise<number> {
  io.out(formatHints(await statusOf(io, conn)));
  return exitOk;
}

/**
 * `ringkv repair [--partition p]`: asks the node at --url to run a Merkle exchange of every
 * partition it replicates (or one) with each of its up peer replicas, then polls /status and
 * draws a progress bar on stderr until it is done; prints the totals on stdout.
 */
export async function repairCommand(io: CliIo, conn: ConnectionFlags, partition: number | undefined): Promise<number> {
  const base = statusUrlOf(conn.url).replace(/\/status$/, '');
  const options = {
    ...(conn.token !== undefined ? { token: conn.token } : {}),
    ...(conn.caFile !== undefined ? { caFile: conn.caFile } : {}),
    timeoutMs: conn.timeoutMs ?? limits.clientRequestTimeoutMs,
  };
  await io.startRepair(`${base}/repair${partition === undefined ? '' : `?partition=${partition}`}`, options);
  for (;;) {
    const { repair } = (await statusOf(io, conn)).antiEntropy;
    io.err(`\r${progressBar(repair.done, repair.total)} ${repair.done}/${repair.total} exchanges, ${repair.keysRepaired} keys repaired`);
    if (!repair.running) {
      io.err('\n');
      io.out(`repair done: ${repair.done} exchanges, ${repair.keysRepaired} keys repaired\n`);
      return exitOk;
    }
    await io.sleep(250);
  }
}

export function progressBar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? width : Math.min(width, Math.round((done / total) * width));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

function postOptions(conn: ConnectionFlags): { token?: string; caFile?: string; timeoutMs: number } {
  return {
    ...(conn.token !== undefined ? { token: conn.token } : {}),
    ...(conn.caFile !== undefined ? { caFile: conn.caFile } : {}),
    timeoutMs: conn.timeoutMs ?? limits.clientRequestTimeoutMs,
  };
}

/**
 * `ringkv leave`: the node at --url hands its partitions to their new replicas and leaves
 * (POST /leave, answered 202); then polls /status and prints the transfer progress on stderr
 * until the node is gone (its process exits once it has left).
 */
export async function leaveCommand(io: CliIo, conn: ConnectionFlags): Promise<number> {
  const base = statusUrlOf(conn.url).replace(/\/status$/, '');
  // startRepair is CliIo's POST-expecting-202 seam.
  await io.startRepair(`${base}/leave`, postOptions(conn));
  for (;;) {
    const status = await statusOf(io, conn).catch(() => undefined);
    if (status === undefined) break;
    const transfers = status.transfers;
    if (transfers === undefined) break;
    io.err(`\r${progressBar(transfers.done, transfers.total)} ${transfers.done}/${transfers.total} partitions, ${transfers.keys} keys (${transfers.phase})`);
    if (transfers.phase === 'left') break;
    await io.sleep(250);
  }
  io.err('\n');
  io.out('left the cluster\n');
  return exitOk;
}

/** `ringkv removenode <id>`: the node at --url removes a dead member and re-replicates its partitions. */
export async function removeNodeCommand(io: CliIo, conn: ConnectionFlags, id: string): Promise<number> {
  const base = statusUrlOf(conn.url).replace(/\/status$/, '');
  await io.startRepair(`${base}/removenode?id=${encodeURIComponent(id)}`, postOptions(conn));
  io.out(`removed ${id}; its partitions are being re-replicated (see ringkv status --json: transfers)\n`);
  return exitOk;
}

/**
 * `ringkv cleanup` (Cassandra's `nodetool cleanup`): the node at --url drops every partition
 * it no longer replicates, after handing its copies to the current replicas. Answers when
 * done (it may take minutes: the timeout is at least cleanupTimeoutMs).
 */
export async function cleanupCommand(io: CliIo, conn: ConnectionFlags): Promise<number> {
  const base = statusUrlOf(conn.url).replace(/\/status$/, '');
  const options = {
    ...(conn.token !== undefined ? { token: conn.token } : {}),
    ...(conn.caFile !== undefined ? { caFile: conn.caFile } : {}),
    timeoutMs: Math.max(conn.timeoutMs ?? 0, cleanupTimeoutMs),
  };
  const result = (await io.postJson(`${base}/cleanup`, options)) as { dropped?: number[]; entries?: number; kept?: { partition: number; reason: string }[] };
  const dropped = result.dropped ?? [];
  const kept = result.kept ?? [];
  io.out(`cleanup: dropped ${dropped.length} partition(s), ${result.entries ?? 0} entries${dropped.length > 0 ? ` (${compactRanges(dropped)})` : ''}\n`);
  for (const k of kept) io.out(`kept partition ${k.partition}: ${k.reason}\n`);
  return kept.length > 0 ? exitError : exitOk;
}

const cleanupTimeoutMs = 10 * 60_000;
