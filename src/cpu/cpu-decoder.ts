/**
 * The decoder forward on the CPU, in cpu.wasm (assembly/cpu/): the same math as models/decoder.ts, for the dense
 * config-driven families (Llama, Qwen2, Qwen3, Mistral, Phi-3, Granite, Gemma 2/3, OLMo 2, SmolLM3, OPT, GPT-2):
 *
 *   x = embed(ids) * embedScale [+ pos_embed(positions + offset)]            x: [T, H]
 *   per layer:
 *     h = pre ? norm1(x) : x;  qkv = h Wqkv^T + b;  qk_norm;  rope(q, k)      qkv: [T, (nH + 2 nKv) D]
 *     cache[slot(t)] = k, v;  a = paged_attention(q, cache, block tables)    a: [T, nH D]
 *     x += a Wo^T + bo  (post norms: x += rmsnorm(a Wo^T + bo) post);  post-LN: x = norm1(x)
 *     h = pre ? norm2(x) : x;  u = h Wup^T + bu;  m = gated ? act(gate) * up : act(u)
 *     x += m Wdown^T + bd  (likewise)
 *   logits = final_norm(x[rows]) [Wout] Wlm^T, soft-capped
 *
 * The KV cache is f32, per layer K and V [numBlocks, blockSize, nKv, D], in wasm memory.
 */
import type { LayerType, ModelConfig } from '../config/model-config.js';
import { ropeInvFreq } from '../config/model-config.js';
import { actBytes, CPU_ACTS, CPU_FORMATS, cpuBlockBytes, type CpuKernels } from './cpu-wasm.js';
import type { CpuMatrix, CpuModelWeights, CpuNorm } from './cpu-weights.js';

/** Sizes the decoder's buffers are made for. */
export interface CpuDecoderSizes {
  maxTokens: number;
  maxSeqs: number;
  maxBlocksPerSeq: number;
  maxModelLen: number;
  numBlocks: number;
  blockSize: number;
  /** Rows of logits one LM-head pass computes. */
  logitRows: number;
}

/** One step's flat batch, as the runner lays it out in the decoder's input buffers (ids, positions, ...). */
export interface CpuStep {
  T: number;
  /** Block-table width of this step (the longest sequence's blocks). */
  maxBlocks: number;
}

/**
 * The decoder's buffers, in 4-byte elements each, as the constructor allocates them: the step's inputs and
 * activations (maxTokens rows; logitRows rows for the LM head's), one K and one V cache of kvLayer per layer, and the
 * rotary tables. The runner plans cpu.wasm's memory from these before it loads anything (cpuDecoderBytes).
 */
export function cpuDecoderBuffers(cfg: ModelConfig, sizes: CpuDecoderSizes) {
  const { hiddenSize: H, numHeads: nH, numKvHeads: nKv, headDim: D, intermediateSize: I, vocabSize: V } = cfg;
  const P = cfg.wordEmbedProjDim ?? 0;
  const T = sizes.maxTokens;
  const rows = sizes.logitRows;
  return {
    ids: T,
    positions: T,
    positionIds: T,
    seqIdx: T,
    slots: T,
    tables: sizes.maxSeqs * sizes.maxBlocksPerSeq,
    x: T * H,
    h: T * Math.max(H, nH * D, P),
    qkv: T * (nH + 2 * nKv) * D,
    attn: T * nH * D,
    up: T * (cfg.gatedMlp ? 2 * I : I),
    act: T * I,
    xs: rows * Math.max(H, P),
    xsOut: rows * Math.max(H, P),
    logits: rows * V,
    panel: 4 * Math.max(H, nH * D, I, P),
    acts: Math.ceil(actBytes(Math.max(T, rows), Math.max(H, nH * D, I, P)) / 4),
    scores: sizes.maxModelLen,
    cs: D,
    kvLayer: sizes.numBlocks * sizes.blockSize * nKv * D,
    ropeTables: [cfg.rope, cfg.localRope].filter((r) => r).map((rope) => ropeInvFreq({ rope: rope! }).length),
  };
}

/** Bytes of cpu.wasm's memory the decoder's buffers take: the KV cache, and the rest (activations, inputs, tables). */
export function cpuDecoderBytes(cfg: ModelConfig, sizes: CpuDecoderSizes): { kvCache: number; activations: number } {
  const { kvLayer, ropeTables, ...step } = cpuDecoderBuffers(cfg, sizes);
  const bytes = (count: number) => cpuBlockBytes(4 * Math.max(count, 4));
  return {
    kvCache: 2 * cfg.numLayers * bytes(kvLayer),
    activations: [...Object.values(step), ...ropeTables].reduce((sum, count) => sum + bytes(count), 0),
  };
}

export class CpuDecoder {
  readonly qkvDim: number;
  readonly upDim: number;
  // Inputs (i32): ids [maxT], positions [maxT] (of the rotary / attention), positionIds [maxT] (learned table rows),
  // seqIdx [maxT], slots [maxT], tables [maxSeqs, maxBlocksPerSeq].
  readonly ids: number;
  readonly positions: number;
  readonly positionIds: number;
  readonly seqIdx: number;
  readonly slots: number;
  readonly tables: number;
  // Activations (f32).
  private readonly x: number; // [maxT, H]
  private readonly h: number; // [maxT, max(H, nH D, P)]
  private readonly qkv: number; // [maxT, qkvDim]
  private readonly attn: number; // [maxT, nH D]
  private readonly up: number; // [maxT, upDim]
  private readonly act: number; // [maxT, I]
  private readonly xs: number; // [logitRows, max(H, P)]
  private readonly xsOut: number; // [logitRows, max(H, P)]
  readonly logits: number; // [logitRows, V]
  private readonly panel: number; // [4, widest K]: the GEMM's packed rows
  private readonly acts: number; // actBytes(maxT, widest K): a quantized matmul's 8-bit activations
  private readonly scores: number; // [maxModelLen]
  private readonly cs: number; // [rotaryDim]: cos, sin of a token
  /** KV cache: per layer K and V f32 [numBlocks, blockSize, nKv, D]. */
  readonly kCache: number[];
  readonly vCache: number[];
  /** Each layer's window and rotary table (pointer to f32 [R / 2], R, scaling) or null (NoPE). */
  private readonly layerAttn: { window: number; rope: { invFreq: number; R: number; scaling: number } | null }[];

  constructor(
    private readonly cpu: CpuKernels,
    readonly cfg: ModelConfig,
    readonly w: CpuModelWeights,
    readonly sizes: CpuDecoderSizes,
  ) {
    const n = cpuDecoderBuffers(cfg, sizes);
    this.qkvDim = (cfg.numHeads + 2 * cfg.numKvHeads) * cfg.headDim;
    this.upDim = cfg.gatedMlp ? 2 * cfg.intermediateSize : cfg.intermediateSize;
    const f = (count: number) => cpu.alloc(4 * Math.max(count, 4));
    this.ids = f(n.ids);
    this.positions = f(n.positions);
    this.positionIds = f(n.positionIds);
    this.seqIdx = f(n.seqIdx);
    this.slots = f(n.slots);
    this.tables = f(n.tables);
    this.x = f(n.x);
    this.h = f(n.h);
    this.qkv = f(n.qkv);
    this.attn = f(n.attn);
    this.up = f(n.up);
    this.act = f(n.act);
    this.xs = f(n.xs);
    this.xsOut = f(n.xsOut);
    this.logits = f(n.logits);
    this.panel = f(n.panel);
    this.acts = f(n.acts);
    this.scores = f(n.scores);
    this.cs = f(n.cs);
    this.kCache = Array.from({ length: cfg.numLayers }, () => f(n.kvLayer));
    this.vCache = Array.from({ length: cfg.numLayers }, () => f(n.kvLayer));
    // The caches start zeroed without a write: cpu.wasm's blocks are fresh pages of memory.grow, never reused
    // (assembly/cpu/heap.ts), so pages no token reaches stay uncommitted.
    const table = (rope: NonNullable<ModelConfig['rope']>) => {
      const inv = ropeInvFreq({ rope });
      const p = f(inv.length);
      cpu.f32().set(inv, p / 4);
      return { invFreq: p, R: rope.rotaryDim, scaling: rope.attentionScaling ?? 1 };
    };
    const global = cfg.rope ? table(cfg.rope) : null;
    const local = cfg.localRope ? table(cfg.localRope) : null;
    const types: LayerType[] = cfg.layerTypes ?? Array.from({ length: cfg.numLayers }, () => ({ slidingWindow: cfg.slidingWindow, rope: 'global' }));
    this.layerAttn = types.map((t) => ({ window: t.slidingWindow ?? 0, rope: t.rope === 'global' ? global : t.rope === 'local' ? local : null }));
  }

  /** Bytes of one KV block of one layer's K (or V). */
  get blockBytes(): number {
    return this.sizes.blockSize * this.cfg.numKvHeads * this.cfg.headDim * 4;
  }

  /** out[t, :N] (+)= x[t, :K] W^T for the matrix's every segment (each its own columns of out). */
  private linear(m: CpuMatrix, out: number, ldo: number, x: number, ldx: number, T: number, acc = false): void {
    const k = this.cpu;
    for (const s of m.segments) k.linear(CPU_FORMATS[s.format], out + 4 * s.rowStart, ldo, x, ldx, s.ptr, s.rowBytes, T, s.rows, m.cols, acc, this.panel, this.acts);
  }

  /** Rows `ids` of an embedding-like matrix into out [T, cols] (added to out with `add`, through h). */
  private gather(m: CpuMatrix, idsPtr: number, T: number, out: number, add: boolean): void {
    const k = this.cpu.k;
    const ids = this.cpu.i32();
    const C = m.cols;
    for (let t = 0; t < T; t++) {
      const row = ids[idsPtr / 4 + t];
      const s = m.segments.find((g) => row >= g.rowStart && row < g.rowStart + g.rows)!;
      k.dequantRow(CPU_FORMATS[s.format], add ? this.h + 4 * t * C : out + 4 * t * C, s.ptr, s.rowBytes, s.rows, row - s.rowStart, C);
    }
    if (add) k.axpby(out, 1, this.h, 1, T * C);
  }

  private norm(n: CpuNorm, out: number, x: number, rows: number): void {
    const { hiddenSize: H, normEps: eps } = this.cfg;
    if (this.cfg.norm === 'rms') this.cpu.k.rmsNorm(out, H, x, H, n.weight, rows, H, eps);
    else this.cpu.k.layerNorm(out, H, x, H, n.weight, n.bias!, rows, H, eps);
  }

  /** The layers over the step's T tokens (inputs already written); the final hidden states are left in x. */
  forward(step: CpuStep): void {
    const { cfg, w, cpu } = this;
    const k = cpu.k;
    const { T } = step;
    const { hiddenSize: H, numHeads: nH, numKvHeads: nKv, headDim: D, intermediateSize: I } = cfg;
    const qkvDim = this.qkvDim;
    if (w.projectIn) {
      this.gather(w.embed, this.ids, T, this.h, false);
      this.linear(w.projectIn, this.x, H, this.h, w.projectIn.cols, T);
    } else {
      this.gather(w.embed, this.ids, T, this.x, false);
      if (cfg.embedScale !== undefined && cfg.embedScale !== 1) k.axpby(this.x, cfg.embedScale, this.x, 0, T * H);
    }
    if (w.positions) this.gather(w.positions, this.positionIds, T, this.x, true);

    for (let l = 0; l < w.layers.length; l++) {
      const L = w.layers[l];
      // Attention block.
      let inp = this.x;
      if (cfg.preNorm) {
        this.norm(L.attnNorm, this.h, this.x, T);
        inp = this.h;
      }
      this.linear(L.qkv, this.qkv, qkvDim, inp, H, T);
      if (L.qkvBias !== null) k.addBias(this.qkv, qkvDim, L.qkvBias, T, qkvDim);
      if (L.qNorm !== null && L.kNorm !== null) {
        const perHead = cfg.qkNormMode !== 'projection';
        for (let t = 0; t < T; t++) {
          const row = this.qkv + 4 * t * qkvDim;
          if (perHead) {
            k.rmsNorm(row, D, row, D, L.qNorm, nH, D, cfg.normEps);
            k.rmsNorm(row + 4 * nH * D, D, row + 4 * nH * D, D, L.kNorm, nKv, D, cfg.normEps);
          } else {
            k.rmsNorm(row, nH * D, row, nH * D, L.qNorm, 1, nH * D, cfg.normEps);
            k.rmsNorm(row + 4 * nH * D, nKv * D, row + 4 * nH * D, nKv * D, L.kNorm, 1, nKv * D, cfg.normEps);
          }
        }
      }
      const { rope, window } = this.layerAttn[l];
      if (rope) k.rope(this.qkv, qkvDim, this.positions, rope.invFreq, T, nH + nKv, D, rope.R, rope.scaling, this.cs);
      this.writeCache(l, T);
      this.cpu.pagedAttention(
        this.attn, this.qkv, qkvDim, this.kCache[l], this.vCache[l], this.tables, step.maxBlocks, this.seqIdx, this.positions,
        T, nH, nKv, D, this.sizes.blockSize, cfg.attnScale ?? 1 / Math.sqrt(D), cfg.attnSoftcap ?? 0, window, this.scores,
      );
      this.residual(this.attn, nH * D, L.o, L.oBias, L.postAttnNorm, L.attnNorm, T);

      // MLP block.
      inp = this.x;
      if (cfg.preNorm) {
        this.norm(L.mlpNorm, this.h, this.x, T);
        inp = this.h;
      }
      this.linear(L.up, this.up, this.upDim, inp, H, T);
      if (L.upBias !== null) k.addBias(this.up, this.upDim, L.upBias, T, this.upDim);
      let m = this.up;
      if (cfg.gatedMlp) {
        this.cpu.gatedAct(CPU_ACTS[gatedAct(cfg.act)], this.act, I, this.up, this.upDim, T, I);
        m = this.act;
      } else {
        k.actInPlace(CPU_ACTS[cfg.act === 'gelu_new' ? 'gelu_tanh' : cfg.act === 'silu' ? 'silu' : cfg.act], this.up, T * I);
      }
      this.residual(m, I, L.down, L.downBias, L.postMlpNorm, L.mlpNorm, T);
    }
  }

  /** x += inp W^T + b; with a post norm x += rmsnorm(inp W^T + b) post; post-LN models then normalise x. */
  private residual(inp: number, ldi: number, W: CpuMatrix, b: number | null, post: number | null, n: CpuNorm, T: number): void {
    const { cfg, cpu } = this;
    const k = cpu.k;
    const H = cfg.hiddenSize;
    if (post !== null) {
      this.linear(W, this.h, H, inp, ldi, T);
      if (b !== null) k.addBias(this.h, H, b, T, H);
      k.rmsNorm(this.h, H, this.h, H, post, T, H, cfg.normEps);
      k.axpby(this.x, 1, this.h, 1, T * H);
      return;
    }
    this.linear(W, this.x, H, inp, ldi, T, true);
    if (b !== null) k.addBias(this.x, H, b, T, H);
    if (!cfg.preNorm) this.norm(n, this.x, this.x, T);
  }

  /** Copies each token's k and v heads (k rotated) into its KV slot (slots < 0: none). */
  private writeCache(l: number, T: number): void {
    const { numHeads: nH, numKvHeads: nKv, headDim: D } = this.cfg;
    this.cpu.k.writeKv(this.kCache[l], this.vCache[l], this.qkv, this.qkvDim, nH * D, nKv * D, this.slots, T);
  }

  /**
   * The logits of token rows `rows` of the last forward (at most logitRows): final norm, projection out, LM head,
   * soft-cap. Returns a pointer to f32 [rows.length, V] (valid until the next call).
   */
  logitsOf(rows: readonly number[]): number {
    const { cfg, w, cpu } = this;
    const k = cpu.k;
    const H = cfg.hiddenSize;
    const S = rows.length;
    const f32 = cpu.f32();
    rows.forEach((r, i) => f32.copyWithin(this.xs / 4 + i * H, this.x / 4 + r * H, this.x / 4 + (r + 1) * H));
    let last = this.xs;
    if (w.finalNorm) {
      this.norm(w.finalNorm, this.xsOut, this.xs, S);
      last = this.xsOut;
    }
    let K = H;
    if (w.projectOut) {
      const out = last === this.xs ? this.xsOut : this.xs;
      this.linear(w.projectOut, out, w.projectOut.rows, last, H, S);
      last = out;
      K = w.projectOut.rows;
    }
    this.linear(w.lmHead, this.logits, cfg.vocabSize, last, K, S);
    if (cfg.finalSoftcap) k.softcap(this.logits, S * cfg.vocabSize, cfg.finalSoftcap);
    return this.logits;
  }

  /** Copy-on-write: KV blocks src -> dst in every layer. */
  copyBlocks(copies: readonly (readonly [number, number])[]): void {
    const f32 = this.cpu.f32();
    const n = this.blockBytes / 4;
    for (const [src, dst] of copies) {
      for (const base of [...this.kCache, ...this.vCache]) f32.copyWithin(base / 4 + dst * n, base / 4 + src * n, base / 4 + (src + 1) * n);
    }
  }
}

function gatedAct(act: ModelConfig['act']): 'silu' | 'gelu' | 'gelu_tanh' {
  if (act === 'silu') return 'silu';
  if (act === 'gelu') return 'gelu';
  return 'gelu_tanh';
}
