/**
 * Argument checking for the remote client (DESIGN.md §5): the same rules as the embedded
 * Store (keys string|bytes, values bytes|string, strings as UTF-8, oversized keys/values are
 * KV_TOO_LARGE) plus the per-request options of the wire protocol ({r, w, consistency,
 * context, timeoutMs}) and the client's own options. Programmer mistakes are TypeError or
 * RangeError naming the field, thrown before anything is sent.
 *
 * Pure functions, any thread.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import { consistencyLevels, type Consistency } from '../protocol/client-messages.js';

export type Key = string | Uint8Array;
export type Value = string | Uint8Array;

/** Consistency levels of wire.md; explicit r/w win over them. */
export { consistencyLevels, type Consistency };

export interface RequestOptions {
  /** Replies a get waits for (default: the node's R, 2). */
  r?: number;
  /** Acks a put/delete waits for (default: the node's W, 2). */
  w?: number;
  consistency?: Consistency;
  /** The context of an earlier get: the write supersedes exactly what that get saw. */
  context?: Uint8Array;
  /** Budget of this request, retries included; default limits.clientRequestTimeoutMs. */
  timeoutMs?: number;
  /** put only: the value expires this many ms after the node writes it. */
  ttlMs?: number;
}

/** Options after checking; absent fields stay absent so the node applies its defaults. */
export interface CheckedOptions {
  r: number | undefined;
  w: number | undefined;
  consistency: Consistency | undefined;
  context: Uint8Array | undefined;
  timeoutMs: number;
  ttlMs?: number | undefined;
}

const encoder = new TextEncoder();

export function keyBytesOf(key: unknown, field = 'key'): Uint8Array {
  let bytes: Uint8Array;
  if (typeof key === 'string') bytes = encoder.encode(key);
  else if (key instanceof Uint8Array) bytes = key;
  else throw new TypeError(`${field} must be a string or a Uint8Array`);
  if (bytes.length > limits.keyBytesMax) {
    throw new RingkvError(ErrorCode.tooLarge, `${field} of ${bytes.length} bytes is over ${limits.keyBytesMax}`, { keyBytes: bytes.length });
  }
  return bytes;
}

export function valueBytesOf(value: unknown, field = 'value'): Uint8Array {
  let bytes: Uint8Array;
  if (typeof value === 'string') bytes = encoder.encode(value);
  else if (value instanceof Uint8Array) bytes = value;
  else throw new TypeError(`${field} must be a Uint8Array or a string`);
  if (bytes.length > limits.valueBytesMax) {
    throw new RingkvError(ErrorCode.tooLarge, `${field} of ${bytes.length} bytes is over ${limits.valueBytesMax}`, { valueBytes: bytes.length });
  }
  return bytes;
}

function replicaCountOf(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new TypeError(`${field} must be a number`);
  if (!Number.isInteger(value) || value < 1 || value > limits.replicationMax) {
    throw new RangeError(`${field} must be an integer in [1, ${limits.replicationMax}], got ${value}`);
  }
  return value;
}

export function timeoutOf(value: unknown, field: string, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  if (typeof value !== 'number') throw new TypeError(`${field} must be a number`);
  if (!Number.isInteger(value) || value < 1 || value > limits.clientRequestTimeoutMsMax) {
    throw new RangeError(`${field} must be an integer in [1, ${limits.clientRequestTimeoutMsMax}] ms, got ${value}`);
  }
  return value;
}

/** Checks per-request options; `field` names the object in messages ('options', 'ops[3]'). */
export function checkOptions(options: unknown, field: string, defaultTimeoutMs: number): CheckedOptions {
  if (options === undefined) return { r: undefined, w: undefined, consistency: undefined, context: undefined, timeoutMs: defaultTimeoutMs };
  if (typeof options !== 'object' || options === null) throw new TypeError(`${field} must be an object`);
  const o = options as Record<string, unknown>;
  if (o.context !== undefined && !(o.context instanceof Uint8Array)) throw new TypeError(`${field}.context must be a Uint8Array`);
  if (o.consistency !== undefined) {
    if (typeof o.consistency !== 'string') throw new TypeError(`${field}.consistency must be a string`);
    if (!(consistencyLevels as readonly string[]).includes(o.consistency)) {
      throw new RangeError(`${field}.consistency must be one of ${consistencyLevels.join(', ')}, got ${JSON.stringify(o.consistency)}`);
    }
  }
  return {
    r: replicaCountOf(o.r, `${field}.r`),
    w: replicaCountOf(o.w, `${field}.w`),
    consistency: o.consistency as Consistency | undefined,
    context: o.context as Uint8Array | undefined,
    timeoutMs: timeoutOf(o.timeoutMs, `${field}.timeoutMs`, defaultTimeoutMs),
    ttlMs: ttlOf(o.ttlMs, `${field}.ttlMs`),
  };
}

function ttlOf(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new TypeError(`${field} must be a number`);
  if (!Number.isInteger(value) || value < 1 || value > limits.ttlMsMax) throw new RangeError(`${field} must be an integer in [1, ${limits.ttlMsMax}] ms, got ${value}`);
  return value;
}

export interface ClientOptions {
  /** Client token, when the cluster requires one. */
  token?: string;
  /** Default budget of each request (retries included); default limits.clientRequestTimeoutMs. */
  timeoutMs?: number;
  /** CA certificate (PEM file) to trust for wss:// nodes. */
  caFile?: string;
  /** Send requests to nodes of this datacenter first (others only when none is reachable), so LOCAL_QUORUM is this datacenter's. */
  localDc?: string;
  /**
   * Hedge writes too (default false): a write not answered within the hedge delay is also sent
   * to the next coordinator, same rid and the next attempt number. Either way a write whose
   * node stays silent past its attempt timeout fails over. Both coordinators may mint it, and
   * merges keep one copy (lib/causality mint-records.ts), but a copy can show for a moment
   * beside a newer write: a reader that saw one copy and wrote over it leaves the other copy's
   * record only where the first copy was held, until read repair or anti-entropy spreads it.
   * Hedging every slow write makes that window common; failing over only past the attempt
   * timeout keeps it to writes caught by a node's stop.
   */
  hedgeWrites?: boolean;
  logger?: Logger;
}

/**
 * A node address as a WebSocket URL: 'ws://h:p' and 'wss://h:p' pass (trailing path and
 * slash dropped), 'h:p' becomes 'ws://h:p'.
 */
export function nodeUrlOf(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new TypeError(`${field} must be a string`);
  const withScheme = /^[a-z]+:\/\//i.test(value) ? value : `ws://${value}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch (error) {
    throw new RangeError(`${field} must be ws://host:port, wss://host:port or host:port, got ${JSON.stringify(value)}`, { cause: error });
  }
  if ((url.protocol !== 'ws:' && url.protocol !== 'wss:') || url.hostname === '') {
    throw new RangeError(`${field} must be ws://host:port, wss://host:port or host:port, got ${JSON.stringify(value)}`);
  }
  return `${url.protocol}//${url.host}`;
}

export function nodeUrlsOf(urls: unknown): string[] {
  const list = typeof urls === 'string' ? [urls] : urls;
  if (!Array.isArray(list)) throw new TypeError('urls must be a string or an array of strings');
  if (list.length === 0) throw new RangeError('urls must name at least one node');
  if (list.length > limits.membersMax) throw new RangeError(`urls must name at most ${limits.membersMax} nodes`);
  const out = list.map((url, i) => nodeUrlOf(url, typeof urls === 'string' ? 'urls' : `urls[${i}]`));
  return [...new Set(out)];
}

export function checkClientOptions(options: unknown): ClientOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const o = options as Record<string, unknown>;
  if (o.token !== undefined && typeof o.token !== 'string') throw new TypeError('options.token must be a string');
  if (o.caFile !== undefined && (typeof o.caFile !== 'string' || o.caFile === '')) throw new TypeError('options.caFile must be a non-empty string');
  if (o.localDc !== undefined && (typeof o.localDc !== 'string' || o.localDc === '')) throw new TypeError('options.localDc must be a non-empty string');
  if (o.hedgeWrites !== undefined && typeof o.hedgeWrites !== 'boolean') throw new TypeError('options.hedgeWrites must be a boolean');
  timeoutOf(o.timeoutMs, 'options.timeoutMs', 0);
  return o as ClientOptions;
}
