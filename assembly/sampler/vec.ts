// SIMD helpers over f32 rows whose length is a multiple of 16 (the facade pads with -inf).
import { NEG_INF } from './layout';

/** Largest value of f32[n] (n a multiple of 16); NaN is skipped (pmax keeps the accumulator). */
export function maxOf(x: usize, n: i32): f32 {
  let a0 = f32x4.splat(NEG_INF);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  for (let i: usize = 0; i < <usize>n; i += 16) {
    a0 = f32x4.pmax(a0, v128.load(x + (i << 2)));
    a1 = f32x4.pmax(a1, v128.load(x + (i << 2), 16));
    a2 = f32x4.pmax(a2, v128.load(x + (i << 2), 32));
    a3 = f32x4.pmax(a3, v128.load(x + (i << 2), 48));
  }
  const acc = f32x4.pmax(f32x4.pmax(a0, a1), f32x4.pmax(a2, a3));
  return max(max(f32x4.extract_lane(acc, 0), f32x4.extract_lane(acc, 1)), max(f32x4.extract_lane(acc, 2), f32x4.extract_lane(acc, 3)));
}

/** Smallest value >= floor in f32[n] (n a multiple of 16): the lowest survivor. */
export function minSurvivor(x: usize, n: i32, floor: f32): f32 {
  const vf = f32x4.splat(floor);
  const inf = f32x4.splat(Infinity);
  let acc = inf;
  for (let i: usize = 0; i < <usize>n; i += 4) {
    const l = v128.load(x + (i << 2));
    acc = f32x4.pmin(acc, v128.bitselect(l, inf, f32x4.ge(l, vf)));
  }
  return min(min(f32x4.extract_lane(acc, 0), f32x4.extract_lane(acc, 1)), min(f32x4.extract_lane(acc, 2), f32x4.extract_lane(acc, 3)));
}

/** argmax of f32[n] (n a multiple of 4), ties to the lowest index (torch.argmax); 0 when nothing compares. */
export function argmax(x: usize, n: i32): i32 {
  const m = f32x4.splat(maxOf(x, n));
  for (let i: usize = 0; i < <usize>n; i += 4) {
    const mask = i32x4.bitmask(f32x4.eq(v128.load(x + (i << 2)), m));
    if (mask != 0) return <i32>(i + <usize>ctz(mask));
  }
  return 0;
}

/** Number of entries of f32[n] (n a multiple of 16) that are >= x. */
export function countGe(a: usize, n: i32, x: f32): i32 {
  const vx = f32x4.splat(x);
  let a0 = i32x4.splat(0);
  let a1 = a0;
  for (let i: usize = 0; i < <usize>n; i += 16) {
    const at = a + (i << 2);
    a0 = i32x4.sub(a0, i32x4.add(f32x4.ge(v128.load(at), vx), f32x4.ge(v128.load(at, 16), vx)));
    a1 = i32x4.sub(a1, i32x4.add(f32x4.ge(v128.load(at, 32), vx), f32x4.ge(v128.load(at, 48), vx)));
  }
  const acc = i32x4.add(a0, a1);
  return i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3);
}

/** sum of exp(x_i - m) over f32[n] (n a multiple of 16), four exp4 chains at a time, accumulated in f64. */
export function sumExp(x: usize, n: i32, m: f32): f64 {
  const vm = f32x4.splat(m);
  let acc = f64x2.splat(0);
  for (let i: usize = 0; i < <usize>n; i += 16) {
    const e0 = exp4(f32x4.sub(v128.load(x + (i << 2)), vm));
    const e1 = exp4(f32x4.sub(v128.load(x + (i << 2), 16), vm));
    const e2 = exp4(f32x4.sub(v128.load(x + (i << 2), 32), vm));
    const e3 = exp4(f32x4.sub(v128.load(x + (i << 2), 48), vm));
    const e = f32x4.add(f32x4.add(e0, e1), f32x4.add(e2, e3));
    acc = f64x2.add(acc, f64x2.add(f64x2.promote_low_f32x4(e), f64x2.promote_low_f32x4(f32x4.shuffle(e, e, 2, 3, 0, 1))));
  }
  return f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
}

/** Fills f32[n] with x. */
export function fill(p: usize, n: i32, x: f32): void {
  const vx = f32x4.splat(x);
  let i: usize = 0;
  for (; i + 4 <= <usize>n; i += 4) v128.store(p + (i << 2), vx);
  for (; i < <usize>n; i++) store<f32>(p + (i << 2), x);
}

/** exp4's lower bound: below it (and for -inf and NaN) exp4 gives +0. */
export const EXP_MIN: f32 = -87.33654;

/** 1.5 * 2^23: adding it to |y| < 2^22 leaves round(y) (ties to even) in the low mantissa bits. */
export const MAGIC: f32 = 12582912;

/**
 * e^x on 4 lanes for x <= 88 (cephes expf: Cody-Waite reduction by ln 2, degree-5 minimax; about 1 ulp); the
 * sampler's x are <= 0, the CPU backend's kernels (assembly/cpu/ops.ts) clamp theirs to 88. Lanes below -87.3 (where
 * e^x leaves the normal range), -inf and NaN give 0. Only ops that map to one or two x86/Arm instructions: pmax, and
 * the MAGIC trick instead of nearest and trunc_sat (several instructions each).
 */
/**
 * exp4's constants, each in all 4 lanes, in static memory: V8 (12-13) builds every v128 constant anew at each use (a
 * 64-bit move and two shuffles, in the loop), a load from here is one instruction.
 */
const EXP_CONSTS: usize = memory.data<f32>([
  EXP_MIN, EXP_MIN, EXP_MIN, EXP_MIN,
  1.44269504088896341, 1.44269504088896341, 1.44269504088896341, 1.44269504088896341,
  MAGIC, MAGIC, MAGIC, MAGIC,
  0.693359375, 0.693359375, 0.693359375, 0.693359375,
  -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, -2.12194440e-4,
  1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4,
  1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3,
  8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3,
  4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2,
  1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1,
  5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1,
  1, 1, 1, 1, // also 127 << 23, the exponent bias, as bits
], 16);

// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  const c = EXP_CONSTS;
  const min = v128.load(c);
  const live = f32x4.ge(x, min);
  const xc = f32x4.pmax(min, x);
  const magic = v128.load(c, 32);
  const t = f32x4.add(f32x4.mul(xc, v128.load(c, 16)), magic);
  const n = f32x4.sub(t, magic); // round(x / ln 2), in [-126, 0]
  let r = f32x4.sub(xc, f32x4.mul(n, v128.load(c, 48)));
  r = f32x4.sub(r, f32x4.mul(n, v128.load(c, 64)));
  let y = v128.load(c, 80);
  y = f32x4.add(f32x4.mul(y, r), v128.load(c, 96));
  y = f32x4.add(f32x4.mul(y, r), v128.load(c, 112));
  y = f32x4.add(f32x4.mul(y, r), v128.load(c, 128));
  y = f32x4.add(f32x4.mul(y, r), v128.load(c, 144));
  y = f32x4.add(f32x4.mul(y, r), v128.load(c, 160));
  const one = v128.load(c, 176);
  y = f32x4.add(f32x4.add(f32x4.mul(y, f32x4.mul(r, r)), r), one);
  // 2^n as float bits: n's low bits sit in t's mantissa; shifted into the exponent field, plus the bias (1.0f's bits).
  const scale = i32x4.add(i32x4.shl(t, 23), one);
  return v128.and(f32x4.mul(y, scale), live);
}
