/**
 * The engine: request -> tokenizer -> scheduler -> model runner -> sampler -> output processor -> streams.
 * Requests may be added at any time from any number of callers; one loop runs steps while work remains, and each
 * step is vLLM V1's three lines: schedule, execute, update from output.
 *
 * @example
 * const stream = llm.engine.addRequest({ prompt: 'Hello', params: new SamplingParams({ maxTokens: 64 }) });
 * for await (const out of stream) console.log(out.outputs[0].text);
 */
import { parseGenerationConfig, type GenerationConfig } from '../config/generation-config.js';
import { parseModelConfig, type ModelConfig } from '../config/model-config.js';
import { CapacityError, InvalidArgumentError } from '../errors.js';
import { GpuContext } from '../gpu/context.js';
import { loadWeights } from '../models/load-weights.js';
import type { ModelSource } from '../platform.js';
import { Generator } from '../sampling/generator.js';
import { SamplingParams, type SamplingParamsInit } from '../sampling-params.js';
import { Tokenizer } from '../tokenizer/index.js';
import { OutputProcessor, type CoreOutput } from './output-processor.js';
import { ModelRunner, type ScheduledSeq } from './model-runner.js';
import { topLogprobs } from '../sampling/logprobs.js';
import { badWordsTokenIds, Sampler } from '../sampling/sampler.js';
import { Request, RequestStatus } from './request.js';
import { RequestStream } from './request-stream.js';
import { Scheduler } from './scheduler.js';
import { defaultGenerationParams, engineLimits } from './engine-config.js';

export interface EngineOptions {
  /** Weight dtype on the GPU: 'auto' = f16 when the checkpoint is f16/bf16 and the adapter has shader-f16. */
  dtype?: 'auto' | 'float32' | 'float16';
  /** KV cache dtype: 'auto' follows the weights. */
  kvCacheDtype?: 'auto' | 'float32' | 'float16';
  /** Longest prompt + output (default: the model's max_position_embeddings, at most 8192). */
  maxModelLen?: number;
  /** Sequences per step (default 64). */
  maxNumSeqs?: number;
  /** Tokens per step (default 2048, capped so every activation fits one storage binding). */
  maxNumBatchedTokens?: number;
  /** Tokens per KV block (default 16). */
  blockSize?: number;
  /** Bytes for the KV cache (default 256 MiB). */
  kvCacheMemoryBytes?: number;
  /** Exact number of KV blocks (overrides kvCacheMemoryBytes). */
  numGpuBlocksOverride?: number;
  /** Reuse KV blocks of shared prompt prefixes (default true, as vLLM V1). */
  enablePrefixCaching?: boolean;
  /** 'auto' applies generation_config.json defaults; 'vllm' ignores them. */
  generationConfig?: 'auto' | 'vllm';
  /** 'dummy': random weights from config.json alone (benchmarks). */
  loadFormat?: 'auto' | 'dummy';
  /** 'fcfs' (default) or 'priority' (lower value first). */
  schedulingPolicy?: 'fcfs' | 'priority';
  /** Seed for requests without their own seed (vLLM's LLM(seed=...)). */
  seed?: number;
}

/** A prompt: text, or token ids. */
export type PromptInput = string | { prompt: string } | { promptTokenIds: number[]; prompt?: string };

export interface AddRequestInit {
  prompt: PromptInput;
  params?: SamplingParams;
  requestId?: string;
  priority?: number;
  signal?: AbortSignal;
}

/** A validated, tokenized request not yet in the engine. */
export interface PreparedRequest {
  requestId: string;
  prompt: string | null;
  promptTokenIds: number[];
  params: SamplingParams;
  priority: number;
}

export class LLMEngine {
  private readonly scheduler: Scheduler;
  private readonly outputs: OutputProcessor;
  /** Per request: parameters, generator and what the sampler needs besides the logits. */
  private readonly generators = new Map<string, { params: SamplingParams; generator: Generator; stopTokenIds: number[]; badWordsTokenIds: number[][] }>();
  private readonly streams = new Map<string, RequestStream>();
  private readonly promptTokens = new Map<string, readonly number[]>();
  /** Output token ids produced so far, per request (penalties, logits processors, minTokens). */
  private readonly outputIds = new Map<string, number[]>();
  private readonly pendingAborts = new Set<string>();
  private loop: Promise<void> | null = null;
  private nextId = 0;
  private seedCounter = 0;
  private disposed = false;

  private constructor(
    readonly config: ModelConfig,
    readonly generationConfig: GenerationConfig | null,
    readonly tokenizer: Tokenizer,
    readonly runner: ModelRunner,
    private readonly options: EngineOptions,
    /** EOS ids: config.json's and generation_config.json's together. */
    readonly eosTokenIds: number[],
  ) {
    const l = runner.limits;
    this.scheduler = new Scheduler(
      { maxNumSeqs: l.maxNumSeqs, maxNumBatchedTokens: l.maxNumBatchedTokens, maxModelLen: l.maxModelLen, policy: options.schedulingPolicy ?? 'fcfs' },
      { numBlocks: l.numBlocks, blockSize: l.blockSize, enablePrefixCaching: options.enablePrefixCaching ?? true },
    );
    this.outputs = new OutputProcessor(tokenizer);
  }

  /** Loads config, tokenizer and weights from a model source onto the GPU. */
  static async create(source: ModelSource, gpu: GPU, options: EngineOptions = {}): Promise<LLMEngine> {
    const config = parseModelConfig(await source.readText('config.json'), `${source.name}/config.json`);
    let generationConfig: GenerationConfig | null = null;
    if (await source.exists('generation_config.json')) {
      generationConfig = parseGenerationConfig(await source.readText('generation_config.json'), `${source.name}/generation_config.json`);
    }
    const tokenizer = await Tokenizer.fromSource(source);
    const wantF16 = options.dtype === 'float16' || (options.dtype !== 'float32' && config.dtype !== 'float32');
    const ctx = await GpuContext.create(gpu, { f16: options.dtype === 'float16' ? true : wantF16 ? undefined : false });
    const weightDtype = ctx.f16 && wantF16 ? 'f16' : 'f32';
    const limits = engineLimits(ctx, config, options, weightDtype);
    const weights = await loadWeights(ctx, source, config, { dtype: weightDtype, dummy: options.loadFormat === 'dummy' });
    const runner = new ModelRunner(ctx, config, weights, limits, await Sampler.create(config.vocabSize));
    const eos = [...new Set([...config.eosTokenIds, ...(generationConfig?.eosTokenIds ?? [])])];
    if (eos.length === 0 && tokenizer.eosTokenId !== null) eos.push(tokenizer.eosTokenId);
    return new LLMEngine(config, options.generationConfig === 'vllm' ? null : generationConfig, tokenizer, runner, options, eos);
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

  /** Tokenizes and validates a request; throws InvalidArgumentError / CapacityError without touching the engine. */
  prepareRequest(init: AddRequestInit): PreparedRequest {
    if (init.params !== undefined && !(init.params instanceof SamplingParams)) throw new InvalidArgumentError('params', 'must be a SamplingParams');
    const params = this.withModelDefaults(init.params ?? new SamplingParams());
    if (params.n !== 1 || (params.bestOf !== null && params.bestOf !== 1)) {
      throw new InvalidArgumentError('n', 'n > 1 and bestOf > 1 are not supported yet');
    }
    params.verifyForVocab(this.config.vocabSize);
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
      ids = ids.slice(ids.length - params.truncatePromptTokens);
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
    const requestId = init.requestId ?? String(this.nextId++);
    if (this.streams.has(requestId)) throw new InvalidArgumentError('requestId', `request id '${requestId}' is already running`);
    return { requestId, prompt, promptTokenIds: ids, params, priority: init.priority ?? 0 };
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

  /** Enqueues a prepared request. */
  submit(r: PreparedRequest): RequestStream {
    if (this.disposed) throw new Error('the engine is disposed');
    const { params } = r;
    const maxLen = this.runner.limits.maxModelLen;
    const maxTokens = Math.min(params.maxTokens ?? Infinity, maxLen - r.promptTokenIds.length);
    const req = new Request({
      requestId: r.requestId,
      promptTokenIds: r.promptTokenIds,
      samplingParams: { maxTokens, minTokens: Math.min(params.minTokens, maxTokens), ignoreEos: params.ignoreEos, stopTokenIds: params.stopTokenIds },
      eosTokenIds: this.eosTokenIds,
      priority: r.priority,
    });
    const stream = new RequestStream(r.requestId);
    const seed = params.seed ?? (this.options.seed !== undefined ? this.options.seed + this.seedCounter++ : null);
    this.generators.set(r.requestId, {
      params,
      generator: seed === null ? Generator.random() : new Generator(seed),
      stopTokenIds: [...(params.ignoreEos ? [] : this.eosTokenIds), ...params.stopTokenIds],
      badWordsTokenIds: badWordsTokenIds(params.badWords ?? [], (t) => this.tokenizer.encode(t, { addSpecialTokens: false })),
    });
    this.streams.set(r.requestId, stream);
    this.promptTokens.set(r.requestId, r.promptTokenIds);
    this.outputIds.set(r.requestId, []);
    this.outputs.addRequest(r.requestId, r.prompt, r.promptTokenIds, params, stream);
    this.scheduler.addRequest(req);
    this.kick();
    return stream;
  }

  /** Stops a request at the next step boundary and frees its KV blocks. */
  abort(requestId: string): void {
    if (!this.streams.has(requestId)) return;
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
    for (;;) {
      this.applyAborts();
      if (!this.scheduler.hasUnfinishedRequests()) return;
      try {
        await this.step();
      } catch (err) {
        this.failAll(err);
        return;
      }
      // Let callers add or abort requests between steps.
      await new Promise<void>((r) => setTimeout(r, 0));
    }
  }

  private applyAborts(): void {
    if (this.pendingAborts.size === 0) return;
    const ids = [...this.pendingAborts];
    this.pendingAborts.clear();
    this.scheduler.finishRequests(ids, RequestStatus.FINISHED_ABORTED);
    for (const id of ids) this.release(id, 'abort');
  }

  /** One engine step: schedule, execute, update from output. */
  private async step(): Promise<void> {
    const plan = this.scheduler.schedule();
    if (plan.totalNumScheduledTokens === 0) return;
    const seqs: ScheduledSeq[] = plan.scheduledRequests.map((s) => ({
      requestId: s.requestId,
      tokenIds: s.tokenIds,
      startPos: s.startPosition,
      blockTable: s.blockTable,
      sample: s.needsSample ? this.sampleSpec(s.requestId) : null,
      allLogits: this.generators.get(s.requestId)!.params.promptLogprobs !== null && s.startPosition < this.promptLength(s.requestId),
    }));
    const result = await this.runner.execute(seqs, plan.blockCopies);
    for (const s of seqs) {
      const rows = result.allLogits.get(s.requestId);
      if (!rows) continue;
      const k = this.generators.get(s.requestId)!.params.promptLogprobs!;
      const prompt = this.promptTokens.get(s.requestId)!;
      const entries = rows.map((row, j) => {
        const next = s.startPos + j + 1;
        return topLogprobs(row, next < prompt.length ? prompt[next] : 0, k);
      });
      this.outputs.addPromptLogprobs(s.requestId, s.startPos, entries);
    }
    const sampled = new Map<string, number[]>();
    for (const [id, r] of result.sampled) sampled.set(id, [r.tokenId]);
    const update = this.scheduler.updateFromOutput(plan, sampled);
    for (const o of update.outputs) this.outputIds.get(o.requestId)?.push(...o.newTokenIds);
    const core: CoreOutput[] = update.outputs.map((o) => ({
      requestId: o.requestId,
      newTokenIds: o.newTokenIds,
      newLogprobs: result.sampled.get(o.requestId)?.logprobs ? [result.sampled.get(o.requestId)!.logprobs!] : null,
      finishReason: o.finishReason,
      stopReason: o.stopReason,
      numCachedTokens: o.numCachedTokens,
    }));
    const stopped = this.outputs.process(core);
    if (stopped.length > 0) this.scheduler.finishRequests(stopped, RequestStatus.FINISHED_STOPPED);
    for (const o of core) if (o.finishReason !== null || stopped.includes(o.requestId)) this.release(o.requestId, null);
  }

  /** What the sampler needs for a request (it masks EOS and stop tokens until minTokens outputs exist). */
  private sampleSpec(requestId: string): ScheduledSeq['sample'] {
    const g = this.generators.get(requestId)!;
    return { ...g, promptTokenIds: this.promptTokens.get(requestId)!, outputTokenIds: this.outputIds.get(requestId)! };
  }

  private promptLength(requestId: string): number {
    return this.promptTokens.get(requestId)?.length ?? 0;
  }

  private release(requestId: string, reason: 'abort' | null): void {
    if (reason) this.outputs.finish(requestId, reason);
    this.generators.delete(requestId);
    this.streams.delete(requestId);
    this.promptTokens.delete(requestId);
    this.outputIds.delete(requestId);
  }

  private failAll(err: unknown): void {
    const ids = [...this.streams.keys()];
    this.scheduler.finishRequests(ids, RequestStatus.FINISHED_ABORTED);
    for (const id of ids) {
      this.outputs.finish(id, 'abort', err);
      this.release(id, null);
    }
  }

  /** Scheduler statistics (running/waiting counts, KV usage, prefix cache hits). */
  get stats() {
    return this.scheduler.stats;
  }

  dispose(): void {
    this.disposed = true;
    this.failAll(new Error('the engine was disposed'));
    this.runner.dispose();
    this.runner.ctx.destroy();
  }
}

export type { SamplingParamsInit };
