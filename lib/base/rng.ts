/**
 * Seeded randomness. Everything random in ringkv (gossip peer choice, jitter, torn-write
 * lengths in the crash simulator) draws from an `Rng` passed in, so a failing run replays
 * from its seed. The generator is xoshiro128** (Blackman and Vigna), seeded by splitmix32.
 */

export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, bound). */
  int(bound: number): number;
  /** `length` random bytes. */
  bytes(length: number): Uint8Array;
}

function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [state, (z ^ (z >>> 16)) >>> 0];
}

export class SeededRng implements Rng {
  readonly seed: number;
  #s = new Uint32Array(4);

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new TypeError('seed must be an integer');
    this.seed = seed;
    let state = seed | 0;
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(state);
      state = next;
      this.#s[i] = out;
    }
  }

  #nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  next(): number {
    return this.#nextUint32() / 4294967296;
  }

  int(bound: number): number {
    if (!(bound > 0) || !Number.isInteger(bound)) throw new RangeError('bound must be a positive integer');
    return Math.floor(this.next() * bound);
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.#nextUint32() & 0xff;
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A seed for a randomized test or a simulation: RINGKV_SEED if set, else fresh. */
export function seedFromEnvironment(): number {
  const fromEnv = process.env.RINGKV_SEED;
  if (fromEnv !== undefined && fromEnv !== '') return Number.parseInt(fromEnv, 10) | 0;
  return (Math.random() * 0x7fffffff) | 0;
}
