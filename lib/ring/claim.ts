/**
 * Claim: which member owns each of the Q partitions (its primary owner, "vnode").
 *
 * The assignment is a pure function of (member ids, weights, Q), computed the same way on
 * every node, so nodes that see the same members agree on the ring with no extra round.
 *
 * Algorithm: balanced weighted rendezvous hashing.
 *  1. Quotas. Member j gets q_j = Q·w_j/Σw partitions, rounded by largest remainder (ties to
 *     the lower canonical index), so Σq = Q and every share is within one partition of its
 *     weight share: the ±10% balance property holds whenever Q·w/Σw ≥ 10.
 *  2. Scores. Partition p rates member j by the weighted rendezvous score
 *     ln(u_pj)/w_j, u_pj = (murmur3(le32(p), seed_j) + 0.5)/2^32, seed_j = murmur3(utf8(id_j),
 *     claimSeed) (Thaler & Ravishankar's highest random weight, weighted as in Resch's
 *     "weighted rendezvous"; the highest score wins with probability w_j/Σw).
 *  3. Assignment. The unique stable assignment under the quotas: no partition p and member j
 *     such that p rates j above its owner and j has a partition it rates below p. Computed by
 *     partition-proposing deferred acceptance (Gale & Shapley 1962): each partition proposes
 *     to members best score first, each member keeps its q_j best proposals. Ties (equal
 *     scores) go to the lower member index, and a member prefers the lower partition index,
 *     so the result is one total order's stable matching and independent of proposal order.
 *
 * Why this and not Riak's claim or Ketama: plain rendezvous hashing moves exactly the new or
 * departed member's partitions but is only binomially balanced (±30% at 100 partitions per
 * member); Ketama needs hundreds of tokens per weight unit for ±10%; Riak's claim depends on the
 * previous ring, so it is not a function of the members. The quotas make balance exact, and
 * the stable assignment departs from pure rendezvous only where a quota binds.
 *
 * What it costs in movement: adding or removing a member with share m of n members moves m
 * partitions (the minimum) plus a correction for the binomial mismatch between what
 * rendezvous takes from each member and what its quota gives up: about 0.55·sqrt(m·n), at
 * most 1.5·sqrt(m·n) in 10^4 random topologies (Q 256 to 4096, up to 100 members). As
 * m·n ≈ Q·w/w̄, the ratio to the minimum is about 1 + 0.55·n/sqrt(Q): 1.2 for 12 members at
 * Q = 1024 (at most 1.36 seen for m ≥ 100), 1.3 for 100 members at Q = 2^16, but 3.4 for 100
 * members at Q = 1024 (10 partitions each). Pick Q ≥ 4·n² where movement matters. We know of
 * no scheme that is exactly balanced, memoryless and exactly minimal at once; this one keeps
 * the first two.
 *
 * Cost: Q·n·(1 + r) score evaluations (one murmur3 and a short series each), r the number of
 * rejections per partition (0.05 at 100 partitions per member, 0.8 at 10); O(Q + n) memory,
 * no score matrix. 100 members, Q = 1024: about 5 ms; Q = 2^16: about 250 ms.
 *
 * Determinism across engines and platforms: the logarithm is a fixed series using only
 * + − × ÷ (correctly rounded in every IEEE-754 engine), never Math.log, whose last bit may
 * differ between JavaScript engines. Frozen: claimSeed, the score formula and the tie rules
 * (changing any of them moves partitions in every cluster; bump placementVersion).
 */

import { assert, invariantsEnabled } from '../base/assert.js';
import { murmur3 } from '../base/hash.js';

/** Frozen: the seed hashing a member id into its rendezvous seed ('ring'). */
export const claimSeed = 0x72696e67;

const ln2 = 0.6931471805599453;
/** 2^k for k in [-1, 31], built by exact doubling. */
const powersOfTwo: number[] = [0.5];
for (let k = 0; k <= 31; k++) powersOfTwo.push(2 ** k);

/**
 * ln((h + 0.5) / 2^32) for a uint32 h, with only + − × ÷, so every engine gets the same bits.
 * x = m·2^e with m in [1, 2); ln m = 2·atanh(z), z = (m−1)/(m+1) ≤ 1/3, series to z^21
 * (error below 1e-12: placement needs a deterministic order, not the last digit).
 */
export function lnOfHash(h: number): number {
  const e = h === 0 ? -1 : 31 - Math.clz32(h);
  const m = (h + 0.5) / powersOfTwo[e + 1]!;
  const z = (m - 1) / (m + 1);
  const z2 = z * z;
  let series = 1 / 21;
  for (let k = 9; k >= 0; k--) series = 1 / (2 * k + 1) + z2 * series;
  return (e - 32) * ln2 + 2 * z * series;
}

/**
 * Quotas by largest remainder: q_j = floor(Q·w_j/W) plus one for the members with the largest
 * remainders (ties to the lower index). W is summed in index order, so the result depends only
 * on the canonical member order.
 */
export function quotasOf(weights: readonly number[], partitionCount: number): Int32Array {
  const n = weights.length;
  assert(n > 0, 'quotas of no members');
  let total = 0;
  for (const weight of weights) total += weight;
  const quotas = new Int32Array(n);
  const remainders = new Float64Array(n);
  let assigned = 0;
  for (let j = 0; j < n; j++) {
    const ideal = (partitionCount * weights[j]!) / total;
    quotas[j] = Math.floor(ideal);
    remainders[j] = ideal - quotas[j]!;
    assigned += quotas[j]!;
  }
  const extra = partitionCount - assigned;
  assert(extra >= 0 && extra <= n, 'largest-remainder rounding out of range');
  const order = Array.from({ length: n }, (_, j) => j);
  order.sort((a, b) => remainders[b]! - remainders[a]! || a - b);
  for (let k = 0; k < extra; k++) quotas[order[k]!]! += 1;
  return quotas;
}

/** Weighted rendezvous scores of (partition, member) pairs, computed on demand. */
class Scorer {
  readonly #seeds: Int32Array;
  readonly #weights: readonly number[];
  readonly #word = new Uint8Array(4);

  constructor(ids: readonly string[], weights: readonly number[]) {
    const encoder = new TextEncoder();
    this.#seeds = Int32Array.from(ids, (id) => murmur3(encoder.encode(id), claimSeed) | 0);
    this.#weights = weights;
  }

  score(partition: number, member: number): number {
    const word = this.#word;
    word[0] = partition & 0xff;
    word[1] = (partition >>> 8) & 0xff;
    word[2] = (partition >>> 16) & 0xff;
    word[3] = (partition >>> 24) & 0xff;
    return lnOfHash(murmur3(word, this.#seeds[member]! >>> 0)) / this.#weights[member]!;
  }
}

/**
 * Per-member bounded min-heaps of held partitions in two flat arrays: member j's heap lives
 * in slots [start_j, start_j + q_j). The root is the held partition j likes least.
 */
class Holdings {
  readonly partitions: Int32Array;
  readonly scores: Float64Array;
  readonly start: Int32Array;
  readonly size: Int32Array;

  constructor(readonly quotas: Int32Array, partitionCount: number) {
    this.partitions = new Int32Array(partitionCount);
    this.scores = new Float64Array(partitionCount);
    this.start = new Int32Array(quotas.length);
    this.size = new Int32Array(quotas.length);
    let offset = 0;
    for (let j = 0; j < quotas.length; j++) {
      this.start[j] = offset;
      offset += quotas[j]!;
    }
    assert(offset === partitionCount, 'quotas must sum to Q');
  }

  /** Whether slot a is liked less than slot b (lower score, or equal score and higher partition). */
  #weaker(a: number, b: number): boolean {
    const sa = this.scores[a]!;
    const sb = this.scores[b]!;
    return sa < sb || (sa === sb && this.partitions[a]! > this.partitions[b]!);
  }

  #swap(a: number, b: number): void {
    const p = this.partitions[a]!;
    const s = this.scores[a]!;
    this.partitions[a] = this.partitions[b]!;
    this.scores[a] = this.scores[b]!;
    this.partitions[b] = p;
    this.scores[b] = s;
  }

  /**
   * Member j considers partition p with score s. Returns -1 if it takes p into a free slot,
   * the partition it lets go of if p displaces its weakest, or p itself if p is refused.
   */
  propose(j: number, p: number, s: number): number {
    const base = this.start[j]!;
    const size = this.size[j]!;
    if (size < this.quotas[j]!) {
      let i = size;
      this.partitions[base + i] = p;
      this.scores[base + i] = s;
      this.size[j] = size + 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!this.#weaker(base + i, base + parent)) break;
        this.#swap(base + i, base + parent);
        i = parent;
      }
      return -1;
    }
    const weakestScore = this.scores[base]!;
    const weakest = this.partitions[base]!;
    if (s < weakestScore || (s === weakestScore && p > weakest)) return p;
    this.partitions[base] = p;
    this.scores[base] = s;
    this.#siftDown(base, size);
    return weakest;
  }

  #siftDown(base: number, size: number): void {
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) return;
      const right = left + 1;
      const child = right < size && this.#weaker(base + right, base + left) ? right : left;
      if (!this.#weaker(base + child, base + i)) return;
      this.#swap(base + child, base + i);
      i = child;
    }
  }
}

/**
 * The owner (index into `ids`) of every partition. `ids` must be distinct and in canonical
 * order; `weights` positive. Returns an Int32Array of length 2^partitionBits.
 */
export function claimPartitions(ids: readonly string[], weights: readonly number[], partitionCount: number): Int32Array {
  const n = ids.length;
  assert(n > 0 && weights.length === n, 'claim needs members with weights');
  const quotas = quotasOf(weights, partitionCount);
  const scorer = new Scorer(ids, weights);
  const holdings = new Holdings(quotas, partitionCount);
  const lastScore = new Float64Array(partitionCount).fill(Infinity);
  const lastMember = new Int32Array(partitionCount).fill(-1);
  const pending = new Int32Array(partitionCount);
  for (let i = 0; i < partitionCount; i++) pending[i] = partitionCount - 1 - i;
  let pendingCount = partitionCount;
  while (pendingCount > 0) {
    const p = pending[pendingCount - 1]!;
    const afterScore = lastScore[p]!;
    const afterMember = lastMember[p]!;
    let best = -1;
    let bestScore = -Infinity;
    for (let j = 0; j < n; j++) {
      if (quotas[j] === 0) continue;
      const s = scorer.score(p, j);
      const untried = s < afterScore || (s === afterScore && j > afterMember);
      if (untried && (best < 0 || s > bestScore)) {
        best = j;
        bestScore = s;
      }
    }
    assert(best >= 0, 'a partition was refused by every member');
    lastScore[p] = bestScore;
    lastMember[p] = best;
    const released = holdings.propose(best, p, bestScore);
    if (released < 0) pendingCount--;
    else pending[pendingCount - 1] = released;
  }
  const owners = ownersOf(holdings, partitionCount);
  if (invariantsEnabled()) assertStable(scorer, holdings, owners);
  return owners;
}

/** O(Q·n): no partition prefers a member that would rather hold it than its weakest. */
function assertStable(scorer: Scorer, holdings: Holdings, owners: Int32Array): void {
  const n = holdings.quotas.length;
  for (let p = 0; p < owners.length; p++) {
    const owner = owners[p]!;
    const ownerScore = scorer.score(p, owner);
    for (let j = 0; j < n; j++) {
      if (j === owner || holdings.quotas[j] === 0) continue;
      const s = scorer.score(p, j);
      if (s < ownerScore || (s === ownerScore && j > owner)) continue;
      const weakestScore = holdings.scores[holdings.start[j]!]!;
      const weakest = holdings.partitions[holdings.start[j]!]!;
      assert(weakestScore > s || (weakestScore === s && weakest < p), 'claim is not a stable assignment');
    }
  }
}

function ownersOf(holdings: Holdings, partitionCount: number): Int32Array {
  const owners = new Int32Array(partitionCount).fill(-1);
  for (let j = 0; j < holdings.quotas.length; j++) {
    assert(holdings.size[j] === holdings.quotas[j], 'a member ended below its quota');
    const base = holdings.start[j]!;
    for (let i = 0; i < holdings.size[j]!; i++) owners[holdings.partitions[base + i]!] = j;
  }
  for (let p = 0; p < partitionCount; p++) assert(owners[p]! >= 0, 'a partition has no owner');
  return owners;
}
