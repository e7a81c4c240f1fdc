/**
 * The tensors a Hugging Face checkpoint of each family holds: names as HF writes them and shapes derived from the
 * ModelConfig. Used to fabricate dummy weights (`loadFormat: 'dummy'`) and to count parameters.
 *
 * Linear weights are [out, in] except GPT-2's Conv1D, stored [in, out].
 */
import type { ModelConfig } from '../config/model-config.js';

/** How dummy weights fill a tensor: random uniform (matrices, biases), ones (norm weights) or zeros (norm biases). */
export type DummyInit = 'uniform' | 'ones' | 'zeros';

export interface TensorSpec {
  name: string;
  shape: number[];
  init: DummyInit;
}

const norm = (name: string, H: number, bias: boolean): TensorSpec[] => [
  { name: `${name}.weight`, shape: [H], init: 'ones' },
  ...(bias ? [{ name: `${name}.bias`, shape: [H], init: 'zeros' as const }] : []),
];

const linear = (name: string, out: number, inp: number, bias: boolean): TensorSpec[] => [
  { name: `${name}.weight`, shape: [out, inp], init: 'uniform' },
  ...(bias ? [{ name: `${name}.bias`, shape: [out], init: 'uniform' as const }] : []),
];

/**
 * Every tensor of the checkpoint in a stable order (model-level first, then layer by layer). The LM head is
 * listed only when it is not tied to the embedding.
 *
 * @example
 *   checkpointTensors(cfg)[0]; // { name: 'model.embed_tokens.weight', shape: [128256, 2048], init: 'uniform' }
 */
export function checkpointTensors(cfg: ModelConfig): TensorSpec[] {
  if (cfg.modelType === 'opt') return optTensors(cfg);
  if (cfg.modelType === 'gpt2') return gpt2Tensors(cfg);
  return llamaTensors(cfg);
}

function llamaTensors(cfg: ModelConfig): TensorSpec[] {
  const { hiddenSize: H, numHeads: nH, numKvHeads: nKv, headDim: D, intermediateSize: I, vocabSize: V } = cfg;
  const out: TensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [V, H], init: 'uniform' }];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    out.push(...norm(`${p}.input_layernorm`, H, false));
    if (cfg.modelType === 'phi3') {
      out.push(...linear(`${p}.self_attn.qkv_proj`, (nH + 2 * nKv) * D, H, cfg.qkvBias));
    } else {
      out.push(
        ...linear(`${p}.self_attn.q_proj`, nH * D, H, cfg.qkvBias),
        ...linear(`${p}.self_attn.k_proj`, nKv * D, H, cfg.qkvBias),
        ...linear(`${p}.self_attn.v_proj`, nKv * D, H, cfg.qkvBias),
      );
    }
    if (cfg.qkNorm) out.push(...norm(`${p}.self_attn.q_norm`, D, false), ...norm(`${p}.self_attn.k_norm`, D, false));
    out.push(...linear(`${p}.self_attn.o_proj`, H, nH * D, cfg.oBias));
    out.push(...norm(`${p}.post_attention_layernorm`, H, false));
    if (cfg.modelType === 'phi3') {
      out.push(...linear(`${p}.mlp.gate_up_proj`, 2 * I, H, cfg.mlpBias));
    } else {
      out.push(...linear(`${p}.mlp.gate_proj`, I, H, cfg.mlpBias), ...linear(`${p}.mlp.up_proj`, I, H, cfg.mlpBias));
    }
    out.push(...linear(`${p}.mlp.down_proj`, H, I, cfg.mlpBias));
  }
  out.push(...norm('model.norm', H, false));
  if (!cfg.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [V, H], init: 'uniform' });
  return out;
}

function optTensors(cfg: ModelConfig): TensorSpec[] {
  const { hiddenSize: H, intermediateSize: F, vocabSize: V, mlpBias, qkvBias, oBias } = cfg;
  const P = cfg.wordEmbedProjDim ?? H; // embedding width
  const d = 'model.decoder';
  const out: TensorSpec[] = [
    { name: `${d}.embed_tokens.weight`, shape: [V, P], init: 'uniform' },
    // max_position_embeddings + 2 rows: positions are looked up at p + 2.
    { name: `${d}.embed_positions.weight`, shape: [cfg.maxModelLen + cfg.learnedPositionOffset, H], init: 'uniform' },
  ];
  if (cfg.finalNorm) out.push(...norm(`${d}.final_layer_norm`, H, true));
  if (cfg.wordEmbedProjDim !== null) {
    out.push(...linear(`${d}.project_in`, H, P, false), ...linear(`${d}.project_out`, P, H, false));
  }
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `${d}.layers.${i}`;
    out.push(
      ...linear(`${p}.self_attn.q_proj`, H, H, qkvBias),
      ...linear(`${p}.self_attn.k_proj`, H, H, qkvBias),
      ...linear(`${p}.self_attn.v_proj`, H, H, qkvBias),
      ...linear(`${p}.self_attn.out_proj`, H, H, oBias),
      ...norm(`${p}.self_attn_layer_norm`, H, true),
      ...linear(`${p}.fc1`, F, H, mlpBias),
      ...linear(`${p}.fc2`, H, F, mlpBias),
      ...norm(`${p}.final_layer_norm`, H, true),
    );
  }
  if (!cfg.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [V, P], init: 'uniform' });
  return out;
}

function gpt2Tensors(cfg: ModelConfig): TensorSpec[] {
  const { hiddenSize: H, intermediateSize: I, vocabSize: V } = cfg;
  // Conv1D: weight [in, out], bias [out].
  const conv = (name: string, inp: number, outDim: number): TensorSpec[] => [
    { name: `${name}.weight`, shape: [inp, outDim], init: 'uniform' },
    { name: `${name}.bias`, shape: [outDim], init: 'uniform' },
  ];
  const out: TensorSpec[] = [
    { name: 'transformer.wte.weight', shape: [V, H], init: 'uniform' },
    { name: 'transformer.wpe.weight', shape: [cfg.maxModelLen, H], init: 'uniform' },
  ];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `transformer.h.${i}`;
    out.push(
      ...norm(`${p}.ln_1`, H, true),
      ...conv(`${p}.attn.c_attn`, H, 3 * H),
      ...conv(`${p}.attn.c_proj`, H, H),
      ...norm(`${p}.ln_2`, H, true),
      ...conv(`${p}.mlp.c_fc`, H, I),
      ...conv(`${p}.mlp.c_proj`, I, H),
    );
  }
  out.push(...norm('transformer.ln_f', H, true));
  if (!cfg.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [V, H], init: 'uniform' });
  return out;
}

/**
 * Parameter count of the checkpoint (a tied LM head counted once), e.g. 1.236e9 for Llama-3.2-1B.
 *
 * @example
 *   paramCount(parseModelConfig(llama32_1b)); // 1_235_814_400
 */
export function paramCount(cfg: ModelConfig): number {
  let n = 0;
  for (const t of checkpointTensors(cfg)) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}
