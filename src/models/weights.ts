/**
 * A family's weight table: every tensor its checkpoints hold, by the name Hugging Face writes, with its shape and
 * the slot of the model it fills. One list serves three uses: the loader's name -> slot lookup, the dummy weights
 * (`loadFormat: 'dummy'`: the same names and shapes, random) and parameter counts.
 *
 * Fused slots: `qkv` holds the q, k and v projections stacked by rows ([(nH + 2 nKv) D, H]) and `up` holds gate then
 * up for gated MLPs ([2I, H]), so one matmul computes each; a checkpoint that stores them apart fills row ranges of
 * the fused slot (`rowOffset`, `slotRows`).
 */
import type { TensorSpec } from '../loader/dummy.js';

/** A weight matrix slot of a layer or of the model. */
export type MatrixSlot =
  | 'embed' | 'positions' | 'lmHead' | 'projectIn' | 'projectOut' | 'qkv' | 'o' | 'up' | 'down'
  | 'router' | 'sharedUp' | 'sharedDown' | 'sharedGate';
/** Stacked expert matrices (ops/moe.ts ExpertWeights): gate|up [E, 2I, H], down [E, H, I]. */
export type ExpertSlot = 'experts.gateUp' | 'experts.down';
/** A vector slot (norm weights and biases), kept in f32. */
export type VectorSlot =
  | 'finalNorm.weight' | 'finalNorm.bias'
  | 'attnNorm.weight' | 'attnNorm.bias' | 'mlpNorm.weight' | 'mlpNorm.bias'
  | 'qkvBias' | 'oBias' | 'upBias' | 'downBias' | 'qNorm' | 'kNorm'
  | 'postAttnNorm.weight' | 'postMlpNorm.weight';
export type Slot = MatrixSlot | VectorSlot | ExpertSlot;

export const MATRIX_SLOTS: ReadonlySet<string> = new Set<MatrixSlot>([
  'embed', 'positions', 'lmHead', 'projectIn', 'projectOut', 'qkv', 'o', 'up', 'down', 'router', 'sharedUp', 'sharedDown', 'sharedGate',
]);
export const EXPERT_SLOTS: ReadonlySet<string> = new Set<ExpertSlot>(['experts.gateUp', 'experts.down']);

/** One checkpoint tensor and where it goes. */
export interface WeightSpec extends TensorSpec {
  slot: Slot;
  /** Layer index, or -1 for model-level slots. */
  layer: number;
  /** First row (matrices) or element (vectors) of the slot this tensor fills; 0 unless the slot is fused. */
  rowOffset: number;
  /** Rows (elements) of the whole slot: shape[0] (the transposed shape's) unless the slot is fused. */
  slotRows: number;
  /**
   * Expert slots: which expert's rows (`rowOffset` and `slotRows` are within the expert; index 'all': a 3-D tensor
   * [experts, rows, cols] holding every expert, as transformers 5 saves them); `experts`: how many.
   */
  expert?: { index: number | 'all'; experts: number };
  /** GPT-2 Conv1D: stored [in, out], the slot is [out, in]. */
  transpose?: boolean;
  /**
   * A checkpoint may lack it: the LM head of tied models (and the embedding when only the LM head is stored, as
   * tinystories-656K does: either serves as the other). Dummy weights leave optional tensors out.
   */
  optional?: boolean;
  /**
   * Multiply the values by this while loading: a constant of the forward folded into the weights (Granite's
   * residual_multiplier into o_proj and down_proj, 1 / logits_scaling into the final norm).
   */
  scale?: number;
  /** Add this to the values while loading: Gemma's RMSNorm multiplies by (1 + w). */
  shift?: number;
}

/** Rows of a fused slot filled by one tensor: `[offset, rows]` of `[total]`. */
export interface Fused {
  offset: number;
  total: number;
}

/**
 * Builds a weight table in checkpoint order. Layer `l` of the specs added between `layer(l)` calls.
 *
 * @example
 *   const t = new WeightTable();
 *   t.matrix('model.embed_tokens.weight', V, H, 'embed');
 *   t.layer(0).norm('model.layers.0.input_layernorm', H, 'attnNorm');
 */
export class WeightTable {
  readonly specs: WeightSpec[] = [];
  private at = -1;

  /** The layer specs are added to. */
  get current(): number {
    return this.at;
  }

  /** Specs added next belong to layer l (-1: the model). */
  layer(l: number): this {
    this.at = l;
    return this;
  }

  /** A matrix [out, inp] (HF [out, in] layout), or a row range of a fused slot. */
  matrix(name: string, out: number, inp: number, slot: MatrixSlot | ExpertSlot, fused?: Fused, extra: Partial<WeightSpec> = {}): this {
    this.specs.push({ name, shape: [out, inp], init: 'uniform', slot, layer: this.at, rowOffset: fused?.offset ?? 0, slotRows: fused?.total ?? out, ...extra });
    return this;
  }

  /** A vector [n] (a bias or a norm's weight), or an element range of a fused bias. */
  vector(name: string, n: number, slot: VectorSlot, init: TensorSpec['init'] = 'uniform', fused?: Fused): this {
    this.specs.push({ name, shape: [n], init, slot, layer: this.at, rowOffset: fused?.offset ?? 0, slotRows: fused?.total ?? n });
    return this;
  }

  /** `${name}.weight` [out, inp] and, with `bias`, `${name}.bias` [out] into the bias slot. */
  linear(name: string, out: number, inp: number, slot: MatrixSlot, bias: VectorSlot | null, fused?: Fused): this {
    this.matrix(`${name}.weight`, out, inp, slot, fused);
    if (bias) this.vector(`${name}.bias`, out, bias, 'uniform', fused);
    return this;
  }

  /** A norm's `${name}.weight` [n] (ones in dummy weights) and, for LayerNorm, `${name}.bias` [n] (zeros). */
  norm(name: string, n: number, slot: 'finalNorm' | 'attnNorm' | 'mlpNorm' | 'postAttnNorm' | 'postMlpNorm' | 'qNorm' | 'kNorm', bias = false, shift?: number): this {
    const weightSlot = slot === 'qNorm' || slot === 'kNorm' ? slot : (`${slot}.weight` as VectorSlot);
    this.vector(`${name}.weight`, n, weightSlot, shift ? 'zeros' : 'ones');
    if (shift) this.specs[this.specs.length - 1].shift = shift;
    if (bias) this.vector(`${name}.bias`, n, `${slot}.bias` as VectorSlot, 'zeros');
    return this;
  }
}

/**
 * A Llama-style attention block's projections, `${p}.self_attn.{q,k,v,o}_proj`: q, k and v into the fused qkv slot
 * (rows by head counts), o apart; with `qkvBias` / `oBias` their biases.
 */
export function attentionTensors(t: WeightTable, p: string, H: number, nH: number, nKv: number, D: number, qkvBias: boolean, oBias: boolean): WeightTable {
  const rows = (nH + 2 * nKv) * D;
  const bias = qkvBias ? 'qkvBias' : null;
  return t
    .linear(`${p}.self_attn.q_proj`, nH * D, H, 'qkv', bias, { offset: 0, total: rows })
    .linear(`${p}.self_attn.k_proj`, nKv * D, H, 'qkv', bias, { offset: nH * D, total: rows })
    .linear(`${p}.self_attn.v_proj`, nKv * D, H, 'qkv', bias, { offset: (nH + nKv) * D, total: rows })
    .linear(`${p}.self_attn.o_proj`, H, nH * D, 'o', oBias ? 'oBias' : null);
}

/** A gated MLP's `${p}.mlp.{gate,up,down}_proj`: gate and up into the fused up slot, down apart. */
export function gatedMlpTensors(t: WeightTable, p: string, H: number, I: number, bias: boolean): WeightTable {
  return t
    .linear(`${p}.mlp.gate_proj`, I, H, 'up', bias ? 'upBias' : null, { offset: 0, total: 2 * I })
    .linear(`${p}.mlp.up_proj`, I, H, 'up', bias ? 'upBias' : null, { offset: I, total: 2 * I })
    .linear(`${p}.mlp.down_proj`, H, I, 'down', bias ? 'downBias' : null);
}

/**
 * A mixture-of-experts MLP's tensors, as `${name(e, 'gate' | 'up' | 'down')}.weight` per expert e ([I, H], [I, H],
 * [H, I]), stacked into the gate|up and down expert slots.
 */
export function expertTensors(
  t: WeightTable,
  E: number,
  I: number,
  H: number,
  name: (e: number, proj: 'gate' | 'up' | 'down') => string,
  /** The transformers 5 form's names: `experts.gate_up_proj` [E, 2I, H] and `experts.down_proj` [E, H, I]. */
  fused: { gateUp: string; down: string },
): void {
  // Either form fills the slots: both are listed, neither is required alone (the loader checks the slots are full).
  const all = { index: 'all' as const, experts: E };
  t.specs.push(
    { name: fused.gateUp, shape: [E, 2 * I, H], init: 'uniform', slot: 'experts.gateUp', layer: t.current, rowOffset: 0, slotRows: 2 * I, expert: all, optional: true },
    { name: fused.down, shape: [E, H, I], init: 'uniform', slot: 'experts.down', layer: t.current, rowOffset: 0, slotRows: H, expert: all, optional: true },
  );
  for (let e = 0; e < E; e++) {
    const expert = { index: e, experts: E };
    t.matrix(`${name(e, 'gate')}.weight`, I, H, 'experts.gateUp', { offset: 0, total: 2 * I }, { expert })
      .matrix(`${name(e, 'up')}.weight`, I, H, 'experts.gateUp', { offset: I, total: 2 * I }, { expert })
      .matrix(`${name(e, 'down')}.weight`, H, I, 'experts.down', undefined, { expert });
  }
}

/** Tensors checkpoints carry that are not weights (precomputed buffers): skipped by name. */
export const NON_WEIGHTS = [/\.attn\.bias$/, /\.attn\.masked_bias$/, /rotary_emb\.inv_freq$/];

/** A dense layer's weights in a backend's storage: M a matrix, V a vector (see LayerWeights in decoder.ts). */
export interface DenseLayerSlots<M, V> {
  attnNorm: { weight: V; bias: V | null };
  qkv: M;
  qkvBias: V | null;
  qNorm: V | null;
  kNorm: V | null;
  o: M;
  oBias: V | null;
  mlpNorm: { weight: V; bias: V | null };
  postAttnNorm: V | null;
  postMlpNorm: V | null;
  up: M;
  upBias: V | null;
  down: M;
  downBias: V | null;
}

/** A model's weights in a backend's storage (see ModelWeights in decoder.ts), MoE aside. */
export interface ModelSlots<M, V> {
  embed: M;
  positions: M | null;
  projectIn: M | null;
  projectOut: M | null;
  finalNorm: { weight: V; bias: V | null } | null;
  lmHead: M;
  layers: DenseLayerSlots<M, V>[];
}

/**
 * The model from its loaded slots (`mat` and `vec` give a slot of a layer, or of the model without one; null where
 * the checkpoint has none), for the WebGPU and the CPU loader alike. Which of embedding / LM head the checkpoint has
 * (`has`) decides tying: an LM head alone (tinystories-656K) serves as the embedding, an embedding alone as the head.
 *
 * @example
 *   const w = assembleSlots(cfg.numLayers, present, (s, l = -1) => matrices.get(key(s, l)) ?? null, vec);
 */
export function assembleSlots<M, V>(
  numLayers: number,
  has: ReadonlySet<string>,
  mat: (slot: MatrixSlot, layer?: number) => M | null,
  vec: (slot: VectorSlot, layer?: number) => V | null,
): ModelSlots<M, V> {
  const embed = has.has('embed') ? mat('embed')! : mat('lmHead')!;
  const lmHead = has.has('lmHead') ? mat('lmHead')! : embed;
  const layers: DenseLayerSlots<M, V>[] = [];
  for (let l = 0; l < numLayers; l++) {
    layers.push({
      attnNorm: { weight: vec('attnNorm.weight', l)!, bias: vec('attnNorm.bias', l) },
      qkv: mat('qkv', l)!,
      qkvBias: vec('qkvBias', l),
      qNorm: vec('qNorm', l),
      kNorm: vec('kNorm', l),
      o: mat('o', l)!,
      oBias: vec('oBias', l),
      mlpNorm: { weight: vec('mlpNorm.weight', l)!, bias: vec('mlpNorm.bias', l) },
      postAttnNorm: vec('postAttnNorm.weight', l),
      postMlpNorm: vec('postMlpNorm.weight', l),
      up: mat('up', l)!,
      upBias: vec('upBias', l),
      down: mat('down', l)!,
      downBias: vec('downBias', l),
    });
  }
  const finalNorm = vec('finalNorm.weight');
  return {
    embed,
    positions: mat('positions'),
    projectIn: mat('projectIn'),
    projectOut: mat('projectOut'),
    finalNorm: finalNorm !== null ? { weight: finalNorm, bias: vec('finalNorm.bias') } : null,
    lmHead,
    layers,
  };
}
