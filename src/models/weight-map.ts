/**
 * Checkpoint weight names -> slots of the one transformer block that every supported architecture maps onto
 * (see transformer.ts). A data table per family, as the checkpoints spell their names; `{i}` is the layer index.
 *
 * Fused slots: `qkv` holds the q, k and v projections stacked by rows ([(nH + 2*nKv) * D, H]) and `up` holds
 * gate then up for gated MLPs ([2I, H]), so one matmul computes each; a checkpoint that stores them apart is
 * written into row ranges of the fused weight.
 */
import type { ModelConfig } from '../config/model-config.js';

/** A weight matrix slot of a layer or of the model. */
export type MatrixSlot = 'embed' | 'positions' | 'lmHead' | 'qkv' | 'o' | 'up' | 'down';
/** A vector slot (norm weights and biases), kept in f32. */
export type VectorSlot =
  | 'finalNorm.weight' | 'finalNorm.bias'
  | 'attnNorm.weight' | 'attnNorm.bias' | 'mlpNorm.weight' | 'mlpNorm.bias'
  | 'qkvBias' | 'oBias' | 'upBias' | 'downBias' | 'qNorm' | 'kNorm';
/** Which part of a fused slot a checkpoint tensor fills. */
export type Part = 'q' | 'k' | 'v' | 'gate' | 'up';

export interface Target {
  slot: MatrixSlot | VectorSlot;
  part?: Part;
  /** Conv1D weights (GPT-2) are stored [in, out]: transpose to [out, in]. */
  transpose?: boolean;
}

type Table = Record<string, Target>;

const LLAMA: Table = {
  'model.embed_tokens.weight': { slot: 'embed' },
  'lm_head.weight': { slot: 'lmHead' },
  'model.norm.weight': { slot: 'finalNorm.weight' },
  'model.layers.{i}.input_layernorm.weight': { slot: 'attnNorm.weight' },
  'model.layers.{i}.self_attn.q_proj.weight': { slot: 'qkv', part: 'q' },
  'model.layers.{i}.self_attn.k_proj.weight': { slot: 'qkv', part: 'k' },
  'model.layers.{i}.self_attn.v_proj.weight': { slot: 'qkv', part: 'v' },
  'model.layers.{i}.self_attn.q_proj.bias': { slot: 'qkvBias', part: 'q' },
  'model.layers.{i}.self_attn.k_proj.bias': { slot: 'qkvBias', part: 'k' },
  'model.layers.{i}.self_attn.v_proj.bias': { slot: 'qkvBias', part: 'v' },
  'model.layers.{i}.self_attn.q_norm.weight': { slot: 'qNorm' },
  'model.layers.{i}.self_attn.k_norm.weight': { slot: 'kNorm' },
  'model.layers.{i}.self_attn.o_proj.weight': { slot: 'o' },
  'model.layers.{i}.self_attn.o_proj.bias': { slot: 'oBias' },
  'model.layers.{i}.post_attention_layernorm.weight': { slot: 'mlpNorm.weight' },
  'model.layers.{i}.mlp.gate_proj.weight': { slot: 'up', part: 'gate' },
  'model.layers.{i}.mlp.up_proj.weight': { slot: 'up', part: 'up' },
  'model.layers.{i}.mlp.down_proj.weight': { slot: 'down' },
  'model.layers.{i}.mlp.gate_proj.bias': { slot: 'upBias', part: 'gate' },
  'model.layers.{i}.mlp.up_proj.bias': { slot: 'upBias', part: 'up' },
  'model.layers.{i}.mlp.down_proj.bias': { slot: 'downBias' },
};

const PHI3: Table = {
  ...LLAMA,
  'model.layers.{i}.self_attn.qkv_proj.weight': { slot: 'qkv' },
  'model.layers.{i}.mlp.gate_up_proj.weight': { slot: 'up' },
};

const OPT: Table = {
  'model.decoder.embed_tokens.weight': { slot: 'embed' },
  'model.decoder.embed_positions.weight': { slot: 'positions' },
  'lm_head.weight': { slot: 'lmHead' },
  'model.decoder.final_layer_norm.weight': { slot: 'finalNorm.weight' },
  'model.decoder.final_layer_norm.bias': { slot: 'finalNorm.bias' },
  'model.decoder.layers.{i}.self_attn_layer_norm.weight': { slot: 'attnNorm.weight' },
  'model.decoder.layers.{i}.self_attn_layer_norm.bias': { slot: 'attnNorm.bias' },
  'model.decoder.layers.{i}.self_attn.q_proj.weight': { slot: 'qkv', part: 'q' },
  'model.decoder.layers.{i}.self_attn.k_proj.weight': { slot: 'qkv', part: 'k' },
  'model.decoder.layers.{i}.self_attn.v_proj.weight': { slot: 'qkv', part: 'v' },
  'model.decoder.layers.{i}.self_attn.q_proj.bias': { slot: 'qkvBias', part: 'q' },
  'model.decoder.layers.{i}.self_attn.k_proj.bias': { slot: 'qkvBias', part: 'k' },
  'model.decoder.layers.{i}.self_attn.v_proj.bias': { slot: 'qkvBias', part: 'v' },
  'model.decoder.layers.{i}.self_attn.out_proj.weight': { slot: 'o' },
  'model.decoder.layers.{i}.self_attn.out_proj.bias': { slot: 'oBias' },
  'model.decoder.layers.{i}.final_layer_norm.weight': { slot: 'mlpNorm.weight' },
  'model.decoder.layers.{i}.final_layer_norm.bias': { slot: 'mlpNorm.bias' },
  'model.decoder.layers.{i}.fc1.weight': { slot: 'up' },
  'model.decoder.layers.{i}.fc1.bias': { slot: 'upBias' },
  'model.decoder.layers.{i}.fc2.weight': { slot: 'down' },
  'model.decoder.layers.{i}.fc2.bias': { slot: 'downBias' },
};

const GPT2: Table = {
  'transformer.wte.weight': { slot: 'embed' },
  'transformer.wpe.weight': { slot: 'positions' },
  'lm_head.weight': { slot: 'lmHead' },
  'transformer.ln_f.weight': { slot: 'finalNorm.weight' },
  'transformer.ln_f.bias': { slot: 'finalNorm.bias' },
  'transformer.h.{i}.ln_1.weight': { slot: 'attnNorm.weight' },
  'transformer.h.{i}.ln_1.bias': { slot: 'attnNorm.bias' },
  'transformer.h.{i}.attn.c_attn.weight': { slot: 'qkv', transpose: true },
  'transformer.h.{i}.attn.c_attn.bias': { slot: 'qkvBias' },
  'transformer.h.{i}.attn.c_proj.weight': { slot: 'o', transpose: true },
  'transformer.h.{i}.attn.c_proj.bias': { slot: 'oBias' },
  'transformer.h.{i}.ln_2.weight': { slot: 'mlpNorm.weight' },
  'transformer.h.{i}.ln_2.bias': { slot: 'mlpNorm.bias' },
  'transformer.h.{i}.mlp.c_fc.weight': { slot: 'up', transpose: true },
  'transformer.h.{i}.mlp.c_fc.bias': { slot: 'upBias' },
  'transformer.h.{i}.mlp.c_proj.weight': { slot: 'down', transpose: true },
  'transformer.h.{i}.mlp.c_proj.bias': { slot: 'downBias' },
};

const TABLES: Record<ModelConfig['modelType'], Table> = {
  llama: LLAMA, qwen2: LLAMA, qwen3: LLAMA, mistral: LLAMA, phi3: PHI3, opt: OPT, gpt2: GPT2,
};

/** Tensors checkpoints carry that are not weights (precomputed buffers). */
const IGNORED = [/\.attn\.bias$/, /\.attn\.masked_bias$/, /rotary_emb\.inv_freq$/];

export interface Resolved extends Target {
  /** Layer index, or -1 for model-level slots. */
  layer: number;
}

/** Compiled name lookup for one architecture. */
export class WeightMap {
  private readonly exact = new Map<string, Target>();
  private readonly layered: { re: RegExp; target: Target }[] = [];

  constructor(modelType: ModelConfig['modelType']) {
    for (const [name, target] of Object.entries(TABLES[modelType])) {
      if (!name.includes('{i}')) {
        this.exact.set(name, target);
        // GPT-2 checkpoints are saved both with and without the `transformer.` prefix.
        if (name.startsWith('transformer.')) this.exact.set(name.slice('transformer.'.length), target);
        continue;
      }
      const pattern = name.replace(/\./g, '\\.').replace('\\{i\\}', '{i}').replace('{i}', '(\\d+)');
      const prefix = name.startsWith('transformer.') ? '(?:transformer\\.)?' : '';
      this.layered.push({ re: new RegExp(`^${prefix}${pattern.replace(/^transformer\\\./, '')}$`), target });
    }
  }

  /** The slot a checkpoint tensor fills; `null` for known non-weights; `undefined` for unknown names. */
  resolve(name: string): Resolved | null | undefined {
    const t = this.exact.get(name);
    if (t) return { ...t, layer: -1 };
    for (const { re, target } of this.layered) {
      const m = re.exec(name);
      if (m) return { ...target, layer: Number(m[1]) };
    }
    return IGNORED.some((re) => re.test(name)) ? null : undefined;
  }
}
