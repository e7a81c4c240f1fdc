/**
 * Phi-3, Phi-3.5 and Phi-4-mini (Phi3ForCausalLM): Llama with fused `qkv_proj` (q, k, v rows by head counts, so GQA
 * too) and `gate_up_proj` tensors, partial rotary (`partial_rotary_factor`) and LongRoPE scaling.
 */
import type { JsonFields } from '../config/json-fields.js';
import type { ModelFamily } from './family.js';
import { llamaWeights, readLlamaLike } from './llama.js';

function slidingWindow(f: JsonFields): number | null {
  return f.has('sliding_window') ? f.int('sliding_window') : null;
}

export const phi3: ModelFamily = {
  name: 'phi3',
  architectures: ['Phi3ForCausalLM'],
  modelTypes: ['phi3'],
  readConfig: (f) => readLlamaLike(f, { maxPos: 4096, eps: 1e-5, theta: 10000, qkvBias: 'never', slidingWindow }),
  weights: (cfg) => llamaWeights(cfg, { fused: true }),
};
