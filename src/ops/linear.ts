/**
 * linear: y = x W^T + b, with W a {@link Weight} in HF [out, in] layout, f32 or f16, and the elementwise work
 * around it fused in where the kernel allows (see {@link LinearOptions}): the input's RMSNorm, a gated MLP's
 * act(gate) * up, a residual add.
 *
 * Four kernels, picked by the token count T, the shapes and the device (ctx.tuning, ctx.subgroupMatrix):
 * - GEMV (`shaders/linear.gemv.wgsl`, T <= tuning.gemvMaxTokens, K % 8 == 0): decode is memory bound, so each
 *   weight row is read once, in 16-byte chunks spread over tuning.gemvLanes threads, for up to
 *   tuning.gemvTokens tokens; RMSNorm, gating and the residual are fused, and so are the qkv projection's rope and
 *   KV-cache write (LinearOptions.rope, linear-rope.ts).
 * - subgroup matrices (`shaders/linear.mma.wgsl`, f16 weights (and block formats: layers/quant/ calls mmaLinear),
 *   T >= tuning.mmaMinTokens, when the device has
 *   chromium-experimental-subgroup-matrix): tensor cores on tiles of x (rounded to f16) and w staged in workgroup
 *   memory, products accumulated in f32; the tile shape per token count and weight shape comes from
 *   tuning.mmaTiles (src/ops/linear-mma.ts writes out each tile's kernel). When the tiles give fewer than
 *   tuning.mmaSplitWorkgroups workgroups, K is split across workgroups too: they write partial sums, and
 *   `shaders/linear.reduce.wgsl` adds them and applies the epilogue.
 * - shared-memory tiles (`shaders/linear.gemm.wgsl`, tuning.matmul 'shared', GPUs): a workgroup stages x and w
 *   tiles in shared memory and each thread accumulates a 4 x 4 block.
 * - register-blocked (`shaders/linear.tiled.wgsl`, tuning.matmul 'registers', CPU drivers, and any K): each thread
 *   keeps a tuning.tiledTokens x 4 block of outputs in registers and walks K with vec4 loads, no shared memory.
 * All of them fuse gating and the residual; the RMSNorm outside the GEMV is a separate rmsNorm dispatch into a
 * scratch tensor. A weight split into parts is one dispatch per part, each writing its column range of the output.
 */
import { paramsStruct, type BufferBinding, type Kernel, type KernelSource } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import type { MmaTile } from '../gpu/tuning.js';
import { bindTensor, type Tensor, type Weight } from '../gpu/tensor.js';
import threadLib from '../../shaders/lib/thread.wgsl';
import activationLib from '../../shaders/lib/activation.wgsl';
import linearLib from '../../shaders/lib/linear.wgsl';
import gemvLib from '../../shaders/lib/gemv.wgsl';
import gemvSource from '../../shaders/linear.gemv.wgsl';
import tiledSource from '../../shaders/linear.tiled.wgsl';
import gemmSource from '../../shaders/linear.gemm.wgsl';
import reduceSource from '../../shaders/linear.reduce.wgsl';
import reduceNormSource from '../../shaders/linear.reduce.norm.wgsl';
import workgroupSumLib from '../../shaders/lib/workgroup_sum.wgsl';
import { actCode, gatedAct, toHalf, type Activation } from './elementwise.js';
import { chunkPrelude, expectTensor, grid, laneSumKernel, weightPrelude, wholeBuffer } from './common.js';
import { rmsNorm } from './norm.js';
import { mmaKernelCode, mmaSharedBytes, mmaStepK } from './linear-mma.js';
import { GEMV_ROPE_BINDINGS, gemvRope, gemvRopeCode, gemvRopePrelude, withRopeParams, type GemvRope, type RopeCacheWrite } from './linear-rope.js';

/** Fused work around the product. */
export interface LinearOptions {
  /** RMSNorm each input row first: x[t, :] * weight / sqrt(mean(x[t, :]^2) + eps), weight f32 [K]. */
  rmsNorm?: { weight: Tensor; eps: number };
  /**
   * A gated MLP: W holds 2 I rows (the gate projection's, then the up projection's), and out[t, n] =
   * act(gate[t, n]) * up[t, n] for n < I, so out is [T, I].
   */
  gated?: Activation;
  /** Add into out (a residual): out[t, n] += result. */
  residual?: boolean;
  /**
   * Also write the RMSNorm of each finished output row into `out` (the next block's normalised input), when the
   * kernel can fuse it: the tensor-core path's split-K epilogue, which holds whole rows. `linear` returns whether
   * it did; if not, the caller normalises as usual (the GEMV fuses the norm into the next linear instead).
   */
  normOut?: RmsNormOut;
  /**
   * Leave the tensor-core path's split-K partial sums to the consumer instead of reducing them into out (one
   * dispatch less): `linear` returns them as `split` (then out is not written), when it splits K at all (one weight
   * part, no gating or residual). ropeCacheKV takes them.
   */
  deferSplit?: boolean;
  /**
   * Rotate the q and k heads of the output (a qkv projection) and write k and v into the KV cache, as ropeCacheKV
   * would after it: the GEMV does it in its epilogue (see linear-rope.ts), then q heads alone are written into out.
   * `linear` returns whether it did; if not, the caller runs ropeCacheKV.
   */
  rope?: RopeCacheWrite;
}

/** What linear left undone for its consumer: split-K partial sums (see LinearOptions.deferSplit). */
export interface SplitSums {
  /** f32 [splits, T, N]: split s's sums of output column n of token t at (s T + t) N + n. */
  part: Tensor;
  splits: number;
  /** f32 [N] to add to the sums, or null. */
  bias: Tensor | null;
}

/** linear's result: whether it wrote opts.normOut, the split sums it left (opts.deferSplit), whether it did opts.rope. */
export interface LinearResult {
  normed: boolean;
  split: SplitSums | null;
  roped: boolean;
}

/** A result with nothing fused for the caller to skip. */
export const notFused = (): LinearResult => ({ normed: false, split: null, roped: false });

/** An RMSNorm written after the epilogue: out[t, :] = y[t, :] / sqrt(mean(y[t, :]^2) + eps) * weight. */
export interface RmsNormOut {
  weight: Tensor;
  eps: number;
  out: Tensor;
}

type Path = 'gemv' | 'mma' | 'gemm' | 'tiled';
/** The chosen kernel, with its subgroup-matrix tile for 'mma'. */
type Choice = { path: 'mma'; tile: MmaTile } | { path: Exclude<Path, 'mma'>; tile: null };

/**
 * lib/linear.wgsl (every linear kernel and the split-K reduce): T tokens of K inputs; N output columns of this
 * dispatch (gated: gate rows); wStride elements between weight rows; outStride, out's row stride; colOffset, the
 * part's first row (0 when gated); hasBias (0 / 1); upOffset (gated: weight row of the up row of output column 0);
 * eps (linear.gemv's fused RMSNorm, linear.reduce.norm's normOut); kSplit (linear.mma: K per split, split-K across
 * workgroups when < K; see linear.reduce.wgsl).
 */
/**
 * One weight part's dispatch params (lib/linear.wgsl): a plain part writes its own row range of the output's N
 * columns; a gated weight (gatedRows > 0, one part) writes all gatedRows columns from its gate and up halves.
 */
export function partParams(part: { rowStart: number; rows: number }, wStride: number, T: number, K: number, N: number, gatedRows: number, hasBias: boolean, eps: number) {
  const cols = gatedRows > 0 ? gatedRows : part.rows; // output columns of this dispatch
  const colOffset = gatedRows > 0 ? 0 : part.rowStart;
  return { T, K, N: cols, wStride, outStride: N, colOffset, hasBias: hasBias ? 1 : 0, upOffset: gatedRows, eps, kSplit: K };
}

export const LINEAR_PARAMS = paramsStruct({
  T: 'u32',
  K: 'u32',
  N: 'u32',
  wStride: 'u32',
  outStride: 'u32',
  colOffset: 'u32',
  hasBias: 'u32',
  upOffset: 'u32',
  eps: 'f32',
  kSplit: 'u32',
});
const BINDINGS = ['read', 'read', 'read', 'write'] as const;

/** Tokens per GEMV workgroup: the fewest of 1, 2, 4, ... that covers T, at most tuning.gemvTokens. */
function gemvTokens(T: number, max: number): number {
  let tt = 1;
  while (tt < T && tt < max) tt *= 2;
  return tt;
}

/** Weight rows per GEMV row group: a gated one needs a gate and an up row at least, a roped one a rotary pair. */
const gemvRows = (tune: Recorder['ctx']['tuning'], f: Fusion, rope: GemvRope | null): number =>
  f.gated >= 0 || rope ? Math.max(2, tune.gemvRows) : tune.gemvRows;

export interface Fusion {
  norm: boolean;
  gated: number; // activation code, -1 when not gated
  residual: boolean;
}

/** The override constants of the fused epilogue (lib/linear.wgsl), shared by every linear kernel. */
export const fusionConstants = (f: Fusion) => ({ GATED: f.gated >= 0 ? 1 : 0, RESIDUAL: f.residual ? 1 : 0, ACT: Math.max(0, f.gated) });

/** The fusions in a pipeline key: n (RMSNorm), g<act> (gated), r (residual). */
export const fusionKey = (f: Fusion) => `${f.norm ? 'n' : ''}${f.gated >= 0 ? `g${f.gated}` : ''}${f.residual ? 'r' : ''}`;

/** GEMV threads per row group for rows of K: more for long rows (more loads in flight per row). */
const gemvLanes = (tune: Recorder['ctx']['tuning'], K: number): number => (K >= tune.gemvLongK ? tune.gemvLongLanes : tune.gemvLanes);

const ROPE_LINEAR_PARAMS = withRopeParams(LINEAR_PARAMS.fields);

/** The GEMV's params struct: LINEAR_PARAMS, extended for the fused rope (the dispatch passes the rope's values too). */
export const gemvParams = (rope: GemvRope | null) => (rope ? ROPE_LINEAR_PARAMS : LINEAR_PARAMS) as typeof LINEAR_PARAMS;

/**
 * Records one weight part's GEMV: `perGroup` output columns a workgroup (with the fused rope, rotary pairs: it
 * writes q/k/v and the cache), `tt` tokens a workgroup; bindings x, w, bias, norm weight, out (and rope's), then
 * `after`'s.
 */
export function runGemv(
  rec: Recorder, kernel: Kernel<typeof LINEAR_PARAMS.fields>, params: ReturnType<typeof partParams>, bindings: readonly BufferBinding[],
  perGroup: number, tt: number, rope: GemvRope | null, after: readonly BufferBinding[] = [],
): void {
  if (rope) {
    const [gx, gz] = grid(rec.ctx, Math.ceil(params.N / 2 / perGroup));
    rec.run(kernel, { ...params, N: params.N / 2, ...rope.params }, [...bindings, ...rope.bindings, ...after], gx, Math.ceil(params.T / tt), gz);
    return;
  }
  const [gx, gz] = grid(rec.ctx, Math.ceil(params.N / perGroup));
  rec.run(kernel, params, [...bindings, ...after], gx, Math.ceil(params.T / tt), gz);
}

function linearKernel(rec: Recorder, choice: Choice, dtype: 'f32' | 'f16', vw: 1 | 4, T: number, K: number, f: Fusion, rope: GemvRope | null) {
  const { path } = choice;
  const { ctx } = rec;
  const tune = ctx.tuning;
  const fused = fusionConstants(f);
  const fkey = fusionKey(f);
  const lib = `${activationLib}\n${linearLib}\n`;
  let key: string;
  let make: () => KernelSource<typeof LINEAR_PARAMS.fields>;
  if (path === 'gemv') {
    const tt = gemvTokens(T, tune.gemvTokens);
    const rows = gemvRows(tune, f, rope);
    const lanes = gemvLanes(tune, K);
    const ls = laneSumKernel(ctx, lanes);
    key = `linear.gemv.${dtype}.${tt}.${tune.gemvWorkgroup}.${lanes}.${rows}.${ls.key}.${fkey}${rope ? `.rope.${rope.kt}` : ''}`;
    make = () => ({
      name: key,
      code: `${lib}${gemvRopeCode(rope)}${ls.code}\n${gemvLib}\n${gemvSource}`,
      prelude: `${ls.prelude}${chunkPrelude(dtype)}${gemvRopePrelude(rope)}const TT = ${tt}u;\nconst R = ${rows}u;\n`,
      constants: { WG: tune.gemvWorkgroup, LANES: lanes, NORM: f.norm ? 1 : 0, ...fused },
      bindings: rope ? ['read', 'read', 'read', 'read', 'write', ...GEMV_ROPE_BINDINGS] : ['read', 'read', 'read', 'read', 'write'],
      params: gemvParams(rope),
    });
  } else if (choice.path === 'mma') {
    return mmaKernel(rec, choice.tile, f, null);
  } else if (path === 'gemm') {
    const [wx, wy] = gemmWorkgroup(tune, T);
    key = `linear.gemm.${dtype}.${wx}x${wy}.${tune.gemmK}.${fkey}`;
    make = () => ({
      name: key,
      code: `${lib}\n${gemmSource}`,
      prelude: weightPrelude(dtype, 4),
      constants: { WX: wx, WY: wy, BK: tune.gemmK, ...fused },
      bindings: BINDINGS,
      params: LINEAR_PARAMS,
    });
  } else {
    const [wx, wy] = tune.tiledWorkgroup;
    key = `linear.tiled.${dtype}.${vw}.${tune.tiledTokens}.${wx}x${wy}.${fkey}`;
    make = () => ({
      name: key,
      code: `${lib}\n${tiledSource}`,
      prelude: `${weightPrelude(dtype, vw)}const TM = ${tune.tiledTokens}u;\n`,
      constants: { WX: wx, WY: wy, ...fused },
      bindings: BINDINGS,
      params: LINEAR_PARAMS,
    });
  }
  return ctx.pipelines.kernel(key, make);
}

/**
 * The subgroup-matrix tile for T tokens of a weight of `rows` x K (see tuning.mmaTiles), f16 or quantized, among
 * the tiles for that kind of weight whose workgroup memory fits in `maxShared` bytes (null: none fits).
 */
export function mmaTile(tune: Recorder['ctx']['tuning'], T: number, rows: number, K: number, maxShared = Infinity, quantized = false): MmaTile | null {
  const kind = quantized ? 'quantized' : 'f16';
  const tiles = tune.mmaTiles.filter((t) => (t.weights ?? kind) === kind && mmaSharedBytes(t.tile) <= maxShared);
  if (tiles.length === 0) return null;
  const fits = (t: (typeof tiles)[number]) => T <= t.maxTokens && rows <= (t.maxColumns ?? Infinity) && K <= (t.maxDepth ?? Infinity);
  const tile = (tiles.find(fits) ?? tiles[tiles.length - 1]).tile;
  // Weight blocks loaded straight from memory need f16 weights, whole steps of K and whole 16-row blocks (gate and
  // up alike); quantized weights are dequantized as they are staged.
  if (tile[6] === 1 && (quantized || K % mmaStepK(tile) !== 0 || rows % 32 !== 0)) return [tile[0], tile[1], tile[2], tile[3], tile[4], tile[5] ?? 1, 0, tile[7] ?? 0];
  return tile;
}

/** The shared-memory kernel's workgroup for T tokens. */
const gemmWorkgroup = (tune: Recorder['ctx']['tuning'], T: number): [number, number] =>
  T <= tune.gemmSmallTokens ? tune.gemmSmallWorkgroup : tune.gemmWorkgroup;

/** The kernel for T tokens of x [T, K] times w, and its subgroup-matrix tile when it is 'mma'. */
function choosePath(rec: Recorder, w: Weight, T: number, vw: 1 | 4, gatedRows: number): Choice {
  const { ctx } = rec;
  const tune = ctx.tuning;
  const K = w.cols;
  const chunks = K % 8 === 0 && w.rowStride % 8 === 0;
  if (T <= tune.gemvMaxTokens && chunks) return { path: 'gemv', tile: null };
  if (ctx.subgroupMatrix && tune.mmaMinTokens > 0 && T >= tune.mmaMinTokens && w.dtype === 'f16' && chunks) {
    const tile = mmaTile(tune, T, w.rows, K, ctx.limits.maxComputeWorkgroupStorageSize);
    if (tile && (gatedRows === 0 || tile[1] % 2 === 0)) return { path: 'mma', tile };
  }
  return { path: tune.matmul === 'shared' && vw === 4 ? 'gemm' : 'tiled', tile: null };
}

/**
 * out[t, :] (+)= f(x[t, :]) W^T + bias for t < T, with the fusions of `opts`.
 *
 * @param x     f32 [T, K] (K = w.cols)
 * @param w     [N, K], any number of parts (gated: [2 I, K] in one part, else the gating is a second dispatch)
 * @param bias  f32 [N] or null
 * @param out   f32 [T, N] (gated: [T, I]); must not alias x
 * @example
 * linear(rec, normed, layer.qkvProj, layer.qkvBias, qkv, T); // [T, H] -> [T, (nH + 2 nKv) D]
 * linear(rec, hidden, layer.gateUp, null, mlp, T, { rmsNorm: { weight: layer.postNorm, eps: 1e-5 }, gated: 'silu' });
 * linear(rec, mlp, layer.down, null, hidden, T, { residual: true }); // hidden += mlp Wdown^T
 * @returns whether `opts.normOut` was written, and the split sums left undone (`opts.deferSplit`)
 */
export function linear(rec: Recorder, x: Tensor, w: Weight, bias: Tensor | null, out: Tensor, T: number, opts: LinearOptions = {}): LinearResult {
  if (T === 0) return notFused();
  const { ctx } = rec;
  const K = w.cols;
  const gatedRows = opts.gated ? w.rows / 2 : 0;
  if (opts.gated && (w.rows % 2 !== 0 || opts.residual)) {
    throw new Error(`linear: a gated weight needs an even row count (got ${w.rows}) and no residual`);
  }
  const N = opts.gated ? gatedRows : w.rows;
  expectTensor(x, 'f32', T * K, 'linear x');
  expectTensor(out, 'f32', T * N, 'linear out');
  if (bias) expectTensor(bias, 'f32', w.rows, 'linear bias');
  if (opts.rmsNorm) expectTensor(opts.rmsNorm.weight, 'f32', K, 'linear rmsNorm weight');
  const vw = K % 4 === 0 ? 4 : 1;
  const choice = choosePath(rec, w, T, vw, gatedRows);
  const { path } = choice;
  const tune = ctx.tuning;

  // Fusions the chosen kernel cannot do become dispatches of their own around it.
  if (opts.gated && w.parts.length > 1) {
    const both = scratchTensor(rec, 'linear.gated', T * w.rows);
    linear(rec, x, w, bias, both, T, { rmsNorm: opts.rmsNorm });
    gatedAct(rec, both, out, T, gatedRows, opts.gated);
    return notFused();
  }
  let input = x;
  if (opts.rmsNorm && path !== 'gemv') {
    input = scratchTensor(rec, 'linear.normed', T * K);
    rmsNorm(rec, x, opts.rmsNorm.weight, input, T, K, opts.rmsNorm.eps);
  }
  const fusion: Fusion = {
    norm: !!opts.rmsNorm && path === 'gemv',
    gated: opts.gated ? actCode(opts.gated) : -1,
    residual: !!opts.residual,
  };
  if (choice.path === 'mma') {
    const parts = w.parts.map((p) => ({ ...p, wStride: w.rowStride }));
    return mmaLinear(rec, input, parts, null, choice.tile, K, N, bias, out, T, fusion, opts);
  }
  // The fused rope: GEMV only, plain (no gating, no residual).
  const rope = path === 'gemv' && !opts.gated && !opts.residual ? gemvRope(rec, opts.rope, w.parts, N, T) : null;
  const kernel = linearKernel(rec, choice, w.dtype, vw, T, K, fusion, rope);
  const xb = bindTensor(ctx, input, 'linear x');
  const ob = bindTensor(ctx, out, 'linear out');
  const bb = bias ? bindTensor(ctx, bias, 'linear bias') : wholeBuffer(ctx.dummy);
  const gb = fusion.norm ? bindTensor(ctx, opts.rmsNorm!.weight, 'linear rmsNorm weight') : wholeBuffer(ctx.dummy);
  const eps = fusion.norm ? opts.rmsNorm!.eps : 0;
  for (const part of w.parts) {
    if (part.rows === 0) continue;
    const params = partParams(part, w.rowStride, T, K, N, gatedRows, !!bias, eps);
    const cols = params.N;
    const wb = wholeBuffer(part.buffer);
    if (path === 'gemv') {
      const rows = gemvRows(tune, fusion, rope);
      const perGroup = (tune.gemvWorkgroup / gemvLanes(tune, K)) * (opts.gated || rope ? rows / 2 : rows);
      const tt = gemvTokens(T, tune.gemvTokens);
      runGemv(rec, kernel, params, [xb, wb, bb, gb, ob], perGroup, tt, rope);
      continue;
    }
    // Tile columns (gated: gate/up pairs) and tokens per workgroup.
    const tileCols = opts.gated ? 2 * cols : cols;
    let perX: number;
    let perY: number;
    if (path === 'gemm') {
      const [wx, wy] = gemmWorkgroup(tune, T);
      perX = 4 * wx;
      perY = 4 * wy;
    } else {
      perX = 4 * tune.tiledWorkgroup[0];
      perY = tune.tiledTokens * tune.tiledWorkgroup[1];
    }
    const [gx, gz] = grid(ctx, Math.ceil(tileCols / perX));
    rec.run(kernel, params, [xb, wb, bb, ob], gx, Math.ceil(T / perY), gz);
  }
  return { ...notFused(), roped: !!rope };
}

/** A weight part as the subgroup-matrix kernel reads it: rows rowStart.. of the weight, wStride between rows (f16: elements; block formats: bytes). */
export interface MmaPart {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
  wStride: number;
}

/** A block format as the subgroup-matrix kernel dequantizes it: its name (in kernel keys) and WGSL (its qChunk). */
export interface MmaBlocks {
  name: string;
  wgsl: string;
}

/** The subgroup-matrix kernel of `tile` with the fusions `f`, for f16 weights or (`blocks`) a block format. */
function mmaKernel(rec: Recorder, tile: MmaTile, f: Fusion, blocks: MmaBlocks | null) {
  const key = `linear.mma.${blocks ? `${blocks.name}.` : ''}${tile.join('.')}.${fusionKey(f)}`;
  return rec.ctx.pipelines.kernel(key, () => {
    const { prelude, code } = mmaKernelCode(tile, f.gated >= 0, blocks?.wgsl);
    const lib = `${activationLib}\n${linearLib}\n`;
    return { name: key, prelude, code: `${lib}\n${code}`, constants: fusionConstants(f), bindings: [...BINDINGS, 'write'], params: LINEAR_PARAMS };
  });
}

/**
 * The subgroup-matrix (tensor core) path of linear over weight parts of f16 rows or (`blocks`) of a block format:
 * x in f16 first where the tile asks (XH), one dispatch per part, K split across workgroups when the tiles alone
 * give fewer than tuning.mmaSplitWorkgroups of them (then linear.reduce adds the splits, with opts.normOut where
 * whole rows allow, or leaves them to the consumer with opts.deferSplit). `x` is already normalised (f.norm is
 * never set here); a gated weight is one part.
 */
export function mmaLinear(
  rec: Recorder,
  x: Tensor,
  parts: readonly MmaPart[],
  blocks: MmaBlocks | null,
  tile: MmaTile,
  K: number,
  N: number,
  bias: Tensor | null,
  out: Tensor,
  T: number,
  f: Fusion,
  opts: Pick<LinearOptions, 'gated' | 'residual' | 'normOut' | 'deferSplit'>,
): LinearResult {
  const { ctx } = rec;
  const tune = ctx.tuning;
  const kernel = mmaKernel(rec, tile, f, blocks);
  let input = x;
  // Tiles with XH: x in f16 first.
  if (tile[7]) {
    const buffer = ctx.scratchBuffer('linear.xHalf', T * K * 2);
    const half: Tensor = { buffer, offset: 0, shape: [buffer.size / 2], dtype: 'f16' };
    toHalf(rec, x, half, T * K);
    input = half;
  }
  const gatedRows = opts.gated ? N : 0;
  const xb = bindTensor(ctx, input, 'linear x');
  const ob = bindTensor(ctx, out, 'linear out');
  const bb = bias ? bindTensor(ctx, bias, 'linear bias') : wholeBuffer(ctx.dummy);
  // The fused RMSNorm needs each output row whole in one reduce: one weight part, no gating, N % 4 == 0.
  const normOut = opts.normOut && parts.length === 1 && !opts.gated && N % 4 === 0 ? opts.normOut : undefined;
  const defer = opts.deferSplit && parts.length === 1 && !opts.gated && !opts.residual;
  const result = notFused();
  const [wm, wn, sgm, sgn] = tile;
  for (const part of parts) {
    if (part.rows === 0) continue;
    const params = partParams(part, part.wStride, T, K, N, gatedRows, !!bias, 0);
    const cols = params.N;
    const tileCols = opts.gated ? 2 * cols : cols;
    const [gx, gz] = grid(ctx, Math.ceil(tileCols / (16 * wn * sgn)));
    const tiles = Math.ceil(T / (16 * wm * sgm));
    // Split K across workgroups when the tiles alone give fewer than tuning.mmaSplitWorkgroups of them, each split
    // at least tuning.mmaMinSplitK deep.
    const bk = mmaStepK(tile);
    const steps = Math.ceil(K / bk);
    const want = Math.min(steps, Math.floor(tune.mmaSplitWorkgroups / (gx * gz * tiles)));
    const kSplit = want > 1 ? Math.max(Math.ceil(steps / want), Math.ceil(tune.mmaMinSplitK / bk)) * bk : K;
    const splits = Math.ceil(K / kSplit);
    // (Not the dummy without a split: bias may be the dummy, and a buffer cannot be bound read and written.)
    const partials = wholeBuffer(ctx.scratchBuffer('linear.partials', splits * T * part.rows * 4));
    rec.run(kernel, { ...params, kSplit }, [xb, wholeBuffer(part.buffer), bb, ob, partials], gx, tiles * splits, gz);
    if (splits > 1) {
      const partTensor: Tensor = { buffer: partials.buffer, offset: 0, shape: [splits * T * part.rows], dtype: 'f32' };
      if (defer) {
        result.split = { part: partTensor, splits, bias };
        continue;
      }
      linearReduce(rec, partTensor, bias, out, T, splits, cols, {
        outStride: N,
        colOffset: params.colOffset,
        gated: opts.gated,
        residual: opts.residual,
        normOut,
      });
      result.normed = !!normOut;
    }
  }
  return result;
}

const REDUCE_WG = 256;

/** Threads of the fused reduce + RMSNorm for rows of `cols`: a power of two covering cols / 4, within the tuning's cap. */
function reduceNormWorkgroup(ctx: Recorder['ctx'], cols: number): number {
  const cap = Math.min(ctx.tuning.reduceNormWorkgroup, ctx.limits.maxComputeInvocationsPerWorkgroup, ctx.limits.maxComputeWorkgroupSizeX);
  let wg = 1;
  while (wg < cols / 4 && wg < cap) wg *= 2;
  return Math.max(wg, Math.min(32, cap));
}

/**
 * Split-K epilogue of the tensor-core linear (`shaders/linear.reduce.wgsl`): out[t, colOffset + n] (+)= the
 * epilogue of sum_s part[s, t, n] for n < cols, t < T, with bias, gating (part rows cols .. 2 cols - 1 hold the up
 * sums) and the residual add as in {@link linear}; with `normOut` (whole rows only: cols == outStride, no column
 * offset or gating), also the RMSNorm of each finished row (`shaders/linear.reduce.norm.wgsl`, one workgroup a row).
 *
 * @param part  f32 [splits, T, rows], rows = cols (gated: 2 cols)
 * @param bias  f32 [colOffset + rows] or null (gated: gate biases then up biases)
 * @param out   f32 [T, outStride]
 * @example
 * linearReduce(rec, partials, null, hidden, T, 4, H, { outStride: H, residual: true });
 */
export function linearReduce(
  rec: Recorder,
  part: Tensor,
  bias: Tensor | null,
  out: Tensor,
  T: number,
  splits: number,
  cols: number,
  opts: { outStride: number; colOffset?: number; gated?: Activation; residual?: boolean; normOut?: RmsNormOut },
): void {
  const { ctx } = rec;
  const rows = opts.gated ? 2 * cols : cols;
  const colOffset = opts.colOffset ?? 0;
  const { normOut } = opts;
  expectTensor(part, 'f32', splits * T * rows, 'linearReduce part');
  expectTensor(out, 'f32', T * opts.outStride, 'linearReduce out');
  if (bias) expectTensor(bias, 'f32', colOffset + rows, 'linearReduce bias');
  if (normOut) {
    if (opts.gated || colOffset !== 0 || cols !== opts.outStride || cols % 4 !== 0) {
      throw new Error('linearReduce normOut: needs whole output rows (no gating or column offset) of a multiple of 4 columns');
    }
    expectTensor(normOut.weight, 'f32', cols, 'linearReduce normOut weight');
    expectTensor(normOut.out, 'f32', T * cols, 'linearReduce normOut out');
  }
  const fusion: Fusion = { norm: false, gated: opts.gated ? actCode(opts.gated) : -1, residual: !!opts.residual };
  // normOut: one workgroup per row, a thread per 4 columns (up to the tuning's reduceNormWorkgroup).
  const wg = normOut ? reduceNormWorkgroup(ctx, cols) : REDUCE_WG;
  const key = `linear.reduce.${normOut ? `norm.${wg}.` : ''}${fusionKey(fusion)}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: normOut ? `${workgroupSumLib}\n${activationLib}\n${linearLib}\n${reduceNormSource}` : `${threadLib}\n${activationLib}\n${linearLib}\n${reduceSource}`,
    constants: { WG: wg, ...fusionConstants(fusion) },
    bindings: normOut ? ['read', 'read', 'write', 'read', 'write'] : ['read', 'read', 'write'],
    params: LINEAR_PARAMS,
  }));
  // Params as linear's, read by the reduce kernel: K / kSplit = splits (K = splits, kSplit = 1).
  const hasBias = bias ? 1 : 0;
  const params = { T, K: splits, N: cols, wStride: 0, outStride: opts.outStride, colOffset, hasBias, upOffset: opts.gated ? cols : 0, eps: normOut?.eps ?? 0, kSplit: 1 };
  const bindings = [bindTensor(ctx, part, 'linearReduce part'), bias ? bindTensor(ctx, bias, 'linearReduce bias') : wholeBuffer(ctx.dummy), bindTensor(ctx, out, 'linearReduce out')];
  if (normOut) {
    bindings.push(bindTensor(ctx, normOut.weight, 'linearReduce normOut weight'), bindTensor(ctx, normOut.out, 'linearReduce normOut out'));
    rec.run(kernel, params, bindings, ...grid(ctx, T));
    return;
  }
  rec.run(kernel, params, bindings, ...grid(ctx, Math.ceil((T * cols) / REDUCE_WG)));
}

/**
 * The op's scratch buffer `name` as an f32 tensor of at least `count` elements (its content lives until the next
 * use of `name`). It spans the whole buffer, so that its bind groups do not change with the step's token count.
 */
function scratchTensor(rec: Recorder, name: string, count: number): Tensor {
  const buffer = rec.ctx.scratchBuffer(name, count * 4);
  return { buffer, offset: 0, shape: [buffer.size / 4], dtype: 'f32' };
}
