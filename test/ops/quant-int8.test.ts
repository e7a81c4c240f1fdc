/**
 * The int8-activation quantized GEMV (src/layers/quant/kernels-i8.ts: linear.q.quantize.wgsl, then
 * linear.q.gemv.i8.wgsl with the formats' int8 readers of formats/int8.ts), forced on over lavapipe (its tuning has
 * it off there), for every format with a reader, T = 1..8, with bias, RMSNorm, gating, residual and parts:
 * - the quantize pass against the CPU rule (d = max |x| / 127 per block of 32, a = roundf(x / d));
 * - exact: against f64 products of the dequantized weights with the GPU's own int8 activations (d a), which leaves
 *   only f32 rounding (4e-6 of sum |x w|, as the float GEMV's test);
 * - against the float activations: each activation is off by at most d / 2, so |y - y_float| <= sum over blocks of
 *   d / 2 sum |w| (checked per output, ungated); norm-wise the error stays under 1e-2 of the output for these rows
 *   (the rounding is uniform in +-d / 2 with d ~ max |x| / 127: ~0.3% of an activation's RMS, more where a product
 *   cancels), 2e-2 for gated outputs (measured up to 1.03e-2 for q4_1 at K = 64).
 */
import { describe, expect, it } from 'vitest';
import { readBuffer } from '../../src/gpu/buffers.js';
import { Recorder } from '../../src/gpu/recorder.js';
import { createTensor } from '../../src/gpu/tensor.js';
import { linear } from '../../src/layers/linear.js';
import { blockFormat, createQuantWeight, type QuantFormat } from '../../src/layers/quant/index.js';
import { quantizeActivations, useInt8Gemv } from '../../src/layers/quant/kernels-i8.js';
import { I8_WGSL } from '../../src/layers/quant/formats/int8.js';
import { getTestGpu } from '../helpers/gpu.js';
import { fusedLinearRef, normed, type Fusions } from './fused-linear.js';
import { caseName, I8_FORMATS as FORMATS, quantCase, roundf } from './quant-case.js';
import { expectClose, f32, run } from './util.js';

const blockK = (format: QuantFormat, K: number) => (K * blockFormat(format).blockElems) / 32;


describe('int8-activation quantized GEMV (forced on over lavapipe)', async () => {
  const ctx = await getTestGpu();
  const base = ctx.tuning;
  // rowWorkgroup 64: quantize workgroups of 8 blocks (some partly past K), as on GPUs (the e2e test runs lavapipe's 1).
  ctx.tuning = { ...base, quantGemvInt8MinTokens: 1, rowWorkgroup: 64 };

  it('lavapipe has packed_4x8_integer_dot_product; the CPU tuning keeps int8 off; formats without a reader fall back', () => {
    expect(ctx.packedDot).toBe(true);
    expect(base.quantGemvInt8MinTokens).toBe(0);
    expect(Object.keys(I8_WGSL).sort()).toEqual([...FORMATS].sort());
    const rec = new Recorder(ctx, 'probe');
    const w = createQuantWeight(ctx, 'q3_k', 4, 256, 'w');
    expect(useInt8Gemv(rec, w, 1)).toBe(false);
    const v = createQuantWeight(ctx, [{ format: 'q4_k', rows: 2 }, { format: 'q6_k', rows: 2 }], 4, 256, 'v');
    expect(useInt8Gemv(rec, v, 1)).toBe(true);
    ctx.tuning = { ...ctx.tuning, quantGemvInt8MinTokens: 2 };
    expect([1, 2, 8].map((T) => useInt8Gemv(rec, v, T))).toEqual([false, true, true]);
    ctx.tuning = { ...ctx.tuning, quantGemvInt8MinTokens: 1 };
  });

  // [T, K (in 32-element blocks: times 8 for the k-quants), weight rows, rows per part, bias, fusions]
  const cases: [number, number, number, number | undefined, boolean, Fusions][] = [
    [1, 96, 37, undefined, true, {}], // 3 blocks a row: rows padded, blocks at odd halves; N odd
    [2, 160, 41, 12, false, { norm: true }], // parts
    [3, 64, 40, undefined, true, { norm: true, gated: 'silu' }],
    [4, 96, 33, undefined, false, { residual: true }],
    [5, 64, 24, 10, true, { gated: 'gelu_pytorch_tanh' }], // parts: gating as a second dispatch
    [6, 32, 9, undefined, false, {}],
    [7, 128, 21, 8, true, { norm: true, residual: true }],
    [8, 96, 27, undefined, true, { norm: true }],
  ];
  for (const format of FORMATS) {
    for (const [T, K32, rows, partRows, withBias, f] of cases) {
      const K = blockK(format, K32);
      it(caseName(format, T, K, rows, partRows, withBias, f), async () => {
        const { x, b, g, N, residual, W, wq, xt, opts } = quantCase(ctx, format, T, K, rows, partRows, withBias, f);
        const out = residual ? f32(ctx, residual, [T, N]) : createTensor(ctx, [T, N], 'f32');
        const got = await run(ctx, (rec) => {
          expect(useInt8Gemv(rec, W, T)).toBe(true);
          linear(rec, xt, W, b ? f32(ctx, b) : null, out, T, opts);
        }, out);

        // The GPU's int8 activations, and the CPU's rule on the same inputs.
        const rec = new Recorder(ctx, 'quantize');
        const { xq, xs } = quantizeActivations(rec, xt, T, K, opts);
        rec.submit();
        const a = new Int8Array(await readBuffer(ctx, xq, 0, T * K));
        const s = new Float32Array(await readBuffer(ctx, xs, 0, T * K / 4));
        const xin = normed(x, T, K, g);
        const nb = K / 32;
        let differ = 0;
        const xdq = new Float64Array(T * K);
        const blockErr = new Float64Array(T * nb);
        for (let blk = 0; blk < T * nb; blk++) {
          let amax = 0;
          let sum = 0;
          for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(xin[32 * blk + j]));
          const d = Math.fround(amax / 127);
          expect(Math.abs(s[2 * blk] - d)).toBeLessThanOrEqual(f.norm ? 1e-5 * d : 0);
          const id = d ? Math.fround(1 / d) : 0;
          for (let j = 0; j < 32; j++) {
            const i = 32 * blk + j;
            const want = roundf(Math.fround(Math.fround(xin[i]) * id));
            if (a[i] !== want) differ++;
            expect(Math.abs(a[i] - want)).toBeLessThanOrEqual(1);
            sum += a[i];
            xdq[i] = s[2 * blk] * a[i];
          }
          expect(s[2 * blk + 1]).toBe(Math.fround(s[2 * blk] * sum));
          blockErr[blk] = s[2 * blk] / 2 + 1e-6 * s[2 * blk]; // |x - d a| <= d / 2 (plus f32 rounding of x / d)
        }
        // Without the norm the GPU's rule is the CPU's bit for bit; with it the normed inputs differ in f32 rounding.
        if (!f.norm) expect(differ).toBe(0);
        else expect(differ).toBeLessThanOrEqual(Math.ceil(T * K * 1e-3));

        // Exact: f64 on the GPU's own int8 activations.
        const exact = fusedLinearRef(xdq, wq, b, T, K, rows, f, residual);
        expectClose(got, exact.out, 1e-6, exact.atol);

        // Against the float activations: the bound from the activations' rounding, and the norm-wise error.
        const float = fusedLinearRef(xin, wq, b, T, K, rows, f, residual, blockErr);
        if (!f.gated) {
          const tol = Float64Array.from(float.atol, (v, i) => v + float.bound[i]);
          expectClose(got, float.out, 0, tol);
        }
        let se = 0;
        let sr = 0;
        for (let i = 0; i < got.length; i++) {
          se += (got[i] - float.out[i]) ** 2;
          sr += (float.out[i] - (residual ? residual[i] : 0)) ** 2;
        }
        // Gated outputs carry the errors of two products (act(gate) up): twice the bound.
        expect(Math.sqrt(se / sr)).toBeLessThan(f.gated ? 2e-2 : 1e-2);
        W.method.destroy(W);
      });
    }
  }
});
