/**
 * Handoff benchmarks (issue 5 §6; PERF.md): ringkv nodes as child processes on loopback (the
 * multi-process test fixture test/fixtures/cluster.ts: `node-process.js '<json NodeOptions>'`,
 * fresh temp dirs, fsync per group commit, N=3 W=2 R=2, gossip every 100 ms, scheduled
 * anti-entropy off so only the measured work runs). Three measurements:
 *
 *  1. hints — 4 nodes, one SIGKILLed; K keys written pipelined through the other three, so
 *     stand-ins hold hints for it; it restarts, and we time from its ready line until every
 *     node's /status shows 0 hints: hints/s and MB/s (hint bytes as /status counts them). The
 *     total includes the failure detector noticing the node up and the 1 s delivery tick
 *     (limits.hintDeliveryIntervalMs); "after seen up" excludes the detection.
 *  2. join — 3 nodes holding D keys; a 4th starts with seeds; we time from its ready line until
 *     its /status shows transfers done (phase idle, done = total) and itself normal: MB/s and
 *     keys/s over transfers.bytes / transfers.keys; "streaming" is the time until it left the
 *     `joining` phase (the pull itself, before the catch-up sync).
 *  3. p99 — a steady load (50% get / 50% put with the last context, uniform keys, fixed
 *     in-flight) against 3 nodes: idle, then while `POST /repair` runs on every node (kept
 *     running for the whole window, after writing divergent keys while one node was down, on a
 *     key range the load does not touch, so read repair cannot fix them first), idle again,
 *     then while a 4th node joins: that window lasts at least --seconds and until the joiner is
 *     normal and caught up, so pacing cannot push join work past it; then idle once more on
 *     the 4 nodes (the steady state the join leads to: a 4th process on the same cores, and
 *     requests that reach a non-replica are forwarded). After an unmeasured warm-up. Idle
 *     p99 is the mean of the two 3-node idle windows' p99s (drift shows as their difference).
 *     Goal (issue 5): busy p99 < 1.2 x idle p99.
 *
 *   npm run bench -- handoff [--phases hints,join,p99] [--hint-keys 10000] [--hint-value 100]
 *                            [--join-keys 25000] [--join-value 1024] [--records 20000]
 *                            [--diverge-keys 5000] [--seconds 10] [--inflight 64]
 *                            [--connections 4] [--shards 1] [--rounds 3] [--record yes|no]
 *
 * Rounds (PERF.md "Method"): each round runs every phase on fresh clusters, in order, and prints
 * its figures; the summary gives the median of each figure over the rounds, and the p99
 * increases as the median of the per-round ratios (each round against its own idle baseline).
 *
 * Default run: about 6 minutes on 2 cores (3 rounds; longer when the join under load is slow).
 * The load generator shares the two cores with the nodes, so phase 3 measures how much
 * background work steals from the foreground, not capacity.
 * Timing is polled over HTTP every 50 ms: durations are ±50 ms.
 */
import { connect, type Client } from '../lib/client/index.js';
import type { StatusJson } from '../lib/supervisor/index.js';
import { Cluster } from '../test/fixtures/cluster.js';
import { closedLoop, formatRow, keyBytes, Latencies, measurement, type Measurement, median, printMachine, randomIndices, recordResult, valueBytes } from './harness.js';

export interface HandoffBenchOptions {
  phases: string[];
  hintKeys: number;
  hintValueBytes: number;
  joinKeys: number;
  joinValueBytes: number;
  records: number;
  divergeKeys: number;
  seconds: number;
  inFlight: number;
  connections: number;
  shards: number;
  rounds: number;
  record: boolean;
}

const pollMs = 50;
const secret = 'ringkv-bench-handoff';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nowMs = (): number => performance.now();
const mb = (bytes: number): number => bytes / 1e6;

function flagsOf(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) if (argv[i]!.startsWith('--')) out.set(argv[i]!.slice(2), argv[i + 1] ?? '');
  return out;
}

export function handoffOptionsOf(argv: string[]): HandoffBenchOptions {
  const f = flagsOf(argv);
  const num = (k: string, d: number): number => {
    const v = f.has(k) ? Number(f.get(k)) : d;
    if (!Number.isFinite(v) || v <= 0) throw new RangeError(`--${k} must be a positive number`);
    return v;
  };
  const phases = (f.get('phases') ?? 'hints,join,p99').split(',').filter((s) => s !== '');
  for (const p of phases) if (!['hints', 'join', 'p99'].includes(p)) throw new RangeError(`--phases takes a list of hints, join, p99; got ${p}`);
  return {
    phases,
    hintKeys: num('hint-keys', 10_000),
    hintValueBytes: num('hint-value', 100),
    joinKeys: num('join-keys', 25_000),
    joinValueBytes: num('join-value', 1024),
    records: num('records', 20_000),
    divergeKeys: num('diverge-keys', 5_000),
    seconds: num('seconds', 10),
    inFlight: num('inflight', 64),
    connections: num('connections', 4),
    shards: num('shards', 1),
    rounds: num('rounds', 3),
    record: (f.get('record') ?? 'yes') !== 'no',
  };
}

function newCluster(o: HandoffBenchOptions, nodes: number): Cluster {
  return new Cluster({ nodes, secret, shards: o.shards, nodeOptions: () => ({ antiEntropyIntervalMs: 0 }) });
}

async function statuses(cluster: Cluster, indices: number[]): Promise<StatusJson[]> {
  return Promise.all(indices.map((i) => cluster.status(i, 5_000)));
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const deadline = nowMs() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (nowMs() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(pollMs);
  }
}

/** Writes keys [from, from + count) with `inFlight` puts outstanding; returns the rate. */
async function writeKeys(clients: Client[], from: number, count: number, sizeBytes: number, inFlight: number, tag: number): Promise<Measurement> {
  const values = Array.from({ length: 256 }, (_, i) => valueBytes(sizeBytes, i + tag));
  let failed = 0;
  const m = await closedLoop(count, inFlight, async (i) => {
    await clients[i % clients.length]!.put(keyBytes(from + i), values[i % values.length]!).catch(() => failed++);
  });
  if (failed > 0) console.log(`  ${failed} of ${count} writes failed`);
  return m;
}

/** Loads keys [from, from + count) in batches of 500 per client connection (one round trip each). */
async function preload(clients: Client[], from: number, count: number, sizeBytes: number, tag: number): Promise<number> {
  const values = Array.from({ length: 256 }, (_, i) => valueBytes(sizeBytes, i + tag));
  const batchSize = 500;
  const t0 = nowMs();
  for (let start = 0; start < count; start += batchSize * clients.length) {
    await Promise.all(
      clients.map((client, c) => {
        const first = start + c * batchSize;
        const ops = [];
        for (let i = first; i < Math.min(count, first + batchSize); i++) ops.push({ type: 'put' as const, key: keyBytes(from + i), value: values[i % values.length]! });
        return ops.length === 0 ? Promise.resolve([]) : client.batch(ops);
      }),
    );
  }
  const opsPerSec = count / ((nowMs() - t0) / 1000);
  console.log(`  preloaded ${count} x ${sizeBytes} B in batches of ${batchSize}: ${(opsPerSec / 1000).toFixed(1)}k ops/s`);
  return opsPerSec;
}

async function connectAll(urls: string[], count: number): Promise<Client[]> {
  const clients = await Promise.all(Array.from({ length: count }, () => connect(urls)));
  await Promise.all(clients.map((c) => c.refreshRing()));
  return clients;
}

// ------------------------------------------------------------------ 1. hint delivery

async function benchHints(o: HandoffBenchOptions): Promise<Record<string, number>> {
  const cluster = newCluster(o, 4);
  try {
    await cluster.start();
    await cluster.kill(3);
    const missing = cluster.nodes[3]!.id;
    await until('the others see node 3 down', async () => (await statuses(cluster, [0, 1, 2])).every((s) => s.members.some((m) => m.id === missing && !m.up)));
    const clients = await connectAll(cluster.urls.slice(0, 3), o.connections);
    const w = await writeKeys(clients, 0, o.hintKeys, o.hintValueBytes, o.inFlight, 1);
    console.log(formatRow(`  writes with node 3 down (${o.hintValueBytes} B)`, w));
    await Promise.all(clients.map((c) => c.close()));
    const held = (await statuses(cluster, [0, 1, 2])).flatMap((s) => s.hints).filter((h) => h.target === missing);
    const hints = held.reduce((a, h) => a + h.hints, 0);
    const hintBytes = held.reduce((a, h) => a + h.bytes, 0);
    await cluster.startNode(3);
    const t0 = nowMs();
    let seenUpMs = -1;
    await until('every hint is delivered', async () => {
      const views = await statuses(cluster, [0, 1, 2, 3]);
      if (seenUpMs < 0 && views.slice(0, 3).every((v) => v.members.some((m) => m.id === missing && m.up))) seenUpMs = nowMs() - t0;
      return views.every((v) => v.hints.every((h) => h.hints === 0));
    });
    const totalMs = nowMs() - t0;
    const delivered = (await statuses(cluster, [0, 1, 2])).reduce((a, s) => a + s.hintsDelivered, 0);
    const afterUpMs = totalMs - Math.max(0, seenUpMs);
    console.log(
      `  ${hints} hints (${mb(hintBytes).toFixed(1)} MB, ${delivered} delivered) for node 3: all delivered ${(totalMs / 1000).toFixed(2)} s after its ready line ` +
        `(seen up after ${(seenUpMs / 1000).toFixed(2)} s)`,
    );
    console.log(
      `hint delivery: ${(hints / (totalMs / 1000)).toFixed(0)} hints/s, ${(mb(hintBytes) / (totalMs / 1000)).toFixed(2)} MB/s from ready; ` +
        `${(hints / (afterUpMs / 1000)).toFixed(0)} hints/s, ${(mb(hintBytes) / (afterUpMs / 1000)).toFixed(2)} MB/s after seen up`,
    );
    return { hints, hintBytes, delivered, writeOpsPerSec: w.opsPerSec, totalMs, seenUpMs, hintsPerSec: hints / (totalMs / 1000), mbPerSec: mb(hintBytes) / (totalMs / 1000), hintsPerSecAfterUp: hints / (afterUpMs / 1000) };
  } finally {
    await cluster.stop();
  }
}

// ------------------------------------------------------------------ 2. join streaming

async function benchJoin(o: HandoffBenchOptions): Promise<Record<string, number>> {
  const cluster = newCluster(o, 3);
  try {
    await cluster.start();
    const clients = await connectAll(cluster.urls, o.connections);
    const preloadOpsPerSec = await preload(clients, 0, o.joinKeys, o.joinValueBytes, 2);
    await Promise.all(clients.map((c) => c.close()));
    await cluster.startNode(3);
    const t0 = nowMs();
    let streamedMs = -1;
    let last: StatusJson | undefined;
    await until('the new node has streamed its partitions and is normal', async () => {
      last = await cluster.status(3, 5_000);
      const tr = last.transfers;
      if (tr === undefined) return false;
      if (streamedMs < 0 && tr.total > 0 && tr.phase !== 'joining' && tr.phase !== 'idle') streamedMs = nowMs() - t0;
      const self = last.members.find((m) => m.id === last!.node);
      return tr.phase === 'idle' && tr.total > 0 && tr.done === tr.total && self?.status === 'normal';
    });
    const totalMs = nowMs() - t0;
    if (streamedMs < 0) streamedMs = totalMs;
    const { keys, bytes, total } = last!.transfers!;
    console.log(`  node 3 pulled ${total} partitions, ${keys} keys, ${mb(bytes).toFixed(1)} MB: streamed in ${(streamedMs / 1000).toFixed(2)} s, done (normal, caught up) ${(totalMs / 1000).toFixed(2)} s after its ready line`);
    console.log(
      `join streaming: ${(mb(bytes) / (totalMs / 1000)).toFixed(2)} MB/s, ${(keys / (totalMs / 1000)).toFixed(0)} keys/s to done; ` +
        `${(mb(bytes) / (streamedMs / 1000)).toFixed(2)} MB/s, ${(keys / (streamedMs / 1000)).toFixed(0)} keys/s while streaming`,
    );
    return { partitions: total, keys, bytes, preloadOpsPerSec, totalMs, streamedMs, mbPerSec: mb(bytes) / (totalMs / 1000), keysPerSec: keys / (totalMs / 1000), mbPerSecStreaming: mb(bytes) / (streamedMs / 1000) };
  } finally {
    await cluster.stop();
  }
}

// ------------------------------------------------------------------ 3. foreground p99

interface Load {
  clients: Client[];
  contexts: (Uint8Array | undefined)[];
  values: Uint8Array[];
  errors: Map<string, number>;
}

/**
 * Runs the 50/50 get/put mix for `seconds` with `inFlight` outstanding, and longer while
 * `busy.running` holds (background work still going); `round` varies the keys.
 */
async function timedLoad(load: Load, records: number, seconds: number, inFlight: number, round: number, busy: { running: boolean } = { running: false }): Promise<Measurement> {
  const keys = randomIndices(1 << 20, records, 3000 + round);
  const latencies = new Latencies(2_000_000);
  const started = process.hrtime.bigint();
  const deadline = nowMs() + seconds * 1000;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (nowMs() < deadline || busy.running) {
      const i = next++;
      const k = keys[i % keys.length]!;
      const client = load.clients[i % load.clients.length]!;
      const t0 = process.hrtime.bigint();
      try {
        const context = load.contexts[k];
        const r = i % 2 === 0 ? await client.get(keyBytes(k)) : await client.put(keyBytes(k), load.values[i % load.values.length]!, context ? { context } : {});
        load.contexts[k] = r.context;
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'other';
        load.errors.set(code, (load.errors.get(code) ?? 0) + 1);
      }
      latencies.add(Number(process.hrtime.bigint() - t0) / 1000);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return measurement(next, started, latencies);
}

/**
 * Keeps a repair running on every listed node until `stop()`, which then waits for the passes
 * still running to finish (so the next window is idle); returns the passes started and how
 * long the last ones ran past the window.
 */
function keepRepairing(cluster: Cluster, indices: number[]): { stop: () => Promise<{ passes: number; overrunMs: number }> } {
  let running = true;
  let passes = 0;
  const loop = async (index: number): Promise<void> => {
    while (running) {
      const response = await fetch(`http://${cluster.nodes[index]!.address}/repair`, { method: 'POST' });
      if (response.status === 202) passes++;
      await response.body?.cancel();
      while (running && (await cluster.status(index, 5_000)).antiEntropy.repair.running) await sleep(pollMs);
    }
  };
  const done = Promise.all(indices.map(loop));
  return {
    stop: async () => {
      running = false;
      await done;
      const t0 = nowMs();
      await until('the repairs finished', async () => (await statuses(cluster, indices)).every((v) => !v.antiEntropy.repair.running));
      return { passes, overrunMs: nowMs() - t0 };
    },
  };
}

async function divergeOneNode(cluster: Cluster, o: HandoffBenchOptions): Promise<number> {
  await cluster.kill(2);
  const missing = cluster.nodes[2]!.id;
  await until('the others see node 2 down', async () => (await statuses(cluster, [0, 1])).every((s) => s.members.some((m) => m.id === missing && !m.up)));
  const clients = await connectAll(cluster.urls.slice(0, 2), 2);
  const w = await writeKeys(clients, o.records, o.divergeKeys, 100, o.inFlight, 3);
  await Promise.all(clients.map((c) => c.close()));
  await cluster.startNode(2);
  await cluster.waitConverged(3, 60_000);
  return w.opsPerSec;
}

/** p99 increase over the idle baseline (the mean of the idle windows' p99s). */
const increaseOver = (baselineUs: number, m: Measurement): number => (m.p99Us - baselineUs) / baselineUs;

function p99Row(label: string, m: Measurement, baselineUs: number | undefined): string {
  if (baselineUs === undefined) return formatRow(label, m);
  const up = increaseOver(baselineUs, m) * 100;
  return `${formatRow(label, m)}  p99 ${up >= 0 ? '+' : ''}${up.toFixed(0)}% vs idle`;
}

interface Windows {
  idle: Measurement[];
  repair: Measurement;
  join: Measurement;
  /** Idle again once the join is done: the 4-node steady state the join leads to. */
  after: Measurement;
  joinMs: number;
  joinStreamedMs: number;
  repairPasses: number;
  repairOverrunMs: number;
  keysRepaired: number;
  joinAtEnd: StatusJson['transfers'];
}

/** Warm-up (unmeasured), idle, repair on every node, idle again, a 4th node joining. */
async function loadWindows(cluster: Cluster, load: Load, o: HandoffBenchOptions): Promise<Windows> {
  const label = (what: string): string => `ringkv 3n ${what}, inflight ${o.inFlight}`;
  await timedLoad(load, o.records, Math.min(3, o.seconds), o.inFlight, 9);
  const idle = [await timedLoad(load, o.records, o.seconds, o.inFlight, 0)];
  console.log(p99Row(label('idle'), idle[0]!, undefined));
  const repairing = keepRepairing(cluster, [0, 1, 2]);
  const repair = await timedLoad(load, o.records, o.seconds, o.inFlight, 1);
  const { passes: repairPasses, overrunMs } = await repairing.stop();
  const keysRepaired = (await statuses(cluster, [0, 1, 2])).reduce((a, s) => a + s.antiEntropy.keysRepaired, 0);
  console.log(p99Row(label('repair on all'), repair, idle[0]!.p99Us));
  console.log(`  ${repairPasses} repair pass(es) started, ${keysRepaired} keys repaired; the last ran ${(overrunMs / 1000).toFixed(1)} s past the window (waited for)`);
  idle.push(await timedLoad(load, o.records, o.seconds, o.inFlight, 2));
  console.log(p99Row(label('idle again'), idle[1]!, idle[0]!.p99Us));
  const busy = { running: true };
  const t0 = nowMs();
  const progress = { streamedMs: -1 };
  const joined = cluster
    .startNode(3)
    .then(() => until('the joiner is normal and caught up', () => joinDone(cluster, 3, () => progress.streamedMs < 0 && (progress.streamedMs = nowMs() - t0)), joinWindowMaxMs))
    .finally(() => {
      busy.running = false;
    });
  const join = await timedLoad(load, o.records, o.seconds, o.inFlight, 3, busy);
  await joined;
  const joinMs = nowMs() - t0;
  const joinAtEnd = (await cluster.status(3, 5_000)).transfers;
  console.log(p99Row(label('+ 1 joining'), join, idle[0]!.p99Us));
  console.log(
    `  join streamed ${(progress.streamedMs / 1000).toFixed(1)} s, done ${(joinMs / 1000).toFixed(1)} s after start (window ${join.seconds.toFixed(1)} s): ` +
      `${joinAtEnd?.done}/${joinAtEnd?.total} partitions, ${joinAtEnd?.keys} keys`,
  );
  const after = await timedLoad(load, o.records, o.seconds, o.inFlight, 4);
  console.log(p99Row(label('idle, 4 nodes after the join'), after, idle[0]!.p99Us));
  return { idle, repair, join, after, joinMs, joinStreamedMs: progress.streamedMs, repairPasses, repairOverrunMs: overrunMs, keysRepaired, joinAtEnd };
}

/** The longest the join window runs: past it the round fails. */
const joinWindowMaxMs = 120_000;

/** Whether node `index` is normal with every transfer done and its catch-up finished; `streamed()` once it left `joining`. */
async function joinDone(cluster: Cluster, index: number, streamed: () => unknown): Promise<boolean> {
  const s = await cluster.status(index, 5_000);
  const tr = s.transfers;
  if (tr !== undefined && tr.total > 0 && tr.phase !== 'joining') streamed();
  const self = s.members.find((m) => m.id === s.node);
  return tr !== undefined && tr.phase === 'idle' && tr.total > 0 && tr.done === tr.total && self?.status === 'normal';
}

type P99Result = Windows & { idleP99Us: number; p99IncreaseRepair: number; p99IncreaseJoin: number; errors: Record<string, number> };

async function benchP99(o: HandoffBenchOptions): Promise<P99Result> {
  const cluster = newCluster(o, 3);
  try {
    await cluster.start();
    const clients = await connectAll(cluster.urls, o.connections);
    const load: Load = { clients, contexts: new Array(o.records), values: Array.from({ length: 256 }, (_, i) => valueBytes(100, i + 4)), errors: new Map() };
    await preload(clients, 0, o.records, 100, 4);
    const divergeRate = await divergeOneNode(cluster, o);
    console.log(`  ${o.divergeKeys} keys written while node 2 was down (${(divergeRate / 1000).toFixed(1)}k ops/s), no stand-in: left to repair`);
    await Promise.all(clients.map((c) => c.refreshRing()));
    const w = await loadWindows(cluster, load, o);
    if (load.errors.size > 0) console.log(`  errors: ${[...load.errors].map(([c, n]) => `${c} ${n}`).join(', ')}`);
    await Promise.all(clients.map((c) => c.close()));
    const baselineUs = (w.idle[0]!.p99Us + w.idle[1]!.p99Us) / 2;
    const repairUp = increaseOver(baselineUs, w.repair);
    const joinUp = increaseOver(baselineUs, w.join);
    console.log(`p99 idle ${(baselineUs / 1000).toFixed(1)} ms (mean of both idle windows); increase: repair ${(repairUp * 100).toFixed(0)}%, join ${(joinUp * 100).toFixed(0)}% (goal < 20%)`);
    return { ...w, idleP99Us: baselineUs, p99IncreaseRepair: repairUp, p99IncreaseJoin: joinUp, errors: Object.fromEntries(load.errors) };
  } finally {
    await cluster.stop();
  }
}

interface RoundResult {
  hints?: Record<string, number>;
  join?: Record<string, number>;
  p99?: P99Result;
}

/** The figures one round contributes to the summary (only those of the phases that ran). */
function figuresOf(r: RoundResult): Record<string, number> {
  const out: Record<string, number> = {};
  if (r.hints) out['hint delivery (hints/s)'] = r.hints.hintsPerSec!;
  if (r.join) {
    out['join streaming (MB/s)'] = r.join.mbPerSecStreaming!;
    out['join to done (MB/s)'] = r.join.mbPerSec!;
  }
  if (r.p99) {
    out['p99 idle (ms)'] = r.p99.idleP99Us / 1000;
    out['p99 repair (ms)'] = r.p99.repair.p99Us / 1000;
    out['p99 join (ms)'] = r.p99.join.p99Us / 1000;
    out['p99 increase, repair (%)'] = r.p99.p99IncreaseRepair * 100;
    out['p99 increase, join (%)'] = r.p99.p99IncreaseJoin * 100;
    out['p99 4 nodes after the join (ms)'] = r.p99.after.p99Us / 1000;
    out['p99 increase, 4 nodes after (%)'] = increaseOver(r.p99.idleP99Us, r.p99.after) * 100;
    // The join adds a fourth process on the same cores: against the 4-node steady state, what is left is the join's own work.
    out['p99 increase, join vs 4 nodes after (%)'] = increaseOver(r.p99.after.p99Us, r.p99.join) * 100;
    out['join under load, streamed (s)'] = r.p99.joinStreamedMs / 1000;
    out['join under load, done (s)'] = r.p99.joinMs / 1000;
  }
  return out;
}

function printSummary(rounds: RoundResult[]): Record<string, number> {
  const perRound = rounds.map(figuresOf);
  const medians: Record<string, number> = {};
  console.log(`summary over ${rounds.length} round(s): median [per round]; increases are medians of the per-round ratios`);
  for (const name of Object.keys(perRound[0] ?? {})) {
    const xs = perRound.map((f) => f[name]!);
    medians[name] = median(xs);
    const digits = name.includes('hints/s') || name.includes('%') ? 0 : 1;
    console.log(`  ${name.padEnd(40)} ${medians[name]!.toFixed(digits).padStart(8)}  [${xs.map((x) => x.toFixed(digits)).join(', ')}]`);
  }
  return medians;
}

export async function runHandoffBench(argv: string[]): Promise<void> {
  const o = handoffOptionsOf(argv);
  printMachine();
  console.log(
    `config: loopback child processes, N=3 W=2 R=2, fsync per group commit, ${o.shards} shard(s)/node, gossip 100 ms, scheduled anti-entropy off; ` +
      `hints ${o.hintKeys} x ${o.hintValueBytes} B; join ${o.joinKeys} x ${o.joinValueBytes} B; p99 ${o.records} x 100 B records, ` +
      `${o.divergeKeys} divergent, ${o.seconds} s windows, ${o.connections} connections, inflight ${o.inFlight}; ${o.rounds} round(s)`,
  );
  const rounds: RoundResult[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    console.log(`--- round ${round} of ${o.rounds}`);
    const r: RoundResult = {};
    if (o.phases.includes('hints')) r.hints = await benchHints(o);
    if (o.phases.includes('join')) r.join = await benchJoin(o);
    if (o.phases.includes('p99')) r.p99 = await benchP99(o);
    rounds.push(r);
  }
  const medians = printSummary(rounds);
  if (o.record) recordResult('handoff', { options: o, medians, rounds });
}
