/**
 * Randomness as an input. Every protocol decision that uses chance (probe order, gossip targets,
 * jitter, simulated loss) draws from an `Rng` handed to it, so a seed reproduces a run bit for bit.
 *
 * The generator is xoshiro128** (Blackman and Vigna): 128 bits of state, period 2^128 - 1,
 * fast in 32-bit integer arithmetic, which is what JavaScript does exactly (Math.imul, >>> 0).
 * It is not cryptographic; keys and nonces come from node:crypto, never from here.
 */

export interface Rng {
  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number;
  /** A float in [0, 1) with 32 bits of randomness. */
  next(): number;
  /** An integer in [0, maxExclusive); `maxExclusive` must be a positive integer <= 2^32. */
  int(maxExclusive: number): number;
  /** True with probability `p` (p <= 0 never, p >= 1 always; no draw is made in those cases). */
  chance(p: number): boolean;
  /** A uniformly chosen element; throws on an empty array. */
  pick<T>(items: readonly T[]): T;
  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[];
  /** An independent generator derived from this one's next draws and `label`. */
  fork(label: string): Rng;
}

/** 32-bit FNV-1a of a string's UTF-16 code units: a stable way to turn labels into seeds. */
export function hashString32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32 step: spreads one 32-bit seed over the state words (never all zero). */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class SeededRng implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** @param seed any number (its low 32 bits are used) or string (hashed) */
  constructor(seed: number | string) {
    const base = typeof seed === 'string' ? hashString32(seed) : seed >>> 0;
    const sm = { s: base };
    this.a = splitmix32(sm);
    this.b = splitmix32(sm);
    this.c = splitmix32(sm);
    this.d = splitmix32(sm);
    // xoshiro must not start from the all-zero state; splitmix32 makes that astronomically
    // unlikely, and this guard makes it impossible.
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  /** A generator with an explicit state (for known-answer tests); the state must not be all zero. */
  static fromState(a: number, b: number, c: number, d: number): SeededRng {
    if ((a | b | c | d) >>> 0 === 0) throw new RangeError('xoshiro128** state must not be all zero');
    const rng = new SeededRng(0);
    rng.a = a | 0;
    rng.b = b | 0;
    rng.c = c | 0;
    rng.d = d | 0;
    return rng;
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  next(): number {
    return this.nextUint32() / 4294967296;
  }

  int(maxExclusive: number): number {
    if (!Number.isInteger(maxExclusive) || maxExclusive <= 0 || maxExclusive > 4294967296) {
      throw new RangeError(`int(maxExclusive): expected an integer in [1, 2^32], got ${maxExclusive}`);
    }
    // Rejection sampling removes the modulo bias that `% maxExclusive` would have.
    const limit = 4294967296 - (4294967296 % maxExclusive);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % maxExclusive;
  }

  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick(): the array is empty');
    return items[this.int(items.length)] as T;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  fork(label: string): Rng {
    const mixed = (this.nextUint32() ^ hashString32(label)) >>> 0;
    const child = new SeededRng(mixed);
    // Fold in a second draw so that forks with equal labels from nearby states still differ.
    child.a ^= this.nextUint32();
    if ((child.a | child.b | child.c | child.d) === 0) child.d = 1;
    return child;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A generator seeded from the platform's cryptographic source: for production shells. */
export function randomlySeededRng(): Rng {
  const words = new Uint32Array(1);
  globalThis.crypto.getRandomValues(words);
  return new SeededRng(words[0] as number);
}

/** The murmur3 32-bit finaliser: spreads every input bit over the output (for digests, not security). */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
