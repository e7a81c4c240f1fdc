// Matmul of quantized weights (q8_0, q4_0, q4_k, iq4_nl, iq4_xs) with 8-bit activations, llama.cpp's scheme:
// each token's row of x is quantized once per matmul (quantizeActs: llama.cpp's q8_0, a scale per 32 values, or its
// q8_K for the 256-blocks formats, a scale per 256), then every weight block of 32 is an integer dot product, scaled
// once:
//   out[t, n] (+)= sum_b  ws[n, b] dx[t, b] sum_{k in b} wq[n, k] xq[t, k]  -  wm[n, b] dx[t, b] sum_{k in b} xq[t, k]
// where the weight block is ws wq - wm (wm = 0 but for q4_k's mins). The integer sums are exact (|wq xq| <= 128 127,
// 32 of them < 2^24, so their f32 conversion is too); the f32 rounding is in the scale products and the sums over
// blocks.
//
// Quantized activations, one row of ldq = actRowBytes(K) bytes per token (K a multiple of 32, nb = K / 32):
//   [0, 2K)                      i16 xq[K]   (values in [-127, 127], widened once so that i32x4.dot_i16x8_s reads them)
//   [2K, 2K + 4 nb)              f32 dx[nb]
//   [2K + 4 nb, 2K + 8 nb)       f32 sx[nb] = dx * sum_{k in b} xq[k]   (for q4_k's mins)
//   [2K + 8 nb, ldq)             per block, 40 bytes: i8 xq[32] in element order, i32 -8 sum_{k in b} xq[k] (q4_0's
//                                offset), f32 dx: the relaxed SIMD builds' (ASC_FEATURE_RELAXED_SIMD) GEMV, which
//                                reads a block at one pointer and constant offsets
// (written for q4_0's GEMV only, T < GEMM_MIN_T), and after the T rows, where a relaxed GEMM takes the tokens
// (relaxedGemm), the same blocks of 4 tokens at a time interleaved (actGroups): ceil(T / 4) groups of nb IL_BLOCK
// bytes, a block's
//   [0, 128)    i8 xq: chunk c (elements 4c .. 4c + 3) of token 4g + l at 16 c + 4 l
//   [128, 144)  i32 -8 sum_{k in b} xq[k] of the 4 tokens, [144, 160) their f32 dx
// (a last group's lanes past T zero).
// Each block's 32 xq are stored in 4 chunks of 8: the even elements of 0..15, the odd ones, the even ones of 16..31,
// the odd ones (block elements 0, 2, .., 14 | 1, 3, .., 15 | 16, 18, .., 30 | 17, .., 31). 16 weight bytes read as
// i16x8 then give 8 chunk-matched values by a shift or two (even bytes: shl 8, shr_s 8; odd: shr_s 8) instead of
// a widening, and q4_0's 16 nibble bytes give all 4 chunks by masks and shifts alone (dotQ4Nibbles; in a group,
// dotQ4Signed).
//
// q4_0 and iq4_nl matrices are stored in groups of 4 rows (blocks.ts, GROUP_BLOCK), their last N % 4 rows as the
// file's; the other formats as the file's rows.
//
// Two paths, as linear.ts's:
// - GEMV (T < GEMM_MIN_T, decode): straight from the packed blocks, 4 rows x 1 token per pass for q4_0 and iq4_nl
//   (gemv4, over a group), one row at a time for the others and for the last N % 4 rows (dotRow).
// - GEMM (prefill): per panel of 4 rows, the rows are unpacked once into `panel` (i16 [4, K], then f32 block scales
//   [nb, 4] and mins [nb, 4], the 4 rows side by side), then a 4 x 2 micro-kernel (8 i32x4 block sums, 2 f32x4
//   accumulators) runs every pair of tokens over it: one i32x4.dot_i16x8_s is 8 multiply-adds.
// Built with relaxed SIMD (build/cpu-relaxed.wasm), q4_0's GEMV and GEMM and q8_0's GEMM from RELAXED_Q8_MIN_T tokens
// take i32x4.relaxed_dot_i8x16_i7x16_add_s instead (16 multiply-adds; gemv4Q4Relaxed, tileDiag, tileDiagQ8), the
// same integer sums.

import { FMT_IQ4_NL, FMT_IQ4_XS, FMT_Q4_0, FMT_Q4_K, FMT_Q8_0, GEMM_MIN_T, groupNibbles, groupScale, halfToF32, hsum, iq4Table, iq4xsScale, scaleMinK4, store4 } from './blocks';

/** Bytes of one token's quantized activations (K values; see the header). */
@inline function actRowBytes(K: i32): usize {
  return (<usize>K << 1) + (<usize>K >> 2) + <usize>(K >> 5) * RELAXED_BLOCK;
}

/** Bytes of a block of the relaxed SIMD kernels' activations: i8 xq [32], i32 -8 sum xq, f32 dx. */
const RELAXED_BLOCK: usize = 40;

/**
 * Tokens from which q8_0's GEMM takes the relaxed dots (tileDiagQ8: 1.1-1.3x the SIMD128 tile at 16-256 tokens, 0.95x
 * at 8, where its panel's unpacking weighs more).
 */
const RELAXED_Q8_MIN_T: i32 = 16;

/** Bytes of a block of 4 tokens' interleaved activations (the header's; the relaxed GEMM's). */
const IL_BLOCK: usize = 160;

/**
 * Which GEMM T tokens of format fmt take: 1 the relaxed q4_0 one, 2 the relaxed q8_0 one, 0 another (the SIMD128
 * tile, or the GEMV below GEMM_MIN_T). quantizeActs writes the interleaved groups for the relaxed ones only.
 */
@inline function relaxedGemm(fmt: i32, T: i32): i32 {
  if (!ASC_FEATURE_RELAXED_SIMD || T < GEMM_MIN_T) return 0;
  return fmt == FMT_Q4_0 ? 1 : fmt == FMT_Q8_0 && T >= RELAXED_Q8_MIN_T ? 2 : 0;
}

/** The interleaved groups of the quantized activations at xq (T rows of ldq bytes): after the rows. */
@inline function actGroups(xq: usize, T: i32, ldq: usize): usize {
  return xq + <usize>T * ldq;
}

/** Offset in a token's activation row of the relaxed SIMD kernels' blocks (RELAXED_BLOCK bytes each). */
@inline function actI8(K: i32): usize {
  return (<usize>K << 1) + (<usize>K >> 2);
}

/**
 * max |x| over n floats at x (n a multiple of 32): the integer max of their bits with the sign cleared, which orders
 * non-negative floats as their values (a NaN stays a NaN); V8 spends 8 instructions a vector on f32x4.max's NaN rules,
 * which made quantizeActs 2.6x slower.
 */
@inline function absMax(x: usize, n: i32): f32 {
  const abs = v128.load(GEMV_CONSTS, 160);
  let m = i32x4.splat(0);
  for (let o: usize = 0; o < (<usize>n << 2); o += 32) m = i32x4.max_u(m, i32x4.max_u(v128.and(v128.load(x + o), abs), v128.and(v128.load(x + o, 16), abs)));
  m = i32x4.max_u(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
  return reinterpret<f32>(max(i32x4.extract_lane(m, 0), i32x4.extract_lane(m, 1)));
}

/**
 * The 8 f32 at x times id, rounded to the nearest integer (ties to even), as i16x8 (|values| <= 127 here): y + 1.5 2^23
 * rounds y into the low mantissa bits (the float add's own rounding), and those bits less the constant's are the
 * integer (nearest and trunc_sat would be one and five x86 instructions per 4 lanes in V8; this is two).
 */
@inline function quant8(x: usize, id: v128): v128 {
  const magic = v128.load(GEMV_CONSTS, 128); // 1.5 2^23
  const a = i32x4.sub(f32x4.add(f32x4.mul(v128.load(x), id), magic), magic);
  return i16x8.narrow_i32x4_s(a, i32x4.sub(f32x4.add(f32x4.mul(v128.load(x, 16), id), magic), magic));
}

/**
 * Quantizes x (f32 [T, ldx], K a multiple of 32) into xq (T rows of actRowBytes(K) bytes, then the relaxed GEMMs'
 * groups) for weights of format fmt, as llama.cpp's x86 CPU backend does for the weights' dot products:
 * - q8_0 (for q8_0, q4_0, iq4_nl weights): per block of 32, d = max|x| / 127, q = nearest(x * (127 / max|x|)) (0 for
 *   an all-zero block);
 * - q8_K (`wide`: for q4_k, iq4_xs weights, K a multiple of 256): per block of 256, m = the value of largest |x| (the
 *   first such), s = -127 / m, q = nearest(x * s), d = 1 / s, written as the d of each of its 8 blocks of 32;
 * nearest: ties to even; then sx = d * sum(q) per block of 32.
 */
export function quantizeActs(xq: usize, x: usize, ldx: i32, T: i32, K: i32, fmt: i32): void {
  const nb = K >> 5;
  const ldq = actRowBytes(K);
  const wide = fmt == FMT_Q4_K || fmt == FMT_IQ4_XS;
  const gemvQ4 = ASC_FEATURE_RELAXED_SIMD && fmt == FMT_Q4_0 && T < GEMM_MIN_T; // gemv4Q4Relaxed's blocks
  const grouped = relaxedGemm(fmt, T) != 0;
  const il = actGroups(xq, T, ldq);
  const ilg = <usize>nb * IL_BLOCK;
  for (let t = 0; t < T; t++) {
    const xr = x + ((<usize>t * <usize>ldx) << 2);
    const qr = xq + <usize>t * ldq;
    const dr = qr + (<usize>K << 1);
    const sr = dr + (<usize>nb << 2);
    let d: f32 = 0;
    let id: f32 = 0;
    for (let b = 0; b < nb; b++) {
      const xb = xr + (<usize>b << 7);
      if (!wide) {
        const amax = absMax(xb, 32);
        d = amax / 127;
        id = amax != 0 ? <f32>127 / amax : 0;
      } else if ((b & 7) == 0) {
        const amax = absMax(xb, 256);
        let m: f32 = 0;
        for (let j = 0; j < 256; j++) {
          const v = load<f32>(xb + (<usize>j << 2));
          if (abs(v) == amax) {
            m = v;
            break;
          }
        }
        id = amax != 0 ? <f32>-127 / m : 0;
        d = amax != 0 ? <f32>1 / id : 0;
      }
      const vid = f32x4.splat(id);
      const qb = qr + (<usize>b << 6);
      // Elements 0..15 and 16..31 as i16, then their even and odd ones apart (the header's order).
      const n0 = quant8(xb, vid), n1 = quant8(xb + 32, vid), n2 = quant8(xb + 64, vid), n3 = quant8(xb + 96, vid);
      v128.store(qb, v128.shuffle<i16>(n0, n1, 0, 2, 4, 6, 8, 10, 12, 14));
      v128.store(qb, v128.shuffle<i16>(n0, n1, 1, 3, 5, 7, 9, 11, 13, 15), 16);
      v128.store(qb, v128.shuffle<i16>(n2, n3, 0, 2, 4, 6, 8, 10, 12, 14), 32);
      v128.store(qb, v128.shuffle<i16>(n2, n3, 1, 3, 5, 7, 9, 11, 13, 15), 48);
      const sum = i32x4.dot_i16x8_s(i16x8.add(i16x8.add(n0, n1), i16x8.add(n2, n3)), v128.load(GEMV_CONSTS, 176));
      const s = i32x4.extract_lane(sum, 0) + i32x4.extract_lane(sum, 1) + i32x4.extract_lane(sum, 2) + i32x4.extract_lane(sum, 3);
      store<f32>(dr + (<usize>b << 2), d);
      store<f32>(sr + (<usize>b << 2), d * <f32>s);
      if (gemvQ4 || grouped) {
        const lo = i8x16.narrow_i16x8_s(n0, n1), hi = i8x16.narrow_i16x8_s(n2, n3);
        if (gemvQ4) {
          const rb = qr + actI8(K) + <usize>b * RELAXED_BLOCK;
          v128.store(rb, lo);
          v128.store(rb, hi, 16);
          store<i32>(rb, -8 * s, 32);
          store<f32>(rb, d, 36);
        }
        if (grouped) {
          const gb = il + <usize>(t >> 2) * ilg + <usize>b * IL_BLOCK + (<usize>(t & 3) << 2);
          v128.store32_lane(gb, lo, 0);
          v128.store32_lane(gb, lo, 1, 16);
          v128.store32_lane(gb, lo, 2, 32);
          v128.store32_lane(gb, lo, 3, 48);
          v128.store32_lane(gb, hi, 0, 64);
          v128.store32_lane(gb, hi, 1, 80);
          v128.store32_lane(gb, hi, 2, 96);
          v128.store32_lane(gb, hi, 3, 112);
          store<i32>(gb, -8 * s, 128);
          store<f32>(gb, d, 144);
        }
      }
    }
  }
  if (grouped && (T & 3) != 0) {
    // The last group's lanes past T: zero sums and scales.
    const last = il + <usize>(T >> 2) * ilg;
    for (let b = 0; b < nb; b++) {
      for (let l = T & 3; l < 4; l++) {
        const gb = last + <usize>b * IL_BLOCK + (<usize>l << 2);
        for (let o: usize = 0; o < IL_BLOCK; o += 16) store<u32>(gb + o, 0);
      }
    }
  }
}

/** The even bytes of v (i16 lanes' low halves) as i16x8, sign-extended. */
@inline function evenI8(v: v128): v128 {
  return i16x8.shr_s(i16x8.shl(v, 8), 8);
}

/** The odd bytes of v (i16 lanes' high halves) as i16x8, sign-extended. */
@inline function oddI8(v: v128): v128 {
  return i16x8.shr_s(v, 8);
}

/**
 * sum_k w[k] xq[k] over one block of 32 int8 weights (lo: elements 0..15, hi: 16..31) and the i16 xq at xb (the
 * header's order: even elements of 0..15, odd ones, even of 16..31, odd ones; one shift or two widens 8 of them).
 */
@inline function dot32(lo: v128, hi: v128, xb: usize): v128 {
  return dot32r(lo, hi, v128.load(xb), v128.load(xb, 16), v128.load(xb, 32), v128.load(xb, 48));
}

/** dot32 over the block's activations already in registers (x0 .. x3: its 4 chunks of 8). */
@inline function dot32r(lo: v128, hi: v128, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const a = i32x4.add(i32x4.dot_i16x8_s(evenI8(lo), x0), i32x4.dot_i16x8_s(oddI8(lo), x1));
  return i32x4.add(a, i32x4.add(i32x4.dot_i16x8_s(evenI8(hi), x2), i32x4.dot_i16x8_s(oddI8(hi), x3)));
}

/** acc + s (i32x4 block sums) * f. */
@inline function scaled(acc: v128, s: v128, f: f32): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(f)));
}

// ---- Dot products of one packed row (in the file's layout) with one token's quantized activations q (K values) ----

/** q8_0: 34-byte blocks: f16 d, 32 int8 q; w = d q. */
function dotQ8_0(w: usize, q: usize, K: i32): f32 {
  const dx = q + (<usize>K << 1);
  let acc = f32x4.splat(0);
  for (let b = 0; b < K >> 5; b++) {
    const p = w + <usize>b * 34;
    const s = dot32(v128.load(p + 2), v128.load(p + 18), q + (<usize>b << 6));
    acc = scaled(acc, s, halfToF32(load<u16>(p)) * load<f32>(dx + (<usize>b << 2)));
  }
  return hsum(acc);
}

/**
 * q4_0: 18-byte blocks: f16 d, 16 bytes: element j in the low nibble of byte j, 16 + j in its high one; w = d (q - 8).
 * The nibbles are read as i16 lanes (dotQ4Nibbles), 8 sum x subtracted for the offset.
 */
function dotQ4_0(w: usize, q: usize, K: i32): f32 {
  const dx = q + (<usize>K << 1);
  const m16 = v128.load(GEMV_CONSTS, 16);
  const eight16 = v128.load(GEMV_CONSTS, 32);
  let acc = f32x4.splat(0);
  for (let b = 0; b < K >> 5; b++) {
    const p = w + <usize>b * 18;
    const xb = q + (<usize>b << 6);
    const x0 = v128.load(xb), x1 = v128.load(xb, 16), x2 = v128.load(xb, 32), x3 = v128.load(xb, 48);
    const c8 = i32x4.dot_i16x8_s(i16x8.add(i16x8.add(x0, x1), i16x8.add(x2, x3)), eight16);
    const s = i32x4.sub(dotQ4Nibbles(v128.load(p + 2), x0, x1, x2, x3, m16), c8);
    acc = scaled(acc, s, halfToF32(load<u16>(p)) * load<f32>(dx + (<usize>b << 2)));
  }
  return hsum(acc);
}

/**
 * q4_k: 144-byte blocks of 256: f16 d, f16 dmin, 12 bytes of 6-bit scales / mins, 128 bytes qs; element 64 g + l
 * (l < 32) in the low nibble of qs[32 g + l], 64 g + 32 + l in the high one; w = (d sc_j) q - (dmin m_j), j = e / 32.
 */
function dotQ4_K(w: usize, q: usize, K: i32): f32 {
  const dx = q + (<usize>K << 1);
  const sx = dx + (<usize>K >> 3);
  const mask = i8x16.splat(0x0f);
  let acc = f32x4.splat(0);
  let mins: f32 = 0;
  for (let b = 0; b < K >> 8; b++) {
    const p = w + <usize>b * 144;
    const d = halfToF32(load<u16>(p));
    const dmin = halfToF32(load<u16>(p + 2));
    for (let g = 0; g < 4; g++) {
      const c = (b << 3) + 2 * g; // the first of the group's two sub-blocks
      const q0 = v128.load(p + 16 + g * 32);
      const q1 = v128.load(p + 32 + g * 32);
      const sm1 = scaleMinK4(2 * g, p + 4);
      const sm2 = scaleMinK4(2 * g + 1, p + 4);
      const x1 = dx + (<usize>c << 2);
      acc = scaled(acc, dot32(v128.and(q0, mask), v128.and(q1, mask), q + (<usize>c << 6)), d * <f32>(sm1 & 0xff) * load<f32>(x1));
      acc = scaled(acc, dot32(i8x16.shr_u(q0, 4), i8x16.shr_u(q1, 4), q + (<usize>c << 6) + 64), d * <f32>(sm2 & 0xff) * load<f32>(x1, 4));
      const s1 = sx + (<usize>c << 2);
      mins += dmin * <f32>(sm1 >> 8) * load<f32>(s1) + dmin * <f32>(sm2 >> 8) * load<f32>(s1, 4);
    }
  }
  return hsum(acc) - mins;
}

/** iq4_nl: 18-byte blocks as q4_0's, the nibbles indices into the table; w = d KV[q]. */
function dotIQ4_NL(w: usize, q: usize, K: i32): f32 {
  const dx = q + (<usize>K << 1);
  const mask = i8x16.splat(0x0f);
  const table = iq4Table();
  let acc = f32x4.splat(0);
  for (let b = 0; b < K >> 5; b++) {
    const p = w + <usize>b * 18;
    const v = v128.load(p + 2);
    const s = dot32(i8x16.swizzle(table, v128.and(v, mask)), i8x16.swizzle(table, i8x16.shr_u(v, 4)), q + (<usize>b << 6));
    acc = scaled(acc, s, halfToF32(load<u16>(p)) * load<f32>(dx + (<usize>b << 2)));
  }
  return hsum(acc);
}

/** iq4_xs: 136-byte blocks of 256: f16 d, u16 scales_h, 4 bytes scales_l, 8 sub-blocks of 16 index bytes as iq4_nl's. */
function dotIQ4_XS(w: usize, q: usize, K: i32): f32 {
  const dx = q + (<usize>K << 1);
  const mask = i8x16.splat(0x0f);
  const table = iq4Table();
  let acc = f32x4.splat(0);
  for (let b = 0; b < K >> 8; b++) {
    const p = w + <usize>b * 136;
    const d = halfToF32(load<u16>(p));
    for (let j = 0; j < 8; j++) {
      const c = (b << 3) + j;
      const v = v128.load(p + 8 + j * 16);
      const s = dot32(i8x16.swizzle(table, v128.and(v, mask)), i8x16.swizzle(table, i8x16.shr_u(v, 4)), q + (<usize>c << 6));
      acc = scaled(acc, s, d * iq4xsScale(p, j) * load<f32>(dx + (<usize>c << 2)));
    }
  }
  return hsum(acc);
}

@inline function dotRow(fmt: i32, w: usize, q: usize, K: i32): f32 {
  if (fmt == FMT_Q8_0) return dotQ8_0(w, q, K);
  if (fmt == FMT_Q4_0) return dotQ4_0(w, q, K);
  if (fmt == FMT_Q4_K) return dotQ4_K(w, q, K);
  if (fmt == FMT_IQ4_NL) return dotIQ4_NL(w, q, K);
  return dotIQ4_XS(w, q, K);
}

// ---- The GEMV: 4 rows x 1 token straight from the packed blocks ----

// The GEMV's (and the panel unpacking's) v128 constants, loaded once per call: V8 rebuilds an inline v128.const at every use inside a loop
// (3 instructions each), which cost as much as the nibble unpacking. 16 bytes each: [0] 0x0f bytes (nibble mask),
// [1] 0x000f i16 lanes (q4_0's nibbles in i16 lanes), [2] 8 in i16 lanes (q4_0's offset), [3] 0x8fffffff and
// [4] 2^112 (f16 to f32, see scales4), [5] iq4_nl's table, [6] 0xf000 i16 lanes (grouped q4_0's nibbles, dotQ4Signed),
// [7] 0x88 bytes (grouped q4_0's nibbles back to q, relaxed SIMD's kernels), [8] 1.5 2^23 (quantizeActs' rounding),
// [9] 0x80 bytes (q8_0's q + 128, the relaxed GEMM's), [10] 0x7fffffff (absMax), [11] 1 in i16 lanes (quantizeActs'
// block sums).
const GEMV_CONSTS: usize = memory.data<u32>([
  0x0f0f0f0f, 0x0f0f0f0f, 0x0f0f0f0f, 0x0f0f0f0f,
  0x000f000f, 0x000f000f, 0x000f000f, 0x000f000f,
  0x00080008, 0x00080008, 0x00080008, 0x00080008,
  0x8fffffff, 0x8fffffff, 0x8fffffff, 0x8fffffff,
  0x77800000, 0x77800000, 0x77800000, 0x77800000,
  0xbfad9881, 0xf6eaddcf, 0x26190d01, 0x71594535,
  0xf000f000, 0xf000f000, 0xf000f000, 0xf000f000,
  0x88888888, 0x88888888, 0x88888888, 0x88888888,
  0x4b400000, 0x4b400000, 0x4b400000, 0x4b400000, // 1.5 2^23 (quant8)
  0x80808080, 0x80808080, 0x80808080, 0x80808080,
  0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff,
  0x00010001, 0x00010001, 0x00010001, 0x00010001,
], 16);

/**
 * The 4 f16 at p (a group's block scales) as f32x4, exactly (as halfToF32): each f16 is sign-extended into an i32
 * lane and shifted left by 13 (bits 28..13: sign, exponent, mantissa, with 3 more copies of the sign above, which
 * the mask clears: exponent and mantissa land on the f32's), which reads as the f16's value times 2^-112 (an f16
 * subnormal becomes an f32 subnormal), and multiplied by 2^112.
 */
@inline function scales4(p: usize, signMask: v128, two112: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shl(v128.load16x4_s(p), 13), signMask), two112);
}

/**
 * sum_k q[k] x[k] (i32x4 partial sums) of a q4_0 block's 16 nibble bytes v, q in 0..15 (the caller subtracts
 * 8 sum x): read as i16 lanes (bytes 2i, 2i + 1), lane i holds elements 2i (bits 0..3), 16 + 2i (4..7), 2i + 1
 * (8..11) and 17 + 2i (12..15), which are the activations' 4 chunks (the header's order) without any widening.
 */
@inline function dotQ4Nibbles(v: v128, x0: v128, x1: v128, x2: v128, x3: v128, m16: v128): v128 {
  const a = i32x4.add(i32x4.dot_i16x8_s(v128.and(v, m16), x0), i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 8), m16), x1));
  return i32x4.add(a, i32x4.add(i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 4), m16), x2), i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), x3)));
}

/**
 * 4096 sum_k (q[k] - 8) x[k] (i32x4 partial sums) of a grouped q4_0 block's 16 nibble bytes v, stored XOR 0x88 so
 * that each nibble read as a signed 4-bit integer is q - 8 (blocks.ts): read as i16 lanes as dotQ4Nibbles does
 * (lane i: elements 2i, 16 + 2i, 2i + 1, 17 + 2i at bits 0, 4, 8, 12: the activations' 4 chunks), each chunk's
 * nibble is moved to bits 12..15 (the rest cleared by `hi`, 0xf000 lanes), where the lane reads as 4096 (q - 8): no
 * widening, no offset to subtract. |result lanes| <= 4 * 2 * 8 * 4096 * 127 < 2^25.
 */
@inline function dotQ4Signed(v: v128, x0: v128, x1: v128, x2: v128, x3: v128, hi: v128): v128 {
  const a = i32x4.add(i32x4.dot_i16x8_s(i16x8.shl(v, 12), x0), i32x4.dot_i16x8_s(v128.and(i16x8.shl(v, 4), hi), x1));
  return i32x4.add(a, i32x4.add(i32x4.dot_i16x8_s(v128.and(i16x8.shl(v, 8), hi), x2), i32x4.dot_i16x8_s(v128.and(v, hi), x3)));
}

/** iq4_nl's 16 index bytes v as the 32 int8 weights' low (elements 0..15) and high (16..31) halves. */
@inline function iq4Lo(v: v128, mask: v128, table: v128): v128 {
  return i8x16.swizzle(table, v128.and(v, mask));
}
@inline function iq4Hi(v: v128, mask: v128, table: v128): v128 {
  return i8x16.swizzle(table, v128.and(i16x8.shr_u(v, 4), mask)); // i8x16.shr_u, which V8 lowers to more instructions
}

/**
 * sum_k w[k] x[k] (i32x4 partial sums) of the 16 nibble bytes at p of a grouped block of format fmt (iq4_nl; q4_0:
 * 4096 times that, dotQ4Signed).
 */
@inline function blockDot(fmt: i32, p: usize, x0: v128, x1: v128, x2: v128, x3: v128, mask: v128, hi: v128, table: v128): v128 {
  const v = v128.load(p);
  if (fmt == FMT_Q4_0) return dotQ4Signed(v, x0, x1, x2, x3, hi);
  return dot32r(iq4Lo(v, mask, table), iq4Hi(v, mask, table), x0, x1, x2, x3);
}

/**
 * out[0 .. 3] (+)= the group of 4 rows at g (blocks.ts's layout) . token q, for the nibble formats with blocks of 32
 * (q4_0, iq4_nl; fmt a constant, so that each caller gets its own loop). Per block (72 bytes read in order): the
 * token's 4 activation chunks are loaded once for the 4 rows, the 4 integer sums are reduced exactly (pairSums),
 * and one f32x4 multiply-add applies the 4 rows' scales times dx[b]. Over a SmolLM2-135M decode step's q4_0
 * matmuls (30 layers, weights streamed from DRAM), the grouped layout took 5.8 ms against 9.1 ms over the file's
 * rows (4 streams rb bytes apart), the same sums bit for bit; q4_0's signed nibbles (dotQ4Signed) 8% less again.
 * q8_0 stays on dotRow: on weights streamed from DRAM (a decode step's, past the last-level cache) the 4-row form
 * over the file's rows ran 2-3x slower than one row at a time (the 4 interleaved row streams; 612-byte rows).
 */
@inline function gemv4(fmt: i32, out: usize, g: usize, q: usize, K: i32, acc: bool, scratch: usize): void {
  const dx = q + (<usize>K << 1);
  const mask = v128.load(GEMV_CONSTS);
  const signMask = v128.load(GEMV_CONSTS, 48);
  const two112 = v128.load(GEMV_CONSTS, 64);
  const table = v128.load(GEMV_CONSTS, 80);
  const hi = v128.load(GEMV_CONSTS, 96);
  let f = f32x4.splat(0);
  for (let b = 0; b < K >> 5; b++) {
    const xb = q + (<usize>b << 6);
    const x0 = v128.load(xb), x1 = v128.load(xb, 16), x2 = v128.load(xb, 32), x3 = v128.load(xb, 48);
    // Rows 0 and 1, reduced to pair sums and stored to the scratch before rows 2 and 3 are loaded: V8 schedules a
    // block's loads first and its arithmetic after them, so 4 rows at once would hold every load in a register.
    v128.store(scratch, pairSums(blockDot(fmt, groupNibbles(g, b, 0), x0, x1, x2, x3, mask, hi, table), blockDot(fmt, groupNibbles(g, b, 1), x0, x1, x2, x3, mask, hi, table)));
    const s23 = pairSums(blockDot(fmt, groupNibbles(g, b, 2), x0, x1, x2, x3, mask, hi, table), blockDot(fmt, groupNibbles(g, b, 3), x0, x1, x2, x3, mask, hi, table));
    const s01 = v128.load(scratch);
    let sums = i32x4.add(i32x4.shuffle(s01, s23, 0, 1, 4, 5), i32x4.shuffle(s01, s23, 2, 3, 6, 7));
    if (fmt == FMT_Q4_0) sums = i32x4.shr_s(sums, 12); // exact: multiples of 4096
    const d = f32x4.mul(scales4(groupScale(g, b, 0), signMask, two112), f32x4.splat(load<f32>(dx + (<usize>b << 2))));
    f = f32x4.add(f, f32x4.mul(f32x4.convert_i32x4_s(sums), d));
  }
  if (acc) f = f32x4.add(f, v128.load(out));
  v128.store(out, f);
}

function gemv4Q4_0(out: usize, g: usize, q: usize, K: i32, acc: bool, scratch: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) gemv4Q4Relaxed(out, g, q, K, acc);
  else gemv4(FMT_Q4_0, out, g, q, K, acc, scratch);
}

// ---- Relaxed SIMD (build/cpu-relaxed.wasm): i32x4.relaxed_dot_i8x16_i7x16_add_s, 16 multiply-adds per instruction ----
// Its result is the same on every engine when the second operand's bytes are in 0..127: there the weights, q4_0's
// unsigned q (0..15, the stored nibble XOR 8), and the i8 activations (quantizeActs' i8 copy) the first; the
// offset, -8 sum_k xq[k] per block, is the activations' nq8. The integer block sums are those of the SIMD128 build,
// so the outputs are bit for bit the same.

/** relaxed dot: a (+)= the 4 groups of 4 i8 products of x (i8) and w (u7) into i32x4 lanes. */
@inline function rdot(x: v128, w: v128, a: v128): v128 {
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, w, a);
}

/** gemv4 for q4_0 with relaxed dots: per row and block, the unsigned nibbles (lo: elements 0..15, hi: 16..31). */
function gemv4Q4Relaxed(out: usize, g: usize, q: usize, K: i32, acc: bool): void {
  let x = q + actI8(K);
  const mask = v128.load(GEMV_CONSTS);
  const signMask = v128.load(GEMV_CONSTS, 48);
  const two112 = v128.load(GEMV_CONSTS, 64);
  const flip = v128.load(GEMV_CONSTS, 112);
  const zero = i32x4.splat(0);
  let f = f32x4.splat(0);
  for (let b = 0; b < K >> 5; b++) {
    const xlo = v128.load(x), xhi = v128.load(x, 16);
    const u0 = v128.xor(v128.load(groupNibbles(g, b, 0)), flip), u1 = v128.xor(v128.load(groupNibbles(g, b, 1)), flip);
    const u2 = v128.xor(v128.load(groupNibbles(g, b, 2)), flip), u3 = v128.xor(v128.load(groupNibbles(g, b, 3)), flip);
    const a0 = rdot(xhi, v128.and(i16x8.shr_u(u0, 4), mask), rdot(xlo, v128.and(u0, mask), zero));
    const a1 = rdot(xhi, v128.and(i16x8.shr_u(u1, 4), mask), rdot(xlo, v128.and(u1, mask), zero));
    const a2 = rdot(xhi, v128.and(i16x8.shr_u(u2, 4), mask), rdot(xlo, v128.and(u2, mask), zero));
    const a3 = rdot(xhi, v128.and(i16x8.shr_u(u3, 4), mask), rdot(xlo, v128.and(u3, mask), zero));
    const sums = i32x4.add(rowSums(a0, a1, a2, a3), v128.load32_splat(x, 32));
    const d = f32x4.mul(scales4(groupScale(g, b, 0), signMask, two112), v128.load32_splat(x, 36));
    f = f32x4.add(f, f32x4.mul(f32x4.convert_i32x4_s(sums), d));
    x += RELAXED_BLOCK;
  }
  if (acc) f = f32x4.add(f, v128.load(out));
  v128.store(out, f);
}

/** [a0[k], a1[k], a2[k], a3[k]] for k = 0 .. 3: a 4 x 4 transpose of i32 lanes, stored at o, o + 16, o + 32, o + 48. */
@inline function storeTransposed(o: usize, a0: v128, a1: v128, a2: v128, a3: v128): void {
  const t0 = i32x4.shuffle(a0, a1, 0, 4, 1, 5), t1 = i32x4.shuffle(a0, a1, 2, 6, 3, 7);
  const t2 = i32x4.shuffle(a2, a3, 0, 4, 1, 5), t3 = i32x4.shuffle(a2, a3, 2, 6, 3, 7);
  v128.store(o, i64x2.shuffle(t0, t2, 0, 2));
  v128.store(o, i64x2.shuffle(t0, t2, 1, 3), 16);
  v128.store(o, i64x2.shuffle(t1, t3, 0, 2), 32);
  v128.store(o, i64x2.shuffle(t1, t3, 1, 3), 48);
}

/**
 * The q4_0 group at g (4 rows, K values) as the relaxed GEMM's panel: u8 wq [nb, 8, 4, 4] (block b, chunk c of 4
 * elements 4c .. 4c + 3, row r: its unsigned q), then f32 ws [nb, 4] (the rows' scales side by side) at p + 4 K.
 * tileDiag rotates its chunks' lanes.
 */
function unpackQ4Relaxed(p: usize, g: usize, K: i32): void {
  const mask = v128.load(GEMV_CONSTS);
  const signMask = v128.load(GEMV_CONSTS, 48);
  const two112 = v128.load(GEMV_CONSTS, 64);
  const flip = v128.load(GEMV_CONSTS, 112);
  const ws = p + (<usize>K << 2);
  for (let b = 0; b < K >> 5; b++) {
    const u0 = v128.xor(v128.load(groupNibbles(g, b, 0)), flip), u1 = v128.xor(v128.load(groupNibbles(g, b, 1)), flip);
    const u2 = v128.xor(v128.load(groupNibbles(g, b, 2)), flip), u3 = v128.xor(v128.load(groupNibbles(g, b, 3)), flip);
    const o = p + (<usize>b << 7);
    storeTransposed(o, v128.and(u0, mask), v128.and(u1, mask), v128.and(u2, mask), v128.and(u3, mask));
    const h0 = v128.and(i16x8.shr_u(u0, 4), mask), h1 = v128.and(i16x8.shr_u(u1, 4), mask);
    storeTransposed(o + 64, h0, h1, v128.and(i16x8.shr_u(u2, 4), mask), v128.and(i16x8.shr_u(u3, 4), mask));
    v128.store(ws + (<usize>b << 4), scales4(groupScale(g, b, 0), signMask, two112));
  }
}

/** v's i32 lanes rotated left by j (a constant): lane l is v[(l + j) & 3]. */
@inline function rotate(v: v128, j: i32): v128 {
  return j == 1 ? i32x4.shuffle(v, v, 1, 2, 3, 0) : j == 2 ? i32x4.shuffle(v, v, 2, 3, 0, 1) : i32x4.shuffle(v, v, 3, 0, 1, 2);
}

/**
 * out[t0 + l][n .. n + 3] (+)= the tile's accumulators for l < n (f_j's lane l: row (l + j) & 3 of token t0 + l),
 * each token's 4 rows gathered by two rounds of shuffles.
 */
@inline function storeDiag(out: usize, ldo: usize, f0: v128, f1: v128, f2: v128, f3: v128, n: i32, acc: bool): void {
  const e02 = i32x4.shuffle(f0, f2, 0, 2, 4, 6), e13 = i32x4.shuffle(f1, f3, 0, 2, 4, 6); // lanes 0, 2 of each
  const o02 = i32x4.shuffle(f0, f2, 1, 3, 5, 7), o13 = i32x4.shuffle(f1, f3, 1, 3, 5, 7); // lanes 1, 3
  storeRow(out, i32x4.shuffle(e02, e13, 0, 4, 2, 6), acc);
  if (n > 1) storeRow(out + ldo, i32x4.shuffle(o02, o13, 6, 0, 4, 2), acc);
  if (n > 2) storeRow(out + 2 * ldo, i32x4.shuffle(e02, e13, 3, 7, 1, 5), acc);
  if (n > 3) storeRow(out + 3 * ldo, i32x4.shuffle(o02, o13, 5, 3, 7, 1), acc);
}

@inline function storeRow(o: usize, v: v128, acc: bool): void {
  v128.store(o, acc ? f32x4.add(v, v128.load(o)) : v);
}

/**
 * The relaxed GEMM's micro-kernel: 4 rows (unpackQ4Relaxed's panel) x the 4 tokens of the interleaved group at x0
 * (`two`: and the 4 of the next group, x0 + ldg), n of the last group's tokens stored. Per block and chunk c, one
 * load of the group's 16 activation bytes (lane l: token l's chunk) and a relaxed dot with each rotation j of the
 * rows' chunk (lane l: row (l + j) & 3's 4 bytes; one load, three shuffles) adds row (l + j) & 3 . token l to lane
 * l of accumulator j: 4 dots make the 4 x 4 products, with no broadcast of each token's chunk as the 4 x 4 tile
 * before it spent on every dot (57-64 GMAC/s at SmolLM2-135M's shapes, 64 tokens, Node 24, where V8's dots peak at
 * 117 with 12 chains; this one 62-76 there, measured in the same runs). A block's 8 chunks are a loop: unrolled, V8
 * hoisted the panel's loads of all 8 out of the token groups' dot chains and spilled them. The 8 accumulators start
 * from the tokens' -8 sum xq and hold the SIMD128 build's integer sums, scaled and summed as there.
 */
@inline function tileDiag(two: bool, out: usize, ldo: usize, panel: usize, x0: usize, ldg: usize, K: i32, n: i32, acc: bool): void {
  let w = panel;
  let ws = panel + (<usize>K << 2);
  let x1 = x0 + ldg;
  let f00 = f32x4.splat(0), f01 = f00, f02 = f00, f03 = f00, f10 = f00, f11 = f00, f12 = f00, f13 = f00;
  for (let b = 0; b < K >> 5; b++) {
    const c0 = v128.load(x0, 128);
    let a00 = c0, a01 = c0, a02 = c0, a03 = c0, a10 = c0, a11 = c0, a12 = c0, a13 = c0;
    if (two) {
      const c1 = v128.load(x1, 128);
      a10 = c1;
      a11 = c1;
      a12 = c1;
      a13 = c1;
    }
    const end = x0 + 128;
    let p0 = x0, p1 = x1;
    do {
      const q0 = v128.load(p0);
      const q1 = two ? v128.load(p1) : q0;
      const w0 = v128.load(w);
      a00 = rdot(q0, w0, a00);
      if (two) a10 = rdot(q1, w0, a10);
      const w1 = rotate(w0, 1);
      a01 = rdot(q0, w1, a01);
      if (two) a11 = rdot(q1, w1, a11);
      const w2 = rotate(w0, 2);
      a02 = rdot(q0, w2, a02);
      if (two) a12 = rdot(q1, w2, a12);
      const w3 = rotate(w0, 3);
      a03 = rdot(q0, w3, a03);
      if (two) a13 = rdot(q1, w3, a13);
      w += 16;
      p0 += 16;
      p1 += 16;
    } while (p0 < end);
    const s0 = v128.load(ws);
    const s1 = rotate(s0, 1);
    const s2 = rotate(s0, 2);
    const s3 = rotate(s0, 3);
    const d0 = v128.load(x0, 144);
    f00 = f32x4.add(f00, f32x4.mul(f32x4.convert_i32x4_s(a00), f32x4.mul(s0, d0)));
    f01 = f32x4.add(f01, f32x4.mul(f32x4.convert_i32x4_s(a01), f32x4.mul(s1, d0)));
    f02 = f32x4.add(f02, f32x4.mul(f32x4.convert_i32x4_s(a02), f32x4.mul(s2, d0)));
    f03 = f32x4.add(f03, f32x4.mul(f32x4.convert_i32x4_s(a03), f32x4.mul(s3, d0)));
    if (two) {
      const d1 = v128.load(x1, 144);
      f10 = f32x4.add(f10, f32x4.mul(f32x4.convert_i32x4_s(a10), f32x4.mul(s0, d1)));
      f11 = f32x4.add(f11, f32x4.mul(f32x4.convert_i32x4_s(a11), f32x4.mul(s1, d1)));
      f12 = f32x4.add(f12, f32x4.mul(f32x4.convert_i32x4_s(a12), f32x4.mul(s2, d1)));
      f13 = f32x4.add(f13, f32x4.mul(f32x4.convert_i32x4_s(a13), f32x4.mul(s3, d1)));
    }
    ws += 16;
    x0 += IL_BLOCK;
    x1 += IL_BLOCK;
  }
  storeDiag(out, ldo, f00, f01, f02, f03, two ? 4 : n, acc);
  if (two) storeDiag(out + (ldo << 2), ldo, f10, f11, f12, f13, 4, acc);
}

function tileDiag8(out: usize, ldo: usize, panel: usize, x0: usize, ldg: usize, K: i32, acc: bool): void {
  tileDiag(true, out, ldo, panel, x0, ldg, K, 4, acc);
}
function tileDiag4(out: usize, ldo: usize, panel: usize, x0: usize, K: i32, n: i32, acc: bool): void {
  tileDiag(false, out, ldo, panel, x0, 0, K, n, acc);
}
/**
 * The 4 q8_0 rows at `rows` (rb bytes each) as the relaxed GEMM's panel: per block, q + 128 = 16 h + l split into
 * its nibbles, u8 l [8, 4, 4] then h [8, 4, 4] (chunk c, row r: the 4 elements 4c .. 4c + 3), both in 0..15 as the
 * relaxed dot's unsigned operand wants; then f32 ws [nb, 4] (the rows' scales side by side) at p + 8 K.
 */
function unpackQ8Relaxed(p: usize, rows: usize, rb: usize, K: i32): void {
  const mask = v128.load(GEMV_CONSTS);
  const flip = v128.load(GEMV_CONSTS, 144);
  const ws = p + (<usize>K << 3);
  for (let b = 0; b < K >> 5; b++) {
    const q = rows + <usize>b * 34;
    const o = p + (<usize>b << 8);
    for (let half: usize = 0; half < 32; half += 16) {
      const u0 = v128.xor(v128.load(q + half, 2), flip), u1 = v128.xor(v128.load(q + rb + half, 2), flip);
      const u2 = v128.xor(v128.load(q + 2 * rb + half, 2), flip), u3 = v128.xor(v128.load(q + 3 * rb + half, 2), flip);
      storeTransposed(o + (half << 2), v128.and(u0, mask), v128.and(u1, mask), v128.and(u2, mask), v128.and(u3, mask));
      const h0 = v128.and(i16x8.shr_u(u0, 4), mask), h1 = v128.and(i16x8.shr_u(u1, 4), mask);
      storeTransposed(o + 128 + (half << 2), h0, h1, v128.and(i16x8.shr_u(u2, 4), mask), v128.and(i16x8.shr_u(u3, 4), mask));
    }
    const sb = ws + (<usize>b << 4);
    for (let r = 0; r < 4; r++) store<f32>(sb + (<usize>r << 2), halfToF32(load<u16>(q + <usize>r * rb)));
  }
}

/**
 * tileDiag for q8_0 (unpackQ8Relaxed's panel) over one interleaved group (4 tokens, n of them stored): each chunk's
 * two nibble halves make 8 relaxed dots into 4 accumulators of the low nibbles and 4 of the high ones (the latter
 * from the tokens' -8 sum xq), so that a block's sums are 16 h + l - 128 sum xq = the SIMD128 build's exactly.
 */
function tileDiagQ8(out: usize, ldo: usize, panel: usize, x0: usize, K: i32, n: i32, acc: bool): void {
  let w = panel;
  let ws = panel + (<usize>K << 3);
  let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0;
  const zero = i32x4.splat(0);
  for (let b = 0; b < K >> 5; b++) {
    const c = v128.load(x0, 128);
    let h0 = c, h1 = c, h2 = c, h3 = c;
    let l0 = zero, l1 = zero, l2 = zero, l3 = zero;
    const end = x0 + 128;
    let p = x0;
    do {
      const q = v128.load(p);
      const wl = v128.load(w), wh = v128.load(w, 128);
      l0 = rdot(q, wl, l0);
      h0 = rdot(q, wh, h0);
      l1 = rdot(q, rotate(wl, 1), l1);
      h1 = rdot(q, rotate(wh, 1), h1);
      l2 = rdot(q, rotate(wl, 2), l2);
      h2 = rdot(q, rotate(wh, 2), h2);
      l3 = rdot(q, rotate(wl, 3), l3);
      h3 = rdot(q, rotate(wh, 3), h3);
      w += 16;
      p += 16;
    } while (p < end);
    w += 128;
    const s0 = v128.load(ws);
    const d = v128.load(x0, 144);
    f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(i32x4.add(i32x4.shl(h0, 4), l0)), f32x4.mul(s0, d)));
    f1 = f32x4.add(f1, f32x4.mul(f32x4.convert_i32x4_s(i32x4.add(i32x4.shl(h1, 4), l1)), f32x4.mul(rotate(s0, 1), d)));
    f2 = f32x4.add(f2, f32x4.mul(f32x4.convert_i32x4_s(i32x4.add(i32x4.shl(h2, 4), l2)), f32x4.mul(rotate(s0, 2), d)));
    f3 = f32x4.add(f3, f32x4.mul(f32x4.convert_i32x4_s(i32x4.add(i32x4.shl(h3, 4), l3)), f32x4.mul(rotate(s0, 3), d)));
    ws += 16;
    x0 += IL_BLOCK;
  }
  storeDiag(out, ldo, f0, f1, f2, f3, n, acc);
}

function gemv4IQ4_NL(out: usize, g: usize, q: usize, K: i32, acc: bool, scratch: usize): void {
  gemv4(FMT_IQ4_NL, out, g, q, K, acc, scratch);
}

/**
 * out[0 .. 3] (+)= the 4 rows at w (rb bytes each: a group for q4_0 / iq4_nl) . token q: gemv4 for q4_0 / iq4_nl,
 * else 4 dotRows.
 */
@inline function dot4(fmt: i32, out: usize, w: usize, rb: usize, q: usize, K: i32, acc: bool, scratch: usize): void {
  if (fmt == FMT_Q4_0) gemv4Q4_0(out, w, q, K, acc, scratch);
  else if (fmt == FMT_IQ4_NL) gemv4IQ4_NL(out, w, q, K, acc, scratch);
  else store4(out, dotRow(fmt, w, q, K), dotRow(fmt, w + rb, q, K), dotRow(fmt, w + 2 * rb, q, K), dotRow(fmt, w + 3 * rb, q, K), acc);
}

// ---- Unpacking a row for the GEMM's panel ----

/** One block of 32 int8 weights (lo: elements 0..15, hi: 16..31) as 32 i16 at o, in the activations' order. */
@inline function widen32(o: usize, lo: v128, hi: v128): void {
  v128.store(o, evenI8(lo));
  v128.store(o, oddI8(lo), 16);
  v128.store(o, evenI8(hi), 32);
  v128.store(o, oddI8(hi), 48);
}

/**
 * Row r (0..3) of the 4 rows at `rows` (K values of format fmt, rb bytes each: a group for q4_0 / iq4_nl) as i16
 * wq [K] at o, its f32 block scales ws [K / 32] at s and mins wm [K / 32] at m, `ld` bytes apart (16: the panel's
 * 4 rows side by side).
 */
function unpackRow(fmt: i32, o: usize, s: usize, m: usize, ld: usize, rows: usize, rb: usize, r: i32, K: i32): void {
  const mask = v128.load(GEMV_CONSTS);
  const w = rows + <usize>r * rb; // (not for the grouped formats)
  if (fmt == FMT_Q8_0) {
    for (let b = 0; b < K >> 5; b++) {
      const p = w + <usize>b * 34;
      widen32(o + (<usize>b << 6), v128.load(p + 2), v128.load(p + 18));
      store<f32>(s + <usize>b * ld, halfToF32(load<u16>(p)));
    }
  } else if (fmt == FMT_Q4_0) {
    // The nibbles read as i16 lanes (dotQ4Signed) are the 4 chunks already, each sign-extended from its 4 bits to
    // q - 8 by a shift left to bits 12..15 and an arithmetic one back.
    for (let b = 0; b < K >> 5; b++) {
      const v = v128.load(groupNibbles(rows, b, r));
      const ob = o + (<usize>b << 6);
      v128.store(ob, i16x8.shr_s(i16x8.shl(v, 12), 12));
      v128.store(ob, i16x8.shr_s(i16x8.shl(v, 4), 12), 16);
      v128.store(ob, i16x8.shr_s(i16x8.shl(v, 8), 12), 32);
      v128.store(ob, i16x8.shr_s(v, 12), 48);
      store<f32>(s + <usize>b * ld, halfToF32(load<u16>(groupScale(rows, b, r))));
    }
  } else if (fmt == FMT_Q4_K) {
    for (let b = 0; b < K >> 8; b++) {
      const p = w + <usize>b * 144;
      const d = halfToF32(load<u16>(p));
      const dmin = halfToF32(load<u16>(p + 2));
      for (let g = 0; g < 4; g++) {
        const c = (b << 3) + 2 * g;
        const q0 = v128.load(p + 16 + g * 32);
        const q1 = v128.load(p + 32 + g * 32);
        widen32(o + (<usize>c << 6), v128.and(q0, mask), v128.and(q1, mask));
        widen32(o + (<usize>c << 6) + 64, v128.and(i16x8.shr_u(q0, 4), mask), v128.and(i16x8.shr_u(q1, 4), mask));
        const sm1 = scaleMinK4(2 * g, p + 4);
        const sm2 = scaleMinK4(2 * g + 1, p + 4);
        store<f32>(s + <usize>c * ld, d * <f32>(sm1 & 0xff));
        store<f32>(s + <usize>(c + 1) * ld, d * <f32>(sm2 & 0xff));
        store<f32>(m + <usize>c * ld, dmin * <f32>(sm1 >> 8));
        store<f32>(m + <usize>(c + 1) * ld, dmin * <f32>(sm2 >> 8));
      }
    }
  } else {
    // iq4_nl (groups of 18-byte blocks of 32) and iq4_xs (136-byte blocks of 256, 16 index bytes per 32).
    const table = v128.load(GEMV_CONSTS, 80);
    const xs = fmt == FMT_IQ4_XS;
    for (let c = 0; c < K >> 5; c++) {
      const p = xs ? w + <usize>(c >> 3) * 136 : groupScale(rows, c, r);
      const v = v128.load(xs ? p + 8 + (c & 7) * 16 : groupNibbles(rows, c, r));
      widen32(o + (<usize>c << 6), iq4Lo(v, mask, table), iq4Hi(v, mask, table));
      const d = halfToF32(load<u16>(p));
      store<f32>(s + <usize>c * ld, xs ? d * iq4xsScale(p, c & 7) : d);
    }
  }
}

// ---- The GEMM micro-kernel: 4 unpacked rows x 2 tokens ----

/** [a0[0] + a0[2], a1[0] + a1[2], a0[1] + a0[3], a1[1] + a1[3]]: half of rowSums (a0 sums to lanes 0 + 2, a1 to 1 + 3). */
@inline function pairSums(a0: v128, a1: v128): v128 {
  return i32x4.add(i32x4.shuffle(a0, a1, 0, 4, 1, 5), i32x4.shuffle(a0, a1, 2, 6, 3, 7));
}

/** [sum(a0), sum(a1), sum(a2), sum(a3)] of four i32x4 (a 4 x 4 transpose by unpacks, and adds). */
@inline function rowSums(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const s01 = i32x4.add(i32x4.shuffle(a0, a1, 0, 4, 1, 5), i32x4.shuffle(a0, a1, 2, 6, 3, 7));
  const s23 = i32x4.add(i32x4.shuffle(a2, a3, 0, 4, 1, 5), i32x4.shuffle(a2, a3, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(s01, s23, 0, 1, 4, 5), i32x4.shuffle(s01, s23, 2, 3, 6, 7));
}

/** The 8 multiply-adds of 8 i16 at w and u, added to a. */
@inline function madd(a: v128, w: v128, u: v128): v128 {
  return i32x4.add(a, i32x4.dot_i16x8_s(w, u));
}

/**
 * out[t0 .. t0 + 1][n .. n + 3] over the panel (4 rows: i16 wq [4, K], then f32 ws [nb, 4]: the rows' block scales
 * side by side) and the quantized tokens at x0, x1; q4_k's min terms are left to the caller. Per block: 8 i32x4
 * sums (4 rows x 2 tokens), reduced to one i32x4 of the 4 rows per token, scaled by ws[b] dx[t, b].
 */
function tile4x2(out: usize, ldo: usize, panel: usize, x0: usize, x1: usize, K: i32, acc: bool): void {
  const stride = <usize>K << 1;
  const ws = panel + (stride << 2);
  let f0 = f32x4.splat(0);
  let f1 = f32x4.splat(0);
  for (let b = 0; b < K >> 5; b++) {
    const o = <usize>b << 6;
    const p0 = panel + o, p1 = p0 + stride, p2 = p1 + stride, p3 = p2 + stride;
    let u = v128.load(x0 + o), v = v128.load(x1 + o);
    let w0 = v128.load(p0), w1 = v128.load(p1), w2 = v128.load(p2), w3 = v128.load(p3);
    let a00 = i32x4.dot_i16x8_s(w0, u), a01 = i32x4.dot_i16x8_s(w1, u), a02 = i32x4.dot_i16x8_s(w2, u), a03 = i32x4.dot_i16x8_s(w3, u);
    let a10 = i32x4.dot_i16x8_s(w0, v), a11 = i32x4.dot_i16x8_s(w1, v), a12 = i32x4.dot_i16x8_s(w2, v), a13 = i32x4.dot_i16x8_s(w3, v);
    for (let c: usize = 16; c < 64; c += 16) {
      u = v128.load(x0 + o + c);
      v = v128.load(x1 + o + c);
      w0 = v128.load(p0 + c);
      w1 = v128.load(p1 + c);
      w2 = v128.load(p2 + c);
      w3 = v128.load(p3 + c);
      a00 = madd(a00, w0, u);
      a01 = madd(a01, w1, u);
      a02 = madd(a02, w2, u);
      a03 = madd(a03, w3, u);
      a10 = madd(a10, w0, v);
      a11 = madd(a11, w1, v);
      a12 = madd(a12, w2, v);
      a13 = madd(a13, w3, v);
    }
    const s = v128.load(ws + (<usize>b << 4));
    const db = <usize>b << 2;
    f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(rowSums(a00, a01, a02, a03)), f32x4.mul(s, f32x4.splat(load<f32>(x0 + stride + db)))));
    f1 = f32x4.add(f1, f32x4.mul(f32x4.convert_i32x4_s(rowSums(a10, a11, a12, a13)), f32x4.mul(s, f32x4.splat(load<f32>(x1 + stride + db)))));
  }
  if (acc) {
    f0 = f32x4.add(f0, v128.load(out));
    f1 = f32x4.add(f1, v128.load(out + ldo));
  }
  v128.store(out, f0);
  v128.store(out + ldo, f1);
}

/** out[t][n .. n + 3] -= sum_b wm[b] sx[t, b] over the panel's 4 rows (q4_k's mins; wm f32 [nb, 4] at m). */
function subtractMins(out: usize, m: usize, xt: usize, K: i32): void {
  const nb = K >> 5;
  const sx = xt + (<usize>K << 1) + (<usize>nb << 2);
  let a = f32x4.splat(0);
  for (let b = 0; b < nb; b++) a = f32x4.add(a, f32x4.mul(v128.load(m + (<usize>b << 4)), f32x4.splat(load<f32>(sx + (<usize>b << 2)))));
  v128.store(out, f32x4.sub(v128.load(out), a));
}

/**
 * out[t, n] (+)= W[n, :] . x[t, :] for t < T, n < N, over quantized activations (the header's formula).
 * @param out    f32 [T, ldo] (element offset 0 is out[0, 0] of this matrix's columns)
 * @param xq     T rows of ldq bytes, from quantizeActs over the same K and T (and its interleaved groups after them)
 * @param w      N rows of `rowBytes` bytes in format fmt (q8_0, q4_0, q4_k, iq4_nl, iq4_xs; K a multiple of its block),
 *               q4_0 / iq4_nl in groups of 4 rows (blocks.ts)
 * @param panel  scratch of 9 K + 16 bytes (the GEMM's unpacked rows; the GEMV's last 16)
 * @param acc    add to out (a residual) instead of overwriting it
 */
export function linearQ8(fmt: i32, out: usize, ldo: i32, xq: usize, ldq: i32, w: usize, rowBytes: i32, T: i32, N: i32, K: i32, acc: bool, panel: usize): void {
  const ldoB = <usize>ldo << 2;
  const ldqB = <usize>ldq;
  const rb = <usize>rowBytes;
  const n4 = T < GEMM_MIN_T ? 0 : N & ~3; // rows of the GEMM's panels
  const T2 = T & ~1;
  const nb = K >> 5;
  const ws = panel + (<usize>K << 3); // after wq [4, K] i16
  const wm = ws + (<usize>nb << 4);
  const scratch = wm + (<usize>nb << 4); // 16 bytes after the GEMM's 9 K (the GEMV's)
  const relaxed = ASC_FEATURE_RELAXED_SIMD ? relaxedGemm(fmt, T) : 0; // (a constant in the SIMD128 builds: no relaxed code)
  const il = actGroups(xq, T, ldqB);
  const ilg = <usize>nb * IL_BLOCK;
  for (let n = 0; n < n4; n += 4) {
    const rows = w + <usize>n * rb;
    const on = out + (<usize>n << 2);
    if (relaxed == 1) {
      unpackQ4Relaxed(panel, rows, K);
      let t = 0;
      for (; t + 8 <= T; t += 8) tileDiag8(on + <usize>t * ldoB, ldoB, panel, il + <usize>(t >> 2) * ilg, ilg, K, acc);
      for (; t < T; t += 4) tileDiag4(on + <usize>t * ldoB, ldoB, panel, il + <usize>(t >> 2) * ilg, K, min(T - t, 4), acc);
      continue;
    }
    if (relaxed == 2) {
      unpackQ8Relaxed(panel, rows, rb, K);
      // An odd last token as the SIMD128 build takes it (dotRow), for the same bits.
      for (let t = 0; t < T2; t += 4) tileDiagQ8(on + <usize>t * ldoB, ldoB, panel, il + <usize>(t >> 2) * ilg, K, min(T2 - t, 4), acc);
      if (T2 < T) dot4(fmt, on + <usize>T2 * ldoB, rows, rb, xq + <usize>T2 * ldqB, K, acc, scratch);
      continue;
    }
    for (let r = 0; r < 4; r++) unpackRow(fmt, panel + (<usize>(r * K) << 1), ws + (<usize>r << 2), wm + (<usize>r << 2), 16, rows, rb, r, K);
    for (let t = 0; t < T2; t += 2) {
      const x0 = xq + <usize>t * ldqB;
      tile4x2(on + <usize>t * ldoB, ldoB, panel, x0, x0 + ldqB, K, acc);
    }
    if (T2 < T) dot4(fmt, on + <usize>T2 * ldoB, rows, rb, xq + <usize>T2 * ldqB, K, acc, scratch);
    if (fmt == FMT_Q4_K) for (let t = 0; t < T2; t++) subtractMins(on + <usize>t * ldoB, wm, xq + <usize>t * ldqB, K);
  }
  if (T < GEMM_MIN_T) {
    for (let n = 0; n < (N & ~3); n += 4) {
      for (let t = 0; t < T; t++) dot4(fmt, out + <usize>t * ldoB + (<usize>n << 2), w + <usize>n * rb, rb, xq + <usize>t * ldqB, K, acc, scratch);
    }
  }
  const n1 = N & ~3;
  for (let t = 0; t < T; t++) {
    const xt = xq + <usize>t * ldqB;
    const ot = out + <usize>t * ldoB;
    for (let n = n1; n < N; n++) {
      const s = dotRow(fmt, w + <usize>n * rb, xt, K);
      const o = ot + (<usize>n << 2);
      store<f32>(o, acc ? load<f32>(o) + s : s);
    }
  }
}
