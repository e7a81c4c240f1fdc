/**
 * Gemma 2 (Gemma2ForCausalLM): a Llama-style decoder with
 *   - RMSNorm multiplying by (1 + w) (the table adds 1 to every norm weight while loading),
 *   - sandwich norms: x += post_norm(block(pre_norm(x))) around attention and the MLP,
 *   - embeddings scaled by sqrt(hidden), a GeGLU MLP (gelu_pytorch_tanh),
 *   - q.k scaled by query_pre_attn_scalar^-0.5, attention logits and final logits soft-capped,
 *   - alternating sliding-window (even layers) and global layers (`layer_types` in newer configs).
 * Gemma 3's text model (gemma3.ts) shares the reader and table.
 */
import type { JsonFields } from '../config/json-fields.js';
import { readAct, type ConfigBody, type LayerType, type ModelConfig } from '../config/model-config.js';
import type { ModelFamily } from './family.js';
import { readLlamaLike, type LlamaLike } from './llama.js';
import { attentionTensors, gatedMlpTensors, WeightTable, type WeightSpec } from './weights.js';

/** Layer l's kind from `layer_types` (sliding_attention / full_attention), else `defaultSliding(l)`. */
export function gemmaLayerKinds(f: JsonFields, n: number, defaultSliding: (l: number) => boolean): boolean[] {
  if (!f.has('layer_types')) return Array.from({ length: n }, (_, l) => defaultSliding(l));
  const v = f.obj.layer_types;
  if (!Array.isArray(v) || v.length !== n || !v.every((t) => t === 'sliding_attention' || t === 'full_attention')) {
    f.fail('layer_types', `must list "sliding_attention" or "full_attention" for each of the ${n} layers`);
  }
  return (v as string[]).map((t) => t === 'sliding_attention');
}

/** The config fields Gemma 2 and 3 share; `theta` is the default rope base. */
export function readGemmaCommon(f: JsonFields, theta: number, rope?: LlamaLike['rope']): ConfigBody {
  const body = readLlamaLike(f, { maxPos: 8192, eps: 1e-6, theta, headDim: 256, qkvBias: 'attention_bias', slidingWindow: () => null, rope });
  const H = body.hiddenSize;
  const actKey = f.has('hidden_activation') ? 'hidden_activation' : 'hidden_act';
  return {
    ...body,
    act: readAct(f, actKey, 'gelu_pytorch_tanh'),
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
    postNorms: true,
    // HF multiplies by torch.tensor(hidden_size ** 0.5, dtype=hidden.dtype): f32 here.
    embedScale: Math.fround(Math.sqrt(H)),
    attnScale: f.positiveNum('query_pre_attn_scalar', body.headDim) ** -0.5,
  };
}

function readGemma2(f: JsonFields): ConfigBody {
  const body = readGemmaCommon(f, 10000);
  const window = f.has('sliding_window') ? f.int('sliding_window') : 4096;
  // HF Gemma2: even layers slide (layer_types default: sliding where (l + 1) % 2 == 1).
  const sliding = gemmaLayerKinds(f, body.numLayers, (l) => l % 2 === 0);
  const layerTypes: LayerType[] = sliding.map((s) => ({ slidingWindow: s ? window : null, rope: 'global' }));
  const cap = (k: string) => (f.has(k) ? f.positiveNum(k) : undefined);
  return {
    ...body,
    layerTypes,
    attnSoftcap: cap('attn_logit_softcapping'),
    finalSoftcap: cap('final_logit_softcapping'),
  };
}

/** Gemma's checkpoint: Llama's names plus pre/post feed-forward norms; every norm weight w is used as 1 + w. */
export function gemmaWeights(cfg: ModelConfig): WeightSpec[] {
  const { hiddenSize: H, numHeads: nH, numKvHeads: nKv, headDim: D, intermediateSize: I, vocabSize: V } = cfg;
  const t = new WeightTable().matrix('model.embed_tokens.weight', V, H, 'embed');
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    t.layer(i).norm(`${p}.input_layernorm`, H, 'attnNorm', false, 1);
    attentionTensors(t, p, H, nH, nKv, D, cfg.qkvBias, cfg.oBias);
    if (cfg.qkNorm) t.norm(`${p}.self_attn.q_norm`, D, 'qNorm', false, 1).norm(`${p}.self_attn.k_norm`, D, 'kNorm', false, 1);
    t.norm(`${p}.post_attention_layernorm`, H, 'postAttnNorm', false, 1).norm(`${p}.pre_feedforward_layernorm`, H, 'mlpNorm', false, 1);
    gatedMlpTensors(t, p, H, I, false).norm(`${p}.post_feedforward_layernorm`, H, 'postMlpNorm', false, 1);
  }
  t.layer(-1).norm('model.norm', H, 'finalNorm', false, 1);
  t.matrix('lm_head.weight', V, H, 'lmHead', undefined, { optional: cfg.tieWordEmbeddings });
  return t.specs;
}

export const gemma2: ModelFamily = {
  name: 'gemma2',
  architectures: ['Gemma2ForCausalLM'],
  modelTypes: ['gemma2'],
  readConfig: readGemma2,
  weights: gemmaWeights,
};
