/**
 * The executor port: what the engine needs from the hardware, and all it knows of it. A backend (WebGPU today:
 * src/worker/gpu-model-runner.ts) loads the model, sizes the KV cache from the memory it has, runs a scheduler step's
 * forward over its flat batch of tokens, samples, and frees its resources. The engine imports only this file's
 * types, never gpu/ or models/ (vLLM V1's Executor and its workers' model runners).
 */
import type { ModelConfig } from '../config/model-config.js';
import type { WeightsReader } from '../loader/checkpoint.js';
import type { SampleOut, SamplerRequest } from '../sampling/sampler.js';
import type { EngineOptions } from './llm-engine.js';

/** One sequence's share of a step, as the engine hands it to the executor. */
export interface ScheduledSeq {
  requestId: string;
  /** The tokens to compute this step (a prompt chunk, or the last sampled token; -1: the token sampled last step). */
  tokenIds: readonly number[];
  /** Position of tokenIds[0] in the sequence. */
  startPos: number;
  /** The sequence's KV blocks, covering at least startPos + tokenIds.length tokens. */
  blockTable: readonly number[];
  /** Set when this step ends at the sequence's last known token, so a new token is sampled. */
  sample: SamplerRequest | null;
  /** More sequences sampled from the same logits row (n > 1: the forks' first tokens). */
  extraSamples?: { requestId: string; sample: SamplerRequest }[];
  /** Also return the logits of every token of this chunk (prompt logprobs, tests). */
  allLogits?: boolean;
  /**
   * Speculative decoding: the chunk ends in `numSpecTokens` draft tokens, and the target's verdict is needed at
   * each of the chunk's last numSpecTokens + 1 positions. 'argmax': the argmax of each (greedy rows; `sample` then
   * gives the last one, the rest go to StepResult.specArgmax). 'logits': their whole logits rows in
   * StepResult.allLogits, nothing sampled (`sample` null: the engine's rejection sampler draws).
   */
  verify?: { numSpecTokens: number; rows: 'argmax' | 'logits' };
}

/** What sampling gave for one sequence. */
export type SampleResult = SampleOut;

export interface StepResult {
  sampled: Map<string, SampleResult>;
  /** Logits rows [tokens of the chunk][V] for sequences with `allLogits` (or verify.rows 'logits': [k + 1][V]). */
  allLogits: Map<string, Float32Array[]>;
  /** verify.rows 'argmax': the argmax at the k positions before the chunk's last (the last one is in `sampled`). */
  specArgmax?: Map<string, number[]>;
}

/** The sizes the executor settled at load (from the options and the memory it has). */
export interface RunnerLimits {
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  maxModelLen: number;
  blockSize: number;
  numBlocks: number;
  kvDtype: 'f32' | 'f16';
}

export interface Executor {
  /** The model's normalized config.json. */
  readonly config: ModelConfig;
  readonly limits: RunnerLimits;
  /**
   * Runs one step: copy-on-write block copies first, then the forward over every scheduled token, then sampling of
   * the rows that ask for it. Submits its work before it first waits, so the next step can be planned meanwhile.
   * `beforeSampling`, if given, is awaited once the forward is submitted and before anything reads a row's
   * SamplerRequest.tokenBitmask: the engine makes the step's grammar bitmasks there, while the device runs.
   */
  execute(seqs: readonly ScheduledSeq[], blockCopies?: readonly (readonly [number, number])[], beforeSampling?: () => Promise<void>): Promise<StepResult>;
  /**
   * Steps of at most this many sample rows apply grammar bitmasks on the device before its argmax, so a greedy
   * constrained row's token is the device's argmax (it can feed the next step's placeholder, as a free greedy row's
   * does). 0 or absent: bitmasks are applied by the host sampler.
   */
  readonly deviceMaskRows?: number;
  /**
   * Whether execute() leaves its forward running beside the caller (a GPU queue), so that planning and submitting the
   * next step before this one's tokens are read (async scheduling) overlaps the two. false: execute() computes in the
   * calling thread before it returns (the CPU backend), and a step run ahead would only hold back the outputs of the
   * step before it; the engine then runs one step at a time.
   */
  readonly overlapsCaller: boolean;
  /** Frees everything the executor holds (its device included). */
  dispose(): void;
}

/** What a backend loads: the model's config and its checkpoint (opened only when real weights are loaded). */
export interface ModelHandle {
  /** The model's name in errors and logs (a folder, URL or repo id). */
  readonly name: string;
  readonly config: ModelConfig;
  /** The checkpoint's tensors (safetensors, GGUF, a repacked AWQ / GPTQ one): loader/checkpoint.ts. */
  openWeights(): Promise<WeightsReader>;
}

/**
 * Loads a model onto a backend: config, weights, KV cache sized to the options and the device, kernels built.
 *
 * @example
 *   const engine = await LLMEngine.create(model, (m, opts) => GpuModelRunner.load(m, gpu, opts), options);
 */
export type ExecutorLoader = (model: ModelHandle, options: EngineOptions) => Promise<Executor>;
