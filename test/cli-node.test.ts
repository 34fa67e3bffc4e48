/**
 * End to end through real processes: `ringkv start` as a child process on a loopback port
 * chosen from our pid, then `ringkv put/get/del/status/endpoints` as further processes and
 * the library client (connect) against it, then SIGTERM stops the node cleanly (exit 0).
 */

import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect } from '../lib/client/index.js';

const main = join(dirname(fileURLToPath(import.meta.url)), '../lib/cli/main.js');
const port = 20_000 + (process.pid % 20_000);
const url = `ws://127.0.0.1:${port}`;
const run = promisify(execFile);

async function ringkv(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [main, '--url', url, ...args], { timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

t.test('a node started by the CLI serves the CLI and the client, and stops on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const node = spawn(process.execPath, [main, 'start', '--port', String(port), '--dir', dir, '--shards', '1', '--log-level', 'error'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  const exited = new Promise<number | null>((resolve) => node.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (node.exitCode === null) node.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    node.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('Press Ctrl-C')) resolve();
    });
    void exited.then((code) => reject(new Error(`node exited early (${code}): ${stdout}`)));
  });
  t.match(stdout, new RegExp(`listening on ${url}`));

  const put = await ringkv('put', 'greeting', 'hello');
  t.equal(put.code, 0);
  t.match(put.stdout, /^OK\ncontext: [A-Za-z0-9+/=]+\n$/);
  const got = await ringkv('get', 'greeting');
  t.equal(got.code, 0);
  t.match(got.stdout, /^hello\ncontext: [A-Za-z0-9+/=]+\n$/);
  const context = /context: (\S+)/.exec(got.stdout)![1]!;
  t.equal((await ringkv('put', 'greeting', 'bonjour', '--context', context)).code, 0);
  const second = await ringkv('get', 'greeting');
  t.match(second.stdout, /^bonjour\n/, 'the put with the context superseded the old value');
  t.equal((await ringkv('del', 'greeting', '--context', /context: (\S+)/.exec(second.stdout)![1]!)).code, 0);
  const missing = await ringkv('get', 'greeting');
  t.equal(missing.code, 0);
  t.match(missing.stdout, /^\(not found\)\n/);
  const status = await ringkv('status');
  t.equal(status.code, 0);
  t.match(status.stdout, new RegExp(`UN  127\\.0\\.0\\.1:${port}`));
  t.match((await ringkv('endpoints', 'k')).stdout, /^key "k": token 0x[0-9a-f]{8}, partition \d+\n/);
  t.match((await ringkv('ring')).stdout, /Partitions: \d+/);

  const client = await connect(`127.0.0.1:${port}`);
  const results = await client.batch([
    { type: 'put', key: 'a', value: 'x' },
    { type: 'put', key: new Uint8Array([0, 1]), value: new Uint8Array([2]) },
    { type: 'get', key: 'a' },
  ]);
  t.equal(results.length, 3);
  const a = await client.get('a');
  t.same(a.values.map((v) => Buffer.from(v).toString()), ['x']);
  t.equal(client.ringView()!.members.length, 1);
  await client.close();

  const refused = await run(process.execPath, [main, '--url', '127.0.0.1:1', '--timeout', '2000', 'get', 'k']).catch((e: unknown) => e as { code: number; stderr: string });
  t.equal((refused as { code: number }).code, 1);
  t.match((refused as { stderr: string }).stderr, /^error KV_UNAVAILABLE: /);

  node.kill('SIGTERM');
  t.equal(await exited, 0, 'a clean stop exits 0');
  t.match(stdout, /SIGTERM: stopping [\s\S]*stopped\n/);
});
