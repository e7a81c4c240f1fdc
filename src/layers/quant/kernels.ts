/**
 * The kernels of the block-quantized LinearMethod (any format of formats/), which read packed blocks straight from
 * the weight buffers (never expanded in memory); rows are worked in chunks of 32 elements that the format's qChunk
 * dequantizes in registers:
 * - GEMV (`shaders/linear.q.gemv.wgsl`, T <= GEMV_MAX_TOKENS): decode. A row group of LANES threads splits a
 *   weight row's chunks. RMSNorm of the input, gating, bias and the residual are fused.
 * - register-blocked (`shaders/linear.q.tiled.wgsl`, larger T): each thread holds TM tokens x 4 columns and
 *   dequantizes each chunk of its 4 weight rows once for its TM tokens. Bias, gating and the residual are fused;
 *   the input's RMSNorm is an rmsNorm dispatch into a scratch tensor first.
 * - embedding rows (`shaders/linear.q.embed.wgsl`): one thread per token and chunk.
 * A gated weight split into parts runs ungated into a scratch tensor, then gatedAct (as ops.linear).
 * normOut is never fused here (linear's result says so and the decoder normalises itself).
 */
import { paramsStruct } from '../../gpu/pipelines.js';
import type { Recorder } from '../../gpu/recorder.js';
import { bindTensor, type Tensor } from '../../gpu/tensor.js';
import { LINEAR_PARAMS, partParams, type LinearOptions, type LinearResult } from '../../ops/linear.js';
import { actCode, gatedAct } from '../../ops/elementwise.js';
import { rmsNorm } from '../../ops/norm.js';
import { expectTensor, grid, wholeBuffer } from '../../ops/common.js';
import activationLib from '../../../shaders/lib/activation.wgsl';
import linearLib from '../../../shaders/lib/linear.wgsl';
import threadLib from '../../../shaders/lib/thread.wgsl';
import qBlockLib from '../../../shaders/lib/q_block.wgsl';
import laneSumSubgroup from '../../../shaders/lib/lane_sum.subgroup.wgsl';
import laneSumShared from '../../../shaders/lib/lane_sum.shared.wgsl';
import gemvSource from '../../../shaders/linear.q.gemv.wgsl';
import tiledSource from '../../../shaders/linear.q.tiled.wgsl';
import embedSource from '../../../shaders/linear.q.embed.wgsl';
import { QK } from './format.js';
import { blockFormat, type QuantFormat } from './formats/index.js';

/**
 * A block-quantized weight [rows, cols] in parts of whole rows, each within one storage binding. A part holds rows
 * of one format (rows of `rowStride` bytes: the row's blocks, padded to 4 bytes); parts of one weight may differ
 * (a fused q|k|v of a Q4_K_M file: q and k in q4_k, v in q6_k).
 */
export interface QuantWeight {
  rows: number;
  cols: number;
  parts: QuantPart[];
}

export interface QuantPart {
  buffer: GPUBuffer;
  /** The weight rows it holds: rowStart .. rowStart + rows - 1. */
  rowStart: number;
  rows: number;
  format: QuantFormat;
  /** Bytes between consecutive rows: the row's blocks, rounded up to a multiple of 4 (WebGPU words). */
  rowStride: number;
}

/** linear.q.embed.wgsl: T tokens of K columns, the part's row stride in bytes, first row and row count, accumulate (0 / 1), the multiplier. */
const EMBED_PARAMS = paramsStruct({ T: 'u32', K: 'u32', stride: 'u32', rowStart: 'u32', rows: 'u32', accumulate: 'u32', scale: 'f32' });

/** Largest T on the GEMV; tokens per GEMV workgroup at most; its threads, lanes per row and weight rows per row group. */
const GEMV_MAX_TOKENS = 8;
const GEMV_TOKENS = 4;
const GEMV_WG = 64;
const GEMV_LANES = 8;
const GEMV_ROWS = 2;
/** Register-blocked kernel: tokens per thread and the workgroup. */
const TILED_TM = 4;
const TILED_WX = 8;
const TILED_WY = 8;
const EMBED_WG = 64;

/** Tokens per GEMV workgroup: the fewest of 1, 2, 4 that covers T. */
function gemvTokens(T: number): number {
  let tt = 1;
  while (tt < T && tt < GEMV_TOKENS) tt *= 2;
  return tt;
}

/** The op's scratch buffer `name` as an f32 tensor of at least `count` elements (whole buffer: stable bind groups). */
function scratchTensor(rec: Recorder, name: string, count: number): Tensor {
  const buffer = rec.ctx.scratchBuffer(name, count * 4);
  return { buffer, offset: 0, shape: [buffer.size / 4], dtype: 'f32' };
}

/**
 * out[t, :] (+)= f(x[t, :]) W^T + bias for t < T with W block-quantized; the options as ops.linear's (normOut is not
 * fused: the result's `normed` is false; deferSplit is ignored: there are no split sums).
 *
 * @param x     f32 [T, K] (K = w.cols, whole blocks)
 * @param bias  f32 [N] or null
 * @param out   f32 [T, N] (gated: [T, N / 2]); must not alias x
 * @example
 * quantLinear(rec, hidden, layer.gateUp, null, mlp, T, { rmsNorm: { weight: norm, eps: 1e-5 }, gated: 'silu' });
 */
export function quantLinear(rec: Recorder, x: Tensor, w: QuantWeight, bias: Tensor | null, out: Tensor, T: number, opts: LinearOptions = {}): LinearResult {
  const result: LinearResult = { normed: false, split: null };
  if (T === 0) return result;
  const { ctx } = rec;
  const K = w.cols;
  const gatedRows = opts.gated ? w.rows / 2 : 0;
  if (opts.gated && (w.rows % 2 !== 0 || opts.residual)) {
    throw new Error(`linear (${w.parts[0].format}): a gated weight needs an even row count (got ${w.rows}) and no residual`);
  }
  const N = opts.gated ? gatedRows : w.rows;
  expectTensor(x, 'f32', T * K, 'linear x');
  expectTensor(out, 'f32', T * N, 'linear out');
  if (bias) expectTensor(bias, 'f32', w.rows, 'linear bias');
  if (opts.rmsNorm) expectTensor(opts.rmsNorm.weight, 'f32', K, 'linear rmsNorm weight');
  if (opts.gated && w.parts.length > 1) {
    const both = scratchTensor(rec, 'linear.gated', T * w.rows);
    quantLinear(rec, x, w, bias, both, T, { rmsNorm: opts.rmsNorm });
    gatedAct(rec, both, out, T, gatedRows, opts.gated);
    return result;
  }
  const gemv = T <= GEMV_MAX_TOKENS;
  let input = x;
  if (opts.rmsNorm && !gemv) {
    input = scratchTensor(rec, 'linear.normed', T * K);
    rmsNorm(rec, x, opts.rmsNorm.weight, input, T, K, opts.rmsNorm.eps);
  }
  const norm = !!opts.rmsNorm && gemv;
  const gated = opts.gated ? actCode(opts.gated) : -1;
  const fused = { GATED: gated >= 0 ? 1 : 0, RESIDUAL: opts.residual ? 1 : 0, ACT: Math.max(0, gated) };
  const fkey = `${norm ? 'n' : ''}${gated >= 0 ? `g${gated}` : ''}${opts.residual ? 'r' : ''}`;
  const lib = `${activationLib}\n${linearLib}\n${qBlockLib}\n`;
  const xb = bindTensor(ctx, input, 'linear x');
  const ob = bindTensor(ctx, out, 'linear out');
  const bb = bias ? bindTensor(ctx, bias, 'linear bias') : wholeBuffer(ctx.dummy);
  const eps = norm ? opts.rmsNorm!.eps : 0;
  for (const part of w.parts) {
    if (part.rows === 0) continue;
    const params = partParams(part, part.rowStride, T, K, N, gatedRows, !!bias, eps);
    const cols = params.N;
    const wb = wholeBuffer(part.buffer);
    if (gemv) {
      const tt = gemvTokens(T);
      // The butterfly needs every subgroup to hold whole row groups.
      const subgroup = ctx.subgroups && ctx.subgroupMinSize >= GEMV_LANES;
      const key = `linear.q.gemv.${part.format}.${tt}.${subgroup ? 's' : 'w'}.${fkey}`;
      const kernel = ctx.pipelines.kernel(key, () => ({
        name: key,
        code: `${lib}${subgroup ? laneSumSubgroup : laneSumShared}\n${gemvSource}`,
        prelude: `${subgroup ? 'enable subgroups;\n' : ''}${blockFormat(part.format).wgsl}const TT = ${tt}u;\nconst R = ${GEMV_ROWS}u;\n`,
        constants: { WG: GEMV_WG, LANES: GEMV_LANES, NORM: norm ? 1 : 0, ...fused },
        bindings: ['read', 'read', 'read', 'read', 'write'],
        params: LINEAR_PARAMS,
      }));
      const gb = norm ? bindTensor(ctx, opts.rmsNorm!.weight, 'linear rmsNorm weight') : wholeBuffer(ctx.dummy);
      const perGroup = (GEMV_WG / GEMV_LANES) * (opts.gated ? GEMV_ROWS / 2 : GEMV_ROWS);
      const [gx, gz] = grid(ctx, Math.ceil(cols / perGroup));
      rec.run(kernel, params, [xb, wb, bb, gb, ob], gx, Math.ceil(T / tt), gz);
      continue;
    }
    const key = `linear.q.tiled.${part.format}.${fkey}`;
    const kernel = ctx.pipelines.kernel(key, () => ({
      name: key,
      code: `${lib}${tiledSource}`,
      prelude: `${blockFormat(part.format).wgsl}const TM = ${TILED_TM}u;\n`,
      constants: { WX: TILED_WX, WY: TILED_WY, ...fused },
      bindings: ['read', 'read', 'read', 'write'],
      params: LINEAR_PARAMS,
    }));
    const tileCols = opts.gated ? 2 * cols : cols;
    const [gx, gz] = grid(ctx, Math.ceil(tileCols / (4 * TILED_WX)));
    rec.run(kernel, params, [xb, wb, bb, ob], gx, Math.ceil(T / (TILED_TM * TILED_WY)), gz);
  }
  return result;
}

/**
 * out[t, :] = W[ids[t], :] * scale (or += with accumulate), the rows dequantized by the format.
 *
 * @param ids  u32 [T]
 * @param out  f32 [T, K]
 */
export function quantEmbed(rec: Recorder, ids: Tensor, w: QuantWeight, out: Tensor, T: number, accumulate = false, scale = 1): void {
  if (T === 0) return;
  if (!Number.isFinite(scale)) throw new Error(`embed: scale ${scale} is not a finite number`);
  const { ctx } = rec;
  const K = w.cols;
  expectTensor(ids, 'u32', T, 'embed ids');
  expectTensor(out, 'f32', T * K, 'embed out');
  const [gx, gy] = grid(ctx, Math.ceil((T * K) / QK / EMBED_WG));
  const ib = bindTensor(ctx, ids, 'embed ids');
  const ob = bindTensor(ctx, out, 'embed out');
  for (const part of w.parts) {
    if (part.rows === 0) continue;
    const key = `linear.q.embed.${part.format}`;
    const kernel = ctx.pipelines.kernel(key, () => ({
      name: key,
      code: `${threadLib}\n${qBlockLib}\n${embedSource}`,
      prelude: blockFormat(part.format).wgsl,
      bindings: ['read', 'read', 'write'],
      params: EMBED_PARAMS,
      constants: { WG: EMBED_WG },
    }));
    const params = { T, K, stride: part.rowStride, rowStart: part.rowStart, rows: part.rows, accumulate: accumulate ? 1 : 0, scale };
    rec.run(kernel, params, [ib, wholeBuffer(part.buffer), ob], gx, gy);
  }
}
