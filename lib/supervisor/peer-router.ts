/**
 * Routes every message a peer link delivers (after the transport's mutual authentication) to
 * the supervisor part that handles it. Owned by the supervisor (main thread); never blocks.
 *
 * Peer messages:
 *   {t:'gossip', from: address, msg}   → membership (from: where the sender is reached)
 *   {t:'rpc', id, body}                → served by anti-entropy (ae-*), handoff (handoff-*) or
 *                                        the replica side of the coordinator; the reply goes
 *                                        back on this link (id 0: no reply wanted)
 *   {t:'rpc-reply', id, body}          → the coordinator; the replier is the link's peer id
 *
 * Invariants: a malformed or unknown message is counted and logged (at most one log line per
 * `badLogIntervalMs`), never thrown; a reply the link cannot take (full or closed) is counted
 * and dropped, so the requester times out as with any lost message.
 */

import { isRingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import type { Link, WireMessage } from '../transport/index.js';
import { isAntiEntropyMessage } from './anti-entropy.js';
import { isHandoffMessage } from './handoff.js';
import { isScaleMessage } from './scaling/scale-gossip.js';

const badLogIntervalMs = 10_000;

export interface PeerRouterOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly membership: { receive(from: string, message: unknown): void };
  readonly driver: { serve(body: unknown, from?: string): Promise<unknown>; onReply(id: unknown, from: string, body: unknown): void };
  readonly antiEntropy: { serve(from: string, body: unknown): Promise<unknown> };
  readonly handoff: { serve(from: string, body: unknown): Promise<unknown> };
  /** scale-* and plan-* rpcs (scaling/scaling.ts). */
  readonly scaling?: { serve(from: string, body: unknown): Promise<unknown> };
}

export class PeerRouter {
  readonly #options: PeerRouterOptions;
  #badPeerMessages = 0;
  #droppedReplies = 0;
  #lastBadLogMs = Number.NEGATIVE_INFINITY;

  constructor(options: PeerRouterOptions) {
    this.#options = options;
  }

  route(link: Link, message: WireMessage): void {
    const { membership, driver } = this.#options;
    switch (message.t) {
      case 'gossip':
        if (typeof message.from === 'string' && message.from.length > 0 && message.from.length <= limits.memberAddressBytesMax) {
          membership.receive(message.from, message.msg);
          return;
        }
        break;
      case 'rpc': {
        const id = message.id;
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) break;
        const peer = link.peerId;
        const serving =
          peer === undefined ? driver.serve(message.body)
          : isAntiEntropyMessage(message.body) ? this.#options.antiEntropy.serve(peer, message.body)
          : isHandoffMessage(message.body) ? this.#options.handoff.serve(peer, message.body) // handoff
          : isScaleMessage(message.body) && this.#options.scaling ? this.#options.scaling.serve(peer, message.body) // scaling
          : driver.serve(message.body, peer);
        void serving.then((body) => {
          if (id !== 0 && link.isOpen) this.#sendQuietly(link, { t: 'rpc-reply', id, body });
        });
        return;
      }
      case 'rpc-reply':
        if (link.peerId !== undefined) {
          driver.onReply(message.id, link.peerId, message.body);
          return;
        }
        break;
    }
    this.#badPeerMessages++;
    const nowMs = this.#options.clock.monotonicMs();
    if (nowMs - this.#lastBadLogMs > badLogIntervalMs) {
      this.#lastBadLogMs = nowMs;
      this.#options.logger.warn({ peer: link.peerId, t: String(message.t).slice(0, 32), count: this.#badPeerMessages }, 'malformed peer message ignored');
    }
  }

  #sendQuietly(link: Link, message: WireMessage): void {
    try {
      link.send(message);
    } catch (error) {
      // The link is full or closed: the requester times out, as with any lost message.
      if (!isRingkvError(error)) throw error;
      this.#droppedReplies++;
    }
  }
}
