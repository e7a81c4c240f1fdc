/**
 * Mixture-of-experts ops (Mixtral, Qwen2-MoE, Qwen3-MoE), after Hugging Face's sparse MoE blocks and vLLM's
 * fused_moe:
 *   1. the model computes router logits [T, E] with linear;
 *   2. moeRoute: softmax, top-K experts per token, their weights (renormalised to sum 1 when asked);
 *   3. fusedMoe: out[t] += sum_k w[t, k] y_{e[t, k]}(x[t]), y_e(x) = (act(x G_e^T) * (x U_e^T)) D_e^T, as
 *      a. moe.group.wgsl    a counting sort of the T K (token, slot) pairs by expert and a list of tiles (runs of
 *                           up to TR pairs of one expert), on the GPU;
 *      b. per tile, gate|up rows of its expert times its tokens, act(gate) * up -> h [T K, I];
 *      c. per tile, down rows times h, scaled by the routing weight -> y [T K, H];
 *      d. moe.combine.wgsl  out[t] += sum_k y[t K + k] (no float atomics: deterministic sums).
 *      b and c run moe.gemv.wgsl (decode: each tile's weight rows read once, in 16-byte chunks, for its up to 16
 *      pairs) or, for many pairs per expert on GPUs, moe.gemm.wgsl (shared-memory tiles of 4 WY pairs).
 *   4. sharedExpertGate (Qwen2-MoE): out[t] += sigmoid(x[t] . g) y_shared[t], y_shared from linear.
 * Each chosen expert's weight rows are read once per tile (decode, T K <= E: once per step).
 *
 * Step graphs: every dispatch's grid and params depend on T and the shapes only, never on the routing: the tile
 * grids are upper bounds on the tiles (see maxTiles) and workgroups past the real ones, which they read from the
 * GPU, exit at once.
 */
import type { GpuContext } from '../gpu/context.js';
import { paramsStruct } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, createWeight, writeWeightRows, type Tensor, type Weight, type WeightOptions } from '../gpu/tensor.js';
import threadLib from '../../shaders/lib/thread.wgsl';
import activationLib from '../../shaders/lib/activation.wgsl';
import gemvLib from '../../shaders/lib/gemv.wgsl';
import workgroupSumLib from '../../shaders/lib/workgroup_sum.wgsl';
import routeSource from '../../shaders/moe.route.wgsl';
import groupSource from '../../shaders/moe.group.wgsl';
import gemvSource from '../../shaders/moe.gemv.wgsl';
import gemmSource from '../../shaders/moe.gemm.wgsl';
import combineSource from '../../shaders/moe.combine.wgsl';
import sharedGateSource from '../../shaders/moe.shared_gate.wgsl';
import { actCode, type Activation } from './elementwise.js';
import { chunkPrelude, expectTensor, grid, laneSumKernel, weightPrelude, wholeBuffer } from './common.js';
import { GEMV_NO_ROPE } from './linear-rope.js';

/**
 * The stacked weights of E experts, each [rows, cols] (HF [out, in] layout): gate|up [E, 2 I, H] (per expert the
 * gate rows, then the up rows) or down [E, H, I]. `weight` is the [E rows, cols] matrix they make, split into
 * parts of whole experts (each within one storage binding); its rows are padded to a multiple of 8 elements so
 * that the kernels read 16-byte chunks.
 */
export interface ExpertWeights {
  experts: number;
  /** Rows per expert. */
  rows: number;
  /** Columns (the input size); a multiple of 8. */
  cols: number;
  /** [experts rows, cols]; part boundaries fall between experts (rowStart and rows multiples of `rows`). */
  weight: Weight;
}

/**
 * Allocates the weights of `experts` experts of [rows, cols] each, in parts of whole experts.
 *
 * @example
 * const gateUp = createExpertWeights(ctx, 128, 2 * 768, 2048, 'f16', 'layers.0.mlp.experts.gate_up'); // 805 MB
 * const down = createExpertWeights(ctx, 128, 2048, 768, 'f16', 'layers.0.mlp.experts.down');
 */
export function createExpertWeights(
  ctx: GpuContext,
  experts: number,
  rows: number,
  cols: number,
  dtype: 'f32' | 'f16',
  label = 'experts',
  opts: Pick<WeightOptions, 'maxPartBytes'> = {},
): ExpertWeights {
  if (!(experts >= 1 && rows >= 1 && cols >= 8 && cols % 8 === 0)) {
    throw new Error(`${label}: expert weights need experts >= 1, rows >= 1 and cols a multiple of 8 (got ${experts} x [${rows}, ${cols}])`);
  }
  const bytes = dtype === 'f16' ? 2 : 4;
  // Rows padded as createWeight pads them (tuning.weightRowPadding), then to whole 16-byte chunks.
  const padded = Math.ceil((cols + ctx.tuning.weightRowPadding / bytes) / 8) * 8;
  const expertBytes = rows * padded * bytes;
  const cap = Math.min(opts.maxPartBytes ?? Infinity, ctx.maxBinding, ctx.limits.maxBufferSize);
  const perPart = Math.floor(cap / expertBytes);
  if (perPart < 1) throw new Error(`${label}: one expert of ${expertBytes} bytes exceeds one storage binding (${cap} bytes)`);
  // createWeight splits at floor(maxPartBytes / rowBytes) rows: exactly perPart experts.
  const weight = createWeight(ctx, experts * rows, cols, dtype, label, { rowPadding: padded - cols, maxPartBytes: perPart * expertBytes });
  return { experts, rows, cols, weight };
}

/**
 * Uploads rows `rowStart ..` of expert `expert` (as a loader streams one checkpoint tensor at a time): whole rows
 * of `cols` values in the weight's dtype (f16 as Uint16Array bits).
 *
 * @example
 * writeExpertRows(ctx, gateUp, e, 0, gateProj); // experts.{e}.gate_proj [I, H]
 * writeExpertRows(ctx, gateUp, e, I, upProj); // experts.{e}.up_proj [I, H]
 */
export function writeExpertRows(ctx: GpuContext, w: ExpertWeights, expert: number, rowStart: number, data: Float32Array | Uint16Array): void {
  const n = data.length / w.cols;
  if (!Number.isInteger(expert) || expert < 0 || expert >= w.experts) throw new Error(`writeExpertRows: expert ${expert} outside 0..${w.experts - 1}`);
  if (!Number.isInteger(n) || rowStart < 0 || rowStart + n > w.rows) {
    throw new Error(`writeExpertRows: ${data.length} values at row ${rowStart} are not whole rows of ${w.cols} within the expert's ${w.rows}`);
  }
  writeWeightRows(ctx, w.weight, expert * w.rows + rowStart, data);
}

/** One part of expert weights: its buffer and experts expertStart .. expertEnd - 1. */
function expertParts(w: ExpertWeights) {
  return w.weight.parts.map((p) => ({ buffer: p.buffer, expertStart: p.rowStart / w.rows, expertEnd: (p.rowStart + p.rows) / w.rows }));
}

const ROUTE_WG = 64;
const ROUTE_PARAMS = paramsStruct({ T: 'u32', E: 'u32', K: 'u32', norm: 'u32' });
const GROUP_PARAMS = paramsStruct({ P: 'u32', E: 'u32', TR: 'u32', sortedAt: 'u32', tilesAt: 'u32' });
/** The grouped GEMV's and GEMM's params (moe.gemv.wgsl, moe.gemm.wgsl). */
const EXPERT_PARAMS = paramsStruct({
  topK: 'u32', K: 'u32', N: 'u32', wStride: 'u32', eStride: 'u32', expertStart: 'u32', expertEnd: 'u32', E: 'u32', sortedAt: 'u32', tilesAt: 'u32',
});
const COMBINE_PARAMS = paramsStruct({ n: 'u32', H4: 'u32', K: 'u32' });
const SHARED_GATE_PARAMS = paramsStruct({ T: 'u32', H: 'u32' });
const COMBINE_WG = 256;

/**
 * Routes each token to its top-K experts: ids[t, k] the experts by descending logit (ties: the lower index
 * first, as torch.topk on CPU), weights[t, k] their softmax probabilities over all E experts, divided by the sum
 * of the K chosen ones when `normTopK` (Mixtral always; Qwen2-MoE and Qwen3-MoE per `norm_topk_prob`). Logits
 * must be finite.
 *
 * @param logits   f32 [T, E] (the router linear's output)
 * @param ids      u32 [T, K]
 * @param weights  f32 [T, K]
 * @example
 * linear(rec, normed, layer.router, null, routerLogits, T); // [T, H] -> [T, E]
 * moeRoute(rec, routerLogits, expertIds, expertWeights, T, 128, 8, true); // Qwen3-30B-A3B
 */
export function moeRoute(rec: Recorder, logits: Tensor, ids: Tensor, weights: Tensor, T: number, E: number, K: number, normTopK: boolean): void {
  if (T === 0) return;
  if (!(Number.isInteger(K) && K >= 1 && K <= E)) throw new Error(`moeRoute: top-k ${K} must be in 1..${E} (the experts)`);
  expectTensor(logits, 'f32', T * E, 'moeRoute logits');
  expectTensor(ids, 'u32', T * K, 'moeRoute ids');
  expectTensor(weights, 'f32', T * K, 'moeRoute weights');
  const { ctx } = rec;
  const kernel = ctx.pipelines.kernel('moe.route', () => ({
    name: 'moe.route',
    code: `${threadLib}\n${routeSource}`,
    bindings: ['read', 'write', 'write'],
    params: ROUTE_PARAMS,
    constants: { WG: ROUTE_WG },
  }));
  const bindings = [bindTensor(ctx, logits, 'moeRoute logits'), bindTensor(ctx, ids, 'moeRoute ids'), bindTensor(ctx, weights, 'moeRoute weights')];
  rec.run(kernel, { T, E, K, norm: normTopK ? 1 : 0 }, bindings, ...grid(ctx, Math.ceil(T / ROUTE_WG)));
}

/**
 * Word offsets of moeGroup's output for P = T K pairs of E experts in tiles of `tileRows` (see moe.group.wgsl):
 * counts[E], offsets[E + 1], tileOffsets[E + 1], sorted[P], tiles[2 maxTiles].
 */
export function moeGroupLayout(E: number, P: number, tileRows: number) {
  const sorted = 3 * E + 2;
  const tiles = sorted + P;
  return { counts: 0, offsets: E, tileOffsets: 2 * E + 1, sorted, tiles, words: tiles + 2 * maxTiles(P, P, E, tileRows) };
}

/**
 * The most tiles of `tileRows` pairs that `experts` experts can get from T tokens with P = T K pairs: expert e
 * gets c_e <= T pairs and ceil(c_e / TR) tiles, and sum_e ceil(c_e / TR) <= (P + min(experts, P)(TR - 1)) / TR.
 */
export function maxTiles(T: number, P: number, experts: number, tileRows: number): number {
  return Math.min(experts * Math.ceil(T / tileRows), Math.floor((P + Math.min(experts, P) * (tileRows - 1)) / tileRows));
}

/**
 * Groups the T K (token, slot) pairs by expert on the GPU (a stable counting sort; layout in
 * {@link moeGroupLayout}): the counts, offsets and sorted pair list, and the tiles of up to `tileRows` pairs of
 * one expert that the grouped GEMVs walk. Pair i = t K + k is token t's k-th expert ids[i].
 *
 * @param ids     u32 [T, K], each < E
 * @param groups  u32 [moeGroupLayout(E, T K, tileRows).words]
 * @example
 * moeGroup(rec, expertIds, groups, T, 8, 2, 4);
 */
export function moeGroup(rec: Recorder, ids: Tensor, groups: Tensor, T: number, E: number, K: number, tileRows: number): void {
  if (T === 0) return;
  const P = T * K;
  const layout = moeGroupLayout(E, P, tileRows);
  expectTensor(ids, 'u32', P, 'moeGroup ids');
  expectTensor(groups, 'u32', layout.words, 'moeGroup groups');
  const { ctx } = rec;
  // Workgroup memory: 3 words per expert (room for E up to 1024 within WebGPU's guaranteed 16 KiB), 3 per thread.
  let emax = 64;
  while (emax < E) emax *= 2;
  // Row-reduction sized workgroups: 256 threads on GPUs, 8 on CPU drivers (where barriers are dear).
  const wg = ctx.tuning.rowWorkgroup;
  if (3 * emax * 4 + 3 * wg * 4 > ctx.limits.maxComputeWorkgroupStorageSize) throw new Error(`moeGroup: ${E} experts exceed workgroup memory`);
  const key = `moe.group.${wg}.${emax}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: groupSource,
    bindings: ['read', 'write'],
    params: GROUP_PARAMS,
    constants: { WG: wg, EMAX: emax },
  }));
  rec.run(kernel, { P, E, TR: tileRows, sortedAt: layout.sorted, tilesAt: layout.tiles }, [bindTensor(ctx, ids, 'moeGroup ids'), bindTensor(ctx, groups, 'moeGroup groups')], 1);
}

/** Options of {@link fusedMoe}. */
export interface MoeOptions {
  /** The experts' activation (default silu). */
  act?: Activation;
  /**
   * The grouped kernels: 'gemv' (moe.gemv.wgsl: tiles of tileRows pairs, 16-byte weight loads; decode) or 'gemm'
   * (moe.gemm.wgsl: shared-memory tiles of 4 tuning.gemmWorkgroup[1] pairs; prefill). Default: 'gemm' on GPUs
   * (tuning.matmul 'shared') once an expert expects half a gemm tile of pairs (T K / E >= 2 gemmWorkgroup[1]).
   */
  kernel?: 'gemv' | 'gemm';
  /** Pairs per gemv tile (default {@link moeTileRows}); tests and benchmarks set it. */
  tileRows?: number;
  /**
   * Weight rows per row group of the GEMVs: 1, 2 or 4 (gate|up: 2 or 4, half gate rows, half up rows); more rows
   * reuse each x load for more products. Default 4 (MOE_GEMV_ROWS). Benchmarks set it.
   */
  rows?: 1 | 2 | 4;
}

/**
 * The GEMVs' default rows per row group. H200, one Qwen3-30B-A3B layer (bench/moe.js, 2026-12-04): 4 rows beat the
 * tuning's 2 at every token count (T = 8: 411 against 528 us with 1-pair tiles; T = 64: 822 against 893 us).
 */
const MOE_GEMV_ROWS = 4;

/**
 * Pairs per tile for T tokens of top-K over E experts: 2 once an expert expects half a pair or more (T K / E >= 0.5),
 * else 1 (decode: no wasted tile rows). Larger tiles read fewer bytes but ran slower on the H200 (T = 64, 4 rows:
 * 1-pair tiles 822 us, 2-pair 712 us, 4-pair 964 us, 8-pair 1,135 us; T = 8: 2-pair 297 against 411 us).
 */
export function moeTileRows(T: number, K: number, E: number): number {
  return (T * K) / E >= 0.5 ? 2 : 1;
}

/** The grouped GEMV (moe.gemv.wgsl) for inner size K, and its output columns per workgroup. */
function gemvKernel(rec: Recorder, dtype: 'f32' | 'f16', gated: boolean, act: number, tileRows: number, K: number, rowsOpt?: number) {
  const { ctx } = rec;
  const tune = ctx.tuning;
  const lanes = K >= tune.gemvLongK ? tune.gemvLongLanes : tune.gemvLanes;
  const wg = Math.max(tune.gemvWorkgroup, lanes);
  const rows = gated ? Math.max(2, rowsOpt ?? MOE_GEMV_ROWS) : (rowsOpt ?? MOE_GEMV_ROWS);
  const ls = laneSumKernel(ctx, lanes);
  const key = `moe.gemv.${dtype}.${gated ? `g${act}` : 'd'}.${tileRows}.${wg}.${lanes}.${rows}.${ls.key}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: `${activationLib}\n${ls.code}\n${GEMV_NO_ROPE}${gemvLib}\n${gemvSource}`,
    prelude: `${ls.prelude}${chunkPrelude(dtype)}const TT = ${tileRows}u;\nconst R = ${rows}u;\n`,
    constants: { WG: wg, LANES: lanes, GATED: gated ? 1 : 0, ACT: act },
    bindings: ['read', 'read', 'read', 'read', 'write'],
    params: EXPERT_PARAMS,
  }));
  return { kernel, columns: (wg / lanes) * (gated ? rows / 2 : rows) };
}

/** The grouped shared-memory GEMM (moe.gemm.wgsl) and its tile columns per workgroup (gated: 2 per output column). */
function gemmKernel(rec: Recorder, dtype: 'f32' | 'f16', gated: boolean, act: number) {
  const { ctx } = rec;
  const [wx, wy] = ctx.tuning.gemmWorkgroup;
  const bk = ctx.tuning.gemmK;
  const key = `moe.gemm.${dtype}.${gated ? `g${act}` : 'd'}.${wx}x${wy}.${bk}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: `${activationLib}\n${gemmSource}`,
    prelude: weightPrelude(dtype, 4),
    constants: { WX: wx, WY: wy, BK: bk, GATED: gated ? 1 : 0, ACT: act },
    bindings: ['read', 'read', 'read', 'read', 'write'],
    params: EXPERT_PARAMS,
  }));
  // Output columns per workgroup: 4 WX tile columns, of which gated quads make 2 WX.
  return { kernel, columns: gated ? 2 * wx : 4 * wx };
}

/**
 * out[t, :] += sum_k weights[t, k] y_{ids[t, k]}(x[t, :]) for t < T: the routed experts' gated MLPs,
 * y_e(x) = (act(x G_e^T) * (x U_e^T)) D_e^T, added into the residual stream `out`. Four dispatches with weights
 * in one part (grouping, gate|up, down, combine; a gate|up and a down per part), each sized by T alone.
 *
 * @param x        f32 [T, H] (the post-attention normed hidden state); H % 8 == 0
 * @param ids      u32 [T, K] experts, from moeRoute
 * @param weights  f32 [T, K] routing weights, from moeRoute
 * @param gateUp   E experts of [2 I, H] (gate rows, then up rows)
 * @param down     E experts of [H, I]; I % 8 == 0
 * @param out      f32 [T, H], added into (may be x itself: x is read before the combine writes out)
 * @example
 * moeRoute(rec, routerLogits, ids, weights, T, E, K, true);
 * fusedMoe(rec, normed, ids, weights, layer.experts.gateUp, layer.experts.down, hidden, T, K);
 */
export function fusedMoe(
  rec: Recorder,
  x: Tensor,
  ids: Tensor,
  weights: Tensor,
  gateUp: ExpertWeights,
  down: ExpertWeights,
  out: Tensor,
  T: number,
  K: number,
  opts: MoeOptions = {},
): void {
  if (T === 0) return;
  const { ctx } = rec;
  const E = gateUp.experts;
  const H = gateUp.cols;
  const I = down.cols;
  if (down.experts !== E || down.rows !== H || gateUp.rows !== 2 * I) {
    throw new Error(`fusedMoe: gate|up ${E} x [${gateUp.rows}, ${H}] and down ${down.experts} x [${down.rows}, ${I}] do not match (want [2 I, H] and [H, I])`);
  }
  if (gateUp.weight.dtype !== down.weight.dtype) throw new Error(`fusedMoe: gate|up is ${gateUp.weight.dtype} but down is ${down.weight.dtype}`);
  if (!(Number.isInteger(K) && K >= 1 && K <= E)) throw new Error(`fusedMoe: top-k ${K} must be in 1..${E} (the experts)`);
  const P = T * K;
  expectTensor(x, 'f32', T * H, 'fusedMoe x');
  expectTensor(ids, 'u32', P, 'fusedMoe ids');
  expectTensor(weights, 'f32', P, 'fusedMoe weights');
  expectTensor(out, 'f32', T * H, 'fusedMoe out');
  const tune = ctx.tuning;
  const gemm = opts.kernel ? opts.kernel === 'gemm' : tune.matmul === 'shared' && (T * K) / E >= 2 * tune.gemmWorkgroup[1];
  const tileRows = gemm ? 4 * tune.gemmWorkgroup[1] : (opts.tileRows ?? moeTileRows(T, K, E));
  if (!gemm && !(Number.isInteger(tileRows) && tileRows >= 1 && tileRows <= 16)) throw new Error(`fusedMoe: tileRows ${tileRows} must be in 1..16`);
  if (opts.rows !== undefined && ![1, 2, 4].includes(opts.rows)) throw new Error(`fusedMoe: rows ${opts.rows} must be 1, 2 or 4`);

  const layout = moeGroupLayout(E, P, tileRows);
  const groups = scratch(rec, 'moe.groups', layout.words, 'u32');
  const h = scratch(rec, 'moe.h', P * I, 'f32'); // [P, I] by sorted position
  const y = scratch(rec, 'moe.y', P * H, 'f32'); // [P, H] by pair
  moeGroup(rec, ids, groups, T, E, K, tileRows);

  const gb = wholeBuffer(groups.buffer);
  const hb = wholeBuffer(h.buffer);
  const yb = wholeBuffer(y.buffer);
  const wb = bindTensor(ctx, weights, 'fusedMoe weights');
  const stages = [
    { w: gateUp, gated: true, input: bindTensor(ctx, x, 'fusedMoe x'), output: hb, inner: H, N: I },
    { w: down, gated: false, input: hb, output: yb, inner: I, N: H },
  ];
  const act = actCode(opts.act ?? 'silu');
  for (const s of stages) {
    const { kernel, columns } = gemm ? gemmKernel(rec, s.w.weight.dtype, s.gated, act) : gemvKernel(rec, s.w.weight.dtype, s.gated, act, tileRows, s.inner, opts.rows);
    const [gx, gz] = grid(ctx, Math.ceil(s.N / columns));
    const { rowStride } = s.w.weight;
    for (const part of expertParts(s.w)) {
      const tiles = maxTiles(T, P, part.expertEnd - part.expertStart, tileRows);
      if (tiles > ctx.limits.maxComputeWorkgroupsPerDimension) throw new Error(`fusedMoe: ${tiles} tiles exceed the grid; fewer tokens per step`);
      const params = { topK: K, K: s.inner, N: s.N, wStride: rowStride, eStride: s.w.rows * rowStride, expertStart: part.expertStart, expertEnd: part.expertEnd, E, sortedAt: layout.sorted, tilesAt: layout.tiles };
      rec.run(kernel, params, [s.input, wholeBuffer(part.buffer), gb, wb, s.output], gx, tiles, gz);
    }
  }

  const combine = ctx.pipelines.kernel('moe.combine', () => ({
    name: 'moe.combine',
    code: `${threadLib}\n${combineSource}`,
    bindings: ['read', 'write'],
    params: COMBINE_PARAMS,
    constants: { WG: COMBINE_WG },
  }));
  const n = (T * H) / 4;
  rec.run(combine, { n, H4: H / 4, K }, [yb, bindTensor(ctx, out, 'fusedMoe out')], ...grid(ctx, Math.ceil(n / COMBINE_WG)));
}

/**
 * Qwen2-MoE's shared expert: out[t, :] += sigmoid(x[t, :] . g) y[t, :] for t < T, where y is the shared
 * expert's gated MLP of x (computed with linear) and g the shared_expert_gate weight [1, H].
 *
 * @param x     f32 [T, H]
 * @param gate  [1, H], f32 or f16
 * @param y     f32 [T, H]
 * @param out   f32 [T, H], added into
 * @example
 * linear(rec, normed, layer.sharedGateUp, null, sharedMid, T, { gated: 'silu' });
 * linear(rec, sharedMid, layer.sharedDown, null, sharedOut, T);
 * sharedExpertGate(rec, normed, layer.sharedGate, sharedOut, hidden, T);
 */
export function sharedExpertGate(rec: Recorder, x: Tensor, gate: Weight, y: Tensor, out: Tensor, T: number): void {
  if (T === 0) return;
  const H = gate.cols;
  if (gate.rows !== 1 || gate.parts.length !== 1) throw new Error(`sharedExpertGate: the gate must be one row [1, H] in one part (got [${gate.rows}, ${H}])`);
  expectTensor(x, 'f32', T * H, 'sharedExpertGate x');
  expectTensor(y, 'f32', T * H, 'sharedExpertGate y');
  expectTensor(out, 'f32', T * H, 'sharedExpertGate out');
  const { ctx } = rec;
  const wg = ctx.tuning.rowWorkgroup;
  const key = `moe.shared_gate.${gate.dtype}.${wg}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: `${workgroupSumLib}\n${sharedGateSource}`,
    prelude: weightPrelude(gate.dtype, 1),
    bindings: ['read', 'read', 'read', 'write'],
    params: SHARED_GATE_PARAMS,
    constants: { WG: wg },
  }));
  const bindings = [bindTensor(ctx, x, 'sharedExpertGate x'), wholeBuffer(gate.parts[0].buffer), bindTensor(ctx, y, 'sharedExpertGate y'), bindTensor(ctx, out, 'sharedExpertGate out')];
  rec.run(kernel, { T, H }, bindings, ...grid(ctx, T));
}

/**
 * The op's scratch buffer `name` as a tensor of at least `count` elements, spanning the whole buffer so that its
 * bind groups do not change with the step's token count.
 */
function scratch(rec: Recorder, name: string, count: number, dtype: 'f32' | 'u32'): Tensor {
  const { ctx } = rec;
  if (count * 4 > ctx.maxBinding) throw new Error(`fusedMoe: scratch ${name} of ${count * 4} bytes exceeds one storage binding (${ctx.maxBinding}); fewer tokens per step`);
  const buffer = ctx.scratchBuffer(name, count * 4);
  return { buffer, offset: 0, shape: [buffer.size / 4], dtype };
}
