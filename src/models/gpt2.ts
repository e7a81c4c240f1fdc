/**
 * GPT-2 (GPT2LMHeadModel): learned positions, pre-LayerNorm, a plain gelu_new MLP, biases everywhere, and Conv1D
 * weights stored [in, out] (transposed to [out, in] while loading). Keys are n_embd, n_layer, n_head, ...
 */
import { readAct, splitHeads, type ConfigBody, type ModelConfig } from '../config/model-config.js';
import type { JsonFields } from '../config/json-fields.js';
import type { ModelFamily } from './family.js';
import { WeightTable, type WeightSpec } from './weights.js';

function readGpt2(f: JsonFields): ConfigBody {
  const hiddenSize = f.int('n_embd');
  const numHeads = f.int('n_head');
  if (f.bool('scale_attn_by_inverse_layer_idx', false)) {
    f.fail('scale_attn_by_inverse_layer_idx', 'is true; per-layer attention scaling is not supported');
  }
  if (!f.bool('scale_attn_weights', true)) f.fail('scale_attn_weights', 'is false; unscaled attention is not supported');
  return {
    hiddenSize,
    numLayers: f.int('n_layer'),
    numHeads,
    numKvHeads: numHeads,
    headDim: splitHeads(f, 'n_embd', hiddenSize, numHeads),
    intermediateSize: f.int('n_inner', 4 * hiddenSize),
    vocabSize: f.int('vocab_size'),
    maxModelLen: f.int('n_positions', 1024),
    norm: 'layer',
    normEps: f.positiveNum('layer_norm_epsilon', 1e-5),
    preNorm: true,
    finalNorm: true,
    act: readAct(f, 'activation_function', 'gelu_new'),
    gatedMlp: false,
    positions: 'learned',
    learnedPositionOffset: 0,
    rope: null,
    slidingWindow: null,
    qkvBias: true,
    oBias: true,
    mlpBias: true,
    normBias: true,
    qkNorm: false,
    wordEmbedProjDim: null,
    conv1dWeights: true,
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
  };
}

function gpt2Weights(cfg: ModelConfig): WeightSpec[] {
  const { hiddenSize: H, intermediateSize: I, vocabSize: V } = cfg;
  const t = new WeightTable().matrix('transformer.wte.weight', V, H, 'embed').matrix('transformer.wpe.weight', cfg.maxModelLen, H, 'positions');
  // Conv1D: weight stored [in, out], bias [out].
  const conv = (name: string, inp: number, out: number, slot: 'qkv' | 'o' | 'up' | 'down', bias: 'qkvBias' | 'oBias' | 'upBias' | 'downBias') =>
    t.matrix(`${name}.weight`, inp, out, slot, { offset: 0, total: out }, { transpose: true }).vector(`${name}.bias`, out, bias);
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `transformer.h.${i}`;
    t.layer(i).norm(`${p}.ln_1`, H, 'attnNorm', true);
    conv(`${p}.attn.c_attn`, H, 3 * H, 'qkv', 'qkvBias');
    conv(`${p}.attn.c_proj`, H, H, 'o', 'oBias');
    t.norm(`${p}.ln_2`, H, 'mlpNorm', true);
    conv(`${p}.mlp.c_fc`, H, I, 'up', 'upBias');
    conv(`${p}.mlp.c_proj`, I, H, 'down', 'downBias');
  }
  t.layer(-1).norm('transformer.ln_f', H, 'finalNorm', true);
  t.matrix('lm_head.weight', V, H, 'lmHead', undefined, { optional: cfg.tieWordEmbeddings });
  return t.specs;
}

export const gpt2: ModelFamily = {
  name: 'gpt2',
  architectures: ['GPT2LMHeadModel'],
  modelTypes: ['gpt2'],
  readConfig: readGpt2,
  weights: gpt2Weights,
  // Checkpoints are saved both with and without the `transformer.` prefix.
  canonicalName: (name) => (name.startsWith('transformer.') || name === 'lm_head.weight' ? name : `transformer.${name}`),
};
