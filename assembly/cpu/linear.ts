// Matmul of f32 activations with a weight matrix in its storage format, rows read packed:
//   out[t, n] (+)= sum_k x[t, k] W[n, k]        x: f32 [T, ldx], W: [N, K] (row n at w + n * rowBytes), out: f32 [T, ldo]
// `linear` takes the dense formats (FMT_F32, FMT_F16: f32 multiply-add is their only exact product); the quantized
// ones (q8_0, q4_0, q4_k, iq4_nl, iq4_xs) go through linear-q8.ts, over 8-bit activations. `dequantRow` reads
// every format (embedding rows).
//
// Two paths:
// - GEMV (T < GEMM_MIN_T, decode): rows go four at a time, sharing each load of x.
// - GEMM (prefill): per panel of 4 rows, f16 rows are converted once into `panel` (f32 [4, K], in L1/L2: the
//   packing step of a BLAS GEMM), then a 4 x 2 register-blocked micro-kernel (8 f32x4 accumulators) runs every
//   pair of tokens over it. f32 rows are used in place.

import { FMT_F16, FMT_F32, FMT_IQ4_NL, FMT_IQ4_XS, FMT_Q4_0, FMT_Q4_K, FMT_Q8_0, GEMM_MIN_T, GROUP_BLOCK, grouped, groupNibbles, groupScale, halfToF32, hsum, iq4Table, iq4xsScale, scaleMinK4, store4 } from './blocks';

/** Four f16 at p as f32x4 (halfToF32 per lane). */
@inline function halves4(p: usize): v128 {
  const h = v128.load16x4_u(p);
  const m = v128.and(h, i32x4.splat(0x7fff));
  const normal = i32x4.add(i32x4.shl(m, 13), i32x4.splat(0x38000000));
  const sub = f32x4.mul(f32x4.convert_i32x4_s(m), f32x4.splat(reinterpret<f32>(0x33800000)));
  const mag = v128.bitselect(sub, normal, i32x4.lt_s(m, i32x4.splat(0x400)));
  return v128.or(mag, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}


/** i16x8 lanes 0..3 / 4..7 as f32x4. */
@inline function lo16(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v));
}
@inline function hi16(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(v));
}

// ---- Dot products of one f32 / f16 row with x (K elements) ----

function dotF32(w: usize, x: usize, K: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let k = 0;
  for (; k + 8 <= K; k += 8) {
    const o = <usize>k << 2;
    a0 = f32x4.add(a0, f32x4.mul(v128.load(w + o), v128.load(x + o)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(w + o, 16), v128.load(x + o, 16)));
  }
  let s = hsum(f32x4.add(a0, a1));
  for (; k < K; k++) s += load<f32>(w + (<usize>k << 2)) * load<f32>(x + (<usize>k << 2));
  return s;
}

function dotF16(w: usize, x: usize, K: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let k = 0;
  for (; k + 8 <= K; k += 8) {
    a0 = f32x4.add(a0, f32x4.mul(halves4(w + (<usize>k << 1)), v128.load(x + (<usize>k << 2))));
    a1 = f32x4.add(a1, f32x4.mul(halves4(w + (<usize>k << 1) + 8), v128.load(x + (<usize>k << 2), 16)));
  }
  let s = hsum(f32x4.add(a0, a1));
  for (; k < K; k++) s += halfToF32(load<u16>(w + (<usize>k << 1))) * load<f32>(x + (<usize>k << 2));
  return s;
}

/** Four f32 rows (stride K) dotted with x at once: each x load serves four rows. */
function dot4F32(out: usize, w: usize, x: usize, K: i32, acc: bool): void {
  const stride = <usize>K << 2;
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const o = <usize>k << 2;
    const xv = v128.load(x + o);
    a0 = f32x4.add(a0, f32x4.mul(v128.load(w + o), xv));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(w + stride + o), xv));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(w + 2 * stride + o), xv));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(w + 3 * stride + o), xv));
  }
  let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  for (; k < K; k++) {
    const o = <usize>k << 2;
    const xv = load<f32>(x + o);
    s0 += load<f32>(w + o) * xv;
    s1 += load<f32>(w + stride + o) * xv;
    s2 += load<f32>(w + 2 * stride + o) * xv;
    s3 += load<f32>(w + 3 * stride + o) * xv;
  }
  store4(out, s0, s1, s2, s3, acc);
}

/** Four f16 rows (stride 2K bytes) dotted with x at once. */
function dot4F16(out: usize, w: usize, x: usize, K: i32, acc: bool): void {
  const stride = <usize>K << 1;
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const o = <usize>k << 1;
    const xv = v128.load(x + (<usize>k << 2));
    a0 = f32x4.add(a0, f32x4.mul(halves4(w + o), xv));
    a1 = f32x4.add(a1, f32x4.mul(halves4(w + stride + o), xv));
    a2 = f32x4.add(a2, f32x4.mul(halves4(w + 2 * stride + o), xv));
    a3 = f32x4.add(a3, f32x4.mul(halves4(w + 3 * stride + o), xv));
  }
  let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  for (; k < K; k++) {
    const o = <usize>k << 1;
    const xv = load<f32>(x + (<usize>k << 2));
    s0 += halfToF32(load<u16>(w + o)) * xv;
    s1 += halfToF32(load<u16>(w + stride + o)) * xv;
    s2 += halfToF32(load<u16>(w + 2 * stride + o)) * xv;
    s3 += halfToF32(load<u16>(w + 3 * stride + o)) * xv;
  }
  store4(out, s0, s1, s2, s3, acc);
}

// ---- Dequantization of whole rows (the GEMM's panels, embeddings) ----

/**
 * Row n of the N-row matrix at w (K elements of format fmt, rowBytes each; q4_0 / iq4_nl in groups of 4 rows,
 * blocks.ts) as f32 into out[0 .. K).
 */
export function dequantRow(fmt: i32, out: usize, w: usize, rowBytes: i32, N: i32, n: i32, K: i32): void {
  const rb = <usize>rowBytes;
  if (grouped(fmt) && n < (N & ~3)) {
    const g = w + <usize>(n & ~3) * rb;
    dequant18(fmt, out, groupScale(g, 0, n & 3), groupNibbles(g, 0, n & 3), GROUP_BLOCK, fmt == FMT_Q4_0 ? 0x88 : 0, K);
  } else {
    dequantAt(fmt, out, w + <usize>n * rb, K);
  }
}

/**
 * A row of the 18-byte formats (q4_0, iq4_nl) as f32 into out[0 .. K): block b's f16 d at s + b bs, its 16 nibble
 * bytes at q + b bs, XOR `flip` (bs: 18 in the file's rows, GROUP_BLOCK in a group's; flip: 0x88 for a group's q4_0).
 */
function dequant18(fmt: i32, out: usize, s: usize, q: usize, bs: usize, flip: i32, K: i32): void {
  const mask = i8x16.splat(0x0f);
  const eight = i8x16.splat(8);
  const table = iq4Table();
  const flips = i8x16.splat(<i8>flip);
  for (let b = 0; b < K >> 5; b++) {
    // d KV[q] (iq4_nl): f32 products as the CPU reference's, exact.
    const d = f32x4.splat(halfToF32(load<u16>(s + <usize>b * bs)));
    const v = v128.xor(v128.load(q + <usize>b * bs), flips);
    const o = out + (<usize>b << 7);
    if (fmt == FMT_Q4_0) {
      store16(o, i8x16.sub(v128.and(v, mask), eight), d);
      store16(o + 64, i8x16.sub(i8x16.shr_u(v, 4), eight), d);
    } else {
      store16(o, i8x16.swizzle(table, v128.and(v, mask)), d);
      store16(o + 64, i8x16.swizzle(table, i8x16.shr_u(v, 4)), d);
    }
  }
}

/** The row at w (K elements of format fmt, in the file's layout) as f32 into out[0 .. K). */
function dequantAt(fmt: i32, out: usize, w: usize, K: i32): void {
  if (fmt == FMT_F32) {
    memory.copy(out, w, <usize>K << 2);
  } else if (fmt == FMT_F16) {
    let k = 0;
    for (; k + 4 <= K; k += 4) v128.store(out + (<usize>k << 2), halves4(w + (<usize>k << 1)));
    for (; k < K; k++) store<f32>(out + (<usize>k << 2), halfToF32(load<u16>(w + (<usize>k << 1))));
  } else if (fmt == FMT_Q8_0) {
    for (let b = 0; b < K >> 5; b++) {
      const p = w + <usize>b * 34;
      const d = f32x4.splat(halfToF32(load<u16>(p)));
      const o = out + (<usize>b << 7);
      for (let c = 0; c < 4; c++) {
        const q = v128.load8x8_s(p + 2 + c * 8);
        v128.store(o + c * 32, f32x4.mul(lo16(q), d));
        v128.store(o + c * 32 + 16, f32x4.mul(hi16(q), d));
      }
    }
  } else if (fmt == FMT_Q4_0 || fmt == FMT_IQ4_NL) {
    dequant18(fmt, out, w, w + 2, 18, 0, K);
  } else if (fmt == FMT_Q4_K) {
    const mask = i8x16.splat(0x0f);
    for (let b = 0; b < K >> 8; b++) {
      const p = w + <usize>b * 144;
      const d = halfToF32(load<u16>(p));
      const dmin = halfToF32(load<u16>(p + 2));
      for (let g = 0; g < 4; g++) {
        const o = out + (<usize>(b * 256 + g * 64) << 2);
        const q0 = v128.load(p + 16 + g * 32);
        const q1 = v128.load(p + 32 + g * 32);
        const sm1 = scaleMinK4(2 * g, p + 4);
        const sm2 = scaleMinK4(2 * g + 1, p + 4);
        const d1 = f32x4.splat(d * <f32>(sm1 & 0xff));
        const m1 = f32x4.splat(dmin * <f32>(sm1 >> 8));
        const d2 = f32x4.splat(d * <f32>(sm2 & 0xff));
        const m2 = f32x4.splat(dmin * <f32>(sm2 >> 8));
        store16m(o, v128.and(q0, mask), d1, m1);
        store16m(o + 64, v128.and(q1, mask), d1, m1);
        store16m(o + 128, i8x16.shr_u(q0, 4), d2, m2);
        store16m(o + 192, i8x16.shr_u(q1, 4), d2, m2);
      }
    }
  } else if (fmt == FMT_IQ4_XS) {
    // d (ls - 32) KV[q]: f32 products as the CPU reference's, exact.
    const mask = i8x16.splat(0x0f);
    const table = iq4Table();
    for (let c = 0; c < K >> 5; c++) {
      const p = w + <usize>(c >> 3) * 136;
      const q = p + 8 + (c & 7) * 16;
      const d = f32x4.splat(halfToF32(load<u16>(p)) * iq4xsScale(p, c & 7));
      const v = v128.load(q);
      const o = out + (<usize>c << 7);
      store16(o, i8x16.swizzle(table, v128.and(v, mask)), d);
      store16(o + 64, i8x16.swizzle(table, i8x16.shr_u(v, 4)), d);
    }
  }
}

/** 16 signed bytes q times d into 16 floats at o. */
@inline function store16(o: usize, q: v128, d: v128): void {
  const a = i16x8.extend_low_i8x16_s(q);
  const b = i16x8.extend_high_i8x16_s(q);
  v128.store(o, f32x4.mul(lo16(a), d));
  v128.store(o, f32x4.mul(hi16(a), d), 16);
  v128.store(o, f32x4.mul(lo16(b), d), 32);
  v128.store(o, f32x4.mul(hi16(b), d), 48);
}

/** 16 bytes q times d minus m into 16 floats at o. */
@inline function store16m(o: usize, q: v128, d: v128, m: v128): void {
  const a = i16x8.extend_low_i8x16_s(q);
  const b = i16x8.extend_high_i8x16_s(q);
  v128.store(o, f32x4.sub(f32x4.mul(lo16(a), d), m));
  v128.store(o, f32x4.sub(f32x4.mul(hi16(a), d), m), 16);
  v128.store(o, f32x4.sub(f32x4.mul(lo16(b), d), m), 32);
  v128.store(o, f32x4.sub(f32x4.mul(hi16(b), d), m), 48);
}

// ---- The GEMM micro-kernel: 4 f32 rows (stride K) x 2 tokens ----

/** out[t0 .. t0 + 1][n .. n + 3] over the 4 rows at w (f32, stride K) and tokens t0, t0 + 1 of x. */
function tile4x2(out: usize, ldo: usize, w: usize, x0: usize, x1: usize, K: i32, acc: bool): void {
  const stride = <usize>K << 2;
  let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a03 = f32x4.splat(0);
  let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0), a13 = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const o = <usize>k << 2;
    const u = v128.load(x0 + o);
    const v = v128.load(x1 + o);
    const w0 = v128.load(w + o);
    const w1 = v128.load(w + stride + o);
    const w2 = v128.load(w + 2 * stride + o);
    const w3 = v128.load(w + 3 * stride + o);
    a00 = f32x4.add(a00, f32x4.mul(w0, u));
    a01 = f32x4.add(a01, f32x4.mul(w1, u));
    a02 = f32x4.add(a02, f32x4.mul(w2, u));
    a03 = f32x4.add(a03, f32x4.mul(w3, u));
    a10 = f32x4.add(a10, f32x4.mul(w0, v));
    a11 = f32x4.add(a11, f32x4.mul(w1, v));
    a12 = f32x4.add(a12, f32x4.mul(w2, v));
    a13 = f32x4.add(a13, f32x4.mul(w3, v));
  }
  let s00 = hsum(a00), s01 = hsum(a01), s02 = hsum(a02), s03 = hsum(a03);
  let s10 = hsum(a10), s11 = hsum(a11), s12 = hsum(a12), s13 = hsum(a13);
  for (; k < K; k++) {
    const o = <usize>k << 2;
    const u = load<f32>(x0 + o);
    const v = load<f32>(x1 + o);
    const w0 = load<f32>(w + o), w1 = load<f32>(w + stride + o), w2 = load<f32>(w + 2 * stride + o), w3 = load<f32>(w + 3 * stride + o);
    s00 += w0 * u; s01 += w1 * u; s02 += w2 * u; s03 += w3 * u;
    s10 += w0 * v; s11 += w1 * v; s12 += w2 * v; s13 += w3 * v;
  }
  store4(out, s00, s01, s02, s03, acc);
  store4(out + ldo, s10, s11, s12, s13, acc);
}

/**
 * out[t, n] (+)= x[t, :] . W[n, :] for t < T, n < N.
 * @param out    f32 [T, ldo] (element offset 0 is out[0, 0] of this matrix's columns)
 * @param x      f32 [T, ldx]
 * @param w      N rows of `rowBytes` bytes in format fmt (FMT_F32 or FMT_F16)
 * @param panel  f32 scratch [4, K] (the GEMM's packed rows); unused for f32 weights and T < GEMM_MIN_T
 * @param acc    add to out (a residual) instead of overwriting it
 */
export function linear(fmt: i32, out: usize, ldo: i32, x: usize, ldx: i32, w: usize, rowBytes: i32, T: i32, N: i32, K: i32, acc: bool, panel: usize): void {
  const ldoB = <usize>ldo << 2;
  const ldxB = <usize>ldx << 2;
  const rb = <usize>rowBytes;
  const n4 = N & ~3;
  if (T < GEMM_MIN_T) {
    for (let t = 0; t < T; t++) {
      const xt = x + <usize>t * ldxB;
      const ot = out + <usize>t * ldoB;
      let n = 0;
      for (; n < n4; n += 4) {
        if (fmt == FMT_F32) dot4F32(ot + (<usize>n << 2), w + <usize>n * rb, xt, K, acc);
        else dot4F16(ot + (<usize>n << 2), w + <usize>n * rb, xt, K, acc);
      }
      for (; n < N; n++) {
        const s = fmt == FMT_F32 ? dotF32(w + <usize>n * rb, xt, K) : dotF16(w + <usize>n * rb, xt, K);
        const o = ot + (<usize>n << 2);
        store<f32>(o, acc ? load<f32>(o) + s : s);
      }
    }
    return;
  }
  const T2 = T & ~1;
  for (let n = 0; n < n4; n += 4) {
    let rows = w + <usize>n * rb;
    if (fmt == FMT_F16) {
      for (let r = 0; r < 4; r++) dequantAt(fmt, panel + (<usize>(r * K) << 2), rows + <usize>r * rb, K);
      rows = panel;
    }
    const on = out + (<usize>n << 2);
    for (let t = 0; t < T2; t += 2) {
      const x0 = x + <usize>t * ldxB;
      tile4x2(on + <usize>t * ldoB, ldoB, rows, x0, x0 + ldxB, K, acc);
    }
    if (T2 < T) {
      const ot = on + <usize>T2 * ldoB;
      dot4F32(ot, rows, x + <usize>T2 * ldxB, K, acc); // rows are f32 here (the weights or the panel)
    }
  }
  for (let n = n4; n < N; n++) {
    for (let t = 0; t < T; t++) {
      const xt = x + <usize>t * ldxB;
      const s = fmt == FMT_F32 ? dotF32(w + <usize>n * rb, xt, K) : dotF16(w + <usize>n * rb, xt, K);
      const o = out + <usize>t * ldoB + (<usize>n << 2);
      store<f32>(o, acc ? load<f32>(o) + s : s);
    }
  }
}
