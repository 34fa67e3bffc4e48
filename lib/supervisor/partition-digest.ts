/**
 * Partition digests: one replica's Merkle root of a partition (the XOR of its entries'
 * hashes, tree-hash.ts, the same value a PartitionTree's root holds) computed from a scan
 * without building the tree, for many partitions in one rpc. Two replicas with equal digests
 * hold the same data for the partition, which is exactly what an exchange's first step
 * (comparing roots) learns, so a caller with many partitions to check (the catch-up after a
 * join, handoff-transfers.ts) asks for the digests in batches and runs full exchanges only
 * for those that differ: one rpc per batch instead of a few per partition, and no trees
 * allocated. Owned by the supervisor's main thread.
 *
 * Wire (peer rpc, like the ae-* messages):
 *   request  {t: 'ae-digests', partitions: number[]}   1..digestPartitionsMax, each in the ring
 *   reply    {t: 'ae-digests-reply', digests: string[]}  16 hex digits per partition, in order
 *   refusal  {t: 'ae-error', code: KV_BAD_REQUEST, message}
 */

import { ErrorCode } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { entryHashInto, nodeHashBytes, objectHashOf, writeU32 } from '../antientropy/index.js';
import type { ReplicaStore } from '../store/index.js';

/** Most partitions in one ae-digests request. */
export const digestPartitionsMax = 256;
/** Partitions one matchingPartitions call asks about per rpc (their scans run together). */
const digestBatch = 64;

type Scanner = Pick<ReplicaStore, 'scanPartition'>;

/** This replica's digest of `partition`: the hex of its 8-byte Merkle root (PartitionTree.rootHash()). */
export async function partitionDigest(store: Scanner, partition: number): Promise<string> {
  const acc = new Uint32Array(2);
  const scratch = new Uint32Array(2);
  let afterKey: Uint8Array | undefined;
  do {
    const page = await store.scanPartition(partition, { limit: limits.antiEntropyScanPageEntries, ...(afterKey ? { afterKey } : {}) });
    for (const { key, value } of page.entries) {
      entryHashInto(key, objectHashOf(value), scratch);
      acc[0]! ^= scratch[0]!;
      acc[1]! ^= scratch[1]!;
    }
    afterKey = page.nextAfterKey;
  } while (afterKey !== undefined);
  const bytes = new Uint8Array(nodeHashBytes);
  writeU32(bytes, 0, acc[0]!);
  writeU32(bytes, 4, acc[1]!);
  return Buffer.from(bytes).toString('hex');
}

/** Answers an ae-digests request. */
export async function serveDigests(store: Scanner, body: unknown, partitionCount: number): Promise<object> {
  const partitions = (body as { partitions?: unknown } | null)?.partitions;
  if (
    !Array.isArray(partitions) ||
    partitions.length === 0 ||
    partitions.length > digestPartitionsMax ||
    !partitions.every((p) => Number.isInteger(p) && p >= 0 && p < partitionCount)
  ) {
    return { t: 'ae-error', code: ErrorCode.badRequest, message: `partitions must list 1..${digestPartitionsMax} partitions of the ring` };
  }
  const digests = await Promise.all((partitions as number[]).map((p) => partitionDigest(store, p)));
  return { t: 'ae-digests-reply', digests };
}

/**
 * The partitions of `partitions` whose data here and at `peer` is the same (equal digests).
 * One rpc per 64 partitions, with the local scans running meanwhile; a batch the peer did not answer (or answered wrongly)
 * matches nothing, so its partitions get full exchanges.
 */
export async function matchingPartitions(
  store: Scanner,
  call: (nodeId: string, body: object, timeoutMs: number) => Promise<unknown>,
  peer: string,
  partitions: readonly number[],
): Promise<Set<number>> {
  const same = new Set<number>();
  for (let i = 0; i < partitions.length; i += digestBatch) {
    const batch = partitions.slice(i, i + digestBatch);
    const [reply, local] = await Promise.all([
      call(peer, { t: 'ae-digests', partitions: batch }, limits.antiEntropyRequestTimeoutMs) as Promise<{ t?: unknown; digests?: unknown } | undefined>,
      Promise.all(batch.map((p) => partitionDigest(store, p))),
    ]);
    if (reply?.t !== 'ae-digests-reply' || !Array.isArray(reply.digests) || reply.digests.length !== batch.length) continue;
    for (let k = 0; k < batch.length; k++) if (reply.digests[k] === local[k]) same.add(batch[k]!);
  }
  return same;
}
