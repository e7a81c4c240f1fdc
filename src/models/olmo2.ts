/**
 * OLMo 2 (Olmo2ForCausalLM): a Llama-style decoder without pre-norms; each block's output is RMS-normalised before
 * it joins the stream (x += post_norm(block(x))), and q and k are RMS-normalised over the whole projection (q_norm
 * [nH D], k_norm [nKv D]) before rope.
 */
import type { JsonFields } from '../config/json-fields.js';
import type { ConfigBody, ModelConfig } from '../config/model-config.js';
import type { ModelFamily } from './family.js';
import { readLlamaLike } from './llama.js';
import { attentionTensors, gatedMlpTensors, WeightTable, type WeightSpec } from './weights.js';

function readOlmo2(f: JsonFields): ConfigBody {
  const body = readLlamaLike(f, { maxPos: 2048, eps: 1e-5, theta: 10000, qkvBias: 'attention_bias', slidingWindow: () => null });
  return { ...body, preNorm: false, postNorms: true, qkNorm: true, qkNormMode: 'projection' };
}

function olmo2Weights(cfg: ModelConfig): WeightSpec[] {
  const { hiddenSize: H, numHeads: nH, numKvHeads: nKv, headDim: D, intermediateSize: I, vocabSize: V } = cfg;
  const t = new WeightTable().matrix('model.embed_tokens.weight', V, H, 'embed');
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    attentionTensors(t.layer(i), p, H, nH, nKv, D, cfg.qkvBias, cfg.oBias)
      .norm(`${p}.self_attn.q_norm`, nH * D, 'qNorm')
      .norm(`${p}.self_attn.k_norm`, nKv * D, 'kNorm')
      .norm(`${p}.post_attention_layernorm`, H, 'postAttnNorm');
    gatedMlpTensors(t, p, H, I, false).norm(`${p}.post_feedforward_layernorm`, H, 'postMlpNorm');
  }
  t.layer(-1).norm('model.norm', H, 'finalNorm');
  t.matrix('lm_head.weight', V, H, 'lmHead', undefined, { optional: cfg.tieWordEmbeddings });
  return t.specs;
}

export const olmo2: ModelFamily = {
  name: 'olmo2',
  architectures: ['Olmo2ForCausalLM'],
  modelTypes: ['olmo2'],
  readConfig: readOlmo2,
  weights: olmo2Weights,
};
