/**
 * FrameLink: one WebSocket connection (either side) as a Link of tagged messages. Main thread;
 * owned by the transport server or by the dialer / connectClient that opened it.
 *
 * Sending batches: every message is msgpack-encoded when queued (so its size is exact and an
 * oversized message fails at the call site), and all messages queued in one event-loop turn go
 * out as one frame on `setImmediate`, split only at `messagesPerFrameMax` or `frameBytesMax`
 * (codec.ts). Cost: one setImmediate per busy turn and one copy of each message into its frame.
 *
 * Invariants: queued bytes + the socket's bufferedAmount stay within `sendBufferBytesMax`
 * (send() throws KV_OVERLOADED instead of growing); every socket has an 'error' listener from
 * birth; onClose fires exactly once; after close() nothing is delivered. A frame-level error
 * (text frame, undecodable, not an array of 1..max messages) is answered with an error
 * (id 0, KV_BAD_REQUEST) and a 1007 close; a bad item in a decodable frame closes a peer link
 * but only earns a client an error reply for that item's id.
 *
 * States: handshake (messages go to the handshake handler, the handshake timer runs) → open
 * (handed to the user) → closing → closed. Liveness: a ping every `pingIntervalMs`; no pong
 * within `pingTimeoutMs` terminates the socket. Server-side links also close (4408) when no
 * message arrived during a whole `idleTimeoutMs` check period, and client links cap their
 * requests in flight (inflight-window.ts): the server, not the supervisor, answers the excess.
 * Messages that arrive after the handshake but before the user sets onMessage (the rest of the
 * welcome's frame, while connectClient's promise resolves) are held, at most one frame's worth,
 * and delivered in order once a handler is set.
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { messageId } from '../protocol/client-messages.js';
import { decodeFrame, encodeFrame, encodeMessage, frameHeaderBytesMax, isWireMessage, type WireMessage } from '../protocol/codec.js';
import { isSocketOpen, type Socket } from './websocket.js';
import { InflightWindow } from './inflight-window.js';
import { CloseCode, type WireTuning } from './wire-tuning.js';

/** One open WebSocket connection (either side), after its handshake. */
export interface Link {
  readonly remoteAddress: string;
  /** Authenticated node id on /peer links; the node id from the welcome message on client links; undefined on a node's client links. */
  readonly peerId: string | undefined;
  readonly isOpen: boolean;
  /** Round trip of the last WebSocket ping, in ms (undefined before the first pong); for metrics. */
  readonly rttMs?: number | undefined;
  /** Queues a message; all queued in one turn go out as one frame. Throws RingkvError KV_OVERLOADED (buffer full), KV_TOO_LARGE (one message over the frame bound), KV_CLOSED. */
  send(message: WireMessage): void;
  /** Each decoded message of each frame, NOT validated beyond "object with string t". */
  onMessage: (message: WireMessage) => void;
  onClose: (code: number, reason: string) => void;
  close(code?: number, reason?: string): void;
}

export interface FrameLinkOptions {
  remoteAddress: string;
  kind: 'peer' | 'client';
  /** Server side: idle checks and, for clients, the in-flight cap apply. */
  serverSide: boolean;
  tuning: WireTuning;
  logger: Logger;
}

type State = 'handshake' | 'open' | 'closing' | 'closed';
const noop = (): void => {};
/** The first ping goes out this soon after the link opens (then every pingIntervalMs). */
const firstPingMs = 1_000;

/** A close reason is at most 123 bytes (RFC 6455 §5.5). */
const reasonCharsMax = 100;

export class FrameLink implements Link {
  readonly remoteAddress: string;
  onClose: (code: number, reason: string) => void = noop;
  #peerId: string | undefined;
  #state: State = 'handshake';
  #framesSent = 0;
  #framesReceived = 0;
  readonly #socket: Socket;
  readonly #options: FrameLinkOptions;
  readonly #closeListeners: Array<(code: number, reason: string) => void> = [];
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #flushScheduled = false;
  #inflight: InflightWindow | undefined;
  #handler: (message: WireMessage) => void = noop;
  /** Messages that arrived after the handshake but before the user set onMessage (at most one frame's worth). */
  #early: WireMessage[] = [];
  #receivedSinceIdleCheck = false;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout;
  #pongTimer: NodeJS.Timeout | undefined;
  #pingSentMs = 0;
  #rttMs: number | undefined;

  /** `socket` must be open. */
  constructor(socket: Socket, options: FrameLinkOptions) {
    this.#socket = socket;
    this.#options = options;
    this.remoteAddress = options.remoteAddress;
    socket.on('error', (error) => options.logger.debug({ err: error, remote: this.remoteAddress }, 'socket error'));
    socket.on('message', (data, isBinary) => this.#receive(data as Buffer, isBinary));
    socket.on('pong', () => this.#onPong());
    socket.on('close', (code, reason) => this.#onSocketClose(code, reason.toString()));
    const { handshakeTimeoutMs, pingIntervalMs } = options.tuning;
    this.#handshakeTimer = setTimeout(() => this.close(CloseCode.timeout, 'handshake timeout'), handshakeTimeoutMs);
    this.#pingTimer = setInterval(() => this.#ping(), pingIntervalMs);
    this.#pingTimer.unref();
    // One early ping, so the link's round trip (rttMs) is known soon after it opens.
    setTimeout(() => this.#ping(), Math.min(firstPingMs, pingIntervalMs)).unref();
  }

  get onMessage(): (message: WireMessage) => void {
    return this.#handler;
  }

  /** Messages that arrived between the handshake and this assignment are delivered on the next microtask. */
  set onMessage(handler: (message: WireMessage) => void) {
    this.#handler = handler;
    if (this.#early.length > 0) queueMicrotask(() => this.#deliverEarly());
  }

  #deliverEarly(): void {
    while (this.#early.length > 0 && this.#state === 'open' && this.#handler !== noop) this.#handler(this.#early.shift()!);
  }

  get peerId(): string | undefined {
    return this.#peerId;
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /** Frames handed to the socket so far (a frame holds every message of one turn). */
  get framesSent(): number {
    return this.#framesSent;
  }

  get rttMs(): number | undefined {
    return this.#rttMs;
  }

  get framesReceived(): number {
    return this.#framesReceived;
  }

  /** Ends the handshake: from now on the link is the user's. */
  establish(peerId: string | undefined): void {
    if (this.#state !== 'handshake') return;
    this.#state = 'open';
    this.#peerId = peerId;
    clearTimeout(this.#handshakeTimer);
    this.onMessage = noop;
    const { idleTimeoutMs } = this.#options.tuning;
    if (!this.#options.serverSide) return;
    if (this.#options.kind === 'client') this.#inflight = new InflightWindow(this.#options.tuning.inflightMax);
    if (idleTimeoutMs > 0) this.#idleTimer = setInterval(() => this.#checkIdle(), idleTimeoutMs);
  }

  /** Transport-internal close hook that the user's onClose cannot overwrite. */
  whenClosed(listener: (code: number, reason: string) => void): void {
    this.#closeListeners.push(listener);
  }

  send(message: WireMessage): void {
    if (this.#state === 'closing' || this.#state === 'closed') {
      throw new RingkvError(ErrorCode.closed, 'the link is closed', { remote: this.remoteAddress });
    }
    this.#inflight?.release(message);
    const encoded = encodeMessage(message);
    const { frameBytesMax, sendBufferBytesMax } = this.#options.tuning;
    if (encoded.length + frameHeaderBytesMax > frameBytesMax) {
      throw new RingkvError(ErrorCode.tooLarge, `a message of ${encoded.length} bytes is over the frame bound ${frameBytesMax}`, {
        sizeBytes: encoded.length,
      });
    }
    const bufferedBytes = this.#queuedBytes + this.#socket.bufferedAmount;
    if (bufferedBytes + encoded.length > sendBufferBytesMax) {
      throw new RingkvError(ErrorCode.overloaded, `send buffer full (${bufferedBytes} bytes buffered)`, {
        remote: this.remoteAddress,
        bufferedBytes,
      });
    }
    this.#queue.push(encoded);
    this.#queuedBytes += encoded.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  close(code: number = CloseCode.normal, reason = ''): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#flush();
    this.#state = 'closing';
    this.#stopTimers();
    this.#socket.close(code, reason.slice(0, reasonCharsMax));
  }

  /** Drops the connection without a close handshake. */
  terminate(): void {
    if (this.#state !== 'closed') this.#state = 'closing';
    this.#stopTimers();
    this.#socket.terminate();
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#queue.length === 0) return;
    const queue = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    if (!isSocketOpen(this.#socket)) return;
    const { frameBytesMax, messagesPerFrameMax } = this.#options.tuning;
    let start = 0;
    while (start < queue.length) {
      let end = start;
      let frameBytes = frameHeaderBytesMax;
      while (end < queue.length && end - start < messagesPerFrameMax && frameBytes + queue[end]!.length <= frameBytesMax) {
        frameBytes += queue[end]!.length;
        end++;
      }
      this.#socket.send(encodeFrame(queue.slice(start, end)), { binary: true });
      this.#framesSent++;
      start = end;
    }
  }

  #receive(data: Buffer, isBinary: boolean): void {
    if (this.#state !== 'handshake' && this.#state !== 'open') return;
    this.#framesReceived++;
    this.#receivedSinceIdleCheck = true;
    if (!isBinary) return this.#refuseFrame('text frames are not accepted');
    let items: unknown[];
    try {
      items = decodeFrame(data, this.#options.tuning.messagesPerFrameMax);
    } catch (error) {
      return this.#refuseFrame((error as RingkvError).message);
    }
    for (const item of items) {
      if (this.#state !== 'handshake' && this.#state !== 'open') return;
      if (!isWireMessage(item)) {
        if (this.#options.kind === 'peer' || this.#state === 'handshake') return this.#refuseFrame('a message must be a map with a string t');
        this.#reply(messageId(item), ErrorCode.badRequest, 'a message must be a map with a string t');
        continue;
      }
      this.#deliver(item);
    }
  }

  /** Applies the in-flight cap of a node's client links, then delivers. */
  #deliver(message: WireMessage): void {
    if (this.#inflight !== undefined && this.#state === 'open') {
      const admission = this.#inflight.admit(message);
      if (!admission.ok) return this.#reply(admission.id, admission.code, admission.message);
    }
    const handler = this.#handler;
    if (handler !== noop && this.#early.length === 0) return handler(message);
    if (this.#state !== 'open') return;
    if (handler !== noop || this.#early.length < this.#options.tuning.messagesPerFrameMax) this.#early.push(message);
    else this.#options.logger.debug({ remote: this.remoteAddress, t: message.t }, 'no onMessage handler; message dropped');
  }

  /** An error reply from the transport itself; a link that cannot even buffer it is closed. */
  #reply(id: number, code: ErrorCode, message: string): void {
    try {
      this.send({ t: 'error', id, code, message });
    } catch (error) {
      this.#options.logger.warn({ err: error, remote: this.remoteAddress }, 'cannot buffer an error reply; closing the link');
      this.close(CloseCode.overloaded, 'overloaded');
    }
  }

  #refuseFrame(message: string): void {
    this.#options.logger.debug({ remote: this.remoteAddress, reason: message }, 'bad frame');
    this.#reply(0, ErrorCode.badRequest, message);
    this.close(CloseCode.badFrame, message);
  }

  #ping(): void {
    if (this.#pongTimer !== undefined || !isSocketOpen(this.#socket)) return;
    this.#pongTimer = setTimeout(() => {
      this.#options.logger.info({ remote: this.remoteAddress }, 'no pong in time; terminating the link');
      this.terminate();
    }, this.#options.tuning.pingTimeoutMs);
    this.#pingSentMs = performance.now();
    this.#socket.ping();
  }

  #onPong(): void {
    if (this.#pongTimer !== undefined) this.#rttMs = performance.now() - this.#pingSentMs;
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
  }

  #checkIdle(): void {
    if (!this.#receivedSinceIdleCheck) {
      this.#options.logger.debug({ remote: this.remoteAddress }, 'idle link closed');
      this.close(CloseCode.timeout, 'idle');
    }
    this.#receivedSinceIdleCheck = false;
  }

  #stopTimers(): void {
    clearTimeout(this.#handshakeTimer);
    clearInterval(this.#pingTimer);
    clearInterval(this.#idleTimer);
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
  }

  #onSocketClose(code: number, reason: string): void {
    this.#state = 'closed';
    this.#stopTimers();
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const listener of this.#closeListeners) listener(code, reason);
    this.onClose(code, reason);
  }
}
