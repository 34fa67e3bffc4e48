/**
 * Real clusters (issue 4 §6): nodes as child processes on 127.0.0.1 talking over WebSockets,
 * driven by the remote client. Every operation is recorded as invoke/ok/fail/indeterminate
 * and the history is checked (RELIABILITY.md §5): with R+W>N a read invoked after a write's
 * acknowledgement returns that write or a later one of the same key. Each test is bounded
 * and stops its processes in teardown.
 */

import t, { type Test } from 'tap';
import { connect, type Client } from '../lib/client/index.js';
import { isRingkvError } from '../lib/base/errors.js';
import { Cluster, type ClusterOptions } from './fixtures/cluster.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

async function startCluster(t: Test, options: ClusterOptions): Promise<Cluster> {
  const cluster = new Cluster(options);
  t.teardown(() => cluster.stop());
  try {
    await cluster.start();
  } catch (error) {
    for (const node of cluster.nodes) t.comment(`node ${node.index} stderr: ${node.stderr.slice(-2000)}`);
    throw error;
  }
  return cluster;
}

interface HistoryOp {
  key: string;
  kind: 'write' | 'read';
  /** Sequence number of the write within its key (writes), or the values read (reads). */
  seq?: number;
  values?: string[];
  invokedMs: number;
  completedMs: number;
  outcome: 'ok' | 'fail' | 'indeterminate';
}

/**
 * One writer per key writing v1, v2, ... sequentially (read-modify-write with contexts), many
 * readers: a read invoked after write k of its key was acknowledged must return a value with
 * sequence >= k. Returns the violations.
 */
function checkHistory(history: HistoryOp[]): string[] {
  const problems: string[] = [];
  const writes = new Map<string, HistoryOp[]>();
  for (const op of history) if (op.kind === 'write' && op.outcome === 'ok') (writes.get(op.key) ?? writes.set(op.key, []).get(op.key)!).push(op);
  for (const read of history) {
    if (read.kind !== 'read' || read.outcome !== 'ok') continue;
    const acked = (writes.get(read.key) ?? []).filter((w) => w.completedMs < read.invokedMs);
    if (acked.length === 0) continue;
    const floor = Math.max(...acked.map((w) => w.seq!));
    const seen = (read.values ?? []).map((v) => Number(v.split(':')[1]));
    if (!seen.some((s) => s >= floor)) problems.push(`${read.key}: read at ${read.invokedMs} saw [${seen}] after v${floor} was acknowledged`);
  }
  return problems;
}

async function writerLoop(client: Client, key: string, rounds: number, history: HistoryOp[], clock: () => number): Promise<void> {
  let context: Uint8Array | undefined;
  for (let seq = 1; seq <= rounds; seq++) {
    const op: HistoryOp = { key, kind: 'write', seq, invokedMs: clock(), completedMs: 0, outcome: 'ok' };
    try {
      const written = await client.put(key, `${key}:${seq}`, context ? { context } : {});
      context = written.context;
    } catch (error) {
      op.outcome = isRingkvError(error, 'KV_UNAVAILABLE') ? 'fail' : 'indeterminate';
      context = undefined;
    }
    op.completedMs = clock();
    history.push(op);
  }
}

async function readerLoop(client: Client, keys: string[], rounds: number, history: HistoryOp[], clock: () => number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    const key = keys[i % keys.length]!;
    const op: HistoryOp = { key, kind: 'read', invokedMs: clock(), completedMs: 0, outcome: 'ok' };
    try {
      const result = await client.get(key);
      op.values = result.values.map(text);
    } catch {
      op.outcome = 'fail';
    }
    op.completedMs = clock();
    history.push(op);
  }
}

t.test('three nodes converge, and every acknowledged write is read back with R+W>N under concurrent clients', async (t) => {
  const cluster = await startCluster(t, { nodes: 3, secret: 'test-secret' });
  const status = await cluster.status(1);
  t.equal(status.members.length, 3, 'every node is a member');
  t.ok(status.members.every((m) => m.up && m.status === 'normal'), 'all up and normal');
  t.equal(Math.round(status.members.reduce((sum, m) => sum + m.ownershipPercent, 0)), 300, 'effective ownership sums to N x 100%');

  const clients = await Promise.all(cluster.urls.map((url) => connect([url])));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const history: HistoryOp[] = [];
  const clock = (): number => performance.now();
  const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
  await Promise.all([
    ...keys.map((key, i) => writerLoop(clients[i % 3]!, key, 15, history, clock)),
    ...clients.map((client) => readerLoop(client, keys, 60, history, clock)),
  ]);
  const okWrites = history.filter((op) => op.kind === 'write' && op.outcome === 'ok').length;
  t.equal(okWrites, keys.length * 15, 'every write was acknowledged on a healthy cluster');
  t.same(checkHistory(history), [], 'no read missed an acknowledged write');
  for (const key of keys) {
    const result = await clients[2]!.get(key, { consistency: 'ALL' });
    t.same(result.values.map(text), [`${key}:15`], `${key}: one value, the last write, on all replicas`);
  }
});

t.test('concurrent blind writes become siblings; a stale context makes a sibling, not an overwrite', async (t) => {
  const cluster = await startCluster(t, { nodes: 3 });
  const [a, b] = await Promise.all([connect([cluster.urls[0]!]), connect([cluster.urls[1]!])]);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await Promise.all([a.put('blind', 'from-a'), b.put('blind', 'from-b')]);
  const both = await a.get('blind', { consistency: 'ALL' });
  t.same(both.values.map(text).sort(), ['from-a', 'from-b'], 'two blind writes are two siblings');
  const resolved = await a.put('blind', 'merged', { context: both.context });
  t.same((await b.get('blind')).values.map(text), ['merged'], 'a put with the read context supersedes both');

  const read = await a.get('blind');
  await b.put('blind', 'newer', { context: read.context });
  await a.put('blind', 'stale-writer', { context: resolved.context });
  const after = await b.get('blind', { consistency: 'ALL' });
  t.same(after.values.map(text).sort(), ['newer', 'stale-writer'], 'the stale context did not overwrite the newer value');
});

t.test('SIGKILL of a node during writes at W=2 loses no acknowledged write after restart', async (t) => {
  const cluster = await startCluster(t, { nodes: 3, secret: 's' });
  const client = await connect(cluster.urls, { timeoutMs: 5_000 });
  t.teardown(() => client.close());
  const acked = new Map<string, string>();
  let stop = false;
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const key = `kill-${w}-${i}`;
      try {
        await client.put(key, `v-${w}-${i}`, { w: 2 });
        acked.set(key, `v-${w}-${i}`);
      } catch {
        // Failed or indeterminate: not acknowledged, so not checked.
      }
    }
  });
  await new Promise((r) => setTimeout(r, 700));
  await cluster.kill(2);
  await new Promise((r) => setTimeout(r, 700));
  stop = true;
  await Promise.all(writers);
  t.ok(acked.size > 50, `writes were acknowledged (${acked.size})`);
  await cluster.startNode(2);
  await cluster.waitConverged(3);
  const reader = await connect([cluster.urls[2]!]);
  t.teardown(() => reader.close());
  const missing: string[] = [];
  for (const [key, value] of acked) {
    const result = await reader.get(key, { r: 2 });
    if (!result.values.map(text).includes(value)) missing.push(key);
  }
  t.same(missing, [], `all ${acked.size} acknowledged writes are read back at R=2 after the restart`);
});

t.test('a node without the cluster secret is refused and never appears in membership', async (t) => {
  const cluster = await startCluster(t, { nodes: 2, secret: 'right-secret' });
  await cluster.startNode(2, { secret: 'wrong-secret', seeds: [cluster.nodes[0]!.address] });
  await cluster.startNode(3, { secret: undefined, seeds: [cluster.nodes[0]!.address] });
  await new Promise((r) => setTimeout(r, 1_500));
  for (const index of [0, 1]) {
    const status = await cluster.status(index);
    t.same(status.members.map((m) => m.id).sort(), [cluster.nodes[0]!.id, cluster.nodes[1]!.id].sort(), `node ${index} knows only the two members with the secret`);
  }
  const rogue = await cluster.status(2);
  t.equal(rogue.members.filter((m) => m.up).length, 1, 'the node with the wrong secret met nobody');
  t.match(cluster.nodes[2]!.stderr, /refused|KV_AUTH|authentication/i, 'it logged why');
});
