/**
 * IEEE half-precision conversion on the CPU (Node 20 has no Float16Array), for values rather than raw tensor
 * bytes. The bit-level rounding (nearest, ties to even, like torch) lives in the loader's convert.ts.
 */
import { f16BitsToF32, f32BitsToF16Bits } from '../loader/convert.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The f16 bit pattern nearest to `value`. */
export function toHalfBits(value: number): number {
  f32[0] = value;
  return f32BitsToF16Bits(u32[0]);
}

/** The value of the f16 bit pattern `h`. */
export const fromHalfBits = f16BitsToF32;

/** f32 values -> f16 bit patterns. */
export function f32ToF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toHalfBits(values[i]);
  return out;
}

/** f16 bit patterns -> f32 values. */
export function f16ToF32(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32(bits[i]);
  return out;
}
