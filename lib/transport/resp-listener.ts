/**
 * The RESP listener: a node's Redis-protocol front door (DESIGN.md §6), one TCP port beside
 * the HTTP/WebSocket one. Owns the sockets, the per-connection parser (lib/protocol
 * resp-parser.ts), reply ordering and every per-connection bound; what a command does is the
 * handler's (lib/resp). Main thread.
 *
 * Pipelining: commands are dispatched as they are parsed, many in flight at once; a handler
 * answers synchronously or with a promise. Replies leave strictly in command order: each
 * command takes a slot, a finished slot is encoded once every earlier one is, and everything
 * encoded in one turn of the event loop goes out in one socket write (setImmediate), so a
 * pipeline of 16 costs one write, not 16.
 *
 * Bounds (limits.ts `resp*`), so that no client can make the node hold unbounded memory:
 * - input: a command still being received may hold at most respInputBytesMax bytes (a huge
 *   bulk length or an endless array) and arguments are bounded in size and count: past them,
 *   "-ERR Protocol error: ..." and the connection closes, as Redis does;
 * - in flight: past respInflightMax commands running, or respOutputBytesHigh reply bytes the
 *   client has not read, the socket is paused (TCP backpressure on the client) until both are
 *   back under; a client that keeps sending without reading is therefore simply stopped;
 * - in flight, all connections: past respInflightTotalMax commands running on the node, every
 *   connection that reads more is paused until the total is back under (its input waits in
 *   the kernel), one waiting connection resuming per finished command; so the memory held
 *   for requests is bounded whatever the number of pipelining clients;
 * - connections: past respConnectionsMax, "-ERR max number of clients reached" and close.
 * A failure of one connection never touches another.
 */

import { Buffer } from 'node:buffer';
import { createServer, type Server, type Socket } from 'node:net';
import { limits } from '../base/limits.js';
import { systemClock, type Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import { plainGetAt, plainGetKey, RespParser } from '../protocol/resp-parser.js';
import { respError, RespWriter, type RespReply } from '../protocol/resp-reply.js';

/** The command name of the GETs the listener reads without the parser (#getsNow). */
const getName = Buffer.from('GET');

/** The per-connection state a command sees and may change. */
export interface RespSession {
  readonly id: number;
  readonly remoteAddress: string;
  readonly createdMs: number;
  /** 2 or 3; HELLO changes it. */
  protocol: 2 | 3;
  authenticated: boolean;
  name: string | undefined;
  /** RINGKV.CONSISTENCY: the level of this connection's reads and writes (undefined: the node's R/W). */
  consistency: string | undefined;
  /** The last command's name, lower case (CLIENT INFO). */
  lastCommand: string;
  /** Replies to everything before, then closes (QUIT). */
  closeAfterReply(): void;
  /** The handler's own per-connection state (set once, reused by every command). */
  handlerState: unknown;
}

export interface RespHandler {
  execute(session: RespSession, args: Buffer[]): RespReply | Promise<RespReply>;
  /**
   * GET of the key `chunk[start, end)` answered at once into `writer` if the handler can (a
   * cached value): true; else false, nothing written, and the command goes the usual way.
   */
  getInto?(session: RespSession, chunk: Uint8Array, start: number, end: number, writer: RespWriter): boolean;
}

export interface RespListenerOptions {
  host: string;
  port: number;
  handler: RespHandler;
  logger: Logger;
  /** Test hooks and tuning; defaults from limits.ts. */
  inputBytesMax?: number;
  inflightMax?: number;
  inflightTotalMax?: number;
  outputBytesHigh?: number;
  connectionsMax?: number;
  /** Wall clock for connection ages (CLIENT INFO); default the system's. */
  clock?: Clock;
  /**
   * Called before each socket read is handled: the node delivers shard replies that arrived
   * meanwhile (ReplicaStore.poll), so a pipeline waiting on a shard read is answered within
   * the turn of the event loop in which the other sockets are read, not after it.
   */
  beforeInput?: (() => void) | undefined;
}

export interface RespListenerStats {
  connections: number;
  connectionsTotal: number;
  commands: number;
  rejectedConnections: number;
  protocolErrors: number;
}

const pending = Symbol('pending');
type Slot = RespReply | typeof pending;

class RespConnection implements RespSession {
  readonly id: number;
  readonly remoteAddress: string;
  readonly createdMs: number;
  protocol: 2 | 3 = 2;
  authenticated = false;
  name: string | undefined;
  consistency: string | undefined;
  lastCommand = '';
  handlerState: unknown = undefined;
  readonly #socket: Socket;
  readonly #listener: RespListener;
  readonly #parser: RespParser;
  readonly #writer = new RespWriter();
  /** Replies not yet encoded, in command order; slot k has absolute number #base + k. */
  #slots: Slot[] = [];
  #head = 0;
  #base = 0;
  #inflight = 0;
  #flushScheduled = false;
  #closing = false;
  #aborted = false;
  #paused = false;

  constructor(socket: Socket, id: number, listener: RespListener, authenticated: boolean) {
    this.createdMs = listener.clock.wallMs();
    this.#socket = socket;
    this.id = id;
    this.#listener = listener;
    this.authenticated = authenticated;
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.#parser = new RespParser({
      onCommand: (args) => this.#onCommand(args),
      onProtocolError: (message) => this.#abort(message),
      argsMax: limits.respArgsMax,
      bulkBytesMax: limits.respBulkBytesMax,
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#maybeResume());
    socket.on('error', () => socket.destroy());
  }

  closeAfterReply(): void {
    this.#closing = true;
  }

  destroy(): void {
    this.#closing = true;
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#listener.beforeInput?.();
    if (this.#closing) return;
    const from = this.authenticated && this.#parser.idle ? this.#getsNow(chunk) : 0;
    if (from === chunk.length) return this.#maybePause();
    this.#parser.execute(from === 0 ? chunk : chunk.subarray(from));
    if (!this.#parser.failed && this.#parser.heldBytes > this.#listener.inputBytesMax) {
      this.#abort('Protocol error: too big request');
      return;
    }
    this.#maybePause();
  }

  /**
   * Runs the plain GETs at the start of `chunk` (a pipeline of GETs) without the parser: each
   * one the handler answers at once goes straight into the reply buffer (a cached key: no
   * arguments, no reply object, no promise); any other is run as the command it is, in order.
   * Returns where the rest of the chunk, for the parser, starts.
   */
  #getsNow(chunk: Buffer): number {
    const handler = this.#listener.handler;
    if (handler.getInto === undefined) return 0;
    const writer = this.#writer;
    writer.protocol = this.protocol;
    const keyBytesMax = limits.respBulkBytesMax;
    let at = 0;
    let answered = 0;
    while (at < chunk.length) {
      const end = plainGetAt(chunk, at, keyBytesMax);
      if (end < 0) break;
      const start = plainGetKey.start;
      const keyEnd = plainGetKey.end;
      if (this.#head === this.#slots.length && this.#getInto(handler, chunk, start, keyEnd)) answered++;
      else this.#onCommand([getName, chunk.subarray(start, keyEnd)]);
      at = end;
    }
    if (answered > 0) {
      this.#listener.stats.commands += answered;
      this.lastCommand = 'get';
      this.#scheduleFlush();
    }
    return at;
  }

  /** handler.getInto, a throw taken as "not answered" (the command then reports it). */
  #getInto(handler: RespHandler, chunk: Buffer, start: number, end: number): boolean {
    const before = this.#writer.length;
    try {
      return handler.getInto!(this, chunk, start, end, this.#writer);
    } catch (error) {
      this.#listener.logger.error({ err: error }, 'RESP plain GET failed with a bug');
      this.#writer.truncate(before);
      return false;
    }
  }

  #onCommand(args: Buffer[]): void {
    if (this.#closing || args.length === 0) return;
    this.#listener.stats.commands++;
    let reply: RespReply | Promise<RespReply>;
    try {
      reply = this.#listener.handler.execute(this, args);
    } catch (error) {
      this.#listener.logger.error({ err: error }, 'RESP command failed with a bug');
      reply = respError('ERR internal error');
    }
    if (reply instanceof Promise) {
      const slot = this.#base + this.#slots.length;
      this.#slots.push(pending);
      this.#inflight++;
      this.#listener.inflightTotal++;
      reply.then(
        (value) => this.#complete(slot, value),
        (error: unknown) => {
          this.#listener.logger.error({ err: error }, 'RESP command failed with a bug');
          this.#complete(slot, respError('ERR internal error'));
        },
      );
      return;
    }
    if (this.#head === this.#slots.length) this.#encode(reply);
    else this.#slots.push(reply);
    this.#scheduleFlush();
  }

  #encode(reply: RespReply): void {
    this.#writer.protocol = this.protocol;
    this.#writer.write(reply);
  }

  #complete(slot: number, value: RespReply): void {
    this.#inflight--;
    this.#listener.onCommandDone();
    if (this.#aborted) return;
    this.#slots[slot - this.#base] = value;
    this.#drainSlots();
    this.#scheduleFlush();
    this.#maybeResume();
  }

  #drainSlots(): void {
    const slots = this.#slots;
    while (this.#head < slots.length && slots[this.#head] !== pending) {
      this.#encode(slots[this.#head] as RespReply);
      slots[this.#head++] = null;
    }
    if (this.#head === slots.length) {
      this.#base += slots.length;
      this.#slots = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > slots.length) {
      slots.splice(0, this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#writer.length > 0 && !this.#socket.destroyed) this.#socket.write(this.#writer.take());
    if (this.#closing && this.#head === this.#slots.length) this.#socket.end();
  }

  /** A protocol violation: -ERR, then close, as Redis does. */
  #abort(message: string): void {
    if (this.#closing) return;
    this.#listener.stats.protocolErrors++;
    this.#encode(respError(`ERR ${message}`));
    this.#closing = true;
    this.#aborted = true;
    this.#slots = [];
    this.#head = 0;
    this.#scheduleFlush();
  }

  #maybePause(): void {
    if (this.#paused) return;
    const overTotal = this.#listener.inflightTotal >= this.#listener.inflightTotalMax;
    if (overTotal || this.#inflight >= this.#listener.inflightMax || this.#socket.writableLength + this.#writer.length > this.#listener.outputBytesHigh) {
      this.#paused = true;
      this.#socket.pause();
      if (overTotal) this.#listener.waitForRoom(this);
    }
  }

  /** Resumes reading when every bound allows it again (the listener calls it too, when the total drops). */
  maybeResume(): void {
    this.#maybeResume();
  }

  #maybeResume(): void {
    if (!this.#paused || this.#closing) return;
    if (this.#listener.inflightTotal >= this.#listener.inflightTotalMax) {
      this.#listener.waitForRoom(this);
      return;
    }
    if (this.#inflight < this.#listener.inflightMax && this.#socket.writableLength + this.#writer.length <= this.#listener.outputBytesHigh) {
      this.#paused = false;
      this.#socket.resume();
    }
  }
}

export class RespListener {
  readonly clock: Clock;
  readonly handler: RespHandler;
  readonly logger: Logger;
  readonly inputBytesMax: number;
  readonly inflightMax: number;
  readonly inflightTotalMax: number;
  readonly outputBytesHigh: number;
  readonly beforeInput: (() => void) | undefined;
  /** Commands running on every connection. */
  inflightTotal = 0;
  /** Connections paused because the total was at its bound, resumed in order as it drops. */
  readonly #waiting = new Set<RespConnection>();
  readonly stats: RespListenerStats = { connections: 0, connectionsTotal: 0, commands: 0, rejectedConnections: 0, protocolErrors: 0 };
  readonly #server: Server;
  readonly #connections = new Set<RespConnection>();
  readonly #connectionsMax: number;
  readonly #authenticatedByDefault: boolean;
  #nextId = 1;
  #port = 0;

  private constructor(options: RespListenerOptions, authenticatedByDefault: boolean) {
    this.handler = options.handler;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger;
    this.inputBytesMax = options.inputBytesMax ?? limits.respInputBytesMax;
    this.inflightMax = options.inflightMax ?? limits.respInflightMax;
    this.inflightTotalMax = options.inflightTotalMax ?? limits.respInflightTotalMax;
    this.outputBytesHigh = options.outputBytesHigh ?? limits.respOutputBytesHigh;
    this.beforeInput = options.beforeInput;
    this.#connectionsMax = options.connectionsMax ?? limits.respConnectionsMax;
    this.#authenticatedByDefault = authenticatedByDefault;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  /** Listens; `authenticatedByDefault` false when the node requires a client token (AUTH first). */
  static async start(options: RespListenerOptions, authenticatedByDefault: boolean): Promise<RespListener> {
    const listener = new RespListener(options, authenticatedByDefault);
    await new Promise<void>((resolve, reject) => {
      listener.#server.once('error', reject);
      listener.#server.listen(options.port, options.host, () => {
        listener.#server.off('error', reject);
        resolve();
      });
    });
    listener.#server.on('error', (error) => listener.logger.error({ err: error }, 'RESP listener error'));
    const address = listener.#server.address();
    listener.#port = typeof address === 'object' && address !== null ? address.port : options.port;
    return listener;
  }

  /** A connection paused at the total bound: resumed once the total is back under. */
  waitForRoom(connection: RespConnection): void {
    this.#waiting.add(connection);
  }

  /**
   * A command of some connection finished: while there is room, wake the longest-waiting
   * connection — one per finished command, since a woken connection dispatches a whole chunk
   * (a pipeline of 16 is one read) before it can be paused again; waking them all at once let
   * 50 pipelining clients put 800 commands in flight past a bound of 256.
   */
  onCommandDone(): void {
    this.inflightTotal--;
    if (this.#waiting.size === 0 || this.inflightTotal >= this.inflightTotalMax) return;
    for (const connection of this.#waiting) {
      this.#waiting.delete(connection);
      connection.maybeResume();
      return;
    }
  }

  get port(): number {
    return this.#port;
  }

  /** The open connections' sessions (CLIENT LIST, INFO clients). */
  sessions(): RespSession[] {
    return [...this.#connections];
  }

  #accept(socket: Socket): void {
    this.stats.connectionsTotal++;
    if (this.#connections.size >= this.#connectionsMax) {
      this.stats.rejectedConnections++;
      socket.on('error', () => socket.destroy());
      socket.end(Buffer.from('-ERR max number of clients reached\r\n'));
      return;
    }
    const connection = new RespConnection(socket, this.#nextId++, this, this.#authenticatedByDefault);
    this.#connections.add(connection);
    this.stats.connections = this.#connections.size;
    socket.on('close', () => {
      this.#connections.delete(connection);
      this.#waiting.delete(connection);
      this.stats.connections = this.#connections.size;
    });
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const connection of this.#connections) connection.destroy();
    await closed;
  }
}
