/**
 * GGUF metadata -> ModelConfig, and GGUF tensor names -> Hugging Face names, so a GGUF checkpoint can go through
 * the same family files as a safetensors one.
 *
 * The metadata is turned into the config.json HF would write (`hfConfigFromGguf`), which parseModelConfig then
 * reads: one reader per family, defaults included. Keys (llama.cpp's gguf-py constants, `{arch}` the value of
 * general.architecture):
 *   {arch}.embedding_length -> hidden_size          {arch}.block_count -> num_hidden_layers
 *   {arch}.attention.head_count(_kv) -> num_attention_heads / num_key_value_heads
 *   {arch}.feed_forward_length -> intermediate_size {arch}.context_length -> max_position_embeddings
 *   {arch}.rope.freq_base -> rope_theta             {arch}.attention.layer_norm_rms_epsilon -> rms_norm_eps
 *   {arch}.attention.key_length -> head_dim         {arch}.vocab_size, else the token list's length -> vocab_size
 *   tokenizer.ggml.bos_token_id / eos_token_id      no `output.weight` tensor -> tie_word_embeddings
 *
 * Rotary rows: llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) reorders the rows of Llama's q and k
 * projections from HF's half-split rotary layout to GGML's interleaved one; `unpermuteRotaryRows` undoes it.
 * Qwen2/Qwen3 tensors are stored unpermuted (their converter does not call permute).
 */
import { ModelFileError } from '../errors.js';
import type { ModelConfig } from '../config/model-config.js';
import type { CheckpointTensor, WeightsReader } from '../loader/checkpoint.js';
import { GgufFormatError, readGgufHeader, readGgufTensorBytes, type GgufHeader, type GgufTensorInfo, type GgufValue } from '../loader/gguf.js';
import { streamTensors, type TensorInfo } from '../loader/safetensors.js';
import type { ByteSource, ModelSource } from '../platform.js';
import { parseModelConfig } from './registry.js';

/** general.architecture -> the HF class and what its GGUF needs. */
const ARCHITECTURES: Record<string, { hfClass: string; modelType: string; permutedQk: boolean }> = {
  llama: { hfClass: 'LlamaForCausalLM', modelType: 'llama', permutedQk: true },
  qwen2: { hfClass: 'Qwen2ForCausalLM', modelType: 'qwen2', permutedQk: false },
  qwen3: { hfClass: 'Qwen3ForCausalLM', modelType: 'qwen3', permutedQk: false },
  // Fused attn_qkv and ffn_up (gate and up stacked), as HF's qkv_proj / gate_up_proj.
  phi3: { hfClass: 'Phi3ForCausalLM', modelType: 'phi3', permutedQk: false },
};

/** The architectures ggufModelConfig reads. */
export const GGUF_ARCHITECTURES = Object.keys(ARCHITECTURES);

/**
 * The config.json Hugging Face would write for this GGUF file. Throws ModelFileError naming the key for an
 * unsupported architecture, a missing required key or a wrong type.
 */
export function hfConfigFromGguf(header: GgufHeader, file: string): Record<string, unknown> {
  const md = header.metadata;
  const fail = (problem: string): never => {
    throw new ModelFileError(file, problem);
  };
  const arch = md.get('general.architecture');
  if (typeof arch !== 'string') fail('general.architecture is missing');
  const a = ARCHITECTURES[arch as string];
  if (!a) fail(`general.architecture "${String(arch)}" is not supported (${GGUF_ARCHITECTURES.join(', ')})`);
  const p = `${arch}.`;
  const int = (key: string, required: boolean): number | undefined => {
    const v = md.get(p + key) ?? md.get(key);
    if (v === undefined) return required ? fail(`${p + key} is missing`) : undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`${p + key} must be a non-negative integer, got ${String(v)}`);
    return v as number;
  };
  const float = (key: string): number | undefined => {
    const v = md.get(p + key);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !(v > 0)) fail(`${p + key} must be a positive number, got ${String(v)}`);
    return shortestFloat32(v as number);
  };
  const tokenId = (key: string): number | undefined => {
    const v = md.get(`tokenizer.ggml.${key}`);
    // llama.cpp writes 0xffffffff (LLAMA_TOKEN_NULL as u32) for "none".
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 0xffffffff ? v : undefined;
  };
  if (md.has(`${p}rope.scaling.type`) && md.get(`${p}rope.scaling.type`) !== 'none') {
    fail(`${p}rope.scaling.type "${String(md.get(`${p}rope.scaling.type`))}" is not supported yet`);
  }
  const names = new Set(header.tensors.map((t) => t.name));
  // Llama 3.x stores its rope scaling as precomputed frequency factors, not as metadata.
  if (names.has('rope_freqs.weight')) fail('rope_freqs.weight (Llama 3 rope scaling factors) is not supported yet');

  const tokens = md.get('tokenizer.ggml.tokens');
  const vocabSize = int('vocab_size', false) ?? (Array.isArray(tokens) ? tokens.length : fail('neither llama.vocab_size nor tokenizer.ggml.tokens is present'));
  const embd = header.tensors.find((t) => t.name === 'token_embd.weight');
  const cfg: Record<string, unknown> = {
    architectures: [a.hfClass],
    model_type: a.modelType,
    hidden_size: int('embedding_length', true),
    num_hidden_layers: int('block_count', true),
    num_attention_heads: int('attention.head_count', true),
    num_key_value_heads: int('attention.head_count_kv', false) ?? int('attention.head_count', true),
    intermediate_size: int('feed_forward_length', true),
    max_position_embeddings: int('context_length', false),
    rms_norm_eps: float('attention.layer_norm_rms_epsilon'),
    rope_theta: float('rope.freq_base'),
    head_dim: int('attention.key_length', false),
    vocab_size: vocabSize,
    bos_token_id: tokenId('bos_token_id'),
    eos_token_id: tokenId('eos_token_id'),
    tie_word_embeddings: !names.has('output.weight'),
    // Biases are present as tensors; HF's flag says both q/k/v and o have them.
    attention_bias: names.has('blk.0.attn_q.bias') && names.has('blk.0.attn_output.bias'),
    // An F32 file asks for f32 weights; a quantized one came from f16 / bf16 weights (the KV cache follows this).
    torch_dtype: embd?.typeName === 'F32' ? 'float32' : embd?.typeName === 'BF16' ? 'bfloat16' : 'float16',
  };
  if (arch === 'phi3') {
    if (names.has('rope_factors_long.weight')) fail('rope_factors_long.weight (Phi-3 LongRoPE) is not supported yet');
    // The converter writes 0 for "no sliding window" (Phi-4).
    const window = int('attention.sliding_window', false);
    if (window) cfg.sliding_window = window;
    cfg.original_max_position_embeddings = int('rope.scaling.original_context_length', false);
    const rotary = int('rope.dimension_count', false);
    const headDim = (cfg.hidden_size as number) / (cfg.num_attention_heads as number);
    if (rotary !== undefined && rotary !== headDim) cfg.partial_rotary_factor = rotary / headDim;
  }
  for (const k of Object.keys(cfg)) if (cfg[k] === undefined) delete cfg[k];
  return cfg;
}

/**
 * The ModelConfig of a GGUF checkpoint, as parseModelConfig gives for the equivalent config.json.
 *
 * @example
 *   const cfg = ggufModelConfig(await readGgufHeader(src), src.name);
 *   cfg.numKvHeads; // 4 for stories260K
 */
export function ggufModelConfig(header: GgufHeader, file: string): ModelConfig {
  return parseModelConfig(hfConfigFromGguf(header, file), file);
}

/** Whether this architecture's q/k rows were permuted by the converter (undo with unpermuteRotaryRows). */
export function ggufPermutesQk(architecture: string): boolean {
  return ARCHITECTURES[architecture]?.permutedQk ?? false;
}

/** Per-layer GGUF tensor -> HF module name (Llama-style families; `.weight` / `.bias` kept). */
const LAYER_NAMES: Record<string, string> = {
  attn_norm: 'input_layernorm',
  attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj',
  attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj',
  attn_q_norm: 'self_attn.q_norm',
  attn_k_norm: 'self_attn.k_norm',
  ffn_norm: 'post_attention_layernorm',
  ffn_gate: 'mlp.gate_proj',
  ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
};
/** Phi-3's fused projections. */
const PHI3_LAYER_NAMES: Record<string, string> = {
  attn_qkv: 'self_attn.qkv_proj',
  ffn_up: 'mlp.gate_up_proj',
};
const GLOBAL_NAMES: Record<string, string> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight',
};

/**
 * The HF name of a GGUF tensor of a Llama-style model (llama, qwen2, qwen3, phi3: `architecture` is
 * general.architecture), or null for one HF has no counterpart of (e.g. rope_freqs.weight).
 *
 * @example
 *   hfTensorName('blk.3.attn_q.weight'); // 'model.layers.3.self_attn.q_proj.weight'
 */
export function hfTensorName(ggufName: string, architecture = 'llama'): string | null {
  const g = GLOBAL_NAMES[ggufName];
  if (g) return g;
  const m = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(ggufName);
  const inner = m && ((architecture === 'phi3' && PHI3_LAYER_NAMES[m[2]]) || LAYER_NAMES[m[2]]);
  return inner ? `model.layers.${m[1]}.${inner}.${m[3]}` : null;
}

/**
 * Undoes the converter's rotary row permutation of a q or k projection, whatever the element type (rows are
 * contiguous runs of `rowBytes`, so quantized blocks move whole).
 *
 * HF orders each head's D rows as [first halves of the rotary pairs | second halves]: row h*D + i*(D/2) + j, i in
 * {0,1}, j < D/2. The converter's permute (reshape(nHead, 2, D/2, ...).swapaxes(1, 2)) stores that row at
 * h*D + 2j + i, so pairs sit next to each other as GGML's rope expects. Here: hf[h, i, j] = gguf[h, j, i].
 * `numHeads` is the head count of this projection (query heads for q, KV heads for k).
 *
 * @example  D = 4: GGUF rows [a0 b0 a1 b1] (pairs (a_j, b_j)) -> HF rows [a0 a1 b0 b1].
 */
export function unpermuteRotaryRows(data: Uint8Array, numHeads: number, rowBytes: number): Uint8Array {
  const rows = data.length / rowBytes;
  if (!Number.isInteger(rows) || rows % (2 * numHeads) !== 0) {
    throw new RangeError(`unpermuteRotaryRows: ${data.length} bytes are not whole rows of ${rowBytes} bytes in ${numHeads} heads of even size`);
  }
  const d = rows / numHeads;
  const half = d / 2;
  const out = new Uint8Array(data.length);
  for (let h = 0; h < numHeads; h++) {
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < half; j++) {
        const src = (h * d + 2 * j + i) * rowBytes;
        out.set(data.subarray(src, src + rowBytes), (h * d + i * half + j) * rowBytes);
      }
    }
  }
  return out;
}

/** One GGUF tensor under its HF name. */
export interface GgufCheckpointTensor {
  /** The HF name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  info: GgufTensorInfo;
  /** Rows stored in GGML's interleaved rotary order: undo with unpermuteRotaryRows over this many heads; else null. */
  rotaryHeads: number | null;
}

/** A GGUF file seen as an HF checkpoint: what a weight loader needs beside the ModelConfig. */
export interface GgufCheckpoint {
  config: ModelConfig;
  /** By HF name. */
  tensors: Map<string, GgufCheckpointTensor>;
  /** GGUF tensors without an HF counterpart (e.g. rope_freqs.weight). */
  unmapped: string[];
}

/**
 * The ModelConfig and the HF-named tensor map of a GGUF header: the seam where GGUF plugs into the weight tables
 * (weightTable(config) names tensors; each maps to its GGUF info, byte layout and ggml type).
 *
 * @example
 *   const ckpt = ggufCheckpoint(await readGgufHeader(src), src.name);
 *   ckpt.tensors.get('model.layers.0.self_attn.k_proj.weight'); // { info: { typeName: 'Q8_0', ... }, rotaryHeads: 4 }
 */
export function ggufCheckpoint(header: GgufHeader, file: string): GgufCheckpoint {
  const config = ggufModelConfig(header, file);
  const arch = header.metadata.get('general.architecture') as string;
  const permuted = ggufPermutesQk(arch);
  const tensors = new Map<string, GgufCheckpointTensor>();
  const unmapped: string[] = [];
  for (const info of header.tensors) {
    const name = hfTensorName(info.name, arch);
    if (name === null) {
      unmapped.push(info.name);
      continue;
    }
    const qk = /\.attn_(q|k)\.weight$/.exec(info.name);
    const rotaryHeads = permuted && qk ? (qk[1] === 'q' ? config.numHeads : config.numKvHeads) : null;
    tensors.set(name, { name, info, rotaryHeads });
  }
  return { config, tensors, unmapped };
}

/** A tensor's raw bytes (its ggml type's encoding) with rows in HF order (rotary rows un-permuted). */
export async function readGgufTensorAsHf(src: ByteSource, t: GgufCheckpointTensor): Promise<Uint8Array> {
  const data = await readGgufTensorBytes(src, t.info);
  if (t.rotaryHeads === null) return data;
  const rows = t.info.shape[0];
  return unpermuteRotaryRows(data, t.rotaryHeads, t.info.byteLength / rows);
}

/** A float32 metadata value as the shortest decimal that rounds to it (9.999999747e-6 -> 1e-5), as config.json has. */
function shortestFloat32(v: number): number {
  for (let p = 1; p <= 9; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

/** A split GGUF's file name: `<stem>-00001-of-00003.gguf` (llama.cpp's gguf-split). */
const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

/** A GGUF model: its metadata (the first file's), config, and tensors as a WeightsReader. */
export interface GgufModel {
  /** The files, in split order (one for an unsplit file). */
  files: string[];
  metadata: ReadonlyMap<string, GgufValue>;
  config: ModelConfig;
  weights: WeightsReader;
}

/**
 * Opens a GGUF model in `source`: `file`, or, when it is one of a split (`-0000k-of-0000N.gguf`), all N files
 * (metadata from the first; the tensors of all). Only the headers are read here; the weights stream when loaded.
 *
 * @example
 *   const m = await openGgufModel(source, 'Llama-3.2-1B-Instruct-Q4_K_M.gguf');
 *   m.config.numLayers; // 16
 *   m.weights.tensors.get('model.layers.0.mlp.down_proj.weight')!.dtype; // 'Q6_K'
 */
export async function openGgufModel(source: ModelSource, file: string): Promise<GgufModel> {
  const split = SPLIT_NAME.exec(file);
  const count = split ? Number(split[3]) : 1;
  if (split && (count < 1 || count > 1000)) throw new ModelFileError(`${source.name}/${file}`, `a split count of ${count} is not plausible`);
  const files = split ? Array.from({ length: count }, (_, i) => `${split[1]}-${String(i + 1).padStart(5, '0')}-of-${split[3]}.gguf`) : [file];
  const headers: GgufHeader[] = [];
  for (const [i, f] of files.entries()) {
    const src = await source.open(f);
    try {
      const h = await readGgufHeader(src);
      const no = h.metadata.get('split.no');
      if (split && no !== undefined && no !== i) throw new GgufFormatError(src.name, 'invalid', `split.no is ${String(no)}, expected ${i} for this file name`);
      headers.push(h);
    } finally {
      await src.close?.();
    }
  }
  const first = headers[0];
  const declared = first.metadata.get('split.count');
  if (declared !== undefined && declared !== count) {
    throw new GgufFormatError(`${source.name}/${files[0]}`, 'invalid', `split.count is ${String(declared)}, but the file name says ${count} file(s)`);
  }
  const where = `${source.name}/${files[0]}`;
  const all: GgufHeader = { ...first, tensors: headers.flatMap((h) => h.tensors) };
  const fileOf = new Map(headers.flatMap((h, i) => h.tensors.map((t) => [t, files[i]] as const)));
  const names = new Set<string>();
  for (const t of all.tensors) {
    if (names.has(t.name)) throw new GgufFormatError(where, 'invalid', `tensor "${t.name}" appears in two split files`);
    names.add(t.name);
  }
  const ckpt = ggufCheckpoint(all, where);
  const tensors = new Map<string, CheckpointTensor & { rotaryHeads: number | null }>();
  for (const [name, t] of ckpt.tensors) {
    const { info } = t;
    tensors.set(name, { name, dtype: info.typeName, shape: info.shape, file: fileOf.get(info)!, offset: info.offset, byteLength: info.byteLength, rotaryHeads: t.rotaryHeads });
  }
  const headDim = ckpt.config.headDim;
  const weights: WeightsReader = {
    files,
    tensors,
    async *stream(list) {
      const infos = [...list] as (CheckpointTensor & { rotaryHeads?: number | null })[];
      // Rotary q / k rows come in whole heads, so each chunk is un-permuted on its own.
      const chunks = streamTensors(source, infos as unknown as TensorInfo[], { rowMultiple: (i) => ((i as { rotaryHeads?: number | null }).rotaryHeads ? headDim : 1) });
      for await (const chunk of chunks) {
        const info = chunk.info as unknown as CheckpointTensor & { rotaryHeads?: number | null };
        if (!info.rotaryHeads) {
          yield chunk;
          continue;
        }
        const rowBytes = info.byteLength / info.shape[0];
        yield { ...chunk, data: unpermuteRotaryRows(chunk.data, chunk.rows / headDim, rowBytes) };
      }
    },
  };
  return { files, metadata: first.metadata, config: ckpt.config, weights };
}
