/**
 * The staged quantized GEMV with int8 inputs (tuning.quantGemvStageInt8: shaders/lib/gemv.stage_i8.wgsl inside
 * linear.q.gemv.wgsl, four threads quantizing a chunk; the formats' int8 readers of formats/int8.ts), forced on over
 * lavapipe, for every format with a reader, T = 1..8, with bias, RMSNorm, gating, residual, parts and several staged
 * segments:
 * - without the RMSNorm, bit for bit the separate int8 path's (linear.q.quantize.wgsl, then linear.q.gemv.i8.wgsl):
 *   the same int8 activations, dotted and summed in the same order;
 * - exact: against f64 products of the dequantized weights with the int8 activations the CPU makes by the same rule
 *   (the norm weight applied before quantizing, the row's norm scale after), which leaves only f32 rounding;
 * - against the float activations within the activations' rounding bound (as test/ops/quant-int8.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { Recorder } from '../../src/gpu/recorder.js';
import { createTensor } from '../../src/gpu/tensor.js';
import { GPU_TUNING } from '../../src/gpu/tuning.js';
import { linear } from '../../src/layers/linear.js';
import { blockFormat, type QuantFormat } from '../../src/layers/quant/index.js';
import { stagedInt8Tokens, useInt8Gemv } from '../../src/layers/quant/kernels-i8.js';
import { getTestGpu } from '../helpers/gpu.js';
import { fusedLinearRef, normed, type Fusions } from './fused-linear.js';
import { caseName, I8_FORMATS, quantCase, roundf } from './quant-case.js';
import { expectClose, f32, run, withTuning } from './util.js';

const blockK = (format: QuantFormat, K32: number) => (K32 * 32 * blockFormat(format).blockElems) / 32;

/**
 * The staged GEMV's int8 inputs, dequantized (d a, times the row's norm scale with g), and each block's error bound
 * against the float inputs (d / 2 per element, scaled likewise).
 */
function stagedInputs(x: Float32Array, T: number, K: number, g?: Float32Array): { xdq: Float64Array; blockErr: Float64Array } {
  const nb = K / 32;
  const xdq = new Float64Array(T * K);
  const blockErr = new Float64Array(T * nb);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let k = 0; k < K; k++) ss += Math.fround(x[t * K + k] * x[t * K + k]);
    const scale = g ? 1 / Math.sqrt(ss / K + 1e-5) : 1;
    for (let b = 0; b < nb; b++) {
      const xg = Array.from({ length: 32 }, (_, j) => (g ? Math.fround(x[t * K + 32 * b + j] * g[32 * b + j]) : x[t * K + 32 * b + j]));
      const d = Math.fround(Math.max(...xg.map(Math.abs)) / 127);
      const id = d ? Math.fround(1 / d) : 0;
      xg.forEach((v, j) => (xdq[t * K + 32 * b + j] = d * roundf(Math.fround(v * id)) * scale));
      blockErr[t * nb + b] = (d / 2 + 1e-6 * d) * scale;
    }
  }
  return { xdq, blockErr };
}

describe('staged quantized GEMV with int8 inputs (forced on over lavapipe)', async () => {
  const ctx = await getTestGpu();
  // GPU-shaped workgroups (128 threads, 32 lanes a row, 2 rows): 4 row groups, the lanes' sums across subgroups.
  const shape: [number, number, number] = [128, 32, 2];
  const staged = { ...GPU_TUNING, quantGemv: shape, quantGemvOne: shape, quantGemvOneLong: shape, quantGemvStage: true, quantGemvInt8MinTokens: 0, quantGemvStageInt8: 8 };
  const separate = { ...staged, quantGemvStageInt8: 0, quantGemvInt8MinTokens: 1 };

  it('runs where the device has the packed dot, up to quantGemvStageInt8 tokens, before the separate int8 path', async () => {
    expect(ctx.packedDot).toBe(true);
    const rec = new Recorder(ctx, 'probe');
    await withTuning(ctx, { ...staged, quantGemvStageInt8: 2, quantGemvInt8MinTokens: 1 }, async () => {
      expect([1, 2, 8].map((T) => stagedInt8Tokens(rec, T))).toEqual([true, true, false]);
    });
    await withTuning(ctx, { ...staged, quantGemvStage: false }, async () => expect(stagedInt8Tokens(rec, 1)).toBe(false));
    await withTuning(ctx, { ...staged, quantGemvStageInt8: 0 }, async () => expect(stagedInt8Tokens(rec, 1)).toBe(false));
  });

  // [T, K in 32-element blocks (times 8 for the 256-element formats), weight rows, rows per part, bias, fusions]:
  // segments of 256 / tt chunks: K = 259 blocks is two at T = 1, K = 70 two at T = 4 (64 chunks a segment).
  const cases: [number, number, number, number | undefined, boolean, Fusions][] = [
    [1, 3, 37, undefined, true, {}],
    [1, 259, 6, undefined, false, { norm: true, gated: 'silu' }],
    [2, 5, 41, 12, false, { norm: true }],
    [3, 2, 40, undefined, true, { norm: true, gated: 'silu' }],
    [4, 70, 9, undefined, false, { residual: true }],
    [5, 2, 24, 10, true, { gated: 'gelu_pytorch_tanh' }],
    [7, 4, 21, 8, true, { norm: true, residual: true }],
    [8, 3, 27, undefined, true, {}],
  ];
  // Every case for the formats of Q4_0 and Q4_K_M files; the others (their readers are the separate int8 path's,
  // tested there at every case) at one token with two segments and at four tokens.
  const full = new Set<QuantFormat>(['q4_0', 'q4_k', 'q6_k']);
  for (const format of I8_FORMATS) {
    for (const [T, K32, rows, partRows, withBias, f] of cases.filter((c) => full.has(format) || c[1] > 100 || c[0] === 4)) {
      // The 256-element formats: blocks of 8 chunks (the long case at a third of its length keeps lavapipe quick).
      const K = blockK(format, blockFormat(format).blockElems > 32 && K32 > 100 ? 33 : K32);
      it(caseName(format, T, K, rows, partRows, withBias, f), async () => {
        const { x, b, g, N, residual, W, wq, xt, opts } = quantCase(ctx, format, T, K, rows, partRows, withBias, f);
        const product = (tuning: typeof staged) =>
          withTuning(ctx, tuning, () => {
            const out = residual ? f32(ctx, residual, [T, N]) : createTensor(ctx, [T, N], 'f32');
            return run(ctx, (rec) => {
              expect(stagedInt8Tokens(rec, T)).toBe(tuning !== separate);
              if (tuning === separate) expect(useInt8Gemv(rec, W, T)).toBe(true);
              linear(rec, xt, W, b ? f32(ctx, b) : null, out, T, opts);
            }, out);
          });
        const { xdq, blockErr } = stagedInputs(x, T, K, g);
        const noNorm = { gated: f.gated, residual: f.residual };
        const exact = fusedLinearRef(xdq, wq, b, T, K, rows, noNorm, residual);
        const float = fusedLinearRef(normed(x, T, K, g), wq, b, T, K, rows, noNorm, residual, blockErr);
        const want = f.norm ? null : Array.from(await product(separate));
        const got = await product(staged);
        if (want) expect(Array.from(got)).toEqual(want);
        expectClose(got, exact.out, 1e-6, exact.atol);
        if (!f.gated) expectClose(got, float.out, 0, Float64Array.from(float.atol, (v, i) => v + float.bound[i]));
        W.method.destroy(W);
      });
    }
  }
});
