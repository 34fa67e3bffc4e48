/**
 * What the `ringkv` commands need from the world, injected so the whole CLI runs in-process
 * in tests (a fake client, captured output, no signals): output streams, environment, the
 * remote client, GET /status, startNode, child processes and signals. main.ts builds the real
 * one. Also the small conversions every command shares (node URL from --url, base64,
 * printing values).
 *
 * Exit codes: 0 ok, 1 error (`error KV_CODE: message` on stderr), 2 usage.
 */

import type { Client, ClientOptions } from '../client/index.js';
import type { NodeOptions, RingkvNode, StatusJson } from '../server/index.js';

export interface ChildHandle {
  readonly pid: number | undefined;
  kill(signal: NodeJS.Signals): void;
  /** Resolves with the exit code (null: killed by a signal). */
  readonly exited: Promise<number | null>;
}

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  connect(urls: string[], options: ClientOptions): Promise<Client>;
  fetchStatus(url: string, options: { token?: string; caFile?: string; timeoutMs: number }): Promise<StatusJson>;
  /** POST /repair to the node at `url` (…/repair[?partition=p]). */
  startRepair(url: string, options: { token?: string; caFile?: string; timeoutMs: number }): Promise<void>;
  /** POST to the node, answered 200 with JSON (…/cleanup). */
  postJson(url: string, options: { token?: string; caFile?: string; timeoutMs: number }): Promise<unknown>;
  /** A request answered with JSON whatever its HTTP status (plan, commit, autoscale). */
  httpJson?(method: 'GET' | 'POST', url: string, options: { token?: string; caFile?: string; timeoutMs: number }): Promise<{ status: number; body: unknown }>;
  /** Waits `ms` (polling); a seam so tests need not sleep. */
  sleep(ms: number): Promise<void>;
  startNode(options: NodeOptions): Promise<RingkvNode>;
  readFile(path: string): string;
  /** Starts `ringkv <args>` as a child process. */
  spawnRingkv(args: string[]): ChildHandle;
  /** Resolves with the first SIGINT or SIGTERM. */
  waitForSignal(): Promise<string>;
  /** ringkv's version, for --version. */
  version?: string;
  /** stderr as a stream, when progress bars may draw on it (they do only if it is a TTY). */
  errTerminal?: NodeJS.WriteStream;
  /** Monotonic ms for progress rates; default the system clock's. */
  now?(): number;
}

export const exitOk = 0;
export const exitError = 1;
export const exitUsage = 2;

/** A mistake on the command line (exit 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const defaultUrl = 'ws://127.0.0.1:7070';

/** The /status URL of a node given as ws://, wss:// or host:port. */
export function statusUrlOf(nodeUrl: string): string {
  const url = new URL(nodeUrl);
  return `${url.protocol === 'wss:' ? 'https:' : 'http:'}//${url.host}/status`;
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function base64Of(text: string, field: string): Uint8Array {
  if (!base64Pattern.test(text)) throw new UsageError(`${field} must be base64`);
  return new Uint8Array(Buffer.from(text, 'base64'));
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A value for a terminal: with --base64 its base64; else its text when it is UTF-8 without
 * control bytes (tabs and newlines allowed), else `base64:` and its base64.
 */
export function printable(value: Uint8Array, asBase64: boolean): string {
  if (asBase64) return toBase64(value);
  try {
    const text = strictUtf8.decode(value);
    if (!/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) return text;
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
  }
  return `base64:${toBase64(value)}`;
}

export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(2)} ${units[unit]}`;
}
