/**
 * The layer table of DESIGN.md §4, enforced (Pebble's TestForbiddenImports): a file under
 * lib/<folder>/ may import only folders of its own layer or below, and each third-party
 * package enters through its one seam file. Node built-ins are free everywhere.
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export const layers: Record<string, number> = {
  base: 0,
  causality: 1,
  ring: 1,
  mailbox: 1,
  storage: 1,
  membership: 2,
  antientropy: 2,
  replication: 2,
  plan: 2,
  autoscale: 2,
  protocol: 3,
  transport: 4,
  shard: 4,
  supervisor: 5,
  client: 5,
  store: 5,
  server: 6,
  cli: 6,
  http: 6,
};

/** Package → the files (relative to the repo root) allowed to import it. */
export const seams: Record<string, RegExp> = {
  pino: /^lib\/base\/log\.ts$/,
  piscina: /^lib\/storage\/compaction-pool\.ts$/,
  'lz4-napi': /^lib\/storage\/compression\.ts$/,
  '@node-rs/crc32': /^lib\/base\/crc32c\.ts$/,
  comlink: /^(lib\/shard\/control-channel\.ts|workers\/shard-worker\.ts)$/,
  msgpackr: /^lib\/protocol\/codec\.ts$/,
  ws: /^lib\/transport\/websocket\.ts$/,
  commander: /^lib\/cli\/program\.ts$/,
  'prom-client': /^lib\/http\/metrics\.ts$/,
  yaml: /^lib\/cli\/start-config\.ts$/,
};

function walk(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(walk(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

const importPattern = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm;

export function importsOf(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(importPattern)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** Violations of one file: `file` and `specifiers` relative to the repo root. */
export function violations(file: string, specifiers: string[]): string[] {
  const problems: string[] = [];
  const fromFolder = file.startsWith('lib/') ? file.split('/')[1]! : undefined;
  const fromLayer = fromFolder === undefined ? Infinity : (layers[fromFolder] ?? Infinity);
  if (file.startsWith('lib/') && file.split('/').length > 2 && layers[fromFolder!] === undefined) {
    problems.push(`${file}: folder lib/${fromFolder} is not in the layer table`);
  }
  for (const spec of specifiers) {
    if (spec.startsWith('node:')) continue;
    if (spec.startsWith('.')) {
      const target = relative(root, resolve(root, dirname(file), spec)).replaceAll('\\', '/');
      if (!target.startsWith('lib/')) {
        if (file.startsWith('lib/')) problems.push(`${file}: imports ${spec} outside lib/`);
        continue;
      }
      const toFolder = target.split('/')[1]!;
      const toLayer = layers[toFolder] ?? Infinity;
      if (toLayer > fromLayer) problems.push(`${file}: layer ${fromLayer} (${fromFolder}) imports layer ${toLayer} (${toFolder})`);
      continue;
    }
    const pkg = packageOf(spec);
    const seam = seams[pkg];
    if (!seam) problems.push(`${file}: imports ${pkg}, which has no seam in the layer table`);
    else if (!seam.test(file)) problems.push(`${file}: imports ${pkg} outside its seam`);
  }
  return problems;
}

t.test('the checker itself catches violations', async (t) => {
  t.same(importsOf("import { a } from '../x.js';\nexport * from './y.js';\nconst m = await import('z');"), [
    '../x.js',
    './y.js',
    'z',
  ]);
  t.match(violations('lib/base/hash.ts', ['../storage/engine.js']), [/layer 0 \(base\) imports layer 1/]);
  t.match(violations('lib/storage/engine.ts', ['pino']), [/imports pino outside its seam/]);
  t.match(violations('lib/storage/engine.ts', ['left-pad']), [/no seam/]);
  t.same(violations('lib/base/log.ts', ['pino', 'node:fs']), []);
  t.same(violations('lib/shard/x.ts', ['../storage/engine.js', '../base/index.js']), []);
  t.match(violations('lib/utils/x.ts', []), [/not in the layer table/]);
});

t.test('every file in lib/ and workers/ respects the layer table and the seams', async (t) => {
  const files = [...walk(join(root, 'lib')), ...walk(join(root, 'workers'))];
  t.ok(files.length > 10, `found ${files.length} files`);
  const problems: string[] = [];
  for (const path of files) {
    const file = relative(root, path).replaceAll('\\', '/');
    problems.push(...violations(file, importsOf(readFileSync(path, 'utf8'))));
  }
  t.same(problems, [], problems.join('\n'));
});

t.test('no utils, helpers or misc modules', async (t) => {
  const files = walk(join(root, 'lib')).map((p) => relative(root, p));
  const bad = files.filter((f) => /(^|\/)(utils?|helpers?|misc)(\.ts|\/)/.test(f));
  t.same(bad, []);
});
