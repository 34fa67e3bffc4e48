/**
 * The autoscaler end to end on real processes (issue 13): three `ringkv start` nodes with
 * `--autoscale local --min-nodes 3 --max-nodes 5` (short windows and cooldowns set here).
 * Writers at W=2 hold load well above the target: the cluster grows to at least 4 nodes, all
 * normal and owning partitions. The load drops to a trickle (writers keep writing): it shrinks
 * back to 3 by decommissioning. Every acknowledged write then reads back at R=2. Prints the
 * time to scale out and in and the write p99 before, during and after each change.
 */

import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect } from '../lib/client/index.js';
import type { AutoscaleStatus } from '../lib/supervisor/scaling/autoscaler.js';
import type { StatusJson } from '../lib/supervisor/index.js';
import { onProcessExit } from './fixtures/cluster.js';
import { until } from './fixtures/history.js';
import { ringkvCli } from './fixtures/cli-capture.js';

const main = join(dirname(fileURLToPath(import.meta.url)), '../lib/cli/main.js');
const secret = 'autoscale-test-secret';
const autoscaleFlags = [
  '--autoscale', 'local', '--min-nodes', '3', '--max-nodes', '5', '--target-ops-per-node', '25',
  '--scale-out-window-seconds', '4', '--scale-in-window-seconds', '8', '--cooldown-seconds', '4', '--autoscale-interval-ms', '500',
  '--partition-bits', '6', '--gossip-interval-ms', '200', '--shards', '1', '--log-level', 'warn',
];

interface Sample {
  atMs: number;
  latencyMs: number;
}

function p99(samples: readonly Sample[], fromMs: number, toMs: number): string {
  const xs = samples.filter((s) => s.atMs >= fromMs && s.atMs < toMs).map((s) => s.latencyMs).sort((a, b) => a - b);
  return xs.length === 0 ? 'n/a' : `${xs[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!.toFixed(1)} ms (${xs.length} writes)`;
}

async function startProcess(args: string[]): Promise<{ child: ChildProcess; url: string; address: string }> {
  const child = spawn(process.execPath, [main, 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RINGKV_SECRET: secret } });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-8000)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start: ${stderr}`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /listening on (\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`node exited (${code}): ${stderr}`)));
  });
  return { child, url, address: url.replace(/^wss?:\/\//, '') };
}

async function statusOf(address: string): Promise<StatusJson | undefined> {
  try {
    return (await (await fetch(`http://${address}/status`, { signal: AbortSignal.timeout(3_000) })).json()) as StatusJson;
  } catch {
    return undefined;
  }
}

t.test('the cluster grows under load and shrinks back when it stops, losing no acknowledged write', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ringkv-autoscale-'));
  const nodes: ChildProcess[] = [];
  const unhook = onProcessExit(() => nodes.forEach((n) => n.kill('SIGKILL')));
  t.teardown(async () => {
    await Promise.all(nodes.map((n) => (n.exitCode === null && n.signalCode === null ? new Promise((r) => (n.once('exit', r), n.kill('SIGTERM'))) : undefined)));
    unhook();
    rmSync(root, { recursive: true, force: true });
  });
  const first = await startProcess(['--port', '0', '--host', '127.0.0.1', '--dir', join(root, 'node-0'), ...autoscaleFlags]);
  nodes.push(first.child);
  for (let i = 1; i < 3; i++) nodes.push((await startProcess(['--port', '0', '--host', '127.0.0.1', '--dir', join(root, `node-${i}`), '--seeds', first.address, ...autoscaleFlags])).child);
  const live = async (): Promise<StatusJson[]> => {
    const s = await statusOf(first.address);
    const addresses = s?.members.filter((m) => m.status !== 'left' && m.up).map((m) => m.address) ?? [];
    return (await Promise.all(addresses.map(statusOf))).filter((x): x is StatusJson => x !== undefined);
  };
  const normalOwners = async (): Promise<number> => {
    const s = await statusOf(first.address);
    if (s === undefined) return -1;
    const members = s.members.filter((m) => m.status !== 'left');
    return members.every((m) => m.status === 'normal' && m.up && m.partitions > 0) ? members.length : -1;
  };
  await until('3 nodes normal', async () => (await normalOwners()) === 3, 60_000);

  const client = await connect([first.url]);
  t.teardown(() => client.close());
  const acked = new Map<string, string>();
  const samples: Sample[] = [];
  let failed = 0;
  let heavy = true;
  let stop = false;
  const t0 = performance.now();
  const writer = async (w: number): Promise<void> => {
    for (let n = 0; !stop; n++) {
      if (!heavy && w > 0) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      const key = `auto-${w}-${n}`;
      const start = performance.now();
      try {
        await client.put(key, key, { w: 2 });
        acked.set(key, key);
        samples.push({ atMs: start - t0, latencyMs: performance.now() - start });
      } catch {
        failed++;
      }
      if (!heavy) await new Promise((r) => setTimeout(r, 200));
    }
  };
  const writers = Array.from({ length: 16 }, (_, w) => writer(w));

  await until('the cluster grows to at least 4 normal nodes owning partitions', async () => (await normalOwners()) >= 4, 240_000);
  const scaleOutMs = performance.now() - t0;
  const afterOut = await live();
  const outDecision = afterOut.map((s) => s.scaling?.autoscale?.history.find((d) => d.action === 'scale-out')).find((d) => d !== undefined);
  t.ok(outDecision, 'a scale-out decision is recorded');
  t.match(outDecision?.reason ?? '', /ops\/s per node > 25|event-loop/, `scale-out reason: ${outDecision?.reason}`);
  const outAtMs = outDecision === undefined ? 0 : outDecision.atMs - (Date.now() - (performance.now() - t0));
  await new Promise((r) => setTimeout(r, 5_000)); // the "after" window of the scale-out
  const heavyEndMs = performance.now() - t0;
  heavy = false;

  await until('the cluster shrinks back to 3 normal nodes', async () => (await normalOwners()) === 3, 300_000);
  const shrunkMs = performance.now() - t0;
  const views = await live();
  t.equal(views.length, 3, 'three nodes answer');
  const inDecision = views.map((s) => s.scaling?.autoscale?.history.find((d) => d.action === 'scale-in')).find((d) => d !== undefined);
  t.ok(inDecision, 'a scale-in decision is recorded');
  const inAtMs = inDecision === undefined ? heavyEndMs : inDecision.atMs - (Date.now() - (performance.now() - t0));
  await new Promise((r) => setTimeout(r, 3_000)); // the "after" window of the scale-in
  stop = true;
  await Promise.all(writers);
  const endMs = performance.now() - t0;

  const statusJson = (await (await fetch(`http://${views[0]!.address}/autoscale`)).json()) as AutoscaleStatus;
  t.ok(statusJson.leader, `autoscale status names a leader: ${statusJson.leader}`);
  const shown = await ringkvCli(['--url', `ws://${views[0]!.address}`, 'autoscale', 'status']);
  t.equal(shown.code, 0, shown.err);
  t.match(shown.out, /Autoscaler \(local\): (this node leads|leader \S+)\n  nodes 3\.\.5, target 25 ops\/s per node/);
  t.match(shown.out, /last decision #\d+ by \S+ at .*: scale-in \d -> \d \(decommission \S+\)/);
  const metrics = await (await fetch(`http://${views.find((v) => v.scaling?.autoscale?.isLeader)?.address ?? views[0]!.address}/metrics`)).text();
  t.match(metrics, /ringkv_autoscale_decisions_total\{action="scale-(out|in)",state="(pending|done)"\} \d+/, 'decisions are counted in /metrics');

  const reader = await connect(views.map((v) => `ws://${v.address}`));
  t.teardown(() => reader.close());
  const keys = [...acked.keys()];
  const lost: string[] = [];
  for (let i = 0; i < keys.length; i += 64) {
    await Promise.all(keys.slice(i, i + 64).map(async (key) => {
      // A read that times out on a busy machine is retried: only a value that is not there is lost.
      for (let attempt = 1; ; attempt++) {
        try {
          const result = await reader.get(key, { r: 2 });
          if (!result.values.some((v) => Buffer.from(v).toString() === acked.get(key))) lost.push(key);
          return;
        } catch (error) {
          if (attempt >= 5) throw error;
        }
      }
    }));
  }
  t.ok(acked.size > 500, `${acked.size} acknowledged writes (${failed} failed or indeterminate)`);
  t.same(lost.slice(0, 10), [], `every acknowledged write reads back at R=2 (${lost.length} missing)`);

  t.comment(`time to scale out (load start -> 4 normal owners): ${(scaleOutMs / 1000).toFixed(1)} s`);
  t.comment(`time to scale in (load drop -> back to 3): ${((shrunkMs - heavyEndMs) / 1000).toFixed(1)} s`);
  t.comment(`write p99 before scale-out: ${p99(samples, 0, outAtMs)}; during: ${p99(samples, outAtMs, scaleOutMs)}; after: ${p99(samples, scaleOutMs, heavyEndMs)}`);
  t.comment(`write p99 before scale-in: ${p99(samples, heavyEndMs, inAtMs)}; during: ${p99(samples, inAtMs, shrunkMs)}; after: ${p99(samples, shrunkMs, endMs)}`);
});
