/**
 * PeerDialer: keeps one authenticated link to one peer node, reconnecting until closed. Main
 * thread; owned by the supervisor (one dialer per known peer).
 *
 * Each attempt opens /peer, answers the server's challenge (peer-handshake.ts) and accepts the
 * link only once the server has proved the secret too (mutual) and, when `expectedPeerId` is
 * given, named that id. A failed attempt (connect error, refusal, wrong id, handshake timeout)
 * reports through `onError` and retries after `reconnectDelayMs`: "equal jitter" exponential
 * backoff, uniform in [c/2, c) with c = min(maxMs, baseMs·2^failures), so a cluster restart does
 * not make every node redial in step and a dead peer costs at most one attempt per maxMs. A link
 * that came up resets the backoff; when it goes down the dialer redials after baseMs-ish.
 */

import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { ErrorCode, RingkvError, isErrorCode } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { SeededRng, type Rng } from '../base/rng.js';
import type { WireMessage } from '../protocol/codec.js';
import type { FrameLink, Link } from './frame-link.js';
import { nodeUrl, openLink } from './link-open.js';
import { authMessage, checkAuthOk, checkChallenge, newNonce, peerClientMac } from './peer-handshake.js';
import { CloseCode, wireTuning, type WireTuning } from './wire-tuning.js';

export interface DialPeerOptions {
  url: string;
  nodeId: string;
  secret: Uint8Array | undefined;
  expectedPeerId?: string | undefined;
  logger: Logger;
  caFile?: string | undefined;
  /** Jitter source; default seeded from node:crypto. */
  rng?: Rng | undefined;
  tuning?: Partial<WireTuning> | undefined;
}

/** Keeps one authenticated link to a peer, reconnecting with jittered, bounded exponential backoff until closed. */
export interface PeerDialer {
  readonly link: Link | undefined;
  /** Connection attempts started so far. */
  readonly attempts: number;
  onUp: (link: Link) => void;
  /** Fires whenever an up link goes down (close() included). */
  onDown: () => void;
  /** Fires for every failed attempt: KV_UNAVAILABLE (cannot connect, timeout) or KV_AUTH (refused, wrong secret or id). */
  onError: (error: RingkvError) => void;
  close(): void;
}

/** The delay before the next attempt after `failures` consecutive failures (0 = the first retry). */
export function reconnectDelayMs(failures: number, baseMs: number, maxMs: number, rng: Rng): number {
  const ceilingMs = Math.min(maxMs, baseMs * 2 ** Math.min(failures, 30));
  return ceilingMs / 2 + rng.next() * (ceilingMs / 2);
}

const noop = (): void => {};

class Dialer implements PeerDialer {
  onUp: (link: Link) => void = noop;
  onDown: () => void = noop;
  onError: (error: RingkvError) => void = noop;
  #link: FrameLink | undefined;
  #pending: FrameLink | undefined;
  #attempts = 0;
  #failures = 0;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #url: string;
  readonly #options: DialPeerOptions;
  readonly #tuning: WireTuning;
  readonly #rng: Rng;
  readonly #ca: Buffer | undefined;

  constructor(options: DialPeerOptions) {
    this.#options = options;
    this.#url = nodeUrl(options.url, '/peer');
    this.#tuning = wireTuning(options.tuning);
    this.#rng = options.rng ?? new SeededRng(randomInt(0x7fffffff));
    this.#ca = options.caFile === undefined ? undefined : readFileSync(options.caFile);
    setImmediate(() => void this.#attempt());
  }

  get link(): Link | undefined {
    return this.#link;
  }

  get attempts(): number {
    return this.#attempts;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#pending?.close(CloseCode.goingAway, 'going away');
    this.#link?.close(CloseCode.goingAway, 'going away');
  }

  async #attempt(): Promise<void> {
    if (this.#closed) return;
    this.#attempts++;
    const prepare = (link: FrameLink): void => this.#prepare(link);
    try {
      await openLink({ url: this.#url, kind: 'peer', tuning: this.#tuning, logger: this.#options.logger, ca: this.#ca, prepare });
    } catch (error) {
      this.#failed(error as RingkvError);
    }
  }

  #prepare(link: FrameLink): void {
    this.#pending = link;
    let refusal: RingkvError | undefined;
    const refuse = (error: RingkvError): void => {
      refusal = error;
      link.close(CloseCode.auth, 'authentication failed');
    };
    link.whenClosed((code, reason) => {
      if (this.#pending === link) this.#pending = undefined;
      if (this.#link === link) return this.#down();
      this.#failed(refusal ?? closedDuringHandshake(code, reason));
    });
    link.onMessage = this.#handshake(link, refuse);
    if (this.#closed) link.close(CloseCode.goingAway, 'going away');
  }

  /** The client side of the handshake, one message at a time. */
  #handshake(link: FrameLink, refuse: (error: RingkvError) => void): (message: WireMessage) => void {
    const { nodeId, secret, expectedPeerId } = this.#options;
    const clientNonce = newNonce();
    let server: { serverId: string; serverNonce: Uint8Array } | undefined;
    return (message) => {
      if (message.t === 'error') return refuse(refusalFrom(message));
      if (server === undefined) {
        const challenge = checkChallenge(message);
        if (!challenge.ok) return refuse(new RingkvError(ErrorCode.auth, challenge.reason, { url: this.#url }));
        if (expectedPeerId !== undefined && challenge.value.serverId !== expectedPeerId) {
          const why = `expected node ${expectedPeerId}, found ${challenge.value.serverId}`;
          return refuse(new RingkvError(ErrorCode.auth, why, { url: this.#url }));
        }
        server = challenge.value;
        link.send(authMessage(nodeId, clientNonce, peerClientMac(secret, server.serverNonce, clientNonce, nodeId, server.serverId)));
        return;
      }
      const ok = checkAuthOk(message, secret, { clientId: nodeId, serverId: server.serverId }, { clientNonce, serverNonce: server.serverNonce });
      if (!ok.ok) return refuse(new RingkvError(ErrorCode.auth, ok.reason, { url: this.#url }));
      this.#up(link, server.serverId);
    };
  }

  #up(link: FrameLink, serverId: string): void {
    this.#pending = undefined;
    this.#failures = 0;
    link.establish(serverId);
    this.#link = link;
    this.#options.logger.debug({ peer: serverId, url: this.#url }, 'peer link up');
    this.onUp(link);
  }

  #down(): void {
    this.#link = undefined;
    this.#options.logger.debug({ url: this.#url }, 'peer link down');
    this.onDown();
    this.#schedule();
  }

  #failed(error: RingkvError): void {
    if (this.#closed) return;
    this.#failures++;
    const level = error.code === ErrorCode.auth ? 'warn' : 'debug';
    this.#options.logger[level]({ url: this.#url, code: error.code, reason: error.message }, 'peer connection attempt failed');
    this.onError(error);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    const delayMs = reconnectDelayMs(Math.max(0, this.#failures - 1), this.#tuning.reconnectBaseMs, this.#tuning.reconnectMaxMs, this.#rng);
    this.#timer = setTimeout(() => void this.#attempt(), delayMs);
  }
}

function refusalFrom(message: WireMessage): RingkvError {
  const code = isErrorCode(message.code) ? message.code : ErrorCode.auth;
  const text = typeof message.message === 'string' ? message.message : 'refused by the peer';
  return new RingkvError(code, `peer refused: ${text.slice(0, 200)}`);
}

function closedDuringHandshake(code: number, reason: string): RingkvError {
  if (code === CloseCode.auth) return new RingkvError(ErrorCode.auth, `peer refused authentication: ${reason}`);
  return new RingkvError(ErrorCode.unavailable, `peer link closed during the handshake (${code} ${reason})`, { code });
}

/** Starts dialing at once (on the next turn, so handlers can be set first). */
export function dialPeer(options: DialPeerOptions): PeerDialer {
  return new Dialer(options);
}
