/**
 * What a block-quantized weight format is (llama.cpp's ggml block types): how many elements a block holds and its
 * bytes, its CPU reference (dequantize, and quantize where the format can be made on load), and its WGSL reader.
 * One file under formats/ per family of formats; formats/index.ts lists them. The kernels (kernels.ts) and the
 * LinearMethod (method.ts) are the same for every format: they see a row as chunks of 32 elements that the format's
 * `qChunk` dequantizes in registers.
 */

/** Elements per chunk: the unit the kernels work in (a block is one chunk, or 8 for the 256-element k-quants). */
export const QK = 32;

export interface BlockFormat {
  /** The name users give (`quantization: 'q4_k'`) and ggml's type name: 'q4_k' / 'Q4_K'. */
  readonly name: string;
  readonly ggmlType: string;
  /** Elements per block: 32 or 256 (a multiple of QK). */
  readonly blockElems: number;
  /** Bytes per block, even: blocks of a row start at even bytes (rows start 4-byte aligned). */
  readonly blockBytes: number;
  /**
   * WGSL over `w: array<u32>` (declared by the including kernel; lib/q_block.wgsl's helpers come along):
   *   fn qChunk(o: u32, c: u32) -> array<vec4<f32>, 8>
   * the 32 dequantized values of chunk c (elements 32 c .. 32 c + 31, element 4 i + e in component e of vector i)
   * of the row whose first byte is o. Blocks lie back to back from o.
   */
  readonly wgsl: string;
  /** Dequantizes the block at bytes[o ..] into out[at .. at + blockElems), as ggml's dequantize_row_*. */
  dequantizeBlock(bytes: Uint8Array, o: number, out: Float32Array, at: number): void;
  /** Quantizes x[at .. at + blockElems) into out[o .. o + blockBytes), bit for bit as ggml's quantize_row_*_ref. */
  quantizeBlock?(x: Float32Array, at: number, out: Uint8Array, o: number): void;
}
