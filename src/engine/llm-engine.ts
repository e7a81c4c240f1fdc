/**
 * The engine: request -> tokenizer -> scheduler -> model runner -> sampler -> output processor -> streams.
 * Requests may be added at any time from any number of callers; one loop runs steps while work remains, and each
 * step is vLLM V1's three lines: schedule, execute, update from output. The output processor (detokenizer, stop
 * strings, streams) runs on a step's outputs while the GPU computes the next step, as vLLM's front end does beside
 * its engine core.
 *
 * @example
 * const stream = llm.engine.addRequest({ prompt: 'Hello', params: new SamplingParams({ maxTokens: 64 }) });
 * for await (const out of stream) console.log(out.outputs[0].text);
 */
import type { GenerationConfig } from '../config/generation-config.js';
import type { ModelConfig } from '../config/model-config.js';
import { CapacityError, InvalidArgumentError } from '../errors.js';
import type { DownloadProgress, ModelSource } from '../platform.js';
import { Generator } from '../sampling/generator.js';
import { SamplingParams, type SamplingParamsInit } from '../sampling-params.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { EngineMetrics, newRequestStateStats, type RequestStateStats } from './metrics.js';
import { yieldToEventLoop } from './yield.js';
import { OutputProcessor, type CoreOutput } from './output-processor.js';
import type { Executor, ExecutorLoader, ModelHandle, ScheduledSeq, StepResult } from './executor.js';
import { topLogprobs } from '../sampling/logprobs.js';
import { rowSampling } from '../sampling/row-sampling.js';
import { badWordsTokenIds, type SamplerRequest } from '../sampling/sampler.js';
import { StructuredOutputManager, type SequenceGrammar } from '../sampling/structured/manager.js';
import type { RepetitionDetection } from './repetition.js';
import { reasoningTokenIds, ThinkingBudget, type ReasoningConfig, type ReasoningTokenIds } from '../sampling/thinking-budget.js';
import { Request, RequestStatus } from './request.js';
import { RequestStream } from './request-stream.js';
import { Scheduler } from './scheduler.js';
import { defaultGenerationParams } from './engine-config.js';
import { parseSpeculativeConfig, type SpeculativeConfig } from '../spec-decode/config.js';
import { createProposer, type ProposerContext } from '../spec-decode/create-proposer.js';
import type { ProposeRequest, Proposer } from '../spec-decode/proposer.js';
import { rejectGreedy, rejectRandom, targetProbs } from '../sampling/rejection-sampler.js';
import { onlyFiltersApply } from '../sampling/sampler.js';

export interface EngineOptions {
  /** Weight dtype on the GPU: 'auto' = f16 when the checkpoint is f16/bf16 and the adapter has shader-f16. */
  dtype?: 'auto' | 'float32' | 'float16';
  /**
   * vLLM's `quantization`: store the projection matrices in a llama.cpp block format, quantized on load (norms and
   * biases stay f32; embeddings and the LM head stay in `dtype`); null / undefined: the checkpoint's dtype.
   * 'q8_0', 'q4_0', 'q6_k', 'q5_k', 'q4_k', 'q3_k', 'q2_k' (8.5 .. 2.625 bits a weight; src/layers/quant/formats),
   * 'iq4_nl' / 'iq4_xs' (4.5 / 4.25 bits: a non-linear 4-bit table), or the
   * mixes 'q4_k_m' / 'q5_k_m' (the MLP's down projection in q6_k, as llama.cpp's files of those names).
   */
  quantization?: string | null;
  /** KV cache dtype: 'auto' follows the weights. */
  kvCacheDtype?: 'auto' | 'float32' | 'float16';
  /** Longest prompt + output (default: the model's max_position_embeddings, at most 8192). */
  maxModelLen?: number;
  /** Sequences per step (default 64). */
  maxNumSeqs?: number;
  /**
   * Tokens per step (default 2048, capped so every activation fits one storage binding; on the CPU 512, halved until
   * the step's activations fit kvCacheMemoryBytes: cpuRunnerLimits).
   */
  maxNumBatchedTokens?: number;
  /** Tokens per KV block (default 16). */
  blockSize?: number;
  /** Bytes for the KV cache (default 256 MiB; on the CPU 64 MiB, which also bounds the step's activations). */
  kvCacheMemoryBytes?: number;
  /** Exact number of KV blocks (overrides kvCacheMemoryBytes). */
  numGpuBlocksOverride?: number;
  /** Reuse KV blocks of shared prompt prefixes (default true, as vLLM V1). */
  enablePrefixCaching?: boolean;
  /**
   * 'auto' applies the model's generation_config.json defaults; 'vllm' ignores them; a parsed GenerationConfig is
   * applied instead of the model's (LLMOptions.generationConfig: a folder).
   */
  generationConfig?: 'auto' | 'vllm' | GenerationConfig;
  /** 'dummy': random weights from config.json alone (benchmarks). */
  loadFormat?: 'auto' | 'dummy';
  /** 'fcfs' (default) or 'priority' (lower value first). */
  schedulingPolicy?: 'fcfs' | 'priority';
  /** Seed for requests without their own seed (vLLM's LLM(seed=...)). */
  seed?: number;
  /**
   * vLLM's reasoning config (`--reasoning-config`): the strings delimiting the reasoning section, which
   * `thinkingTokenBudget` counts in, e.g. `{ reasoningStartStr: '<think>', reasoningEndStr: '</think>' }`. The server's
   * reasoning parser sets it when it is not given (as `--reasoning-parser` does in vLLM).
   */
  reasoningConfig?: ReasoningConfig | null;
  /**
   * vLLM's --stream-interval: streamed outputs batch this many new tokens (default 1: every token); the first and
   * last outputs go at once. A request's streamInterval may raise it.
   */
  streamInterval?: number;
  /** Weight upload progress, in bytes of checkpoint data (`phase: 'upload'`). */
  onProgress?: (progress: DownloadProgress) => void;
  /** Where the engine's notices go (one line each); default: console.warn, so stdout stays the caller's. */
  log?: (message: string) => void;
  /**
   * vLLM's async_scheduling: while a step runs on the GPU, the next one is scheduled, recorded and submitted, its
   * decode tokens taken on the GPU from this step's argmax, so the CPU's part of a step overlaps the GPU's. Steps
   * whose rows all sample greedily without logprobs run ahead; others wait for their tokens as without it. Same
   * outputs; a request that ends on EOS computes one token more, dropped. Default true, as in vLLM (H200, Llama-3.2-1B
   * shapes: 1 stream 382 -> 599 tok/s, 64 streams 9,747 -> 11,028); false steps one at a time.
   */
  asyncScheduling?: boolean;
  /**
   * vLLM's max_logprobs: the most logprobs (per sampled token) and prompt logprobs (per prompt token) a request may
   * ask for; -1 for a request means the whole vocabulary, allowed only when this cap covers it. Default 20, as
   * vLLM; -1 here lifts the cap to the vocabulary (each such request then costs O(vocab) host memory a token).
   */
  maxLogprobs?: number;
  /**
   * Build every kernel steps use while loading (ModelRunner.warmup: steps of representative sizes recorded, not
   * run) and clear the KV cache and activations, so that no request waits on shader compilation or first-use
   * zeroing later. Default true; false loads faster and pays both on first use.
   */
  warmup?: boolean;
  /**
   * vLLM's enforce_eager: record every step's forward anew instead of replaying the commands captured the first
   * time a step of its shape (token count, longest block table) ran. Default false.
   */
  enforceEager?: boolean;
  /**
   * vLLM's speculative_config (snake_case keys accepted too): `{ method: 'ngram', numSpeculativeTokens,
   * promptLookupMin?, promptLookupMax? }` (prompt lookup) or `{ method: 'draft_model', model, numSpeculativeTokens,
   * draftSampleMethod? }` (a smaller model with the same vocabulary, on the same backend). Each decode step also
   * verifies up to numSpeculativeTokens draft tokens in the same forward; outputs are as without it (greedy: token
   * for token; random: the same distribution). Off by default. Turns async scheduling off. See src/spec-decode/.
   */
  speculativeConfig?: SpeculativeConfigInit | null;
  /**
   * A draft proposer of your own in place of the one speculativeConfig makes (which still turns speculation on and
   * bounds the drafts: numSpeculativeTokens), e.g. an oracle in a benchmark. See src/spec-decode/proposer.ts.
   */
  proposer?: Proposer;
}

/** What LLM.create and `--speculative-config` take (checked by parseSpeculativeConfig). */
export type SpeculativeConfigInit =
  | { method: 'ngram'; numSpeculativeTokens: number; promptLookupMin?: number; promptLookupMax?: number }
  | { method?: 'draft_model'; model: string; numSpeculativeTokens: number; draftSampleMethod?: 'greedy' | 'probabilistic'; revision?: string; quantization?: string }
  | Record<string, unknown>;

/** A submitted step: its plan, the runner's inputs and the pending result. */
interface InFlight {
  plan: ReturnType<Scheduler['schedule']>;
  seqs: ScheduledSeq[];
  forks: Map<string, string[]>;
  running: Promise<StepResult>;
  /** Resolves once this step's tokens are in the grammars (a step run ahead of it makes its bitmasks after that). */
  accepted: Promise<void>;
  tokensAccepted: () => void;
}

/** A prompt: text, or token ids. */
export type PromptInput = string | { prompt: string } | { promptTokenIds: number[]; prompt?: string };

export interface AddRequestInit {
  prompt: PromptInput;
  params?: SamplingParams;
  requestId?: string;
  /** Lower runs first, with schedulingPolicy 'priority' (anything but 0 is an error under 'fcfs', as in vLLM). */
  priority?: number;
  signal?: AbortSignal;
  /** With truncatePromptTokens: 'left' (default) keeps the prompt's last tokens, 'right' its first. */
  truncationSide?: 'left' | 'right';
}

/** A validated, tokenized request not yet in the engine. */
export interface PreparedRequest {
  requestId: string;
  prompt: string | null;
  promptTokenIds: number[];
  params: SamplingParams;
  priority: number;
}

/** Engine-side state of one sequence (one engine-core request). */
interface SeqInfo {
  /** The user request it belongs to. */
  group: string;
  promptTokenIds: readonly number[];
  /** Outputs so far; the same array the sampler request reads (penalties, minTokens, logits processors). */
  outputTokenIds: number[];
  /** performance.now() of the last token (inter-token latency). */
  lastTokenAt: number;
  /** What the sampler needs besides the logits (the params may differ from the user's: see submit). */
  sample: SamplerRequest;
  /** Structured outputs: this sequence's grammar state (its bitmask goes into sample.tokenBitmask each step). */
  grammar: SequenceGrammar | null;
  /** Speculative decoding: the distributions its pending drafts were drawn from (absent: point masses). */
  draftProbs?: Float64Array[];
  /** thinkingTokenBudget: its think-section state (its forced token goes into sample.forcedTokenId each step). */
  thinking: ThinkingBudget | null;
}

/** Engine-side state of one user request: its sequences and the forks still to make. */
interface GroupInfo {
  seqIds: string[];
  /** Sequences not yet started: forked from the first one once its prompt is computed. */
  pendingForks: string[];
  stream: RequestStream;
  /** Engine-core stop parameters shared by every sequence. */
  stopInit: { maxTokens: number; minTokens: number; ignoreEos: boolean; stopTokenIds: number[]; repetitionDetection: RepetitionDetection | null };
  priority: number;
  /** performance.now() at submit, and of the first token (metrics). */
  arrival: number;
  firstTokenAt: number | null;
  promptTokens: number;
  /** Tokens generated so far, over all its sequences. */
  generated: number;
  /** Its timestamps (RequestOutput.metrics, and the phase histograms when it ends). */
  stats: RequestStateStats;
  /** Its `n` and `maxTokens` (request_params_* histograms). */
  n: number;
  maxTokensParam: number | null;
  /** The most tokens one of its sequences generated (request_max_num_generation_tokens). */
  maxSeqTokens: number;
}

/** A model found and read, ready to load: its config and checkpoint, tokenizer and generation_config.json. */
export interface EngineModel extends ModelHandle {
  readonly tokenizer: Tokenizer;
  /** The model's generation_config.json, or null when it has none. */
  readonly generationConfig: GenerationConfig | null;
}

export class LLMEngine {
  private readonly scheduler: Scheduler;
  private readonly outputs: OutputProcessor;
  private readonly seqs = new Map<string, SeqInfo>();
  private readonly groups = new Map<string, GroupInfo>();
  private readonly pendingAborts = new Set<string>();
  /**
   * The last step's outputs, not yet detokenized or streamed: they are processed while the GPU runs the next step
   * (as vLLM's front end detokenizes while its engine core runs on), or when the loop runs out of work.
   */
  private deferred: CoreOutput[] | null = null;
  /** Async scheduling: the step submitted ahead of the one being finished. */
  private ahead: InFlight | null = null;
  /** Token counters and latency histograms (vLLM's metrics). */
  readonly metrics: EngineMetrics;
  private loop: Promise<void> | null = null;
  /** Grammars for structured outputs, made on the first request that asks for one. */
  private structured: StructuredOutputManager | null = null;
  /** Speculative decoding (EngineOptions.speculativeConfig); null: off. */
  readonly speculativeConfig: SpeculativeConfig | null;
  /** The reasoning section's token ids (reasoningConfig), for thinkingTokenBudget; null: not configured. */
  private reasoningIds: ReasoningTokenIds | null = null;
  private nextId = 0;
  private seedCounter = 0;
  private disposed = false;

  private constructor(
    readonly config: ModelConfig,
    readonly generationConfig: GenerationConfig | null,
    readonly tokenizer: Tokenizer,
    /** The backend that runs steps (WebGPU: GpuModelRunner). */
    readonly runner: Executor,
    private readonly options: EngineOptions,
    /** EOS ids: config.json's and generation_config.json's together. */
    readonly eosTokenIds: number[],
    /**
     * The tokenizer's EOS id (vLLM's primary eos_token_id): it ends a sequence with stop_reason null. The other EOS
     * ids (generation_config.json's eos_token_id list) are stop tokens, as vLLM's update_from_generation_config
     * makes them: a sequence they end reports the id as its stop_reason.
     */
    readonly primaryEosTokenId: number | null,
    /** Speculative decoding's drafter (src/spec-decode/proposer.ts); null: off. */
    private readonly proposer: Proposer | null,
  ) {
    const l = runner.limits;
    this.metrics = new EngineMetrics(l.maxModelLen);
    this.speculativeConfig = parseSpeculativeConfig(options.speculativeConfig);
    this.scheduler = new Scheduler(
      {
        maxNumSeqs: l.maxNumSeqs,
        maxNumBatchedTokens: l.maxNumBatchedTokens,
        maxModelLen: l.maxModelLen,
        policy: options.schedulingPolicy ?? 'fcfs',
        numSpeculativeTokens: this.speculativeConfig?.numSpeculativeTokens ?? 0,
      },
      { numBlocks: l.numBlocks, blockSize: l.blockSize, enablePrefixCaching: options.enablePrefixCaching ?? true },
    );
    const interval = options.streamInterval ?? 1;
    if (!Number.isSafeInteger(interval) || interval < 1) throw new InvalidArgumentError('streamInterval', `streamInterval must be an integer >= 1, got ${interval}`);
    this.outputs = new OutputProcessor(tokenizer, interval);
    if (options.reasoningConfig) this.configureReasoning(options.reasoningConfig);
  }

  /**
   * Sets the reasoning section's delimiters (vLLM's ReasoningConfig) unless the engine was made with its own: the
   * server calls it with its reasoning parser's strings, as vLLM's `--reasoning-parser` fills the config.
   */
  configureReasoning(config: ReasoningConfig): void {
    if (this.reasoningIds && this.options.reasoningConfig) return;
    this.reasoningIds = reasoningTokenIds(config, (t) => this.tokenizer.encode(t, { addSpecialTokens: false }));
  }

  /**
   * Loads the model (its config, tokenizer and generation_config found: resolve-model.ts) through `loadExecutor`:
   * the backend, which loads the weights and sizes the KV cache. `openModel` finds a speculative draft model by
   * name (LLM.create passes resolve-model's).
   */
  static async create(model: EngineModel, loadExecutor: ExecutorLoader, options: EngineOptions = {}, openModel?: ProposerContext['openModel']): Promise<LLMEngine> {
    const { config, tokenizer, generationConfig } = model;
    const given = options.generationConfig;
    const spec = parseSpeculativeConfig(options.speculativeConfig); // a bad config fails before the weights load
    if (options.proposer && !spec) throw new InvalidArgumentError('proposer', 'proposer needs speculativeConfig (it sets numSpeculativeTokens)');
    const runner = await loadExecutor(model, options);
    let proposer: Proposer | null = null;
    try {
      proposer = spec && (options.proposer ?? (await createProposer(spec, { target: model, limits: runner.limits, loadExecutor, options, openModel })));
    } catch (err) {
      runner.dispose();
      throw err;
    }
    const override = typeof given === 'object' ? given : null;
    const eos = [...new Set([...config.eosTokenIds, ...(generationConfig?.eosTokenIds ?? []), ...(override?.eosTokenIds ?? [])])];
    if (eos.length === 0 && tokenizer.eosTokenId !== null) eos.push(tokenizer.eosTokenId);
    const applied = given === 'vllm' ? null : (override ?? generationConfig);
    const defaults = applied ? defaultGenerationParams(applied) : {};
    if (Object.keys(defaults).length > 0) {
      // vLLM logs this too: users were surprised by sampling defaults they never set.
      const from = override ? 'the given generation config' : "the model's generation_config.json";
      (options.log ?? console.warn)(
        `webgpu-llm: default sampling parameters from ${from}: ${JSON.stringify(defaults)} (generationConfig: 'vllm' ignores them; fields you set always win)`,
      );
    }
    // vLLM's primary EOS is the tokenizer's; kept only when the model's EOS list has it (a tokenizer whose EOS the
    // config disagrees with, as tiny-random-gpt2's, does not end sequences on a token the model never ends on).
    const primary = tokenizer.eosTokenId !== null && eos.includes(tokenizer.eosTokenId) ? tokenizer.eosTokenId : null;
    return new LLMEngine(config, applied, tokenizer, runner, options, eos, primary, proposer);
  }

  /** vLLM's defaults with the model's generation_config.json applied (unless generationConfig: 'vllm'). */
  defaultSamplingParams(): SamplingParams {
    return new SamplingParams(this.generationConfig ? defaultGenerationParams(this.generationConfig) : {});
  }

  /** Fills the fields a user did not set from generation_config.json (fields a user sets always win). */
  withModelDefaults(params: SamplingParams): SamplingParams {
    if (!this.generationConfig) return params;
    const defaults = Object.entries(defaultGenerationParams(this.generationConfig)).filter(([k]) => !params.setFields.has(k as keyof SamplingParamsInit));
    return defaults.length === 0 ? params : params.clone(Object.fromEntries(defaults));
  }

  /** The most logprobs a request may ask for (EngineOptions.maxLogprobs; -1 there: the vocabulary size). */
  get maxLogprobs(): number {
    const cap = this.options.maxLogprobs ?? 20;
    return cap === -1 ? this.config.vocabSize : cap;
  }

  /** vLLM's check: a count (-1 = the vocabulary) past maxLogprobs is refused before any work is done for it. */
  private verifyLogprobs(params: SamplingParams): void {
    const cap = this.maxLogprobs;
    for (const field of ['logprobs', 'promptLogprobs'] as const) {
      const asked = params[field];
      // Explicit ids are bounded by MAX_LOGPROB_TOKEN_IDS instead (vLLM's _validate_logprobs).
      if (asked === null || (field === 'logprobs' && params.logprobTokenIds?.length)) continue;
      const n = asked === -1 ? this.config.vocabSize : asked;
      if (n > cap) {
        const what = asked === -1 ? `-1 (the whole vocabulary, ${n})` : String(n);
        throw new InvalidArgumentError(field, `${field} must be at most ${cap} (maxLogprobs / --max-logprobs), got ${what}.`);
      }
    }
  }

  /** Tokenizes and validates a request; throws InvalidArgumentError / CapacityError without touching the engine. */
  prepareRequest(init: AddRequestInit): PreparedRequest {
    if (init.params !== undefined && !(init.params instanceof SamplingParams)) throw new InvalidArgumentError('params', 'must be a SamplingParams');
    const params = this.withModelDefaults(init.params ?? new SamplingParams());
    params.verifyForVocab(this.config.vocabSize);
    this.verifyLogprobs(params);
    if (params.thinkingTokenBudget !== null && !this.reasoningIds) {
      // vLLM's input processor check (its message, our option names).
      throw new InvalidArgumentError(
        'thinkingTokenBudget',
        'thinkingTokenBudget is set but reasoning_config is not configured. Create the LLM with reasoningConfig, or serve with --reasoning-parser and/or --reasoning-config, to use thinkingTokenBudget.',
      );
    }
    // vLLM's update_from_tokenizer: a bad word that tokenizes to nothing (only spaces) could never be banned.
    for (const w of params.badWords ?? []) {
      if (this.tokenizer.encode(w.trimStart(), { addSpecialTokens: false }).length === 0) {
        throw new InvalidArgumentError('badWords', `badWords entries must tokenize to at least one token, got ${JSON.stringify(w)}.`);
      }
    }
    const p = init.prompt;
    let prompt: string | null;
    let ids: number[];
    if (typeof p === 'string' || (typeof p === 'object' && p !== null && 'prompt' in p && !('promptTokenIds' in p))) {
      prompt = typeof p === 'string' ? p : (p as { prompt: string }).prompt;
      if (typeof prompt !== 'string') throw new InvalidArgumentError('prompt', 'must be a string or { promptTokenIds }');
      ids = this.tokenizer.encode(prompt);
    } else if (typeof p === 'object' && p !== null && Array.isArray((p as { promptTokenIds: number[] }).promptTokenIds)) {
      ids = (p as { promptTokenIds: number[] }).promptTokenIds.slice();
      prompt = (p as { prompt?: string }).prompt ?? null;
      const bad = ids.find((t) => !Number.isInteger(t) || t < 0 || t >= this.config.vocabSize);
      if (bad !== undefined) throw new InvalidArgumentError('promptTokenIds', `promptTokenIds contains ${bad}, out of vocabulary [0, ${this.config.vocabSize}).`);
    } else {
      throw new InvalidArgumentError('prompt', 'must be a string or { promptTokenIds }');
    }
    if (params.truncatePromptTokens !== null && params.truncatePromptTokens > 0 && ids.length > params.truncatePromptTokens) {
      // vLLM's truncation_side: 'left' (default) keeps the last tokens, 'right' the first.
      ids = init.truncationSide === 'right' ? ids.slice(0, params.truncatePromptTokens) : ids.slice(ids.length - params.truncatePromptTokens);
    }
    if (ids.length === 0) throw new InvalidArgumentError('prompt', 'the prompt is empty: it must have at least one token');
    const maxLen = this.runner.limits.maxModelLen;
    if (ids.length >= maxLen) {
      throw new InvalidArgumentError('prompt', `the prompt has ${ids.length} tokens; the maximum model length is ${maxLen} (prompt and output together)`);
    }
    const capacity = this.runner.limits.numBlocks * this.runner.limits.blockSize;
    if (ids.length + 1 > capacity) {
      throw new CapacityError(`the prompt has ${ids.length} tokens but the KV cache holds only ${capacity} tokens (${this.runner.limits.numBlocks} blocks of ${this.runner.limits.blockSize}); raise kvCacheMemoryBytes`);
    }
    const priority = init.priority ?? 0;
    if (!Number.isSafeInteger(priority)) throw new InvalidArgumentError('priority', `priority must be an integer, got ${priority}.`);
    // vLLM: a priority means nothing to first-come-first-served scheduling, so asking for one is an error.
    if (priority !== 0 && (this.options.schedulingPolicy ?? 'fcfs') !== 'priority') {
      throw new InvalidArgumentError('priority', `Got priority ${priority} but Priority scheduling is not enabled (schedulingPolicy: 'priority', --scheduling-policy priority).`);
    }
    const requestId = init.requestId ?? String(this.nextId++);
    if (this.groups.has(requestId)) throw new InvalidArgumentError('requestId', `request id '${requestId}' is already running`);
    return { requestId, prompt, promptTokenIds: ids, params, priority };
  }

  /** Adds a request; the stream yields its outputs as they are produced. */
  addRequest(init: AddRequestInit): RequestStream {
    const stream = this.submit(this.prepareRequest(init));
    const signal = init.signal;
    if (signal) {
      if (signal.aborted) this.abort(stream.requestId);
      else signal.addEventListener('abort', () => this.abort(stream.requestId), { once: true });
    }
    return stream;
  }

  /**
   * Enqueues a prepared request. With n > 1 (or bestOf), its first sequence computes the prompt; the others are
   * forked from it when its first token is sampled (sharing the prompt's KV blocks, copy-on-write), each drawing
   * its first token from the same logits row with its own generator.
   */
  submit(r: PreparedRequest): RequestStream {
    if (this.disposed) throw new Error('the engine is disposed');
    const { params } = r;
    const maxLen = this.runner.limits.maxModelLen;
    const maxTokens = Math.min(params.maxTokens ?? Infinity, maxLen - r.promptTokenIds.length);
    // EOS ids other than the tokenizer's are stop tokens (unless ignoreEos), reported as the stop_reason.
    const eosStops = params.ignoreEos ? [] : this.eosTokenIds.filter((t) => t !== this.primaryEosTokenId);
    const stopInit = {
      maxTokens,
      minTokens: Math.min(params.minTokens, maxTokens),
      ignoreEos: params.ignoreEos,
      stopTokenIds: [...new Set([...eosStops, ...params.stopTokenIds])],
      repetitionDetection: params.repetitionDetection,
    };
    const numSeqs = params.numSequences;
    const seqIds = Array.from({ length: numSeqs }, (_, i) => (i === 0 ? r.requestId : `${i}_${r.requestId}`));
    // best_of > n ranks candidates by cumulative logprob, so the sampler must compute it.
    const sampleParams = numSeqs > params.n && params.logprobs === null ? params.clone({ logprobs: 0 }) : params;
    const seed = params.seed ?? (this.options.seed !== undefined ? this.options.seed + this.seedCounter++ : null);
    const stopTokenIds = [...(params.ignoreEos ? [] : this.eosTokenIds), ...params.stopTokenIds];
    const badWords = badWordsTokenIds(params.badWords ?? [], (t) => this.tokenizer.encode(t, { addSpecialTokens: false }));
    seqIds.forEach((id, i) => {
      // Sequence i of a seeded request draws from seed + i, so each is reproducible on its own.
      const generator = seed === null ? Generator.random() : new Generator(seed + i);
      const outputTokenIds: number[] = [];
      this.seqs.set(id, {
        group: r.requestId,
        promptTokenIds: r.promptTokenIds,
        outputTokenIds,
        lastTokenAt: 0,
        sample: { params: sampleParams, generator, promptTokenIds: r.promptTokenIds, outputTokenIds, stopTokenIds, badWordsTokenIds: badWords },
        grammar: null,
        thinking: params.thinkingTokenBudget !== null && this.reasoningIds ? new ThinkingBudget(this.reasoningIds, params.thinkingTokenBudget, r.promptTokenIds) : null,
      });
    });
    const stream = new RequestStream(r.requestId);
    const stats = newRequestStateStats();
    this.groups.set(r.requestId, {
      seqIds,
      pendingForks: seqIds.slice(1),
      stream,
      stopInit,
      priority: r.priority,
      arrival: performance.now(),
      firstTokenAt: null,
      promptTokens: r.promptTokenIds.length,
      generated: 0,
      stats,
      n: params.n,
      maxTokensParam: params.maxTokens,
      maxSeqTokens: 0,
    });
    this.outputs.addRequest(r.requestId, r.prompt, r.promptTokenIds, params, stream, seqIds, stats);
    const spec = params.structuredSpec;
    if (spec) {
      // vLLM's WAITING_FOR_FSM: the request joins the scheduler once its grammar is compiled; steps go on meanwhile.
      Promise.all(seqIds.map(() => this.structuredOutputs.grammar(spec))).then(
        (grammars) => {
          const g = this.groups.get(r.requestId);
          if (!g || g.stream !== stream || this.pendingAborts.has(r.requestId)) return grammars.forEach((m) => m.dispose());
          seqIds.forEach((id, i) => (this.seqs.get(id)!.grammar = grammars[i]));
          try {
            this.enqueue(r);
          } catch (err) {
            this.outputs.finish(r.requestId, 'abort', err);
          }
        },
        (err) => {
          if (this.groups.get(r.requestId)?.stream !== stream) return;
          this.outputs.finish(r.requestId, 'abort', err);
          this.release(r.requestId, 'abort');
        },
      );
      return stream;
    }
    this.enqueue(r);
    return stream;
  }

  /** Hands a submitted request to the scheduler. */
  private enqueue(r: PreparedRequest): void {
    try {
      this.scheduler.addRequest(this.coreRequest(r.requestId, r.promptTokenIds));
    } catch (err) {
      this.release(r.requestId);
      throw err;
    }
    this.kick();
  }

  /** The structured-outputs manager (xgrammar over this model's vocabulary), made on first use. */
  get structuredOutputs(): StructuredOutputManager {
    this.structured ??= new StructuredOutputManager(this.tokenizer, this.config.vocabSize, this.eosTokenIds);
    return this.structured;
  }

  /**
   * Compiles (or finds cached) the grammar of `params.structuredOutputs`, throwing InvalidArgumentError when the
   * grammar engine refuses it: a server awaits this to answer 400 before it streams. Submit compiles on its own.
   */
  async compileStructuredOutputs(params: SamplingParams): Promise<void> {
    const spec = params.structuredSpec;
    if (spec) await this.structuredOutputs.compile(spec);
  }

  private coreRequest(seqId: string, promptTokenIds: readonly number[]): Request {
    const g = this.groups.get(this.seqs.get(seqId)!.group)!;
    const eos = this.primaryEosTokenId === null ? [] : [this.primaryEosTokenId];
    return new Request({ requestId: seqId, promptTokenIds, samplingParams: g.stopInit, eosTokenIds: eos, priority: g.priority });
  }

  /** Stops a request (all its sequences) at the next step boundary and frees its KV blocks. */
  abort(requestId: string): void {
    if (!this.groups.has(requestId)) return;
    this.pendingAborts.add(requestId);
    this.kick();
  }

  private kick(): void {
    if (this.loop) return;
    this.loop = this.run().finally(() => {
      this.loop = null;
      if (this.pendingAborts.size > 0 || this.scheduler.hasUnfinishedRequests()) this.kick();
    });
  }

  private async run(): Promise<void> {
    // Requests submitted in the same tick (a generate() batch) join the first step together.
    await Promise.resolve();
    for (;;) {
      this.applyAborts();
      if (!this.scheduler.hasUnfinishedRequests() && !this.ahead) {
        // The last step's outputs still go to their streams (processing them only ends requests).
        this.processOutputs();
        return;
      }
      try {
        await this.step();
      } catch (err) {
        const ahead = this.ahead;
        this.ahead = null;
        await ahead?.running.catch(() => {});
        this.processOutputs();
        this.failAll(err);
        return;
      }
      // Let callers add or abort requests between steps.
      await yieldToEventLoop();
    }
  }

  private applyAborts(): void {
    if (this.pendingAborts.size === 0) return;
    // Tokens computed before the abort still reach their streams.
    this.processOutputs();
    const ids = [...this.pendingAborts];
    this.pendingAborts.clear();
    for (const id of ids) {
      const g = this.groups.get(id);
      if (!g) continue;
      this.scheduler.finishRequests(g.seqIds, RequestStatus.FINISHED_ABORTED);
      this.outputs.finish(id, 'abort');
      this.release(id, 'abort');
    }
  }

  /**
   * One engine step: schedule, execute, update from output. With async scheduling the step may have been submitted
   * by the previous call, and the next one is submitted before this one's results are awaited.
   */
  private async step(): Promise<void> {
    const cur = this.ahead ?? this.launch(null);
    this.ahead = null;
    if (!cur) {
      this.processOutputs();
      return;
    }
    if (this.options.asyncScheduling !== false && this.runner.overlapsCaller && this.canRunAhead(cur)) {
      this.scheduler.markPlaceholders(cur.plan);
      this.ahead = this.launch(cur);
      this.ahead?.running.catch(() => {}); // awaited by the next step (or the loop's error path)
    }
    // The previous step's outputs are processed while the GPU runs: a stop string found there finishes its request
    // now (safe between schedule and updateFromOutput); the tokens computed for it since are dropped.
    this.processOutputs();
    let outputs;
    try {
      outputs = this.finish(cur, await cur.running);
    } finally {
      cur.tokensAccepted();
    }
    if (this.proposer) await this.proposeDrafts(outputs);
    // A runner that computes in this thread has nothing running now: the tokens go out before the next step runs.
    if (!this.runner.overlapsCaller) this.processOutputs();
  }

  /**
   * Whether the step after `cur` can be planned before cur's tokens are known: every row cur samples is the GPU's
   * argmax (greedy, no logprobs; still so one token later), with no forks or prompt logprobs.
   */
  private canRunAhead(cur: InFlight): boolean {
    // Speculative decoding: the next step's drafts come from this step's tokens (vLLM V1 too ran them apart).
    if (this.proposer) return false;
    // Grammar bitmasks applied before the device's argmax leave a greedy constrained row 'argmax' too.
    const maskedOnGpu = cur.seqs.filter((s) => s.sample).length <= (this.runner.deviceMaskRows ?? 0);
    return cur.seqs.every(
      (s) => !s.allLogits && !s.extraSamples && (!s.sample || rowSampling(s.sample, { candidates: false, maskedOnGpu }) === 'argmax') && !this.budgeted(s.requestId),
    );
  }

  /** Whether a sequence's thinking budget still acts (its next tokens may be forced: no step ahead, no drafts). */
  private budgeted(seqId: string): boolean {
    const t = this.seqs.get(seqId)?.thinking;
    return !!t && !t.finished;
  }

  /**
   * Schedules a step and submits it to the runner (null: nothing to run); `after`: the step in flight it runs ahead
   * of, whose tokens its grammars must take before they give this step's bitmasks.
   */
  private launch(after: InFlight | null): InFlight | null {
    const plan = this.scheduler.schedule();
    if (plan.totalNumScheduledTokens === 0) return null;
    const forks = new Map<string, string[]>(); // first sequence -> the sequences forked from it this step
    const now = performance.now() / 1000;
    const seqs: ScheduledSeq[] = plan.scheduledRequests.map((s) => {
      const info = this.seqs.get(s.requestId)!;
      const g = this.groups.get(info.group)!;
      const promptLen = info.promptTokenIds.length;
      g.stats.scheduledTs ??= now;
      let extraSamples: ScheduledSeq['extraSamples'];
      if (s.needsSample && g.pendingForks.length > 0 && s.requestId === g.seqIds[0]) {
        forks.set(s.requestId, g.pendingForks.splice(0));
        extraSamples = forks.get(s.requestId)!.map((id) => ({ requestId: id, sample: this.seqs.get(id)!.sample }));
      }
      // thinkingTokenBudget: the end of thinking this step must give, if any (forks share the first's state).
      info.sample.forcedTokenId = info.thinking?.forcedTokenId() ?? null;
      extraSamples?.forEach((e) => (e.sample.forcedTokenId = this.seqs.get(e.requestId)?.thinking?.forcedTokenId() ?? null));
      const k = s.specTokenIds?.length ?? 0;
      // Greedy rows verify on the argmaxes; random ones on whole rows, drawn by the rejection sampler.
      const verify = k > 0 ? { numSpecTokens: k, rows: rowSampling(info.sample, { candidates: false }) === 'argmax' ? ('argmax' as const) : ('logits' as const) } : undefined;
      return {
        requestId: s.requestId,
        tokenIds: s.tokenIds,
        startPos: s.startPosition,
        blockTable: s.blockTable,
        sample: s.needsSample && verify?.rows !== 'logits' ? info.sample : null,
        verify,
        extraSamples,
        allLogits: info.sample.params.promptLogprobs !== null && s.requestId === g.seqIds[0] && s.startPosition < promptLen,
      };
    });
    // execute() submits the forward before it first waits; the constrained rows' bitmasks are made meanwhile.
    let tokensAccepted!: () => void;
    const accepted = new Promise<void>((r) => (tokensAccepted = r));
    const running = this.runner.execute(seqs, plan.blockCopies, this.grammarMasks(seqs, after));
    return { plan, seqs, forks, running, accepted, tokensAccepted };
  }

  /**
   * The step's beforeSampling: sets the bitmask of each sampled row whose sequence has a grammar, once the grammars
   * have taken the tokens of `after` (the step this one runs ahead of); undefined when no row has a grammar.
   */
  private grammarMasks(seqs: ScheduledSeq[], after: InFlight | null): (() => Promise<void>) | undefined {
    const rows: [id: string, sample: SamplerRequest][] = [];
    for (const s of seqs) {
      if (s.sample) rows.push([s.requestId, s.sample]);
      s.extraSamples?.forEach((e) => rows.push([e.requestId, e.sample]));
    }
    const constrained = rows.filter(([id]) => this.seqs.get(id)?.grammar);
    if (constrained.length === 0) return undefined;
    return async () => {
      if (after) await after.accepted;
      await Promise.all(
        constrained.map(async ([id, sample]) => {
          // A request finished meanwhile: its grammar is gone and its token will be dropped.
          const grammar = this.seqs.get(id)?.grammar;
          sample.tokenBitmask = grammar ? await grammar.bitmask() : null;
        }),
      );
    };
  }

  /** Updates the requests from a step's results (returned); the outputs are processed during the next step. */
  private finish({ plan, seqs, forks }: InFlight, result: StepResult): readonly { requestId: string; finishReason: unknown }[] {
    for (const s of seqs) {
      const rows = result.allLogits.get(s.requestId);
      const info = this.seqs.get(s.requestId);
      if (!rows || !info || s.verify) continue;
      const prompt = info.promptTokenIds;
      const entries = rows.map((row, j) => topLogprobs(row, prompt[Math.min(s.startPos + j + 1, prompt.length - 1)], info.sample.params.promptLogprobs!));
      this.outputs.addPromptLogprobs(s.requestId, s.startPos, entries);
    }
    // Forks join before the first sequence's update, while it still holds its blocks.
    for (const [first, children] of forks) {
      const prompt = this.seqs.get(first)?.promptTokenIds;
      if (prompt) for (const id of children) this.scheduler.forkRequest(first, this.coreRequest(id, prompt));
    }
    const sampled = new Map<string, number[]>();
    for (const s of plan.scheduledRequests) {
      const r = result.sampled.get(s.requestId);
      if (r) sampled.set(s.requestId, [r.tokenId]);
    }
    for (const s of seqs) if (s.verify) sampled.set(s.requestId, this.verifyDrafts(s, result));
    const update = this.scheduler.updateFromOutput(plan, sampled);
    this.metrics.iterationTokens.observe(plan.totalNumScheduledTokens);
    const coreOutputs = [...update.outputs];
    for (const children of forks.values()) {
      for (const id of children) {
        const o = this.scheduler.appendTokens(id, [result.sampled.get(id)!.tokenId]);
        if (o) coreOutputs.push(o);
      }
    }
    const now = performance.now();
    const core: CoreOutput[] = coreOutputs.map((o) => {
      const info = this.seqs.get(o.requestId);
      if (info) {
        info.outputTokenIds.push(...o.newTokenIds);
        info.thinking?.accept(o.newTokenIds);
        if (info.grammar && !info.grammar.accept(o.newTokenIds)) {
          (this.options.log ?? console.warn)(`webgpu-llm: request ${o.requestId}: a sampled token was refused by its grammar`);
        }
        this.recordTokens(info, o.newTokenIds.length, now);
      }
      const lp = result.sampled.get(o.requestId)?.logprobs;
      return { ...o, newLogprobs: lp ? [lp] : null };
    });
    this.deferred = core;
    return coreOutputs;
  }

  /** The tokens a speculative step gives a request: the rejection sampler over the target's verdicts. */
  private verifyDrafts(s: ScheduledSeq, result: StepResult): number[] {
    const drafts = s.tokenIds.slice(s.tokenIds.length - s.verify!.numSpecTokens);
    const info = this.seqs.get(s.requestId)!;
    if (s.verify!.rows === 'argmax') {
      const targets = [...(result.specArgmax?.get(s.requestId) ?? []), result.sampled.get(s.requestId)!.tokenId];
      return rejectGreedy(drafts, targets);
    }
    const rows = result.allLogits.get(s.requestId)!;
    const p = info.sample.params;
    return rejectRandom(drafts, rows.map((row) => targetProbs(row, p)), info.sample.generator, info.draftProbs);
  }

  /**
   * Proposes the next step's drafts for the sequences that got tokens and still run. Excluded from speculation (they
   * decode one token a step, as without it): structured outputs, logprobs (best_of and beam search ask for them),
   * penalties, logit bias, allowed / bad words, logits processors, and a sequence short of its minTokens.
   */
  private async proposeDrafts(outputs: readonly { requestId: string; finishReason: unknown }[]): Promise<void> {
    const k = this.speculativeConfig!.numSpeculativeTokens;
    const maxLen = this.runner.limits.maxModelLen;
    const requests: ProposeRequest[] = [];
    for (const o of outputs) {
      const info = this.seqs.get(o.requestId);
      if (o.finishReason !== null || !info || info.grammar || this.budgeted(o.requestId)) continue;
      info.draftProbs = undefined;
      const n = info.outputTokenIds.length;
      if (!onlyFiltersApply(info.sample.params, n) || info.sample.params.logprobs !== null) continue;
      // As the scheduler's cap: a draft at max_tokens or the model length could not be kept.
      const cap = this.groups.get(info.group)!.stopInit.maxTokens;
      const maxTokens = Math.min(k, Math.min(cap - n, maxLen - info.promptTokenIds.length - n) - 1);
      if (maxTokens <= 0) continue;
      requests.push({ requestId: o.requestId, promptTokenIds: info.promptTokenIds, outputTokenIds: info.outputTokenIds, maxTokens, sample: info.sample });
    }
    const drafts = await this.proposer!.propose(requests);
    const ids = new Map<string, number[]>();
    for (const [id, d] of drafts) {
      const info = this.seqs.get(id);
      if (!info || d.tokenIds.length === 0) continue;
      ids.set(id, d.tokenIds);
      info.draftProbs = d.probs;
    }
    this.scheduler.updateDraftTokenIds(ids);
  }

  /**
   * Detokenizes and streams the deferred outputs of the last step, stops the sequences a stop string ended, and
   * releases the requests that are done.
   */
  private processOutputs(): void {
    const core = this.deferred;
    if (!core) return;
    this.deferred = null;
    const stopped = this.outputs.process(core);
    if (stopped.length > 0) this.scheduler.finishRequests(stopped, RequestStatus.FINISHED_STOPPED);
    const stoppedSet = new Set(stopped);
    for (const o of core) {
      if (o.finishReason === null && !stoppedSet.has(o.requestId)) continue;
      const info = this.seqs.get(o.requestId);
      if (!info) continue;
      info.grammar?.dispose();
      this.seqs.delete(o.requestId);
      this.proposer?.release([o.requestId]);
      const g = this.groups.get(info.group)!;
      // The group ends when none of its sequences runs or is still to be forked.
      if (g.pendingForks.length === 0 && g.seqIds.every((id) => !this.seqs.has(id))) {
        this.release(info.group, stoppedSet.has(o.requestId) ? 'stop' : o.finishReason);
      }
    }
  }

  private recordTokens(info: SeqInfo, n: number, now: number): void {
    if (n === 0) return;
    const g = this.groups.get(info.group)!;
    const m = this.metrics;
    m.generationTokens += n;
    g.generated += n;
    g.stats.numGenerationTokens = g.generated;
    g.maxSeqTokens = Math.max(g.maxSeqTokens, info.outputTokenIds.length);
    g.stats.lastTokenTs = now / 1000;
    if (g.firstTokenAt === null) {
      g.firstTokenAt = now;
      g.stats.firstTokenTs = now / 1000;
      g.stats.firstTokenLatency = (now - g.arrival) / 1000;
      m.promptTokens += g.promptTokens;
      m.requestParamsN.observe(g.n);
      m.timeToFirstToken.observe((now - g.arrival) / 1000);
    } else if (info.lastTokenAt > 0) {
      for (let i = 0; i < n; i++) m.interTokenLatency.observe((now - info.lastTokenAt) / 1000 / n);
    }
    info.lastTokenAt = now;
  }

  private release(requestId: string, reason: 'stop' | 'length' | 'abort' | 'repetition' | null = null): void {
    const g = this.groups.get(requestId);
    if (!g) return;
    if (reason) {
      const m = this.metrics;
      m.requestsFinished[reason]++;
      m.e2eLatency.observe((performance.now() - g.arrival) / 1000);
      m.observeFinished(g.stats, g.maxTokensParam, g.maxSeqTokens);
      if (g.generated > 0) {
        m.requestPromptTokens.observe(g.promptTokens);
        m.requestGenerationTokens.observe(g.generated);
      }
    }
    for (const id of g.seqIds) {
      this.seqs.get(id)?.grammar?.dispose();
      this.seqs.delete(id);
    }
    this.proposer?.release(g.seqIds);
    this.groups.delete(requestId);
  }

  private failAll(err: unknown): void {
    for (const [id, g] of [...this.groups]) {
      this.scheduler.finishRequests(g.seqIds, RequestStatus.FINISHED_ABORTED);
      this.outputs.finish(id, 'abort', err);
      this.release(id, 'abort');
    }
  }

  /**
   * The KV cache's configuration as vLLM's CacheConfig.metrics_info() gives it (the labels of
   * vllm:cache_config_info): strings, as Prometheus labels are.
   */
  get cacheConfigInfo(): Record<string, string> {
    const l = this.runner.limits;
    return {
      block_size: String(l.blockSize),
      cache_dtype: l.kvDtype === 'f16' ? 'float16' : 'float32',
      enable_prefix_caching: this.options.enablePrefixCaching === false ? 'False' : 'True',
      num_gpu_blocks: String(l.numBlocks),
      num_gpu_blocks_override: this.options.numGpuBlocksOverride === undefined ? 'None' : String(this.options.numGpuBlocksOverride),
    };
  }

  /** Scheduler statistics (running/waiting counts, KV usage, prefix cache hits). */
  get stats() {
    return this.scheduler.stats;
  }

  dispose(): void {
    this.disposed = true;
    this.failAll(new Error('the engine was disposed'));
    this.runner.dispose();
    this.proposer?.dispose();
  }
}

export type { SamplingParamsInit };
