/** Seeded random inputs for kernel tests. */

/** xorshift32 uniform in [-1, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

/** n values of r() * scale. */
export const randoms = (n: number, r: () => number, scale = 1) => Float32Array.from({ length: n }, () => r() * scale);
