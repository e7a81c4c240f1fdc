/**
 * Llama (LlamaForCausalLM, incl. Llama 3.1 rope scaling): pre-RMSNorm decoder blocks, rotary positions, GQA, a SiLU
 * gated MLP. The Llama-style families (Mistral, Qwen2, Qwen3, Phi-3, ...) reuse this file's reader and table with
 * their options.
 *
 *   x = embed(ids)
 *   per layer: x += o(attn(rope(qkv(rmsnorm(x)))));  x += down(silu(gate(h)) * up(h)), h = rmsnorm(x)
 *   logits = lm_head(rmsnorm(x))
 */
import type { JsonFields } from '../config/json-fields.js';
import { readAct, splitHeads, type ConfigBody, type ModelConfig } from '../config/model-config.js';
import { parseRope, type RopeConfig } from '../config/rope.js';
import type { ModelFamily } from './family.js';
import { attentionTensors, gatedMlpTensors, WeightTable, type WeightSpec } from './weights.js';

/** What differs between the Llama-style families' configs. */
export interface LlamaLike {
  /** HF defaults of max_position_embeddings, rms_norm_eps and rope_theta. */
  maxPos: number;
  eps: number;
  theta: number;
  /** head_dim when the config has none: hidden / heads, or a fixed value (Qwen3: 128). */
  headDim?: number;
  /** q/k/v biases always (Qwen2), never, or as `attention_bias` says (Llama, Qwen3). */
  qkvBias: 'always' | 'attention_bias' | 'never';
  /** `mlp_bias` is read (Llama). */
  mlpBias?: boolean;
  /** Per-head RMSNorm of q and k before rope (Qwen3). */
  qkNorm?: boolean;
  slidingWindow: (f: JsonFields) => number | null;
  /** Reads the rotary parameters instead of parseRope (Gemma 3's per-layer-type configurations). */
  rope?: (f: JsonFields, headDim: number, maxModelLen: number) => RopeConfig;
}

/** Reads a Llama-style config.json. */
export function readLlamaLike(f: JsonFields, o: LlamaLike): ConfigBody {
  const hiddenSize = f.int('hidden_size');
  const numHeads = f.int('num_attention_heads');
  const numKvHeads = f.int('num_key_value_heads', numHeads);
  const headDim = f.has('head_dim') ? f.int('head_dim') : (o.headDim ?? splitHeads(f, 'hidden_size', hiddenSize, numHeads));
  const maxModelLen = f.int('max_position_embeddings', o.maxPos);
  const attentionBias = o.qkvBias === 'attention_bias' ? f.bool('attention_bias', false) : false;
  return {
    hiddenSize,
    numLayers: f.int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: f.int('intermediate_size'),
    vocabSize: f.int('vocab_size'),
    maxModelLen,
    norm: 'rms',
    normEps: f.positiveNum('rms_norm_eps', o.eps),
    preNorm: true,
    finalNorm: true,
    act: readAct(f, 'hidden_act', 'silu'),
    gatedMlp: true,
    positions: 'rope',
    learnedPositionOffset: 0,
    rope: o.rope ? o.rope(f, headDim, maxModelLen) : parseRope(f, headDim, maxModelLen, o.theta),
    slidingWindow: o.slidingWindow(f),
    qkvBias: o.qkvBias === 'always' || attentionBias,
    oBias: attentionBias,
    mlpBias: o.mlpBias ? f.bool('mlp_bias', false) : false,
    normBias: false,
    qkNorm: !!o.qkNorm,
    wordEmbedProjDim: null,
    conv1dWeights: false,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
  };
}

/** Weight-name options of the Llama-style tables. */
export interface LlamaTableOptions {
  /** One `qkv_proj` and one `gate_up_proj` tensor (Phi-3) instead of q/k/v and gate/up apart. */
  fused?: boolean;
}

/** The Llama-style checkpoint: `model.layers.{i}.self_attn.q_proj.weight`, ... (HF LlamaForCausalLM names). */
export function llamaWeights(cfg: ModelConfig, o: LlamaTableOptions = {}): WeightSpec[] {
  const { hiddenSize: H, numHeads: nH, numKvHeads: nKv, headDim: D, intermediateSize: I, vocabSize: V } = cfg;
  const t = new WeightTable().matrix('model.embed_tokens.weight', V, H, 'embed');
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    t.layer(i).norm(`${p}.input_layernorm`, H, 'attnNorm');
    if (o.fused) {
      t.linear(`${p}.self_attn.qkv_proj`, (nH + 2 * nKv) * D, H, 'qkv', cfg.qkvBias ? 'qkvBias' : null);
      t.linear(`${p}.self_attn.o_proj`, H, nH * D, 'o', cfg.oBias ? 'oBias' : null);
    } else {
      attentionTensors(t, p, H, nH, nKv, D, cfg.qkvBias, cfg.oBias);
    }
    if (cfg.qkNorm) t.norm(`${p}.self_attn.q_norm`, D, 'qNorm').norm(`${p}.self_attn.k_norm`, D, 'kNorm');
    t.norm(`${p}.post_attention_layernorm`, H, 'mlpNorm');
    if (o.fused) {
      t.linear(`${p}.mlp.gate_up_proj`, 2 * I, H, 'up', cfg.mlpBias ? 'upBias' : null);
      t.linear(`${p}.mlp.down_proj`, H, I, 'down', cfg.mlpBias ? 'downBias' : null);
    } else {
      gatedMlpTensors(t, p, H, I, cfg.mlpBias);
    }
  }
  t.layer(-1).norm('model.norm', H, 'finalNorm');
  t.matrix('lm_head.weight', V, H, 'lmHead', undefined, { optional: cfg.tieWordEmbeddings });
  return t.specs;
}

export const llama: ModelFamily = {
  name: 'llama',
  architectures: ['LlamaForCausalLM'],
  modelTypes: ['llama'],
  readConfig: (f) => readLlamaLike(f, { maxPos: 2048, eps: 1e-6, theta: 10000, qkvBias: 'attention_bias', mlpBias: true, slidingWindow: () => null }),
  weights: (cfg) => llamaWeights(cfg),
};
