/**
 * lib/http without a browser: the metric catalog follows Prometheus naming conventions
 * (checked on the catalog and on a live node's /metrics text), latency quantiles from the
 * dashboard's buckets, the dashboard frame built from a status and members' samples, the live
 * feed's SSE stream and its token, and the dashboard's static files.
 */

import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../lib/base/log.js';
import { connect } from '../lib/client/index.js';
import { metricCatalog, type MetricSpec } from '../lib/http/metric-catalog.js';
import { buildFrame, chartPoint, formatDuration, type LocalSample } from '../lib/http/dashboard-view.js';
import { LiveFeed } from '../lib/http/dashboard-feed.js';
import { difference, latencyBoundsMs, quantileMs, RequestTotals, sum } from '../lib/http/request-totals.js';
import { startNode } from '../lib/server/index.js';
import type { StatusJson } from '../lib/supervisor/index.js';
import { parsePrometheusText } from './fixtures/prometheus-text.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Problems of one family's name, type, labels and help (https://prometheus.io/docs/practices/naming/). */
function namingProblems(name: string, type: string, labels: readonly string[], help: string, ours: boolean): string[] {
  const problems: string[] = [];
  if (!/^ringkv_[a-z][a-z0-9_]*$/.test(name)) problems.push(`${name}: not ringkv_ snake_case`);
  if (name.includes('process_process')) problems.push(`${name}: doubled process_ prefix`);
  if (/_(ms|milliseconds|us|microseconds|kb|mb|kib|mib)(_|$)/.test(name)) problems.push(`${name}: not in base units`);
  if (type === 'counter' && !name.endsWith('_total')) problems.push(`${name}: counter without _total`);
  // prom-client's own defaults include gauges named *_total (nodejs_active_handles_total).
  if (ours && type !== 'counter' && name.endsWith('_total')) problems.push(`${name}: only counters end in _total`);
  if (type === 'histogram' && /_(count|sum|bucket)$/.test(name)) problems.push(`${name}: histogram name with a reserved suffix`);
  for (const unit of ['seconds', 'bytes']) if (ours && name.includes(`_${unit}`) && !new RegExp(`_${unit}(_total)?$`).test(name)) problems.push(`${name}: unit ${unit} not at the end`);
  for (const label of labels) if (!/^[a-z][a-z0-9_]*$/.test(label) || label === 'le' || label === 'quantile') problems.push(`${name}: bad label ${label}`);
  if (help.trim() === '') problems.push(`${name}: no help`);
  return problems;
}

t.test('the catalog follows Prometheus naming conventions', async (t) => {
  const problems = metricCatalog.flatMap((m: MetricSpec) => namingProblems(m.name, m.type, m.labels, m.help, true));
  t.same(problems, []);
  t.equal(new Set(metricCatalog.map((m) => m.name)).size, metricCatalog.length, 'names are unique');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  t.same(metricCatalog.filter((m) => !readme.includes(`| \`${m.name}\` | ${m.type} |`)).map((m) => m.name), [], "the README's Operating section lists every series");
  t.ok(metricCatalog.every((m) => m.pushed || m.read || m.readHistograms), 'every series is pushed or read');
  t.match(namingProblems('ringkv_x_ms', 'gauge', ['le'], '', true), [/base units/, /bad label le/, /no help/]);
  t.match(namingProblems('ringkv_hits', 'counter', [], 'h', true), [/without _total/]);
  t.match(namingProblems('ringkv_bytes_read_total', 'counter', [], 'h', true), [/unit bytes not at the end/]);
  t.match(namingProblems('ringkv_things_total', 'gauge', [], 'h', true), [/only counters/]);
});

t.test('a live node: /metrics parses, names follow the conventions, pushed series count requests', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-metrics-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const node = await startNode({ port: 0, dir, shards: 1, logger: silentLogger, replication: 1, gossipIntervalMs: 50, clientToken: 'tok' });
  t.teardown(() => node.close());
  const client = await connect([node.url], { token: 'tok' });
  t.teardown(() => client.close());
  await client.put('a', '1');
  await client.put('a', '2');
  await client.get('a');
  await client.get('missing');
  const http = `http://${node.address}`;
  const families = parsePrometheusText(await (await fetch(`${http}/metrics`)).text());
  const problems = [...families].flatMap(([name, f]) => namingProblems(name, f.type, [...new Set(f.samples.flatMap((s) => Object.keys(s.labels)))].filter((l) => l !== 'le' && l !== 'quantile'), f.help, metricCatalog.some((m) => m.name === name)));
  t.same(problems, [], 'every family on /metrics');
  t.ok(families.has('ringkv_process_cpu_seconds_total') && families.has('ringkv_nodejs_eventloop_lag_seconds'), 'process defaults under ringkv_');
  const siblings = families.get('ringkv_read_siblings')!.samples;
  t.equal(siblings.find((s) => s.name === 'ringkv_read_siblings_count')?.value, 2, 'two reads observed');
  t.equal(siblings.find((s) => s.name === 'ringkv_read_siblings_bucket' && s.labels.le === '0')?.value, 1, 'one of them found nothing');
  t.equal(families.get('ringkv_coordinator_failures_total')!.samples.length, 9, 'failure series exist at 0 for each op and reason');
  const grafana = readFileSync(join(root, 'deploy', 'grafana', 'ringkv-dashboard.json'), 'utf8');
  const used = [...new Set(grafana.match(/ringkv_[a-z0-9_]+/g) ?? [])].filter((name) => name !== 'ringkv_dashboard');
  const unknown = used.filter((name) => !families.has(name) && !families.has(name.replace(/_(bucket|sum|count)$/, '')));
  t.same(unknown, [], `the Grafana dashboard uses only series a node serves (${used.length} used)`);

  t.equal((await fetch(`${http}/feed/local`)).status, 401, 'the feed needs the token');
  const local = (await (await fetch(`${http}/feed/local?token=tok`)).json()) as LocalSample;
  t.equal(local.node, node.id);
  t.equal(local.requests.ops.put, 2, 'the live sample counts the same requests');
  const page = await fetch(`${http}/`);
  t.match(page.headers.get('content-type'), /text\/html/);
  t.match(await page.text(), /<title>ringkv dashboard<\/title>/);
  for (const asset of ['/dashboard/dashboard.js', '/dashboard/ring.js', '/dashboard/charts.js', '/dashboard/dashboard.css', '/vendor/uplot.js', '/vendor/uplot.css']) {
    const response = await fetch(`${http}${asset}`);
    t.equal(response.status, 200, asset);
    t.ok((await response.arrayBuffer()).byteLength > 100, `${asset} has a body`);
  }
  t.equal((await fetch(`${http}/dashboard/../package.json`)).status, 404, 'no path reaches the file system');
  t.equal((await fetch(`${http}/dashboard/missing.js`)).status, 404);

  const events = await fetch(`${http}/events`, { headers: { authorization: 'Bearer tok' } });
  t.equal(events.headers.get('content-type'), 'text/event-stream');
  const reader = events.body!.getReader();
  let text = '';
  while (!text.includes('event: frame')) text += new TextDecoder().decode((await reader.read()).value);
  t.match(text, /^retry: \d+\nevent: history\ndata: \[/, 'history first');
  const frame = JSON.parse(/event: frame\ndata: (.*)\n/.exec(text)![1]!) as { nodes: { id: string; state: string }[]; ring: { owners: number[] } };
  t.same(frame.nodes.map((n) => [n.id, n.state]), [[node.id, 'UN']]);
  t.equal(frame.ring.owners.length, 1024);
  await reader.cancel();
});

t.test('latency quantiles from buckets; samples subtract and add bucket by bucket', async (t) => {
  const totals = new RequestTotals();
  t.equal(quantileMs(totals.snapshot().buckets, 0.5), undefined, 'no requests, no quantile');
  for (let i = 0; i < 98; i++) totals.observe('get', 1);
  totals.observe('put', 100);
  totals.observe('put', 1e9);
  const snapshot = totals.snapshot();
  t.same(snapshot.ops, { get: 98, put: 2 });
  const p50 = quantileMs(snapshot.buckets, 0.5)!;
  t.ok(p50 > 0.7 && p50 <= 1.3, `p50 ${p50} near 1 ms`);
  const p99 = quantileMs(snapshot.buckets, 0.99)!;
  t.ok(p99 > 75 && p99 <= 130, `p99 ${p99} near 100 ms`);
  t.equal(quantileMs(snapshot.buckets, 1), latencyBoundsMs[latencyBoundsMs.length - 1], 'the overflow bucket answers the largest bound');
  const later = new RequestTotals();
  later.observe('get', 5);
  t.same(difference(snapshot, undefined), snapshot);
  const both = sum([snapshot, later.snapshot()]);
  t.equal(both.ops.get, 99);
  t.same(difference(both, snapshot).ops, { get: 1, put: 0 });
});

function status(overrides: Partial<StatusJson> = {}): StatusJson {
  const member = (id: string, up: boolean, status: 'normal' | 'joining' = 'normal') => ({ id, address: `${id}:1`, url: `ws://${id}:1`, dc: 'dc1', rack: 'r1', weight: 1, status, up, generation: 1, heartbeat: 1, partitions: 2, ownershipPercent: 50 });
  return {
    node: 'a',
    version: '1.0.0',
    address: 'a:1',
    uptimeMs: 5000,
    partitionBits: 2,
    replication: 2,
    underReplicated: false,
    warnings: ['down: c'],
    members: [{ ...member('a', true), loadBytes: 2048 }, member('b', true), member('c', false), member('d', true, 'joining')],
    shards: [],
    ring: { owners: ['a', 'b', 'a', 'b'] },
    hints: [{ target: 'c', hints: 3, bytes: 300, oldestAgeMs: 65_000, skippedPartitions: [] }],
    hintsDelivered: 0,
    antiEntropy: { exchanges: 0, failed: 0, keysRepaired: 0, bytesSent: 0, bytesReceived: 0, repair: { running: true, done: 1, total: 4, keysRepaired: 2 } },
    transfers: { phase: 'idle', done: 0, total: 0, keys: 0, bytes: 0, partitions: [] },
    ...overrides,
  };
}

function sample(s: StatusJson, node: string, t: number, gets: number): LocalSample {
  const totals = new RequestTotals();
  for (let i = 0; i < gets; i++) totals.observe('get', 2);
  return { node, t, version: '1.0.0', uptimeMs: t, loadBytes: 4096, requests: totals.snapshot(), warnings: node === 'a' ? s.warnings : ['w'], transfers: node === 'd' ? { phase: 'joining', done: 1, total: 2, keys: 10, bytes: 100, partitions: [{ partition: 1, direction: 'in', peer: 'b', state: 'streaming', keys: 5, bytes: 50 }, { partition: 3, direction: 'in', peer: 'b', state: 'done', keys: 5, bytes: 50 }] } : s.transfers, repair: s.antiEntropy.repair, hints: node === 'a' ? s.hints : [], cleanupPending: node === 'b' ? 2 : 0 };
}

t.test('the dashboard frame: rows with state letters, ring owners and moves, transfers, hints, warnings, chart points', async (t) => {
  const s = status();
  const before = new Map(['a', 'b', 'd'].map((id) => [id, sample(s, id, 1000, 0)]));
  const now = ['a', 'b', 'd'].map((id) => sample(s, id, 3000, id === 'a' ? 20 : 10));
  const point = chartPoint(3000, now, before);
  t.same(point.nodes.a!.ops, { get: 10, put: 0, delete: 0 }, '20 gets in 2 s');
  t.equal(point.cluster.ops.get, 20, 'cluster: 40 gets in 2 s');
  t.ok(point.cluster.p50Ms! > 1 && point.cluster.p50Ms! <= 2.6);
  t.same(chartPoint(4000, now, new Map()).nodes, {}, 'no previous sample, no rate');
  const frame = buildFrame(s, now, point);
  t.same(frame.nodes.map((n) => [n.id, n.state]), [['a', 'UN'], ['b', 'UN'], ['c', 'DN'], ['d', 'UJ']]);
  t.equal(frame.nodes[2]!.load, '?', 'a down node without a figure');
  t.equal(frame.nodes[0]!.load, '4.00 KiB');
  t.equal(frame.nodes[0]!.uptime, '3s');
  t.same(frame.ring.owners, [0, 1, 0, 1]);
  t.same(frame.ring.moves, [{ partition: 1, from: 'b', to: 'd', state: 'streaming' }], 'moving partitions, done ones left out');
  t.same(frame.transfers.map((r) => [r.node, r.what, r.done, r.total]), [
    ['a', 'repair (2 keys)', 1, 4],
    ['a', 'hints for c', 0, 3],
    ['b', 'repair (2 keys)', 1, 4],
    ['b', 'auto-cleanup', 0, 2],
    ['d', 'joining (10 keys)', 1, 2],
    ['d', 'repair (2 keys)', 1, 4],
  ]);
  t.same(frame.hints, [{ holder: 'a', target: 'c', hints: 3, bytes: '300 B', oldest: '1m 5s' }]);
  t.same(frame.warnings, ['down: c', 'b: w', 'd: w']);
  t.equal(frame.autoscale, null, 'no autoscaler, no card');
  const history = [1, 2, 3, 4, 5, 6].map((seq) => ({ seq, leader: 'a', action: seq === 6 ? 'scale-in' : 'scale-out', fromNodes: 3, targetNodes: seq === 6 ? 2 : 4, ...(seq === 6 ? { victim: 'c' } : {}), atMs: Date.UTC(2026, 0, 1, 12, 0, seq), state: 'done', reason: `load ${seq}` }));
  const scaled = buildFrame({ ...s, scaling: { held: false, plan: {} as never, autoscale: { leader: 'a', reason: 'steady', history, counts: {} } as never } }, now, point);
  t.equal(scaled.autoscale!.leader, 'a');
  t.same(scaled.autoscale!.decisions.map((d) => d.split(':')[0]), ['#6 scale-in 3→2 (c)', '#5 scale-out 3→4', '#4 scale-out 3→4', '#3 scale-out 3→4', '#2 scale-out 3→4'], 'the last five, newest first');
  t.match(scaled.autoscale!.decisions[0], /done — load 6 \(12:00:06 UTC\)$/);
  t.equal(formatDuration(90_000_000), '1d 1h');
  t.equal(formatDuration(3_700_000), '1h 1m');
});

t.test('the live feed: ticks only while watched, asks peers, survives a failing peer, bounds its streams', async (t) => {
  const s = status();
  const asked: string[] = [];
  const feed = new LiveFeed({
    status: () => s,
    requests: () => new RequestTotals().snapshot(),
    logger: silentLogger,
    tickMs: 20,
    fetchSample: async (base) => {
      asked.push(base);
      if (base.includes('d')) throw new Error('unreachable');
      return sample(s, 'b', Date.now(), 1);
    },
  });
  t.teardown(() => feed.close());
  await feed.tick();
  t.same(asked.sort(), ['http://b:1', 'http://d:1'], 'up peers only');
  const written: string[] = [];
  const { EventEmitter } = await import('node:events');
  const fakeResponse = () => Object.assign(new EventEmitter(), { writeHead: () => undefined, write: (chunk: string) => written.push(chunk), end: () => undefined });
  const request = new EventEmitter();
  feed.subscribe(request as never, fakeResponse() as never);
  t.equal(feed.subscribers, 1);
  for (let i = 0; i < 100 && !written.some((w) => w.startsWith('event: frame')); i++) await new Promise((r) => setTimeout(r, 20));
  t.ok(written[0]!.includes('event: history'), 'history first');
  t.ok(written.some((w) => w.startsWith('event: frame')), 'then frames');
  request.emit('close');
  t.equal(feed.subscribers, 0, 'a closed stream is dropped');
  const many = Array.from({ length: 40 }, () => fakeResponse());
  let refused = 0;
  for (const r of many) {
    let code = 0;
    Object.assign(r, { writeHead: (c: number) => (code = c) });
    feed.subscribe(new EventEmitter() as never, r as never);
    if (code === 503) refused++;
  }
  t.equal(refused, 8, 'past dashboardSubscribersMax, 503');
});

t.test('hint counters per target, fixed histograms and the pending compaction estimate', async (t) => {
  const { HintCounters } = await import('../lib/supervisor/telemetry.js');
  const { FixedHistogram, pendingCompactionBytes } = await import('../lib/storage/engine-metrics.js');
  const counters = new HintCounters();
  let fail = false;
  const add = counters.counting(async () => {
    if (fail) throw new Error('past its bound');
  });
  await add('b', new Uint8Array(), new Uint8Array());
  fail = true;
  await t.rejects(add('b', new Uint8Array(), new Uint8Array()), /past its bound/, 'the refusal still reaches the caller');
  counters.delivered('c', 3);
  t.same([...counters.byTarget], [['b', { stored: 1, dropped: 1, delivered: 0 }], ['c', { stored: 0, dropped: 0, delivered: 3 }]]);

  const histogram = new FixedHistogram([1, 10]);
  for (const v of [0.5, 1, 5, 50]) histogram.observe(v);
  t.same(histogram.snapshot(), { bounds: [1, 10], counts: [2, 1, 1], sum: 56.5, count: 4 });

  const table = (fileBytes: number) => ({ fileBytes }) as never;
  const config = { level0CompactionTrigger: 2, level1BytesMax: 100, levelSizeMultiplier: 10, levelCount: 3 };
  t.equal(pendingCompactionBytes([[table(5)], [table(150)], [table(5000)]], config), 50, 'L0 under its trigger: only L1 over its target; the last level never counts');
  t.equal(pendingCompactionBytes([[table(5), table(7)], [table(50)], []], config), 12, 'L0 at its trigger: all of it');
});
