/** Helpers the formats share (C's float behaviour, f16 bits; the WGSL reader of blocks with an f16 scale first). */
import { f32BitsToF16Bits } from '../../../loader/convert.js';

const f32Bits = new Uint32Array(1);
const f32View = new Float32Array(f32Bits.buffer);

/** The f16 bits of an f32 value (round to nearest even, as GGML_FP32_TO_FP16). */
export function toF16Bits(x: number): number {
  f32View[0] = x;
  return f32BitsToF16Bits(f32Bits[0]);
}

/** C's roundf: half away from zero. */
export const roundf = (v: number): number => Math.sign(v) * Math.round(Math.abs(v));

/**
 * The WGSL reader of a 32-element block with an f16 scale at byte 0 and `words` words of quants from byte 2: each
 * quant word is loaded once (W words from a = (o + 2) / 4, one more when o % 4 == 0, where quant word j is spliced
 * from loaded words j and j + 1; see lib/q_block.wgsl); `unpack` turns qw into r (unscaled values).
 */
export function scaledBlockWgsl(bytes: number, words: number, unpack: string): string {
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
