/**
 * Rows of blocks on the CPU, for any format of formats/: quantizing float rows (the reference quantizers, bit for
 * bit) and reading blocks back. A row of `cols` elements is cols / blockElems blocks back to back (GGUF's layout);
 * the GPU pads each row to a multiple of 4 bytes (`rowStride`).
 */
import { blockFormat, type QuantFormat } from './formats/index.js';

/** Bytes per block of `format`. */
export const blockBytes = (format: QuantFormat): number => blockFormat(format).blockBytes;

/** Bytes of one row of `cols` elements, unpadded (GGUF's row). */
export const rowBytes = (format: QuantFormat, cols: number): number => (cols / blockFormat(format).blockElems) * blockFormat(format).blockBytes;

/** Throws unless a row of `cols` elements is whole blocks. */
export function checkBlockCols(format: QuantFormat, cols: number, what: string): void {
  const n = blockFormat(format).blockElems;
  if (!Number.isInteger(cols) || cols <= 0 || cols % n !== 0) {
    throw new Error(`${what}: ${format} stores rows in blocks of ${n}, but a row has ${cols} elements (not a positive multiple of ${n})`);
  }
}

/**
 * Quantizes `rows` rows of `cols` floats (row-major) into rows of `rowStride` bytes (>= the row's blocks; the
 * padding is left zero).
 *
 * @example
 * const blocks = quantizeRows('q8_0', w, 64, 128); // 64 rows of 4 blocks: 64 * 136 bytes, GGUF's layout
 */
export function quantizeRows(format: QuantFormat, x: Float32Array, rows: number, cols: number, rowStride = rowBytes(format, cols)): Uint8Array {
  const f = blockFormat(format);
  if (!f.quantizeBlock) throw new Error(`${format} has no quantizer here (it loads from GGUF files only)`);
  checkBlockCols(format, cols, 'quantizeRows');
  if (x.length < rows * cols) throw new Error(`quantizeRows: ${x.length} values for ${rows} rows of ${cols}`);
  const out = new Uint8Array(rows * rowStride);
  const nb = cols / f.blockElems;
  for (let r = 0; r < rows; r++) for (let b = 0; b < nb; b++) f.quantizeBlock(x, r * cols + b * f.blockElems, out, r * rowStride + b * f.blockBytes);
  return out;
}

/**
 * Dequantizes rows of `rowStride` bytes (whole blocks, then padding) into f32 [rows, cols].
 *
 * @example
 * const w = dequantizeRows('q4_0', blocks, 64, 128); // Float32Array(64 * 128)
 */
export function dequantizeRows(format: QuantFormat, bytes: Uint8Array, rows: number, cols: number, rowStride = rowBytes(format, cols)): Float32Array {
  const f = blockFormat(format);
  checkBlockCols(format, cols, 'dequantizeRows');
  if (bytes.length < rows * rowStride) throw new Error(`dequantizeRows: ${bytes.length} bytes for ${rows} rows of ${rowStride}`);
  const out = new Float32Array(rows * cols);
  const nb = cols / f.blockElems;
  for (let r = 0; r < rows; r++) for (let b = 0; b < nb; b++) f.dequantizeBlock(bytes, r * rowStride + b * f.blockBytes, out, r * cols + b * f.blockElems);
  return out;
}
