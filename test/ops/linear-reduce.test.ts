/**
 * linearReduce (shaders/linear.reduce.wgsl): the split-K epilogue of the tensor-core linear, which only GPUs with
 * subgroup matrices reach through linear(); here it runs alone against a CPU reference: sums over splits, bias,
 * gating, residual, a column offset into a wider output.
 */
import { describe, it } from 'vitest';
import { linearReduce } from '../../src/ops/linear.js';
import { getTestGpu } from '../helpers/gpu.js';
import { expectClose, f32, randomArray, rng, run } from './util.js';

const silu = (x: number) => x / (1 + Math.exp(-x));

describe('linearReduce', () => {
  it.each([
    { name: 'plain', gated: false, residual: false, bias: false, colOffset: 0 },
    { name: 'bias, residual, column offset', gated: false, residual: true, bias: true, colOffset: 5 },
    { name: 'gated silu with bias', gated: true, residual: false, bias: true, colOffset: 0 },
  ])('$name', async ({ gated, residual, bias, colOffset }) => {
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
        if (gated) v = silu(v) * (sum(cols + n) + (b ? b[cols + n] : 0));
        const o = t * outStride + colOffset + n;
        expected[o] = residual ? out0[o] + v : v;
      }
    }
    const out = f32(ctx, out0, [T, outStride]);
    const got = await run(
      ctx,
      (rec) => linearReduce(rec, f32(ctx, part), b && f32(ctx, b), out, T, S, cols, { outStride, colOffset, gated: gated ? 'silu' : undefined, residual }),
      out,
    );
    expectClose(got, expected, 1e-5, 1e-5);
  });
});
