/**
 * The quantized GEMV with int8 activations (llama.cpp's MMVQ), for decode steps (T <= 8) where the device has WGSL's
 * packed_4x8_integer_dot_product and T >= tuning.quantGemvInt8MinTokens: the input (RMSNorm fused) is quantized once per
 * linear to blocks of 32 int8 with a scale (shaders/linear.q.quantize.wgsl), then every part of the weight runs
 * shaders/linear.q.gemv.i8.wgsl, whose format reader (formats/int8.ts) hands it int8 quants for dot4I8Packed.
 * The activations' rounding (|error| <= d_x / 2 per element, d_x = max |x| / 127 over its block) is the only
 * difference from the float GEMV: a relative error of the product near 1e-2 at worst, well below a 4-bit weight's.
 */
import { paramsStruct } from '../../gpu/pipelines.js';
import type { Recorder } from '../../gpu/recorder.js';
import { bindTensor, type Tensor } from '../../gpu/tensor.js';
import { fusionConstants, fusionKey, LINEAR_PARAMS, partParams, type Fusion, type LinearOptions } from '../../ops/linear.js';
import { actCode } from '../../ops/elementwise.js';
import { grid, laneSumKernel, wholeBuffer, wholeSubgroups } from '../../ops/common.js';
import activationLib from '../../../shaders/lib/activation.wgsl';
import linearLib from '../../../shaders/lib/linear.wgsl';
import qBlockLib from '../../../shaders/lib/q_block.wgsl';
import gemvLib from '../../../shaders/lib/gemv.wgsl';
import quantizeSource from '../../../shaders/linear.q.quantize.wgsl';
import gemvI8Source from '../../../shaders/linear.q.gemv.i8.wgsl';
import { I8_WGSL, i8Reader, QI8_STRUCT } from './formats/int8.js';
import roundI8Lib from '../../../shaders/lib/round_i8.wgsl';
import stageI8Lib from '../../../shaders/lib/gemv.stage_i8.wgsl';
import type { QuantFormat } from './formats/index.js';
import type { QuantWeight } from './kernels.js';
import { GEMV_NO_ROPE } from '../../ops/linear-rope.js';

/** linear.q.quantize.wgsl: tokens, columns, the RMSNorm's eps. */
const QUANTIZE_PARAMS = paramsStruct({ T: 'u32', K: 'u32', eps: 'f32' });

/** Whether this linear of T tokens runs on the int8 GEMV: device and tuning allow it, every part's format has a reader. */
export function useInt8Gemv(rec: Recorder, w: QuantWeight, T: number): boolean {
  const { ctx } = rec;
  const min = ctx.tuning.quantGemvInt8MinTokens;
  return ctx.packedDot && min > 0 && T >= min && w.parts.every((p) => p.rows === 0 || I8_WGSL[p.format] !== undefined);
}

/**
 * Whether the staged float GEMV quantizes its inputs to int8 itself for T tokens (tuning.quantGemvStageInt8; four
 * threads a chunk by subgroup shuffles, so subgroups must follow the invocation index in fours).
 */
export function stagedInt8Tokens(rec: Recorder, T: number): boolean {
  const { ctx } = rec;
  const max = ctx.tuning.quantGemvStageInt8;
  return ctx.packedDot && ctx.tuning.quantGemvStage && T <= max && wholeSubgroups(ctx, 4);
}

/** lib/gemv.stage_i8.wgsl's stubs, for the staged GEMV on float inputs (and a qChunk stub for the int8 one). */
const STAGE_I8_STUBS = `fn segmentI8(acc: ptr<function, array<array<f32, R>, TT>>, ss: ptr<function, array<f32, TT>>, s0: u32, nc: u32, row: array<u32, R>, xr: array<u32, TT>, lid: u32, lane: u32) {}
`;
const QCHUNK_STUB = 'fn qChunk(row: u32, c: u32) -> array<vec4<f32>, 8> { return array<vec4<f32>, 8>(); }\n';

/**
 * The code, prelude and extra binding of the staged quantized GEMV (linear.q.gemv.wgsl) for a part of `format`: with
 * int8 inputs (I8: lib/gemv.stage_i8.wgsl and the format's int8 reader, whose `w4` is binding 6, or 11 after the
 * fused rope's bindings) where stagedInt8Tokens holds and the format has a reader (and, for a reader of w4 behind the
 * rope, the device binds 11 storage buffers); else the float reader `floatReader` and the stubs.
 */
export function stagedGemvInt8(rec: Recorder, T: number, format: QuantFormat, rope: boolean, floatReader: string): { i8: boolean; code: string; prelude: string; w4: boolean; key: string } {
  const reader = stagedInt8Tokens(rec, T) ? i8Reader(format, rope ? 11 : 6) : undefined;
  if (!reader || (reader.w4 && rope && rec.ctx.limits.maxStorageBuffersPerShaderStage < 11)) {
    return { i8: false, code: STAGE_I8_STUBS, prelude: `${floatReader}const I8 = false;\n`, w4: false, key: '' };
  }
  const prelude = `${QI8_STRUCT}${reader.wgsl}${QCHUNK_STUB}const I8 = true;\n`;
  return { i8: true, code: `${roundI8Lib}${stageI8Lib}`, prelude, w4: reader.w4, key: '.i8' };
}

/** The int8 activations of x [T, K] (RMSNorm first when opts.rmsNorm): blocks [T, K / 32] of 8 words, scales (d, d sum). */
export function quantizeActivations(rec: Recorder, x: Tensor, T: number, K: number, opts: LinearOptions): { xq: GPUBuffer; xs: GPUBuffer } {
  const { ctx } = rec;
  const nb = K / 32;
  const xq = ctx.scratchBuffer('linear.xq', T * K);
  const xs = ctx.scratchBuffer('linear.xs', T * nb * 8);
  const norm = opts.rmsNorm ? 1 : 0;
  // Threads per workgroup, 8 per block of 32: the row reductions' (256 on GPUs, 8 on CPU drivers).
  const wg = Math.max(8, ctx.tuning.rowWorkgroup);
  const key = `linear.q.quantize.${norm}.${wg}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: `${roundI8Lib}${quantizeSource}`,
    bindings: ['read', 'read', 'write', 'write'],
    params: QUANTIZE_PARAMS,
    constants: { WG: wg, NORM: norm },
  }));
  const g = opts.rmsNorm ? bindTensor(ctx, opts.rmsNorm.weight, 'linear rmsNorm weight') : wholeBuffer(ctx.dummy);
  rec.run(kernel, { T, K, eps: opts.rmsNorm?.eps ?? 0 }, [bindTensor(ctx, x, 'linear x'), g, wholeBuffer(xq), wholeBuffer(xs)], Math.ceil(nb / (wg / 8)), T);
  return { xq, xs };
}

/**
 * out (+)= f(x) W^T + bias on the int8 GEMV (T <= 8; the caller checked useInt8Gemv and the shapes), with quantLinear's
 * fusions: RMSNorm in the quantize pass, bias / gating / residual in the GEMV's epilogue.
 *
 * @param tt    tokens per workgroup (1, 2 or 4)
 * @param shape [threads per workgroup, threads per row group, rows per row group] (tuning.quantGemv / quantGemvOne)
 */
export function int8Gemv(rec: Recorder, x: Tensor, w: QuantWeight, bias: Tensor | null, out: Tensor, T: number, opts: LinearOptions, tt: number, shape: readonly [number, number, number]): void {
  const { ctx } = rec;
  const K = w.cols;
  const gatedRows = opts.gated ? w.rows / 2 : 0;
  const N = opts.gated ? gatedRows : w.rows;
  const { xq, xs } = quantizeActivations(rec, x, T, K, opts);
  const fusion: Fusion = { norm: false, gated: opts.gated ? actCode(opts.gated) : -1, residual: !!opts.residual };
  const fused = fusionConstants(fusion);
  const fkey = fusionKey(fusion);
  const [wg, lanes, rows0] = shape;
  const ls = laneSumKernel(ctx, lanes);
  const rows = opts.gated ? Math.max(2, rows0) : rows0;
  const ob = bindTensor(ctx, out, 'linear out');
  const bb = bias ? bindTensor(ctx, bias, 'linear bias') : wholeBuffer(ctx.dummy);
  for (const part of w.parts) {
    if (part.rows === 0) continue;
    const params = partParams(part, part.rowStride, T, K, N, gatedRows, !!bias, 0);
    const key = `linear.q.gemv.i8.${part.format}.${tt}.${wg}.${lanes}.${rows}.${ls.key}.${fkey}`;
    const kernel = ctx.pipelines.kernel(key, () => ({
      name: key,
      code: `${activationLib}\n${linearLib}\n${qBlockLib}\n${ls.code}\n${GEMV_NO_ROPE}${gemvLib}\n${gemvI8Source}`,
      prelude: `${ls.prelude}${QI8_STRUCT}${I8_WGSL[part.format]}const TT = ${tt}u;\nconst R = ${rows}u;\n`,
      constants: { WG: wg, LANES: lanes, ...fused },
      // Binding 6: the weight again, as vec4<u32> (the readers of 16-byte aligned blocks declare it: formats/int8.ts).
      bindings: ['read', 'read', 'read', 'read', 'write', 'read'],
      params: LINEAR_PARAMS,
    }));
    const perGroup = (wg / lanes) * (opts.gated ? rows / 2 : rows);
    const [gx, gz] = grid(ctx, Math.ceil(params.N / perGroup));
    const wb = wholeBuffer(part.buffer);
    rec.run(kernel, params, [wholeBuffer(xq), wholeBuffer(xs), wb, bb, ob, wb], gx, Math.ceil(T / tt), gz);
  }
}
