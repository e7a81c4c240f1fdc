/**
 * The decoder-only transformer the families compose (src/models/<family>.ts: Llama, Qwen2, Qwen3, Mistral, Phi-3,
 * OPT, GPT-2). The config decides the variations: RMSNorm or LayerNorm, pre- or post-norm, rotary or learned
 * positions, biases, q/k norm, gated or plain MLP, sliding window. Weight matrices are LinearWeights (any storage
 * format: layers/linear.ts), multiplied through their LinearMethod.
 *
 * One forward runs a flat batch of T tokens from many sequences (prompt chunks and decode steps mixed):
 *
 *   x = embed(ids) [+ pos_embed(positions + offset)]                      x: [T, H]
 *   for each layer:
 *     h = pre ? norm1(x) : x
 *     qkv = h Wqkv^T + b                                                  qkv: [T, (nH + 2 nKv) D]
 *     qkv = qk_norm(qkv); qkv = rope(qkv, positions)                      (when the model has them)
 *     cache[slot(t)] = k, v;  a = paged_attention(q, cache, block tables) a: [T, nH D]
 *     x = x + a Wo^T + bo;  post-norm: x = norm1(x)
 *     h = pre ? norm2(x) : x
 *     u = h Wup^T + bu;  m = gated ? act(gate) * up : act(u)              u: [T, 2I | I], m: [T, I]
 *     x = x + m Wdown^T + bd;  post-norm: x = norm2(x)
 *   xs = final_norm(x[rows to sample])   (logits(), per chunk of rows; x itself when they are its first S rows)  xs: [S, H]
 *   logits = xs Wlm^T                                                     logits: [S, V]
 *
 * Per-step cost at decode is mostly per dispatch, so neighbouring work is fused into the projections (see
 * ops.linear): a pre-norm RMSNorm runs inside the projection that reads it, act(gate) * up inside the gate/up
 * projection, the residual adds inside the o and down projections, and rope with the KV-cache write inside the qkv
 * projection where it runs on the GEMV (decode; else they are one dispatch of their own). A Llama layer's decode
 * step is then 5 dispatches: qkv + rope + cache, attention, o, gate/up, down, and a sixth on GPUs where attention
 * splits its keys: the combine of the pieces.
 */
import { ropeInvFreq, type LayerType, type ModelConfig, type RopeConfig } from '../config/model-config.js';
import type { GpuContext } from '../gpu/context.js';
import type { Recorder } from '../gpu/recorder.js';
import { uploadTensor, type Tensor } from '../gpu/tensor.js';
import { embed, linear, type DenseWeight, type LinearWeight } from '../layers/linear.js';
import type { ExpertWeights } from '../ops/moe.js';
import * as ops from '../ops/index.js';
import type { QkvLayout } from '../ops/index.js';

export interface Norm {
  weight: Tensor; // f32 [H]
  bias: Tensor | null; // f32 [H] (LayerNorm)
}

export interface LayerWeights {
  attnNorm: Norm;
  qkv: LinearWeight; // [(nH + 2 nKv) D, H]
  qkvBias: Tensor | null; // [(nH + 2 nKv) D]
  qNorm: Tensor | null; // [D] (Qwen3)
  kNorm: Tensor | null; // [D]
  o: LinearWeight; // [H, nH D]
  oBias: Tensor | null; // [H]
  mlpNorm: Norm;
  postAttnNorm: Tensor | null; // [H]: the attention output's RMSNorm before the residual add (cfg.postNorms)
  postMlpNorm: Tensor | null; // [H]: the MLP output's likewise
  moe: MoeWeights | null; // a sparse MLP in place of up/down (cfg.moe.sparseLayers)
  up: LinearWeight; // gated: [2I, H] (gate rows then up rows); plain: [I, H]
  upBias: Tensor | null;
  down: LinearWeight; // [H, I]
  downBias: Tensor | null; // [H]
}

/** A mixture-of-experts MLP's weights. */
export interface MoeWeights {
  router: LinearWeight; // [E, H]
  gateUp: ExpertWeights; // E x [2I, H]
  down: ExpertWeights; // E x [H, I]
  /** Qwen2-MoE's shared expert: up [2Is, H] (gate rows then up rows), down [H, Is], gate [1, H]. */
  shared: { up: LinearWeight; down: LinearWeight; gate: LinearWeight } | null;
}

export interface ModelWeights {
  embed: LinearWeight; // [V, H]
  positions: LinearWeight | null; // [maxPositions + offset, H] (OPT, GPT-2)
  projectIn: LinearWeight | null; // [H, P]: embeddings of width P to the stream (OPT word_embed_proj_dim)
  projectOut: LinearWeight | null; // [P, H]: the stream back to P before the LM head
  finalNorm: Norm | null;
  lmHead: LinearWeight; // [V, H]; the same object as `embed` when tied
  layers: LayerWeights[];
}

/** The paged KV cache: per layer, keys and values [numBlocks, blockSize, nKv, D]. */
export interface KVCache {
  numBlocks: number;
  blockSize: number;
  k: Tensor[];
  v: Tensor[];
}

/** Per-step inputs, already on the GPU (written by the model runner). */
export interface ForwardInputs {
  T: number; // tokens in this step
  ids: Tensor; // u32 [T]
  positions: Tensor; // u32 [T]
  positionIds: Tensor | null; // u32 [T]: positions + learned offset (OPT: 2)
  seqIdx: Tensor; // u32 [T]: row of the token's sequence in blockTables
  slotMapping: Tensor; // i32 [T]: KV slot of each token
  blockTables: Tensor; // u32 [numSeqs, maxBlocksPerSeq]
  maxBlocksPerSeq: number;
  tiles?: { table: Tensor; count: number }; // the query tiles of a prompt-sized step (ops.attentionTiles)
}

/** Activation buffers sized for the largest step; reused by every forward. */
export interface Activations {
  x: Tensor; // [maxT, H] residual stream
  h: Tensor; // [maxT, H] normed input / projection output
  qkv: Tensor; // [maxT, (nH + 2 nKv) D]
  attn: Tensor; // [maxT, nH D]
  up: Tensor; // [maxT, 2I | I]
  act: Tensor; // [maxT, I]
  xs: Tensor; // [maxS, H] rows to sample
  xsNorm: Tensor; // [maxS, H]
  logits: Tensor; // f32 [maxS, V]
  /** Mixture-of-experts scratch (cfg.moe): router logits f32 [maxT, E], top-K ids u32 and weights f32 [maxT, K], the shared expert's output f32 [maxT, H]. */
  moe?: { logits: Tensor; ids: Tensor; weights: Tensor; shared: Tensor };
}

export class Decoder {
  readonly layout: QkvLayout;
  readonly qkvDim: number;
  readonly upDim: number;

  /** Each layer's attention variant: its window and rotary table (null: no rope). */
  private readonly layerAttn: { slidingWindow: number | null; rope: { invFreq: Tensor; cfg: RopeConfig } | null }[];

  constructor(
    ctx: GpuContext,
    readonly cfg: ModelConfig,
    readonly weights: ModelWeights,
  ) {
    // Rotary inverse frequencies, f32 [rotaryDim / 2], one table per rope config the layers use.
    const table = (rope: RopeConfig, label: string) => {
      const invFreq = ropeInvFreq({ rope });
      return { invFreq: uploadTensor(ctx, invFreq, [invFreq.length], 'f32', label), cfg: rope };
    };
    const global = cfg.rope ? table(cfg.rope, 'rope.invFreq') : null;
    const local = cfg.localRope ? table(cfg.localRope, 'rope.invFreq.local') : null;
    const types: LayerType[] = cfg.layerTypes ?? Array.from({ length: cfg.numLayers }, () => ({ slidingWindow: cfg.slidingWindow, rope: 'global' }));
    this.layerAttn = types.map((t) => ({ slidingWindow: t.slidingWindow, rope: t.rope === 'global' ? global : t.rope === 'local' ? local : null }));
    this.layout = { numHeads: cfg.numHeads, numKvHeads: cfg.numKvHeads, headDim: cfg.headDim };
    this.qkvDim = (cfg.numHeads + 2 * cfg.numKvHeads) * cfg.headDim;
    this.upDim = cfg.gatedMlp ? 2 * cfg.intermediateSize : cfg.intermediateSize;
  }

  /** Records the layers for one step; the final hidden states [T, H] are left in `a.x`. */
  forward(rec: Recorder, inp: ForwardInputs, a: Activations, cache: KVCache): void {
    const { cfg, weights: w } = this;
    const { T } = inp;
    const H = cfg.hiddenSize;
    if (w.projectIn) {
      // OPT-350m: embeddings [T, P] (in h, which is at least as wide) projected to the stream [T, H].
      embed(rec, inp.ids, w.embed, a.h, T);
      linear(rec, a.h, w.projectIn, null, a.x, T);
    } else {
      embed(rec, inp.ids, w.embed, a.x, T, false, cfg.embedScale ?? 1);
    }
    if (w.positions && inp.positionIds) embed(rec, inp.positionIds, w.positions, a.x, T, true);

    // True when the previous block's epilogue left x normalised for the next block in `a.h` (see residual).
    let normed = false;
    for (let l = 0; l < w.layers.length; l++) {
      const L = w.layers[l];
      // Attention block.
      const qkNorm = L.qNorm && L.kNorm ? { q: L.qNorm, k: L.kNorm } : null;
      // With rope and no q/k norm, the projection's GEMV rotates and writes the cache itself (rope), or else
      // ropeCacheKV adds up its split-K sums (deferSplit).
      const qkvIn = normed ? a.h : this.normIn(rec, a, L.attnNorm, T);
      const { rope, slidingWindow } = this.layerAttn[l];
      const ropeCache: ops.RopeCacheWrite | undefined =
        rope && !qkNorm
          ? { positions: inp.positions, invFreq: rope.invFreq, slotMapping: inp.slotMapping, kCache: cache.k[l], vCache: cache.v[l], layout: this.layout, rotaryDim: rope.cfg.rotaryDim, scaling: rope.cfg.attentionScaling ?? 1 }
          : undefined;
      const qkvOpts = { ...(normed ? {} : this.normOpts(L.attnNorm)), deferSplit: !!ropeCache, rope: ropeCache };
      const { split, roped } = linear(rec, qkvIn, L.qkv, L.qkvBias, a.qkv, T, qkvOpts);
      if (qkNorm) ops.qkNorm(rec, a.qkv, qkNorm.q, qkNorm.k, T, this.layout, cfg.normEps, cfg.qkNormMode);
      if (roped) {
        // The projection's epilogue rotated q and k and wrote the cache.
      } else if (rope) {
        const { rotaryDim, attentionScaling } = rope.cfg;
        ops.ropeCacheKV(rec, a.qkv, inp.positions, rope.invFreq, inp.slotMapping, cache.k[l], cache.v[l], T, this.layout, rotaryDim, attentionScaling ?? 1, split);
      } else {
        ops.cacheKV(rec, a.qkv, inp.slotMapping, cache.k[l], cache.v[l], T, this.layout);
      }
      ops.pagedAttention(rec, a.qkv, cache.k[l], cache.v[l], inp, a.attn, T, this.layout, {
        scale: cfg.attnScale ?? 1 / Math.sqrt(cfg.headDim),
        slidingWindow,
        softcap: cfg.attnSoftcap,
        blockSize: cache.blockSize,
        maxBlocksPerSeq: inp.maxBlocksPerSeq,
      });
      normed = this.residual(rec, a, a.attn, L.o, L.oBias, L.attnNorm, T, L.mlpNorm, L.postAttnNorm);

      // MLP block.
      if (L.moe) {
        this.sparseMlp(rec, a, L, L.moe, T, normed);
        normed = false;
        continue;
      }
      const mlpIn = normed ? a.h : this.normIn(rec, a, L.mlpNorm, T);
      const mlpOpts = normed ? {} : this.normOpts(L.mlpNorm);
      if (cfg.gatedMlp) {
        linear(rec, mlpIn, L.up, L.upBias, a.act, T, { ...mlpOpts, gated: gatedActName(cfg.act) });
      } else {
        linear(rec, mlpIn, L.up, L.upBias, a.up, T, mlpOpts);
        ops.act(rec, a.up, a.act, T * cfg.intermediateSize, plainActName(cfg.act));
      }
      normed = this.residual(rec, a, a.act, L.down, L.downBias, L.mlpNorm, T, w.layers[l + 1]?.attnNorm, L.postMlpNorm);
    }
  }

  /**
   * Records the LM head for S token rows of the last forward: only they go through the final norm. `rows` null: the
   * first S token rows in order (a decode step samples each of its tokens), read in place without a gather.
   */
  logits(rec: Recorder, rows: Tensor /* u32 [S] */ | null, S: number, a: Activations): void {
    const w = this.weights;
    if (rows) ops.gatherRows(rec, a.x, rows, a.xs, S, this.cfg.hiddenSize);
    const xs = rows ? a.xs : a.x;
    const n = w.finalNorm;
    if (n && this.cfg.norm === 'rms') {
      linear(rec, xs, w.lmHead, null, a.logits, S, { rmsNorm: { weight: n.weight, eps: this.cfg.normEps } });
      this.capLogits(rec, S, a);
      return;
    }
    let last = n ? this.norm(rec, xs, n, a.xsNorm, S) : xs;
    if (w.projectOut) {
      const out = last === a.xs ? a.xsNorm : a.xs;
      linear(rec, last, w.projectOut, null, out, S);
      last = out;
    }
    linear(rec, last, w.lmHead, null, a.logits, S);
    this.capLogits(rec, S, a);
  }

  /** The final logit soft-cap, if the model has one, over the S rows of logits. */
  private capLogits(rec: Recorder, S: number, a: Activations): void {
    if (this.cfg.finalSoftcap) ops.scaleSoftcap(rec, a.logits, S * this.cfg.vocabSize, { softcap: this.cfg.finalSoftcap });
  }

  /**
   * x += the routed experts' MLPs of norm(x), weighted by the router (and the shared expert's, gated): HF's sparse MoE
   * blocks. `normed`: a.h already holds norm(x) (the o projection's epilogue).
   */
  private sparseMlp(rec: Recorder, a: Activations, L: LayerWeights, mw: MoeWeights, T: number, normed: boolean): void {
    const { cfg } = this;
    const m = cfg.moe!;
    const s = a.moe!;
    if (!normed) ops.rmsNorm(rec, a.x, L.mlpNorm.weight, a.h, T, cfg.hiddenSize, cfg.normEps);
    linear(rec, a.h, mw.router, null, s.logits, T);
    ops.moeRoute(rec, s.logits, s.ids, s.weights, T, m.numExperts, m.topK, m.normTopK);
    if (mw.shared) {
      linear(rec, a.h, mw.shared.up, null, a.act, T, { gated: gatedActName(cfg.act) });
      linear(rec, a.act, mw.shared.down, null, s.shared, T);
      ops.sharedExpertGate(rec, a.h, mw.shared.gate as DenseWeight, s.shared, a.x, T);
    }
    ops.fusedMoe(rec, a.h, s.ids, s.weights, mw.gateUp, mw.down, a.x, T, m.topK, { act: gatedActName(cfg.act) });
  }

  /**
   * A pre-norm block's input: with RMSNorm, the residual stream itself (linear normalises it on the fly, see
   * normOpts); with LayerNorm, its normalised copy in `a.h`; post-norm, the stream as is.
   */
  private normIn(rec: Recorder, a: Activations, n: Norm, T: number): Tensor {
    if (!this.cfg.preNorm || this.cfg.norm === 'rms') return a.x;
    return this.norm(rec, a.x, n, a.h, T);
  }

  /** linear's fused RMSNorm for a pre-norm block's input (nothing for LayerNorm or post-norm). */
  private normOpts(n: Norm): ops.LinearOptions {
    return this.cfg.preNorm && this.cfg.norm === 'rms' ? { rmsNorm: { weight: n.weight, eps: this.cfg.normEps } } : {};
  }

  /**
   * x += input W^T + b (the block's output projection), then the post-norm (x = norm(x)) when the model has it; with
   * `post` (cfg.postNorms), x += rmsNorm(input W^T + b) * post instead. With pre-RMSNorm, the next block's norm `next`
   * rides along where linear can fuse it: returns true when a.h holds norm(x) for the next block.
   */
  private residual(rec: Recorder, a: Activations, input: Tensor, w: LinearWeight, b: Tensor | null, n: Norm, T: number, next?: Norm, post?: Tensor | null): boolean {
    const { cfg } = this;
    if (post) {
      // The block's output in h (free here: the block's input was read), then normalised into the stream.
      linear(rec, input, w, b, a.h, T);
      ops.postNormAdd(rec, a.x, a.h, post, T, cfg.hiddenSize, cfg.normEps);
      return false;
    }
    const fuse = next && cfg.preNorm && cfg.norm === 'rms';
    const normOut = fuse ? { weight: next.weight, eps: cfg.normEps, out: a.h } : undefined;
    const { normed } = linear(rec, input, w, b, a.x, T, { residual: true, normOut });
    if (!cfg.preNorm) this.postNorm(rec, a, n, T);
    return normed;
  }

  /** Post-LN (OPT with do_layer_norm_before false): x = norm(x), through h since LayerNorm is not in place. */
  private postNorm(rec: Recorder, a: Activations, n: Norm, T: number): void {
    this.norm(rec, a.x, n, a.h, T);
    rec.copy(a.h.buffer, a.h.offset, a.x.buffer, a.x.offset, T * this.cfg.hiddenSize * 4);
  }

  private norm(rec: Recorder, x: Tensor, n: Norm, out: Tensor, rows: number): Tensor {
    const { hiddenSize: H, normEps: eps } = this.cfg;
    if (this.cfg.norm === 'rms') ops.rmsNorm(rec, x, n.weight, out, rows, H, eps);
    else ops.layerNorm(rec, x, n.weight, n.bias!, out, rows, H, eps);
    return out;
  }
}

function gatedActName(act: ModelConfig['act']): 'silu' | 'gelu' | 'gelu_tanh' {
  if (act === 'silu') return 'silu';
  if (act === 'gelu') return 'gelu';
  return 'gelu_tanh';
}

function plainActName(act: ModelConfig['act']): 'relu' | 'gelu' | 'gelu_new' {
  if (act === 'silu') throw new Error('a plain SiLU MLP is not supported');
  return act;
}
