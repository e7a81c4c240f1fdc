/**
 * Qwen2-MoE (Qwen2MoeForCausalLM): Qwen2 whose MLPs are mixtures of experts (top-K of E, probabilities renormalised
 * only with `norm_topk_prob`) plus a shared expert every token takes, scaled by sigmoid(x . shared_expert_gate).
 * Layers in `mlp_only_layers`, or off the `decoder_sparse_step` grid, keep a dense MLP. The MoE weight table here is
 * shared with Qwen3-MoE and Mixtral (their names differ).
 */
import type { JsonFields } from '../config/json-fields.js';
import type { ConfigBody, ModelConfig } from '../config/model-config.js';
import type { ModelFamily } from './family.js';
import { llamaWeights, readLlamaLike } from './llama.js';
import { qwenSlidingWindow } from './qwen2.js';
import { expertTensors, WeightTable, type WeightSpec } from './weights.js';

/** Qwen's sparse-layer rule: not in mlp_only_layers, and (l + 1) % decoder_sparse_step == 0. */
export function qwenSparseLayers(f: JsonFields, n: number, experts: number): boolean[] {
  const step = f.int('decoder_sparse_step', 1);
  const only = f.has('mlp_only_layers') ? f.obj.mlp_only_layers : [];
  if (!Array.isArray(only) || !only.every((l) => Number.isInteger(l))) f.fail('mlp_only_layers', 'must be a list of layer indices');
  return Array.from({ length: n }, (_, l) => !(only as number[]).includes(l) && experts > 0 && (l + 1) % step === 0);
}

function readQwen2Moe(f: JsonFields): ConfigBody {
  const body = readLlamaLike(f, { maxPos: 32768, eps: 1e-6, theta: 10000, qkvBias: 'always', slidingWindow: qwenSlidingWindow });
  // transformers 5 writes num_local_experts, the hub's configs num_experts.
  const E = f.int(f.has('num_experts') ? 'num_experts' : 'num_local_experts', 60);
  return {
    ...body,
    moe: {
      numExperts: E,
      topK: f.int('num_experts_per_tok', 4),
      intermediateSize: f.int('moe_intermediate_size', 1408),
      normTopK: f.bool('norm_topk_prob', false),
      sharedIntermediateSize: f.int('shared_expert_intermediate_size', 5632),
      sparseLayers: qwenSparseLayers(f, body.numLayers, E),
    },
  };
}

/** Names of a MoE layer's tensors (p = `model.layers.{i}`). */
export interface MoeNames {
  router: (p: string) => string;
  expert: (p: string, e: number, proj: 'gate' | 'up' | 'down') => string;
  /** The shared expert's projections (`${p}.mlp.shared_expert.gate_proj`) and gate, when the model has one. */
  shared?: { proj: (p: string, proj: 'gate' | 'up' | 'down') => string; gate: (p: string) => string };
}

/**
 * A Llama-style checkpoint whose sparse layers hold a router and experts instead of the dense MLP: the dense table
 * with each sparse layer's mlp.{gate,up,down}_proj replaced.
 */
export function moeLlamaWeights(cfg: ModelConfig, names: MoeNames): WeightSpec[] {
  const m = cfg.moe!;
  const H = cfg.hiddenSize;
  const dense = llamaWeights(cfg);
  const t = new WeightTable();
  for (const s of dense) {
    const sparse = s.layer >= 0 && m.sparseLayers[s.layer];
    if (sparse && (s.slot === 'up' || s.slot === 'down' || s.slot === 'upBias' || s.slot === 'downBias')) {
      // The dense MLP's place: emit the layer's MoE tensors once, at its down projection.
      if (s.slot !== 'down') continue;
      const p = `model.layers.${s.layer}`;
      t.layer(s.layer).matrix(names.router(p), m.numExperts, H, 'router');
      expertTensors(t, m.numExperts, m.intermediateSize, H, (e, proj) => names.expert(p, e, proj), {
        gateUp: `${p}.mlp.experts.gate_up_proj`,
        down: `${p}.mlp.experts.down_proj`,
      });
      if (names.shared && m.sharedIntermediateSize) {
        const Is = m.sharedIntermediateSize;
        t.linear(names.shared.proj(p, 'gate'), Is, H, 'sharedUp', null, { offset: 0, total: 2 * Is })
          .linear(names.shared.proj(p, 'up'), Is, H, 'sharedUp', null, { offset: Is, total: 2 * Is })
          .linear(names.shared.proj(p, 'down'), H, Is, 'sharedDown', null)
          .matrix(names.shared.gate(p), 1, H, 'sharedGate');
      }
      continue;
    }
    t.specs.push(s);
  }
  return t.specs;
}

export const QWEN_MOE_NAMES: MoeNames = {
  router: (p) => `${p}.mlp.gate.weight`,
  expert: (p, e, proj) => `${p}.mlp.experts.${e}.${proj}_proj`,
};

export const qwen2Moe: ModelFamily = {
  name: 'qwen2_moe',
  architectures: ['Qwen2MoeForCausalLM'],
  modelTypes: ['qwen2_moe'],
  readConfig: readQwen2Moe,
  weights: (cfg) =>
    moeLlamaWeights(cfg, {
      ...QWEN_MOE_NAMES,
      shared: { proj: (p, proj) => `${p}.mlp.shared_expert.${proj}_proj`, gate: (p) => `${p}.mlp.shared_expert_gate.weight` },
    }),
};
