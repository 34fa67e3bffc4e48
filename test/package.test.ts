/**
 * What `npm pack` ships is the library, the CLI, the worker entry points and the dashboard —
 * no tests, benchmarks or source maps — and the `exports` map resolves: the package imports
 * itself by name and finds the public surface (DESIGN.md §5).
 */

import t from 'tap';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

t.test('npm pack ships the library, the CLI and the dashboard, and nothing else', { timeout: 120_000 }, async (t) => {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, maxBuffer: 64 * 1024 * 1024 });
  const files = ((JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files).map((f) => f.path);
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string>; exports: Record<string, unknown> };
  const wanted = [manifest.bin.ringkv!, 'build/lib/index.js', 'build/lib/index.d.ts', 'build/workers/shard-worker.js', 'build/workers/compaction-task.js', ...readdirSync(join(root, 'lib', 'http', 'dashboard')).map((f) => `lib/http/dashboard/${f}`)];
  t.same(wanted.filter((f) => !files.includes(f)), [], 'the entry points, workers and dashboard files are in');
  t.same(files.filter((f) => /^(test|perf|build\/test|build\/perf)\/|\.map$|\.ts$(?<!\.d\.ts$)/.test(f)), [], 'no tests, benchmarks, sources or maps');
  t.ok(files.length < 700, `${files.length} files (919 when the tests shipped)`);
});

t.test('the exports map: the package imports itself by name', async (t) => {
  const self = (await import('ringkv' as string)) as Record<string, unknown>;
  for (const name of ['openStore', 'startNode', 'connect']) t.type(self[name], 'function', name);
});
