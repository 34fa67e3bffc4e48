/**
 * Shard worker entry: one worker thread per shard. Thin on purpose (code here is absent from
 * coverage): opens the shard's engine, pumps request frames from its mailbox into the
 * ShardActor (lib/shard/shard-actor.ts, tested on the main thread), writes the replies back,
 * and serves the control API over comlink (the worker-side comlink seam). Request frames are
 * copied once into a FrameArena and decoded as views; replies are encoded in place into the
 * reply mailbox and published once per batch.
 *
 * A crash (an exception the actor throws, e.g. a failed assertion or the test-only crash
 * frame) is rethrown outside any promise so the thread dies; the main thread restarts it and
 * the new engine recovers from the commit log.
 */

import { expose, wrap } from 'comlink';
import { parentPort, workerData } from 'node:worker_threads';
import { systemClock } from '../lib/base/clock.js';
import { ErrorCode, RingkvError } from '../lib/base/errors.js';
import { limits } from '../lib/base/limits.js';
import { MailboxConsumer, MailboxProducer } from '../lib/mailbox/index.js';
import { decodeRequestSpan, encodeReplyInto, errorReply, replyBytes, type ShardReply, type ShardRequest } from '../lib/protocol/shard-frames.js';
import type { ShardControlApi } from '../lib/shard/control-channel.js';
import { FrameArena } from '../lib/shard/frame-arena.js';
import { FrameSender } from '../lib/shard/frame-sender.js';
import { PresenceFilter, PresenceState } from '../lib/shard/presence-filter.js';
import { ShardActor } from '../lib/shard/shard-actor.js';
import { expiryFilterName, registerExpiryFilter } from '../lib/shard/expiry-filter.js';
import type { ShardStatusMessage, ShardWorkerData } from '../lib/shard/shard-worker-data.js';
import { type BackgroundRunner, Engine } from '../lib/storage/engine.js';
import { NodeFileSystem } from '../lib/storage/node-file-system.js';

const data = workerData as ShardWorkerData;

function post(message: ShardStatusMessage): void {
  parentPort!.postMessage(message);
}

function crash(error: unknown): void {
  setImmediate(() => {
    throw error;
  });
}

function start(): void {
  registerExpiryFilter();
  const runner = wrap<BackgroundRunner>(data.runnerPort as unknown as Parameters<typeof wrap>[0]);
  let engine: Engine;
  try {
    engine = Engine.open({
      fs: new NodeFileSystem(),
      dir: data.dir,
      sync: data.sync,
      partitionBits: data.partitionBits,
      // The actor holds client keys to keyBytesMax; replica merges may carry up to the ceiling.
      keyBytesMax: limits.keyBytesCeiling,
      valueBytesMax: limits.entryBytesMax - limits.keyBytesCeiling,
      runner: { run: (job) => runner.run(job) },
      recordFilter: expiryFilterName, // compaction drops expired values (expiry-filter.ts)
      reclaimFromDeadThread: data.reclaimFromDeadThread,
      ...(data.memtableBytes === undefined ? {} : { memtableBytes: data.memtableBytes }),
    });
  } catch (error) {
    post({ kind: 'failed', code: error instanceof RingkvError ? error.code : undefined, message: (error as Error).message });
    data.runnerPort.close();
    data.controlPort.close();
    return;
  }
  // The presence filter (presence-filter.ts): every key from now on as the engine takes it,
  // and every key it holds already by a scan; ready once the scan is through.
  const presence = data.presence === true ? PresenceFilter.create(engine.keyEstimate()) : undefined;
  if (presence !== undefined) engine.keyListener = (token) => presence.add(token);
  const actor = new ShardActor({ engine, actor: data.actor, policy: data.policy, clock: systemClock, ...(data.headerCacheBytes === undefined ? {} : { headerCacheBytes: data.headerCacheBytes }) });
  const consumer = new MailboxConsumer(data.requestBuffer);
  // Replies reference immutable bytes (engine, arena): one waiting for space stays unencoded.
  const sender = new FrameSender(new MailboxProducer(data.replyBuffer), { onError: crash, deferEncoding: true });
  const sendReply = (reply: ShardReply): void => {
    let lengthBytes = replyBytes(reply);
    if (lengthBytes > consumer.frameBytesMax) {
      const tooLarge = new RingkvError(ErrorCode.tooLarge, `reply of ${lengthBytes} bytes is over the mailbox frame limit`, {});
      reply = errorReply(reply.requestId, tooLarge);
      lengthBytes = replyBytes(reply);
    }
    sender.sendEncoded(lengthBytes, encodeReplyInto, reply);
  };
  const sendReplies = (replies: ShardReply[]): void => {
    for (const reply of replies) sendReply(reply);
  };
  // Frames are copied once into the arena and decoded as views: the mailbox bytes die when
  // the drain ends, the batch's keys and values live until its replies are sent.
  const arena = new FrameArena();
  let batch: ShardRequest[] = [];
  const pumped = consumer.pump({
    visitSpan(bytes, startBytes, lengthBytes) {
      try {
        const at = arena.copy(bytes, startBytes, lengthBytes);
        batch.push(decodeRequestSpan(arena.chunk, at, lengthBytes, false));
      } catch (error) {
        sendReply(errorReply(Number((error as RingkvError).details?.requestId ?? 0), error));
      }
    },
    afterDrain() {
      const requests = batch;
      batch = [];
      if (requests.length > 0) actor.handle(requests).then(sendReplies, crash);
    },
  });
  pumped.catch(crash);
  const api: ShardControlApi = {
    stats: () => ({ ...engine.stats(), headerCache: actor.headerCacheStats() }),
    flush: () => engine.flush(),
    compact: () => engine.compact(),
    // The drop changes the engine beside the actor: its cached headers are forgotten.
    async dropPartition(partition: number) {
      actor.forgetHeaders();
      try {
        return await engine.dropPartition(partition);
      } finally {
        actor.forgetHeaders();
      }
    },
    async close() {
      consumer.close();
      await pumped;
      await actor.idle();
      await new Promise((resolve) => setImmediate(resolve));
      sender.flush();
      await engine.close();
      data.runnerPort.close();
    },
  };
  expose(api, data.controlPort as unknown as Parameters<typeof expose>[1]);
  post(presence === undefined ? { kind: 'ready' } : { kind: 'ready', presence: presence.buffer });
  if (presence !== undefined) void fillPresence(engine, presence, data.partitionBits);
}

/** Adds every key the engine holds to `presence`, a partition per step, yielding to requests after each (a partition of a large store takes milliseconds). */
async function fillPresence(engine: Engine, presence: PresenceFilter, partitionBits: number): Promise<void> {
  const add = (token: number): void => presence.add(token);
  try {
    for (let partition = 0; partition < 2 ** partitionBits; partition++) {
      if (presence.state === PresenceState.off) return;
      engine.forEachToken(partition, add);
      await new Promise((resolve) => setImmediate(resolve));
    }
    presence.markReady();
  } catch {
    // The engine closed or failed under the scan: the filter stays "maybe" for this worker's life.
  }
}

start();
