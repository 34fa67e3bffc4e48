/**
 * When a starting node may gossip its own record: after the start check (start-check.ts) has
 * heard from a peer, or after `startCheckWindowMs` without an answer. Owned by the supervisor
 * (main thread).
 *
 * Without an answer in the window, an owner restarting (alone, or with the whole cluster) and
 * a founder start anyway, and the check goes on in the background until a peer answers: a
 * refusal then (a removed or replaced node) stops the node through `onRefused`. A new node
 * that is neither a founder nor replacing stays quiet until a peer answers: it cannot join
 * before that anyway, and a lost disk at a member's address is then refused before the
 * cluster ever hears of it.
 */

import { isRingkvError, type RingkvError } from '../../base/errors.js';
import type { Clock } from '../../base/clock.js';
import { limits } from '../../base/limits.js';
import type { Logger } from '../../base/log.js';
import type { MemberStatus } from '../../membership/index.js';
import { writeNodeIdentity, type NodeIdentity } from '../node-identity.js';
import { isOwnerStatus, type MembershipView } from './membership-file.js';
import { runStartCheck, type StartFacts } from './start-check.js';

export interface StartGateOptions {
  readonly facts: StartFacts;
  /** Our address is in our seed list. */
  readonly founder: boolean;
  readonly candidates: readonly string[];
  readonly hello: (address: string) => Promise<unknown>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Persist the identity and start gossiping. */
  readonly release: () => void;
  /** A refusal after the node already started (see the header). */
  readonly onRefused?: (error: RingkvError) => void;
}

export class StartGate {
  readonly #o: StartGateOptions;
  #released = false;
  #closed = false;

  constructor(options: StartGateOptions) {
    this.#o = options;
  }

  /** Runs the bounded check; rejects with a refusal; releases gossip when it may. */
  async check(): Promise<void> {
    const view = await runStartCheck(this.#checkOptions(limits.startCheckWindowMs, limits.startCheckRetryMs));
    const { fresh, replacing } = this.#o.facts;
    if (view !== undefined || !fresh || replacing || this.#o.founder) this.#release();
    if (view === undefined && !this.#closed) {
      this.#o.logger.info({ asked: this.#o.candidates }, this.#released ? 'no peer answered the start check yet: starting, and checking on' : 'no peer answered the start check yet: waiting for one before joining');
      void this.#checkLater();
    }
  }

  close(): void {
    this.#closed = true;
  }

  async #checkLater(): Promise<void> {
    try {
      await runStartCheck(this.#checkOptions(Number.POSITIVE_INFINITY, limits.startCheckLateRetryMs));
      if (!this.#closed) this.#release();
    } catch (error) {
      if (!isRingkvError(error)) throw error;
      this.#o.logger.error({ err: error.message }, 'refused by the cluster: stopping');
      this.#o.onRefused?.(error);
    }
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#o.release();
  }

  #checkOptions(windowMs: number, retryMs: number): Parameters<typeof runStartCheck>[0] {
    const { facts, candidates, hello, clock } = this.#o;
    return { facts, candidates, hello, clock, windowMs, retryMs, stopped: () => this.#closed };
  }
}

/** The status a start gossips first: `normal` for a node that owned partitions, whatever its seeds. */
export function startStatus(restored: MembershipView | undefined, replacing: boolean): MemberStatus {
  const previous = restored?.self;
  if (replacing || previous === 'replacing') return 'replacing';
  return previous !== undefined && isOwnerStatus(previous) ? 'normal' : 'joining';
}

/** The addresses a start check asks: seeds and remembered members, not ourselves. */
export function startCandidates(seeds: readonly string[], address: string, restored: MembershipView | undefined): string[] {
  const remembered = (restored?.members ?? []).map((m) => m.address);
  return [...new Set([...seeds, ...remembered])].filter((a) => a !== address);
}

/** What the supervisor knows at start (its options' lifecycle fields). */
export interface StartInput {
  readonly identity: NodeIdentity;
  readonly dir: string;
  readonly address: string;
  readonly seeds: readonly string[];
  readonly restored?: MembershipView;
  readonly replacing?: boolean;
  readonly startFacts?: Omit<StartFacts, 'selfId' | 'address' | 'dir' | 'replacing' | 'generation'>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onRefused?: (error: RingkvError) => void;
}

/** The supervisor's gate; `release` starts gossip once the identity is persisted. */
export function startGateFor(input: StartInput, io: { hello: (address: string) => Promise<unknown>; release: () => void }): StartGate {
  const { identity, dir, address, seeds, restored } = input;
  const replacing = startStatus(restored, input.replacing === true) === 'replacing';
  const facts: StartFacts = { fresh: true, previousGeneration: undefined, ...input.startFacts, selfId: identity.id, address, dir, generation: identity.generation, replacing };
  return new StartGate({
    facts,
    founder: seeds.includes(address),
    candidates: startCandidates(seeds, address, restored),
    hello: io.hello,
    clock: input.clock,
    logger: input.logger,
    release: () => {
      writeNodeIdentity(dir, identity); // before our first gossip: a restart's generation is above it
      io.release();
    },
    ...(input.onRefused ? { onRefused: input.onRefused } : {}),
  });
}
