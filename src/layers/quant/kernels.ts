/**
 * The kernels of the block-quantized LinearMethod (any format of formats/), which read packed blocks straight from
 * the weight buffers (never expanded in memory); rows are worked in chunks of 32 elements that the format's qChunk
 * dequantizes in registers:
 * - GEMV (`shaders/linear.q.gemv.wgsl`, T <= GEMV_MAX_TOKENS): decode. A row group of LANES threads splits a
 *   weight row's chunks (LANES past the subgroup: sums through workgroup memory, ops/common.ts laneSumKernel); with
 *   tuning.quantGemvStage the inputs go through workgroup memory first (coalesced loads). RMSNorm of the input,
 *   gating, bias and the residual are fused. Where the device has
 *   packed 4x8 integer dot products (from tuning.quantGemvInt8MinTokens tokens on), the int8-activation GEMV instead (kernels-i8.ts).
 * - subgroup matrices (tensor cores; larger T where the device has them, as ops.linear's f16 path and with its
 *   tiles, split-K and epilogues: ops.mmaLinear): linear.mma.wgsl's staged-q form dequantizes each 32-element
 *   chunk of the tile's weight rows as it stages them in workgroup memory (in f16).
 * - register-blocked (`shaders/linear.q.tiled.wgsl`, larger T elsewhere: CPU drivers): each thread holds TM tokens
 *   x 4 columns and dequantizes each chunk of its 4 weight rows once for its TM tokens. Bias, gating and the
 *   residual are fused; the input's RMSNorm is an rmsNorm dispatch into a scratch tensor first (the tensor-core
 *   path's likewise).
 * - embedding rows (`shaders/linear.q.embed.wgsl`): one thread per token and chunk.
 * A gated weight split into parts runs ungated into a scratch tensor, then gatedAct (as ops.linear).
 * normOut and deferSplit are honoured on the tensor-core path for single-part weights, as ops.linear does
 * (linear's result says what was done).
 */
import { paramsStruct } from '../../gpu/pipelines.js';
import type { Recorder } from '../../gpu/recorder.js';
import type { KernelTuning } from '../../gpu/tuning.js';
import { bindTensor, type Tensor } from '../../gpu/tensor.js';
import { fusionConstants, fusionKey, gemvParams, LINEAR_PARAMS, mmaLinear, mmaTile, notFused, partParams, runGemv, type Fusion, type LinearOptions, type LinearResult } from '../../ops/linear.js';
import { GEMV_ROPE_BINDINGS, gemvRope, gemvRopeCode, gemvRopePrelude } from '../../ops/linear-rope.js';
import { actCode, gatedAct } from '../../ops/elementwise.js';
import { rmsNorm } from '../../ops/norm.js';
import { expectTensor, grid, laneSumKernel, wholeBuffer } from '../../ops/common.js';
import activationLib from '../../../shaders/lib/activation.wgsl';
import linearLib from '../../../shaders/lib/linear.wgsl';
import threadLib from '../../../shaders/lib/thread.wgsl';
import qBlockLib from '../../../shaders/lib/q_block.wgsl';
import gemvLib from '../../../shaders/lib/gemv.wgsl';
import workgroupSumLib from '../../../shaders/lib/workgroup_sum.wgsl';
import gemvSource from '../../../shaders/linear.q.gemv.wgsl';
import tiledSource from '../../../shaders/linear.q.tiled.wgsl';
import embedSource from '../../../shaders/linear.q.embed.wgsl';
import { QK } from './format.js';
import { int8Gemv, stagedGemvInt8, stagedInt8Tokens, useInt8Gemv } from './kernels-i8.js';
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

/** Largest T on the GEMV; tokens per GEMV workgroup at most (its threads, lanes and rows: tuning.quantGemv, quantGemvOne for one token). */
const GEMV_MAX_TOKENS = 8;
const GEMV_TOKENS = 4;
/** Chunks of one token's inputs per staged segment (tuning.quantGemvStage): 9 KiB of workgroup memory with the padding. */
const GEMV_STAGE_CHUNKS = 64;
/** The same for int8 inputs (40 bytes a chunk: 10 KiB): K up to 8192 in one segment at one token. */
const GEMV_STAGE_CHUNKS_I8 = 256;
/** Register-blocked kernel: tokens per thread and the workgroup. */
const TILED_TM = 4;
const TILED_WX = 8;
const TILED_WY = 8;
const EMBED_WG = 64;

/** The GEMV's [threads, lanes, rows] for T tokens of K inputs: quantGemv, or for one token quantGemvOne (quantGemvOneLong from gemvLongK on). */
export function quantGemvShape(tune: KernelTuning, T: number, K: number): readonly [number, number, number] {
  return T > 1 ? tune.quantGemv : K >= tune.gemvLongK ? tune.quantGemvOneLong : tune.quantGemvOne;
}

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
 * out[t, :] (+)= f(x[t, :]) W^T + bias for t < T with W block-quantized; the options as ops.linear's (normOut and
 * deferSplit only on the tensor-core path; the result says).
 *
 * @param x     f32 [T, K] (K = w.cols, whole blocks)
 * @param bias  f32 [N] or null
 * @param out   f32 [T, N] (gated: [T, N / 2]); must not alias x
 * @example
 * quantLinear(rec, hidden, layer.gateUp, null, mlp, T, { rmsNorm: { weight: norm, eps: 1e-5 }, gated: 'silu' });
 */
export function quantLinear(rec: Recorder, x: Tensor, w: QuantWeight, bias: Tensor | null, out: Tensor, T: number, opts: LinearOptions = {}): LinearResult {
  const result = notFused();
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
  const gemv = T <= GEMV_MAX_TOKENS;
  if (opts.gated && w.parts.length > 1) {
    const both = scratchTensor(rec, 'linear.gated', T * w.rows);
    quantLinear(rec, x, w, bias, both, T, { rmsNorm: opts.rmsNorm });
    gatedAct(rec, both, out, T, gatedRows, opts.gated);
    return result;
  }
  const tune = ctx.tuning;
  // Tensor cores where the device has them (the weight's chunks dequantized as they are staged): a tile of the
  // tuning's for quantized weights (always staged), whose gated blocks pair up.
  let tile = !gemv && ctx.subgroupMatrix && tune.mmaMinTokens > 0 && T >= tune.mmaMinTokens ? mmaTile(tune, T, w.rows, K, ctx.limits.maxComputeWorkgroupStorageSize, true) : null;
  if (tile && opts.gated && tile[1] % 2 !== 0) tile = null;
  let input = x;
  if (opts.rmsNorm && !gemv) {
    input = scratchTensor(rec, 'linear.normed', T * K);
    rmsNorm(rec, x, opts.rmsNorm.weight, input, T, K, opts.rmsNorm.eps);
  }
  const gated = opts.gated ? actCode(opts.gated) : -1;
  const fusion: Fusion = { norm: !!opts.rmsNorm && gemv, gated, residual: !!opts.residual };
  if (tile) {
    // One part of one format at a time (a Q4_K_M weight mixes formats); opts.normOut and deferSplit need one part.
    const single = w.parts.length === 1 ? opts : { gated: opts.gated, residual: opts.residual };
    for (const part of w.parts) {
      if (part.rows === 0) continue;
      const blocks = { name: part.format, wgsl: blockFormat(part.format).wgsl };
      const r = mmaLinear(rec, input, [{ ...part, wStride: part.rowStride }], blocks, tile, K, N, bias, out, T, fusion, single);
      if (w.parts.length === 1) return r;
    }
    return result;
  }
  const fused = fusionConstants(fusion);
  const fkey = fusionKey(fusion);
  const lib = `${activationLib}\n${linearLib}\n${qBlockLib}\n`;
  const xb = bindTensor(ctx, input, 'linear x');
  const ob = bindTensor(ctx, out, 'linear out');
  const bb = bias ? bindTensor(ctx, bias, 'linear bias') : wholeBuffer(ctx.dummy);
  const eps = fusion.norm ? opts.rmsNorm!.eps : 0;
  const [gemvWg, gemvLanes, gemvRows] = quantGemvShape(tune, T, K);
  if (gemv && !stagedInt8Tokens(rec, T) && useInt8Gemv(rec, w, T)) {
    int8Gemv(rec, x, w, bias, out, T, opts, gemvTokens(T), [gemvWg, gemvLanes, gemvRows]);
    return result;
  }
  // The fused rope (ops/linear-rope.ts): plain GEMVs only.
  const rope = gemv && !opts.gated && !opts.residual ? gemvRope(rec, opts.rope, w.parts, N, T) : null;
  for (const part of w.parts) {
    if (part.rows === 0) continue;
    const params = partParams(part, part.rowStride, T, K, N, gatedRows, !!bias, eps);
    const cols = params.N;
    const wb = wholeBuffer(part.buffer);
    if (gemv) {
      const tt = gemvTokens(T);
      const ls = laneSumKernel(ctx, gemvLanes);
      const rows = opts.gated || rope ? Math.max(2, gemvRows) : gemvRows;
      const stage = tune.quantGemvStage;
      // Int8 inputs quantized in the stage (kernels-i8.ts), or the float ones.
      const i8 = stagedGemvInt8(rec, T, part.format, !!rope, blockFormat(part.format).wgsl);
      const segc = (i8.i8 ? GEMV_STAGE_CHUNKS_I8 : GEMV_STAGE_CHUNKS) / tt;
      const key = `linear.q.gemv.${part.format}.${tt}.${gemvWg}.${gemvLanes}.${rows}.${ls.key}${stage ? '.x' : ''}${i8.key}.${fkey}${rope ? `.rope.${rope.kt}` : ''}`;
      const kernel = ctx.pipelines.kernel(key, () => ({
        name: key,
        code: `${lib}${gemvRopeCode(rope)}${ls.code}\n${workgroupSumLib}\n${gemvLib}\n${i8.code}\n${gemvSource}`,
        prelude: `${i8.i8 && !ls.subgroups ? 'enable subgroups;\n' : ''}${ls.prelude}${i8.prelude}${gemvRopePrelude(rope)}const TT = ${tt}u;\nconst R = ${rows}u;\nconst STAGE = ${stage};\nconst SEGC = ${segc}u;\n`,
        constants: { WG: gemvWg, LANES: gemvLanes, NORM: fusion.norm ? 1 : 0, ...fused },
        bindings: [...(rope ? ['read', 'read', 'read', 'read', 'write', ...GEMV_ROPE_BINDINGS] as const : ['read', 'read', 'read', 'read', 'write'] as const), ...(i8.w4 ? ['read'] as const : [])],
        params: gemvParams(rope),
      }));
      const gb = fusion.norm ? bindTensor(ctx, opts.rmsNorm!.weight, 'linear rmsNorm weight') : wholeBuffer(ctx.dummy);
      const perGroup = (gemvWg / gemvLanes) * (opts.gated || rope ? rows / 2 : rows);
      runGemv(rec, kernel, params, [xb, wb, bb, gb, ob], perGroup, tt, rope, i8.w4 ? [wb] : []);
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
  return { ...result, roped: !!rope };
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
