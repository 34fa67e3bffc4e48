/**
 * The dashboard and /metrics of a real 3-node cluster (child processes, 2 shards each, with a
 * client token): headless Chromium renders `/` and the test reads the live DOM — three nodes
 * UN, a ring of 1,024 partitions, charts that received points — then SIGKILLs a node and
 * waits for its row to turn DN. Screenshots at 1280x800 (build/dashboard.png, an artifact;
 * docs/dashboard.png for the README) and at phone width (build/dashboard-phone.png). /metrics
 * must parse as Prometheus text and hold every series of the catalog after some traffic,
 * the per-shard ones for both shards.
 *
 * Needs Debian's chromium (.ci/run installs it): without it the browser part FAILS with a
 * message saying so, unless RINGKV_SKIP_BROWSER=1 asks to skip it.
 */

import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../lib/client/index.js';
import { metricCatalog } from '../lib/http/metric-catalog.js';
import { Cluster } from './fixtures/cluster.js';
import { findChromium, HeadlessBrowser } from './fixtures/headless-browser.js';
import { parsePrometheusText } from './fixtures/prometheus-text.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const token = 'dashboard-token';

t.test('a 3-node cluster: dashboard in a real browser, and every documented series on /metrics', { timeout: 400_000 }, async (t) => {
  const cluster = new Cluster({ nodes: 3, shards: 2, replication: 3, nodeOptions: () => ({ clientToken: token }) });
  t.teardown(() => cluster.stop());
  await cluster.start();
  await cluster.waitConverged(3);
  const client = await connect(cluster.urls, { token });
  t.teardown(() => client.close());
  // A mix the charts can tell apart: 3 gets and 1 put per round, a delete every 5th.
  const traffic = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      await client.put(`key-${i}`, `value-${i}`);
      for (let j = 0; j < 3; j++) await client.get(`key-${i}`);
      if (i % 5 === 4) await client.delete(`key-${i - 1}`);
    }
  };
  await traffic(60);
  const http = `http://${cluster.nodes[0]!.address}`;

  t.test('/metrics', { timeout: 120_000 }, async (t) => {
    t.equal((await fetch(`${http}/events`)).status, 401, 'the live feed needs the client token');
    t.equal((await fetch(`${http}/feed/local`)).status, 401);
    // Engine figures refresh every 2 s and the first ping round trip takes ~1 s: poll.
    let missing: string[] = [];
    let families = new Map<string, { type: string; samples: { name: string; labels: Record<string, string>; value: number }[] }>();
    for (let i = 0; i < 120; i++) {
      families = parsePrometheusText(await (await fetch(`${http}/metrics`)).text());
      missing = metricCatalog.filter((m) => (families.get(m.name)?.samples.length ?? 0) === 0).map((m) => m.name);
      const shards = new Set(families.get('ringkv_engine_memtable_bytes')?.samples.map((s) => s.labels.shard));
      const fsyncs = families.get('ringkv_engine_wal_fsync_seconds')?.samples.some((s) => s.name.endsWith('_count') && s.value > 0);
      if (missing.length === 0 && shards.size === 2 && fsyncs) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    t.same(missing, [], 'every series of the catalog is present');
    t.ok(families.get('ringkv_peer_rtt_seconds')!.samples.every((s) => s.value > 0 && s.value < 5), 'peer round trips measured');
    for (const m of metricCatalog) t.equal(families.get(m.name)?.type, m.type, `${m.name} is a ${m.type}`);
    t.same([...new Set(families.get('ringkv_engine_level_bytes')!.samples.map((s) => s.labels.shard))].sort(), ['0', '1'], 'per-shard series for both shards');
    t.ok(families.get('ringkv_engine_wal_fsync_seconds')!.samples.some((s) => s.name.endsWith('_count') && s.value > 0), 'fsyncs were timed');
    const puts = families.get('ringkv_requests_total')!.samples.find((s) => s.labels.op === 'put' && s.labels.outcome === 'ok');
    t.ok(puts && puts.value > 0, 'puts counted');
    t.equal(families.get('ringkv_peer_phi')!.samples.length, 2, 'phi per peer');
    t.ok(families.has('ringkv_process_cpu_seconds_total'), 'process metrics under ringkv_process_');
    t.notOk([...families.keys()].some((name) => name.includes('process_process')), 'no doubled process_ prefix');
  });

  const binary = findChromium();
  const skip = binary === undefined && process.env.RINGKV_SKIP_BROWSER === '1' ? 'chromium is not installed (RINGKV_SKIP_BROWSER=1)' : false;
  t.test('dashboard in headless chromium', { timeout: 240_000, skip }, async (t) => {
    if (binary === undefined) {
      t.fail('chromium is not installed: apt-get install chromium (.ci/run does), or set RINGKV_SKIP_BROWSER=1 to skip this test');
      return;
    }
    const browser = await HeadlessBrowser.launch(binary);
    t.teardown(() => browser.close());
    await browser.viewport(1280, 800);
    await browser.navigate(`${http}/?token=${token}`);
    const rows = (): Promise<string> => browser.evaluate(`JSON.stringify([...document.querySelectorAll('#nodes tbody tr')].map((r) => [r.dataset.node, r.querySelector('td.state').textContent]))`);
    const up = await browser.waitFor<boolean>(`document.querySelectorAll('#nodes tbody tr.up').length === 3`, 30_000);
    t.ok(up, `three nodes up: ${await rows()}`);
    const states = JSON.parse(await rows()) as [string, string][];
    t.same(states.map((r) => r[0]).sort(), cluster.nodes.map((n) => n.id).sort(), 'one row per node');
    t.same(states.map((r) => r[1]), ['UN', 'UN', 'UN']);
    t.equal(await browser.evaluate<number>(`document.querySelectorAll('#ring path.partition').length`), 1024, 'a ring of 1,024 partitions');
    const owners = await browser.evaluate<string[]>(`[...new Set([...document.querySelectorAll('#ring path.partition')].map((p) => p.dataset.owner))].sort()`);
    t.same(owners, cluster.nodes.map((n) => n.id).sort(), 'partitions coloured by each of the three owners');
    let busy = true;
    const background = (async () => {
      while (busy) await traffic(20);
    })();
    const points = await browser.waitFor<number>(`Number(document.getElementById('charts').dataset.points) >= 8 && Number(document.getElementById('charts').dataset.points)`, 30_000);
    busy = false;
    await background;
    t.ok(points >= 8, `charts received ${points} points`);
    t.ok(await browser.evaluate<boolean>(`document.querySelectorAll('#charts canvas').length >= 4`), 'four uPlot charts drawn');
    const shot = await browser.screenshot();
    mkdirSync(join(root, 'build'), { recursive: true });
    writeFileSync(join(root, 'build', 'dashboard.png'), shot);
    if (process.env.RINGKV_UPDATE_SCREENSHOT === '1') writeFileSync(join(root, 'docs', 'dashboard.png'), shot);
    await browser.viewport(390, 844, true);
    const fits = await browser.waitFor<boolean>(`document.documentElement.scrollWidth <= window.innerWidth + 1`, 10_000);
    t.ok(fits, 'nothing wider than a phone screen (tables scroll inside their card)');
    writeFileSync(join(root, 'build', 'dashboard-phone.png'), await browser.screenshot());
    await browser.viewport(1280, 800);

    const victim = cluster.nodes[2]!;
    await cluster.kill(2);
    const down = await browser.waitFor<boolean>(`document.querySelector('#nodes tr[data-node="${victim.id}"] td.state')?.textContent === 'DN'`, 60_000);
    t.ok(down, `the killed node turns DN: ${await rows()}`);
    t.match(await browser.evaluate<string>(`document.getElementById('warnings').textContent`), new RegExp(`down: .*${victim.id}`), 'and a warning says so');
  });
});
