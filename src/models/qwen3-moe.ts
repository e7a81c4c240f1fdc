/**
 * Qwen3-MoE (Qwen3MoeForCausalLM): Qwen3 (per-head q/k norm, head_dim apart) whose MLPs are mixtures of experts:
 * top-K (8) of E (128), renormalised with `norm_topk_prob`, no shared expert.
 */
import type { JsonFields } from '../config/json-fields.js';
import type { ConfigBody } from '../config/model-config.js';
import type { ModelFamily } from './family.js';
import { readLlamaLike } from './llama.js';
import { qwenSlidingWindow } from './qwen2.js';
import { moeLlamaWeights, QWEN_MOE_NAMES, qwenSparseLayers } from './qwen2-moe.js';

function readQwen3Moe(f: JsonFields): ConfigBody {
  const body = readLlamaLike(f, { maxPos: 32768, eps: 1e-6, theta: 10000, headDim: 128, qkvBias: 'attention_bias', qkNorm: true, slidingWindow: qwenSlidingWindow });
  // transformers 5 writes num_local_experts, the hub's configs num_experts.
  const E = f.int(f.has('num_experts') ? 'num_experts' : 'num_local_experts', 128);
  return {
    ...body,
    moe: {
      numExperts: E,
      topK: f.int('num_experts_per_tok', 8),
      intermediateSize: f.int('moe_intermediate_size', 768),
      normTopK: f.bool('norm_topk_prob', false),
      sharedIntermediateSize: null,
      sparseLayers: qwenSparseLayers(f, body.numLayers, E),
    },
  };
}

export const qwen3Moe: ModelFamily = {
  name: 'qwen3_moe',
  architectures: ['Qwen3MoeForCausalLM'],
  modelTypes: ['qwen3_moe'],
  readConfig: readQwen3Moe,
  weights: (cfg) => moeLlamaWeights(cfg, QWEN_MOE_NAMES),
};
