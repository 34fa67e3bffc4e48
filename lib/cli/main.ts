#!/usr/bin/env node
/**
 * The `ringkv` executable: builds the real CliIo (stdout/stderr, process.env, the remote
 * client, HTTP /status, startNode, child processes of this same script, SIGINT/SIGTERM) and
 * runs the program (program.ts), exiting with its code.
 */

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect } from '../client/index.js';
import { startNode } from '../server/index.js';
import type { ChildHandle, CliIo } from './cli-io.js';
import { runCli } from './program.js';
import { fetchStatus, httpJson, postJson, startRepair } from './status-fetch.js';

const mainScript = fileURLToPath(import.meta.url);

function versionOf(): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function spawnRingkv(args: string[]): ChildHandle {
  const child = spawn(process.execPath, [mainScript, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(127));
  });
  return { pid: child.pid, kill: (signal) => child.kill(signal), exited };
}

/**
 * The first SIGINT or SIGTERM starts a clean stop. Later signals must not kill the stop
 * half-way (a terminal's Ctrl-C reaches dev-cluster's nodes and then dev-cluster's SIGTERM
 * follows), so they are ignored, except a second SIGINT: a person pressing Ctrl-C again
 * wants out now (exit 130).
 */
function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    let stopping = false;
    const on = (signal: NodeJS.Signals): void => {
      if (!stopping) {
        stopping = true;
        resolve(signal);
      } else if (signal === 'SIGINT' && process.stdin.isTTY) {
        process.stderr.write('second Ctrl-C: exiting without a clean stop\n');
        process.exit(130);
      }
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

const io: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  connect,
  fetchStatus,
  startRepair,
  postJson,
  httpJson,
  sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
  startNode,
  readFile: (path) => readFileSync(path, 'utf8'),
  spawnRingkv,
  waitForSignal,
  version: versionOf(),
};

const code = await runCli(process.argv.slice(2), io);
// stdout and stderr are synchronous for files and pipes on Linux; exit at once so a node's
// leftover handles (or a client's reconnect timers) never keep a finished command alive.
process.exit(code);
