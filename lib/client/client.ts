/**
 * The remote client, `connect(urls, options)` (DESIGN.md §5; issue 4 §5): the embedded
 * Store's get/put/delete/batch API over the `/client` WebSocket protocol of wire.md.
 *
 * Owner: the thread that called connect. Layer 5: holds sockets and timers.
 *
 * Routing: the client learns the ring (`ring` request) at connect, on a timer
 * (limits.clientRingRefreshMs), when a node pushes a `ring` message, and after a request
 * fails over; it computes each key's preference list with lib/ring (ring-view.ts) and sends
 * the request straight to the first up replica, pipelined with every other request on that
 * connection (node-connection.ts).
 *
 * Retries, hedges and outcomes (RELIABILITY.md §0 "three-valued outcomes"; the rules in
 * detail in hedged-request.ts): a request is tried on at most limits.clientAttemptsMax
 * nodes, each once. A node that has not answered within its hedge delay (near its observed
 * p99, clamped to [limits.hedgeDelayMsMin, limits.hedgeDelayMsMax]) gets company: the
 * request also goes to the next node, and the first good answer wins. A node silent past its
 * attempt timeout, or on a ping, is suspect and routed last until it answers again.
 *  - get: also retried on the next node at once when the link was down or died, and when a
 *    node answers KV_UNAVAILABLE, KV_OVERLOADED or KV_TIMEOUT (another coordinator may reach
 *    R replicas; a read has no side effect, so retrying it is always safe).
 *  - put/delete: carry a 16-byte random `rid` chosen once, the same on every attempt; nodes
 *    remember it wherever the write was applied, so a hedged or retried write is applied
 *    once. Retried at once only when nothing was sent or the link died before any reply; an
 *    error reply stands once no other attempt is in flight: KV_INDETERMINATE is surfaced,
 *    never turned into success or failure. A write whose link died and that could not be
 *    retried elsewhere is KV_INDETERMINATE.
 *  - timeoutMs (default limits.clientRequestTimeoutMs) bounds the whole request, retries
 *    included: past it the request fails with KV_TIMEOUT. For a write KV_TIMEOUT is
 *    indeterminate (details.indeterminate = true): it may have been applied.
 * `batch` validates every op first (nothing is sent if one is bad), then sends them all in
 * the same turn, so each connection carries them in one frame; results are in op order and
 * the batch rejects with the first error, as the embedded Store's does. It is not atomic.
 */

import { randomBytes, randomInt } from 'node:crypto';
import { ErrorCode, RingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { silentLogger } from '../base/log.js';
import { type Rng, SeededRng } from '../base/rng.js';
import type { LatencyBounds } from '../replication/index.js';
import { connectClient, type WireMessage } from '../transport/index.js';
import { ClientCluster } from './client-cluster.js';
import { latencyKey } from './hedged-request.js';
import type { ConnectFn } from './node-connection.js';
import { getResultOf, type GetResult, type WriteResult, writeResultOf } from './replies.js';
import {
  checkClientOptions,
  checkOptions,
  type ClientOptions,
  type Key,
  keyBytesOf,
  nodeUrlsOf,
  type RequestOptions,
  type Value,
  valueBytesOf,
} from './request-options.js';
import type { RingView } from './ring-view.js';

export type BatchOp =
  | ({ type: 'get'; key: Key } & RequestOptions)
  | ({ type: 'put'; key: Key; value: Value } & RequestOptions)
  | ({ type: 'delete'; key: Key } & RequestOptions);

export type BatchResult = GetResult | WriteResult;

export interface NodeHealth {
  url: string;
  node: string | undefined;
  state: 'idle' | 'connecting' | 'open' | 'down' | 'closed';
  suspect: boolean;
  readHedgeDelayMs: number;
  writeHedgeDelayMs: number;
}

export interface Client {
  get(key: Key, options?: RequestOptions): Promise<GetResult>;
  put(key: Key, value: Value, options?: RequestOptions): Promise<WriteResult>;
  delete(key: Key, options?: RequestOptions): Promise<WriteResult>;
  batch(ops: readonly BatchOp[]): Promise<BatchResult[]>;
  /** The ring view last learned from a node (undefined before the first). */
  ringView(): RingView | undefined;
  /** Re-reads the ring from a node now. */
  refreshRing(): Promise<void>;
  /** The client's connections as it sees them: state, whether suspect, and the hedge delays it uses (tools, tests). */
  nodeHealth(): NodeHealth[];
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Seams for tests and tools: a fake transport, seeded jitter, fixed rids, other bounds. */
export interface ClientSeams {
  connect?: ConnectFn;
  rng?: Rng;
  ridOf?: () => Uint8Array;
  ringRefreshMs?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  inflightMax?: number;
  queueMax?: number;
  pingIdleMs?: number;
  pingTimeoutMs?: number;
  /** Hedge delay and attempt timeout bounds (default from limits). */
  hedge?: Partial<LatencyBounds>;
}

interface Prepared {
  key: Uint8Array;
  message: { t: string; [field: string]: unknown };
  write: boolean;
  timeoutMs: number;
}

/** Connects to a cluster through any of `urls` ('ws://h:p', 'wss://h:p' or 'h:p'). */
export async function connect(urls: string | readonly string[], options?: ClientOptions & ClientSeams): Promise<Client> {
  const seeds = nodeUrlsOf(urls);
  const o = { ...checkClientOptions(options), ...(options as ClientSeams | undefined) };
  const cluster = new ClientCluster(seeds, {
    connect: o.connect ?? connectClient,
    token: o.token,
    caFile: o.caFile,
    logger: o.logger ?? silentLogger,
    rng: o.rng ?? new SeededRng(randomInt(2 ** 31)),
    inflightMax: o.inflightMax ?? limits.clientInflightMax,
    queueMax: o.queueMax ?? limits.clientQueueMax,
    connectTimeoutMs: Math.min(limits.clientConnectTimeoutMs, o.timeoutMs ?? limits.clientConnectTimeoutMs),
    reconnectBaseMs: o.reconnectBaseMs ?? limits.clientReconnectBaseMs,
    reconnectMaxMs: o.reconnectMaxMs ?? limits.clientReconnectMaxMs,
    onRing: () => undefined,
    ringRefreshMs: o.ringRefreshMs ?? limits.clientRingRefreshMs,
    localDc: o.localDc,
    requestTimeoutMs: o.timeoutMs ?? limits.clientRequestTimeoutMs,
    pingIdleMs: o.pingIdleMs ?? limits.clientPingIdleMs,
    pingTimeoutMs: o.pingTimeoutMs ?? limits.clientPingTimeoutMs,
    hedge: o.hedge ?? {},
    hedgeWrites: o.hedgeWrites ?? false,
  });
  try {
    await cluster.start();
  } catch (error) {
    cluster.close();
    throw error;
  }
  return new RemoteClient(cluster, o.timeoutMs, o.ridOf ?? (() => randomBytes(16)));
}

class RemoteClient implements Client {
  readonly #cluster: ClientCluster;
  readonly #explicitTimeoutMs: number | undefined;
  readonly #defaultTimeoutMs: number;
  readonly #ridOf: () => Uint8Array;

  constructor(cluster: ClientCluster, timeoutMs: number | undefined, ridOf: () => Uint8Array) {
    this.#cluster = cluster;
    this.#explicitTimeoutMs = timeoutMs;
    this.#defaultTimeoutMs = timeoutMs ?? limits.clientRequestTimeoutMs;
    this.#ridOf = ridOf;
  }

  async get(key: Key, options?: RequestOptions): Promise<GetResult> {
    const prepared = this.#prepare({ type: 'get', key }, options, 'options', 'key');
    return this.#run(prepared) as Promise<GetResult>;
  }

  async put(key: Key, value: Value, options?: RequestOptions): Promise<WriteResult> {
    const prepared = this.#prepare({ type: 'put', key, value }, options, 'options', 'key', 'value');
    return this.#run(prepared) as Promise<WriteResult>;
  }

  async delete(key: Key, options?: RequestOptions): Promise<WriteResult> {
    const prepared = this.#prepare({ type: 'delete', key }, options, 'options', 'key');
    return this.#run(prepared) as Promise<WriteResult>;
  }

  async batch(ops: readonly BatchOp[]): Promise<BatchResult[]> {
    if (!Array.isArray(ops)) throw new TypeError('ops must be an array');
    if (ops.length > limits.batchOpsMax) {
      throw new RingkvError(ErrorCode.tooLarge, `batch of ${ops.length} ops is over ${limits.batchOpsMax}`, { ops: ops.length });
    }
    const prepared = ops.map((op: unknown, i) => {
      if (typeof op !== 'object' || op === null) throw new TypeError(`ops[${i}] must be an object`);
      const { type, key, value } = op as { type: unknown; key: unknown; value: unknown };
      if (type !== 'get' && type !== 'put' && type !== 'delete') throw new TypeError(`ops[${i}].type must be 'get', 'put' or 'delete'`);
      return this.#prepare({ type, key, value }, op, `ops[${i}]`, `ops[${i}].key`, `ops[${i}].value`);
    });
    let bytes = 0;
    for (const p of prepared) bytes += p.key.length + ((p.message.value as Uint8Array | undefined)?.length ?? 0);
    if (bytes > limits.batchBytesMax) {
      throw new RingkvError(ErrorCode.tooLarge, `batch of ${bytes} bytes is over ${limits.batchBytesMax}`, { batchBytes: bytes });
    }
    return Promise.all(prepared.map((p) => this.#run(p)));
  }

  ringView(): RingView | undefined {
    return this.#cluster.view?.view;
  }

  refreshRing(): Promise<void> {
    return this.#cluster.refreshRing();
  }

  nodeHealth(): NodeHealth[] {
    const latency = this.#cluster.latency;
    return [...this.#cluster.connections.values()].map((c) => ({
      url: c.url,
      node: c.nodeId,
      state: c.state,
      suspect: c.isSuspect,
      readHedgeDelayMs: latency.hedgeDelayMs(latencyKey(false, c.url)),
      writeHedgeDelayMs: latency.hedgeDelayMs(latencyKey(true, c.url)),
    }));
  }

  async close(): Promise<void> {
    this.#cluster.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #prepare(
    op: { type: 'get' | 'put' | 'delete'; key: unknown; value?: unknown },
    options: unknown,
    field: string,
    keyField: string,
    valueField = 'value',
  ): Prepared {
    const key = keyBytesOf(op.key, keyField);
    const o = checkOptions(options, field, this.#defaultTimeoutMs);
    const requested = (options as RequestOptions | undefined)?.timeoutMs ?? this.#explicitTimeoutMs;
    const message: Prepared['message'] = { t: op.type, key };
    if (requested !== undefined) message.timeoutMs = requested;
    if (o.consistency !== undefined) message.consistency = o.consistency;
    if (op.type === 'get') {
      if (o.r !== undefined) message.r = o.r;
      return { key, message, write: false, timeoutMs: o.timeoutMs };
    }
    if (op.type === 'put') message.value = valueBytesOf(op.value, valueField);
    if (op.type === 'put' && o.ttlMs !== undefined) message.ttlMs = o.ttlMs;
    if (o.w !== undefined) message.w = o.w;
    if (o.context !== undefined) message.context = o.context;
    message.rid = this.#ridOf();
    return { key, message, write: true, timeoutMs: o.timeoutMs };
  }

  async #run(p: Prepared): Promise<BatchResult> {
    const { message: reply, node } = await this.#cluster.execute(p.key, p.message, p.write, p.timeoutMs);
    return p.write ? writeResultOf(reply, node) : getResultOf(reply, node);
  }
}

export type { GetResult, WriteResult, WireMessage };
