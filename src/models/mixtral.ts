/**
 * Mixtral (MixtralForCausalLM): Mistral whose MLPs are sparse mixtures of experts: a router picks each token's top-K
 * (2) of E (8) SiLU-gated experts, weighted by their softmax probabilities renormalised over the K.
 * Checkpoint names as on the hub: block_sparse_moe.gate (the router) and experts.{e}.w1 (gate), w3 (up), w2 (down).
 */
import type { JsonFields } from '../config/json-fields.js';
import type { ConfigBody, ModelConfig } from '../config/model-config.js';
import type { ModelFamily } from './family.js';
import { readLlamaLike } from './llama.js';
import { moeLlamaWeights } from './qwen2-moe.js';

function readMixtral(f: JsonFields): ConfigBody {
  const body = readLlamaLike(f, { maxPos: 4096 * 32, eps: 1e-5, theta: 1e6, qkvBias: 'never', slidingWindow: (g) => (g.has('sliding_window') ? g.int('sliding_window') : null) });
  return {
    ...body,
    moe: {
      numExperts: f.int('num_local_experts', 8),
      topK: f.int('num_experts_per_tok', 2),
      intermediateSize: body.intermediateSize,
      normTopK: true,
      sharedIntermediateSize: null,
      sparseLayers: Array.from({ length: body.numLayers }, () => true),
    },
  };
}

function mixtralWeights(cfg: ModelConfig) {
  return moeLlamaWeights(cfg, {
    router: (p) => `${p}.block_sparse_moe.gate.weight`,
    expert: (p, e, proj) => `${p}.block_sparse_moe.experts.${e}.${proj === 'gate' ? 'w1' : proj === 'up' ? 'w3' : 'w2'}`,
  });
}

export const mixtral: ModelFamily = {
  name: 'mixtral',
  architectures: ['MixtralForCausalLM'],
  modelTypes: ['mixtral'],
  readConfig: readMixtral,
  weights: mixtralWeights,
  // transformers 5 names the block `mlp` (its experts then come as 3-D tensors, which the table lists too).
  canonicalName: (name) => name.replace(/\.mlp\.gate\.weight$/, '.block_sparse_moe.gate.weight'),
};
