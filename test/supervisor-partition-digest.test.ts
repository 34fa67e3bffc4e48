/**
 * Partition digests (lib/supervisor/partition-digest.ts): a scan-only digest equal to the
 * partition's Merkle root, the ae-digests rpc, and the batched comparison the join catch-up
 * uses to skip partitions already in agreement.
 */

import t from 'tap';
import { ErrorCode } from '../lib/base/errors.js';
import { objectHashOf, PartitionTree } from '../lib/antientropy/index.js';
import { digestPartitionsMax, matchingPartitions, partitionDigest, serveDigests } from '../lib/supervisor/partition-digest.js';
import type { ScanPartitionOptions, ScanPartitionPage } from '../lib/store/index.js';

const partitionBits = 4;
const enc = new TextEncoder();

/** A store of fixed entries per partition, scanned `pageSize` at a time. */
function fakeStore(data: Map<number, { key: Uint8Array; value: Uint8Array }[]>, pageSize = 3) {
  return {
    scanPartition: async (partition: number, options: ScanPartitionOptions): Promise<ScanPartitionPage> => {
      const all = data.get(partition) ?? [];
      const start = options.afterKey === undefined ? 0 : all.findIndex((e) => Buffer.compare(e.key, options.afterKey!) === 0) + 1;
      const entries = all.slice(start, start + Math.min(pageSize, options.limit));
      const more = start + entries.length < all.length;
      return more ? { entries, nextAfterKey: entries.at(-1)!.key } : { entries };
    },
  };
}

const entries = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ key: enc.encode(`k${i}`), value: enc.encode(`${tag}-${i}`) }));

t.test('a digest is the Merkle root of the same entries, whatever the paging', async (t) => {
  const list = entries(10, 'v');
  const tree = new PartitionTree({ partition: 0, partitionBits: 0 });
  for (const e of list) tree.insert(e.key, objectHashOf(e.value));
  const digest = await partitionDigest(fakeStore(new Map([[0, list]])), 0);
  t.equal(digest, Buffer.from(tree.rootHash()).toString('hex'));
  t.equal(await partitionDigest(fakeStore(new Map([[0, list]]), 1), 0), digest, 'page size does not matter');
  t.equal(await partitionDigest(fakeStore(new Map()), 5), '0000000000000000', 'an empty partition');
  t.not(await partitionDigest(fakeStore(new Map([[0, [...list.slice(1), { key: list[0]!.key, value: enc.encode('other') }]]])), 0), digest, 'one object differs');
});

t.test('ae-digests answers per partition and refuses malformed requests', async (t) => {
  const store = fakeStore(new Map([[1, entries(4, 'a')]]));
  const reply = (await serveDigests(store, { t: 'ae-digests', partitions: [1, 2] }, 2 ** partitionBits)) as { t: string; digests: string[] };
  t.equal(reply.t, 'ae-digests-reply');
  t.same(reply.digests, [await partitionDigest(store, 1), '0000000000000000']);
  for (const partitions of [undefined, [], [16], [1.5], Array.from({ length: digestPartitionsMax + 1 }, () => 0)]) {
    t.match(await serveDigests(store, { t: 'ae-digests', partitions }, 2 ** partitionBits), { t: 'ae-error', code: ErrorCode.badRequest });
  }
  t.match(await serveDigests(store, null, 16), { t: 'ae-error' });
});

t.test('matching partitions: equal digests only; an unanswered or wrong batch matches nothing', async (t) => {
  const mine = fakeStore(new Map([[1, entries(4, 'a')], [2, entries(4, 'a')], [3, entries(2, 'a')]]));
  const theirs = fakeStore(new Map([[1, entries(4, 'a')], [2, entries(4, 'b')]]));
  const calls: string[] = [];
  const call = async (peer: string, body: object): Promise<unknown> => {
    calls.push(peer);
    return serveDigests(theirs, body, 2 ** partitionBits);
  };
  t.same([...(await matchingPartitions(mine, call, 'n2', [1, 2, 3, 4]))].sort(), [1, 4], 'same data in 1 and (empty) 4');
  t.same(calls, ['n2'], 'one rpc for the batch');
  const many = Array.from({ length: 65 }, (_, i) => i % 16);
  calls.length = 0;
  await matchingPartitions(mine, call, 'n2', many);
  t.equal(calls.length, 2, 'batches of 64');
  t.same([...(await matchingPartitions(mine, async () => undefined, 'n2', [1]))], [], 'no answer: nothing matches');
  t.same([...(await matchingPartitions(mine, async () => ({ t: 'ae-digests-reply', digests: [] }), 'n2', [1]))], [], 'a short answer: nothing matches');
});
