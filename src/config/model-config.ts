/**
 * config.json -> ModelConfig: one normalized description of a decoder-only checkpoint, so models and kernels never
 * read Hugging Face keys. Every supported family maps onto the same fields; defaults are the family's HF defaults.
 *
 * Families: Llama (incl. Llama 3.1 rope), Mistral (sliding window), Qwen2 (q/k/v bias), Qwen3 (q/k RMSNorm,
 * head_dim decoupled from hidden/heads), Phi-3 (fused qkv_proj / gate_up_proj, partial rotary, longrope),
 * OPT (learned positions offset by 2, LayerNorm, ReLU, optional post-LN and embedding projection) and GPT-2
 * (n_embd/n_layer/..., Conv1D weights stored [in, out]).
 */
import { JsonFields } from './json-fields.js';
import { parseRope, type RopeConfig } from './rope.js';

export { ropeInvFreq, ropeAttentionScaling, type RopeConfig, type RopeScaling } from './rope.js';

export type ModelType = 'llama' | 'qwen2' | 'qwen3' | 'mistral' | 'phi3' | 'opt' | 'gpt2';
export type Activation = 'silu' | 'gelu_new' | 'gelu' | 'relu';
export type ModelDtype = 'float32' | 'float16' | 'bfloat16';

export interface ModelConfig {
  /** The HF class named in `architectures`, e.g. `LlamaForCausalLM`. */
  architecture: string;
  /** The family, which decides the checkpoint's weight names. */
  modelType: ModelType;
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
}

const ARCHITECTURES: Record<string, ModelType> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  Phi3ForCausalLM: 'phi3',
  OPTForCausalLM: 'opt',
  GPT2LMHeadModel: 'gpt2',
};

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

/**
 * Parses config.json (text or already-parsed JSON) into a ModelConfig.
 * Throws ModelFileError naming `file`, the key and the problem for unsupported architectures, missing required
 * keys and wrong types.
 *
 * @example
 *   const cfg = parseModelConfig(await source.readText('config.json'));
 *   cfg.numKvHeads; // 8 for Llama-3.2-1B
 */
export function parseModelConfig(json: unknown, file = 'config.json'): ModelConfig {
  const f = JsonFields.parse(json, file);
  const { architecture, modelType } = identify(f);
  const common = {
    architecture,
    modelType,
    bosTokenId: f.tokenId('bos_token_id'),
    eosTokenIds: f.tokenIds('eos_token_id'),
    dtype: readDtype(f),
    raw: f.obj,
  };
  const body = modelType === 'opt' ? readOpt(f) : modelType === 'gpt2' ? readGpt2(f) : readLlamaFamily(f, modelType);
  const cfg: ModelConfig = { ...common, ...body };
  if (cfg.numHeads % cfg.numKvHeads !== 0) {
    f.fail('num_key_value_heads', `(${cfg.numKvHeads}) must divide num_attention_heads (${cfg.numHeads})`);
  }
  return cfg;
}

type Body = Omit<ModelConfig, 'architecture' | 'modelType' | 'bosTokenId' | 'eosTokenIds' | 'dtype' | 'raw'>;

function identify(f: JsonFields): { architecture: string; modelType: ModelType } {
  if (f.has('architectures')) {
    const archs = f.obj.architectures;
    if (!Array.isArray(archs) || !archs.every((a) => typeof a === 'string')) {
      f.fail('architectures', 'must be a list of class names');
    }
    const known = (archs as string[]).find((a) => a in ARCHITECTURES);
    if (!known) {
      f.fail('architectures', `names ${JSON.stringify(archs)}, none of which is supported (${Object.keys(ARCHITECTURES).join(', ')})`);
    }
    return { architecture: known, modelType: ARCHITECTURES[known] };
  }
  const type = f.str('model_type');
  const architecture = Object.keys(ARCHITECTURES).find((a) => ARCHITECTURES[a] === type);
  if (!architecture) f.fail('model_type', `"${type}" is not supported (${[...new Set(Object.values(ARCHITECTURES))].join(', ')})`);
  return { architecture, modelType: type as ModelType };
}

function readDtype(f: JsonFields): ModelDtype {
  const key = f.firstKey('dtype', 'torch_dtype');
  if (!key) return 'float32';
  const name = f.str(key).replace(/^torch\./, '');
  const dtype = DTYPES[name];
  if (!dtype) f.fail(key, `"${name}" is not a supported dtype (float32, float16, bfloat16)`);
  return dtype;
}

function readAct(f: JsonFields, key: string, fallback: string): Activation {
  const name = f.str(key, fallback);
  const act = ACTIVATIONS[name];
  if (!act) f.fail(key, `"${name}" is not a supported activation (${Object.keys(ACTIVATIONS).join(', ')})`);
  return act;
}

/** hidden / heads, which must divide evenly when the config gives no head_dim. */
function splitHeads(f: JsonFields, hiddenKey: string, hidden: number, heads: number): number {
  if (hidden % heads !== 0) f.fail(hiddenKey, `(${hidden}) must be divisible by the number of heads (${heads})`);
  return hidden / heads;
}

/** HF defaults that differ between the rotary families. */
const LLAMA_FAMILY_DEFAULTS: Record<string, { maxPos: number; eps: number; theta: number }> = {
  llama: { maxPos: 2048, eps: 1e-6, theta: 10000 },
  mistral: { maxPos: 4096 * 32, eps: 1e-6, theta: 10000 },
  qwen2: { maxPos: 32768, eps: 1e-6, theta: 10000 },
  qwen3: { maxPos: 32768, eps: 1e-6, theta: 10000 },
  phi3: { maxPos: 4096, eps: 1e-5, theta: 10000 },
};

function readLlamaFamily(f: JsonFields, type: ModelType): Body {
  const d = LLAMA_FAMILY_DEFAULTS[type];
  const hiddenSize = f.int('hidden_size');
  const numHeads = f.int('num_attention_heads');
  const numKvHeads = f.int('num_key_value_heads', numHeads);
  // Qwen3's HF default head_dim is 128 whatever the hidden size; the others derive it.
  const headDim = f.has('head_dim')
    ? f.int('head_dim')
    : type === 'qwen3'
      ? 128
      : splitHeads(f, 'hidden_size', hiddenSize, numHeads);
  const maxModelLen = f.int('max_position_embeddings', d.maxPos);
  const attentionBias = type === 'llama' || type === 'qwen3' ? f.bool('attention_bias', false) : false;
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
    normEps: f.positiveNum('rms_norm_eps', d.eps),
    preNorm: true,
    finalNorm: true,
    act: readAct(f, 'hidden_act', 'silu'),
    gatedMlp: true,
    positions: 'rope',
    learnedPositionOffset: 0,
    rope: parseRope(f, headDim, maxModelLen, d.theta),
    slidingWindow: readSlidingWindow(f, type),
    qkvBias: type === 'qwen2' || attentionBias,
    oBias: attentionBias,
    mlpBias: type === 'llama' ? f.bool('mlp_bias', false) : false,
    normBias: false,
    qkNorm: type === 'qwen3',
    wordEmbedProjDim: null,
    conv1dWeights: false,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
  };
}

function readSlidingWindow(f: JsonFields, type: ModelType): number | null {
  if (type === 'llama') return null;
  if (type === 'qwen2' || type === 'qwen3') {
    // Qwen configs carry a sliding_window value that only applies when use_sliding_window is set, and then only
    // to layers >= max_window_layers: a per-layer mix this engine does not implement.
    if (f.bool('use_sliding_window', false)) f.fail('use_sliding_window', 'is true; per-layer sliding windows are not supported');
    return null;
  }
  // MistralConfig defaults to a 4096 window when the key is absent (Mistral-7B-v0.1); null disables it (v0.2+).
  if (!('sliding_window' in f.obj)) return type === 'mistral' ? 4096 : null;
  return f.has('sliding_window') ? f.int('sliding_window') : null;
}

function readOpt(f: JsonFields): Body {
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

function readGpt2(f: JsonFields): Body {
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
