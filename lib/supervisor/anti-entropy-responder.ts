/**
 * The responder side of Merkle anti-entropy (lib/antientropy ExchangeResponder): answers the
 * ae-* rpcs another replica's exchange sends this node, over the partition snapshots of
 * partition-snapshots.ts, and the `ae-digests` partition-digest requests (partition-digest.ts).
 * Owned by the AntiEntropy driver (anti-entropy.ts) on the supervisor's main thread.
 *
 * Invariants:
 * - a request about a partition this node replicates is answered from a cached snapshot (built
 *   if none is within its time to live), so the requests of one exchange see one tree; a
 *   partition it does not replicate gets no snapshot, and the pure responder answers it.
 * - every request resolves with a reply body, never throws for a peer's bad request; a request
 *   the responder leaves unanswered resolves with an `ae-error` (unavailable).
 * - merges a peer pushes go through the snapshots (`mergeInto`), so a cached tree moves with
 *   them and expired tombstones are not re-seeded.
 */

import { ErrorCode } from '../base/errors.js';
import { ExchangeResponder, type ResponderAction } from '../antientropy/index.js';
import type { ReplicaStore } from '../store/index.js';
import { serveDigests } from './partition-digest.js';
import type { PartitionSnapshots } from './partition-snapshots.js';

export interface AntiEntropyResponderOptions {
  readonly store: ReplicaStore;
  readonly partitionBits: number;
  readonly snapshots: PartitionSnapshots;
  /** The partitions this node replicates now. */
  readonly myPartitions: () => readonly number[];
}

export class AntiEntropyResponder {
  readonly #options: AntiEntropyResponderOptions;
  readonly #responder: ExchangeResponder;

  constructor(options: AntiEntropyResponderOptions) {
    this.#options = options;
    this.#responder = new ExchangeResponder({ treeOf: (p) => options.snapshots.get(p)?.tree });
  }

  /** Answers one ae-* rpc from `from`; resolves with the reply body. */
  async serve(from: string, body: unknown): Promise<unknown> {
    const { store, snapshots } = this.#options;
    if ((body as { t?: unknown } | null)?.t === 'ae-digests') return serveDigests(store, body, 2 ** this.#options.partitionBits);
    const partition = (body as { partition?: unknown } | null)?.partition;
    if (typeof partition === 'number' && Number.isInteger(partition) && this.#options.myPartitions().includes(partition)) {
      await snapshots.snapshot(partition, false);
    }
    let actions: ResponderAction[] = this.#responder.onRequest(from, body);
    for (;;) {
      const action = actions.shift();
      if (action === undefined) return { t: 'ae-error', code: ErrorCode.unavailable, message: 'no reply' };
      switch (action.type) {
        case 'reply':
          return action.message;
        case 'list-local': {
          const snapshot = snapshots.get(action.request.partition);
          const entries = action.request.leaves.flatMap((leaf) => snapshot?.leaves.get(leaf) ?? []);
          actions = [this.#responder.listReply(action.request, entries)];
          break;
        }
        case 'read-local': {
          const objects = await Promise.all(action.request.keys.map((key) => store.readObject(key)));
          actions = [this.#responder.fetchReply(action.request, objects)];
          break;
        }
        case 'merge-local':
          await snapshots.mergeInto(action.partition, action.key, action.object);
          break;
      }
    }
  }
}
