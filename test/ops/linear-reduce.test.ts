/**
 * linearReduce (shaders/linear.reduce.wgsl): the split-K epilogue of the tensor-core linear, which only GPUs with
 * subgroup matrices reach through linear(); here it runs alone against a CPU reference: sums over splits, bias,
 * gating, residual, a column offset into a wider output, and the fused RMSNorm of the finished rows (normOut).
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { Recorder } from '../../src/gpu/recorder.js';
import { linearReduce } from '../../src/ops/linear.js';
import { getTestGpu } from '../helpers/gpu.js';
import { expectClose, f32, randomArray, rng, run } from './util.js';

const silu = (x: number) => x / (1 + Math.exp(-x));
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)));

describe('linearReduce', () => {
  it.each([
    { name: 'plain', gated: false, residual: false, bias: false, colOffset: 0 },
    { name: 'bias, residual, column offset', gated: false, residual: true, bias: true, colOffset: 5 },
    { name: 'gated silu with bias', gated: true, residual: false, bias: true, colOffset: 0 },
    { name: 'GeGLU (gelu_pytorch_tanh) with bias', gated: true, residual: false, bias: true, colOffset: 0, act: 'gelu_pytorch_tanh' as const },
  ])('$name', async ({ gated, residual, bias, colOffset, act = 'silu' as const }) => {
    const ctx = await getTestGpu();
    const rand = rng(7);
    const [S, T, cols] = [3, 5, 37];
    const rows = gated ? 2 * cols : cols;
    const outStride = gated ? cols : colOffset + cols + 3;
    const part = randomArray(rand, S * T * rows);
    const b = bias ? randomArray(rand, colOffset + rows) : null;
    const out0 = randomArray(rand, T * outStride);
    const expected = Float32Array.from(out0);
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < cols; n++) {
        const sum = (r: number) => [...Array(S).keys()].reduce((acc, s) => acc + part[(s * T + t) * rows + r], 0);
        let v = sum(n) + (b ? b[colOffset + n] : 0);
        if (gated) v = (act === 'silu' ? silu : geluTanh)(v) * (sum(cols + n) + (b ? b[cols + n] : 0));
        const o = t * outStride + colOffset + n;
        expected[o] = residual ? out0[o] + v : v;
      }
    }
    const out = f32(ctx, out0, [T, outStride]);
    const got = await run(
      ctx,
      (rec) => linearReduce(rec, f32(ctx, part), b && f32(ctx, b), out, T, S, cols, { outStride, colOffset, gated: gated ? act : undefined, residual }),
      out,
    );
    expectClose(got, expected, 1e-5, 1e-5);
  });

  it.each([
    { name: 'residual', residual: true, bias: false, cols: 36, wg: 8 },
    { name: 'bias, more columns than 4 per thread', residual: true, bias: true, cols: 2600, wg: 256 },
    { name: 'no residual', residual: false, bias: true, cols: 64, wg: 8 },
  ])('normOut: $name (up to $wg threads)', async ({ residual, bias, cols, wg }) => {
    const ctx = await getTestGpu();
    const saved = ctx.tuning.reduceNormWorkgroup;
    ctx.tuning.reduceNormWorkgroup = wg;
    onTestFinished(() => void (ctx.tuning.reduceNormWorkgroup = saved));
    const rand = rng(11);
    const [S, T, eps] = [4, 6, 1e-5];
    const part = randomArray(rand, S * T * cols);
    const b = bias ? randomArray(rand, cols) : null;
    const weight = randomArray(rand, cols);
    const out0 = randomArray(rand, T * cols);
    const expected = Float32Array.from(out0);
    const expectedNorm = new Float32Array(T * cols);
    for (let t = 0; t < T; t++) {
      let ss = 0;
      for (let n = 0; n < cols; n++) {
        let v = (b ? b[n] : 0) + [...Array(S).keys()].reduce((acc, s) => acc + part[(s * T + t) * cols + n], 0);
        const o = t * cols + n;
        expected[o] = v = residual ? out0[o] + v : v;
        ss += v * v;
      }
      const inv = 1 / Math.sqrt(ss / cols + eps);
      for (let n = 0; n < cols; n++) expectedNorm[t * cols + n] = expected[t * cols + n] * inv * weight[n];
    }
    const out = f32(ctx, out0, [T, cols]);
    const normed = f32(ctx, new Float32Array(T * cols), [T, cols]);
    const normOut = { weight: f32(ctx, weight), eps, out: normed };
    const record = (rec: Recorder) => linearReduce(rec, f32(ctx, part), b && f32(ctx, b), out, T, S, cols, { outStride: cols, residual, normOut });
    expectClose(await run(ctx, record, normed), expectedNorm, 1e-4, 1e-4);
    // The run above added into out once more when residual; check out from a fresh copy.
    const out2 = f32(ctx, out0, [T, cols]);
    const got = await run(ctx, (rec) => linearReduce(rec, f32(ctx, part), b && f32(ctx, b), out2, T, S, cols, { outStride: cols, residual, normOut }), out2);
    expectClose(got, expected, 1e-5, 1e-5);
  });

  it('normOut needs whole rows', async () => {
    const ctx = await getTestGpu();
    const t = f32(ctx, new Float32Array(64));
    const normOut = { weight: t, eps: 1e-5, out: t };
    const rec = new Recorder(ctx);
    expect(() => linearReduce(rec, t, null, t, 2, 2, 8, { outStride: 8, colOffset: 2, normOut })).toThrow(/whole output rows/);
    expect(() => linearReduce(rec, t, null, t, 2, 2, 8, { outStride: 16, normOut })).toThrow(/whole output rows/);
    expect(() => linearReduce(rec, t, null, t, 2, 2, 6, { outStride: 6, normOut })).toThrow(/multiple of 4/);
  });
});
