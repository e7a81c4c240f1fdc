/**
 * llama.cpp's first block formats, 32 elements a block with an f16 scale d at the block's first byte (ggml's
 * block_q8_0, block_q4_0, block_q4_1, block_q5_0, block_q5_1 in ggml-common.h):
 * - q8_0 (34 bytes): d, then 32 int8 quants q; x = d q.
 * - q4_0 (18 bytes): d, then 16 bytes of nibbles: byte j holds element j in its low nibble and element 16 + j in its
 *   high nibble; x = d (q - 8).
 * - q4_1 (20 bytes): d, an f16 minimum m, then q4_0's nibbles; x = d q + m.
 * - q5_0 (22 bytes): d, a u32 qh (bit j: the fifth bit of element j), then q4_0's nibbles (the low 4 bits);
 *   x = d (q - 16).
 * - q5_1 (24 bytes): d, m, qh, nibbles; x = d q + m.
 * With q in [0, 31], d an f16, d q is exact in f32: the only rounding of dequantization is the sum with m.
 */
import { f16BitsToF32 } from '../../../loader/convert.js';
import type { BlockFormat } from '../format.js';
import { roundf, scaledBlockWgsl, toF16Bits } from './common.js';

const QK = 32;

/**
 * WGSL in a loop over i < 4: the low 4 bits of elements 4 i + e (lo) and 16 + 4 i + e (hi) from the nibble word
 * `word` (byte b of word i holds elements 4 i + b and 16 + 4 i + b).
 */
const nibbles = (word: string) => `    let v = vec4<u32>(${word}) >> vec4<u32>(0u, 8u, 16u, 24u);
    let lo = v & vec4<u32>(15u);
    let hi = (v >> vec4<u32>(4u)) & vec4<u32>(15u);`;
/** The fifth bits from qh for elements 4 i + e (lo) and 16 + 4 i + e (hi), as 16 or 0. */
const FIFTH_BITS = `    let e = vec4<u32>(0u, 1u, 2u, 3u) + 4u * i;
    let lo5 = lo | (((vec4<u32>(qh) >> e) & vec4<u32>(1u)) << vec4<u32>(4u));
    let hi5 = hi | (((vec4<u32>(qh) >> (e + vec4<u32>(16u))) & vec4<u32>(1u)) << vec4<u32>(4u));`;

/**
 * The WGSL reader of a block with f16 d and m at byte 0 (q4_1, q5_1: `words` words after them, qh first for
 * q5_1). Their sizes (20, 24) are multiples of 4, so every block starts word aligned: plain loads.
 */
function minBlockWgsl(bytes: number, words: number, body: string): string {
  return `const QB = ${bytes}u;
fn qChunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let a = (row + c * QB) >> 2u;
  let dm = unpack2x16float(w[a]);
  let d = dm.x;
  let m = dm.y;
  var u: array<u32, ${words}>;
  for (var i = 0u; i < ${words}u; i++) {
    u[i] = w[a + 1u + i];
  }
  var r: array<vec4<f32>, 8>;
${body}
  return r;
}
`;
}

/** q in [0, 15] or [0, 31] of a block with a minimum: the f16 d and m at bytes o, o + 2. */
function readDm(bytes: Uint8Array, o: number): [number, number] {
  return [f16BitsToF32(bytes[o] | (bytes[o + 1] << 8)), f16BitsToF32(bytes[o + 2] | (bytes[o + 3] << 8))];
}

/** The block's min and max as quantize_row_q{4,5}_1_ref find them (strict comparisons from FLT_MAX / -FLT_MAX). */
function minMax(x: Float32Array, at: number): [number, number] {
  let min = 3.4028234663852886e38;
  let max = -3.4028234663852886e38;
  for (let j = 0; j < QK; j++) {
    const v = x[at + j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** The first x of the largest |x| in the block (q4_0, q5_0: `if (amax < fabsf(v))`). */
function signedAbsMax(x: Float32Array, at: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK; j++) {
    const v = x[at + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

/** Writes f16 bits of `v` at out[o], out[o + 1]. */
function putHalf(out: Uint8Array, o: number, v: number): void {
  const h = toF16Bits(v);
  out[o] = h & 0xff;
  out[o + 1] = h >> 8;
}

/** Writes 32 5-bit quants: qh (u32 LE: bit j = bit 4 of q[j]) at out[o], the nibbles (as q4_0) at out[o + 4]. */
function put5(q: Uint8Array, out: Uint8Array, o: number): void {
  let qh = 0;
  for (let j = 0; j < QK; j++) qh |= ((q[j] >> 4) & 1) << j;
  for (let b = 0; b < 4; b++) out[o + b] = (qh >>> (8 * b)) & 0xff;
  for (let j = 0; j < QK / 2; j++) out[o + 4 + j] = (q[j] & 15) | ((q[QK / 2 + j] & 15) << 4);
}

/** Reads 32 5-bit quants written by put5. */
function get5(bytes: Uint8Array, o: number, q: Uint8Array): void {
  const qh = bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24);
  for (let j = 0; j < QK / 2; j++) {
    const b = bytes[o + 4 + j];
    q[j] = (b & 15) | (((qh >>> j) & 1) << 4);
    q[QK / 2 + j] = (b >> 4) | (((qh >>> (QK / 2 + j)) & 1) << 4);
  }
}

const q5 = new Uint8Array(QK);

/**
 * quantize_row_q8_0_ref: amax = max |x|; d = amax / ((1 << 7) - 1); id = d ? 1 / d : 0; q = roundf(x id).
 * f32 arithmetic as in C (Math.fround); the quants use the f32 d, the block stores d rounded to f16.
 */
export const q8_0: BlockFormat = {
  name: 'q8_0',
  ggmlType: 'Q8_0',
  blockElems: QK,
  blockBytes: 34,
  wgsl: scaledBlockWgsl(
    34,
    8,
    `  for (var i = 0u; i < 8u; i++) {
    let v = (vec4<u32>(qw[i]) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(255u);
    r[i] = d * qFloat(v ^ vec4<u32>(128u), 128.0);
  }`,
  ),
  dequantizeBlock(bytes, o, out, at) {
    const d = f16BitsToF32(bytes[o] | (bytes[o + 1] << 8));
    for (let j = 0; j < QK; j++) out[at + j] = d * ((bytes[o + 2 + j] << 24) >> 24);
  },
  quantizeBlock(x, at, out, o) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[at + j]));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const h = toF16Bits(d);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    for (let j = 0; j < QK; j++) out[o + 2 + j] = roundf(Math.fround(x[at + j] * id)) & 0xff;
  },
};

/**
 * quantize_row_q4_0_ref: max = the first x of the largest |x|; d = max / -8; id = d ? 1 / d : 0;
 * q = MIN(15, (int8_t)(x id + 8.5f)) (truncation; x id lies in [-8, 8], so the largest magnitude maps to 0).
 */
export const q4_0: BlockFormat = {
  name: 'q4_0',
  ggmlType: 'Q4_0',
  blockElems: QK,
  blockBytes: 18,
  wgsl: scaledBlockWgsl(
    18,
    4,
    `  for (var i = 0u; i < 4u; i++) {
    let v = vec4<u32>(qw[i]) >> vec4<u32>(0u, 8u, 16u, 24u);
    r[i] = d * qFloat(v & vec4<u32>(15u), 8.0);
    r[i + 4u] = d * qFloat((v >> vec4<u32>(4u)) & vec4<u32>(15u), 8.0);
  }`,
  ),
  dequantizeBlock(bytes, o, out, at) {
    const d = f16BitsToF32(bytes[o] | (bytes[o + 1] << 8));
    for (let j = 0; j < QK / 2; j++) {
      const b = bytes[o + 2 + j];
      out[at + j] = d * ((b & 15) - 8);
      out[at + QK / 2 + j] = d * ((b >> 4) - 8);
    }
  },
  quantizeBlock(x, at, out, o) {
    const max = signedAbsMax(x, at);
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const h = toF16Bits(d);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    const q4 = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(v * id) + 8.5)));
    for (let j = 0; j < QK / 2; j++) out[o + 2 + j] = q4(x[at + j]) | (q4(x[at + QK / 2 + j]) << 4);
  },
};

/**
 * quantize_row_q4_1_ref: d = (max - min) / 15; id = d ? 1 / d : 0; q = MIN(15, (int8_t)((x - min) id + 0.5f));
 * stores d and m = min rounded to f16 (the quants use the f32 d and min, so m is the block's nearest f16, not its
 * exact minimum).
 */
export const q4_1: BlockFormat = {
  name: 'q4_1',
  ggmlType: 'Q4_1',
  blockElems: QK,
  blockBytes: 20,
  wgsl: minBlockWgsl(
    20,
    4,
    `  for (var i = 0u; i < 4u; i++) {
${nibbles('u[i]')}
    r[i] = d * qFloat(lo, 0.0) + m;
    r[i + 4u] = d * qFloat(hi, 0.0) + m;
  }`,
  ),
  dequantizeBlock(bytes, o, out, at) {
    const [d, m] = readDm(bytes, o);
    for (let j = 0; j < QK / 2; j++) {
      const b = bytes[o + 4 + j];
      out[at + j] = (b & 15) * d + m;
      out[at + QK / 2 + j] = (b >> 4) * d + m;
    }
  },
  quantizeBlock(x, at, out, o) {
    const [min, max] = minMax(x, at);
    const d = Math.fround(Math.fround(max - min) / 15);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    putHalf(out, o, d);
    putHalf(out, o + 2, min);
    const q4 = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(Math.fround(v - min) * id) + 0.5)));
    for (let j = 0; j < QK / 2; j++) out[o + 4 + j] = q4(x[at + j]) | (q4(x[at + QK / 2 + j]) << 4);
  },
};

/** quantize_row_q5_0_ref: as q4_0 with d = max / -16 and q = MIN(31, (int8_t)(x id + 16.5f)). */
export const q5_0: BlockFormat = {
  name: 'q5_0',
  ggmlType: 'Q5_0',
  blockElems: QK,
  blockBytes: 22,
  // The words from byte 2: qh, then the 4 nibble words.
  wgsl: scaledBlockWgsl(
    22,
    5,
    `  let qh = qw[0];
  for (var i = 0u; i < 4u; i++) {
${nibbles('qw[i + 1u]')}
${FIFTH_BITS}
    r[i] = d * qFloat(lo5, 16.0);
    r[i + 4u] = d * qFloat(hi5, 16.0);
  }`,
  ),
  dequantizeBlock(bytes, o, out, at) {
    const d = f16BitsToF32(bytes[o] | (bytes[o + 1] << 8));
    get5(bytes, o + 2, q5);
    for (let j = 0; j < QK; j++) out[at + j] = (q5[j] - 16) * d;
  },
  quantizeBlock(x, at, out, o) {
    const max = signedAbsMax(x, at);
    const d = Math.fround(max / -16);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    putHalf(out, o, d);
    for (let j = 0; j < QK; j++) q5[j] = Math.min(31, Math.trunc(Math.fround(Math.fround(x[at + j] * id) + 16.5)));
    put5(q5, out, o + 2);
  },
};

/** quantize_row_q5_1_ref: as q4_1 with d = (max - min) / 31 and q = (uint8_t)((x - min) id + 0.5f) (at most 31). */
export const q5_1: BlockFormat = {
  name: 'q5_1',
  ggmlType: 'Q5_1',
  blockElems: QK,
  blockBytes: 24,
  wgsl: minBlockWgsl(
    24,
    5,
    `  let qh = u[0];
  for (var i = 0u; i < 4u; i++) {
${nibbles('u[i + 1u]')}
${FIFTH_BITS}
    r[i] = d * qFloat(lo5, 0.0) + m;
    r[i + 4u] = d * qFloat(hi5, 0.0) + m;
  }`,
  ),
  dequantizeBlock(bytes, o, out, at) {
    const [d, m] = readDm(bytes, o);
    get5(bytes, o + 4, q5);
    for (let j = 0; j < QK; j++) out[at + j] = q5[j] * d + m;
  },
  quantizeBlock(x, at, out, o) {
    const [min, max] = minMax(x, at);
    const d = Math.fround(Math.fround(max - min) / 31);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    putHalf(out, o, d);
    putHalf(out, o + 2, min);
    for (let j = 0; j < QK; j++) q5[j] = Math.trunc(Math.fround(Math.fround(Math.fround(x[at + j] - min) * id) + 0.5)) & 31;
    put5(q5, out, o + 4);
  },
};
