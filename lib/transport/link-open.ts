/**
 * The dialing side's first step, shared by the peer dialer and connectClient: normalize a
 * node URL, open a WebSocket to one of its paths and wrap it in a FrameLink in its handshake
 * state. Main thread.
 *
 * URLs: `ws://host:port`, `wss://host:port` or a bare `host:port` (taken as ws://); any path
 * given is replaced by the one asked for (/peer or /client).
 */

import { ErrorCode, RingkvError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { FrameLink } from './frame-link.js';
import { openSocket } from './websocket.js';
import type { WireTuning } from './wire-tuning.js';

/** The ws:// or wss:// URL of `path` on the node at `url`; TypeError naming url when it is not one. */
export function nodeUrl(url: string, path: '/peer' | '/client'): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `ws://${url}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    throw new TypeError(`url ${JSON.stringify(url)} is not a ws:// or wss:// URL or host:port`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new TypeError(`url ${JSON.stringify(url)} must use ws:// or wss://`);
  if (parsed.port === '' && parsed.hostname === '') throw new TypeError(`url ${JSON.stringify(url)} has no host`);
  return `${parsed.protocol}//${parsed.host}${path}`;
}

export interface OpenLinkOptions {
  url: string;
  kind: 'peer' | 'client';
  tuning: WireTuning;
  logger: Logger;
  ca: Buffer | undefined;
  /** Called with the new link before any of its messages can arrive: set its handshake handlers here. */
  prepare: (link: FrameLink) => void;
}

/**
 * Resolves with a handshaking FrameLink once the socket is open; rejects KV_UNAVAILABLE when it
 * cannot be. Handlers must be set in `prepare`: a server may speak first (the peer challenge),
 * and its frame may be delivered before a promise continuation would run.
 */
export function openLink(options: OpenLinkOptions): Promise<FrameLink> {
  const { url, kind, tuning, logger, ca, prepare } = options;
  return new Promise((resolve, reject) => {
    const socket = openSocket(url, { ...tuning, connectTimeoutMs: tuning.handshakeTimeoutMs, ca });
    let failure: Error | undefined;
    const onError = (error: Error): void => {
      failure = error;
    };
    const onClose = (): void => {
      const message = failure?.message ?? 'closed before opening';
      reject(new RingkvError(ErrorCode.unavailable, `cannot connect to ${url}: ${message}`, { url }, { cause: failure }));
    };
    socket.on('error', onError);
    socket.once('close', onClose);
    socket.once('open', () => {
      socket.off('error', onError);
      socket.off('close', onClose);
      const link = new FrameLink(socket, { remoteAddress: new URL(url).host, kind, serverSide: false, tuning, logger });
      prepare(link);
      resolve(link);
    });
  });
}
