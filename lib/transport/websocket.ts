/**
 * The one door to the `ws` package (test/layering.test.ts). Main thread. Every socket made
 * here gets ringkv's fixed options: no per-message deflate (CPU and zip-bomb risk for
 * already-compact msgpack), a `maxPayload` (ws closes with 1009 beyond it) and a
 * `maxFragments` cap (GHSA-96hv-2xvq-fx4p). Callers must attach an 'error' listener to every
 * socket at once: without one, a single bad frame kills the process (RELIABILITY.md §1.8).
 */

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type ClientOptions, type ServerOptions } from 'ws';

export type Socket = WebSocket;

export interface SocketLimits {
  frameBytesMax: number;
  fragmentsMax: number;
}

/** Whether a socket can send now. */
export function isSocketOpen(socket: Socket): boolean {
  return socket.readyState === WebSocket.OPEN;
}

/** Upgrades HTTP requests to sockets for a server that owns its HTTP listener (noServer mode). */
export class Upgrader {
  readonly #server: WebSocketServer;

  constructor(socketLimits: SocketLimits, onError: (error: Error) => void) {
    this.#server = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: socketLimits.frameBytesMax,
      maxFragments: socketLimits.fragmentsMax,
      clientTracking: false,
    } as ServerOptions);
    this.#server.on('error', onError);
  }

  /** Completes the upgrade; ws answers 400 and destroys the socket itself when the request is not a valid upgrade. */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer, onSocket: (socket: Socket) => void): void {
    this.#server.handleUpgrade(request, socket, head, onSocket);
  }
}

export interface OpenSocketOptions extends SocketLimits {
  /** Limit on the TCP/TLS connect and the HTTP upgrade. */
  connectTimeoutMs: number;
  /** Trusted CA certificates (PEM) for wss; default: the system's. */
  ca?: Buffer | undefined;
}

/** Starts a client socket to a ws:// or wss:// URL; it opens (or fails) asynchronously. */
export function openSocket(url: string, options: OpenSocketOptions): Socket {
  return new WebSocket(url, {
    perMessageDeflate: false,
    maxPayload: options.frameBytesMax,
    maxFragments: options.fragmentsMax,
    handshakeTimeout: options.connectTimeoutMs,
    followRedirects: false,
    ...(options.ca === undefined ? {} : { ca: options.ca }),
  } as ClientOptions);
}
