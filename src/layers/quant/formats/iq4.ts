/**
 * llama.cpp's 4-bit non-linear formats (ggml-common.h's block_iq4_nl, block_iq4_xs): 4-bit indices into the fixed
 * table kvalues_iq4nl (16 int8 levels, denser near zero, as weights are), times a scale.
 * - iq4_nl (18 bytes, blocks of 32): d (f16 at 0), then 16 bytes of indices laid out as q4_0's nibbles (byte j:
 *   element j in the low nibble, 16 + j in the high one); x = d KV[q].
 * - iq4_xs (136 bytes, super-blocks of 256 in 8 sub-blocks of 32): d (f16 at 0), scales_h (u16 at 2: bits 2 j,
 *   2 j + 1 are the high bits of sub-block j's scale), scales_l[4] (4: sub-block j's low 4 bits in the low nibble of
 *   byte j / 2 for even j, the high one for odd j), qs[128] (8: sub-block j's 16 bytes at 8 + 16 j, as iq4_nl's);
 *   x = d (ls_j - 32) KV[q], ls_j the 6-bit scale.
 * Dequantization is exact in f32 (d: 11 significant bits, ls - 32: at most 32, KV: 7 bits), on the CPU and in WGSL.
 * The quantizers are ggml's quantize_iq4_nl / quantize_iq4_xs without an importance matrix (what llama-quantize runs:
 * quantize_row_iq4_nl_impl with ntry 7), C's f32 arithmetic as k-quants-fit.ts; test/fixtures/quant/iq4-reference.json
 * (make_kquant_reference.sh) checks them and the dequantizers against ggml-quants.c and gguf-py.
 */
import { f16BitsToF32 } from '../../../loader/convert.js';
import type { BlockFormat } from '../format.js';
import { scaledBlockWgsl, toF16Bits } from './common.js';
import { f, GROUP_MAX_EPS, nearestInt } from './k-quants-fit.js';

/** ggml's kvalues_iq4nl. */
export const IQ4_VALUES: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/** The table as 4 words of int8 bytes (entry 4 w + b in byte b of word w). */
const tableWords = [0, 1, 2, 3].map((w) => IQ4_VALUES.slice(4 * w, 4 * w + 4).reduce((u, v, b) => u | ((v & 255) << (8 * b)), 0) >>> 0);

/**
 * WGSL table lookups without arrays (registers only; a runtime-indexed array may live in slow memory): the word
 * holding entry n by two selects on bits 3 and 2 of n, then its byte n & 3.
 *   iq4Word(n): the words of entries n (4 indices in 0 .. 15)
 *   iq4Vals(n): the 4 entries as i32
 *   iq4Bytes(n): the 4 entries as int8 bytes of one word (entry of n.x in byte 0): the int8 GEMV's packed quants
 */
export const IQ4_LOOKUP_WGSL = `fn iq4Word(n: vec4<u32>) -> vec4<u32> {
  let b2 = (n & vec4<u32>(4u)) != vec4<u32>(0u);
  let lo = select(vec4<u32>(0x${tableWords[0].toString(16)}u), vec4<u32>(0x${tableWords[1].toString(16)}u), b2);
  let hi = select(vec4<u32>(0x${tableWords[2].toString(16)}u), vec4<u32>(0x${tableWords[3].toString(16)}u), b2);
  return select(lo, hi, (n & vec4<u32>(8u)) != vec4<u32>(0u));
}
fn iq4Vals(n: vec4<u32>) -> vec4<f32> {
  let s = (vec4<u32>(3u) - (n & vec4<u32>(3u))) * 8u;
  return qFloatSigned(bitcast<vec4<i32>>(iq4Word(n) << s) >> vec4<u32>(24u));
}
fn iq4Bytes(n: vec4<u32>) -> u32 {
  let b = (iq4Word(n) >> ((n & vec4<u32>(3u)) * 8u)) & vec4<u32>(255u);
  return b.x | (b.y << 8u) | (b.z << 16u) | (b.w << 24u);
}
/** The indices of quant word q: bytes as vec4 components, low nibbles (hi false) or high ones. */
fn iq4Nibbles(q: u32, hi: bool) -> vec4<u32> {
  return (vec4<u32>(q) >> (vec4<u32>(0u, 8u, 16u, 24u) + select(0u, 4u, hi))) & vec4<u32>(15u);
}
`;

/**
 * iq4_xs WGSL: blocks of 136 bytes, whole words (rows start at words), word a = block byte / 4. Chunk k of a block is
 * sub-block k: its scale from the header word (d, scales_h) and word a + 1 (scales_l), its indices the 4 words from
 * a + 2 + 4 k.
 */
const IQ4_XS_WGSL = `const QB = 136u;
${IQ4_LOOKUP_WGSL}fn qChunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let a = (row + (c >> 3u) * QB) >> 2u;
  let k = c & 7u;
  let h = w[a];
  let ls = ((w[a + 1u] >> (4u * k)) & 15u) | (((h >> (16u + 2u * k)) & 3u) << 4u);
  let d = unpack2x16float(h).x * f32(i32(ls) - 32);
  var r: array<vec4<f32>, 8>;
  for (var i = 0u; i < 4u; i++) {
    let q = w[a + 2u + 4u * k + i];
    r[i] = d * iq4Vals(iq4Nibbles(q, false));
    r[i + 4u] = d * iq4Vals(iq4Nibbles(q, true));
  }
  return r;
}
`;

const readF16 = (b: Uint8Array, o: number) => f16BitsToF32(b[o] | (b[o + 1] << 8));

/** 32 elements from the 16 index bytes at q, times dl, into out[at ..]. */
function dequantize32(bytes: Uint8Array, q: number, dl: number, out: Float32Array, at: number): void {
  for (let j = 0; j < 16; j++) {
    const b = bytes[q + j];
    out[at + j] = f(dl * IQ4_VALUES[b & 15]);
    out[at + 16 + j] = f(dl * IQ4_VALUES[b >> 4]);
  }
}

/** ggml's best_index_int8 over the table: the nearest entry to x (the lower one on ties), by bisection. */
function bestIndex(x: number): number {
  const v = IQ4_VALUES;
  if (x <= v[0]) return 0;
  if (x >= v[15]) return 15;
  let ml = 0;
  let mu = 15;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < v[mav]) mu = mav;
    else ml = mav;
  }
  return f(x - v[mu - 1]) < f(v[mu] - x) ? mu - 1 : mu;
}

const NTRY = 7;
const L = new Uint8Array(256);
const scales = new Float32Array(8);

/**
 * quantize_row_iq4_nl_impl without importance weights (weights x^2) and ntry 7, for `n` / 32 sub-blocks of x[at ..]:
 * each sub-block's scale is the x^2-weighted least-squares fit of the indices nearest to x / d, for the best of 15
 * trial d around max / -KV[0]. Writes the block at out[o ..] (iq4_nl for n = 32, iq4_xs for n = 256).
 */
function quantizeIq4(x: Float32Array, at: number, n: number, out: Uint8Array, o: number): void {
  const v = IQ4_VALUES;
  const nb = n / 32;
  let maxScale = 0;
  let amaxScale = 0;
  for (let ib = 0; ib < nb; ib++) {
    const xb = at + 32 * ib;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const ax = Math.abs(x[xb + j]);
      if (ax > amax) {
        amax = ax;
        max = x[xb + j];
      }
    }
    if (amax < GROUP_MAX_EPS) {
      scales[ib] = 0;
      continue;
    }
    let d = f(-max / v[0]);
    let id = f(1 / d);
    let sumqx = 0;
    let sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const xj = x[xb + j];
      const l = bestIndex(f(id * xj));
      L[32 * ib + j] = l;
      const q = v[l];
      const wq = f(f(xj * xj) * q);
      sumqx = f(sumqx + f(wq * xj));
      sumq2 = f(sumq2 + f(wq * q));
    }
    d = sumq2 > 0 ? f(sumqx / sumq2) : 0;
    let best = f(d * sumqx);
    for (let itry = -NTRY; itry <= NTRY; itry++) {
      id = f((itry + v[0]) / max);
      sumqx = 0;
      sumq2 = 0;
      for (let j = 0; j < 32; j++) {
        const xj = x[xb + j];
        const q = v[bestIndex(f(id * xj))];
        const wq = f(f(xj * xj) * q);
        sumqx = f(sumqx + f(wq * xj));
        sumq2 = f(sumq2 + f(wq * q));
      }
      if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
        d = f(sumqx / sumq2);
        best = f(d * sumqx);
      }
    }
    scales[ib] = d;
    if (Math.abs(d) > amaxScale) {
      amaxScale = Math.abs(d);
      maxScale = d;
    }
  }
  let dh: number;
  let qs = o + 2;
  if (nb > 1) {
    // The sub-block scales as 6-bit multiples of d = -maxScale / 32 (-0 for an all-zero block, as C's); indices
    // again against the stored scales.
    const d = f(-maxScale / 32);
    dh = toF16Bits(d);
    const id = d ? f(1 / d) : 0;
    let sh = 0;
    out.fill(0, o + 4, o + 8);
    for (let ib = 0; ib < nb; ib++) {
      const l = Math.max(-32, Math.min(31, nearestInt(f(id * scales[ib]))));
      const dl = f(d * l);
      const idl = dl ? f(1 / dl) : 0;
      for (let j = 0; j < 32; j++) L[32 * ib + j] = bestIndex(f(idl * x[at + 32 * ib + j]));
      const u = l + 32;
      out[o + 4 + (ib >> 1)] |= (u & 15) << (4 * (ib & 1));
      sh |= (u >> 4) << (2 * ib);
    }
    out[o + 2] = sh & 255;
    out[o + 3] = sh >> 8;
    qs = o + 8;
  } else {
    dh = toF16Bits(scales[0]);
    const id = scales[0] ? f(1 / scales[0]) : 0;
    for (let j = 0; j < 32; j++) L[j] = bestIndex(f(id * x[at + j]));
  }
  out[o] = dh & 255;
  out[o + 1] = dh >> 8;
  for (let i = 0; i < nb; i++) for (let j = 0; j < 16; j++) out[qs + 16 * i + j] = L[32 * i + j] | (L[32 * i + 16 + j] << 4);
}

export const iq4_nl: BlockFormat = {
  name: 'iq4_nl',
  ggmlType: 'IQ4_NL',
  blockElems: 32,
  blockBytes: 18,
  wgsl: `${IQ4_LOOKUP_WGSL}${scaledBlockWgsl(
    18,
    4,
    `  for (var i = 0u; i < 4u; i++) {
    r[i] = d * iq4Vals(iq4Nibbles(qw[i], false));
    r[i + 4u] = d * iq4Vals(iq4Nibbles(qw[i], true));
  }`,
  )}`,
  dequantizeBlock(bytes, o, out, at) {
    dequantize32(bytes, o + 2, readF16(bytes, o), out, at);
  },
  quantizeBlock(x, at, out, o) {
    quantizeIq4(x, at, 32, out, o);
  },
};

export const iq4_xs: BlockFormat = {
  name: 'iq4_xs',
  ggmlType: 'IQ4_XS',
  blockElems: 256,
  blockBytes: 136,
  wgsl: IQ4_XS_WGSL,
  dequantizeBlock(bytes, o, out, at) {
    const d = readF16(bytes, o);
    const sh = bytes[o + 2] | (bytes[o + 3] << 8);
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((bytes[o + 4 + (ib >> 1)] >> (4 * (ib & 1))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
      dequantize32(bytes, o + 8 + 16 * ib, f(d * (ls - 32)), out, at + 32 * ib);
    }
  },
  quantizeBlock(x, at, out, o) {
    quantizeIq4(x, at, 256, out, o);
  },
};
