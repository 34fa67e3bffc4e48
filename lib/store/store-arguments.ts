/**
 * Argument checking and encoding for the embedded store's calls: options to settings, keys and
 * values to bytes (strings as UTF-8), client size limits. Pure, any thread. Argument mistakes
 * are TypeError/RangeError naming the field; sizes over a limit are KV_TOO_LARGE.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { type Logger, silentLogger } from '../base/log.js';
import type { ConflictPolicy } from '../causality/index.js';
import type { SyncMode } from '../storage/engine.js';
import type { StoreOptions, WriteOptions } from './store-api.js';

const encoder = new TextEncoder();
const shardsMax = 1024;

export interface Settings {
  dir: string;
  shards: number | undefined;
  sync: SyncMode;
  policy: ConflictPolicy;
  memtableBytes: number | undefined;
  headerCacheBytes: number | undefined;
  logger: Logger;
}

export function settingsOf(options: StoreOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (typeof options.dir !== 'string' || options.dir.length === 0) throw new TypeError('dir must be a non-empty string');
  const { shards, sync = 'fsync', conflicts = 'siblings' } = options;
  if (shards !== undefined && (!Number.isInteger(shards) || shards < 1 || shards > shardsMax)) {
    throw new RangeError(`shards must be an integer within [1, ${shardsMax}]`);
  }
  if (sync !== 'fsync' && sync !== 'none') throw new TypeError("sync must be 'fsync' or 'none'");
  if (conflicts !== 'siblings' && conflicts !== 'lww') throw new TypeError("conflicts must be 'siblings' or 'lww'");
  const { headerCacheBytes } = options;
  if (headerCacheBytes !== undefined && (!Number.isSafeInteger(headerCacheBytes) || headerCacheBytes < 0)) throw new RangeError('headerCacheBytes must be a non-negative integer');
  return { dir: options.dir, shards, sync, policy: conflicts, memtableBytes: options.memtableBytes, headerCacheBytes, logger: options.logger ?? silentLogger };
}

export function keyBytesOf(key: unknown, field = 'key'): Uint8Array {
  if (typeof key === 'string') return encoder.encode(key);
  if (key instanceof Uint8Array) return key;
  throw new TypeError(`${field} must be a string or a Uint8Array`);
}

export function valueBytesOf(value: unknown, field = 'value'): Uint8Array {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`${field} must be a Uint8Array or a string`);
}

export function contextOf(options: unknown, field = 'options'): Uint8Array | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) throw new TypeError(`${field} must be an object`);
  const context = (options as WriteOptions).context;
  if (context !== undefined && !(context instanceof Uint8Array)) throw new TypeError(`${field}.context must be a Uint8Array`);
  return context;
}

/** The ttlMs of put options: undefined, or an integer in [1, limits.ttlMsMax]. */
export function ttlOf(options: unknown, field = 'options'): number | undefined {
  if (options === undefined) return undefined;
  const ttlMs = (options as WriteOptions).ttlMs;
  if (ttlMs === undefined) return undefined;
  if (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > limits.ttlMsMax) throw new RangeError(`${field}.ttlMs must be an integer in [1, ${limits.ttlMsMax}]`);
  return ttlMs;
}

export function checkSizes(key: Uint8Array, value: Uint8Array | undefined): void {
  if (key.length > limits.keyBytesMax) {
    throw new RingkvError(ErrorCode.tooLarge, `key of ${key.length} bytes is over ${limits.keyBytesMax}`, { keyBytes: key.length });
  }
  if (value !== undefined && value.length > limits.valueBytesMax) {
    throw new RingkvError(ErrorCode.tooLarge, `value of ${value.length} bytes is over ${limits.valueBytesMax}`, { valueBytes: value.length });
  }
}

export function replicaKeyOf(key: unknown): Uint8Array {
  if (!(key instanceof Uint8Array)) throw new TypeError('key must be a Uint8Array');
  if (key.length > limits.keyBytesCeiling) {
    throw new RingkvError(ErrorCode.tooLarge, `key of ${key.length} bytes is over ${limits.keyBytesCeiling}`, { keyBytes: key.length });
  }
  return key;
}

