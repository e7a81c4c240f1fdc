/**
 * Flags shared by the commands that load a model (generate, chat, serve, bench latency|throughput), with vLLM's
 * names, and their mapping onto LLMOptions / SamplingParamsInit. Pure functions of the parsed values, so tests
 * check every flag's mapping without loading a model.
 */
import { ON_LOAD_FORMATS } from '../../../src/layers/quant/index.js';
import type { LLMOptions, SamplingParamsInit } from '../index.js';
import { UsageError, type FlagSpec, type FlagValues } from './args.js';

/** What --quantization accepts: the block formats with an on-load quantizer, and llama.cpp's mixes. */
export const QUANTIZATIONS = [...ON_LOAD_FORMATS, 'q4_k_m', 'q5_k_m'] as const;

/** vLLM's log levels (its --uvicorn-log-level), most verbose first. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const MODEL_FLAG: FlagSpec = {
  name: 'model',
  kind: 'string',
  metavar: 'MODEL',
  help: "a local Hugging Face checkpoint folder, a hub repo id 'org/name' (downloaded to the Hugging Face cache), a .gguf file, 'org/name:Q4_K_M', or an http(s) URL prefix",
  defaultText: 'the embedded tinystories-656K',
};

/** Loading and engine flags (vLLM's engine arguments). */
export const ENGINE_FLAGS: FlagSpec[] = [
  { name: 'revision', kind: 'string', metavar: 'REV', help: 'branch, tag or commit of a hub repo', defaultText: 'main' },
  { name: 'tokenizer', kind: 'string', metavar: 'MODEL', help: "use this folder's or repo's Hugging Face tokenizer (and chat template) instead of the model's (vLLM recommends it for GGUF)" },
  { name: 'download-dir', kind: 'string', metavar: 'DIR', help: 'the Hugging Face cache folder for downloads', defaultText: '$HF_HUB_CACHE or $HF_HOME/hub' },
  { name: 'device', kind: 'choice', choices: ['auto', 'webgpu', 'cpu'], help: "where the model runs: 'auto' is WebGPU when there is an adapter, else the CPU backend (WebAssembly); 'webgpu' or 'cpu' insist", defaultText: 'auto' },
  { name: 'cpu-threads', kind: 'int', min: 1, max: 256, help: 'threads of the CPU backend (worker_threads)', defaultText: 'the cores, at most 8' },
  { name: 'dtype', kind: 'choice', choices: ['auto', 'float32', 'float16', 'half', 'float'], help: "weight dtype on the GPU: 'auto' is float16 when the checkpoint is 16-bit and the adapter has shader-f16, else float32", defaultText: 'auto' },
  { name: 'quantization', kind: 'choice', choices: QUANTIZATIONS, metavar: 'FORMAT', help: "quantize the projection matrices on load to a llama.cpp block format (q8_0 8.5 bits a weight ... q2_k 2.625); q4_k_m / q5_k_m keep the MLP's down projection in q6_k; a GGUF or AWQ/GPTQ checkpoint keeps its own format", defaultText: "the checkpoint's dtype" },
  { name: 'load-format', kind: 'choice', choices: ['auto', 'dummy'], help: "'dummy': random weights from config.json alone (benchmarks without downloading weights)", defaultText: 'auto' },
  { name: 'max-model-len', kind: 'int', min: 2, help: 'longest prompt + output in tokens', defaultText: "the model's max_position_embeddings, at most 8192 and what the KV cache holds" },
  { name: 'generation-config', kind: 'string', metavar: 'auto|vllm|DIR', help: "default sampling parameters: 'auto' from the model's generation_config.json, 'vllm' none (vLLM's defaults), or a folder or repo whose generation_config.json to use", defaultText: 'auto' },
  { name: 'seed', kind: 'int', min: 0, help: 'seed for requests that set none: the same seed and flags give the same text' },
  { name: 'gpu-memory-utilization', kind: 'number', min: 0, minExclusive: true, max: 1, metavar: 'F', help: "size the KV cache so that weights, activations and cache take this fraction of the GPU's memory (WebGPU does not report memory: read from nvidia-smi, else the system's memory for integrated and CPU adapters; the weights are estimated from config.json)" },
  { name: 'kv-cache-memory', kind: 'size', min: 1, aliases: ['kv-cache-memory-bytes'], help: 'bytes for the KV cache (512M, 2GiB, 1000000000; overrides --gpu-memory-utilization)', defaultText: '256 MiB' },
  { name: 'num-gpu-blocks-override', kind: 'int', min: 1, help: 'exact number of KV cache blocks (overrides both sizes above)' },
  { name: 'block-size', kind: 'int', min: 1, max: 1024, help: 'tokens per KV cache block', defaultText: '16' },
  { name: 'kv-cache-dtype', kind: 'choice', choices: ['auto', 'float32', 'float16'], help: "KV cache dtype; 'auto' follows the weights", defaultText: 'auto' },
  { name: 'max-num-seqs', kind: 'int', min: 1, help: 'most sequences in one step (batch size)', defaultText: '64' },
  { name: 'max-num-batched-tokens', kind: 'int', min: 1, help: 'most tokens in one step (long prompts are prefilled in chunks of this size)', defaultText: '2048' },
  { name: 'enable-prefix-caching', kind: 'boolean', negatable: true, help: 'reuse KV cache blocks of prompt prefixes already computed', defaultText: 'on' },
  { name: 'enforce-eager', kind: 'boolean', help: 'record every step anew (by default a step replays the commands captured the first time a step of its shape ran, as vLLM CUDA graphs)' },
  { name: 'async-scheduling', kind: 'boolean', negatable: true, help: 'schedule and submit each step while the previous one runs on the GPU', defaultText: 'on' },
  { name: 'scheduling-policy', kind: 'choice', choices: ['fcfs', 'priority'], help: "'fcfs': first come, first served; 'priority': requests' priority (lower first, then arrival); a request with a priority under fcfs is refused", defaultText: 'fcfs' },
  { name: 'speculative-config', kind: 'string', metavar: 'JSON', help: 'speculative decoding, as vLLM: \'{"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4}\' (n-gram prompt lookup) or \'{"model": "DRAFT", "num_speculative_tokens": 4}\' (a draft model with the same vocabulary); outputs as without it', defaultText: 'off' },
  { name: 'stream-interval', kind: 'int', min: 1, help: 'streamed outputs carry this many new tokens each (the first and last go at once); a request\'s stream_interval may raise it', defaultText: '1' },
  { name: 'reasoning-config', kind: 'string', metavar: 'JSON', help: 'the reasoning section\'s delimiters, as vLLM: \'{"reasoning_start_str": "<think>", "reasoning_end_str": "</think>"}\' (thinking_token_budget counts in it; --reasoning-parser sets it otherwise)', defaultText: 'off' },
  { name: 'max-logprobs', kind: 'int', min: -1, help: 'most logprobs / prompt_logprobs a request may ask for (-1: the whole vocabulary)', defaultText: '20' },
  { name: 'log-level', kind: 'choice', choices: LOG_LEVELS, metavar: 'LEVEL', aliases: ['uvicorn-log-level'], help: "stderr verbosity: 'debug' adds Dawn's adapter warnings and the notice of the model's sampling defaults", defaultText: 'info' },
];

/** Sampling flags (a request's SamplingParams). */
export const SAMPLING_FLAGS: FlagSpec[] = [
  { name: 'max-tokens', kind: 'int', min: 1, help: 'most tokens to generate per reply', defaultText: '256' },
  { name: 'temperature', kind: 'number', min: 0, metavar: 'T', help: 'sampling temperature; 0 is greedy (always the most likely token)', defaultText: "the model's generation_config, else 1" },
  { name: 'top-p', kind: 'number', min: 0, minExclusive: true, max: 1, metavar: 'P', help: 'nucleus sampling: sample among the most likely tokens whose probabilities add up to P; 1 disables it', defaultText: "the model's generation_config, else 1" },
  { name: 'top-k', kind: 'int', min: -1, metavar: 'K', help: 'sample among the K most likely tokens only; 0 or -1 disables it', defaultText: "the model's generation_config, else off" },
  { name: 'min-p', kind: 'number', min: 0, max: 1, metavar: 'P', help: "drop tokens less likely than P times the most likely one's probability", defaultText: 'off' },
  { name: 'repetition-penalty', kind: 'number', min: 0, minExclusive: true, metavar: 'X', help: 'divide the logits of tokens already in the prompt or output by X (> 1 repeats less)', defaultText: '1' },
  { name: 'ignore-eos', kind: 'boolean', help: 'keep generating past the end-of-sequence token until --max-tokens (benchmarks)' },
];

/** The flags of `spec` that a command's values may hold, as a typed view. */
const str = (v: FlagValues, k: string) => v[k] as string | undefined;
const n = (v: FlagValues, k: string) => v[k] as number | undefined;
const bool = (v: FlagValues, k: string) => v[k] as boolean | undefined;

/** --speculative-config's JSON (its fields are checked by the engine: src/spec-decode/config.ts). */
function specConfig(text: string | undefined): LLMOptions['speculativeConfig'] {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--speculative-config must be a JSON object: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`--speculative-config must be a JSON object, got ${text}`);
  return parsed as Record<string, unknown>;
}

/** --reasoning-config's JSON: vLLM's snake_case keys (or camelCase), both strings. */
function reasoningConfig(text: string | undefined): LLMOptions['reasoningConfig'] {
  if (text === undefined) return undefined;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--reasoning-config must be a JSON object: ${(err as Error).message}`);
  }
  const start = parsed?.reasoning_start_str ?? parsed?.reasoningStartStr;
  const end = parsed?.reasoning_end_str ?? parsed?.reasoningEndStr;
  if (typeof start !== 'string' || typeof end !== 'string' || start === '' || end === '') {
    throw new UsageError(`--reasoning-config needs "reasoning_start_str" and "reasoning_end_str" (non-empty strings), got ${text}`);
  }
  return { reasoningStartStr: start, reasoningEndStr: end };
}

/** The current log level of parsed values. */
export function logLevelOf(v: FlagValues): LogLevel {
  return (str(v, 'log-level') as LogLevel | undefined) ?? 'info';
}

/** True when `level` messages show at the chosen `threshold`. */
export function shows(threshold: LogLevel, level: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(threshold);
}

/**
 * LLMOptions from the engine flags (without kvCacheMemoryBytes from --gpu-memory-utilization: memory.ts computes
 * it, as it needs the model's config).
 */
export function engineOptions(v: FlagValues, model: string | undefined): LLMOptions {
  const dtype = str(v, 'dtype');
  if (v['gpu-memory-utilization'] !== undefined && v['kv-cache-memory'] !== undefined) {
    // vLLM: kv_cache_memory_bytes wins; say so rather than silently ignore one.
    throw new UsageError('give either --gpu-memory-utilization or --kv-cache-memory, not both');
  }
  const o: LLMOptions = {
    model,
    revision: str(v, 'revision'),
    tokenizer: str(v, 'tokenizer'),
    downloadDir: str(v, 'download-dir'),
    dtype: dtype === 'half' ? 'float16' : dtype === 'float' ? 'float32' : (dtype as LLMOptions['dtype']),
    quantization: str(v, 'quantization') ?? null,
    device: str(v, 'device') as LLMOptions['device'],
    cpuThreads: n(v, 'cpu-threads'),
    loadFormat: str(v, 'load-format') as LLMOptions['loadFormat'],
    maxModelLen: n(v, 'max-model-len'),
    generationConfig: str(v, 'generation-config'),
    seed: n(v, 'seed'),
    kvCacheMemoryBytes: n(v, 'kv-cache-memory'),
    numGpuBlocksOverride: n(v, 'num-gpu-blocks-override'),
    blockSize: n(v, 'block-size'),
    kvCacheDtype: str(v, 'kv-cache-dtype') as LLMOptions['kvCacheDtype'],
    maxNumSeqs: n(v, 'max-num-seqs'),
    maxNumBatchedTokens: n(v, 'max-num-batched-tokens'),
    enablePrefixCaching: bool(v, 'enable-prefix-caching'),
    enforceEager: bool(v, 'enforce-eager'),
    asyncScheduling: bool(v, 'async-scheduling'),
    maxLogprobs: n(v, 'max-logprobs'),
    schedulingPolicy: str(v, 'scheduling-policy') as LLMOptions['schedulingPolicy'],
    speculativeConfig: specConfig(str(v, 'speculative-config')),
    reasoningConfig: reasoningConfig(str(v, 'reasoning-config')),
    streamInterval: n(v, 'stream-interval'),
  };
  // Unset flags leave the library's defaults.
  for (const k of Object.keys(o) as (keyof LLMOptions)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** SamplingParamsInit from the sampling flags (unset flags: the model's defaults). */
export function samplingInit(v: FlagValues): SamplingParamsInit {
  const topK = n(v, 'top-k');
  const init: SamplingParamsInit = {
    maxTokens: n(v, 'max-tokens') ?? 256,
    temperature: n(v, 'temperature'),
    topP: n(v, 'top-p'),
    topK: topK === 0 ? -1 : topK,
    minP: n(v, 'min-p'),
    repetitionPenalty: n(v, 'repetition-penalty'),
    ignoreEos: bool(v, 'ignore-eos'),
  };
  for (const k of Object.keys(init) as (keyof SamplingParamsInit)[]) if (init[k] === undefined) delete init[k];
  return init;
}
