/**
 * `local`: the provisioner for development and tests. Scale-out starts one more `ringkv start`
 * process on this machine (loopback, a free port, its own data directory under `dir`, seeded
 * with this node, the same flags this node was started with: `args`); release waits for the
 * decommissioned node's process to exit (it exits by itself after leaving) and deletes its
 * data directory when this provisioner created it. New nodes are named `scaled-<8 hex digits>`,
 * which sorts after the default `n-<hex>` ids, so they lead the autoscaler (lowest id) only
 * when no original member can, and rarely start nodes of their own. Nodes it started get
 * RINGKV_EXIT_WITH_PARENT=1, so they stop when this node's process goes away, and this node's
 * close stops them (SIGTERM, then SIGKILL after cliChildStopTimeoutMs): a development cluster
 * never leaks processes. Owned by the supervisor (main thread).
 */

import { systemClock, type Clock } from '../../base/clock.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { limits } from '../../base/limits.js';
import type { Logger } from '../../base/log.js';
import type { ProvisionedNode, Provisioner } from './provisioner.js';

export interface LocalProvisionerOptions {
  readonly logger: Logger;
  /** host:port new nodes seed from (this node). */
  readonly seed: string;
  /** Directory under which each new node gets `auto-<time>-<n>`. */
  readonly dir: string;
  /** The command that runs `ringkv`: default [node, <this package>/build/lib/cli/main.js]. */
  readonly command?: readonly string[];
  /** Flags passed to every `ringkv start` besides --host/--port/--dir/--seeds (e.g. the autoscale flags). */
  readonly args?: readonly string[];
  /** Names new nodes' directories by time; default the system's clock. */
  readonly clock?: Clock;
}

interface Child {
  readonly process: ChildProcess;
  readonly dir: string;
  id?: string;
  exited: Promise<void>;
}

/** This process's environment without the RINGKV_* settings (the new node gets its flags explicitly), secrets kept. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('RINGKV_') || name === 'RINGKV_SECRET' || name === 'RINGKV_CLIENT_TOKEN') env[name] = value;
  return { ...env, RINGKV_EXIT_WITH_PARENT: '1' };
}

const defaultCommand = (): string[] => [process.execPath, fileURLToPath(new URL('../../cli/main.js', import.meta.url))];

export class LocalProvisioner implements Provisioner {
  readonly name = 'local';
  readonly #o: LocalProvisionerOptions;
  readonly #children: Child[] = [];
  #counter = 0;

  constructor(options: LocalProvisionerOptions) {
    this.#o = options;
  }

  async scaleOut(_targetNodes: number): Promise<void> {
    const dir = join(this.#o.dir, `auto-${Math.floor((this.#o.clock ?? systemClock).wallMs()).toString(36)}-${this.#counter++}`);
    const [program, ...prefix] = this.#o.command ?? defaultCommand();
    const id = `scaled-${randomBytes(4).toString('hex')}`;
    const args = [...prefix, 'start', '--id', id, '--host', '127.0.0.1', '--port', '0', '--dir', dir, '--seeds', this.#o.seed, ...(this.#o.args ?? [])];
    const child = spawn(program!, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
    const entry: Child = { process: child, dir, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
    this.#children.push(entry);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the new node did not start within ${limits.provisionerStartTimeoutMs} ms: ${stderr}`)), limits.provisionerStartTimeoutMs);
      lines.on('line', (line) => {
        if (line.startsWith(`ringkv node ${id} listening on `)) {
          clearTimeout(timer);
          resolve();
        }
      });
      void entry.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`the new node exited before it listened (code ${child.exitCode}): ${stderr}`));
      });
    });
    entry.id = id;
    this.#o.logger.info({ node: id, pid: child.pid, dir }, 'local provisioner started a node');
  }

  async release(victim: { id: string } | undefined): Promise<void> {
    const entry = victim === undefined ? undefined : this.#children.find((c) => c.id === victim.id);
    if (victim === undefined || entry === undefined) return; // not ours: it exits by itself after leaving
    const timer = setTimeout(() => entry.process.kill('SIGTERM'), limits.cliChildStopTimeoutMs);
    await entry.exited;
    clearTimeout(timer);
    this.#children.splice(this.#children.indexOf(entry), 1);
    rmSync(entry.dir, { recursive: true, force: true });
    this.#o.logger.info({ node: victim.id, dir: entry.dir }, 'local provisioner released a node');
  }

  nodes(): readonly ProvisionedNode[] {
    return this.#children.map((c) => ({ ...(c.id ? { id: c.id } : {}), ...(c.process.pid ? { pid: c.process.pid } : {}), dir: c.dir }));
  }

  async close(): Promise<void> {
    const running = this.#children.filter((c) => c.process.exitCode === null && c.process.signalCode === null);
    for (const c of running) c.process.kill('SIGTERM');
    const timer = setTimeout(() => running.forEach((c) => c.process.kill('SIGKILL')), limits.cliChildStopTimeoutMs);
    await Promise.all(running.map((c) => c.exited));
    clearTimeout(timer);
  }
}
