/**
 * The main thread's handle on one shard worker: starts it, frames requests into its request
 * mailbox, matches replies by request id, and restarts it when it dies.
 *
 * Owner: the main thread (the embedded Store; later the node supervisor).
 *
 * Invariants:
 * - Every request handed to `request()` settles exactly once: with its reply, or with an error.
 * - A shard that exits unexpectedly first has its already-published replies delivered (they
 *   were acknowledged by its engine); every other in-flight request then fails — writes with
 *   KV_INDETERMINATE (the commit may or may not have happened), reads with KV_UNAVAILABLE —
 *   never with success. The worker is restarted on fresh mailboxes and reopens its engine with
 *   `reclaimFromDeadThread`, recovering from its commit log. Requests sent while it restarts
 *   wait in the new mailbox. If the restart fails, the shard stays down (KV_UNAVAILABLE) and
 *   other shards are unaffected.
 * - In-flight requests are bounded by limits.pendingWritesMax (KV_OVERLOADED beyond).
 */

import { MessageChannel, Worker } from 'node:worker_threads';
import { ErrorCode, RingkvError, isErrorCode } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import type { ConflictPolicy } from '../causality/index.js';
import { createMailbox, MailboxConsumer, MailboxProducer } from '../mailbox/index.js';
import { decodeReplySpan, encodeRequestInto, requestBytes, type ShardReply, type ShardRequest } from '../protocol/shard-frames.js';
import { exposeBackgroundRunner, type ShardControl, wrapShardControl } from '../shard/control-channel.js';
import { FrameSender } from '../shard/frame-sender.js';
import { PresenceFilter } from '../shard/presence-filter.js';
import type { ShardStatusMessage, ShardWorkerData } from '../shard/shard-worker-data.js';
import type { BackgroundRunner, SyncMode } from '../storage/engine.js';
import type { ShardStats } from '../shard/control-channel.js';

/** Compiled layout: build/lib/store/shard-handle.js → build/workers/shard-worker.js. */
const workerUrl = new URL('../../workers/shard-worker.js', import.meta.url);

export interface ShardConfig {
  index: number;
  dir: string;
  sync: SyncMode;
  partitionBits: number;
  actor: string;
  policy: ConflictPolicy;
  runner: BackgroundRunner;
  logger: Logger;
  memtableBytes: number | undefined;
  headerCacheBytes?: number | undefined;
  /** Publish request frames once per event-loop turn (FrameSender publishPerTurn): a node's store. */
  publishPerTurn?: boolean;
  /** Have the shard keep a presence filter (lib/shard/presence-filter.ts): a node's store. */
  presence?: boolean;
}

/** Turns a reply into the caller's result; throws (an error reply's RingkvError, say) to reject. */
export type ReplyConverter<T> = (reply: ShardReply) => T;

interface Pending {
  isWrite: boolean;
  convert: ReplyConverter<unknown>;
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

interface Generation {
  worker: Worker;
  sender: FrameSender;
  producer: MailboxProducer;
  replies: MailboxConsumer;
  control: ShardControl;
  runnerPort: MessagePort;
  pending: Map<number, Pending>;
  /** The worker reported ready (its control channel answers). */
  started: boolean;
  /** The shard's presence filter, from its ready message (presence-filter.ts). */
  presence: PresenceFilter | undefined;
}

type MessagePort = InstanceType<typeof MessageChannel>['port1'];

export class ShardHandle {
  readonly #config: ShardConfig;
  #current: Generation | undefined;
  #state: 'running' | 'down' | 'closing' | 'closed' = 'running';
  #nextRequestId = 1;
  #restarts = 0;
  #ready: Promise<void> = Promise.resolve();

  constructor(config: ShardConfig) {
    this.#config = config;
  }

  /** Times this shard was restarted after dying. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Resolves once the current worker reported ready (or rejects with why it failed). */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** Starts the worker; resolves when its engine is open. */
  start(reclaimFromDeadThread: boolean): Promise<void> {
    const { index, dir, sync, partitionBits, actor, policy, memtableBytes } = this.#config;
    const requestBuffer = createMailbox();
    const replyBuffer = createMailbox();
    const control = new MessageChannel();
    const runner = new MessageChannel();
    exposeBackgroundRunner(this.#config.runner, runner.port1);
    const workerData: ShardWorkerData = {
      shardIndex: index,
      dir,
      sync,
      partitionBits,
      actor,
      policy,
      requestBuffer,
      replyBuffer,
      controlPort: control.port2,
      runnerPort: runner.port2,
      reclaimFromDeadThread,
      memtableBytes,
      headerCacheBytes: this.#config.headerCacheBytes,
      presence: this.#config.presence === true,
    };
    const worker = new Worker(workerUrl, { workerData, transferList: [control.port2, runner.port2] });
    const producer = new MailboxProducer(requestBuffer);
    const generation: Generation = {
      worker,
      producer,
      sender: new FrameSender(producer, {
        onError: (error) => this.#config.logger.error({ err: error, shard: index }, 'request mailbox failed'),
        publishPerTurn: this.#config.publishPerTurn === true,
      }),
      replies: new MailboxConsumer(replyBuffer),
      control: wrapShardControl(control.port1),
      runnerPort: runner.port1,
      pending: new Map(),
      started: false,
      presence: undefined,
    };
    this.#current = generation;
    this.#ready = this.#watch(generation);
    void this.#pumpReplies(generation);
    return this.#ready;
  }

  #watch(g: Generation): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      g.worker.once('message', (message: ShardStatusMessage) => {
        if (message.kind === 'ready') {
          g.started = true;
          if (message.presence !== undefined) g.presence = PresenceFilter.attach(message.presence);
          resolve();
          return;
        }
        const code = message.code !== undefined && isErrorCode(message.code) ? message.code : ErrorCode.unavailable;
        reject(new RingkvError(code, `shard ${this.#config.index} failed to open: ${message.message}`, { shard: this.#config.index }));
      });
      g.worker.on('error', (error) => this.#config.logger.error({ err: error, shard: this.#config.index }, 'shard worker crashed'));
      g.worker.once('exit', (exitCode) => {
        if (!g.started) reject(new RingkvError(ErrorCode.unavailable, `shard ${this.#config.index} exited (${exitCode}) while starting`, {}));
        this.#onExit(g, g.started);
      });
    });
  }

  async #pumpReplies(g: Generation): Promise<void> {
    try {
      await g.replies.pump({ visitSpan: (bytes, startBytes, lengthBytes) => this.#onReply(g, bytes, startBytes, lengthBytes) });
    } catch (error) {
      this.#config.logger.error({ err: error, shard: this.#config.index }, 'reply pump failed');
    }
  }

  #onReply(g: Generation, bytes: Uint8Array, startBytes: number, lengthBytes: number): void {
    let reply: ShardReply;
    try {
      reply = decodeReplySpan(bytes, startBytes, lengthBytes);
    } catch (error) {
      // Our own worker wrote it: a bug. The request it answered can only be indeterminate.
      const requestId = (error as RingkvError).details?.requestId;
      const pending = typeof requestId === 'number' ? g.pending.get(requestId) : undefined;
      if (pending) {
        g.pending.delete(requestId as number);
        pending.reject(new RingkvError(ErrorCode.indeterminate, `malformed reply from shard: ${(error as Error).message}`, {}));
      }
      return;
    }
    const pending = g.pending.get(reply.requestId);
    if (!pending) return;
    g.pending.delete(reply.requestId);
    let result: unknown;
    try {
      result = pending.convert(reply);
    } catch (error) {
      pending.reject(error);
      return;
    }
    pending.resolve(result);
  }

  #onExit(g: Generation, started: boolean): void {
    // Replies the worker published before dying were acknowledged by its engine: deliver them.
    g.replies.drainSpans((bytes, startBytes, lengthBytes) => this.#onReply(g, bytes, startBytes, lengthBytes));
    g.replies.close();
    g.control.release();
    g.runnerPort.close();
    for (const [requestId, pending] of g.pending) {
      const code = pending.isWrite ? ErrorCode.indeterminate : ErrorCode.unavailable;
      const outcome = pending.isWrite ? 'the write may or may not be durable' : 'retry the read';
      pending.reject(new RingkvError(code, `shard ${this.#config.index} died with the request in flight: ${outcome}`, { shard: this.#config.index, requestId }));
    }
    g.pending.clear();
    if (this.#current !== g || this.#state !== 'running') return;
    if (!started) {
      this.#state = 'down';
      return;
    }
    this.#restarts++;
    this.#config.logger.warn({ shard: this.#config.index, restarts: this.#restarts }, 'restarting shard from its log');
    this.start(true).catch((error: unknown) => {
      this.#config.logger.error({ err: error, shard: this.#config.index }, 'shard restart failed; shard is down');
    });
  }

  /**
   * Whether the shard may hold a key of placement token `token`: false only when its presence
   * filter is ready and says no (presence-filter.ts). A request sent and not yet answered is
   * the caller's to account for (RowCache tracks changes in flight).
   */
  mayHold(token: number): boolean {
    const g = this.#current;
    if (g === undefined || this.#state !== 'running' || g.presence === undefined) return true;
    return g.presence.mayHold(token);
  }

  /**
   * Publishes the requests queued in this turn now, and delivers the replies the shard has
   * already published, without waiting for the event loop's next turn (see EmbeddedStore.poll).
   */
  poll(): void {
    const g = this.#current;
    if (g === undefined || this.#state !== 'running') return;
    g.sender.flush();
    if (g.replies.available()) g.replies.drainSpans((bytes, startBytes, lengthBytes) => this.#onReply(g, bytes, startBytes, lengthBytes));
  }

  /**
   * Sends `request` (its requestId is assigned here) and resolves with `convert(reply)`, or
   * rejects with what `convert` throws. The frame is encoded straight into the request mailbox.
   */
  request<T>(request: ShardRequest, isWrite: boolean, convert: ReplyConverter<T>): Promise<T> {
    const g = this.#current;
    if (this.#state !== 'running' || g === undefined) {
      const code = this.#state === 'down' ? ErrorCode.unavailable : ErrorCode.closed;
      return Promise.reject(new RingkvError(code, `shard ${this.#config.index} is ${this.#state}`, { shard: this.#config.index }));
    }
    if (g.pending.size >= limits.pendingWritesMax) {
      return Promise.reject(new RingkvError(ErrorCode.overloaded, `shard ${this.#config.index} has ${g.pending.size} requests in flight`, {}));
    }
    const requestId = this.#nextRequestId;
    this.#nextRequestId = (this.#nextRequestId % 0xffffffff) + 1;
    request.requestId = requestId;
    return new Promise<T>((resolve, reject) => {
      g.sender.sendEncoded(requestBytes(request), encodeRequestInto, request);
      g.pending.set(requestId, { isWrite, convert, resolve: resolve as (result: unknown) => void, reject });
    });
  }

  async stats(): Promise<ShardStats> {
    await this.#ready;
    return this.#live().control.stats();
  }

  async flush(): Promise<void> {
    await this.#ready;
    await this.#live().control.flush();
  }

  async compact(): Promise<void> {
    await this.#ready;
    await this.#live().control.compact();
  }

  async dropPartition(partition: number): Promise<number> {
    await this.#ready;
    return this.#live().control.dropPartition(partition);
  }

  #live(): Generation {
    if (this.#state !== 'running' || this.#current === undefined) {
      throw new RingkvError(ErrorCode.unavailable, `shard ${this.#config.index} is ${this.#state}`, { shard: this.#config.index });
    }
    return this.#current;
  }

  /** Waits for in-flight requests, closes the engine, stops the worker. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    const wasRunning = this.#state === 'running';
    this.#state = 'closing';
    const g = this.#current;
    if (g !== undefined) {
      await this.#ready.catch(() => undefined);
      while (g.pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 1));
      try {
        if (wasRunning && g.started) await g.control.close();
      } finally {
        g.producer.close();
        await g.worker.terminate();
      }
    }
    this.#state = 'closed';
  }
}
