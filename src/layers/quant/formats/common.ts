/** Helpers the formats' CPU references share (C's float behaviour, f16 bits). */
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
