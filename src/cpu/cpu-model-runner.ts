/**
 * The CPU backend's model runner: the executor port (engine/executor.ts) over cpu.wasm, for machines and runtimes
 * without a WebGPU adapter. The same verbs as the GPU runner: load (weights into wasm memory, KV cache sized from
 * `kvCacheMemoryBytes`), then per step prepare inputs (one flat batch of tokens from many sequences, positions, KV
 * slots, block tables), run the forward (cpu-decoder.ts), and sample every row with the CPU sampler
 * (sampling/sampler.ts: the same SamplingParams, generators, logprobs and masks as the GPU path's CPU fallback).
 * Matmuls split across threads where the platform gives workers (cpu-threads.ts); a step runs to completion inside
 * execute().
 *
 * @example
 *   const engine = await LLMEngine.create(model, (m, opts) => CpuModelRunner.load(m, opts), options);
 */
import type { ModelConfig } from '../config/model-config.js';
import type { Executor, ModelHandle, RunnerLimits, ScheduledSeq, StepResult } from '../engine/executor.js';
import type { EngineOptions } from '../engine/llm-engine.js';
import { InvalidArgumentError } from '../errors.js';
import { argmax, Sampler, type SamplerRequest } from '../sampling/sampler.js';
import { CpuDecoder, cpuDecoderBytes, type CpuDecoderSizes } from './cpu-decoder.js';
import type { CpuWorkerHost } from './cpu-threads.js';
import { loadCpuKernels, type CpuKernels } from './cpu-wasm.js';
import { loadCpuWeights } from './cpu-weights.js';

const MiB = 1 << 20;
/** The KV cache's budget on the CPU when kvCacheMemoryBytes is not given. */
const DEFAULT_KV_BYTES = 64 * MiB;
/** The CPU's largest default step: tokens, and logits rows one LM-head pass computes (more rows go in passes). */
const STEP_TOKENS = 512;
const LOGIT_ROWS = 64;
/** The smallest step the budget rule picks. */
const MIN_STEP_TOKENS = 16;

/** The CPU runner's limits, and the LM head's rows per pass. */
export interface CpuRunnerLimits extends RunnerLimits {
  logitRows: number;
}

/** Bytes of cpu.wasm's memory a runner plans before it loads (each the sum of its blocks' cpuBlockBytes). */
export interface CpuMemoryPlan {
  /** The matrices, norms and biases, as the checkpoint's blocks or the chosen formats store them. */
  weights: number;
  /** K and V of every layer: 2 x numLayers x numBlocks x blockSize x nKv x D f32. */
  kvCache: number;
  /** One step's inputs and activations (maxNumBatchedTokens rows), logits (logitRows x V), rotary tables. */
  activations: number;
  /** The worker threads' control slots and GEMM panels (0 single-threaded). */
  threads: number;
}

/**
 * The CPU runner's sizing: defaults suited to a CPU (shorter steps, a smaller KV cache than the GPU's).
 *
 * The step: maxNumBatchedTokens as given; otherwise 512 tokens, and logits in passes of 64 rows,
 * both halved together (down to 16 tokens, 2 rows) until the step's activations take no more than the KV cache's
 * budget (kvCacheMemoryBytes, 64 MiB by default). A given maxNumBatchedTokens keeps its value and only the rows halve
 * (down to 1). So a small budget, as an edge isolate wants, gets a small step: SmolLM2-135M with 4 MiB of KV cache
 * steps 64 tokens with 8 logits rows (3.3 MiB of activations, against 26.6 MiB at 512 and 64).
 */
export function cpuRunnerLimits(cfg: ModelConfig, o: EngineOptions): CpuRunnerLimits {
  const maxModelLen = o.maxModelLen ?? Math.min(cfg.maxModelLen, 8192);
  if (!Number.isInteger(maxModelLen) || maxModelLen < 2) throw new InvalidArgumentError('maxModelLen', `maxModelLen must be an integer >= 2, got ${maxModelLen}`);
  if (maxModelLen > cfg.maxModelLen && cfg.positions === 'learned') {
    throw new InvalidArgumentError('maxModelLen', `maxModelLen ${maxModelLen} exceeds the model's ${cfg.maxModelLen} learned positions`);
  }
  if (o.kvCacheDtype === 'float16') throw new InvalidArgumentError('kvCacheDtype', "the CPU backend keeps its KV cache in float32 (kvCacheDtype 'auto' or 'float32')");
  const blockSize = o.blockSize ?? 16;
  const maxNumSeqs = o.maxNumSeqs ?? 64;
  const given = o.maxNumBatchedTokens;
  if (given !== undefined && (!Number.isInteger(given) || given < 1)) throw new InvalidArgumentError('maxNumBatchedTokens', 'maxNumBatchedTokens must be at least 1');
  const kvBudget = o.kvCacheMemoryBytes ?? DEFAULT_KV_BYTES;
  const blockBytesPerLayer = blockSize * cfg.numKvHeads * cfg.headDim * 4;
  const byBudget = Math.floor(kvBudget / (2 * cfg.numLayers * blockBytesPerLayer));
  const numBlocks = o.numGpuBlocksOverride ?? byBudget;
  if (!Number.isInteger(numBlocks) || numBlocks < 1) {
    throw new InvalidArgumentError('kvCacheMemoryBytes', `the KV cache budget holds no block of ${blockSize} tokens; raise kvCacheMemoryBytes`);
  }
  const capacity = numBlocks * blockSize;
  if (maxModelLen > capacity && o.maxModelLen !== undefined) {
    throw new InvalidArgumentError('maxModelLen', `maxModelLen ${maxModelLen} is more than the KV cache holds (${capacity} tokens in ${numBlocks} blocks); raise kvCacheMemoryBytes or lower maxModelLen`);
  }
  const len = Math.min(maxModelLen, capacity);
  const base = { maxNumSeqs, maxModelLen: len, blockSize, numBlocks, kvDtype: 'f32' as const };
  const activations = (T: number, rows: number) => cpuDecoderBytes(cfg, cpuDecoderSizes({ ...base, maxNumBatchedTokens: T, logitRows: rows })).activations;
  let T = given ?? STEP_TOKENS;
  let rows = LOGIT_ROWS;
  for (;;) {
    if (activations(T, rows) <= kvBudget) break;
    const nextT = given === undefined && T > MIN_STEP_TOKENS ? T / 2 : T;
    const nextRows = rows > (given === undefined ? 2 : 1) ? rows / 2 : rows;
    if (nextT === T && nextRows === rows) break;
    T = nextT;
    rows = nextRows;
  }
  return { ...base, maxNumBatchedTokens: T, logitRows: rows };
}

/** The decoder's buffer sizes for a runner's limits. */
export function cpuDecoderSizes(l: CpuRunnerLimits): CpuDecoderSizes {
  return {
    maxTokens: l.maxNumBatchedTokens,
    maxSeqs: l.maxNumSeqs,
    maxBlocksPerSeq: Math.ceil(l.maxModelLen / l.blockSize),
    maxModelLen: l.maxModelLen,
    numBlocks: l.numBlocks,
    blockSize: l.blockSize,
    logitRows: l.logitRows,
  };
}

export class CpuModelRunner implements Executor {
  /**
   * Executor.overlapsCaller: the forward runs in the calling thread (its workers' shares waited for), so the engine
   * runs one step at a time (a step run ahead held the prefill's first token back: TTFT 112 -> 150 ms, SmolLM2-135M
   * Q4_0, 64 tokens).
   */
  readonly overlapsCaller = false;
  private disposed = false;

  /**
   * Loads a model into a fresh cpu.wasm instance: weights (dtype, quantization and loadFormat as on the GPU path),
   * the KV cache and activations sized by the limits.
   */
  static async load(model: ModelHandle, options: EngineOptions = {}, threads: { threads: number; host: CpuWorkerHost | null; relaxed?: boolean } = { threads: 1, host: null }): Promise<CpuModelRunner> {
    const { config: c } = model;
    const limits = cpuRunnerLimits(c, options);
    const maxK = Math.max(c.hiddenSize, c.numHeads * c.headDim, c.intermediateSize, c.wordEmbedProjDim ?? 0);
    const cpu = await loadCpuKernels({ ...threads, maxK, maxLen: limits.maxModelLen });
    try {
      return await CpuModelRunner.loadInto(cpu, model, options, limits);
    } catch (err) {
      cpu.dispose();
      throw err;
    }
  }

  /**
   * Plans cpu.wasm's memory (the threads' blocks are already there), then loads the weights, which reserve their
   * bytes and the decoder's in one grow before the first is written; the decoder's buffers then grow nothing.
   */
  private static async loadInto(cpu: CpuKernels, model: ModelHandle, options: EngineOptions, limits: CpuRunnerLimits): Promise<CpuModelRunner> {
    const { config } = model;
    const onProgress = options.onProgress;
    const sizes = cpuDecoderSizes(limits);
    const { kvCache, activations } = cpuDecoderBytes(config, sizes);
    const threads = cpu.usedBytes;
    const { weights, bytes } = await loadCpuWeights(cpu, model, config, {
      dtype: options.dtype,
      quantization: options.quantization,
      dummy: options.loadFormat === 'dummy',
      reserveAfter: kvCache + activations,
      onProgress: onProgress && ((p) => onProgress({ ...p, phase: 'upload' })),
    });
    const decoder = new CpuDecoder(cpu, config, weights, sizes);
    const plan = { weights: bytes, kvCache, activations, threads };
    return new CpuModelRunner(cpu, config, limits, plan, decoder, await Sampler.create(config.vocabSize));
  }

  constructor(
    readonly cpu: CpuKernels,
    readonly config: ModelConfig,
    readonly limits: CpuRunnerLimits,
    /** What cpu.wasm's memory was planned to hold: its blocks add up to exactly this (cpu.usedBytes). */
    readonly memoryPlan: CpuMemoryPlan,
    readonly decoder: CpuDecoder,
    private readonly sampler: Sampler,
  ) {}

  async execute(seqs: readonly ScheduledSeq[], blockCopies: readonly (readonly [number, number])[] = [], beforeSampling?: () => Promise<void>): Promise<StepResult> {
    if (this.disposed) throw new Error('the CPU runner was disposed');
    const { limits, decoder: d, config: cfg } = this;
    const T = seqs.reduce((n, s) => n + s.tokenIds.length, 0);
    const result: StepResult = { sampled: new Map(), allLogits: new Map() };
    if (T === 0) return result;
    if (T > limits.maxNumBatchedTokens) throw new Error(`step has ${T} tokens, more than maxNumBatchedTokens ${limits.maxNumBatchedTokens}`);
    if (seqs.length > limits.maxNumSeqs) throw new Error(`step has ${seqs.length} sequences, more than maxNumSeqs ${limits.maxNumSeqs}`);
    d.copyBlocks(blockCopies);

    // 1. Prepare inputs.
    const bs = limits.blockSize;
    const maxBlocks = Math.max(1, ...seqs.map((s) => Math.ceil((s.startPos + s.tokenIds.length) / bs)));
    const i32 = this.cpu.i32();
    const ids = i32.subarray(d.ids / 4, d.ids / 4 + T);
    const positions = i32.subarray(d.positions / 4, d.positions / 4 + T);
    const positionIds = i32.subarray(d.positionIds / 4, d.positionIds / 4 + T);
    const seqIdx = i32.subarray(d.seqIdx / 4, d.seqIdx / 4 + T);
    const slots = i32.subarray(d.slots / 4, d.slots / 4 + T);
    const tables = i32.subarray(d.tables / 4, d.tables / 4 + seqs.length * maxBlocks).fill(0);
    /** Token row of each logits row, and who it belongs to. */
    const rows: { row: number; seq: number; kind: 'sample' | 'all' | 'spec'; extra?: number }[] = [];
    let t = 0;
    seqs.forEach((s, si) => {
      const nb = Math.ceil((s.startPos + s.tokenIds.length) / bs);
      if (s.blockTable.length < nb) throw new Error(`request ${s.requestId}: block table has ${s.blockTable.length} blocks, needs ${nb}`);
      for (let b = 0; b < nb; b++) tables[si * maxBlocks + b] = s.blockTable[b];
      for (let j = 0; j < s.tokenIds.length; j++, t++) {
        const pos = s.startPos + j;
        const id = s.tokenIds[j];
        if (id < 0) throw new Error(`request ${s.requestId}: a placeholder token (${id}); the CPU runner does not run steps ahead`);
        ids[t] = id;
        positions[t] = pos;
        positionIds[t] = pos + cfg.learnedPositionOffset;
        seqIdx[t] = si;
        slots[t] = s.blockTable[Math.floor(pos / bs)] * bs + (pos % bs);
        const k = s.verify?.numSpecTokens ?? 0;
        const verified = j >= s.tokenIds.length - 1 - k;
        if (s.allLogits || (verified && s.verify?.rows === 'logits')) rows.push({ row: t, seq: si, kind: 'all' });
        else if (verified && j < s.tokenIds.length - 1 && s.verify?.rows === 'argmax') rows.push({ row: t, seq: si, kind: 'spec' });
      }
      if (s.sample) rows.push({ row: t - 1, seq: si, kind: 'sample' });
      s.extraSamples?.forEach((_, k) => rows.push({ row: t - 1, seq: si, kind: 'sample', extra: k }));
    });

    // 2. Execute.
    d.forward({ T, maxBlocks });
    // The grammar bitmasks (the CPU sampler applies them).
    if (beforeSampling) await beforeSampling();

    // 3. Logits (in passes of limits.logitRows rows) and sampling.
    const V = cfg.vocabSize;
    const sampleOf = (r: (typeof rows)[number]) => (r.extra === undefined ? seqs[r.seq].sample! : seqs[r.seq].extraSamples![r.extra].sample);
    const idOf = (r: (typeof rows)[number]) => (r.extra === undefined ? seqs[r.seq].requestId : seqs[r.seq].extraSamples![r.extra].requestId);
    for (let c = 0; c < rows.length; c += limits.logitRows) {
      const part = rows.slice(c, c + limits.logitRows);
      const ptr = d.logitsOf(part.map((r) => r.row));
      const views: Float32Array[] = [];
      const reqs: SamplerRequest[] = [];
      const who: string[] = [];
      part.forEach((r, i) => {
        // A copy: the sampler (core.wasm) and logits processors may run while cpu.wasm's memory grows.
        const row = this.cpu.f32().slice(ptr / 4 + i * V, ptr / 4 + (i + 1) * V);
        if (r.kind === 'all') {
          const id = seqs[r.seq].requestId;
          result.allLogits.set(id, [...(result.allLogits.get(id) ?? []), row]);
        } else if (r.kind === 'spec') {
          // A greedy row's verdict: its argmax, ties to the lowest id as the sampler's.
          const id = seqs[r.seq].requestId;
          const specArgmax = (result.specArgmax ??= new Map());
          specArgmax.set(id, [...(specArgmax.get(id) ?? []), argmax(row)]);
        } else {
          views.push(row);
          reqs.push(sampleOf(r));
          who.push(idOf(r));
        }
      });
      if (reqs.length > 0) {
        this.sampler.sample(views, reqs).forEach((o, j) => result.sampled.set(who[j], o));
      }
    }
    return result;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.sampler.dispose();
    this.cpu.dispose();
    // The weights and cache go with the module's memory once nothing references it.
  }
}

/** The engine's executor as the CPU runner (tests, benchmarks); throws for any other backend. */
export function cpuRunnerOf(engine: { runner: Executor }): CpuModelRunner {
  if (!(engine.runner instanceof CpuModelRunner)) throw new Error('the engine does not run on the CPU runner');
  return engine.runner;
}
