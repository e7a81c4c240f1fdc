/**
 * llama.cpp's k-quants (ggml-common.h's block_q*_K): super-blocks of QK_K = 256 elements in sub-blocks of 32 or
 * 16, each with a quantized scale (and min) that a super-block f16 scale d (and dmin) multiplies. Q4_K_M files mix
 * q4_k and q6_k. Byte layouts (offsets within a block; elements e = 0 .. 255):
 * - q4_k (144 bytes): d, dmin (f16 at 0, 2); 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32 (4; see
 *   scaleMinK4); 128 bytes qs (16): element 64 p + l (l < 32) in the low nibble of qs[32 p + l], 64 p + 32 + l in
 *   the high one. x = d sc_j q - dmin m_j, j = e / 32.
 * - q5_k (176 bytes): d, dmin, scales as q4_k; qh[32] (16): bit j of qh[l] is the 5th bit of element 32 j + l;
 *   qs[128] (48) as q4_k's. x = d sc_j q - dmin m_j, q < 32.
 * - q6_k (210 bytes): ql[128] (0), qh[64] (128), int8 scales[16] (192), d (208). In half h (128 elements) and
 *   quarter t (32 elements, element 128 h + 32 t + l): low 4 bits in ql[64 h + 32 (t & 1) + l] (low nibble for
 *   t < 2), high 2 bits at bit 2 t of qh[32 h + l]; x = d scales[8 h + 2 t + l / 16] (q - 32).
 * - q3_k (110 bytes): hmask[32] (0), qs[64] (32), 12 bytes of 6-bit scales for 16 sub-blocks of 16 (96), d (108).
 *   Element 32 k + l (k = 4 h + t): low 2 bits at bit 2 t of qs[32 h + l], the high bit at bit k of hmask[l];
 *   x = d (s - 32) (q - 4 + 4 high), s of sub-block j: low nibble of scales[j] (j < 8) or high of scales[j - 8],
 *   bits 4-5 from bits 2 (j / 4) of scales[8 + j % 4].
 * - q2_k (84 bytes): scales[16] (0: scale in the low nibble, min in the high), qs[64] (16) packed as q3_k's, d, dmin
 *   (80, 82). x = d sc_j q - dmin m_j, j = e / 16.
 * The quantizers are ggml's quantize_row_q*_K_ref with C's f32 arithmetic (every operation rounded by Math.fround,
 * no FMA: ggml-base compiles ggml-quants.c for baseline x86-64); test/fixtures/quant/kquant_reference.c checks them
 * against ggml's own code.
 */
import { f16BitsToF32 } from '../../../loader/convert.js';
import type { BlockFormat } from '../format.js';
import { toF16Bits } from './common.js';
import { clamp, f, F01, GROUP_MAX_EPS, makeQ3Quants, makeQkx2Quants, makeQxQuants, nearestInt } from './k-quants-fit.js';

const QK_K = 256;
const readF16 = (b: Uint8Array, o: number) => f16BitsToF32(b[o] | (b[o + 1] << 8));
function writeF16(b: Uint8Array, o: number, v: number): void {
  const h = toF16Bits(v);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
}

/** ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (of 8) from the 12 bytes at s (q4_k, q5_k). */
function scaleMinK4(j: number, b: Uint8Array, s: number): [number, number] {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 0xf) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

// Scratch of the quantizers (one block at a time; JS runs them to completion).
const Lu = new Uint8Array(QK_K);
const Li = new Int8Array(QK_K);
const subScales = new Float32Array(QK_K / 16);
const subMins = new Float32Array(QK_K / 16);
const subWeights = new Float32Array(32);

/**
 * The shared part of quantize_row_q4_K_ref / q5_K_ref: per sub-block of 32 a make_qkx2_quants fit weighted by
 * rms(x) + |x|; the 8 scales and mins quantized to 6 bits against their maxima (d = max scale / 63, dmin = max
 * min / 63, written at o, o + 2, the scales at o + 4); then every level requantized with the stored scales into Lu.
 */
function quantizeScaleMin32(x: Float32Array, at: number, out: Uint8Array, o: number, nmax: number, rmin: number, nstep: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(x[at + 32 * j + l] * x[at + 32 * j + l]));
    const avX = f(Math.sqrt(f(sumX2 / 32)));
    for (let l = 0; l < 32; l++) subWeights[l] = avX + Math.abs(x[at + 32 * j + l]);
    subScales[j] = makeQkx2Quants(32, nmax, x, at + 32 * j, subWeights, Lu, 32 * j, subMins, j, rmin, F01, nstep, false);
    if (subScales[j] > maxScale) maxScale = subScales[j];
    if (subMins[j] > maxMin) maxMin = subMins[j];
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  const s = o + 4;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(f(invScale * subScales[j])) & 0xff);
    const lm = Math.min(63, nearestInt(f(invMin * subMins[j])) & 0xff);
    if (j < 4) {
      out[s + j] = ls;
      out[s + j + 4] = lm;
    } else {
      out[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[s + j - 4] |= (ls >> 4) << 6;
      out[s + j] |= (lm >> 4) << 6;
    }
  }
  writeF16(out, o, f(maxScale / 63));
  writeF16(out, o + 2, f(maxMin / 63));
  const d = readF16(out, o);
  const dmin = readF16(out, o + 2);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, out, s);
    const dj = f(d * sc);
    if (!dj) continue;
    const dm = f(dmin * m);
    for (let i = 0; i < 32; i++) Lu[32 * j + i] = clamp(nearestInt(f(f(x[at + 32 * j + i] + dm) / dj)), 0, nmax);
  }
}

/**
 * The k-quants whose blocks are not whole words (q6_k, q3_k) read runs of 32 bytes at even bytes e, the 9 words
 * from a = e / 4 each loaded once: word i of the run is kSplice(word a + i, word a + i + 1, s) with s = 8 (e % 4),
 * 0 or 16 (with s = 0 the second shift pair drops the next word, which is always inside the block). Branch-free.
 * kBits16: the 16 bits at even byte e.
 */
const RUN_WGSL = `fn kSplice(lo: u32, hi: u32, s: u32) -> u32 {
  return (lo >> s) | ((hi << 16u) << (16u - s));
}
fn kBits16(e: u32) -> u32 {
  return (w[e >> 2u] >> ((e & 2u) * 8u)) & 0xffffu;
}
`;

/** Bytes 4 i .. 4 i + 3 of a word as a vector (element 4 i + e of a chunk lies in component e of vector i). */
const BYTES = 'vec4<u32>(0u, 8u, 16u, 24u)';

/**
 * q4_k / q5_k WGSL: blocks of 144 / 176 bytes, whole words (rows start at words), so word a = block byte / 4.
 * Chunk k of a block is sub-block k: its 6-bit scale and min from words a + 1 .. a + 3 (scaleMinK4), its nibbles
 * from the 8 words of qs pair k / 2 (high nibbles for odd k), q5_k's 5th bits from bit k of the 8 qh words.
 */
function scaleMinWgsl(blockBytes: number, q5: boolean): string {
  const qs = q5 ? 12 : 4; // first word of qs in the block
  return `const QB = ${blockBytes}u;
fn qChunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let a = (row + (c >> 3u) * QB) >> 2u;
  let k = c & 7u;
  let dm = unpack2x16float(w[a]);
  let sh = (k & 3u) * 8u;
  let b0 = (w[a + 1u] >> sh) & 255u;
  let b1 = (w[a + 2u] >> sh) & 255u;
  let b2 = (w[a + 3u] >> sh) & 255u;
  let lo = k < 4u;
  let sc = select((b2 & 15u) | ((b0 >> 6u) << 4u), b0 & 63u, lo);
  let mn = select((b2 >> 4u) | ((b1 >> 6u) << 4u), b1 & 63u, lo);
  let d = dm.x * f32(sc);
  let m = dm.y * f32(mn);
  let q = a + ${qs}u + 8u * (k >> 1u);
  let ns = (k & 1u) * 4u;
  var r: array<vec4<f32>, 8>;
  for (var i = 0u; i < 8u; i++) {
    let v = ((w[q + i] >> ns) & 0x0f0f0f0fu)${q5 ? ' | (((w[a + 4u + i] >> k) & 0x01010101u) << 4u)' : ''};
    r[i] = d * qFloat((vec4<u32>(v) >> ${BYTES}) & vec4<u32>(255u), 0.0) - m;
  }
  return r;
}
`;
}

function dequantizeScaleMin32(bytes: Uint8Array, o: number, out: Float32Array, at: number, q5: boolean): void {
  const d = readF16(bytes, o);
  const dmin = readF16(bytes, o + 2);
  const qs = o + (q5 ? 48 : 16);
  for (let p = 0; p < 4; p++) {
    const [sc1, m1] = scaleMinK4(2 * p, bytes, o + 4);
    const [sc2, m2] = scaleMinK4(2 * p + 1, bytes, o + 4);
    const d1 = f(d * sc1);
    const mm1 = f(dmin * m1);
    const d2 = f(d * sc2);
    const mm2 = f(dmin * m2);
    for (let l = 0; l < 32; l++) {
      const b = bytes[qs + 32 * p + l];
      const h = q5 ? bytes[o + 16 + l] >> (2 * p) : 0;
      out[at + 64 * p + l] = f(d1 * ((b & 0xf) + (h & 1 ? 16 : 0))) - mm1;
      out[at + 64 * p + 32 + l] = f(d2 * ((b >> 4) + (h & 2 ? 16 : 0))) - mm2;
    }
  }
}

/** quantize_row_q4_K_ref: quantizeScaleMin32 with 15 levels (rmin -1, 21 refits), nibbles packed in pairs of sub-blocks. */
export const q4_k: BlockFormat = {
  name: 'q4_k',
  ggmlType: 'Q4_K',
  blockElems: QK_K,
  blockBytes: 144,
  wgsl: scaleMinWgsl(144, false),
  dequantizeBlock(bytes, o, out, at) {
    dequantizeScaleMin32(bytes, o, out, at, false);
  },
  quantizeBlock(x, at, out, o) {
    quantizeScaleMin32(x, at, out, o, 15, -1, 20);
    for (let p = 0; p < 4; p++) for (let l = 0; l < 32; l++) out[o + 16 + 32 * p + l] = Lu[64 * p + l] | (Lu[64 * p + 32 + l] << 4);
  },
};

/** quantize_row_q5_K_ref: quantizeScaleMin32 with 31 levels (rmin -0.5, 16 refits), the 5th bits in qh. */
export const q5_k: BlockFormat = {
  name: 'q5_k',
  ggmlType: 'Q5_K',
  blockElems: QK_K,
  blockBytes: 176,
  wgsl: scaleMinWgsl(176, true),
  dequantizeBlock(bytes, o, out, at) {
    dequantizeScaleMin32(bytes, o, out, at, true);
  },
  quantizeBlock(x, at, out, o) {
    quantizeScaleMin32(x, at, out, o, 31, -0.5, 15);
    out.fill(0, o + 16, o + 48);
    for (let p = 0; p < 4; p++) {
      for (let l = 0; l < 32; l++) {
        const l1 = Lu[64 * p + l];
        const l2 = Lu[64 * p + 32 + l];
        out[o + 16 + l] |= ((l1 >> 4) << (2 * p)) | ((l2 >> 4) << (2 * p + 1));
        out[o + 48 + 32 * p + l] = (l1 & 0xf) | ((l2 & 0xf) << 4);
      }
    }
  },
};

/**
 * q6_k WGSL (blocks of 210 bytes: at even bytes). Chunk k = 4 h + t: 8 words of ql from 64 h + 32 (t & 1) (nibble
 * t / 2), 8 of qh from 128 + 32 h (bits 2 t), the two int8 scales 8 h + 2 t, + 1 as one half word.
 */
const Q6_K_WGSL = `const QB = 210u;
${RUN_WGSL}fn qChunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let o = row + (c >> 3u) * QB;
  let h = (c >> 2u) & 1u;
  let t = c & 3u;
  let al = (o + 64u * h + 32u * (t & 1u)) >> 2u;
  let ah = (o + 128u + 32u * h) >> 2u;
  let s = (o & 2u) * 8u; // the runs' offset in their words (their bytes and o: same parity of half words)
  let sc = kBits16(o + 192u + 8u * h + 2u * t);
  let d = qHalf(o + 208u);
  let d0 = d * f32(bitcast<i32>(sc << 24u) >> 24u);
  let d1 = d * f32(bitcast<i32>(sc << 16u) >> 24u);
  let ls = (t >> 1u) * 4u;
  let hs = 2u * t;
  var r: array<vec4<f32>, 8>;
  var l0 = w[al];
  var h0 = w[ah];
  for (var i = 0u; i < 8u; i++) {
    let l1 = w[al + i + 1u];
    let h1 = w[ah + i + 1u];
    let ql = kSplice(l0, l1, s);
    let qh = kSplice(h0, h1, s);
    l0 = l1;
    h0 = h1;
    let v = ((ql >> ls) & 0x0f0f0f0fu) | (((qh >> hs) & 0x03030303u) << 4u);
    r[i] = select(d1, d0, i < 4u) * qFloat((vec4<u32>(v) >> ${BYTES}) & vec4<u32>(255u), 32.0);
  }
  return r;
}
`;

/**
 * quantize_row_q6_K_ref: per sub-block of 16 a make_qx_quants scale (32 levels each side); the scales quantized to
 * int8 against the largest in magnitude (d = max / -128); levels requantized with the stored scales.
 */
export const q6_k: BlockFormat = {
  name: 'q6_k',
  ggmlType: 'Q6_K',
  blockElems: QK_K,
  blockBytes: 210,
  wgsl: Q6_K_WGSL,
  dequantizeBlock(bytes, o, out, at) {
    const d = readF16(bytes, o + 208);
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const is = 8 * h + (l >> 4);
        const ql0 = bytes[o + 64 * h + l];
        const ql1 = bytes[o + 64 * h + 32 + l];
        const qh = bytes[o + 128 + 32 * h + l];
        const sc = (t: number) => f(d * ((bytes[o + 192 + is + 2 * t] << 24) >> 24));
        const e = at + 128 * h + l;
        out[e] = f(sc(0) * (((ql0 & 0xf) | ((qh & 3) << 4)) - 32));
        out[e + 32] = f(sc(1) * (((ql1 & 0xf) | (((qh >> 2) & 3) << 4)) - 32));
        out[e + 64] = f(sc(2) * (((ql0 >> 4) | (((qh >> 4) & 3) << 4)) - 32));
        out[e + 96] = f(sc(3) * (((ql1 >> 4) | (((qh >> 6) & 3) << 4)) - 32));
      }
    }
  },
  quantizeBlock(x, at, out, o) {
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(16, 32, x, at + 16 * ib, Li, 16 * ib);
      subScales[ib] = scale;
      if (Math.abs(scale) > maxAbsScale) {
        maxAbsScale = Math.abs(scale);
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      out.fill(0, o, o + 210);
      return;
    }
    const iscale = f(-128 / maxScale);
    writeF16(out, o + 208, f(1 / iscale));
    for (let ib = 0; ib < 16; ib++) out[o + 192 + ib] = Math.min(127, nearestInt(f(iscale * subScales[ib]))) & 0xff;
    const d = readF16(out, o + 208);
    for (let j = 0; j < 16; j++) {
      const dj = f(d * ((out[o + 192 + j] << 24) >> 24));
      if (!dj) continue;
      for (let i = 0; i < 16; i++) Li[16 * j + i] = clamp(nearestInt(f(x[at + 16 * j + i] / dj)), -32, 31) + 32;
    }
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const L = (t: number) => Li[128 * h + 32 * t + l];
        out[o + 64 * h + l] = (L(0) & 0xf) | ((L(2) & 0xf) << 4);
        out[o + 64 * h + 32 + l] = (L(1) & 0xf) | ((L(3) & 0xf) << 4);
        out[o + 128 + 32 * h + l] = (L(0) >> 4) | ((L(1) >> 4) << 2) | ((L(2) >> 4) << 4) | ((L(3) >> 4) << 6);
      }
    }
  },
};

/** The 6-bit scale (0 .. 63, stored + 32) of q3_k's sub-block j from the 12 bytes at s. */
function q3Scale(b: Uint8Array, s: number, j: number): number {
  const low = j < 8 ? b[s + j] & 0xf : b[s + j - 8] >> 4;
  return low | (((b[s + 8 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4);
}

/** 2-bit levels L[0 .. 256) packed as q2_k / q3_k store them: bits 2 t of byte 32 h + l hold element 128 h + 32 t + l. */
function pack2(L: Uint8Array | Int8Array, out: Uint8Array, o: number): void {
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const e = 128 * h + l;
      out[o + 32 * h + l] = L[e] | (L[e + 32] << 2) | (L[e + 64] << 4) | (L[e + 96] << 6);
    }
  }
}

/**
 * q3_k WGSL (blocks of 110 bytes: at even bytes). Chunk k = 4 h + t, sub-blocks 2 k and 2 k + 1: 8 words of qs
 * from 32 + 32 h (bits 2 t), 8 of hmask from 0 (bit k); the scales' low nibbles from the half word at
 * 96 + 2 (k % 4) (high nibbles for k >= 4), their high bits from the half word at 104 + 2 (k % 2) (bits 2 (k / 2)).
 */
const Q3_K_WGSL = `const QB = 110u;
${RUN_WGSL}fn qChunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let o = row + (c >> 3u) * QB;
  let k = c & 7u;
  let aq = (o + 32u + 32u * (k >> 2u)) >> 2u;
  let am = o >> 2u;
  let s = (o & 2u) * 8u; // the runs' offset in their words
  let lo = kBits16(o + 96u + 2u * (k & 3u)) >> (4u * (k >> 2u));
  let hi = kBits16(o + 104u + 2u * (k & 1u)) >> (2u * (k >> 1u));
  let d = qHalf(o + 108u);
  let d0 = d * f32(i32((lo & 15u) | ((hi & 3u) << 4u)) - 32);
  let d1 = d * f32(i32(((lo >> 8u) & 15u) | (((hi >> 8u) & 3u) << 4u)) - 32);
  let qsh = 2u * (k & 3u);
  var r: array<vec4<f32>, 8>;
  var q0 = w[aq];
  var m0 = w[am];
  for (var i = 0u; i < 8u; i++) {
    let q1 = w[aq + i + 1u];
    let m1 = w[am + i + 1u];
    let qs = kSplice(q0, q1, s);
    let hm = kSplice(m0, m1, s);
    q0 = q1;
    m0 = m1;
    let v = ((qs >> qsh) & 0x03030303u) | (((hm >> k) & 0x01010101u) << 2u);
    r[i] = select(d1, d0, i < 4u) * qFloat((vec4<u32>(v) >> ${BYTES}) & vec4<u32>(255u), 4.0);
  }
  return r;
}
`;

/**
 * quantize_row_q3_K_ref: per sub-block of 16 a make_q3_quants scale (4 levels each side); the scales quantized to
 * 6 bits (signed, stored + 32) against the largest in magnitude (d = max / -32); levels requantized with them.
 */
export const q3_k: BlockFormat = {
  name: 'q3_k',
  ggmlType: 'Q3_K',
  blockElems: QK_K,
  blockBytes: 110,
  wgsl: Q3_K_WGSL,
  dequantizeBlock(bytes, o, out, at) {
    const d = readF16(bytes, o + 108);
    for (let k = 0; k < 8; k++) {
      const h = k >> 2;
      const t = k & 3;
      for (let half = 0; half < 2; half++) {
        const dl = f(d * (q3Scale(bytes, o + 96, 2 * k + half) - 32));
        for (let i = 0; i < 16; i++) {
          const l = 16 * half + i;
          const q = (bytes[o + 32 + 32 * h + l] >> (2 * t)) & 3;
          out[at + 32 * k + l] = f(dl * (q - ((bytes[o + l] >> k) & 1 ? 0 : 4)));
        }
      }
    }
  },
  quantizeBlock(x, at, out, o) {
    let maxScale = 0;
    let amax = 0;
    for (let j = 0; j < 16; j++) {
      subScales[j] = makeQ3Quants(16, 4, x, at + 16 * j, Li, 16 * j);
      if (Math.abs(subScales[j]) > amax) {
        amax = Math.abs(subScales[j]);
        maxScale = subScales[j];
      }
    }
    const s = o + 96;
    out.fill(0, s, s + 12);
    if (maxScale) {
      const iscale = f(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        const l = clamp((nearestInt(f(iscale * subScales[j])) << 24) >> 24, -32, 31) + 32; // int8_t l
        if (j < 8) out[s + j] = l & 0xf;
        else out[s + j - 8] |= (l & 0xf) << 4;
        out[s + 8 + (j % 4)] |= (l >> 4) << (2 * (j >> 2));
      }
      writeF16(out, o + 108, f(1 / iscale));
    } else {
      writeF16(out, o + 108, 0);
    }
    const d = readF16(out, o + 108);
    for (let j = 0; j < 16; j++) {
      const dj = f(d * (q3Scale(out, s, j) - 32));
      if (!dj) continue;
      for (let i = 0; i < 16; i++) Li[16 * j + i] = clamp(nearestInt(f(x[at + 16 * j + i] / dj)), -4, 3) + 4;
    }
    out.fill(0, o, o + 32);
    for (let j = 0; j < QK_K; j++) {
      if (Li[j] > 3) {
        out[o + (j & 31)] |= 1 << (j >> 5);
        Li[j] -= 4;
      }
    }
    pack2(Li, out, o + 32);
  },
};

/**
 * q2_k WGSL: blocks of 84 bytes, whole words (word a = block byte / 4). Chunk k = 4 h + t, sub-blocks 2 k and
 * 2 k + 1: their scale bytes from word a + k / 2, 8 words of qs from a + 4 + 8 h (bits 2 t), d and dmin at a + 20.
 */
const Q2_K_WGSL = `const QB = 84u;
fn qChunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let a = (row + (c >> 3u) * QB) >> 2u;
  let k = c & 7u;
  let dm = unpack2x16float(w[a + 20u]);
  let s = w[a + (k >> 1u)] >> ((k & 1u) * 16u);
  let d0 = dm.x * f32(s & 15u);
  let m0 = dm.y * f32((s >> 4u) & 15u);
  let d1 = dm.x * f32((s >> 8u) & 15u);
  let m1 = dm.y * f32((s >> 12u) & 15u);
  let q = a + 4u + 8u * (k >> 2u);
  let qsh = 2u * (k & 3u);
  var r: array<vec4<f32>, 8>;
  for (var i = 0u; i < 8u; i++) {
    let v = (w[q + i] >> qsh) & 0x03030303u;
    let lo = i < 4u;
    r[i] = select(d1, d0, lo) * qFloat((vec4<u32>(v) >> ${BYTES}) & vec4<u32>(255u), 0.0) - select(m1, m0, lo);
  }
  return r;
}
`;

/**
 * quantize_row_q2_K_ref: per sub-block of 16 a make_qkx2_quants fit (3 levels, |x| weights, absolute error); scales
 * and mins quantized to 4 bits against their maxima (d = max scale / 15, dmin = max min / 15).
 */
export const q2_k: BlockFormat = {
  name: 'q2_k',
  ggmlType: 'Q2_K',
  blockElems: QK_K,
  blockBytes: 84,
  wgsl: Q2_K_WGSL,
  dequantizeBlock(bytes, o, out, at) {
    const d = readF16(bytes, o + 80);
    const dmin = readF16(bytes, o + 82);
    for (let j = 0; j < 16; j++) {
      const sc = bytes[o + j];
      const dl = f(d * (sc & 0xf));
      const ml = f(dmin * (sc >> 4));
      const h = j >> 3;
      const t = (j >> 1) & 3;
      for (let i = 0; i < 16; i++) {
        const l = 16 * (j & 1) + i;
        out[at + 16 * j + i] = f(dl * ((bytes[o + 16 + 32 * h + l] >> (2 * t)) & 3)) - ml;
      }
    }
  },
  quantizeBlock(x, at, out, o) {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) subWeights[l] = Math.abs(x[at + 16 * j + l]);
      subScales[j] = makeQkx2Quants(16, 3, x, at + 16 * j, subWeights, Lu, 16 * j, subMins, j, -0.5, F01, 15, true);
      if (subScales[j] > maxScale) maxScale = subScales[j];
      if (subMins[j] > maxMin) maxMin = subMins[j];
    }
    if (maxScale > 0) {
      const iscale = f(15 / maxScale);
      for (let j = 0; j < 16; j++) out[o + j] = nearestInt(f(iscale * subScales[j])) & 0xff;
      writeF16(out, o + 80, f(maxScale / 15));
    } else {
      out.fill(0, o, o + 16);
      writeF16(out, o + 80, 0);
    }
    if (maxMin > 0) {
      const iscale = f(15 / maxMin);
      for (let j = 0; j < 16; j++) out[o + j] |= (nearestInt(f(iscale * subMins[j])) << 4) & 0xff;
      writeF16(out, o + 82, f(maxMin / 15));
    } else {
      writeF16(out, o + 82, 0);
    }
    const d = readF16(out, o + 80);
    const dmin = readF16(out, o + 82);
    for (let j = 0; j < 16; j++) {
      const dj = f(d * (out[o + j] & 0xf));
      if (!dj) continue;
      const dm = f(dmin * (out[o + j] >> 4));
      for (let i = 0; i < 16; i++) Lu[16 * j + i] = clamp(nearestInt(f(f(x[at + 16 * j + i] + dm) / dj)), 0, 3);
    }
    pack2(Lu, out, o + 16);
  },
};
