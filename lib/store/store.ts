/**
 * The embedded store: `openStore({ dir })` runs S shard actors on worker threads in this
 * process, each owning the engine of the partitions `p mod S` under `<dir>/shard-<i>`, and
 * offers the API of DESIGN.md §5 (get/put/delete/batch) with no network in between.
 *
 * Owner: the thread that opened it (usually the main thread); not shareable across threads.
 *
 * Path of a request: validate arguments (TypeError/RangeError naming the field), encode key
 * and value as bytes (strings as UTF-8), route by partition (murmur3 token, top
 * `partitionBits` bits) modulo S, encode the frame in place into that shard's request
 * mailbox (shard-frames.ts, FrameSender.sendEncoded: no allocation, one copy). Frames written
 * in one turn are published together, so a burst of requests (or one `batch`) is one mailbox
 * wake-up and one group commit (one fdatasync) per shard. Replies are matched by request id
 * and turned into results on the reply pump: one promise per request.
 *
 * Cost (perf/store.ts, PERF.md): the time goes to the shard's engine (the read before every
 * write, the group commit) and to allocation; the mailbox hop is ~1 µs per request. Each
 * wake-up (Atomics.notify to a sleeping thread) costs tens of µs to ms on a loaded machine,
 * which is why each side rings once per batch.
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
 * Replica operations (coordinateWrite, readObject, mergeObject, scanPartition) are methods of
 * the same class, exposed only through `openReplicaStore` (replica-store.ts).
 *
 * `batch` is not atomic across keys: its operations run in order per shard, each one as if
 * sent alone, but share one round trip and one group commit per shard.
 */

import { join } from 'node:path';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { partitionOfToken, tokenOf } from '../base/hash.js';
import { limits } from '../base/limits.js';
import type { ShardReply, ShardRequest } from '../protocol/shard-frames.js';
import { CompactionPool } from '../storage/compaction-pool.js';
import type { ShardStats } from '../shard/control-channel.js';
import { type ReplyConverter, ShardHandle } from './shard-handle.js';
import { registerExpiryFilter } from '../shard/expiry-filter.js';
import { changeTracked, RowCache, type RowCacheStats, type RowDerive, type RowEntry } from './row-cache.js';
import type { BatchOp, BatchResult, GetResult, Key, ScanPartitionOptions, ScanPartitionPage, Store, StoreOptions, Value, WriteOptions, WriteResult } from './store-api.js';
import { checkSizes, contextOf, keyBytesOf, replicaKeyOf, settingsOf, ttlOf, valueBytesOf } from './store-arguments.js';
import type { LocalWriteFlags } from '../replication/index.js';
import { type Identity, resolveStoreMetadata, type StoreMetadata } from './store-metadata.js';

export type { BatchOp, BatchResult, GetResult, Key, ScanPartitionOptions, ScanPartitionPage, Store, StoreOptions, Value, WriteOptions, WriteResult };

/** Opens (creating if needed) the store in `options.dir`. */
export function openStore(options: StoreOptions): Promise<Store> {
  return openEmbeddedStore(options, {});
}

/** openStore with the identity a replica store may fix; returns the full embedded store. */
export async function openEmbeddedStore(options: StoreOptions, identity: Identity, tuning: { publishPerTurn?: boolean; rowCacheBytes?: number } = {}): Promise<EmbeddedStore> {
  registerExpiryFilter(); // for compaction jobs the pool may run on this thread
  const settings = settingsOf(options);
  const metadata = resolveStoreMetadata(settings, identity);
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
        headerCacheBytes: settings.headerCacheBytes,
        publishPerTurn: tuning.publishPerTurn === true,
        presence: (tuning.rowCacheBytes ?? 0) > 0,
      }),
  );
  const started = await Promise.allSettled(handles.map((h) => h.start(false)));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(handles.map((h) => h.close()));
    await pool.close();
    throw (failed as PromiseRejectedResult).reason;
  }
  return new EmbeddedStore(settings.dir, metadata, handles, pool, tuning.rowCacheBytes ? new RowCache(tuning.rowCacheBytes) : undefined);
}

/** The reply if it is of `kind`; an error reply throws its RingkvError. */
function expectReply<K extends ShardReply['kind']>(reply: ShardReply, kind: K): Extract<ShardReply, { kind: K }> {
  if (reply.kind === kind) return reply as Extract<ShardReply, { kind: K }>;
  if (reply.kind === 'error') throw new RingkvError(reply.code, reply.message, {});
  throw new RingkvError(ErrorCode.badRequest, `unexpected ${reply.kind} reply, expected ${kind}`, {});
}

// Reply converters: run on the reply pump, so each request costs one promise.
function readResult(reply: ShardReply): GetResult {
  const read = expectReply(reply, 'read');
  return { found: read.found, values: read.values, context: read.context };
}

function writtenResult(reply: ShardReply): WriteResult {
  return { context: expectReply(reply, 'written').context };
}

function coordinatedResult(reply: ShardReply): { context: Uint8Array; object: Uint8Array } {
  const written = expectReply(reply, 'written');
  if (written.object === undefined) throw new RingkvError(ErrorCode.badRequest, 'the shard replied without the stored object', {});
  return { context: written.context, object: written.object };
}

const objectResult = (reply: ShardReply): Uint8Array | undefined => expectReply(reply, 'object').object;
const mergedResult = (reply: ShardReply): void => void expectReply(reply, 'merged');
const purgedResult = (reply: ShardReply): boolean => expectReply(reply, 'purged').deleted;
const anyResult = (reply: ShardReply): ShardReply => reply;

function scanResult(reply: ShardReply): ScanPartitionPage {
  const page = expectReply(reply, 'scan');
  return page.nextAfterKey === undefined ? { entries: page.entries } : { entries: page.entries, nextAfterKey: page.nextAfterKey };
}

/** A request ready to send: its shard's key, the request, and how to read its reply. */
type Prepared = [Uint8Array, ShardRequest, boolean, ReplyConverter<BatchResult>];

/**
 * The embedded store. It also carries the replica operations of lib/store/replica-store.ts
 * (coordinateWrite, readObject, mergeObject, scanPartition); `openStore` hides them behind
 * the public `Store` type.
 *
 * The hot calls (get, put, delete) are not `async`: an argument error is returned as a
 * rejected promise, and a request costs exactly one promise, settled by the reply pump.
 */
class EmbeddedStore implements Store {
  readonly dir: string;
  readonly shards: number;
  readonly partitionBits: number;
  readonly actor: string;
  readonly #handles: ShardHandle[];
  readonly #pool: CompactionPool;
  /** Replica stores of a node: recently read objects (row-cache.ts); every change below passes `#change`. */
  readonly #rows: RowCache | undefined;
  #closing: Promise<void> | undefined;

  constructor(dir: string, metadata: StoreMetadata, handles: ShardHandle[], pool: CompactionPool, rows: RowCache | undefined) {
    this.dir = dir;
    this.shards = handles.length;
    this.partitionBits = metadata.partitionBits;
    this.actor = metadata.actor;
    this.#handles = handles;
    this.#pool = pool;
    this.#rows = rows;
    if (rows !== undefined) rows.mayHold = (token) => this.#handles[partitionOfToken(token >>> 0, this.partitionBits) % this.shards]!.mayHold(token);
  }

  /** The shard that owns `key`: partition mod S. */
  shardOf(key: Uint8Array): number {
    return partitionOfToken(tokenOf(key), this.partitionBits) % this.shards;
  }

  #sendTo<T>(shard: number, request: ShardRequest, isWrite: boolean, convert: ReplyConverter<T>): Promise<T> {
    if (this.#closing) return Promise.reject(new RingkvError(ErrorCode.closed, 'the store is closed', {}));
    return this.#handles[shard]!.request(request, isWrite, convert);
  }

  #send<T>(key: Uint8Array, request: ShardRequest, isWrite: boolean, convert: ReplyConverter<T>): Promise<T> {
    if (isWrite && this.#rows !== undefined) return changeTracked(this.#rows, key, this.#sendTo(this.shardOf(key), request, isWrite, convert));
    return this.#sendTo(this.shardOf(key), request, isWrite, convert);
  }

  /** Has each row cache entry's memo made when the entry is filled (row-cache.ts `derive`). */
  deriveRows(derive: RowDerive): void {
    if (this.#rows !== undefined) this.#rows.derive = derive;
  }

  /**
   * Publishes the shard requests made so far in this turn and delivers the replies already
   * published, now. A caller that handles many inputs in one turn (the RESP listener, once per
   * socket read) calls it so that a request made for one input is answered while the turn goes
   * on, rather than a turn later: a GET pipeline waiting on one shard read is answered in the
   * same turn it was read.
   */
  poll(): void {
    for (const handle of this.#handles) handle.poll();
  }

  /** The row cache, if this store has one. */
  get rowCache(): RowCache | undefined {
    return this.#rows;
  }

  /** The row cache's entry for `key` if it has one (a hit: no shard involved). */
  cachedRow(key: Uint8Array): RowEntry | undefined {
    return this.#rows?.get(key);
  }

  get(key: Key, options?: Record<string, unknown>): Promise<GetResult> {
    let k: Uint8Array;
    try {
      if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError('options must be an object');
      k = keyBytesOf(key);
      checkSizes(k, undefined);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#send(k, { op: 'get', requestId: 0, key: k }, false, readResult);
  }

  put(key: Key, value: Value, options?: WriteOptions): Promise<WriteResult> {
    let request: ShardRequest;
    try {
      const k = keyBytesOf(key);
      const v = valueBytesOf(value);
      checkSizes(k, v);
      request = { op: 'put', requestId: 0, key: k, value: v, context: contextOf(options), wantObject: false, ttlMs: ttlOf(options) };
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#send(request.key, request, true, writtenResult);
  }

  delete(key: Key, options?: WriteOptions): Promise<WriteResult> {
    let request: ShardRequest;
    try {
      const k = keyBytesOf(key);
      checkSizes(k, undefined);
      request = { op: 'delete', requestId: 0, key: k, context: contextOf(options), wantObject: false };
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#send(request.key, request, true, writtenResult);
  }

  async batch(ops: readonly BatchOp[]): Promise<BatchResult[]> {
    if (!Array.isArray(ops)) throw new TypeError('ops must be an array');
    if (ops.length > limits.batchOpsMax) {
      throw new RingkvError(ErrorCode.tooLarge, `batch of ${ops.length} ops is over ${limits.batchOpsMax}`, { ops: ops.length });
    }
    // Validate everything before sending anything: a bad op fails the batch with nothing applied.
    const prepared = ops.map((op, i) => this.#batchRequest(op, i));
    return Promise.all(prepared.map(([key, request, isWrite, convert]) => this.#send(key, request, isWrite, convert)));
  }

  #batchRequest(op: BatchOp, i: number): Prepared {
    if (typeof op !== 'object' || op === null) throw new TypeError(`ops[${i}] must be an object`);
    const key = keyBytesOf(op.key, `ops[${i}].key`);
    if (op.type === 'get') {
      checkSizes(key, undefined);
      return [key, { op: 'get', requestId: 0, key }, false, readResult];
    }
    const context = contextOf(op, `ops[${i}]`);
    if (op.type === 'put') {
      const value = valueBytesOf(op.value, `ops[${i}].value`);
      checkSizes(key, value);
      return [key, { op: 'put', requestId: 0, key, value, context, wantObject: false, ttlMs: ttlOf(op, `ops[${i}]`) }, true, writtenResult];
    }
    if (op.type === 'delete') {
      checkSizes(key, undefined);
      return [key, { op: 'delete', requestId: 0, key, context, wantObject: false }, true, writtenResult];
    }
    throw new TypeError(`ops[${i}].type must be 'get', 'put' or 'delete'`);
  }

  // ------------------------------------------------------------ replica operations

  async coordinateWrite(key: Uint8Array, value: Uint8Array | null, context: Uint8Array | undefined, flags?: LocalWriteFlags): Promise<{ context: Uint8Array; object: Uint8Array }> {
    const k = replicaKeyOf(key);
    if (value !== null && !(value instanceof Uint8Array)) throw new TypeError('value must be a Uint8Array or null');
    if (context !== undefined && !(context instanceof Uint8Array)) throw new TypeError('context must be a Uint8Array');
    const overwrite = flags?.overwrite === true;
    const request: ShardRequest =
      value === null
        ? { op: 'delete', requestId: 0, key: k, context, wantObject: true, overwrite, mint: flags?.mint }
        : { op: 'put', requestId: 0, key: k, value, context, wantObject: true, overwrite, ttlMs: flags?.ttlMs, keepTtl: flags?.keepTtl === true, mint: flags?.mint };
    return this.#send(k, request, true, coordinatedResult);
  }

  /** Not `async`: a replica read costs the reply's one promise (argument errors reject it). */
  readObject(key: Uint8Array): Promise<Uint8Array | undefined> {
    let k: Uint8Array;
    try {
      k = replicaKeyOf(key);
    } catch (error) {
      return Promise.reject(error);
    }
    const rows = this.#rows;
    if (rows === undefined) return this.#send(k, { op: 'readObject', requestId: 0, key: k }, false, objectResult);
    const hit = rows.get(k);
    if (hit !== undefined) return Promise.resolve(hit.object);
    if (rows.knownAbsent(k)) return Promise.resolve(undefined);
    const startedSeq = rows.readStarted();
    return this.#send(k, { op: 'readObject', requestId: 0, key: k }, false, (reply) => {
      const object = objectResult(reply);
      rows.fill(k, startedSeq, object);
      return object;
    });
  }

  async mergeObject(key: Uint8Array, object: Uint8Array): Promise<void> {
    const k = replicaKeyOf(key);
    if (!(object instanceof Uint8Array)) throw new TypeError('object must be a Uint8Array');
    return this.#send(k, { op: 'mergeObject', requestId: 0, key: k, object }, true, mergedResult);
  }

  /** Compare-and-delete (tombstone purge): deletes `key` only if its stored object is exactly `expected`. */
  async purgeIf(key: Uint8Array, expected: Uint8Array): Promise<boolean> {
    const k = replicaKeyOf(key);
    if (!(expected instanceof Uint8Array)) throw new TypeError('expected must be a Uint8Array');
    return this.#send(k, { op: 'purgeIf', requestId: 0, key: k, expected }, true, purgedResult);
  }

  async scanPartition(partition: number, options: ScanPartitionOptions): Promise<ScanPartitionPage> {
    if (!Number.isInteger(partition) || partition < 0 || partition >= 2 ** this.partitionBits) {
      throw new RangeError(`partition must be an integer within [0, ${2 ** this.partitionBits})`);
    }
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const { afterKey, limit } = options;
    if (!Number.isInteger(limit) || limit < 1 || limit > limits.scanEntriesMax) throw new RangeError(`options.limit must be an integer within [1, ${limits.scanEntriesMax}]`);
    if (afterKey !== undefined) replicaKeyOf(afterKey);
    return this.#sendTo(partition % this.shards, { op: 'scan', requestId: 0, partition, limit, afterKey }, false, scanResult);
  }

  /** Deletes every entry of `partition` (a partition this node no longer replicates); resolves with the count. */
  async dropPartition(partition: number): Promise<number> {
    if (!Number.isInteger(partition) || partition < 0 || partition >= 2 ** this.partitionBits) {
      throw new RangeError(`partition must be an integer within [0, ${2 ** this.partitionBits})`);
    }
    this.#rows?.clear();
    try {
      return await this.#handles[partition % this.shards]!.dropPartition(partition);
    } finally {
      this.#rows?.clear();
    }
  }

  async stats(): Promise<{ shards: (ShardStats & { restarts: number })[]; rowCache?: RowCacheStats }> {
    const shards = await Promise.all(this.#handles.map(async (h) => ({ ...(await h.stats()), restarts: h.restarts })));
    return this.#rows === undefined ? { shards } : { shards, rowCache: this.#rows.stats() };
  }

  async flush(): Promise<void> {
    await Promise.all(this.#handles.map((h) => h.flush()));
  }

  async compact(): Promise<void> {
    await Promise.all(this.#handles.map((h) => h.compact()));
  }

  /** Test hook: makes shard `index` throw while handling this frame, as a bug would. */
  crashShardForTest(index: number): Promise<unknown> {
    return this.#handles[index]!.request({ op: 'crash', requestId: 0 }, true, anyResult);
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
