/**
 * Block-quantized weights (vLLM's `quantization` option, GGUF tensor types): the LinearMethod of each format of
 * formats/, and the methods a model load uses.
 */
import type { LinearMethod, MethodChooser } from '../linear.js';
import { blockFormat, ON_LOAD_FORMATS, type QuantFormat } from './formats/index.js';
import { quantMethod } from './method.js';

export { QK, type BlockFormat } from './format.js';
export { QUANT_FORMATS, ON_LOAD_FORMATS, blockFormat, formatOfGgmlType, type QuantFormat } from './formats/index.js';
export { blockBytes, rowBytes, quantizeRows, dequantizeRows } from './blocks.js';
export { quantMethod, createQuantWeight, type QuantMethod, type QuantLinearWeight, type QuantSegment } from './method.js';

/**
 * Matrix slots kept in the dense method (weights.ts slot names): token and position embeddings and the LM head; the
 * MoE router (llama.cpp keeps ffn_gate_inp in f32 too: routing flips on small errors), the shared expert's gate
 * (ops.sharedExpertGate reads it as a dense weight) and the experts (ops/moe.ts reads dense stacks).
 */
const DENSE_SLOTS: ReadonlySet<string> = new Set(['embed', 'lmHead', 'positions', 'router', 'sharedGate', 'experts.gateUp', 'experts.down']);

/**
 * llama.cpp-style mixes for quantization on load: the format of each matrix slot. Q4_K_M / Q5_K_M files keep the
 * MLP's down projection (and attn_v, fused into qkv here) at q6_k; here down is q6_k and the rest q4_k / q5_k.
 */
const MIXES: Record<string, (slot: string) => QuantFormat> = {
  q4_k_m: (slot) => (slot === 'down' ? 'q6_k' : 'q4_k'),
  q5_k_m: (slot) => (slot === 'down' ? 'q6_k' : 'q5_k'),
};

/** What `quantization` may name: a format with a quantizer, or a mix of them. */
export type Quantization = QuantFormat | keyof typeof MIXES;

/** The format a `quantization` gives the matrix slot `slot` (before DENSE_SLOTS and whole-block checks). */
export function slotFormat(quantization: Quantization, slot: string): QuantFormat {
  return MIXES[quantization]?.(slot) ?? (quantization as QuantFormat);
}

/** Throws unless `value` names a format or mix a float checkpoint can be quantized to on load (null / undefined: none). */
export function checkQuantization(value: unknown): Quantization | null {
  if (value === null || value === undefined) return null;
  const known = [...ON_LOAD_FORMATS, ...Object.keys(MIXES)];
  if (typeof value !== 'string' || !known.includes(value)) {
    throw new Error(`quantization: '${String(value)}' is not supported (supported: ${known.join(', ')}, or null for the checkpoint's dtype)`);
  }
  return value as Quantization;
}

/**
 * The methods of a model quantized to `format` on load (a MethodChooser for loadWeights): every projection matrix in
 * `format`, except the embeddings and the LM head (their rows feed the logits directly; they stay in `dense`, as
 * llama.cpp's q8_0 / q4_0 files keep token embeddings and output at higher precision when asked), matrices whose rows
 * are not whole blocks, the MoE router and shared-expert gate, and the MoE experts (the fused MoE kernels read
 * f32 / f16): DENSE_SLOTS. Weights carry their own method, so the kernels follow each weight's storage.
 *
 * @example
 * loadWeights(ctx, source, config, { method: modelQuantMethods('q8_0', denseMethod('f16')) });
 */
export function modelQuantMethods(quantization: Quantization, dense: LinearMethod): MethodChooser {
  return (slot, cols) => {
    const format = slotFormat(quantization, slot);
    return DENSE_SLOTS.has(slot) || cols % blockFormat(format).blockElems !== 0 ? dense : quantMethod(format);
  };
}
