/** Qwen3 (Qwen3ForCausalLM): Llama with per-head q/k RMSNorm before rope and head_dim apart from hidden / heads. */
import type { ModelFamily } from './family.js';
import { llamaWeights, readLlamaLike } from './llama.js';
import { qwenSlidingWindow } from './qwen2.js';

export const qwen3: ModelFamily = {
  name: 'qwen3',
  architectures: ['Qwen3ForCausalLM'],
  modelTypes: ['qwen3'],
  // Qwen3's HF default head_dim is 128 whatever the hidden size.
  readConfig: (f) => readLlamaLike(f, { maxPos: 32768, eps: 1e-6, theta: 10000, headDim: 128, qkvBias: 'attention_bias', qkNorm: true, slidingWindow: qwenSlidingWindow }),
  weights: (cfg) => llamaWeights(cfg),
};
