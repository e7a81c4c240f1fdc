/**
 * linear: y = x W^T + b, with W a {@link Weight} in HF [out, in] layout, f32 or f16.
 *
 * Three kernels, picked by the token count T and the device's tuning:
 * - GEMV (`shaders/linear.gemv.wgsl`, T <= tuning.gemvMaxTokens): decode is memory bound, so each quad of
 *   weight rows is read once with vector loads by tuning.gemvSplit threads splitting K, for up to 4 tokens.
 * - shared-memory tiles (`shaders/linear.gemm.wgsl`, tuning.matmul 'shared', GPUs): a workgroup stages x and w
 *   tiles in shared memory and each thread accumulates a 4 x 4 block.
 * - register-blocked (`shaders/linear.tiled.wgsl`, tuning.matmul 'registers', CPU drivers): each thread keeps a
 *   tuning.tiledTokens x 4 block of outputs in registers and walks K with vec4 loads, no shared memory.
 * A weight split into parts is one dispatch per part, each writing its column range of the output.
 */
import type { KernelSource } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, type Tensor, type Weight } from '../gpu/tensor.js';
import gemvSource from '../../shaders/linear.gemv.wgsl';
import tiledSource from '../../shaders/linear.tiled.wgsl';
import gemmSource from '../../shaders/linear.gemm.wgsl';
import { expectTensor, grid, weightPrelude, wholeBuffer } from './common.js';

/** Tokens per GEMV workgroup for T tokens: 1 and 2 avoid computing clamped duplicates. */
const gemvTokens = (T: number): number => (T <= 1 ? 1 : T === 2 ? 2 : 4);

function linearKernel(rec: Recorder, path: 'gemv' | 'tiled' | 'gemm', dtype: 'f32' | 'f16', vw: 1 | 4, T: number) {
  const tune = rec.ctx.tuning;
  let key: string;
  let make: () => KernelSource;
  const common = { bindings: ['read', 'read', 'read', 'write'] as const, params: 'uuuuuuu' };
  if (path === 'gemv') {
    const tokens = gemvTokens(T);
    key = `linear.gemv.${dtype}.${vw}.${tokens}.${tune.gemvWorkgroup}.${tune.gemvSplit}`;
    make = () => ({
      name: key,
      code: gemvSource,
      prelude: `${weightPrelude(dtype, vw)}const TT = ${tokens}u;\n`,
      constants: { WG: tune.gemvWorkgroup, SPLIT: tune.gemvSplit },
      ...common,
    });
  } else if (path === 'gemm') {
    const [wx, wy] = tune.gemmWorkgroup;
    key = `linear.gemm.${dtype}.${wx}x${wy}.${tune.gemmK}`;
    make = () => ({
      name: key,
      code: gemmSource,
      prelude: weightPrelude(dtype, 4),
      constants: { WX: wx, WY: wy, BK: tune.gemmK },
      ...common,
    });
  } else {
    const [wx, wy] = tune.tiledWorkgroup;
    key = `linear.tiled.${dtype}.${vw}.${tune.tiledTokens}.${wx}x${wy}`;
    make = () => ({
      name: key,
      code: tiledSource,
      prelude: `${weightPrelude(dtype, vw)}const TM = ${tune.tiledTokens}u;\n`,
      constants: { WX: wx, WY: wy },
      ...common,
    });
  }
  return rec.ctx.pipelines.kernel(key, make);
}

/**
 * out[t, :] = x[t, :] W^T + bias for t < T.
 *
 * @param x     f32 [T, K] (K = w.cols)
 * @param w     [N, K], any number of parts
 * @param bias  f32 [N] or null
 * @param out   f32 [T, N]; must not alias x
 * @example
 * linear(rec, normed, layer.qkvProj, layer.qkvBias, qkv, T); // [T, H] -> [T, (nH + 2 nKv) D]
 */
export function linear(rec: Recorder, x: Tensor, w: Weight, bias: Tensor | null, out: Tensor, T: number): void {
  if (T === 0) return;
  const { ctx } = rec;
  const K = w.cols;
  const N = w.rows;
  expectTensor(x, 'f32', T * K, 'linear x');
  expectTensor(out, 'f32', T * N, 'linear out');
  if (bias) expectTensor(bias, 'f32', N, 'linear bias');
  const vw = K % 4 === 0 ? 4 : 1;
  const tune = ctx.tuning;
  const path = T <= tune.gemvMaxTokens ? 'gemv' : tune.matmul === 'shared' && vw === 4 ? 'gemm' : 'tiled';
  const kernel = linearKernel(rec, path, w.dtype, vw, T);
  const xb = bindTensor(ctx, x, 'linear x');
  const ob = bindTensor(ctx, out, 'linear out');
  const bb = bias ? bindTensor(ctx, bias, 'linear bias') : wholeBuffer(ctx.dummy);
  const hasBias = bias ? 1 : 0;
  for (const part of w.parts) {
    if (part.rows === 0) continue;
    const params = [T, K, part.rows, w.rowStride, N, part.rowStart, hasBias];
    const bindings = [xb, wholeBuffer(part.buffer), bb, ob];
    // Columns and tokens per workgroup.
    const [cols, tokens] =
      path === 'gemv'
        ? [(4 * tune.gemvWorkgroup) / tune.gemvSplit, gemvTokens(T)]
        : path === 'gemm'
          ? [4 * tune.gemmWorkgroup[0], 4 * tune.gemmWorkgroup[1]]
          : [4 * tune.tiledWorkgroup[0], tune.tiledTokens * tune.tiledWorkgroup[1]];
    const [gx, gz] = grid(ctx, Math.ceil(part.rows / cols));
    rec.run(kernel, params, bindings, gx, Math.ceil(T / tokens), gz);
  }
}
