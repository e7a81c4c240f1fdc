/**
 * OPT (OPTForCausalLM): learned positions looked up at p + 2, LayerNorm (pre-LN, or post-LN with
 * `do_layer_norm_before: false` as opt-350m), a plain ReLU MLP, biases everywhere, and optionally embeddings narrower
 * than the residual stream (`word_embed_proj_dim`, with project_in / project_out).
 */
import { readAct, splitHeads, type ConfigBody, type ModelConfig } from '../config/model-config.js';
import type { JsonFields } from '../config/json-fields.js';
import type { ModelFamily } from './family.js';
import { WeightTable, type WeightSpec } from './weights.js';

function readOpt(f: JsonFields): ConfigBody {
  const hiddenSize = f.int('hidden_size');
  const numHeads = f.int('num_attention_heads');
  const preNorm = f.bool('do_layer_norm_before', true);
  const bias = f.bool('enable_bias', true);
  if (!f.bool('layer_norm_elementwise_affine', true)) {
    f.fail('layer_norm_elementwise_affine', 'is false; LayerNorms without weights are not supported');
  }
  const proj = f.int('word_embed_proj_dim', hiddenSize);
  return {
    hiddenSize,
    numLayers: f.int('num_hidden_layers'),
    numHeads,
    numKvHeads: numHeads,
    headDim: splitHeads(f, 'hidden_size', hiddenSize, numHeads),
    intermediateSize: f.int('ffn_dim'),
    vocabSize: f.int('vocab_size'),
    maxModelLen: f.int('max_position_embeddings', 2048),
    norm: 'layer',
    normEps: 1e-5, // nn.LayerNorm's default; OPT configs carry no epsilon
    preNorm,
    // HF OPTDecoder: final_layer_norm exists only with do_layer_norm_before and not _remove_final_layer_norm.
    finalNorm: preNorm && !f.bool('_remove_final_layer_norm', false),
    act: readAct(f, 'activation_function', 'relu'),
    gatedMlp: false,
    positions: 'learned',
    learnedPositionOffset: 2,
    rope: null,
    slidingWindow: null,
    qkvBias: bias,
    oBias: bias,
    mlpBias: bias,
    normBias: true,
    qkNorm: false,
    wordEmbedProjDim: proj === hiddenSize ? null : proj,
    conv1dWeights: false,
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
  };
}

function optWeights(cfg: ModelConfig): WeightSpec[] {
  const { hiddenSize: H, intermediateSize: F, vocabSize: V } = cfg;
  const P = cfg.wordEmbedProjDim ?? H; // embedding width
  const d = 'model.decoder';
  const qkv = 3 * H;
  const qkvBias = cfg.qkvBias ? 'qkvBias' : null;
  // max_position_embeddings + 2 rows: positions are looked up at p + 2.
  const t = new WeightTable()
    .matrix(`${d}.embed_tokens.weight`, V, P, 'embed')
    .matrix(`${d}.embed_positions.weight`, cfg.maxModelLen + cfg.learnedPositionOffset, H, 'positions');
  if (cfg.finalNorm) t.norm(`${d}.final_layer_norm`, H, 'finalNorm', true);
  if (cfg.wordEmbedProjDim !== null) t.matrix(`${d}.project_in.weight`, H, P, 'projectIn').matrix(`${d}.project_out.weight`, P, H, 'projectOut');
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `${d}.layers.${i}`;
    t.layer(i)
      .linear(`${p}.self_attn.q_proj`, H, H, 'qkv', qkvBias, { offset: 0, total: qkv })
      .linear(`${p}.self_attn.k_proj`, H, H, 'qkv', qkvBias, { offset: H, total: qkv })
      .linear(`${p}.self_attn.v_proj`, H, H, 'qkv', qkvBias, { offset: 2 * H, total: qkv })
      .linear(`${p}.self_attn.out_proj`, H, H, 'o', cfg.oBias ? 'oBias' : null)
      .norm(`${p}.self_attn_layer_norm`, H, 'attnNorm', true)
      .linear(`${p}.fc1`, F, H, 'up', cfg.mlpBias ? 'upBias' : null)
      .linear(`${p}.fc2`, H, F, 'down', cfg.mlpBias ? 'downBias' : null)
      .norm(`${p}.final_layer_norm`, H, 'mlpNorm', true);
  }
  t.layer(-1).matrix('lm_head.weight', V, P, 'lmHead', undefined, { optional: cfg.tieWordEmbeddings });
  return t.specs;
}

export const opt: ModelFamily = {
  name: 'opt',
  architectures: ['OPTForCausalLM'],
  modelTypes: ['opt'],
  readConfig: readOpt,
  weights: optWeights,
};
