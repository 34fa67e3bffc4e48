/**
 * The deployment files (issue 13): no image can be pulled or built on these machines, so this
 * checks what can be checked here. Every Kubernetes manifest parses (yaml) into objects of the
 * kinds the README lists; every RINGKV_* variable and every --flag the manifests, the
 * ConfigMap's ringkv.yaml and the Dockerfile use exists in `ringkv start --help` (or the
 * CLI's global help for client variables); the ConfigMap's ringkv.yaml is accepted by `ringkv
 * start --config` and reaches startNode with the StatefulSet's variables applied over it; the
 * Dockerfile is multi-stage, non-root and installs with `npm ci --omit=dev`; and
 * autoscale-kubectl.sh runs `kubectl scale` with the target count (a fake kubectl on PATH).
 * Also the precedence flags > environment > file with a file of our own.
 */

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { CliIo } from '../lib/cli/cli-io.js';
import { runCli } from '../lib/cli/program.js';
import type { NodeOptions, RingkvNode } from '../lib/server/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const kube = join(root, 'deploy/kubernetes');

async function help(args: string[]): Promise<string> {
  let out = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s), env: {} } as unknown as CliIo;
  await runCli([...args, '--help'], io);
  return out;
}

/** Runs `ringkv start` with a fake startNode; returns the options it got. */
async function startWith(args: string[], env: Record<string, string>, files: Record<string, string> = {}): Promise<{ code: number; options?: NodeOptions; err: string }> {
  let options: NodeOptions | undefined;
  let err = '';
  const io = {
    out: () => undefined,
    err: (s: string) => void (err += s),
    env,
    readFile: (path: string) => {
      if (path in files) return files[path]!;
      return readFileSync(path, 'utf8');
    },
    startNode: async (o: NodeOptions) => {
      options = o;
      return { id: 'n', url: 'ws://x:1', close: async () => undefined } as unknown as RingkvNode;
    },
    waitForSignal: async () => 'SIGTERM',
  } as unknown as CliIo;
  const code = await runCli(['start', ...args], io);
  return { code, ...(options ? { options } : {}), err };
}

function manifests(): { file: string; doc: Record<string, unknown> }[] {
  const out: { file: string; doc: Record<string, unknown> }[] = [];
  for (const file of readdirSync(kube).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(join(kube, file), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      out.push({ file, doc: doc.toJSON() as Record<string, unknown> });
    }
  }
  return out;
}

t.test('every manifest parses into the objects a deployment needs', async (t) => {
  const docs = manifests();
  const kinds = docs.map(({ doc }) => `${doc.kind as string}/${(doc.metadata as { name: string } | undefined)?.name}`).sort();
  t.same(kinds, ['ConfigMap/ringkv', 'Kustomization/undefined', 'PodDisruptionBudget/ringkv', 'Role/ringkv-autoscaler', 'RoleBinding/ringkv-autoscaler', 'Secret/ringkv', 'Service/ringkv', 'Service/ringkv-peers', 'ServiceAccount/ringkv', 'StatefulSet/ringkv'].sort());
  const kustomization = docs.find(({ doc }) => doc.kind === 'Kustomization')!.doc as { resources: string[] };
  for (const resource of kustomization.resources) t.ok(existsSync(join(kube, resource)), `kustomization lists ${resource}`);
  const sts = docs.find(({ doc }) => doc.kind === 'StatefulSet')!.doc as any;
  const pod = sts.spec.template.spec;
  const container = pod.containers[0];
  t.equal(sts.spec.serviceName, 'ringkv-peers', 'stable names through the headless service');
  t.equal(pod.securityContext.runAsNonRoot, true);
  t.equal(container.readinessProbe.httpGet.path, '/status');
  t.equal(container.livenessProbe.httpGet.path, '/status');
  t.same(container.lifecycle.preStop.exec.command.slice(-2), ['autoscale', 'prestop']);
  t.equal(sts.spec.volumeClaimTemplates[0].metadata.name, 'data');
  t.equal(container.volumeMounts.find((m: { name: string }) => m.name === 'data').mountPath, '/data');
  const env = new Map<string, any>(container.env.map((e: { name: string }) => [e.name, e]));
  t.equal(env.get('RINGKV_SECRET').valueFrom.secretKeyRef.name, 'ringkv', 'the secret from a Secret');
  t.match(env.get('RINGKV_ADVERTISE').value, /^\$\(POD_NAME\)\.ringkv-peers\./, '--advertise from the pod name');
  t.match(env.get('RINGKV_SEEDS').value, /^ringkv-0\.ringkv-peers\.[^,]+,ringkv-1\.[^,]+,ringkv-2\./, 'seeds: the first pods');
  const headless = docs.find(({ doc }) => (doc.metadata as { name: string } | undefined)?.name === 'ringkv-peers')!.doc as any;
  t.equal(headless.spec.clusterIP, 'None');
  const pdb = docs.find(({ doc }) => doc.kind === 'PodDisruptionBudget')!.doc as any;
  t.equal(pdb.spec.maxUnavailable, 1, 'one pod at a time keeps 2 of 3 replicas');
});

t.test('every variable and flag the manifests and the Dockerfile use exists in the CLI help', async (t) => {
  const startHelp = await help(['start']);
  const globalHelp = await help([]);
  const prestopHelp = await help(['autoscale', 'prestop']);
  const texts = [...readdirSync(kube).map((f) => readFileSync(join(kube, f), 'utf8')), readFileSync(join(root, 'Dockerfile'), 'utf8')];
  const variables = new Set(texts.flatMap((text) => [...text.matchAll(/\bRINGKV_[A-Z_]+\b/g)].map((m) => m[0])));
  const ownToTheScript = new Set(['RINGKV_STATEFULSET']);
  for (const name of variables) {
    if (ownToTheScript.has(name)) continue;
    t.ok(startHelp.includes(name) || globalHelp.includes(name), `${name} is documented by ringkv --help or ringkv start --help`);
  }
  t.ok(variables.size >= 8, `${variables.size} variables checked`);
  const flags = new Set(texts.flatMap((text) => [...text.matchAll(/(?<![\w-])--[a-z][a-z-]+/g)].map((m) => m[0])));
  for (const flag of flags) {
    if (['--omit', '--ignore-scripts', '--force', '--namespace', '--replicas', '--from-literal', '--from'].includes(flag)) continue; // npm, docker and kubectl flags
    t.ok(startHelp.includes(`${flag} `) || globalHelp.includes(`${flag} `) || prestopHelp.includes(`${flag} `), `${flag} exists`);
  }
  const configMap = parseAllDocuments(readFileSync(join(kube, 'configmap.yaml'), 'utf8'))[0]!.toJSON() as { data: { 'ringkv.yaml': string } };
  const keys = Object.keys(parseAllDocuments(configMap.data['ringkv.yaml'])[0]!.toJSON() as object);
  for (const key of keys) t.ok(startHelp.includes(`--${key} `), `config key ${key} is the start flag --${key}`);
});

t.test('the ConfigMap and the StatefulSet variables reach startNode, flags > env > file', async (t) => {
  const configMap = parseAllDocuments(readFileSync(join(kube, 'configmap.yaml'), 'utf8'))[0]!.toJSON() as { data: { 'ringkv.yaml': string } };
  const env = {
    RINGKV_CONFIG: '/etc/ringkv/ringkv.yaml',
    RINGKV_ID: 'ringkv-4',
    RINGKV_ADVERTISE: 'ringkv-4.ringkv-peers.db.svc.cluster.local:7070',
    RINGKV_SEEDS: 'ringkv-0.ringkv-peers.db.svc.cluster.local:7070,ringkv-1.ringkv-peers.db.svc.cluster.local:7070',
    RINGKV_SECRET: 'cluster-secret',
    RINGKV_CLIENT_TOKEN: 'client-token',
  };
  const pod = await startWith([], env, { '/etc/ringkv/ringkv.yaml': configMap.data['ringkv.yaml'] });
  t.equal(pod.code, 0, pod.err);
  const o = pod.options!;
  t.equal(o.id, 'ringkv-4');
  t.equal(o.advertise, env.RINGKV_ADVERTISE);
  t.same(o.seeds, env.RINGKV_SEEDS.split(','));
  t.equal(o.host, '0.0.0.0');
  t.equal(o.dir, '/data');
  t.equal(o.shards, 2);
  t.equal(o.clientToken, 'client-token');
  t.equal(o.autoscale?.provisioner, 'command:/opt/ringkv/deploy/kubernetes/autoscale-kubectl.sh');
  t.equal(o.autoscale?.scaleInVictim, 'provisioner');
  t.equal(o.autoscale?.maxNodes, 9);
  t.equal(o.autoscale?.scaleInWindowMs, 900_000);
  t.equal(o.capacityBytes, 40 * 1024 ** 3);

  const file = 'port: 7001\nshards: 3\nseeds: [a:1, b:2]\nstaged-join: true\nminNodes: 4\n';
  const layered = await startWith(['--port', '7003', '--autoscale', 'local'], { RINGKV_CONFIG: '/f.yaml', RINGKV_SHARDS: '5', RINGKV_INSECURE_CLIENTS: 'true' }, { '/f.yaml': file });
  t.equal(layered.code, 0, layered.err);
  t.equal(layered.options!.port, 7003, 'a flag beats the variable and the file');
  t.equal(layered.options!.shards, 5, 'a variable beats the file');
  t.same(layered.options!.seeds, ['a:1', 'b:2'], 'the file beats the default; lists may be YAML lists');
  t.equal(layered.options!.stagedJoin, true);
  t.equal(layered.options!.insecureClients, true);
  t.equal(layered.options!.autoscale?.minNodes, 4, 'camelCase keys too');
  t.ok(layered.options!.autoscale?.localArgs?.includes('--insecure-clients'), 'locally provisioned nodes inherit the switches');

  const bad = async (args: string[], envs: Record<string, string>, files: Record<string, string>, pattern: RegExp): Promise<void> => {
    const r = await startWith(args, envs, files);
    t.equal(r.code, 2, `usage error: ${pattern}`);
    t.match(r.err, pattern);
  };
  await bad(['--config', '/f.yaml'], {}, { '/f.yaml': 'secret: x\n' }, /unknown setting "secret" \(secrets come from RINGKV_SECRET/);
  await bad(['--config', '/f.yaml'], {}, { '/f.yaml': 'port: [1, 2\n' }, /not valid YAML/);
  await bad(['--config', '/f.yaml'], {}, { '/f.yaml': '- 1\n' }, /expected a mapping/);
  await bad(['--config', '/f.yaml'], {}, { '/f.yaml': 'port: 99999\n' }, /\/f.yaml: --port must be an integer/);
  await bad(['--config', '/f.yaml'], {}, { '/f.yaml': 'staged-join: maybe\n' }, /--staged-join is a switch/);
  await bad(['--config', '/f.yaml'], {}, { '/f.yaml': 'seeds: {a: 1}\n' }, /--seeds needs a value/);
  await bad([], { RINGKV_SHARDS: 'many' }, {}, /RINGKV_SHARDS: --shards must be an integer/);
  await bad(['--config', '/missing.yaml'], {}, {}, /cannot read the config file \/missing.yaml/);
  await bad(['--tls-cert', '/c.pem'], {}, {}, /--tls-cert and --tls-key go together/);
  const empty = await startWith(['--config', '/e.yaml'], {}, { '/e.yaml': '# nothing\n' });
  t.equal(empty.code, 0);
  const tls = await startWith(['--tls-cert', '/c.pem', '--tls-key', '/k.pem', '--tls-ca', '/ca.pem'], {});
  t.same(tls.options!.tls, { certFile: '/c.pem', keyFile: '/k.pem', caFile: '/ca.pem' });
});

t.test('the Dockerfile is multi-stage, non-root, production dependencies only', async (t) => {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
  t.ok([...text.matchAll(/^FROM /gm)].length >= 2, 'multi-stage');
  t.match(text, /npm ci --omit=dev/);
  const user = [...text.matchAll(/^USER (\S+)/gm)].map((m) => m[1]);
  t.ok(user.length > 0 && !user.includes('root') && !user.includes('0'), `runs as ${user.join(', ')}`);
  for (const [, source] of text.matchAll(/^COPY (?!--from)(\S+)/gm)) t.ok(existsSync(join(root, source!)), `COPY ${source} exists`);
});

t.test('autoscale-kubectl.sh scales the StatefulSet to the target', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-kubectl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'kubectl'), `#!/bin/sh\necho "$@" >> ${join(dir, 'calls')}\n`);
  chmodSync(join(dir, 'kubectl'), 0o755);
  const env = { ...process.env, PATH: `${dir}:${process.env.PATH}`, POD_NAMESPACE: 'db' };
  execFileSync(join(kube, 'autoscale-kubectl.sh'), ['scale-out', '4'], { env });
  execFileSync(join(kube, 'autoscale-kubectl.sh'), ['scale-in', '3'], { env: { ...env, RINGKV_STATEFULSET: 'kv' } });
  t.same(readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n'), ['--namespace db scale statefulset ringkv --replicas=4', '--namespace db scale statefulset kv --replicas=3']);
  t.throws(() => execFileSync(join(kube, 'autoscale-kubectl.sh'), ['grow', '9'], { env, stdio: 'pipe' }), /Command failed/, 'an unknown action fails');
});
