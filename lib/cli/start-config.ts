/**
 * Where `ringkv start` takes its settings from, in one documented precedence: command-line
 * flags, then RINGKV_* environment variables, then a YAML file (`--config ringkv.yaml`, or
 * RINGKV_CONFIG), then the defaults. Every start flag has its variable (`--min-nodes` is
 * RINGKV_MIN_NODES, `--seeds` RINGKV_SEEDS) and its file key (`min-nodes: 3` or
 * `minNodes: 3`), checked by the same parser as the flag, so a bad value in any source is a
 * usage error naming the source. The cluster secret and the client token never come from a
 * file or a flag: RINGKV_SECRET (or --secret-file) and RINGKV_CLIENT_TOKEN. The `yaml`
 * package enters here and only here. Owner: the CLI's main thread.
 */

import { parse as parseYaml } from 'yaml';
import { UsageError } from './cli-io.js';

/** A start flag, as commander describes it. */
export interface StartOptionSpec {
  /** camelCase attribute (minNodes). */
  readonly attr: string;
  /** --min-nodes */
  readonly long: string;
  readonly takesValue: boolean;
  readonly parse?: (value: string) => unknown;
}

/** RINGKV_MIN_NODES for --min-nodes. */
export function envNameOf(long: string): string {
  return `RINGKV_${long.replace(/^--/, '').replaceAll('-', '_').toUpperCase()}`;
}

function convert(spec: StartOptionSpec, raw: unknown, where: string): unknown {
  if (!spec.takesValue) {
    if (raw === true || raw === 'true' || raw === '1') return true;
    if (raw === false || raw === 'false' || raw === '0') return undefined;
    throw new UsageError(`${where}: ${spec.long} is a switch: true or false, got ${JSON.stringify(raw)}`);
  }
  if (raw === null || typeof raw === 'object' && !Array.isArray(raw)) throw new UsageError(`${where}: ${spec.long} needs a value`);
  const text = Array.isArray(raw) ? raw.map(String).join(',') : String(raw);
  try {
    return spec.parse ? spec.parse(text) : text;
  } catch (error) {
    throw new UsageError(`${where}: ${spec.long} ${(error as Error).message}`);
  }
}

/** The settings of a YAML config file, by attribute, checked against the start flags. */
export function parseConfigFile(text: string, path: string, specs: readonly StartOptionSpec[]): Map<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new UsageError(`${path}: not valid YAML: ${(error as Error).message}`);
  }
  if (doc === null || doc === undefined) return new Map();
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`${path}: expected a mapping of start settings (port: 7070, seeds: [...])`);
  const byKey = new Map<string, StartOptionSpec>();
  for (const spec of specs) {
    byKey.set(spec.attr, spec);
    byKey.set(spec.long.replace(/^--/, ''), spec);
  }
  const out = new Map<string, unknown>();
  for (const [key, value] of Object.entries(doc)) {
    const spec = byKey.get(key);
    if (spec === undefined || spec.attr === 'config') {
      const hint = key === 'secret' || key === 'client-token' || key === 'clientToken' ? ' (secrets come from RINGKV_SECRET / --secret-file and RINGKV_CLIENT_TOKEN, never from a file)' : '';
      throw new UsageError(`${path}: unknown setting ${JSON.stringify(key)}${hint}`);
    }
    out.set(spec.attr, convert(spec, value, path));
  }
  return out;
}

/**
 * The start flags with the environment and the config file applied under the command line:
 * `sourceOf(attr)` is 'cli' for a flag given on the command line.
 */
export function resolveStartFlags<T extends object>(
  specs: readonly StartOptionSpec[],
  flags: T,
  sourceOf: (attr: string) => string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string,
): T {
  const out = { ...flags } as Record<string, unknown>;
  const given = out.config as string | undefined;
  const configPath = sourceOf('config') === 'cli' ? given : (env.RINGKV_CONFIG ?? given);
  let file = new Map<string, unknown>();
  if (configPath !== undefined && configPath !== '') {
    let text: string;
    try {
      text = readFile(configPath);
    } catch (error) {
      throw new UsageError(`cannot read the config file ${configPath}: ${(error as Error).message}`);
    }
    file = parseConfigFile(text, configPath, specs);
  }
  for (const spec of specs) {
    if (spec.attr === 'config' || sourceOf(spec.attr) === 'cli') continue;
    const name = envNameOf(spec.long);
    const fromEnv = env[name];
    if (fromEnv !== undefined && fromEnv !== '') out[spec.attr] = convert(spec, fromEnv, name);
    else if (file.has(spec.attr)) out[spec.attr] = file.get(spec.attr);
    if (out[spec.attr] === undefined) delete out[spec.attr];
  }
  return out as T;
}
