/**
 * The block formats the quantized LinearMethod knows, by name. Adding a format: a BlockFormat in a file of this
 * folder (CPU reference + WGSL qChunk), listed here; nothing else changes.
 */
import type { BlockFormat } from '../format.js';
import { HF_FORMATS } from './hf.js';
import { iq4_nl, iq4_xs } from './iq4.js';
import { q2_k, q3_k, q4_k, q5_k, q6_k } from './k-quants.js';
import { q4_0, q4_1, q5_0, q5_1, q8_0 } from './legacy.js';

export const FORMATS = { q8_0, q4_0, q4_k, q6_k, q5_k, q3_k, q2_k, q4_1, q5_0, q5_1, iq4_nl, iq4_xs, ...HF_FORMATS } satisfies Record<string, BlockFormat>;

/** A block format's name: 'q8_0', 'q4_0', ... */
export type QuantFormat = keyof typeof FORMATS;

/** Every format, by name (GGUF files may hold any of them). */
export const QUANT_FORMATS = Object.keys(FORMATS) as QuantFormat[];

/** The formats a float checkpoint can be quantized to on load (those with a reference quantizer). */
export const ON_LOAD_FORMATS = QUANT_FORMATS.filter((f) => FORMATS[f].quantizeBlock !== undefined);

/** The format named `name` (throws naming the known ones). */
export function blockFormat(name: string): BlockFormat {
  const f = (FORMATS as Record<string, BlockFormat>)[name];
  if (!f) throw new Error(`unknown quantization format '${name}' (known: ${QUANT_FORMATS.join(', ')})`);
  return f;
}

/** The format of a ggml type name ('Q4_K' -> q4_k), or undefined when none is implemented. */
export function formatOfGgmlType(typeName: string): QuantFormat | undefined {
  return QUANT_FORMATS.find((f) => FORMATS[f].ggmlType === typeName);
}
