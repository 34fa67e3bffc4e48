/**
 * Multi-host for real (issue 13): when the tests run as root with `ip` and `iptables`, each
 * node runs in its own network namespace with its own address (test/fixtures/fault-net.ts),
 * advertises that address (--advertise), joins through a seed on another interface, and
 * speaks TLS to its peers and clients with a client token: nothing goes through 127.0.0.1.
 * A fourth node started with --staged-join joins through `ringkv plan join` + `ringkv commit`
 * sent over wss with the CA and the token. Also protected mode: a node bound beyond loopback
 * refuses to start without a client token unless insecureClients.
 */

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/base/log.js';
import { connect } from '../lib/client/index.js';
import { startNode } from '../lib/server/index.js';
import type { StatusJson } from '../lib/supervisor/index.js';
import { Cluster } from './fixtures/cluster.js';
import { createFaultNet, faultMode } from './fixtures/fault-net.js';
import { ringkvCli } from './fixtures/cli-capture.js';
import { until } from './fixtures/history.js';

t.test('protected mode: beyond loopback, clients need a token unless insecureClients', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-protected-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const common = { host: '0.0.0.0', port: 0, secret: 'protected', logger: silentLogger, shards: 1 } as const;
  await t.rejects(startNode({ ...common, dir: join(dir, 'a') }), /clients would need no token; set RINGKV_CLIENT_TOKEN/);
  const open = await startNode({ ...common, dir: join(dir, 'b'), insecureClients: true });
  await open.close();
  const guarded = await startNode({ ...common, dir: join(dir, 'c'), clientToken: 'tok' });
  await guarded.close();
  t.pass('with a token or insecureClients it starts');
});

function statusOver(address: string, ca: Buffer): Promise<StatusJson | undefined> {
  return new Promise((resolve) => {
    const request = get(`https://${address}/status`, { ca, timeout: 3_000 }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => {
        try {
          resolve(JSON.parse(body) as StatusJson);
        } catch {
          resolve(undefined);
        }
      });
    });
    request.on('error', () => resolve(undefined));
    request.on('timeout', () => request.destroy());
  });
}

t.test('nodes in their own network namespaces: advertise, seeds, TLS and a staged join', { skip: faultMode() !== 'netns' ? 'needs root with ip and iptables (netns mode)' : false }, async (t) => {
  const net = await createFaultNet({ nodes: 4, mode: 'netns' });
  const hosts = [0, 1, 2, 3].map((i) => (net.placement(i) as { options: { host: string } }).options.host);
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-multihost-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=ringkv-test',
    '-addext', `subjectAltName=${hosts.map((h) => `IP:${h}`).join(',')}`, '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  const ca = readFileSync(certFile);
  const token = 'multihost-token';
  const cluster = new Cluster({
    nodes: 3,
    secret: 'multihost-secret',
    network: net,
    nodeOptions: (i) => ({ tls: { certFile, keyFile, caFile: certFile }, clientToken: token, insecureClients: false, partitionBits: 6, scaleReportIntervalMs: 200, ...(i === 3 ? { stagedJoin: true } : {}) }),
  });
  t.teardown(async () => {
    await cluster.stop();
    await net.close();
    rmSync(dir, { recursive: true, force: true });
  });
  t.comment(net.description);
  for (let i = 0; i < 3; i++) await cluster.startNode(i);
  t.same(cluster.nodes.map((n) => n.address), hosts.slice(0, 3).map((h) => `${h}:7000`), 'each node advertises its own interface');
  t.ok(cluster.nodes.every((n) => n.url.startsWith('wss://')), 'clients and peers reach them over TLS');
  const normal = async (want: number): Promise<boolean> => {
    const views = await Promise.all(cluster.nodes.map((n) => statusOver(n.address, ca)));
    return views.every((v) => v !== undefined && v.members.filter((m) => m.up && m.status === 'normal').length === want);
  };
  await until('three nodes in three namespaces see each other normal', () => normal(3), 120_000);
  const seen = (await statusOver(cluster.nodes[2]!.address, ca))!;
  t.same(seen.members.map((m) => m.address).sort(), hosts.slice(0, 3).map((h) => `${h}:7000`).sort(), 'gossip carries the advertised addresses');

  await t.rejects(connect([cluster.nodes[0]!.url], { caFile: certFile }).then((c) => c.put('k', 'v')), /KV_AUTH|token/, 'no token: refused');
  const client = await connect(cluster.nodes.map((n) => n.url), { caFile: certFile, token });
  t.teardown(() => client.close());
  for (let i = 0; i < 50; i++) await client.put(`mh-${i}`, `v${i}`, { w: 3 });
  // Distinct values: a write retried through another coordinator may leave an equal sibling.
  const valuesOf = async (key: string, r: number): Promise<string[]> => [...new Set((await client.get(key, { r })).values.map((v) => Buffer.from(v).toString()))];
  for (let i = 0; i < 50; i++) t.same(await valuesOf(`mh-${i}`, 3), [`v${i}`]);

  const fourth = await cluster.startNode(3);
  const cli = (...args: string[]): ReturnType<typeof ringkvCli> => ringkvCli(['--url', cluster.nodes[0]!.url, '--ca-file', certFile, '--token', token, ...args]);
  await until('node 3 waits for a plan', async () => (await statusOver(cluster.nodes[0]!.address, ca))?.members.some((m) => m.id === fourth.id && m.status === 'joining') === true, 60_000);
  const staged = await cli('plan', 'join', fourth.address);
  t.equal(staged.code, 0, staged.err);
  await until('node 0 knows node 3 waits for a plan (its load report arrived)', async () => (JSON.parse((await cli('plan', '--json')).out) as { report: { refusals: string[] } }).report.refusals.length === 0, 60_000);
  const committed = await cli('commit', '--wait');
  t.equal(committed.code, 0, committed.err);
  t.match(committed.out, /plan done/);
  await until('four nodes normal', () => normal(4), 120_000);
  for (let i = 0; i < 50; i++) t.same(await valuesOf(`mh-${i}`, 2), [`v${i}`], `mh-${i} after the join`);
});
