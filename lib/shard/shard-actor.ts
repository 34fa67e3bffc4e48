/**
 * The shard actor's logic: turns one drained batch of request frames into replies, against
 * the shard's own engine. Owned by the shard's worker thread (workers/shard-worker.ts); pure
 * enough to run on the main thread in tests (engine on a MemoryFileSystem, ManualClock).
 *
 * Per batch, in order: gets read, puts and deletes read the key's stored object, reconcile
 * with `applyClientWrite` (DVV sets, lib/causality) and queue the encoded result. Every write
 * of the batch goes to the engine as ONE `write()` call in the same turn, so the batch is one
 * commit-log record and one fdatasync (group commit); replies are returned only after it
 * resolved. A delete is a write of a tombstone sibling, never an engine delete: the tombstone
 * carries the causal history that later writes must see.
 *
 * Replica operations (a cluster coordinator's, RELIABILITY.md §2.5): a put/delete flagged
 * `wantObject` also replies with the key's new stored object bytes (for the other replicas);
 * `readObject` replies with the raw stored object (the coordinator merges, no readView);
 * `mergeObject` decodes an object from another replica (malformed or oversized: KV_BAD_REQUEST,
 * nothing stored), `mergeReplicas` it into the current state and writes the result in the
 * batch's group commit only when it differs. `purgeIf` (tombstone purging, driven by
 * lib/supervisor/purge.ts) is a compare-and-delete: an engine delete of the key in the batch's
 * group commit, only when the key's current object (overlay first) is byte-for-byte the one
 * the purger scanned; otherwise (a write or merge landed in between, or it is gone) nothing
 * happens and the reply says so, so a concurrent write is never lost. Replica paths never apply client limits
 * (siblingsMax, keyBytesMax, contextEntriesMax); keys are bounded by limits.keyBytesCeiling.
 *
 * The version-header cache (header-cache.ts): the actor keeps, for keys whose stored object is
 * at least limits.headerCacheObjectBytesMin, the object without its values. A put or merge on a
 * key not in the overlay is drafted on those headers first, and reads the stored object only
 * when the result keeps an old value (lib/causality version-headers.ts says why that is exact).
 * Every path that changes a key here updates or forgets its headers (stage, purge, a failed
 * commit; the worker clears them around a partition drop), so they always describe the state
 * the engine holds once the overlay is gone.
 *
 * Invariant — the overlay: objects written by a batch whose commit has not resolved are kept
 * in `#overlay` (by key, overlay.ts) until it does, and every read looks there first. So two puts to one
 * key in one batch, or in two batches in flight at once, reconcile one after the other and
 * neither is lost. A get that saw uncommitted state replies only after that state committed;
 * if the commit failed, the get fails with KV_UNAVAILABLE instead of showing it.
 *
 * Errors: client-path limits (KV_TOO_LARGE, KV_TOO_MANY_SIBLINGS, KV_BAD_CONTEXT) become error
 * replies for that request alone. Any failure of the batch's engine write makes every write of
 * the batch KV_INDETERMINATE — never success, and never a definite failure we cannot prove.
 * A `crash` request throws (test hook standing in for a bug): the worker dies and restarts.
 */

import { Buffer } from 'node:buffer';
import { assertNever } from '../base/assert.js';
import type { Clock } from '../base/clock.js';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import {
  applyClientWrite,
  freshCounterFloor,
  checkActorId,
  type ConflictPolicy,
  decodeObject,
  encodeContext,
  encodeObject,
  join,
  mergeReplicas,
  readView,
  decodeContext,
  mergeVectors,
  type Sibling,
  type StoredObject,
  type VersionVector,
  applyClientWriteToHeaders,
  holdsExpiringValue,
  holdsHeaderValue,
  mergeIntoHeaders,
} from '../causality/index.js';
import type { Engine, WriteOp } from '../storage/engine.js';
import { errorReply, type ShardReply, type ShardRequest } from '../protocol/shard-frames.js';
import { HeaderCache, type HeaderCacheStats } from './header-cache.js';
import { Overlay, type OverlayEntry } from './overlay.js';

export interface ShardActorOptions {
  engine: Engine;
  /** The node (or embedded store) id written into version vectors. */
  actor: string;
  policy: ConflictPolicy;
  clock: Clock;
  /** Client value limit; default limits.valueBytesMax. */
  valueBytesMax?: number;
  /** Client key limit; default limits.keyBytesMax. */
  keyBytesMax?: number;
  siblingsMax?: number;
  /** Budget of the version-header cache (header-cache.ts); default limits.headerCacheBytesDefault, 0: off. */
  headerCacheBytes?: number;
  /** Smallest encoded stored object whose headers are cached; default limits.headerCacheObjectBytesMin. */
  headerCacheObjectBytesMin?: number;
}

/** The largest stored object the engine takes next to a key of the ceiling size. */
const storedBytesMax = limits.entryBytesMax - limits.keyBytesCeiling;

/** A key's current state: from the overlay (uncommitted) or the engine. */
interface Current {
  object: StoredObject | undefined;
  bytes: Uint8Array | undefined;
  uncommitted: boolean;
}

/** A client write request. */
type ClientRequest = Extract<ShardRequest, { op: 'put' | 'delete' }>;

/** A client write's result: the key's next state and the context the reply carries. */
interface Written {
  next: StoredObject;
  nextContext: Uint8Array;
}

/** A reply that waits for the batch commit; `readUncommitted` marks gets that saw the overlay. */
interface Slot {
  reply: ShardReply;
  isWrite: boolean;
  readUncommitted: boolean;
}

export class ShardActor {
  readonly #engine: Engine;
  readonly #actor: string;
  readonly #policy: ConflictPolicy;
  readonly #clock: Clock;
  readonly #valueBytesMax: number;
  readonly #keyBytesMax: number;
  readonly #siblingsMax: number;
  readonly #overlay = new Overlay();
  /** The version headers of committed (and staged) states, so most writes skip the engine read. */
  readonly #headers: HeaderCache;
  readonly #headerObjectBytesMin: number;
  /**
   * The context of a blind write to a missing key, {actor: freshCounterFloor(ms) + 1}, for the
   * last millisecond one was made in: writes in the same millisecond share it (read-only).
   */
  #firstWriteContext: Uint8Array | undefined;
  #firstWriteMs = -1;
  /** Engine writes of batches in flight: each resolves with its error, or undefined. */
  readonly #commits = new Set<Promise<unknown>>();
  #batchNumber = 0;

  constructor(options: ShardActorOptions) {
    this.#engine = options.engine;
    this.#actor = options.actor;
    this.#policy = options.policy;
    this.#clock = options.clock;
    this.#valueBytesMax = options.valueBytesMax ?? limits.valueBytesMax;
    this.#keyBytesMax = options.keyBytesMax ?? limits.keyBytesMax;
    this.#siblingsMax = options.siblingsMax ?? limits.siblingsMax;
    this.#headers = new HeaderCache(options.headerCacheBytes ?? limits.headerCacheBytesDefault);
    this.#headerObjectBytesMin = options.headerCacheObjectBytesMin ?? limits.headerCacheObjectBytesMin;
    checkActorId(this.#actor, 'actor');
  }

  headerCacheStats(): HeaderCacheStats {
    return this.#headers.stats();
  }

  /**
   * Forgets every cached version header: for changes to the engine made beside the actor
   * (a partition dropped after a handoff), before they start and once they are done.
   */
  forgetHeaders(): void {
    this.#headers.clear();
  }

  /** Keys with uncommitted objects (for tests and stats). */
  get overlaySize(): number {
    return this.#overlay.size;
  }

  /**
   * Handles one drained batch; resolves with one reply per request, in order, after the
   * batch's writes are durable. Never rejects for a request's fault; throws on `crash`.
   */
  handle(requests: readonly ShardRequest[]): Promise<ShardReply[]> {
    const batch = ++this.#batchNumber;
    const earlier = [...this.#commits];
    const slots: Slot[] = [];
    const ops: WriteOp[] = [];
    const staged: OverlayEntry[] = [];
    for (const request of requests) slots.push(this.#apply(request, batch, ops, staged));
    const committed = this.#commitWrites(batch, ops, staged);
    this.#commits.add(committed);
    void committed.then(() => this.#commits.delete(committed));
    return this.#replies(slots, committed, earlier);
  }

  /** Resolves when every batch handed to `handle` so far has committed or failed. */
  async idle(): Promise<void> {
    while (this.#commits.size > 0) await Promise.all([...this.#commits]);
  }

  #apply(request: ShardRequest, batch: number, ops: WriteOp[], staged: OverlayEntry[]): Slot {
    try {
      switch (request.op) {
        case 'get':
          return this.#get(request.requestId, request.key);
        case 'put':
          return this.#write(request, request.value, batch, ops, staged);
        case 'delete':
          return this.#write(request, null, batch, ops, staged);
        case 'scan':
          return this.#scan(request);
        case 'readObject':
          return this.#readObject(request.requestId, request.key);
        case 'mergeObject':
          return this.#merge(request.requestId, request.key, request.object, batch, ops, staged);
        case 'purgeIf':
          return this.#purgeIf(request.requestId, request.key, request.expected, batch, ops, staged);
        case 'crash':
          throw new Error('shard crash requested (test hook)');
        default:
          return assertNever(request, 'shard request');
      }
    } catch (error) {
      if (request.op === 'crash' || !(error instanceof RingkvError)) throw error;
      return { reply: errorReply(request.requestId, error), isWrite: false, readUncommitted: false };
    }
  }

  #current(key: Uint8Array): Current {
    const entry = this.#overlay.get(key);
    if (entry) return { object: entry.object, bytes: entry.bytes, uncommitted: true };
    const bytes = this.#engine.get(key);
    return { object: bytes === undefined ? undefined : decodeObject(bytes), bytes, uncommitted: false };
  }

  #checkKey(key: Uint8Array, keyBytesMax = this.#keyBytesMax): void {
    if (key.length > keyBytesMax) {
      throw new RingkvError(ErrorCode.tooLarge, `key of ${key.length} bytes is over ${keyBytesMax}`, { keyBytes: key.length });
    }
  }

  /** Queues `object` (encoded as `bytes`) for this batch's commit and shows it to later reads. */
  #stage(key: Uint8Array, object: StoredObject, bytes: Uint8Array, batch: number, ops: WriteOp[], staged: OverlayEntry[]): void {
    staged.push(this.#overlay.set(key, object, bytes, batch));
    ops.push({ type: 'put', key, value: bytes });
    if (bytes.length >= this.#headerObjectBytesMin) this.#headers.set(key, object);
    else this.#headers.delete(key);
  }

  #get(requestId: number, key: Uint8Array): Slot {
    this.#checkKey(key);
    const { object, uncommitted } = this.#current(key);
    const view = readView(object, this.#policy, this.#clock.wallMs());
    return { reply: { kind: 'read', requestId, found: view.found, values: view.values, context: view.context }, isWrite: false, readUncommitted: uncommitted };
  }

  #write(
    request: Extract<ShardRequest, { op: 'put' | 'delete' }>,
    value: Uint8Array | null,
    batch: number,
    ops: WriteOp[],
    staged: OverlayEntry[],
  ): Slot {
    const { requestId, key } = request;
    this.#checkKey(key);
    if (value !== null && value.length > this.#valueBytesMax) {
      throw new RingkvError(ErrorCode.tooLarge, `value of ${value.length} bytes is over ${this.#valueBytesMax}`, { valueBytes: value.length });
    }
    const timestampMs = Math.max(0, Math.floor(this.#clock.wallMs()));
    const entry = this.#overlay.get(key);
    const { next, nextContext } =
      (entry === undefined ? this.#writeOnHeaders(request, value, timestampMs) : undefined) ??
      this.#nextObject(request, value, timestampMs, entry === undefined ? this.#current(key).object : entry.object);
    const encoded = encodeObject(next);
    checkStoredSize(encoded);
    this.#stage(key, next, encoded, batch, ops, staged);
    const object = request.wantObject === true ? encoded : undefined;
    return { reply: { kind: 'written', requestId, context: nextContext, object }, isWrite: true, readUncommitted: false };
  }

  /** The key's next state after a client write, from the whole stored object `before`. */
  #nextObject(request: ClientRequest, value: Uint8Array | null, timestampMs: number, before: StoredObject | undefined): Written {
    const expiresAtMs = expiryOf(request, before, timestampMs, this.#policy);
    // overwrite (RESP SET/DEL): the write supersedes everything this replica holds.
    const context = request.overwrite === true && before !== undefined ? overwriteContext(request.context, before) : request.context;
    if (before === undefined && context === undefined) {
      // Fast path, the common first write of a key: what applyClientWrite returns for it.
      const counter = freshCounterFloor(timestampMs) + 1;
      const sibling: Sibling = expiresAtMs === undefined ? { value, timestampMs } : { value, timestampMs, expiresAtMs };
      const next: StoredObject = [{ actor: this.#actor, counter, siblings: [request.mint === undefined ? sibling : { ...sibling, mint: request.mint }] }];
      if (timestampMs !== this.#firstWriteMs || this.#firstWriteContext === undefined) {
        this.#firstWriteContext = encodeContext([{ actor: this.#actor, counter }]);
        this.#firstWriteMs = timestampMs;
      }
      return { next, nextContext: this.#firstWriteContext };
    }
    const next = applyClientWrite(before, { value, context, actor: this.#actor, timestampMs, policy: this.#policy, siblingsMax: this.#siblingsMax, expiresAtMs, mint: request.mint });
    return { next, nextContext: encodeContext(join(next)) };
  }

  /**
   * The key's next state computed from its cached version headers, or undefined when they are
   * not cached or the result needs the old values (version-headers.ts): the caller reads the
   * stored object then. A blind write with the siblings policy keeps every old sibling, and
   * keepTtl reads the newest value's expiry: neither is tried on headers (keepTtl only when
   * they hold an expiring value).
   */
  #writeOnHeaders(request: ClientRequest, value: Uint8Array | null, timestampMs: number): Written | undefined {
    const keepsValues = this.#policy === 'siblings' && request.context === undefined && request.overwrite !== true;
    // A blind siblings put keeps every old sibling: a key with a value needs the object anyway,
    // and one holding only tombstones is too rare to decode headers for.
    if (keepsValues) return undefined;
    const headers = this.#headers.get(request.key);
    if (headers === undefined) return undefined;
    const readsTtl = request.op === 'put' && request.keepTtl === true && request.ttlMs === undefined;
    let next: StoredObject | undefined;
    if (!(readsTtl && holdsExpiringValue(headers))) {
      const expiresAtMs = expiryOf(request, headers, timestampMs, this.#policy);
      const context = request.overwrite === true ? overwriteContext(request.context, headers) : request.context;
      next = applyClientWriteToHeaders(headers, { value, context, actor: this.#actor, timestampMs, policy: this.#policy, siblingsMax: this.#siblingsMax, expiresAtMs, mint: request.mint });
    }
    if (next === undefined) {
      this.#headers.noteFallback();
      return undefined;
    }
    return { next, nextContext: encodeContext(join(next)) };
  }

  /** A replica read: the stored bytes as they are (after the overlay commits, if from it). */
  #readObject(requestId: number, key: Uint8Array): Slot {
    this.#checkKey(key, limits.keyBytesCeiling);
    const entry = this.#overlay.get(key);
    const object = entry ? entry.bytes : this.#engine.get(key);
    return { reply: { kind: 'object', requestId, object }, isWrite: false, readUncommitted: entry !== undefined };
  }

  /**
   * A replica write: merges another replica's object into this one's. Writes only when the
   * result differs; the ack waits for this batch's commit if it wrote, and for the commit of
   * the uncommitted state it merged into, if any (failing like a read when that failed).
   */
  #merge(requestId: number, key: Uint8Array, incomingBytes: Uint8Array, batch: number, ops: WriteOp[], staged: OverlayEntry[]): Slot {
    this.#checkKey(key, limits.keyBytesCeiling);
    const incoming = decodeIncoming(incomingBytes);
    const headers = this.#overlay.get(key) === undefined ? this.#headers.get(key) : undefined;
    const fromHeaders = headers === undefined ? undefined : this.#mergeOnHeaders(headers, incoming);
    if (fromHeaders !== undefined) {
      // Drafted on headers holding a value the result does not: the state changed.
      const encoded = encodeObject(fromHeaders);
      checkStoredSize(encoded);
      this.#stage(key, fromHeaders, encoded, batch, ops, staged);
      return { reply: { kind: 'merged', requestId }, isWrite: true, readUncommitted: false };
    }
    // Headers without a value are the whole object; otherwise the overlay's state or the engine's.
    const before: Current = headers !== undefined && !holdsHeaderValue(headers) ? { object: headers, bytes: encodeObject(headers), uncommitted: false } : this.#current(key);
    const merged = mergeReplicas(before.object, incoming);
    let changed = false;
    if (merged !== before.object && merged.length > 0) {
      const encoded = encodeObject(merged);
      changed = before.bytes === undefined || !bytesEqual(encoded, before.bytes);
      if (changed) {
        checkStoredSize(encoded);
        this.#stage(key, merged, encoded, batch, ops, staged);
      }
    }
    return { reply: { kind: 'merged', requestId }, isWrite: changed, readUncommitted: before.uncommitted };
  }

  /** A merge drafted on the key's cached headers; undefined when they hold no value or the result needs them. */
  #mergeOnHeaders(headers: StoredObject, incoming: StoredObject): StoredObject | undefined {
    if (!holdsHeaderValue(headers)) return undefined;
    const merged = mergeIntoHeaders(headers, incoming);
    if (merged === undefined) this.#headers.noteFallback();
    return merged;
  }

  /**
   * Compare-and-delete for tombstone purging: deletes `key` in this batch's commit only if its
   * current object is exactly `expected`. The decision is made against the overlay, so a
   * write earlier in this batch or in one still in flight wins over the purge.
   */
  #purgeIf(requestId: number, key: Uint8Array, expected: Uint8Array, batch: number, ops: WriteOp[], staged: OverlayEntry[]): Slot {
    this.#checkKey(key, limits.keyBytesCeiling);
    const before = this.#current(key);
    const deleted = before.bytes !== undefined && bytesEqual(before.bytes, expected);
    if (deleted) {
      staged.push(this.#overlay.set(key, undefined, undefined, batch));
      ops.push({ type: 'delete', key });
      this.#headers.delete(key);
    }
    return { reply: { kind: 'purged', requestId, deleted }, isWrite: deleted, readUncommitted: before.uncommitted };
  }

  #scan(request: Extract<ShardRequest, { op: 'scan' }>): Slot {
    const options = request.afterKey ? { afterKey: request.afterKey, limit: request.limit } : { limit: request.limit };
    let page;
    try {
      page = this.#engine.scanPartition(request.partition, options);
    } catch (error) {
      if (error instanceof RangeError) throw new RingkvError(ErrorCode.badRequest, error.message, {});
      throw error;
    }
    return { reply: { kind: 'scan', requestId: request.requestId, entries: page.entries, nextAfterKey: page.nextAfterKey }, isWrite: false, readUncommitted: false };
  }

  /** Resolves with the error of the batch's engine write, or undefined once it is durable. */
  async #commitWrites(batch: number, ops: WriteOp[], staged: OverlayEntry[]): Promise<unknown> {
    if (ops.length === 0) return undefined;
    try {
      // One engine write per slice within the engine's batch limits; written in one turn, the
      // slices still share one group commit (one fdatasync).
      await Promise.all(slicesOf(ops).map((slice) => this.#engine.write(slice)));
      return undefined;
    } catch (error) {
      // What the engine holds of these keys is unknown now: forget their headers.
      for (const entry of staged) this.#headers.delete(entry.key);
      return error ?? new Error('engine write failed');
    } finally {
      for (const entry of staged) this.#overlay.release(entry, batch);
    }
  }

  async #replies(slots: Slot[], committed: Promise<unknown>, earlier: Promise<unknown>[]): Promise<ShardReply[]> {
    const failure = await committed;
    // Reads that saw an earlier batch's uncommitted state wait for it, and fail with it.
    let readFailure: unknown;
    if (slots.some((s) => s.readUncommitted)) readFailure = (await Promise.all(earlier)).find((e) => e !== undefined) ?? failure;
    if (failure === undefined && readFailure === undefined) return slots.map((s) => s.reply);
    const reason = (error: unknown): string => `the shard's commit failed, the write may or may not be durable: ${(error as Error).message}`;
    return slots.map((s): ShardReply => {
      const requestId = s.reply.requestId;
      if (s.isWrite && failure !== undefined) return { kind: 'error', requestId, code: ErrorCode.indeterminate, message: reason(failure) };
      if (s.readUncommitted && readFailure !== undefined) return { kind: 'error', requestId, code: ErrorCode.unavailable, message: reason(readFailure) };
      return s.reply;
    });
  }
}

/** The new value's expiry: its TTL from the write's time, or with keepTtl the shown value's. */
function expiryOf(request: ShardRequest & { op: 'put' | 'delete' }, before: StoredObject | undefined, timestampMs: number, policy: ConflictPolicy): number | undefined {
  if (request.op !== 'put') return undefined;
  if (request.ttlMs !== undefined) return timestampMs + Math.max(1, request.ttlMs);
  if (request.keepTtl === true && before !== undefined) return readView(before, policy, timestampMs).expiresAtMs;
  return undefined;
}

/** The client's context joined with the whole stored history (an overwrite supersedes it all). */
function overwriteContext(context: Uint8Array | undefined, before: StoredObject): Uint8Array | VersionVector {
  const held = join(before);
  return context === undefined ? held : mergeVectors(decodeContext(context), held);
}

function checkStoredSize(encoded: Uint8Array): void {
  if (encoded.length > storedBytesMax) {
    throw new RingkvError(ErrorCode.tooLarge, `the key's stored object would be ${encoded.length} bytes, over ${storedBytesMax}`, {});
  }
}

/** Decodes an object from another replica: anything malformed or oversized is KV_BAD_REQUEST. */
function decodeIncoming(bytes: Uint8Array): StoredObject {
  if (bytes.length > storedBytesMax) {
    throw new RingkvError(ErrorCode.badRequest, `replica object of ${bytes.length} bytes is over ${storedBytesMax}`, { objectBytes: bytes.length });
  }
  try {
    return decodeObject(bytes);
  } catch (error) {
    if (!(error instanceof RingkvError)) throw error;
    throw new RingkvError(ErrorCode.badRequest, `malformed replica object: ${error.message}`, { ...error.details }, { cause: error });
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** `ops` cut into slices within limits.batchOpsMax operations and limits.batchBytesMax bytes. */
function slicesOf(ops: WriteOp[]): WriteOp[][] {
  const slices: WriteOp[][] = [];
  let slice: WriteOp[] = [];
  let sliceBytes = 0;
  for (const op of ops) {
    const opBytes = op.key.length + (op.type === 'put' ? op.value.length : 0);
    if (slice.length > 0 && (slice.length === limits.batchOpsMax || sliceBytes + opBytes > limits.batchBytesMax)) {
      slices.push(slice);
      slice = [];
      sliceBytes = 0;
    }
    slice.push(op);
    sliceBytes += opBytes;
  }
  slices.push(slice);
  return slices;
}
