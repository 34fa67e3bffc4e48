/**
 * Drives one Merkle exchange (lib/antientropy/exchange.ts, sans-IO) to its end with the node's
 * effects: rpcs to the peer, the partition snapshot's leaves, local reads and merges, and the
 * token bucket's timer. Owned by the supervisor (main thread); anti-entropy.ts starts it and
 * does the bookkeeping of the result.
 *
 * A timer is a deadline, not a pause: requests are awaited inline (`call` has its own
 * timeout), so the exchange only sleeps on its timer when it has nothing else to do (waiting
 * for the rate limiter's tokens).
 */

import { ErrorCode } from '../base/errors.js';
import type { Clock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import type { Exchange, ExchangeAction, ExchangeResult } from '../antientropy/index.js';
import type { ReplicaStore } from '../store/index.js';
import type { PartitionSnapshots, Snapshot } from './partition-snapshots.js';

export interface ExchangeRunDeps {
  readonly clock: Clock;
  readonly store: ReplicaStore;
  readonly snapshots: PartitionSnapshots;
  /** One rpc to a peer: its reply body, or undefined when unreachable / timed out. */
  readonly call: (nodeId: string, body: object, timeoutMs: number) => Promise<unknown>;
}

/** Runs `x` (not started yet) over `snapshot` against `peer` until it completes. */
export async function runExchange(x: Exchange, peer: string, snapshot: Snapshot, deps: ExchangeRunDeps): Promise<ExchangeResult> {
  const { clock } = deps;
  let queue: ExchangeAction[] = x.start(clock.monotonicMs());
  let timerAtMs: number | undefined;
  for (;;) {
    const action = queue.shift();
    if (action === undefined) {
      if (timerAtMs === undefined) throw new Error('exchange stalled without an action');
      await new Promise((r) => setTimeout(r, Math.max(0, timerAtMs! - clock.monotonicMs())));
      timerAtMs = undefined;
      queue = x.onTimer(clock.monotonicMs());
      continue;
    }
    switch (action.type) {
      case 'send': {
        const reply = await deps.call(action.to, action.message, limits.antiEntropyRequestTimeoutMs);
        queue = queue.concat(reply === undefined ? x.fail(ErrorCode.unavailable, `${peer} did not answer`, clock.monotonicMs()) : x.onReply(reply, clock.monotonicMs()));
        break;
      }
      case 'list-local':
        queue = queue.concat(x.onLocalList(action.leaves.flatMap((leaf) => snapshot.leaves.get(leaf) ?? []), action.leaves.length, clock.monotonicMs()));
        break;
      case 'read-local': {
        const objects = await Promise.all(action.keys.map((key) => deps.store.readObject(key)));
        queue = queue.concat(x.onLocalRead(objects, clock.monotonicMs()));
        break;
      }
      case 'merge-local':
        await deps.snapshots.merge(snapshot, action.key, action.object);
        break;
      case 'set-timer':
        timerAtMs = action.atMs;
        break;
      case 'complete':
        return action.result;
    }
  }
}
