/**
 * The merge of one read's replica answers: every answer's stored object joined with
 * mergeReplicas (the DVV-set sync of lib/causality), the client's view of the result, and the
 * read repairs it calls for. Pure, owned by the read's coordinator (supervisor main thread).
 *
 * Dynamo §4.6 / riak_kv get_fsm: once the answers are in (all of them, or what came before the
 * deadline), each replica that answered with no object, or with an object the merge has moved
 * past, is sent the merged object. Because sync is a join, the merge covers every answer, so
 * "differs from the merge" means "older than the merge": the encoding is canonical (one
 * encoding per state), so comparing bytes is exact. Replicas that did not answer are left to
 * hinted handoff and anti-entropy: we do not know what they hold.
 *
 * An answer whose object does not decode is refused (the caller counts that replica as
 * failed): corrupt state from one replica must never reach the client or the repairs.
 */

import { Buffer } from 'node:buffer';
import { ErrorCode, isRingkvError } from '../base/errors.js';
import { decodeObject, encodeObject, mergeReplicas, readView, type ConflictPolicy, type ReadView, type StoredObject } from '../causality/index.js';

export interface Repair {
  readonly to: string;
  readonly object: Uint8Array;
}

export class ReadMerge {
  /**
   * Each answering replica and its object bytes (undefined: it holds no record), in parallel
   * arrays: a read hears from a few replicas, and a Map per read was a visible GC cost.
   */
  readonly #from: string[] = [];
  readonly #objects: (Uint8Array | undefined)[] = [];
  #merged: StoredObject | undefined;

  get answerCount(): number {
    return this.#from.length;
  }

  /** Adds one replica's answer; false (nothing merged) when the object is corrupt. */
  add(from: string, object: Uint8Array | undefined): boolean {
    if (object !== undefined) {
      let decoded: StoredObject;
      try {
        decoded = decodeObject(object);
      } catch (error) {
        if (isRingkvError(error, ErrorCode.corruption)) return false;
        throw error;
      }
      this.#merged = mergeReplicas(this.#merged, decoded);
    }
    const known = this.#from.indexOf(from);
    if (known >= 0) {
      this.#objects[known] = object;
    } else {
      this.#from.push(from);
      this.#objects.push(object);
    }
    return true;
  }

  /** The client's view; siblings expired at `expiryNowMs` are hidden (default: none). */
  view(policy: ConflictPolicy, expiryNowMs?: number): ReadView {
    return readView(this.#merged, policy, expiryNowMs);
  }

  /** The replica writes that bring every answering replica up to the merge. */
  repairs(): Repair[] {
    // One answer is the merge itself: nothing to repair (and no re-encoding on a 1-replica read).
    if (this.#merged === undefined || this.#merged.length === 0 || this.#from.length < 2) return [];
    const merged = encodeObject(this.#merged);
    const out: Repair[] = [];
    for (let i = 0; i < this.#from.length; i++) {
      const object = this.#objects[i];
      if (object === undefined || Buffer.compare(object, merged) !== 0) out.push({ to: this.#from[i]!, object: merged });
    }
    return out;
  }
}
