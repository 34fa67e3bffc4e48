/**
 * One client connection to one node: pipelined requests matched to replies by id, a bounded
 * send queue, and reconnection in the background with jittered, bounded exponential backoff.
 *
 * Owner: the client's thread (timers and sockets: layer 5). The link itself (framing,
 * batching of everything sent in one turn into one frame, the hello/welcome handshake) is the
 * transport's (lib/transport `connectClient`).
 *
 * Invariants:
 *  - at most `inflightMax` requests are in flight on the link; later ones wait in a FIFO
 *    queue of at most `queueMax` (beyond: a not-sent KV_OVERLOADED outcome);
 *  - every call ends in exactly one outcome, and the outcome says what the network saw:
 *    'reply' (the node answered), 'not-sent' (nothing left this client: safe to send the
 *    request anywhere else, writes included), or 'lost' (sent, then the link died before the
 *    reply: the request may have been applied, so only a write with the same rid may be
 *    retried). A cancelled call (the caller's deadline passed) never resolves; a late reply
 *    to it is dropped;
 *  - ids are u32, never 0 (id 0 is the node's connection-level error), unique among the
 *    requests in flight on this link;
 *  - while a connection is 'down' calls fail at once with 'not-sent', so a request fails
 *    over instead of waiting for a node that is away; the reconnect timer keeps trying.
 *
 * Suspicion (tail at scale): a node can stop answering with its TCP connection open (a GC
 * pause, SIGSTOP, a stalled VM). The connection is then `suspect` — routed after the others,
 * still open — when the client's attempt timeout passes on one of its requests
 * (markSuspect) or when a `ping`, sent by `probe` after `idleMs` without any message from the
 * node, gets no answer within `timeoutMs`. Any message from the node clears it.
 */

import { ErrorCode, RingkvError, isRingkvError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import type { Rng } from '../base/rng.js';
import type { Link, WireMessage } from '../transport/index.js';

export type ConnectFn = (
  url: string,
  options: { token?: string; logger?: Logger; caFile?: string; timeoutMs?: number },
) => Promise<Link>;

export type CallOutcome =
  | { readonly kind: 'reply'; readonly message: WireMessage }
  | { readonly kind: 'not-sent'; readonly error: RingkvError }
  | { readonly kind: 'lost'; readonly error: RingkvError };

export interface Call {
  readonly outcome: Promise<CallOutcome>;
  /** Stops waiting: the call never resolves and a late reply is dropped. */
  cancel(): void;
  /**
   * Stops waiting like cancel, but keeps watching: if no reply comes within `suspectAfterMs`
   * the node is marked suspect (a hedge won the race, and the loser may be paused).
   */
  abandon(suspectAfterMs: number): void;
}

export interface ConnectionSettings {
  connect: ConnectFn;
  token: string | undefined;
  caFile: string | undefined;
  logger: Logger;
  rng: Rng;
  inflightMax: number;
  queueMax: number;
  connectTimeoutMs: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  /** An unsolicited `ring` message (the node says the ring changed). */
  onRing(ring: unknown): void;
}

type State = 'idle' | 'connecting' | 'open' | 'down' | 'closed';

interface Pending {
  readonly message: { t: string; [field: string]: unknown };
  readonly resolve: (outcome: CallOutcome) => void;
  done: boolean;
  id: number;
}

export class NodeConnection {
  readonly url: string;
  /** The node's id, from its welcome. */
  nodeId: string | undefined;
  readonly #s: ConnectionSettings;
  #state: State = 'idle';
  #link: Link | undefined;
  readonly #inflight = new Map<number, Pending>();
  #queue: Pending[] = [];
  #queueHead = 0;
  #lastId = 0;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #lastError: RingkvError | undefined;
  #suspect = false;
  #lastHeardMs = 0;
  #ping: { sentMs: number; call: Call } | undefined;

  constructor(url: string, settings: ConnectionSettings) {
    this.url = url;
    this.#s = settings;
  }

  get state(): State {
    return this.#state;
  }

  /** Whether the last attempt to reach the node failed and no link is up. */
  get isDown(): boolean {
    return this.#state === 'down';
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  /** Open, but the node left a request or a ping unanswered past its timeout (see the header). */
  get isSuspect(): boolean {
    return this.#suspect && this.#state === 'open';
  }

  /** The node let a request go unanswered past its attempt timeout. */
  markSuspect(reason: string): void {
    if (this.#suspect || this.#state !== 'open') return;
    this.#suspect = true;
    this.#s.logger.info({ url: this.url, node: this.nodeId, reason }, 'node suspect: routing requests to others first');
  }

  /** Liveness probe, called periodically: pings a connection silent for `idleMs`; no answer within `timeoutMs` makes it suspect. */
  probe(nowMs: number, idleMs: number, timeoutMs: number): void {
    if (this.#state !== 'open') return;
    const ping = this.#ping;
    if (ping !== undefined) {
      if (nowMs - ping.sentMs < timeoutMs) return;
      ping.call.cancel();
      this.#ping = undefined;
      this.markSuspect(`no pong within ${timeoutMs} ms`);
      return;
    }
    if (nowMs - this.#lastHeardMs < idleMs) return;
    const call = this.call({ t: 'ping' });
    this.#ping = { sentMs: nowMs, call };
    void call.outcome.then(() => {
      if (this.#ping?.call === call) this.#ping = undefined;
    });
  }

  /** Starts connecting now if idle (calls do this too). */
  open(): void {
    if (this.#state === 'idle') this.#dial();
  }

  call(message: { t: string; [field: string]: unknown }): Call {
    let resolve!: (outcome: CallOutcome) => void;
    const outcome = new Promise<CallOutcome>((r) => (resolve = r));
    const pending: Pending = { message, resolve, done: false, id: 0 };
    const cancel = (): void => this.#cancel(pending);
    const abandon = (suspectAfterMs: number): void => this.#abandon(pending, suspectAfterMs);
    if (this.#state === 'closed') {
      this.#finish(pending, { kind: 'not-sent', error: new RingkvError(ErrorCode.closed, 'the client is closed', {}) });
    } else if (this.#state === 'down') {
      this.#finish(pending, { kind: 'not-sent', error: this.#downError() });
    } else if (this.#state === 'open' && this.#inflight.size < this.#s.inflightMax && this.#queued() === 0) {
      this.#send(pending);
    } else if (this.#queued() >= this.#s.queueMax) {
      const error = new RingkvError(ErrorCode.overloaded, `more than ${this.#s.queueMax} requests queued for ${this.url}`, { url: this.url });
      this.#finish(pending, { kind: 'not-sent', error });
    } else {
      this.#queue.push(pending);
      this.open();
    }
    return { outcome, cancel, abandon };
  }

  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#retryTimer);
    const error = new RingkvError(ErrorCode.closed, 'the client is closed', {});
    this.#failAll(error, error);
    const link = this.#link;
    this.#link = undefined;
    link?.close(1000, 'client closed');
  }

  #queued(): number {
    return this.#queue.length - this.#queueHead;
  }

  #downError(): RingkvError {
    return new RingkvError(this.#lastError?.code ?? ErrorCode.unavailable, `${this.url} is unreachable: ${this.#lastError?.message ?? 'down'}`, {
      url: this.url,
    });
  }

  #finish(pending: Pending, outcome: CallOutcome): void {
    if (pending.done) return;
    pending.done = true;
    pending.resolve(outcome);
  }

  #cancel(pending: Pending): void {
    if (pending.done) return;
    pending.done = true;
    if (pending.id !== 0 && this.#inflight.get(pending.id) === pending) {
      this.#inflight.delete(pending.id);
      this.#pump();
    }
  }

  #abandon(pending: Pending, suspectAfterMs: number): void {
    if (pending.done) return;
    if (pending.id === 0 || this.#inflight.get(pending.id) !== pending) return this.#cancel(pending);
    pending.done = true;
    const timer = setTimeout(() => {
      if (this.#inflight.get(pending.id) !== pending) return;
      this.#inflight.delete(pending.id);
      this.markSuspect(`no answer to a ${pending.message.t} within ${Math.round(suspectAfterMs)} ms`);
      this.#pump();
    }, Math.max(0, suspectAfterMs));
    timer.unref();
  }

  #nextId(): number {
    do {
      this.#lastId = (this.#lastId + 1) >>> 0;
    } while (this.#lastId === 0 || this.#inflight.has(this.#lastId));
    return this.#lastId;
  }

  #send(pending: Pending): void {
    const link = this.#link!;
    const id = this.#nextId();
    try {
      link.send({ ...pending.message, id });
    } catch (error) {
      // Nothing was queued on the link: safe to send elsewhere.
      const cause = isRingkvError(error) ? error : new RingkvError(ErrorCode.unavailable, `send to ${this.url} failed`, {}, { cause: error });
      this.#finish(pending, { kind: 'not-sent', error: cause });
      return;
    }
    pending.id = id;
    this.#inflight.set(id, pending);
  }

  #pump(): void {
    while (this.#state === 'open' && this.#queued() > 0 && this.#inflight.size < this.#s.inflightMax) {
      const next = this.#queue[this.#queueHead]!;
      this.#queue[this.#queueHead++] = undefined as unknown as Pending;
      if (!next.done) this.#send(next);
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  #dial(): void {
    this.#state = 'connecting';
    const { token, caFile, logger, connectTimeoutMs } = this.#s;
    this.#s.connect(this.url, { token, caFile, logger, timeoutMs: connectTimeoutMs }).then(
      (link) => this.#opened(link),
      (error: unknown) => this.#dialFailed(error),
    );
  }

  #opened(link: Link): void {
    if (this.#state === 'closed') {
      link.close(1000, 'client closed');
      return;
    }
    this.#state = 'open';
    this.#link = link;
    this.#suspect = false;
    this.#lastHeardMs = performance.now();
    this.#failures = 0;
    this.#lastError = undefined;
    this.nodeId = link.peerId;
    link.onMessage = (message) => this.#onMessage(message);
    link.onClose = (code, reason) => this.#onClose(link, code, reason);
    this.#s.logger.debug({ url: this.url, node: this.nodeId }, 'client connection open');
    this.#pump();
  }

  #dialFailed(error: unknown): void {
    if (this.#state === 'closed') return;
    const failure = isRingkvError(error) ? error : new RingkvError(ErrorCode.unavailable, `cannot connect to ${this.url}`, {}, { cause: error });
    this.#lastError = failure;
    this.#s.logger.debug({ url: this.url, code: failure.code }, 'client connect failed');
    this.#goDown(failure, failure);
  }

  #onClose(link: Link, code: number, reason: string): void {
    if (this.#link !== link || this.#state === 'closed') return;
    this.#link = undefined;
    const error = new RingkvError(ErrorCode.unavailable, `connection to ${this.url} closed (${code} ${reason})`, { url: this.url, closeCode: code });
    this.#lastError = error;
    this.#s.logger.debug({ url: this.url, code, reason }, 'client connection closed');
    this.#goDown(error, error);
  }

  #goDown(lostError: RingkvError, notSentError: RingkvError): void {
    this.#state = 'down';
    this.#failAll(lostError, notSentError);
    const backoffMs = Math.min(this.#s.reconnectMaxMs, this.#s.reconnectBaseMs * 2 ** Math.min(this.#failures, 30));
    this.#failures++;
    const delayMs = Math.round(backoffMs * (0.5 + this.#s.rng.next() / 2));
    this.#retryTimer = setTimeout(() => {
      if (this.#state === 'down') this.#dial();
    }, delayMs);
    this.#retryTimer.unref();
  }

  #failAll(lostError: RingkvError, notSentError: RingkvError): void {
    const inflight = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const pending of inflight) this.#finish(pending, { kind: 'lost', error: lostError });
    const queued = this.#queue.slice(this.#queueHead);
    this.#queue = [];
    this.#queueHead = 0;
    for (const pending of queued) this.#finish(pending, { kind: 'not-sent', error: notSentError });
  }

  #onMessage(message: WireMessage): void {
    this.#lastHeardMs = performance.now();
    if (this.#suspect) {
      this.#suspect = false;
      this.#s.logger.info({ url: this.url, node: this.nodeId }, 'node answering again');
    }
    const id = message.id;
    if (typeof id === 'number' && id !== 0) {
      const pending = this.#inflight.get(id);
      if (pending === undefined) return; // a late reply to a cancelled call
      this.#inflight.delete(id);
      this.#finish(pending, { kind: 'reply', message });
      this.#pump();
      return;
    }
    if (message.t === 'ring') this.#s.onRing(message.ring);
    else this.#s.logger.warn({ url: this.url, t: message.t, code: message.code, message: message.message }, 'unsolicited message from node');
  }
}
