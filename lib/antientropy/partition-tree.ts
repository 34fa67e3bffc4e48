/**
 * The Merkle tree of one partition (Dynamo §4.7; Cassandra's and Riak's hashtrees). Owned by
 * the shard that owns the partition, which feeds it on every write (`update`) and builds it
 * from a partition scan at start-up (`insert`); an exchange reads it. Pure, in memory, never
 * persisted: a restart rebuilds it from the store.
 *
 * Leaves are the 2^leafBits equal segments of the partition's token range — the token bits
 * right below the partition bits — so a leaf is a contiguous run of the engine's
 * (partition, token, key) order. Level `depth` holds the leaves; each level above groups
 * 2^fanoutBits children (the top level may group fewer when fanoutBits does not divide
 * leafBits); level 0 is the root.
 *
 *   leaf of a token = (token << partitionBits) >>> (32 − leafBits)
 *   node at level d above leaf l = l >>> (leafBits − bits(d)),  bits(d) = max(0, leafBits − (depth − d) · fanoutBits)
 *
 * Every node's hash is the XOR of the entry hashes (tree-hash.ts) of the keys below it, so a
 * write changes one leaf and its ancestors by the same delta: O(depth) word XORs, no
 * re-hashing of siblings, and the result does not depend on insertion order (an updated tree
 * equals a rebuilt one). The collision argument is in tree-hash.ts.
 *
 * Invariants: a node's hash equals the XOR of its children's (checked by `checkInvariants`,
 * O(size)); the tree only holds keys of its partition (asserted on every update). Memory:
 * 8 bytes per node, about 8 · 2^leafBits · 16/15 bytes (35 KiB at the default 4096 leaves).
 */

import { assert } from '../base/assert.js';
import { partitionOfToken, tokenOf } from '../base/hash.js';
import { limits } from '../base/limits.js';
import { entryHashInto, nodeHashBytes, writeU32, type ObjectHash } from './tree-hash.js';

/** What two replicas' trees must agree on before they can be compared. */
export interface TreeShape {
  readonly partitionBits: number;
  readonly leafBits: number;
  readonly fanoutBits: number;
}

export interface PartitionTreeOptions {
  readonly partition: number;
  readonly partitionBits: number;
  /** Default limits.merkleLeafBitsDefault. */
  readonly leafBits?: number;
  /** Default limits.merkleFanoutBitsDefault. */
  readonly fanoutBits?: number;
}

export class PartitionTree implements TreeShape {
  readonly partition: number;
  readonly partitionBits: number;
  readonly leafBits: number;
  readonly fanoutBits: number;
  /** The level of the leaves; 0 when the root is the only leaf. */
  readonly depth: number;
  /** Per level: [hi, lo] words of each node. */
  readonly #levels: Uint32Array[] = [];
  readonly #bits: number[] = [];
  readonly #scratchOld = new Uint32Array(2);
  readonly #scratchNew = new Uint32Array(2);
  #entryCount = 0;

  constructor(options: PartitionTreeOptions) {
    const { partition, partitionBits } = options;
    const leafBits = options.leafBits ?? limits.merkleLeafBitsDefault;
    const fanoutBits = options.fanoutBits ?? limits.merkleFanoutBitsDefault;
    if (!Number.isInteger(partitionBits) || partitionBits < 0 || partitionBits > limits.partitionBitsMax) {
      throw new RangeError(`partitionBits must be an integer in [0, ${limits.partitionBitsMax}]`);
    }
    if (!Number.isInteger(partition) || partition < 0 || partition >= 2 ** partitionBits) throw new RangeError('partition out of range');
    if (!Number.isInteger(leafBits) || leafBits < 0 || leafBits > limits.merkleLeafBitsMax || partitionBits + leafBits > 32) {
      throw new RangeError(`leafBits must be an integer in [0, ${limits.merkleLeafBitsMax}] with partitionBits + leafBits <= 32`);
    }
    if (!Number.isInteger(fanoutBits) || fanoutBits < 1 || fanoutBits > limits.merkleFanoutBitsMax) {
      throw new RangeError(`fanoutBits must be an integer in [1, ${limits.merkleFanoutBitsMax}]`);
    }
    this.partition = partition;
    this.partitionBits = partitionBits;
    this.leafBits = leafBits;
    this.fanoutBits = fanoutBits;
    this.depth = Math.ceil(leafBits / fanoutBits);
    for (let level = 0; level <= this.depth; level++) {
      const bits = Math.max(0, leafBits - (this.depth - level) * fanoutBits);
      this.#bits.push(bits);
      this.#levels.push(new Uint32Array(2 * 2 ** bits));
    }
  }

  /** Keys the tree holds. */
  get entryCount(): number {
    return this.#entryCount;
  }

  /** Nodes at a level. */
  levelSize(level: number): number {
    this.#checkLevel(level);
    return 2 ** this.#bits[level]!;
  }

  /** The children of node `index` at `level`: indices [start, end) at level + 1. */
  childRange(level: number, index: number): [number, number] {
    assert(level < this.depth, 'a leaf has no children');
    this.#checkIndex(level, index);
    const shift = this.#bits[level + 1]! - this.#bits[level]!;
    return [index * 2 ** shift, (index + 1) * 2 ** shift];
  }

  leafOfToken(token: number): number {
    if (this.leafBits === 0) return 0;
    return ((token << this.partitionBits) >>> (32 - this.leafBits)) >>> 0;
  }

  /** Whether a key belongs to this tree's partition. */
  holdsToken(token: number): boolean {
    return partitionOfToken(token, this.partitionBits) === this.partition;
  }

  /** A key's state changed from `oldHash` to `newHash`; undefined: absent (insert, remove). */
  update(key: Uint8Array, oldHash: ObjectHash | undefined, newHash: ObjectHash | undefined): void {
    if (oldHash === undefined && newHash === undefined) return;
    const token = tokenOf(key);
    assert(this.holdsToken(token), 'key of another partition fed to a partition tree');
    let hi = 0;
    let lo = 0;
    if (oldHash !== undefined) {
      const old = entryHashInto(key, oldHash, this.#scratchOld);
      hi ^= old[0]!;
      lo ^= old[1]!;
    }
    if (newHash !== undefined) {
      const fresh = entryHashInto(key, newHash, this.#scratchNew);
      hi ^= fresh[0]!;
      lo ^= fresh[1]!;
    }
    this.#entryCount += (oldHash === undefined ? 1 : 0) - (newHash === undefined ? 1 : 0);
    assert(this.#entryCount >= 0, 'partition tree removed more keys than it holds');
    const leaf = this.leafOfToken(token);
    for (let level = 0; level <= this.depth; level++) {
      const node = leaf >>> (this.leafBits - this.#bits[level]!);
      const words = this.#levels[level]!;
      words[2 * node] ^= hi;
      words[2 * node + 1] ^= lo;
    }
  }

  insert(key: Uint8Array, objectHash: ObjectHash): void {
    this.update(key, undefined, objectHash);
  }

  remove(key: Uint8Array, objectHash: ObjectHash): void {
    this.update(key, objectHash, undefined);
  }

  /** Forgets every key (before a rebuild, or when the partition is dropped). */
  clear(): void {
    for (const words of this.#levels) words.fill(0);
    this.#entryCount = 0;
  }

  rootHash(): Uint8Array {
    return this.levelHashes(0, [0]);
  }

  /** The hashes of nodes at one level, 8 bytes each in the order asked. */
  levelHashes(level: number, indices: readonly number[]): Uint8Array {
    this.#checkLevel(level);
    const out = new Uint8Array(nodeHashBytes * indices.length);
    const words = this.#levels[level]!;
    for (let i = 0; i < indices.length; i++) {
      const index = indices[i]!;
      this.#checkIndex(level, index);
      writeU32(out, i * nodeHashBytes, words[2 * index]!);
      writeU32(out, i * nodeHashBytes + 4, words[2 * index + 1]!);
    }
    return out;
  }

  /** The hashes of every child (at level + 1) of each parent, parents in the order asked. */
  childHashes(level: number, parents: readonly number[]): Uint8Array {
    const indices: number[] = [];
    for (const parent of parents) {
      const [start, end] = this.childRange(level, parent);
      for (let child = start; child < end; child++) indices.push(child);
    }
    return this.levelHashes(level + 1, indices);
  }

  /** Whether another tree has the same shape (so that their hashes can be compared). */
  sameShape(shape: TreeShape): boolean {
    return shape.partitionBits === this.partitionBits && shape.leafBits === this.leafBits && shape.fanoutBits === this.fanoutBits;
  }

  /** Every interior node is the XOR of its children. O(size): tests and invariant checks. */
  checkInvariants(): void {
    for (let level = this.depth - 1; level >= 0; level--) {
      const parents = this.#levels[level]!;
      const children = this.#levels[level + 1]!;
      const ratio = children.length / parents.length;
      for (let node = 0; node < parents.length / 2; node++) {
        let hi = 0;
        let lo = 0;
        for (let child = node * ratio; child < (node + 1) * ratio; child++) {
          hi ^= children[2 * child]!;
          lo ^= children[2 * child + 1]!;
        }
        assert(parents[2 * node] === hi >>> 0 && parents[2 * node + 1] === lo >>> 0, `tree node ${level}/${node} is not the XOR of its children`);
      }
    }
  }

  #checkLevel(level: number): void {
    assert(Number.isInteger(level) && level >= 0 && level <= this.depth, 'tree level out of range');
  }

  #checkIndex(level: number, index: number): void {
    assert(Number.isInteger(index) && index >= 0 && index < 2 ** this.#bits[level]!, 'tree node index out of range');
  }
}
