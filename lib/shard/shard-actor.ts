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
 * Invariant — the overlay: objects written by a batch whose commit has not resolved are kept
 * in `#overlay` (by key) until it does, and every read looks there first. So two puts to one
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
import { applyClientWrite, type ConflictPolicy, decodeObject, encodeObject, readView, type StoredObject } from '../causality/index.js';
import type { Engine, WriteOp } from '../storage/engine.js';
import { errorReply, type ShardReply, type ShardRequest } from '../protocol/shard-frames.js';

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
}

/** A reply that waits for the batch commit; `readUncommitted` marks gets that saw the overlay. */
interface Slot {
  reply: ShardReply;
  isWrite: boolean;
  readUncommitted: boolean;
}

interface OverlayEntry {
  object: StoredObject;
  /** The batch that wrote it last; only that batch's settlement removes it. */
  batch: number;
}

export class ShardActor {
  readonly #engine: Engine;
  readonly #actor: string;
  readonly #policy: ConflictPolicy;
  readonly #clock: Clock;
  readonly #valueBytesMax: number;
  readonly #keyBytesMax: number;
  readonly #siblingsMax: number;
  readonly #overlay = new Map<string, OverlayEntry>();
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
    const keys: string[] = [];
    for (const request of requests) slots.push(this.#apply(request, batch, ops, keys));
    const committed = this.#commitWrites(batch, ops, keys);
    this.#commits.add(committed);
    void committed.then(() => this.#commits.delete(committed));
    return this.#replies(slots, committed, earlier);
  }

  /** Resolves when every batch handed to `handle` so far has committed or failed. */
  async idle(): Promise<void> {
    while (this.#commits.size > 0) await Promise.all([...this.#commits]);
  }

  #apply(request: ShardRequest, batch: number, ops: WriteOp[], keys: string[]): Slot {
    try {
      switch (request.op) {
        case 'get':
          return this.#get(request.requestId, request.key);
        case 'put':
          return this.#write(request.requestId, request.key, request.value, request.context, batch, ops, keys);
        case 'delete':
          return this.#write(request.requestId, request.key, null, request.context, batch, ops, keys);
        case 'scan':
          return this.#scan(request);
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

  #current(key: Uint8Array): [StoredObject | undefined, boolean] {
    const entry = this.#overlay.get(keyIdOf(key));
    if (entry) return [entry.object, true];
    const bytes = this.#engine.get(key);
    return [bytes === undefined ? undefined : decodeObject(bytes), false];
  }

  #checkKey(key: Uint8Array): void {
    if (key.length > this.#keyBytesMax) {
      throw new RingkvError(ErrorCode.tooLarge, `key of ${key.length} bytes is over ${this.#keyBytesMax}`, { keyBytes: key.length });
    }
  }

  #get(requestId: number, key: Uint8Array): Slot {
    this.#checkKey(key);
    const [object, uncommitted] = this.#current(key);
    const view = readView(object, this.#policy);
    return { reply: { kind: 'read', requestId, found: view.found, values: view.values, context: view.context }, isWrite: false, readUncommitted: uncommitted };
  }

  #write(
    requestId: number,
    key: Uint8Array,
    value: Uint8Array | null,
    context: Uint8Array | undefined,
    batch: number,
    ops: WriteOp[],
    keys: string[],
  ): Slot {
    this.#checkKey(key);
    if (value !== null && value.length > this.#valueBytesMax) {
      throw new RingkvError(ErrorCode.tooLarge, `value of ${value.length} bytes is over ${this.#valueBytesMax}`, { valueBytes: value.length });
    }
    const [before] = this.#current(key);
    const timestampMs = Math.max(0, Math.floor(this.#clock.wallMs()));
    const next = applyClientWrite(before, { value, context, actor: this.#actor, timestampMs, policy: this.#policy, siblingsMax: this.#siblingsMax });
    const encoded = encodeObject(next);
    const storedBytesMax = limits.entryBytesMax - limits.keyBytesCeiling;
    if (encoded.length > storedBytesMax) {
      throw new RingkvError(ErrorCode.tooLarge, `the key's stored object would be ${encoded.length} bytes, over ${storedBytesMax}`, {});
    }
    const id = keyIdOf(key);
    this.#overlay.set(id, { object: next, batch });
    ops.push({ type: 'put', key, value: encoded });
    keys.push(id);
    const view = readView(next, this.#policy);
    return { reply: { kind: 'written', requestId, context: view.context }, isWrite: true, readUncommitted: false };
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
  async #commitWrites(batch: number, ops: WriteOp[], keys: string[]): Promise<unknown> {
    if (ops.length === 0) return undefined;
    try {
      await this.#engine.write(ops);
      return undefined;
    } catch (error) {
      return error ?? new Error('engine write failed');
    } finally {
      for (const id of keys) if (this.#overlay.get(id)?.batch === batch) this.#overlay.delete(id);
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

/** A Map key for a byte key: latin1 maps each byte to one UTF-16 unit, injectively. */
function keyIdOf(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}
