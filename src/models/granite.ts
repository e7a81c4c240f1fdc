/**
 * Granite 3 (GraniteForCausalLM): Llama with four multipliers. HF's forward:
 *   x = embed(ids) * embedding_multiplier
 *   per layer: x += attn(...) * residual_multiplier (q.k scaled by attention_multiplier, not 1/sqrt(d));
 *              x += mlp(...) * residual_multiplier
 *   logits = lm_head(rmsnorm(x)) / logits_scaling
 * The residual and logit multipliers are constants of linear maps, so the weight table folds them into o_proj and
 * down_proj (weights and biases) and the final norm's weight while loading; the forward scales the embeddings and
 * attention.
 */
import type { JsonFields } from '../config/json-fields.js';
import type { ConfigBody, ModelConfig } from '../config/model-config.js';
import type { ModelFamily } from './family.js';
import { llamaWeights, readLlamaLike } from './llama.js';
import type { WeightSpec } from './weights.js';

function readGranite(f: JsonFields): ConfigBody {
  const body = readLlamaLike(f, { maxPos: 2048, eps: 1e-6, theta: 10000, qkvBias: 'attention_bias', mlpBias: true, slidingWindow: () => null });
  return {
    ...body,
    embedScale: f.num('embedding_multiplier', 1),
    residualScale: f.num('residual_multiplier', 1),
    logitScale: 1 / f.positiveNum('logits_scaling', 1),
    attnScale: f.num('attention_multiplier', 1),
  };
}

const RESIDUAL: ReadonlySet<string> = new Set(['o', 'oBias', 'down', 'downBias']);

function graniteWeights(cfg: ModelConfig): WeightSpec[] {
  return llamaWeights(cfg).map((s) => {
    if (RESIDUAL.has(s.slot) && cfg.residualScale !== undefined && cfg.residualScale !== 1) return { ...s, scale: cfg.residualScale };
    if (s.slot === 'finalNorm.weight' && cfg.logitScale !== undefined && cfg.logitScale !== 1) return { ...s, scale: cfg.logitScale };
    return s;
  });
}

export const granite: ModelFamily = {
  name: 'granite',
  architectures: ['GraniteForCausalLM'],
  modelTypes: ['granite'],
  readConfig: readGranite,
  weights: graniteWeights,
};
