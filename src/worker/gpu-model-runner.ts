/**
 * The model runner (vLLM V1's GPUModelRunner, in a few verbs): it alone turns the scheduler's plan into GPU
 * buffers. Each step: prepare inputs (one flat batch of tokens from many sequences, with positions, block
 * tables and KV slots), execute the forward in one command encoder, read back only what sampling needs
 * (argmax ids for greedy rows; full logits rows only for rows the CPU sampler or logprobs need), sample.
 */
import type { ModelConfig } from '../config/model-config.js';
import type { Executor, ModelHandle, RunnerLimits, ScheduledSeq, StepResult } from '../engine/executor.js';
import type { EngineOptions } from '../engine/llm-engine.js';
import { GpuContext } from '../gpu/context.js';
import { Recorder, type StepGraph } from '../gpu/recorder.js';
import type { DType, Tensor } from '../gpu/tensor.js';
import { denseMethod } from '../layers/linear.js';
import { checkQuantization, modelQuantMethods } from '../layers/quant/index.js';
import { loadWeights } from '../models/load-weights.js';
import type { KVCache, ModelWeights, Activations, ForwardInputs } from '../models/decoder.js';
import { Decoder } from '../models/decoder.js';
import * as ops from '../ops/index.js';
import { candidateRecordWords, MAX_CANDIDATES, readCandidateRow, topKCandidates } from '../ops/topk.js';
import { candidateCount, candidateRowParams, sampleCandidates } from '../sampling/candidates.js';
import { Sampler, type SampleOut, type SamplerRequest } from '../sampling/sampler.js';
import { rowSampling } from '../sampling/row-sampling.js';
import { runnerLimits } from './runner-limits.js';

const ALIGN = 256;
const alignUp = (n: number, a = ALIGN) => Math.ceil(n / a) * a;
/** Step graphs kept (each a forward's commands: a few hundred small objects). */
const MAX_GRAPHS = 256;

/** Token counts whose steps the warm-up records: 1, 2, 3, and 2^k, 2^k + 1 up to maxT, and maxT. */
export function warmupTokenCounts(maxT: number): number[] {
  const ts = new Set([1, 2, 3, maxT]);
  for (let p = 4; p <= maxT; p *= 2) ts.add(p).add(p + 1);
  return [...ts].filter((t) => t <= maxT).sort((a, b) => a - b);
}

/** Sections of the one per-step input buffer (u32 / i32 arrays at 256-byte aligned offsets). */
interface InputLayout {
  ids: number;
  positions: number;
  positionIds: number;
  seqIdx: number;
  slotMapping: number;
  blockTables: number;
  tiles: number;
  sampleRows: number;
  size: number;
}

export class GpuModelRunner implements Executor {
  readonly model: Decoder;
  readonly cache: KVCache;
  private readonly acts: Activations;
  private readonly inputs: GPUBuffer;
  /** The step's inputs on the CPU, reused (writeBuffer copies them at once). */
  private readonly staged: ArrayBuffer;
  private readonly layout: InputLayout;
  private readonly maxBlocksPerSeq: number;
  /** Rows of logits one LM-head pass can hold (a storage binding is limited in size). */
  private readonly logitRowsCap: number;
  private readonly sampledIds: GPUBuffer; // u32 [maxRows] argmax results
  private readonly candParams: Tensor; // f32 [logitRowsCap, 2]: per row 1/T and the min-p offset (candidateRowParams)
  private readonly candidates: Tensor; // u32 [logitRowsCap, candidateRecordWords(256)]: topKCandidates records
  /**
   * Readback buffers, used in turn: with async scheduling the next step is recorded while this one's is still
   * mapped. The third serves the candidates' fallback.
   */
  private readonly stagings: (GPUBuffer | null)[] = [null, null, null];
  private stagingTurn = 0;
  /** Byte offset in sampledIds of each request's sampled token in the last step (async scheduling's source). */
  private sampleRowOf = new Map<string, number>();
  /** Set while a step waits on its beforeSampling: its sampling commands are not recorded yet. */
  private sampling: Promise<void> | null = null;
  /**
   * Sample from GPU-selected top candidates (max, exact normaliser, top-K) when they prove the token the full-row
   * sampler would draw; rows they cannot prove fall back to the full row in the same step. Off: always full rows.
   */
  candidateSampling = true;
  /**
   * Structured outputs: apply each constrained row's grammar bitmask on the GPU (ops.tokenBitmask, between the LM
   * head and the argmax / top-K), so that a greedy constrained row is the GPU's argmax (no whole-row readback); a
   * random one is read back masked (see rowSampling). Off, or when a step's sample rows take more than one LM-head
   * pass: the CPU sampler masks whole rows.
   */
  gpuTokenMask = true;
  /** Masked rows' indices, then their bitmasks (u32 [M], then at a 256-byte boundary u32 [M, ceil(V / 32)]). */
  private maskBuffer: GPUBuffer | null = null;
  /**
   * Replay each forward's commands from a graph captured the first time a step of its shape ran (Recorder.capture:
   * given the model, its buffers and ctx.tuning, a forward's dispatches and params depend only on its token count
   * and longest block table; everything per token is in the input buffer), sparing the CPU the ops' recording
   * work; vLLM's CUDA graphs. Off (EngineOptions.enforceEager): every forward recorded anew. Call clearGraphs
   * after changing ctx.tuning.
   */
  stepGraphs = true;
  /** Captured forwards by `${T}:${maxBlocksPerSeq}`, least recently used first (at most MAX_GRAPHS). */
  private readonly graphs = new Map<string, StepGraph>();
  /** Forwards replayed from a graph and captured, so far (tests, benchmarks). */
  readonly graphStats = { replayed: 0, captured: 0 };

  /**
   * Loads a model onto the GPU (vLLM's GPUModelRunner owns loading too): a GPU context (f16 weights when
   * the checkpoint is f16/bf16 and the adapter has shader-f16, unless options.dtype says otherwise), the KV cache sized
   * to the options and the device's limits, the weights, and (options.warmup, default on) every kernel steps use.
   */
  static async load(model: ModelHandle, gpu: GPU, options: EngineOptions = {}): Promise<GpuModelRunner> {
    const { config } = model;
    const quantization = checkQuantization(options.quantization);
    const wantF16 = options.dtype === 'float16' || (options.dtype !== 'float32' && config.dtype !== 'float32');
    const ctx = await GpuContext.create(gpu, { f16: options.dtype === 'float16' ? true : wantF16 ? undefined : false });
    try {
      const weightDtype = ctx.f16 && wantF16 ? 'f16' : 'f32';
      const limits = runnerLimits(ctx, config, options, weightDtype);
      const onProgress = options.onProgress;
      const weights = await loadWeights(ctx, model, config, {
        method: quantization ? modelQuantMethods(quantization, denseMethod(weightDtype)) : denseMethod(weightDtype),
        dummy: options.loadFormat === 'dummy',
        onProgress: onProgress && ((p) => onProgress({ ...p, phase: 'upload' })),
      });
      const runner = new GpuModelRunner(ctx, config, weights, limits, await Sampler.create(config.vocabSize));
      runner.stepGraphs = !options.enforceEager;
      if (options.warmup !== false) await runner.warmup();
      return runner;
    } catch (err) {
      ctx.destroy();
      throw err;
    }
  }

  constructor(
    readonly ctx: GpuContext,
    readonly config: ModelConfig,
    weights: ModelWeights,
    readonly limits: RunnerLimits,
    /** The CPU sampler (AssemblyScript) for rows that need more than the GPU argmax. */
    private readonly sampler: Sampler,
  ) {
    const cfg = config;
    const dev = ctx.device;
    const H = cfg.hiddenSize;
    const V = cfg.vocabSize;
    const maxT = limits.maxNumBatchedTokens;
    this.model = new Decoder(ctx, cfg, weights);
    this.maxBlocksPerSeq = Math.ceil(limits.maxModelLen / limits.blockSize);
    const maxBinding = ctx.device.limits.maxStorageBufferBindingSize;
    this.logitRowsCap = Math.max(1, Math.min(Math.max(limits.maxNumSeqs, 64), Math.floor(maxBinding / (V * 4))));

    // KV cache: per layer K and V [numBlocks, blockSize, nKv, D].
    const kvShape = [limits.numBlocks, limits.blockSize, cfg.numKvHeads, cfg.headDim];
    const mk = (name: string) => this.tensor(kvShape, limits.kvDtype, null, name);
    this.cache = {
      numBlocks: limits.numBlocks,
      blockSize: limits.blockSize,
      k: Array.from({ length: cfg.numLayers }, (_, l) => mk(`kv.k.${l}`)),
      v: Array.from({ length: cfg.numLayers }, (_, l) => mk(`kv.v.${l}`)),
    };

    const m = this.model;
    const I = cfg.intermediateSize;
    const rows = this.logitRowsCap;
    this.acts = {
      x: this.tensor([maxT, H], 'f32', null, 'act.x'),
      h: this.tensor([maxT, Math.max(H, cfg.numHeads * cfg.headDim, cfg.wordEmbedProjDim ?? 0)], 'f32', null, 'act.h'),
      qkv: this.tensor([maxT, m.qkvDim], 'f32', null, 'act.qkv'),
      attn: this.tensor([maxT, cfg.numHeads * cfg.headDim], 'f32', null, 'act.attn'),
      up: this.tensor([maxT, m.upDim], 'f32', null, 'act.up'),
      act: this.tensor([maxT, Math.max(I, cfg.moe?.sharedIntermediateSize ?? 0)], 'f32', null, 'act.mlp'),
      xs: this.tensor([rows, Math.max(H, cfg.wordEmbedProjDim ?? 0)], 'f32', null, 'act.xs'),
      xsNorm: this.tensor([rows, Math.max(H, cfg.wordEmbedProjDim ?? 0)], 'f32', null, 'act.xsNorm'),
      logits: this.tensor([rows, V], 'f32', null, 'act.logits'),
      moe: cfg.moe
        ? {
            logits: this.tensor([maxT, cfg.moe.numExperts], 'f32', null, 'act.moe.logits'),
            ids: this.tensor([maxT, cfg.moe.topK], 'u32', null, 'act.moe.ids'),
            weights: this.tensor([maxT, cfg.moe.topK], 'f32', null, 'act.moe.weights'),
            shared: this.tensor([maxT, H], 'f32', null, 'act.moe.shared'),
          }
        : undefined,
    };

    // One input buffer per step; sample rows are laid out in chunks of logitRowsCap, each chunk aligned.
    const u32 = (n: number) => alignUp(n * 4);
    let off = 0;
    const take = (bytes: number) => ((off += bytes), off - bytes);
    const maxRows = maxT + limits.maxNumSeqs;
    const chunks = Math.ceil(maxRows / rows);
    this.layout = {
      ids: take(u32(maxT)),
      positions: take(u32(maxT)),
      positionIds: take(u32(maxT)),
      seqIdx: take(u32(maxT)),
      slotMapping: take(u32(maxT)),
      blockTables: take(u32(limits.maxNumSeqs * this.maxBlocksPerSeq)),
      tiles: take(u32(2 * maxT)),
      sampleRows: take(chunks * u32(rows)),
      size: off,
    };
    this.staged = new ArrayBuffer(this.layout.size);
    this.inputs = dev.createBuffer({ label: 'step.inputs', size: this.layout.size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    this.sampledIds = dev.createBuffer({ label: 'step.sampledIds', size: chunks * u32(rows), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    this.candParams = this.tensor([rows, 2], 'f32', null, 'step.candParams');
    this.candidates = this.tensor([rows, candidateRecordWords(MAX_CANDIDATES)], 'u32', null, 'step.candidates');
  }

  private tensor(shape: number[], dtype: DType, data: Float32Array | null, label: string): Tensor {
    const bytesPer = dtype === 'f16' ? 2 : 4;
    const size = alignUp(Math.max(4, shape.reduce((a, b) => a * b, 1) * bytesPer), 16);
    const buffer = this.ctx.device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    if (data) this.ctx.device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
    return { buffer, offset: 0, shape, dtype };
  }

  private view(offset: number, n: number, dtype: DType): Tensor {
    return { buffer: this.inputs, offset, shape: [n], dtype };
  }

  /** Forgets the captured step graphs (after a change of ctx.tuning, which they were captured under). */
  clearGraphs(): void {
    this.graphs.clear();
  }

  /** Records the forward of T tokens, from its step graph when one was captured (see stepGraphs). */
  private forward(rec: Recorder, T: number, maxBlocks: number): void {
    const record = () => this.model.forward(rec, this.forwardInputs(T, maxBlocks), this.acts, this.cache);
    if (!this.stepGraphs) return record();
    const key = `${T}:${maxBlocks}`;
    const graph = this.graphs.get(key);
    if (graph) {
      // Most recently used last.
      this.graphs.delete(key);
      this.graphs.set(key, graph);
      rec.replay(graph);
      this.graphStats.replayed++;
      return;
    }
    if (this.graphs.size >= MAX_GRAPHS) this.graphs.delete(this.graphs.keys().next().value!);
    this.graphs.set(key, rec.capture(record));
    this.graphStats.captured++;
  }

  /**
   * The forward's inputs: views of the input buffer at their maximum shapes (so cached bind groups serve every
   * step), T and the longest block table as counts.
   */
  private forwardInputs(T: number, maxBlocksPerSeq: number): ForwardInputs {
    const { layout, limits } = this;
    const maxT = limits.maxNumBatchedTokens;
    const tiles = this.stepTiles(T);
    return {
      T,
      ids: this.view(layout.ids, maxT, 'u32'),
      positions: this.view(layout.positions, maxT, 'u32'),
      positionIds: this.model.weights.positions ? this.view(layout.positionIds, maxT, 'u32') : null,
      seqIdx: this.view(layout.seqIdx, maxT, 'u32'),
      slotMapping: this.view(layout.slotMapping, maxT, 'i32'),
      blockTables: this.view(layout.blockTables, limits.maxNumSeqs * this.maxBlocksPerSeq, 'u32'),
      maxBlocksPerSeq,
      tiles: tiles ? { table: this.view(layout.tiles, 2 * maxT, 'u32'), count: tiles.count } : undefined,
    };
  }

  /**
   * A step of T tokens on the tiled attention kernel: queries per tile and the tile bound (the dispatch's size); null
   * when the step runs the per-token kernels.
   */
  private stepTiles(T: number): { queries: number; count: number } | null {
    const tiling = ops.attentionTiling(this.ctx, this.model.layout, T);
    return tiling ? { queries: tiling.queries, count: ops.attentionTileCount(T, tiling.queries, this.limits.maxNumSeqs) } : null;
  }

  /** Executor.overlapsCaller: the GPU runs a step's forward while the engine plans the next. */
  readonly overlapsCaller = true;

  /** Executor.deviceMaskRows: steps of one LM-head pass mask on the GPU (gpuTokenMask). */
  get deviceMaskRows(): number {
    return this.gpuTokenMask ? this.logitRowsCap : 0;
  }

  /**
   * Runs one step: forward over every scheduled token, then sampling. With `beforeSampling` (the engine's grammar
   * bitmasks) the forward, and the LM head of a one-pass step, are submitted first; the sampling commands follow once
   * it resolves, so the masks are made while the GPU runs the forward.
   */
  async execute(seqs: readonly ScheduledSeq[], blockCopies: readonly (readonly [number, number])[] = [], beforeSampling?: () => Promise<void>): Promise<StepResult> {
    // A step still waiting on its bitmasks has not recorded its argmax yet; this step's placeholders read it.
    while (this.sampling) await this.sampling;
    const { config: cfg, limits, layout } = this;
    const T = seqs.reduce((n, s) => n + s.tokenIds.length, 0);
    if (T === 0) return { sampled: new Map(), allLogits: new Map() };
    if (T > limits.maxNumBatchedTokens) throw new Error(`step has ${T} tokens, more than maxNumBatchedTokens ${limits.maxNumBatchedTokens}`);
    if (seqs.length > limits.maxNumSeqs) throw new Error(`step has ${seqs.length} sequences, more than maxNumSeqs ${limits.maxNumSeqs}`);

    // 1. Prepare inputs.
    const bs = limits.blockSize;
    const maxBlocks = Math.max(1, ...seqs.map((s) => Math.ceil((s.startPos + s.tokenIds.length) / bs)));
    // Placeholder tokens (-1, async scheduling): the previous step's argmax for the request, copied on the GPU.
    const prevRows = this.sampleRowOf;
    this.sampleRowOf = new Map();
    const placeholders: [token: number, source: number][] = [];
    const buf = this.staged;
    const ids = new Uint32Array(buf, layout.ids, T);
    const positions = new Uint32Array(buf, layout.positions, T);
    const positionIds = new Uint32Array(buf, layout.positionIds, T);
    const seqIdx = new Uint32Array(buf, layout.seqIdx, T);
    const slots = new Int32Array(buf, layout.slotMapping, T);
    const tables = new Uint32Array(buf, layout.blockTables, seqs.length * maxBlocks).fill(0);
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
        if (id < 0) {
          const src = prevRows.get(s.requestId);
          if (src === undefined) throw new Error(`request ${s.requestId}: a placeholder token with no sampled token in flight`);
          placeholders.push([t, src]);
        }
        ids[t] = Math.max(0, id);
        positions[t] = pos;
        positionIds[t] = pos + cfg.learnedPositionOffset;
        seqIdx[t] = si;
        slots[t] = s.blockTable[Math.floor(pos / bs)] * bs + (pos % bs);
        // Speculative decoding: the verdict at each of the last k + 1 positions (the last one is the sample row).
        const k = s.verify?.numSpecTokens ?? 0;
        const verified = j >= s.tokenIds.length - 1 - k;
        if (s.allLogits || (verified && s.verify?.rows === 'logits')) rows.push({ row: t, seq: si, kind: 'all' });
        else if (verified && j < s.tokenIds.length - 1 && s.verify?.rows === 'argmax') rows.push({ row: t, seq: si, kind: 'spec' });
      }
      if (s.sample) rows.push({ row: t - 1, seq: si, kind: 'sample' });
      // Extra samples read the same row again (one logits row, one readback per draw; n is small).
      s.extraSamples?.forEach((_, k) => rows.push({ row: t - 1, seq: si, kind: 'sample', extra: k }));
    });
    const tiles = this.stepTiles(T);
    if (tiles) ops.attentionTiles(seqs.map((s) => s.tokenIds.length), tiles.queries, new Uint32Array(buf, layout.tiles, 2 * tiles.count), tiles.count);
    const cap = this.logitRowsCap;
    const chunkStride = alignUp(cap * 4);
    for (let c = 0; c * cap < rows.length; c++) {
      const part = rows.slice(c * cap, (c + 1) * cap);
      new Uint32Array(buf, layout.sampleRows + c * chunkStride, part.length).set(part.map((r) => r.row));
    }
    // Write only the used prefix of each section (one write for the whole buffer's used span).
    const used = layout.sampleRows + Math.ceil(rows.length / cap) * chunkStride;
    this.ctx.device.queue.writeBuffer(this.inputs, 0, buf, 0, Math.max(used, layout.sampleRows));

    // 2. Execute.
    // A validation error would drop the whole step silently (stale results): catch it and fail loudly.
    this.ctx.device.pushErrorScope('validation');
    const rec = new Recorder(this.ctx);
    const validations: Promise<GPUError | null>[] = [];
    this.copyBlocks(rec, blockCopies);
    // One copy per run of consecutive tokens whose sources are consecutive too (a steady decode batch: one copy).
    for (let i = 0, j = 0; i < placeholders.length; i = j) {
      const [t, src] = placeholders[i];
      for (j = i + 1; j < placeholders.length && placeholders[j][0] === t + (j - i) && placeholders[j][1] === src + 4 * (j - i); j++);
      rec.copy(this.sampledIds, src, this.inputs, layout.ids + 4 * t, 4 * (j - i));
    }
    this.forward(rec, T, maxBlocks);
    const oneChunk = rows.length <= cap;
    // Every token sampled once, in order (a decode step): the LM head reads the hidden states in place.
    const inOrder = oneChunk && rows.length === T && rows.every((r, i) => r.row === i);
    /** Byte offset of row i's argmax in sampledIds (and in staging, which mirrors it). */
    const idAt = (i: number) => Math.floor(i / cap) * chunkStride + 4 * (i % cap);
    rows.forEach((r, i) => {
      if (r.kind === 'sample' && r.extra === undefined) this.sampleRowOf.set(seqs[r.seq].requestId, idAt(i));
    });
    // The LM head of a one-pass step needs no mask: it runs with the forward while the bitmasks are made.
    const headDone = !!beforeSampling && oneChunk;
    if (beforeSampling) {
      if (headDone) this.model.logits(rec, inOrder ? null : this.view(layout.sampleRows, cap, 'u32'), rows.length, this.acts);
      rec.submit();
      validations.push(this.ctx.device.popErrorScope());
      let release!: () => void;
      this.sampling = new Promise((r) => (release = r));
      try {
        await beforeSampling();
      } finally {
        this.sampling = null;
        release();
      }
      this.ctx.device.pushErrorScope('validation');
    }
    // Which logits rows the CPU needs whole: non-greedy sampling, logprobs, all-token logits.
    const sampleOf = (r: (typeof rows)[number]) => (r.extra === undefined ? seqs[r.seq].sample! : seqs[r.seq].extraSamples![r.extra].sample);
    const idOf = (r: (typeof rows)[number]) => (r.extra === undefined ? seqs[r.seq].requestId : seqs[r.seq].extraSamples![r.extra].requestId);
    // How each row is sampled: 'argmax' (plain greedy: the GPU's argmax), 'candidates' (stage 4 alone: the GPU's
    // top-K, and the whole row only if they cannot prove the token), 'full' (the whole row to the CPU sampler).
    // A declined row is copied from acts.logits after the first readback, so candidates need one LM-head chunk.
    // Rows with a grammar bitmask: masked on the GPU (one chunk: the mask serves one LM-head pass), then sampled as
    // free rows are; else the CPU sampler masks their whole rows.
    const maskedOnGpu = this.gpuTokenMask && oneChunk;
    const masked = maskedOnGpu ? rows.flatMap((r, i) => (r.kind === 'sample' && sampleOf(r).tokenBitmask ? [i] : [])) : [];
    const masks = masked.length > 0 ? this.uploadMasks(masked, masked.map((i) => sampleOf(rows[i]).tokenBitmask!)) : null;
    const mode = rows.map((r) => (r.kind === 'all' ? 'full' : r.kind === 'spec' ? 'argmax' : rowSampling(sampleOf(r), { candidates: this.candidateSampling && oneChunk, maskedOnGpu })));
    const needRow = mode.map((m) => m === 'full');
    const V = cfg.vocabSize;
    const rowBytes = V * 4;
    const nFull = needRow.filter(Boolean).length;
    const idsBytes = Math.ceil(rows.length / cap) * chunkStride;
    const nCand = mode.filter((m) => m === 'candidates').length;
    const K = candidateCount(rows.filter((_, i) => mode[i] === 'candidates').map((r) => sampleOf(r).params));
    const recordBytes = candidateRecordWords(K) * 4;
    const candBytes = nCand > 0 ? alignUp(rows.length * recordBytes, 4) : 0;
    if (nCand > 0) {
      const rp = new Float32Array(rows.length * 2).fill(1);
      rows.forEach((r, i) => mode[i] === 'candidates' && rp.set(candidateRowParams(sampleOf(r).params), 2 * i));
      this.ctx.device.queue.writeBuffer(this.candParams.buffer, 0, rp);
    }
    const stagingSize = idsBytes + candBytes + nFull * rowBytes;
    this.stagingTurn ^= 1;
    const staging = this.stagingBuffer(stagingSize, this.stagingTurn);
    let fullAt = idsBytes + candBytes;
    const fullOffset = new Map<number, number>();
    for (let c = 0; c * cap < rows.length; c++) {
      const S = Math.min(cap, rows.length - c * cap);
      this.logitsArgmax(rec, c * chunkStride, S, c === 0 ? masks : null, headDone, inOrder);
      rec.copy(this.sampledIds, c * chunkStride, staging, c * chunkStride, alignUp(S * 4, 4));
      if (nCand > 0) {
        // One chunk (oneChunk): records of every row of it, rows not sampled from candidates included (cheap).
        topKCandidates(rec, this.acts.logits, this.candParams, this.candidates, S, V, K);
        rec.copy(this.candidates.buffer, 0, staging, idsBytes, S * recordBytes);
      }
      for (let j = 0; j < S; j++) {
        const i = c * cap + j;
        if (!needRow[i]) continue;
        rec.copy(this.acts.logits.buffer, j * rowBytes, staging, fullAt, rowBytes);
        fullOffset.set(i, fullAt);
        fullAt += rowBytes;
      }
    }
    rec.submit();
    validations.push(this.ctx.device.popErrorScope());

    // 3. Read back and sample.
    const [errors] = await Promise.all([Promise.all(validations), staging.mapAsync(GPUMapMode.READ, 0, stagingSize)]);
    const error = errors.find((e) => e);
    if (error) {
      staging.unmap();
      throw new Error(`WebGPU rejected the step: ${error.message}`);
    }
    const mapped = staging.getMappedRange(0, stagingSize);
    const result: StepResult = { sampled: new Map(), allLogits: new Map() };
    const declined: number[] = []; // rows whose candidates could not prove the token
    try {
      const views: Float32Array[] = [];
      const reqs: SamplerRequest[] = [];
      const ids: string[] = [];
      rows.forEach((r, i) => {
        const fo = fullOffset.get(i);
        const s = seqs[r.seq];
        if (r.kind === 'all') {
          const list = result.allLogits.get(s.requestId) ?? [];
          list.push(new Float32Array(mapped.slice(fo!, fo! + rowBytes)));
          result.allLogits.set(s.requestId, list);
        } else if (r.kind === 'spec') {
          const specArgmax = (result.specArgmax ??= new Map());
          specArgmax.set(s.requestId, [...(specArgmax.get(s.requestId) ?? []), new Uint32Array(mapped, idAt(i), 1)[0]]);
        } else if (mode[i] === 'candidates') {
          const id = sampleCandidates(readCandidateRow(mapped, idsBytes + i * recordBytes, K), sampleOf(r), V);
          if (id === null) declined.push(i);
          else result.sampled.set(idOf(r), { tokenId: id, logprobs: null });
        } else if (fo === undefined) {
          // Plain greedy: the GPU's argmax is the answer.
          result.sampled.set(idOf(r), { tokenId: new Uint32Array(mapped, idAt(i), 1)[0], logprobs: null });
        } else {
          views.push(new Float32Array(mapped, fo, V)); // the sampler copies each row once
          reqs.push(sampleOf(r));
          ids.push(idOf(r));
        }
      });
      if (reqs.length > 0) this.sampler.sample(views, reqs).forEach((o, j) => result.sampled.set(ids[j], o));
    } finally {
      staging.unmap();
    }
    if (declined.length > 0) {
      const outs = await this.sampleWholeRows(declined, declined.map((i) => sampleOf(rows[i])));
      declined.forEach((i, j) => result.sampled.set(idOf(rows[i]), outs[j]));
    }
    return result;
  }

  /**
   * Builds the pipelines (and bind groups and scratch buffers) of the kernels steps use, by recording steps of
   * representative token counts without running them: a batch size first seen mid-run would otherwise hold every
   * request up while its shaders compile (H200: ~200 ms for a new decode batch class). The part vLLM's warm-up and
   * CUDA-graph capture play. Kernel choices change at the tuning's token thresholds (powers of two) and with
   * split-K (fewer tokens, more splits), so T = 1, 2, 3 and every 2^k and 2^k + 1 up to maxNumBatchedTokens cover
   * them; the LM head and argmax run over min(T, rows per pass) rows, gathered and (decode) in place. Sampling's
   * top-K kernels are left to first use.
   * Then the KV cache and activations are cleared: Dawn zeroes a buffer on its first use (WebGPU's zero
   * initialisation), which the first request would otherwise wait for (lavapipe: 1.1 s for a 256 MiB cache).
   * Returns when the GPU is done.
   */
  async warmup(): Promise<void> {
    const rec = new Recorder(this.ctx, 'warmup');
    rec.autoSubmit = false;
    for (const T of warmupTokenCounts(this.limits.maxNumBatchedTokens)) {
      this.model.forward(rec, this.forwardInputs(T, this.maxBlocksPerSeq), this.acts, this.cache);
      this.logitsArgmax(rec, 0, Math.min(T, this.logitRowsCap));
      // A decode step's LM head reads its rows in place (see execute).
      if (T <= this.logitRowsCap) this.logitsArgmax(rec, 0, T, null, false, true);
      rec.discard();
    }
    const clear = new Recorder(this.ctx, 'warmup.clear');
    for (const t of this.stepTensors()) clear.clear(t.buffer);
    clear.submit();
    await this.ctx.finish();
  }

  /**
   * Records the LM head over S rows of one chunk of sample rows (at byte `at` of the input buffer's sampleRows
   * section), the grammar bitmasks of its constrained rows, and their argmax into sampledIds at the same byte offset.
   */
  private logitsArgmax(rec: Recorder, at: number, S: number, masks: { rows: Tensor; mask: Tensor; M: number } | null = null, headDone = false, inOrder = false): void {
    const cap = this.logitRowsCap;
    if (!headDone) this.model.logits(rec, inOrder ? null : this.view(this.layout.sampleRows + at, cap, 'u32'), S, this.acts);
    if (masks) ops.tokenBitmask(rec, this.acts.logits, masks.rows, masks.mask, masks.M, this.config.vocabSize);
    ops.argmax(rec, this.acts.logits, { buffer: this.sampledIds, offset: at, shape: [cap], dtype: 'u32' }, S, this.config.vocabSize);
  }

  /** Uploads the bitmasks of logits rows `rows` (Int32Array [ceil(V / 32)] each) for ops.tokenBitmask. */
  private uploadMasks(rows: readonly number[], masks: readonly Int32Array[]): { rows: Tensor; mask: Tensor; M: number } {
    const M = rows.length;
    const W = Math.ceil(this.config.vocabSize / 32);
    const rowsBytes = alignUp(M * 4);
    const size = rowsBytes + M * W * 4;
    if (!this.maskBuffer || this.maskBuffer.size < size) {
      this.maskBuffer?.destroy();
      this.maskBuffer = this.ctx.device.createBuffer({ label: 'step.tokenBitmask', size: alignUp(size, 1 << 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    }
    const data = new Uint32Array(size / 4);
    data.set(rows);
    masks.forEach((m, k) => data.set(new Uint32Array(m.buffer, m.byteOffset, W), rowsBytes / 4 + k * W));
    this.ctx.device.queue.writeBuffer(this.maskBuffer, 0, data);
    return { rows: { buffer: this.maskBuffer, offset: 0, shape: [M], dtype: 'u32' }, mask: { buffer: this.maskBuffer, offset: rowsBytes, shape: [M * W], dtype: 'u32' }, M };
  }

  /** The KV cache and activation tensors, which live as long as the runner. */
  private stepTensors(): Tensor[] {
    const { moe, ...acts } = this.acts;
    return [...this.cache.k, ...this.cache.v, ...Object.values(acts), ...(moe ? Object.values(moe) : [])];
  }

  /**
   * The candidates' fallback: rows `rowsInChunk` of acts.logits (the step's only chunk, still there) copied whole
   * and sampled on the CPU. Their generators are untouched so far, so the tokens are what the full path gives.
   */
  private async sampleWholeRows(rowsInChunk: readonly number[], reqs: SamplerRequest[]): Promise<SampleOut[]> {
    const V = this.config.vocabSize;
    const rowBytes = V * 4;
    const size = rowsInChunk.length * rowBytes;
    const staging = this.stagingBuffer(size, 2);
    const rec = new Recorder(this.ctx, 'step.fallback');
    rowsInChunk.forEach((j, k) => rec.copy(this.acts.logits.buffer, j * rowBytes, staging, k * rowBytes, rowBytes));
    rec.submit();
    await staging.mapAsync(GPUMapMode.READ, 0, size);
    try {
      const mapped = staging.getMappedRange(0, size);
      return this.sampler.sample(rowsInChunk.map((_, k) => new Float32Array(mapped, k * rowBytes, V)), reqs);
    } finally {
      staging.unmap();
    }
  }

  /**
   * Copy-on-write: duplicates KV blocks (all layers) before the step writes to them. WebGPU forbids a copy within
   * one buffer, so blocks go out to a scratch buffer and back.
   */
  private copyBlocks(rec: Recorder, copies: readonly (readonly [number, number])[]): void {
    if (copies.length === 0) return;
    const { config: cfg, cache } = this;
    const bytes = cache.blockSize * cfg.numKvHeads * cfg.headDim * (this.limits.kvDtype === 'f16' ? 2 : 4);
    const buffers = [...cache.k, ...cache.v].map((t) => t.buffer);
    const scratch = this.ctx.scratchBuffer('kv-copy-on-write', copies.length * buffers.length * bytes);
    let at = 0;
    for (const [src] of copies) for (const b of buffers) rec.copy(b, src * bytes, scratch, (at += bytes) - bytes, bytes);
    at = 0;
    for (const [, dst] of copies) for (const b of buffers) rec.copy(scratch, (at += bytes) - bytes, b, dst * bytes, bytes);
  }

  private stagingBuffer(size: number, turn: number): GPUBuffer {
    let buffer = this.stagings[turn];
    if (!buffer || buffer.size < size) {
      buffer?.destroy();
      const bytes = alignUp(Math.max(size, 1 << 16), 1 << 16);
      buffer = this.ctx.device.createBuffer({ label: 'step.staging', size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      this.stagings[turn] = buffer;
    }
    return buffer;
  }

  dispose(): void {
    this.inputs.destroy();
    this.sampledIds.destroy();
    this.maskBuffer?.destroy();
    this.candParams.buffer.destroy();
    this.candidates.buffer.destroy();
    for (const b of this.stagings) b?.destroy();
    for (const t of this.stepTensors()) t.buffer.destroy();
    this.ctx.destroy();
  }
}

/**
 * The engine's executor as the WebGPU runner (tests and benchmarks reach its GPU context, step graphs and
 * sampling switches); throws for any other backend.
 */
export function gpuRunnerOf(engine: { runner: Executor }): GpuModelRunner {
  if (!(engine.runner instanceof GpuModelRunner)) throw new Error('the engine does not run on the WebGPU runner');
  return engine.runner;
}
