/**
 * ModelConfig: one normalized description of a decoder-only checkpoint, so models and kernels never read Hugging Face
 * keys. Each family's file in src/models/ reads its config.json keys into these fields (defaults are the family's HF
 * defaults); src/models/registry.ts's parseModelConfig picks the family by the class named in `architectures`.
 * This file holds the type and the readers the families share.
 */
import type { JsonFields } from './json-fields.js';
import type { RopeConfig } from './rope.js';

export { ropeInvFreq, ropeAttentionScaling, type RopeConfig, type RopeScaling } from './rope.js';

export type Activation = 'silu' | 'gelu_new' | 'gelu' | 'relu';
export type ModelDtype = 'float32' | 'float16' | 'bfloat16';

export interface ModelConfig {
  /** The HF class named in `architectures`, e.g. `LlamaForCausalLM`. */
  architecture: string;
  /** The family (its file in src/models/), which decides the checkpoint's weight names and the forward. */
  modelType: string;
  /** Residual stream width H (`hidden_size`, GPT-2 `n_embd`). */
  hiddenSize: number;
  numLayers: number;
  /** Query heads nH. */
  numHeads: number;
  /** Key/value heads nKv (GQA); numHeads % numKvHeads == 0. Equal to numHeads for OPT and GPT-2. */
  numKvHeads: number;
  /** Per-head width D; Qwen3 and Llama 3.2 may set it apart from hiddenSize / numHeads. */
  headDim: number;
  /** MLP inner width I (OPT `ffn_dim`, GPT-2 `n_inner` or 4H). */
  intermediateSize: number;
  vocabSize: number;
  /** Longest sequence the positions support (`max_position_embeddings`, GPT-2 `n_positions`). */
  maxModelLen: number;
  /** RMSNorm (Llama family) or LayerNorm (OPT, GPT-2). */
  norm: 'rms' | 'layer';
  /** Norm epsilon (`rms_norm_eps`, `layer_norm_epsilon`; OPT uses torch's LayerNorm default 1e-5). */
  normEps: number;
  /** Norm before each block (true) or after the residual add (OPT `do_layer_norm_before: false`, e.g. opt-350m). */
  preNorm: boolean;
  /** Whether a norm follows the last layer (absent for post-LN OPT and `_remove_final_layer_norm`). */
  finalNorm: boolean;
  /** MLP activation; `gelu_new` is the tanh approximation (also `gelu_pytorch_tanh`, `gelu_fast`). */
  act: Activation;
  /** act(gate) * up (Llama family) or a plain act(fc1) (OPT, GPT-2). */
  gatedMlp: boolean;
  /** Rotary positions or a learned position table added to the embeddings. */
  positions: 'rope' | 'learned';
  /** Row of position p in the learned table is p + offset (OPT: 2, for historical padding rows; GPT-2: 0). */
  learnedPositionOffset: number;
  /** Rotary parameters, null for learned positions. */
  rope: RopeConfig | null;
  /** Attend to at most this many most recent tokens (Mistral, Phi-3); null for full attention. */
  slidingWindow: number | null;
  /** q/k/v projections have biases (Qwen2, OPT, GPT-2, Llama `attention_bias`). */
  qkvBias: boolean;
  /** The output projection has a bias (OPT, GPT-2, Llama/Qwen3 `attention_bias`). */
  oBias: boolean;
  /** MLP projections have biases (OPT, GPT-2, Llama `mlp_bias`). */
  mlpBias: boolean;
  /** Norms have a bias (LayerNorm). */
  normBias: boolean;
  /** RMSNorm over each head of q and k before rope, weights [D] (Qwen3). */
  qkNorm: boolean;
  /**
   * OPT `word_embed_proj_dim` when it differs from hiddenSize (opt-350m: 512 vs 1024): embeddings are that wide
   * and `project_in` [H, P] / `project_out` [P, H] map to and from the residual stream. Null otherwise.
   */
  wordEmbedProjDim: number | null;
  /** GPT-2 Conv1D: linear weights are stored [in, out] and must be transposed to [out, in]. */
  conv1dWeights: boolean;
  /** The LM head reuses the token embedding matrix (no `lm_head.weight` needed). */
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  /** End-of-sequence ids from config.json (one or several; generation_config.json may add more). */
  eosTokenIds: number[];
  /** The checkpoint's stored dtype (`dtype` in 5.x, `torch_dtype` in 4.x; float32 when absent). */
  dtype: ModelDtype;
  /** The parsed config.json, for anything not normalized here. */
  raw: Record<string, unknown>;
  /**
   * Per-layer variations, one entry per layer (Gemma's alternating local and global layers, SmolLM3's NoPE layers).
   * Absent: every layer attends within `slidingWindow` and rotates with `rope`.
   */
  layerTypes?: LayerType[];
  /** Rotary parameters of layers whose type says `rope: 'local'` (Gemma 3's sliding layers: base 10000). */
  localRope?: RopeConfig;
  /** Multiplier of the token embeddings (Gemma: sqrt(hidden), Granite: embedding_multiplier); absent: 1. */
  embedScale?: number;
  /**
   * Multiplier of each block's output before the residual add (Granite: residual_multiplier); absent: 1. A constant
   * of a linear map: the family's weight table folds it into the output projections, the forward never applies it.
   */
  residualScale?: number;
  /** Multiplier of the final logits (Granite: 1 / logits_scaling); absent: 1. Folded into the final norm likewise. */
  logitScale?: number;
  /**
   * RMSNorm of each block's output before it joins the residual stream: x += norm(block(h)) (Gemma 2/3's
   * post_attention_layernorm / post_feedforward_layernorm with preNorm, OLMo 2's post norms without).
   */
  postNorms?: boolean;
  /** q/k RMSNorm per head (weights [D]: Qwen3, Gemma 3; the default) or over the whole projection ([nH D]: OLMo 2). */
  qkNormMode?: 'head' | 'projection';
  /** Attention logits soft-capped: s = cap tanh(s / cap) (Gemma 2 attn_logit_softcapping). */
  attnSoftcap?: number;
  /** Final logits soft-capped likewise (Gemma 2 final_logit_softcapping). */
  finalSoftcap?: number;
  /** Mixture-of-experts MLPs (Mixtral, Qwen2-MoE, Qwen3-MoE); absent: every MLP dense. */
  moe?: MoeConfig;
  /** Multiplier of q.k in attention; absent: 1 / sqrt(headDim) (Gemma: query_pre_attn_scalar^-0.5, Granite: attention_multiplier). */
  attnScale?: number;
}

/** A mixture-of-experts MLP: each token's top-K of E gated experts, weighted by the router's softmax. */
export interface MoeConfig {
  numExperts: number;
  topK: number;
  /** Each expert's inner width (Mixtral `intermediate_size`, Qwen `moe_intermediate_size`). */
  intermediateSize: number;
  /** Renormalise the top-K probabilities to sum 1 (Mixtral always; Qwen `norm_topk_prob`). */
  normTopK: boolean;
  /** A shared expert every token goes through, gated by sigmoid(x . g) (Qwen2-MoE); null: none. */
  sharedIntermediateSize: number | null;
  /** Whether layer l's MLP is sparse (Qwen's mlp_only_layers / decoder_sparse_step keep some dense). */
  sparseLayers: boolean[];
}

/** One layer's attention variant. */
export interface LayerType {
  /** Attend to at most this many most recent tokens; null: full attention. */
  slidingWindow: number | null;
  /** Which rotary table: the model's (`rope`), the local one (`localRope`), or none (a NoPE layer). */
  rope: 'global' | 'local' | null;
}


/** The fields a family's reader fills; parseModelConfig adds the rest. */
export type ConfigBody = Omit<ModelConfig, 'architecture' | 'modelType' | 'bosTokenId' | 'eosTokenIds' | 'dtype' | 'raw'>;

const ACTIVATIONS: Record<string, Activation> = {
  silu: 'silu',
  swish: 'silu',
  gelu: 'gelu',
  gelu_new: 'gelu_new',
  gelu_pytorch_tanh: 'gelu_new',
  gelu_fast: 'gelu_new',
  relu: 'relu',
};

const DTYPES: Record<string, ModelDtype> = {
  float32: 'float32',
  float: 'float32',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
};

export function readDtype(f: JsonFields): ModelDtype {
  const key = f.firstKey('dtype', 'torch_dtype');
  if (!key) return 'float32';
  const name = f.str(key).replace(/^torch\./, '');
  const dtype = DTYPES[name];
  if (!dtype) f.fail(key, `"${name}" is not a supported dtype (float32, float16, bfloat16)`);
  return dtype;
}

export function readAct(f: JsonFields, key: string, fallback: string): Activation {
  const name = f.str(key, fallback);
  const act = ACTIVATIONS[name];
  if (!act) f.fail(key, `"${name}" is not a supported activation (${Object.keys(ACTIVATIONS).join(', ')})`);
  return act;
}

/** hidden / heads, which must divide evenly when the config gives no head_dim. */
export function splitHeads(f: JsonFields, hiddenKey: string, hidden: number, heads: number): number {
  if (hidden % heads !== 0) f.fail(hiddenKey, `(${hidden}) must be divisible by the number of heads (${heads})`);
  return hidden / heads;
}
