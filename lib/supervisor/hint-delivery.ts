/**
 * Hinted handoff delivery (Dynamo §4.6): the sender side of the hints a sloppy-quorum stand-in
 * took for a down replica (hint-store.ts). Every `limits.hintDeliveryIntervalMs`, for each
 * target with hints that gossip shows up and reachable, the hints are sent as replica-writes
 * in batches of `limits.hintDeliveryBatch`, one batch at a time (the throttle). Owned by the
 * supervisor (main thread); IO goes through its `call` rpc, time through the timer.
 *
 * Invariants:
 * - at most one delivery per target at a time (a target stays in `#delivering` until its
 *   delivery settles); deliveries to different targets run concurrently.
 * - a hint is deleted (by the hint store) only after the owner acknowledged every write of its
 *   batch with a `replica-write-reply` (durable there); anything else keeps the batch for the
 *   next round. Redelivery is harmless: the owner merges.
 * - a failed delivery is logged, never thrown.
 */

import { limits } from '../base/limits.js';
import type { Logger } from '../base/log.js';
import type { Hint, HintStore } from './hint-store.js';

export interface HintDeliveryOptions {
  readonly hints: HintStore;
  readonly logger: Logger;
  /** Whether `target` is up now and its address known (hints go to reachable targets only). */
  readonly reachable: (target: string) => boolean;
  /** One rpc to a peer: its reply body, or undefined when unreachable / timed out. */
  readonly call: (nodeId: string, body: object, timeoutMs: number) => Promise<unknown>;
  /** Told how many hints `target` acknowledged after each delivery (metrics). */
  readonly onDelivered?: (target: string, count: number) => void;
}

export class HintDelivery {
  readonly #options: HintDeliveryOptions;
  readonly #delivering = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #delivered = 0;

  constructor(options: HintDeliveryOptions) {
    this.#options = options;
  }

  /** Hints acknowledged by their owners since start. */
  get delivered(): number {
    return this.#delivered;
  }

  start(): void {
    this.#timer = setInterval(() => this.deliver(), limits.hintDeliveryIntervalMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  /** Starts delivery to every target with hints that is up now (one delivery per target at a time). */
  deliver(): void {
    const { hints, logger } = this.#options;
    for (const target of hints.targetsWithHints()) {
      if (this.#delivering.has(target) || !this.#options.reachable(target)) continue;
      this.#delivering.add(target);
      void hints
        .deliver(target, limits.hintDeliveryBatch, (batch) => this.#send(target, batch))
        .then(
          ({ delivered, complete }) => {
            this.#delivered += delivered;
            this.#options.onDelivered?.(target, delivered);
            if (delivered > 0) logger.info({ target, delivered, complete }, 'hints delivered');
          },
          (error: unknown) => logger.error({ target, err: error }, 'hint delivery failed'),
        )
        .finally(() => this.#delivering.delete(target));
    }
  }

  /** Sends one batch; true only when the owner acknowledged every hint in it. */
  async #send(target: string, batch: Hint[]): Promise<boolean> {
    const timeoutMs = limits.coordinatorTimeoutMsDefault;
    const replies = await Promise.all(batch.map((hint) => this.#options.call(target, { t: 'replica-write', key: hint.key, object: hint.object }, timeoutMs)));
    return replies.every((reply) => typeof reply === 'object' && reply !== null && (reply as { t?: unknown }).t === 'replica-write-reply');
  }
}
