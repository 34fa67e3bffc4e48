/**
 * Serves /client links: validates each request (lib/protocol/client-messages), hands it to the
 * coordinator, and replies on the same link with the request's id. Owned by the supervisor
 * (main thread).
 *
 * The per-link cap on requests in flight (limits.clientInflightMax, KV_OVERLOADED beyond) is
 * enforced by the transport's link before a message reaches this service. A malformed message is answered with its error code and the link stays open (wire.md).
 * A failure that is not a RingkvError is a bug: it is logged, and answered as
 * KV_INDETERMINATE for writes (it may have been applied) or KV_UNAVAILABLE for reads.
 * Replies to a link that closed meanwhile are dropped. `ping` is answered with `pong` at once
 * (clients probe idle connections with it, lib/client).
 */

import { ErrorCode, isRingkvError, type RingkvError } from '../base/errors.js';
import type { Clock } from '../base/clock.js';
import type { Logger } from '../base/log.js';
import {
  errorReply,
  parseClientRequest,
  pongReply,
  readReply,
  ringReply,
  writtenReply,
  type DeleteRequest,
  type GetRequest,
  type PutRequest,
  type RingView,
} from '../protocol/client-messages.js';
import type { Link, WireMessage } from '../transport/index.js';

export interface ReadResult {
  found: boolean;
  values: Uint8Array[];
  context: Uint8Array;
}

/** What the coordinator offers the client service. */
export interface ClientOperations {
  get(request: GetRequest): Promise<ReadResult>;
  write(request: PutRequest | DeleteRequest): Promise<{ context: Uint8Array }>;
  ringView(): RingView;
}

/** Receives one observation per finished client request (metrics). */
export interface RequestObserver {
  observe(op: string, outcome: string, latencyMs: number): void;
}

export interface ClientServiceOptions {
  readonly operations: ClientOperations;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly observer?: RequestObserver;
}

export class ClientService {
  readonly #options: ClientServiceOptions;
  readonly #links = new Set<Link>();

  constructor(options: ClientServiceOptions) {
    this.#options = options;
  }

  get linkCount(): number {
    return this.#links.size;
  }

  addLink(link: Link): void {
    this.#links.add(link);
    link.onMessage = (message) => this.#onMessage(link, message);
    link.onClose = () => this.#links.delete(link);
  }

  closeAll(): void {
    for (const link of this.#links) link.close(1001, 'node closing');
    this.#links.clear();
  }

  #onMessage(link: Link, raw: WireMessage): void {
    const parsed = parseClientRequest(raw);
    if (!parsed.ok) {
      reply(link, errorReply(parsed.id, parsed.code, parsed.message));
      return;
    }
    const request = parsed.request;
    switch (request.t) {
      case 'hello':
        reply(link, errorReply(0, ErrorCode.badRequest, 'hello after the handshake'));
        return;
      case 'ring':
        reply(link, ringReply(request.id, this.#options.operations.ringView()));
        return;
      case 'ping':
        reply(link, pongReply(request.id));
        return;
      case 'get':
        void this.#run(link, request);
        return;
      case 'put':
      case 'delete':
        // One turn later, so that a replica write of the same rid that arrived in the same
        // poll (a hedged write's first copy, queued while this node was paused) is noted
        // first, and this node replicates that write instead of minting it again.
        setImmediate(() => void this.#run(link, request));
        return;
    }
  }

  async #run(link: Link, request: GetRequest | PutRequest | DeleteRequest): Promise<void> {
    const { operations, clock, observer, logger } = this.#options;
    const startMs = clock.monotonicMs();
    let outcome = 'ok';
    try {
      if (request.t === 'get') {
        const result = await operations.get(request);
        reply(link, readReply(request.id, result.found, result.values, result.context));
      } else {
        const result = await operations.write(request);
        reply(link, writtenReply(request.id, result.context));
      }
    } catch (error) {
      const failure = asClientError(error, request.t !== 'get', logger);
      outcome = failure.code;
      reply(link, errorReply(request.id, failure.code, failure.message));
    } finally {
      observer?.observe(request.t, outcome, clock.monotonicMs() - startMs);
    }
  }
}

function asClientError(error: unknown, isWrite: boolean, logger: Logger): Pick<RingkvError, 'code' | 'message'> {
  if (isRingkvError(error)) return error;
  logger.error({ err: error }, 'client request failed with a bug');
  return isWrite
    ? { code: ErrorCode.indeterminate, message: 'internal error: the write may or may not have been applied' }
    : { code: ErrorCode.unavailable, message: 'internal error' };
}

function reply(link: Link, message: WireMessage): void {
  if (!link.isOpen) return;
  try {
    link.send(message);
  } catch (error) {
    // A full or closed link: the client sees its request time out or its connection drop.
    if (!isRingkvError(error)) throw error;
  }
}
