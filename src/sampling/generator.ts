/**
 * A request's own seeded random generator: xoshiro128** (Blackman & Vigna), seeded through splitmix32, so that a
 * `seed` gives the same draws in Node and in browsers whatever else runs in the batch. The CPU sampler
 * (assembly/sampler.ts) steps the same state in wasm: the facade copies `state` in before a step and back after.
 *
 * @example
 *   const gen = new Generator(42);
 *   gen.uniform(); // 0 <= u < 1, the same on every platform
 *   const fresh = Generator.random(); // requests without a seed
 */
export class Generator {
  /** The 128-bit state, four u32 words (never all zero). Read and written by the sampler. */
  readonly state = new Uint32Array(4);

  constructor(seed: number) {
    // splitmix32 spreads the seed (any integer, also negative or > 2^32) over the 128-bit state.
    let x = (Math.floor(seed) % 4294967296) >>> 0;
    let hi = Math.floor(seed / 4294967296) >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9 + hi) >>> 0;
      hi = 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.state[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.state[0] | this.state[1] | this.state[2] | this.state[3]) === 0) this.state[0] = 1;
  }

  /** A fresh generator seeded from the platform's entropy (`crypto.getRandomValues`, never Math.random). */
  static random(): Generator {
    const a = new Uint32Array(2);
    globalThis.crypto.getRandomValues(a);
    return new Generator(a[0] + a[1] * 2 ** 21);
  }

  /** Next 32 random bits. */
  nextU32(): number {
    const s = this.state;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits (two draws; the sampler's draw is exactly this). */
  uniform(): number {
    return ((this.nextU32() >>> 5) * 67108864 + (this.nextU32() >>> 6)) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
