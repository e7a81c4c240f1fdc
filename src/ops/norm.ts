/**
 * Normalisations: RMSNorm, LayerNorm, the q/k RMSNorm on a fused qkv (per head or over the whole projection), and
 * the sandwich norm added to the residual stream with the next block's pre-norm fused (one dispatch instead of
 * two: per-step CPU cost is per dispatch).
 */
import { paramsStruct, type BindingKind, type BufferBinding, type Kernel, type ParamFields, type ParamsStruct } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, sameStart, type Tensor } from '../gpu/tensor.js';
import rmsSource from '../../shaders/rms_norm.wgsl';
import rmsInplaceSource from '../../shaders/rms_norm.inplace.wgsl';
import rmsPostAddSource from '../../shaders/rms_norm.post_add.wgsl';
import layerSource from '../../shaders/layer_norm.wgsl';
import workgroupSumLib from '../../shaders/lib/workgroup_sum.wgsl';
import { expectTensor, grid } from './common.js';
import type { RmsNormOut } from './linear.js';
import type { QkvLayout } from './attention.js';

/** rms_norm.wgsl, layer_norm.wgsl: rows of H. */
const ROW_PARAMS = paramsStruct({ rows: 'u32', H: 'u32', eps: 'f32' });
/**
 * rms_norm.inplace.wgsl: rows of H (g < split) or HB (g >= split) elements, g = r % groups, row r at
 * (r / groups) tokenStride + g H.
 */
const INPLACE_PARAMS = paramsStruct({ rows: 'u32', H: 'u32', groups: 'u32', tokenStride: 'u32', split: 'u32', eps: 'f32', HB: 'u32' });
/** rms_norm.post_add.wgsl: rows of H, the sandwich norm's eps and the next pre-norm's. */
const POST_ADD_PARAMS = paramsStruct({ rows: 'u32', H: 'u32', eps: 'f32', nextEps: 'f32' });

/** A norm kernel: one workgroup of tuning.rowWorkgroup threads per row, summing through lib/workgroup_sum.wgsl. */
function rowKernel<F extends ParamFields>(rec: Recorder, name: string, source: string, bindings: BindingKind[], params: ParamsStruct<F>) {
  const wg = rec.ctx.tuning.rowWorkgroup;
  return rec.ctx.pipelines.kernel(`${name}.${wg}`, () => ({
    name,
    code: `${workgroupSumLib}\n${source}`,
    bindings,
    params,
    constants: { WG: wg },
  }));
}

/** Records `kernel` over `rows` rows with the norms' params (rows, H, eps). */
function runRows(rec: Recorder, kernel: Kernel<typeof ROW_PARAMS.fields>, bindings: BufferBinding[], rows: number, H: number, eps: number): void {
  rec.run(kernel, { rows, H, eps }, bindings, ...grid(rec.ctx, rows));
}

const rmsInplaceKernel = (rec: Recorder) => rowKernel(rec, 'rms_norm.inplace', rmsInplaceSource, ['write', 'read', 'read'], INPLACE_PARAMS);

/**
 * out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight   for r < rows; out may be x.
 *
 * @param x       f32 [rows, H]
 * @param weight  f32 [H]
 * @param out     f32 [rows, H]
 * @example
 * rmsNorm(rec, hidden, layer.inputNorm, normed, T, 2048, 1e-6);
 */
export function rmsNorm(rec: Recorder, x: Tensor, weight: Tensor, out: Tensor, rows: number, H: number, eps: number): void {
  if (rows === 0) return;
  const { ctx } = rec;
  expectTensor(x, 'f32', rows * H, 'rmsNorm x');
  expectTensor(weight, 'f32', H, 'rmsNorm weight');
  expectTensor(out, 'f32', rows * H, 'rmsNorm out');
  if (sameStart(x, out)) {
    const wb = bindTensor(ctx, weight);
    rec.run(rmsInplaceKernel(rec), { rows, H, groups: 1, tokenStride: H, split: 1, eps, HB: H }, [bindTensor(ctx, out), wb, wb], ...grid(ctx, rows));
    return;
  }
  const kernel = rowKernel(rec, 'rms_norm', rmsSource, ['read', 'read', 'write'], ROW_PARAMS);
  runRows(rec, kernel, [bindTensor(ctx, x), bindTensor(ctx, weight), bindTensor(ctx, out)], rows, H, eps);
}

/**
 * The q/k RMSNorm, in place in the fused qkv (v heads untouched), in one of two modes:
 * - 'head' (Qwen3, Gemma 3): each q head normalised with qWeight [D], each k head with kWeight [D];
 * - 'projection' (OLMo 2): the whole q row of a token (nH D values) with qWeight [nH D], the whole k row (nKv D)
 *   with kWeight [nKv D].
 *
 * @param qkv      f32 [T, (nH + 2 nKv) D]
 * @param qWeight  f32 [D] ('head') or [nH D] ('projection')
 * @param kWeight  f32 [D] ('head') or [nKv D] ('projection')
 * @example
 * qkNorm(rec, qkv, layer.qNorm, layer.kNorm, T, { numHeads: 16, numKvHeads: 8, headDim: 128 }, 1e-6);
 * qkNorm(rec, qkv, layer.qNorm, layer.kNorm, T, { numHeads: 16, numKvHeads: 16, headDim: 128 }, 1e-6, 'projection'); // OLMo 2
 */
export function qkNorm(
  rec: Recorder,
  qkv: Tensor,
  qWeight: Tensor,
  kWeight: Tensor,
  T: number,
  layout: QkvLayout,
  eps: number,
  mode: 'head' | 'projection' = 'head',
): void {
  if (T === 0) return;
  const { ctx } = rec;
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
  const stride = (nH + 2 * nKv) * D;
  if (mode !== 'head' && mode !== 'projection') throw new Error(`qkNorm: mode '${mode}' is not 'head' or 'projection'`);
  // Rows per token, the q rows' and k rows' lengths.
  const [groups, qn, kn] = mode === 'head' ? [nH + nKv, D, D] : [2, nH * D, nKv * D];
  expectTensor(qkv, 'f32', T * stride, 'qkNorm qkv');
  expectTensor(qWeight, 'f32', qn, 'qkNorm qWeight');
  expectTensor(kWeight, 'f32', kn, 'qkNorm kWeight');
  const [gx, gy] = grid(ctx, T * groups);
  const bindings = [bindTensor(ctx, qkv), bindTensor(ctx, qWeight), bindTensor(ctx, kWeight)];
  const params = { rows: T * groups, H: qn, groups, tokenStride: stride, split: mode === 'head' ? nH : 1, eps, HB: kn };
  rec.run(rmsInplaceKernel(rec), params, bindings, gx, gy);
}

/**
 * Sandwich norm (Gemma 2/3's post_attention_layernorm and post_feedforward_layernorm, OLMo 2's post norms): the
 * block's output normalised, then added to the residual stream, in place: x[r, :] += rmsNorm(h[r, :]) * weight.
 * With `normOut`, also the next block's pre-norm of the new x in the same dispatch (Gemma: the next
 * input_layernorm): normOut.out[r, :] = rmsNorm(x[r, :]) * normOut.weight. Weights are applied as given (Gemma's
 * 1 + w belongs in the weight).
 *
 * @param x       f32 [rows, H]: the residual stream, updated
 * @param h       f32 [rows, H]: the block's output (read only)
 * @param weight  f32 [H]
 * @param normOut out f32 [rows, H], not x or h; weight f32 [H]
 * @example
 * postNormAdd(rec, hidden, attnProj, layer.postAttentionNorm, T, H, 1e-6); // OLMo 2
 * postNormAdd(rec, hidden, mlpOut, layer.postFfwNorm, T, H, 1e-6, { weight: next.inputNorm, eps: 1e-6, out: normed }); // Gemma 2
 */
export function postNormAdd(rec: Recorder, x: Tensor, h: Tensor, weight: Tensor, rows: number, H: number, eps: number, normOut?: RmsNormOut): void {
  if (rows === 0) return;
  const { ctx } = rec;
  expectTensor(x, 'f32', rows * H, 'postNormAdd x');
  expectTensor(h, 'f32', rows * H, 'postNormAdd h');
  expectTensor(weight, 'f32', H, 'postNormAdd weight');
  if (sameStart(x, h)) throw new Error('postNormAdd: x and h must be different tensors');
  if (normOut) {
    expectTensor(normOut.weight, 'f32', H, 'postNormAdd normOut weight');
    expectTensor(normOut.out, 'f32', rows * H, 'postNormAdd normOut out');
    if (sameStart(normOut.out, x) || sameStart(normOut.out, h)) throw new Error('postNormAdd: normOut.out must not be x or h');
  }
  const next = !!normOut;
  const wg = ctx.tuning.rowWorkgroup;
  const name = `rms_norm.post_add${next ? '.next' : ''}`;
  const kernel = ctx.pipelines.kernel(`${name}.${wg}`, () => ({
    name,
    code: `${workgroupSumLib}\n${rmsPostAddSource}`,
    prelude: next ? POST_ADD_NEXT : 'const NEXT = false;\nfn writeNext(e: u32, i: u32, v: f32) {}\n',
    bindings: next ? ['write', 'read', 'read', 'read', 'write'] : ['write', 'read', 'read'],
    params: POST_ADD_PARAMS,
    constants: { WG: wg },
  }));
  const bindings = [bindTensor(ctx, x), bindTensor(ctx, h), bindTensor(ctx, weight)];
  if (normOut) bindings.push(bindTensor(ctx, normOut.weight), bindTensor(ctx, normOut.out));
  rec.run(kernel, { rows, H, eps, nextEps: normOut?.eps ?? 0 }, bindings, ...grid(ctx, rows));
}

/** rms_norm.post_add.wgsl's next block's pre-norm: nextWeight f32 [H], out f32 [rows, H]. */
const POST_ADD_NEXT = `const NEXT = true;
@group(0) @binding(4) var<storage, read> nextWeight: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
fn writeNext(e: u32, i: u32, v: f32) { out[e] = v * nextWeight[i]; }
`;

/**
 * out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * weight + bias   for r < rows (biased variance); out must
 * not overlap x.
 *
 * @param x       f32 [rows, H]
 * @param weight  f32 [H]
 * @param bias    f32 [H]
 * @param out     f32 [rows, H]
 * @example
 * layerNorm(rec, hidden, layer.ln1Weight, layer.ln1Bias, normed, T, 768, 1e-5);
 */
export function layerNorm(
  rec: Recorder,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  out: Tensor,
  rows: number,
  H: number,
  eps: number,
): void {
  if (rows === 0) return;
  const { ctx } = rec;
  expectTensor(x, 'f32', rows * H, 'layerNorm x');
  expectTensor(weight, 'f32', H, 'layerNorm weight');
  expectTensor(bias, 'f32', H, 'layerNorm bias');
  expectTensor(out, 'f32', rows * H, 'layerNorm out');
  if (sameStart(x, out)) throw new Error('layerNorm: out must not be x');
  const kernel = rowKernel(rec, 'layer_norm', layerSource, ['read', 'read', 'read', 'write'], ROW_PARAMS);
  runRows(rec, kernel, [bindTensor(ctx, x), bindTensor(ctx, weight), bindTensor(ctx, bias), bindTensor(ctx, out)], rows, H, eps);
}
