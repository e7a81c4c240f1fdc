/**
 * llama.cpp's block formats on the CPU: quantizing float rows (the reference quantizers, bit for bit) and reading
 * blocks back. A block holds 32 consecutive elements of a row:
 * - q8_0 (34 bytes): f16 scale d, then 32 int8 quants q; x = d q.
 * - q4_0 (18 bytes): f16 scale d, then 16 bytes of nibbles: byte j holds element j in its low nibble and element
 *   16 + j in its high nibble; x = d (q - 8).
 * The scale is little-endian f16 at the block's first byte (ggml's block_q8_0 / block_q4_0).
 */
import { f16BitsToF32, f32BitsToF16Bits } from '../../loader/convert.js';

export type QuantFormat = 'q8_0' | 'q4_0';

export const QUANT_FORMATS: readonly QuantFormat[] = ['q8_0', 'q4_0'];

/** Elements per block (QK8_0 = QK4_0 = 32). */
export const QK = 32;

/** Bytes per block: 2 (f16 d) + 32 (q8_0) or 16 (q4_0). */
export const blockBytes = (format: QuantFormat): number => (format === 'q8_0' ? 34 : 18);

const f32Bits = new Uint32Array(1);
const f32View = new Float32Array(f32Bits.buffer);
/** The f16 bits of an f32 value (round to nearest even, as GGML_FP32_TO_FP16). */
function toF16Bits(x: number): number {
  f32View[0] = x;
  return f32BitsToF16Bits(f32Bits[0]);
}

/** C's roundf: half away from zero. */
const roundf = (v: number): number => Math.sign(v) * Math.round(Math.abs(v));

/**
 * Quantizes one block of 32 values x[at ..] into out[o .. o + blockBytes). Every step is f32 arithmetic as in C
 * (Math.fround), so the bytes equal llama.cpp's (ggml-quants.c):
 * - quantize_row_q8_0_ref: amax = max |x|; d = amax / ((1 << 7) - 1); id = d ? 1 / d : 0; q = roundf(x id).
 * - quantize_row_q4_0_ref: max = the first x of the largest |x|; d = max / -8; id = d ? 1 / d : 0;
 *   q = MIN(15, (int8_t)(x id + 8.5f)) (truncation; x id lies in [-8, 8], so the largest magnitude maps to 0).
 * The quants use the f32 d; the block stores d rounded to f16.
 */
export function quantizeBlock(format: QuantFormat, x: Float32Array, at: number, out: Uint8Array, o: number): void {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK; j++) {
    const v = x[at + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  const d = Math.fround(format === 'q8_0' ? amax / 127 : max / -8);
  const id = d !== 0 ? Math.fround(1 / d) : 0;
  const h = toF16Bits(d);
  out[o] = h & 0xff;
  out[o + 1] = h >> 8;
  if (format === 'q8_0') {
    for (let j = 0; j < QK; j++) out[o + 2 + j] = roundf(Math.fround(x[at + j] * id)) & 0xff;
    return;
  }
  const q4 = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(v * id) + 8.5)));
  for (let j = 0; j < QK / 2; j++) out[o + 2 + j] = q4(x[at + j]) | (q4(x[at + QK / 2 + j]) << 4);
}

/** Dequantizes the block at bytes[o ..] into out[at .. at + 32): d q (q8_0) or d (q - 8) (q4_0), in f32. */
export function dequantizeBlock(format: QuantFormat, bytes: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = f16BitsToF32(bytes[o] | (bytes[o + 1] << 8));
  if (format === 'q8_0') {
    for (let j = 0; j < QK; j++) out[at + j] = d * ((bytes[o + 2 + j] << 24) >> 24);
    return;
  }
  for (let j = 0; j < QK / 2; j++) {
    const b = bytes[o + 2 + j];
    out[at + j] = d * ((b & 15) - 8);
    out[at + QK / 2 + j] = d * ((b >> 4) - 8);
  }
}

/** Throws unless a row of `cols` elements is whole blocks. */
export function checkBlockCols(format: QuantFormat, cols: number, what: string): void {
  if (!Number.isInteger(cols) || cols <= 0 || cols % QK !== 0) {
    throw new Error(`${what}: ${format} stores rows in blocks of ${QK}, but a row has ${cols} elements (not a positive multiple of ${QK})`);
  }
}

/**
 * Quantizes `rows` rows of `cols` floats (row-major) into rows of `rowStride` bytes (>= cols / 32 blocks; the
 * padding is left zero).
 *
 * @example
 * const blocks = quantizeRows('q8_0', w, 64, 128); // 64 rows of 4 blocks: 64 * 136 bytes, GGUF's layout
 */
export function quantizeRows(format: QuantFormat, x: Float32Array, rows: number, cols: number, rowStride = (cols / QK) * blockBytes(format)): Uint8Array {
  checkBlockCols(format, cols, 'quantizeRows');
  if (x.length < rows * cols) throw new Error(`quantizeRows: ${x.length} values for ${rows} rows of ${cols}`);
  const out = new Uint8Array(rows * rowStride);
  const qb = blockBytes(format);
  for (let r = 0; r < rows; r++) for (let b = 0; b < cols / QK; b++) quantizeBlock(format, x, r * cols + b * QK, out, r * rowStride + b * qb);
  return out;
}

/**
 * Dequantizes rows of `rowStride` bytes (whole blocks, then padding) into f32 [rows, cols].
 *
 * @example
 * const w = dequantizeRows('q4_0', blocks, 64, 128); // Float32Array(64 * 128)
 */
export function dequantizeRows(format: QuantFormat, bytes: Uint8Array, rows: number, cols: number, rowStride = (cols / QK) * blockBytes(format)): Float32Array {
  checkBlockCols(format, cols, 'dequantizeRows');
  if (bytes.length < rows * rowStride) throw new Error(`dequantizeRows: ${bytes.length} bytes for ${rows} rows of ${rowStride}`);
  const out = new Float32Array(rows * cols);
  const qb = blockBytes(format);
  for (let r = 0; r < rows; r++) for (let b = 0; b < cols / QK; b++) dequantizeBlock(format, bytes, r * rowStride + b * qb, out, r * cols + b * QK);
  return out;
}
