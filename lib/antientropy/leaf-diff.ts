/**
 * The last step of an exchange's descent: given both replicas' (key, object hash) listings of
 * the same differing leaves, which keys differ and in which direction. Pure, any thread.
 *
 * A key only the responder holds is fetched; a key only the initiator holds is pushed; a key
 * both hold with different object hashes goes both ways, so that after the transfers both
 * replicas hold mergeReplicas of the two states (merging is a semilattice: order and
 * duplicates do not matter). Equal object hashes mean equal objects (tree-hash.ts).
 */

import { Buffer } from 'node:buffer';
import { hashesEqual, nodeHashBytes, type ObjectHash } from './tree-hash.js';

/** One key of a leaf listing, as the driver reads it from its store. */
export interface LeafEntry {
  readonly key: Uint8Array;
  readonly objectHash: ObjectHash;
}

export interface LeafDiff {
  /** Keys whose responder state the initiator must fetch and merge. */
  readonly fetch: Uint8Array[];
  /** Keys whose initiator state the initiator must push to the responder. */
  readonly push: Uint8Array[];
  /** Distinct keys that differ. */
  readonly differing: number;
}

/** A key as a Map key: one char per byte, so every byte string maps to a distinct string. */
export function keyId(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
}

/**
 * Compares the initiator's entries with the responder's listing (`keys` with 8-byte `hashes`).
 * Both cover exactly the same leaves; keys are unique on each side (the callers check).
 */
export function diffLeaves(local: readonly LeafEntry[], remoteKeys: readonly Uint8Array[], remoteHashes: Uint8Array): LeafDiff {
  const remote = new Map<string, number>();
  for (let i = 0; i < remoteKeys.length; i++) remote.set(keyId(remoteKeys[i]!), i);
  const fetch: Uint8Array[] = [];
  const push: Uint8Array[] = [];
  let differing = 0;
  for (const entry of local) {
    const id = keyId(entry.key);
    const index = remote.get(id);
    if (index === undefined) {
      push.push(entry.key);
      differing++;
      continue;
    }
    remote.delete(id);
    if (hashesEqual(entry.objectHash, 0, remoteHashes, index * nodeHashBytes)) continue;
    fetch.push(entry.key);
    push.push(entry.key);
    differing++;
  }
  for (const index of remote.values()) {
    fetch.push(remoteKeys[index]!);
    differing++;
  }
  return { fetch, push, differing };
}
