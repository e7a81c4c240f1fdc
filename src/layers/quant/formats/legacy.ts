/**
 * llama.cpp's first block formats, 32 elements a block with an f16 scale d at the block's first byte (ggml's
 * block_q8_0 / block_q4_0):
 * - q8_0 (34 bytes): d, then 32 int8 quants q; x = d q.
 * - q4_0 (18 bytes): d, then 16 bytes of nibbles: byte j holds element j in its low nibble and element 16 + j in its
 *   high nibble; x = d (q - 8).
 */
import { f16BitsToF32 } from '../../../loader/convert.js';
import type { BlockFormat } from '../format.js';
import { roundf, toF16Bits } from './common.js';

const QK = 32;

/**
 * The WGSL reader of a 32-element block with an f16 scale at byte 0 and `words` words of quants from byte 2: each
 * quant word is loaded once (W words from a = (o + 2) / 4, one more when o % 4 == 0, where quant word j is spliced
 * from loaded words j and j + 1; see lib/q_block.wgsl); `unpack` turns qw into r (unscaled values).
 */
function scaledBlockWgsl(bytes: number, words: number, unpack: string): string {
  return `const QB = ${bytes}u;
fn qChunk(row: u32, c: u32) -> array<vec4<f32>, 8> {
  let o = row + c * QB;
  let a = (o + 2u) >> 2u;
  var u: array<u32, ${words + 1}>;
  for (var i = 0u; i < ${words}u; i++) {
    u[i] = w[a + i];
  }
  var qw: array<u32, ${words}>;
  if ((o & 2u) != 0u) {
    qw = array<u32, ${words}>(${Array.from({ length: words }, (_, i) => `u[${i}]`).join(', ')});
  } else {
    u[${words}] = w[a + ${words}u];
    for (var j = 0u; j < ${words}u; j++) {
      qw[j] = (u[j] >> 16u) | (u[j + 1u] << 16u);
    }
  }
  let d = qHalf(o);
  var r: array<vec4<f32>, 8>;
${unpack}
  return r;
}
`;
}

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
    let v = bitcast<vec4<i32>>(vec4<u32>(qw[i]) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
    r[i] = d * vec4<f32>(v);
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
    r[i] = d * (vec4<f32>(v & vec4<u32>(15u)) - 8.0);
    r[i + 4u] = d * (vec4<f32>((v >> vec4<u32>(4u)) & vec4<u32>(15u)) - 8.0);
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
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[at + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const h = toF16Bits(d);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    const q4 = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(v * id) + 8.5)));
    for (let j = 0; j < QK / 2; j++) out[o + 2 + j] = q4(x[at + j]) | (q4(x[at + QK / 2 + j]) << 4);
  },
};
