/**
 * The supervisor's links to other nodes: one outbound dialer per peer address (kept up with
 * backoff by the transport) for what we send, plus the inbound links peers opened to us.
 * Owned by the supervisor (main thread).
 *
 * Direction rule: every message we originate (gossip, RPC requests) goes out on OUR dialer to
 * the target's address; a reply goes back on the link its request came in on. So a node pair
 * has two connections, each carrying one direction's requests, and neither side has to know
 * which link the other one opened. Messages to a peer whose link is down are dropped and
 * `send` returns false: gossip tolerates loss, and the coordinator treats it as a replica not
 * reached.
 *
 * A dialer is created on first use of an address and closed by `forget` (a member that left)
 * or `close`. Their number is bounded by membersMax + seeds.
 */

import { ErrorCode, isRingkvError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import type { Rng } from '../base/rng.js';
import { dialPeer, type Link, type PeerDialer, type WireMessage } from '../transport/index.js';

export type DialFunction = typeof dialPeer;

export interface PeerNetworkOptions {
  readonly nodeId: string;
  readonly secret: Uint8Array | undefined;
  readonly scheme: 'ws' | 'wss';
  readonly logger: Logger;
  readonly rng: Rng;
  readonly caFile?: string;
  readonly dial?: DialFunction;
  /** Every message arriving on any peer link, with the link to reply on. */
  readonly onMessage: (link: Link, message: WireMessage) => void;
  /** A dialer's link came up: the peer at `address` is reachable from here. */
  readonly onLinkUp?: (address: string) => void;
}

export class PeerNetwork {
  readonly #options: PeerNetworkOptions;
  readonly #dial: DialFunction;
  readonly #dialers = new Map<string, PeerDialer>();
  readonly #inbound = new Set<Link>();
  #closed = false;
  #dropped = 0;

  constructor(options: PeerNetworkOptions) {
    this.#options = options;
    this.#dial = options.dial ?? dialPeer;
  }

  /** Messages not sent because the peer's link was down or full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Whether our dialer to `address` has an open link now. */
  isLinked(address: string): boolean {
    return this.#dialers.get(address)?.link?.isOpen === true;
  }

  /** Round trip of the last ping on our link to `address`, in ms; undefined when unknown. */
  rttMsOf(address: string): number | undefined {
    return this.#dialers.get(address)?.link?.rttMs;
  }

  /** Sends on our link to `address`, dialing it if new; false when it could not be sent now. */
  send(address: string, message: WireMessage): boolean {
    if (this.#closed) return false;
    const link = this.#dialerOf(address)?.link;
    if (link === undefined || !link.isOpen) {
      this.#dropped++;
      return false;
    }
    try {
      link.send(message);
      return true;
    } catch (error) {
      if (!isRingkvError(error, ErrorCode.overloaded) && !isRingkvError(error, ErrorCode.closed)) throw error;
      this.#dropped++;
      return false;
    }
  }

  /** Starts dialing `address` now (so its link is up before the first message). */
  connect(address: string): void {
    this.#dialerOf(address);
  }

  /** Takes an authenticated inbound link from the transport server. */
  addInbound(link: Link): void {
    if (this.#closed) {
      link.close(1001, 'node closing');
      return;
    }
    this.#inbound.add(link);
    link.onMessage = (message) => this.#options.onMessage(link, message);
    link.onClose = () => this.#inbound.delete(link);
  }

  /** Stops dialing `address` (the member left or was removed). */
  forget(address: string): void {
    const dialer = this.#dialers.get(address);
    if (dialer === undefined) return;
    this.#dialers.delete(address);
    dialer.close();
  }

  close(): void {
    this.#closed = true;
    for (const dialer of this.#dialers.values()) dialer.close();
    this.#dialers.clear();
    for (const link of this.#inbound) link.close(1001, 'node closing');
    this.#inbound.clear();
  }

  #dialerOf(address: string): PeerDialer | undefined {
    const existing = this.#dialers.get(address);
    if (existing !== undefined) return existing;
    if (this.#dialers.size >= limits.membersMax * 2) {
      this.#options.logger.warn({ address }, 'too many peer addresses; not dialing');
      return undefined;
    }
    const { nodeId, secret, logger, rng, caFile, scheme } = this.#options;
    const dialer = this.#dial({ url: `${scheme}://${address}`, nodeId, secret, logger, rng, ...(caFile ? { caFile } : {}) });
    dialer.onUp = (link) => {
      link.onMessage = (message) => this.#options.onMessage(link, message);
      this.#options.onLinkUp?.(address);
    };
    dialer.onDown = () => logger.debug({ address }, 'peer link down');
    dialer.onError = (error) => {
      if (error.code === 'KV_AUTH') logger.warn({ address, err: error.message }, 'peer refused: check the cluster secret');
      else logger.debug({ address, err: error.message }, 'peer unreachable');
    };
    this.#dialers.set(address, dialer);
    return dialer;
  }
}
