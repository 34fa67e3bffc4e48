/**
 * The embedded store: `openStore({ dir })` runs S shard actors on worker threads in this
 * process, each owning the engine of the partitions `p mod S` under `<dir>/shard-<i>`, and
 * offers the API of DESIGN.md §5 (get/put/delete/batch) with no network in between.
 *
 * Owner: the thread that opened it (usually the main thread); not shareable across threads.
 *
 * Path of a request: validate arguments (TypeError/RangeError naming the field), encode key
 * and value as bytes (strings as UTF-8), route by partition (murmur3 token, top
 * `partitionBits` bits) modulo S, frame into that shard's request mailbox. Frames written in
 * one turn are published together, so a burst of requests (or one `batch`) is one mailbox
 * wake-up and one group commit (one fdatasync) per shard. Replies are matched by request id.
 *
 * Versions: every key holds a DVV set (lib/causality); the store's actor id is generated once
 * and kept in the STORE file (store-metadata.ts). Two blind puts to one key become siblings;
 * a put with the context of a get supersedes what that get saw. `conflicts: 'lww'` keeps one
 * value per key by (timestamp, actor) instead: it loses concurrent writes by design.
 *
 * Failures: a shard that dies fails its in-flight writes with KV_INDETERMINATE (reads with
 * KV_UNAVAILABLE), restarts from its commit log, and the other shards keep serving
 * (shard-handle.ts). Reopening a directory with another shard count fails with
 * KV_INCOMPATIBLE naming both counts (see store-metadata.ts for why).
 *
 * `batch` is not atomic across keys: its operations run in order per shard, each one as if
 * sent alone, but share one round trip and one group commit per shard.
 */

import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { partitionOfToken, tokenOf } from '../base/hash.js';
import { limits } from '../base/limits.js';
import { type Logger, silentLogger } from '../base/log.js';
import type { ConflictPolicy } from '../causality/index.js';
import type { ShardReply, ShardRequest } from '../protocol/shard-frames.js';
import { CompactionPool } from '../storage/compaction-pool.js';
import type { EngineStats, SyncMode } from '../storage/engine.js';
import { ShardHandle } from './shard-handle.js';
import { newActorId, readStoreMetadata, storeFormatVersion, writeStoreMetadata } from './store-metadata.js';

export type Key = string | Uint8Array;
export type Value = string | Uint8Array;

export interface StoreOptions {
  /** The store's directory (created if missing). */
  dir: string;
  /** Shard worker threads; default the machine's parallelism for a new store, the stored count for an existing one. */
  shards?: number;
  /** 'fsync' (default): acknowledged writes are on disk. 'none': faster, loses recent writes on power loss. */
  sync?: SyncMode;
  /** 'siblings' (default) keeps concurrent writes; 'lww' keeps the last by timestamp. */
  conflicts?: ConflictPolicy;
  /** Memtable size per shard; default limits.memtableBytesDefault. */
  memtableBytes?: number;
  logger?: Logger;
}

export interface GetResult {
  found: boolean;
  /** More than one: concurrent siblings. */
  values: Uint8Array[];
  /** Pass to put/delete to supersede exactly what this get saw. */
  context: Uint8Array;
}

export interface WriteResult {
  context: Uint8Array;
}

export interface WriteOptions {
  context?: Uint8Array;
}

export type BatchOp =
  | { type: 'get'; key: Key }
  | { type: 'put'; key: Key; value: Value; context?: Uint8Array }
  | { type: 'delete'; key: Key; context?: Uint8Array };

export type BatchResult = GetResult | WriteResult;

export interface Store {
  readonly dir: string;
  readonly shards: number;
  get(key: Key, options?: Record<string, unknown>): Promise<GetResult>;
  put(key: Key, value: Value, options?: WriteOptions): Promise<WriteResult>;
  delete(key: Key, options?: WriteOptions): Promise<WriteResult>;
  batch(ops: readonly BatchOp[]): Promise<BatchResult[]>;
  stats(): Promise<{ shards: (EngineStats & { restarts: number })[] }>;
  flush(): Promise<void>;
  compact(): Promise<void>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const encoder = new TextEncoder();
const shardsMax = 1024;

interface Settings {
  dir: string;
  shards: number | undefined;
  sync: SyncMode;
  policy: ConflictPolicy;
  memtableBytes: number | undefined;
  logger: Logger;
}

function settingsOf(options: StoreOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (typeof options.dir !== 'string' || options.dir.length === 0) throw new TypeError('dir must be a non-empty string');
  const { shards, sync = 'fsync', conflicts = 'siblings' } = options;
  if (shards !== undefined && (!Number.isInteger(shards) || shards < 1 || shards > shardsMax)) {
    throw new RangeError(`shards must be an integer within [1, ${shardsMax}]`);
  }
  if (sync !== 'fsync' && sync !== 'none') throw new TypeError("sync must be 'fsync' or 'none'");
  if (conflicts !== 'siblings' && conflicts !== 'lww') throw new TypeError("conflicts must be 'siblings' or 'lww'");
  return { dir: options.dir, shards, sync, policy: conflicts, memtableBytes: options.memtableBytes, logger: options.logger ?? silentLogger };
}

/** Opens (creating if needed) the store in `options.dir`. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const settings = settingsOf(options);
  const existing = readStoreMetadata(settings.dir);
  if (existing && settings.shards !== undefined && existing.shards !== settings.shards) {
    throw new RingkvError(
      ErrorCode.incompatible,
      `${settings.dir} was created with ${existing.shards} shards and cannot be opened with ${settings.shards}: ` +
        'moving partitions between shards is not supported; reopen with the original count',
      { storedShards: existing.shards, requestedShards: settings.shards },
    );
  }
  const metadata = existing ?? {
    format: 'ringkv-store' as const,
    formatVersion: storeFormatVersion,
    shards: settings.shards ?? availableParallelism(),
    partitionBits: limits.partitionBitsDefault,
    actor: newActorId(),
  };
  if (!existing) writeStoreMetadata(settings.dir, metadata);
  const pool = new CompactionPool();
  const handles = Array.from(
    { length: metadata.shards },
    (_, index) =>
      new ShardHandle({
        index,
        dir: join(settings.dir, `shard-${index}`),
        sync: settings.sync,
        partitionBits: metadata.partitionBits,
        actor: metadata.actor,
        policy: settings.policy,
        runner: pool,
        logger: settings.logger,
        memtableBytes: settings.memtableBytes,
      }),
  );
  const started = await Promise.allSettled(handles.map((h) => h.start(false)));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(handles.map((h) => h.close()));
    await pool.close();
    throw (failed as PromiseRejectedResult).reason;
  }
  return new EmbeddedStore(settings.dir, metadata.partitionBits, handles, pool);
}

function keyBytesOf(key: unknown, field = 'key'): Uint8Array {
  if (typeof key === 'string') return encoder.encode(key);
  if (key instanceof Uint8Array) return key;
  throw new TypeError(`${field} must be a string or a Uint8Array`);
}

function valueBytesOf(value: unknown, field = 'value'): Uint8Array {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`${field} must be a Uint8Array or a string`);
}

function contextOf(options: unknown, field = 'options'): Uint8Array | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) throw new TypeError(`${field} must be an object`);
  const context = (options as WriteOptions).context;
  if (context !== undefined && !(context instanceof Uint8Array)) throw new TypeError(`${field}.context must be a Uint8Array`);
  return context;
}

function checkSizes(key: Uint8Array, value: Uint8Array | undefined): void {
  if (key.length > limits.keyBytesMax) {
    throw new RingkvError(ErrorCode.tooLarge, `key of ${key.length} bytes is over ${limits.keyBytesMax}`, { keyBytes: key.length });
  }
  if (value !== undefined && value.length > limits.valueBytesMax) {
    throw new RingkvError(ErrorCode.tooLarge, `value of ${value.length} bytes is over ${limits.valueBytesMax}`, { valueBytes: value.length });
  }
}

function resultOf(reply: ShardReply): BatchResult {
  switch (reply.kind) {
    case 'read':
      return { found: reply.found, values: reply.values, context: reply.context };
    case 'written':
      return { context: reply.context };
    case 'error':
      throw new RingkvError(reply.code, reply.message, {});
    case 'scan':
      throw new RingkvError(ErrorCode.badRequest, 'unexpected scan reply', {});
  }
}

class EmbeddedStore implements Store {
  readonly dir: string;
  readonly shards: number;
  readonly #partitionBits: number;
  readonly #handles: ShardHandle[];
  readonly #pool: CompactionPool;
  #closing: Promise<void> | undefined;

  constructor(dir: string, partitionBits: number, handles: ShardHandle[], pool: CompactionPool) {
    this.dir = dir;
    this.shards = handles.length;
    this.#partitionBits = partitionBits;
    this.#handles = handles;
    this.#pool = pool;
  }

  /** The shard that owns `key`: partition mod S. */
  shardOf(key: Uint8Array): number {
    return partitionOfToken(tokenOf(key), this.#partitionBits) % this.shards;
  }

  #send(key: Uint8Array, build: (requestId: number) => ShardRequest, isWrite: boolean): Promise<BatchResult> {
    if (this.#closing) return Promise.reject(new RingkvError(ErrorCode.closed, 'the store is closed', {}));
    return this.#handles[this.shardOf(key)]!.request(build, isWrite).then(resultOf);
  }

  async get(key: Key, options?: Record<string, unknown>): Promise<GetResult> {
    if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError('options must be an object');
    const k = keyBytesOf(key);
    checkSizes(k, undefined);
    return (await this.#send(k, (requestId) => ({ op: 'get', requestId, key: k }), false)) as GetResult;
  }

  async put(key: Key, value: Value, options?: WriteOptions): Promise<WriteResult> {
    const k = keyBytesOf(key);
    const v = valueBytesOf(value);
    const context = contextOf(options);
    checkSizes(k, v);
    return (await this.#send(k, (requestId) => ({ op: 'put', requestId, key: k, value: v, context }), true)) as WriteResult;
  }

  async delete(key: Key, options?: WriteOptions): Promise<WriteResult> {
    const k = keyBytesOf(key);
    const context = contextOf(options);
    checkSizes(k, undefined);
    return (await this.#send(k, (requestId) => ({ op: 'delete', requestId, key: k, context }), true)) as WriteResult;
  }

  async batch(ops: readonly BatchOp[]): Promise<BatchResult[]> {
    if (!Array.isArray(ops)) throw new TypeError('ops must be an array');
    if (ops.length > limits.batchOpsMax) {
      throw new RingkvError(ErrorCode.tooLarge, `batch of ${ops.length} ops is over ${limits.batchOpsMax}`, { ops: ops.length });
    }
    // Validate everything before sending anything: a bad op fails the batch with nothing applied.
    const requests = ops.map((op, i) => this.#batchRequest(op, i));
    return Promise.all(requests.map(([key, build, isWrite]) => this.#send(key, build, isWrite)));
  }

  #batchRequest(op: BatchOp, i: number): [Uint8Array, (requestId: number) => ShardRequest, boolean] {
    if (typeof op !== 'object' || op === null) throw new TypeError(`ops[${i}] must be an object`);
    const key = keyBytesOf(op.key, `ops[${i}].key`);
    if (op.type === 'get') {
      checkSizes(key, undefined);
      return [key, (requestId) => ({ op: 'get', requestId, key }), false];
    }
    const context = contextOf(op, `ops[${i}]`);
    if (op.type === 'put') {
      const value = valueBytesOf(op.value, `ops[${i}].value`);
      checkSizes(key, value);
      return [key, (requestId) => ({ op: 'put', requestId, key, value, context }), true];
    }
    if (op.type === 'delete') {
      checkSizes(key, undefined);
      return [key, (requestId) => ({ op: 'delete', requestId, key, context }), true];
    }
    throw new TypeError(`ops[${i}].type must be 'get', 'put' or 'delete'`);
  }

  async stats(): Promise<{ shards: (EngineStats & { restarts: number })[] }> {
    const shards = await Promise.all(this.#handles.map(async (h) => ({ ...(await h.stats()), restarts: h.restarts })));
    return { shards };
  }

  async flush(): Promise<void> {
    await Promise.all(this.#handles.map((h) => h.flush()));
  }

  async compact(): Promise<void> {
    await Promise.all(this.#handles.map((h) => h.compact()));
  }

  /** Test hook: makes shard `index` throw while handling this frame, as a bug would. */
  crashShardForTest(index: number): Promise<unknown> {
    return this.#handles[index]!.request((requestId) => ({ op: 'crash', requestId }), true);
  }

  /** Resolves once shard `index` runs again (after a restart). */
  shardReady(index: number): Promise<void> {
    return this.#handles[index]!.ready;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled(this.#handles.map((h) => h.close()));
      await this.#pool.close();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

export type { EmbeddedStore };
