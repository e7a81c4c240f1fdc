// Matmul over a weight matrix in its storage format, rows read packed:
//   out[t, n] (+)= sum_k x[t, k] W[n, k]        x: f32 [T, ldx], W: [N, K] (row n at w + n * rowBytes), out: f32 [T, ldo]
// Formats (FMT_*): f32, f16 (IEEE half bits), and llama.cpp's q8_0 / q4_0 / iq4_nl (blocks of 32) and q4_k / iq4_xs
// (blocks of 256); the block layouts are ggml's (src/layers/quant/formats/legacy.ts, k-quants.ts, iq4.ts state them
// byte by byte).
//
// Two paths:
// - GEMV (T < GEMM_MIN_T, decode): each quantized row's blocks are dequantized in registers inside the dot product
//   (never written out); f32 / f16 rows go four at a time, sharing each load of x.
// - GEMM (prefill): per panel of 4 rows, the rows are dequantized once into `panel` (f32 [4, K], in L1/L2: the
//   packing step of a BLAS GEMM), then a 4 x 2 register-blocked micro-kernel (8 f32x4 accumulators) runs every
//   pair of tokens over it. f32 rows are used in place.

export const FMT_F32: i32 = 0;
export const FMT_F16: i32 = 1;
export const FMT_Q8_0: i32 = 2;
export const FMT_Q4_0: i32 = 3;
export const FMT_Q4_K: i32 = 4;
export const FMT_IQ4_NL: i32 = 5;
export const FMT_IQ4_XS: i32 = 6;

/** ggml's kvalues_iq4nl as int8 lanes: i8x16.swizzle(iq4Table(), indices) looks 16 of them up at once. */
@inline function iq4Table(): v128 {
  return i8x16(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
}

/** Tokens from which the panel GEMM beats the per-token dequantizing GEMV. */
const GEMM_MIN_T: i32 = 4;

/**
 * An f16 (bits h) as f32, exactly, without touching a subnormal f32 (x86 takes a slow microcode path on every
 * arithmetic op with a subnormal operand, and wasm cannot set flush-to-zero): normal values by rebiasing the
 * exponent in the integer domain (+112 << 23), subnormal ones as their integer mantissa times 2^-24.
 * Inf / NaN are not expected in weights.
 */
@inline export function halfToF32(h: u32): f32 {
  const m = h & 0x7fff;
  const mag = m < 0x400 ? <f32>m * reinterpret<f32>(0x33800000) : reinterpret<f32>((m << 13) + 0x38000000);
  return reinterpret<f32>(reinterpret<u32>(mag) | ((h & 0x8000) << 16));
}

/** Four f16 at p as f32x4 (halfToF32 per lane). */
@inline function halves4(p: usize): v128 {
  const h = v128.load16x4_u(p);
  const m = v128.and(h, i32x4.splat(0x7fff));
  const normal = i32x4.add(i32x4.shl(m, 13), i32x4.splat(0x38000000));
  const sub = f32x4.mul(f32x4.convert_i32x4_s(m), f32x4.splat(reinterpret<f32>(0x33800000)));
  const mag = v128.bitselect(sub, normal, i32x4.lt_s(m, i32x4.splat(0x400)));
  return v128.or(mag, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** i16x8 lanes 0..3 / 4..7 as f32x4. */
@inline function lo16(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v));
}
@inline function hi16(v: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(v));
}

/** sum_j q[j] x[j] over 16 signed bytes q (as i8x16) and 16 floats at x. */
@inline function dot16(q: v128, x: usize): v128 {
  const a = i16x8.extend_low_i8x16_s(q);
  const b = i16x8.extend_high_i8x16_s(q);
  let s = f32x4.mul(lo16(a), v128.load(x));
  s = f32x4.add(s, f32x4.mul(hi16(a), v128.load(x, 16)));
  s = f32x4.add(s, f32x4.mul(lo16(b), v128.load(x, 32)));
  return f32x4.add(s, f32x4.mul(hi16(b), v128.load(x, 48)));
}

/** sum of 32 floats at x, as f32x4. */
@inline function sum32(x: usize): v128 {
  const a = f32x4.add(v128.load(x), v128.load(x, 16));
  const b = f32x4.add(v128.load(x, 32), v128.load(x, 48));
  const c = f32x4.add(v128.load(x, 64), v128.load(x, 80));
  const d = f32x4.add(v128.load(x, 96), v128.load(x, 112));
  return f32x4.add(f32x4.add(a, b), f32x4.add(c, d));
}

// ---- Dot products of one packed row with x (K elements; K a multiple of the format's block) ----

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

/** q8_0: 34-byte blocks: f16 d, 32 int8 q; x = d q. */
function dotQ8_0(w: usize, x: usize, K: i32): f32 {
  let acc = f32x4.splat(0);
  const nb = K >> 5;
  for (let b = 0; b < nb; b++) {
    const p = w + <usize>b * 34;
    const xb = x + (<usize>b << 7);
    const d = halfToF32(load<u16>(p));
    const s = f32x4.add(dot16(v128.load(p + 2), xb), dot16(v128.load(p + 18), xb + 64));
    acc = f32x4.add(acc, f32x4.mul(s, f32x4.splat(d)));
  }
  return hsum(acc);
}

/** q4_0: 18-byte blocks: f16 d, 16 bytes: element j in the low nibble of byte j, 16 + j in its high one; x = d (q - 8). */
function dotQ4_0(w: usize, x: usize, K: i32): f32 {
  let acc = f32x4.splat(0);
  const nb = K >> 5;
  const mask = i8x16.splat(0x0f);
  const eight = i8x16.splat(8);
  for (let b = 0; b < nb; b++) {
    const p = w + <usize>b * 18;
    const xb = x + (<usize>b << 7);
    const d = halfToF32(load<u16>(p));
    const v = v128.load(p + 2);
    const lo = i8x16.sub(v128.and(v, mask), eight);
    const hi = i8x16.sub(i8x16.shr_u(v, 4), eight);
    const s = f32x4.add(dot16(lo, xb), dot16(hi, xb + 64));
    acc = f32x4.add(acc, f32x4.mul(s, f32x4.splat(d)));
  }
  return hsum(acc);
}

/** ggml's get_scale_min_k4: sub-block j's 6-bit scale (low 8 bits) and min (next 8) from the 12 bytes at s. */
@inline function scaleMinK4(j: i32, s: usize): u32 {
  if (j < 4) return (<u32>load<u8>(s + j) & 63) | ((<u32>load<u8>(s + j + 4) & 63) << 8);
  const a = <u32>load<u8>(s + j + 4);
  const sc = (a & 0xf) | ((<u32>load<u8>(s + j - 4) >> 6) << 4);
  const m = (a >> 4) | ((<u32>load<u8>(s + j) >> 6) << 4);
  return sc | (m << 8);
}

/**
 * q4_k: 144-byte blocks of 256: f16 d, f16 dmin, 12 bytes of 6-bit scales / mins, 128 bytes qs; element 64 p + l
 * (l < 32) in the low nibble of qs[32 p + l], 64 p + 32 + l in the high one; x = (d sc_j) q - (dmin m_j), j = e / 32.
 * Per sub-block: (d sc_j) sum(q x) - (dmin m_j) sum(x).
 */
function dotQ4_K(w: usize, x: usize, K: i32): f32 {
  let acc = f32x4.splat(0);
  const nb = K >> 8;
  const mask = i8x16.splat(0x0f);
  for (let b = 0; b < nb; b++) {
    const p = w + <usize>b * 144;
    const d = halfToF32(load<u16>(p));
    const dmin = halfToF32(load<u16>(p + 2));
    for (let g = 0; g < 4; g++) {
      const xq = x + (<usize>(b * 256 + g * 64) << 2);
      const q0 = v128.load(p + 16 + g * 32);
      const q1 = v128.load(p + 32 + g * 32);
      const sm1 = scaleMinK4(2 * g, p + 4);
      const sm2 = scaleMinK4(2 * g + 1, p + 4);
      const d1 = d * <f32>(sm1 & 0xff);
      const m1 = dmin * <f32>(sm1 >> 8);
      const d2 = d * <f32>(sm2 & 0xff);
      const m2 = dmin * <f32>(sm2 >> 8);
      const sLo = f32x4.add(dot16(v128.and(q0, mask), xq), dot16(v128.and(q1, mask), xq + 64));
      const sHi = f32x4.add(dot16(i8x16.shr_u(q0, 4), xq + 128), dot16(i8x16.shr_u(q1, 4), xq + 192));
      acc = f32x4.add(acc, f32x4.sub(f32x4.mul(sLo, f32x4.splat(d1)), f32x4.mul(sum32(xq), f32x4.splat(m1))));
      acc = f32x4.add(acc, f32x4.sub(f32x4.mul(sHi, f32x4.splat(d2)), f32x4.mul(sum32(xq + 128), f32x4.splat(m2))));
    }
  }
  return hsum(acc);
}

/** iq4_nl: 18-byte blocks as q4_0's, the nibbles indices into the table; x = d KV[q]. */
function dotIQ4_NL(w: usize, x: usize, K: i32): f32 {
  let acc = f32x4.splat(0);
  const nb = K >> 5;
  const mask = i8x16.splat(0x0f);
  const table = iq4Table();
  for (let b = 0; b < nb; b++) {
    const p = w + <usize>b * 18;
    const xb = x + (<usize>b << 7);
    const d = halfToF32(load<u16>(p));
    const v = v128.load(p + 2);
    const s = f32x4.add(dot16(i8x16.swizzle(table, v128.and(v, mask)), xb), dot16(i8x16.swizzle(table, i8x16.shr_u(v, 4)), xb + 64));
    acc = f32x4.add(acc, f32x4.mul(s, f32x4.splat(d)));
  }
  return hsum(acc);
}

/** iq4_xs sub-block j's scale ls - 32 (6 bits: 4 from scales_l at p + 4, 2 from scales_h at p + 2). */
@inline function iq4xsScale(p: usize, j: i32): f32 {
  const lo = (<u32>load<u8>(p + 4 + (j >> 1)) >> (4 * (j & 1))) & 15;
  const hi = (<u32>load<u16>(p + 2) >> (2 * j)) & 3;
  return <f32>(<i32>(lo | (hi << 4)) - 32);
}

/** iq4_xs: 136-byte blocks of 256: f16 d, u16 scales_h, 4 bytes scales_l, 8 sub-blocks of 16 index bytes as iq4_nl's. */
function dotIQ4_XS(w: usize, x: usize, K: i32): f32 {
  let acc = f32x4.splat(0);
  const nb = K >> 8;
  const mask = i8x16.splat(0x0f);
  const table = iq4Table();
  for (let b = 0; b < nb; b++) {
    const p = w + <usize>b * 136;
    const d = halfToF32(load<u16>(p));
    for (let j = 0; j < 8; j++) {
      const xb = x + (<usize>(b * 256 + j * 32) << 2);
      const v = v128.load(p + 8 + j * 16);
      const s = f32x4.add(dot16(i8x16.swizzle(table, v128.and(v, mask)), xb), dot16(i8x16.swizzle(table, i8x16.shr_u(v, 4)), xb + 64));
      acc = f32x4.add(acc, f32x4.mul(s, f32x4.splat(d * iq4xsScale(p, j))));
    }
  }
  return hsum(acc);
}

@inline function dotRow(fmt: i32, w: usize, x: usize, K: i32): f32 {
  if (fmt == FMT_Q8_0) return dotQ8_0(w, x, K);
  if (fmt == FMT_IQ4_NL) return dotIQ4_NL(w, x, K);
  if (fmt == FMT_IQ4_XS) return dotIQ4_XS(w, x, K);
  if (fmt == FMT_Q4_0) return dotQ4_0(w, x, K);
  if (fmt == FMT_Q4_K) return dotQ4_K(w, x, K);
  if (fmt == FMT_F16) return dotF16(w, x, K);
  return dotF32(w, x, K);
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

@inline function store4(out: usize, s0: f32, s1: f32, s2: f32, s3: f32, acc: bool): void {
  if (acc) {
    s0 += load<f32>(out);
    s1 += load<f32>(out, 4);
    s2 += load<f32>(out, 8);
    s3 += load<f32>(out, 12);
  }
  store<f32>(out, s0);
  store<f32>(out, s1, 4);
  store<f32>(out, s2, 8);
  store<f32>(out, s3, 12);
}

// ---- Dequantization of whole rows (the GEMM's panels, embeddings) ----

/** Row `w` (K elements of format fmt) as f32 into out[0 .. K). */
export function dequantRow(fmt: i32, out: usize, w: usize, K: i32): void {
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
  } else if (fmt == FMT_Q4_0) {
    const mask = i8x16.splat(0x0f);
    const eight = i8x16.splat(8);
    for (let b = 0; b < K >> 5; b++) {
      const p = w + <usize>b * 18;
      const d = f32x4.splat(halfToF32(load<u16>(p)));
      const v = v128.load(p + 2);
      const o = out + (<usize>b << 7);
      store16(o, i8x16.sub(v128.and(v, mask), eight), d);
      store16(o + 64, i8x16.sub(i8x16.shr_u(v, 4), eight), d);
    }
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
  } else if (fmt == FMT_IQ4_NL || fmt == FMT_IQ4_XS) {
    // d KV[q] (iq4_nl) and d (ls - 32) KV[q] (iq4_xs): f32 products as the CPU reference's, both exact.
    const mask = i8x16.splat(0x0f);
    const table = iq4Table();
    const xs = fmt == FMT_IQ4_XS;
    for (let c = 0; c < K >> 5; c++) {
      const p = xs ? w + <usize>(c >> 3) * 136 : w + <usize>c * 18;
      const q = xs ? p + 8 + (c & 7) * 16 : p + 2;
      const h = halfToF32(load<u16>(p));
      const d = f32x4.splat(xs ? h * iq4xsScale(p, c & 7) : h);
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
 * @param w      N rows of `rowBytes` bytes in format fmt
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
      if (fmt == FMT_F32 || fmt == FMT_F16) {
        for (; n < n4; n += 4) {
          if (fmt == FMT_F32) dot4F32(ot + (<usize>n << 2), w + <usize>n * rb, xt, K, acc);
          else dot4F16(ot + (<usize>n << 2), w + <usize>n * rb, xt, K, acc);
        }
      }
      for (; n < N; n++) {
        const s = dotRow(fmt, w + <usize>n * rb, xt, K);
        const o = ot + (<usize>n << 2);
        store<f32>(o, acc ? load<f32>(o) + s : s);
      }
    }
    return;
  }
  const T2 = T & ~1;
  for (let n = 0; n < n4; n += 4) {
    let rows = w + <usize>n * rb;
    if (fmt != FMT_F32) {
      for (let r = 0; r < 4; r++) dequantRow(fmt, panel + (<usize>(r * K) << 2), rows + <usize>r * rb, K);
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
      const s = dotRow(fmt, w + <usize>n * rb, x + <usize>t * ldxB, K);
      const o = out + <usize>t * ldoB + (<usize>n << 2);
      store<f32>(o, acc ? load<f32>(o) + s : s);
    }
  }
}
