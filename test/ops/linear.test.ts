import { describe, expect, it } from 'vitest';
import { writeBuffer } from '../../src/gpu/buffers.js';
import { Recorder } from '../../src/gpu/recorder.js';
import { createTensor } from '../../src/gpu/tensor.js';
import { linear } from '../../src/ops/linear.js';
import { getTestGpu } from '../helpers/gpu.js';
import { fusedLinearRef, normed } from './fused-linear.js';
import { expectClose, f32, randomArray, rng, roundF16, run, LINEAR_TUNINGS, weight, withTuning } from './util.js';

/** y[t, n] = sum_k x[t, k] w[n, k] + b[n] in f64, and the scale sum_k |x w| for the tolerance. */
function linearRef(x: Float32Array, w: Float32Array, b: Float32Array | null, T: number, K: number, N: number) {
  const y = new Float64Array(T * N);
  const scale = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      let m = 0;
      for (let k = 0; k < K; k++) {
        const v = x[t * K + k] * w[n * K + k];
        s += v;
        m += Math.abs(v);
      }
      y[t * N + n] = s + (b ? b[n] : 0);
      scale[t * N + n] = m;
    }
  }
  return { y, scale };
}

// [T, K, N, weight dtype, rows per part (undefined: one part), bias]
const cases: [number, number, number, 'f32' | 'f16', number | undefined, boolean][] = [
  [1, 64, 48, 'f32', undefined, false],
  [1, 2048, 40, 'f16', undefined, true],
  [2, 2048, 64, 'f32', 24, false],
  [3, 37, 13, 'f32', undefined, true], // K odd: scalar loads
  [5, 128, 100, 'f16', 30, false], // 4 parts
  [8, 256, 33, 'f16', undefined, true],
  [9, 64, 70, 'f32', 32, true], // first register-blocked size
  [33, 35, 21, 'f16', 8, false], // K odd f16: padded row stride
  [40, 100, 37, 'f16', undefined, true],
  [70, 512, 130, 'f32', 64, true],
  [130, 64, 9, 'f16', 4, false],
];

describe('linear', async () => {
  const ctx = await getTestGpu();
  for (const [T, K, N, dtype, partRows, withBias] of cases) for (const [tuningName, tuning] of LINEAR_TUNINGS) {
    it(`T=${T} K=${K} N=${N} ${dtype}${partRows ? ` parts of ${partRows} rows` : ''}${withBias ? ' +bias' : ''} (${tuningName})`, () => withTuning(ctx, tuning, async () => {
      const rand = rng(T * 7919 + K * 31 + N);
      const x = randomArray(rand, T * K);
      let w = randomArray(rand, N * K, -0.5, 0.5);
      if (dtype === 'f16') w = roundF16(w);
      const b = withBias ? randomArray(rand, N) : null;
      const rowBytes = (dtype === 'f16' ? K + (K % 2) : K) * (dtype === 'f16' ? 2 : 4) + tuning.weightRowPadding;
      const W = weight(ctx, w, N, K, dtype, partRows ? partRows * rowBytes : undefined);
      if (partRows) expect(W.parts.length).toBe(Math.ceil(N / partRows));
      const out = createTensor(ctx, [T, N], 'f32');
      const xt = f32(ctx, x, [T, K]);
      const bt = b ? f32(ctx, b) : null;
      const got = await run(ctx, (rec) => linear(rec, xt, W, bt, out, T), out);
      const ref = linearRef(x, w, b, T, K, N);
      const atol = Array.from(ref.scale, (m) => 2e-6 * m + 1e-7);
      expectClose(got, ref.y, 1e-5, atol);
    }));
  }

  it('uses the runtime T: rows past T of a larger out are untouched', async () => {
    const T = 3;
    const K = 16;
    const N = 8;
    const rand = rng(5);
    const x = randomArray(rand, 10 * K);
    const w = randomArray(rand, N * K);
    const W = weight(ctx, w, N, K, 'f32');
    const out = f32(ctx, new Float32Array(10 * N).fill(7), [10, N]);
    const got = await run(ctx, (rec) => linear(rec, f32(ctx, x, [10, K]), W, null, out, T), out);
    expectClose(got.subarray(0, T * N), linearRef(x, w, null, T, K, N).y, 1e-5, 1e-5);
    expect(Array.from(got.subarray(T * N))).toEqual(new Array((10 - T) * N).fill(7));
  });

  it('records several steps with one recorder and reuses bind groups', async () => {
    const K = 32;
    const N = 16;
    const rand = rng(9);
    const w = randomArray(rand, N * K);
    const W = weight(ctx, w, N, K, 'f32');
    const xt = createTensor(ctx, [4, K], 'f32');
    const out = createTensor(ctx, [4, N], 'f32');
    const rec = new Recorder(ctx);
    for (const T of [1, 4, 2]) {
      const x = randomArray(rand, T * K);
      writeBuffer(ctx, xt.buffer, 0, x);
      linear(rec, xt, W, null, out, T);
      rec.submit();
      const got = await run(ctx, () => {}, out);
      expectClose(got.subarray(0, T * N), linearRef(x, w, null, T, K, N).y, 1e-5, 1e-5);
    }
  });
});



describe('linear with fusions', async () => {
  const ctx = await getTestGpu();
  // [T, K, weight rows, weight dtype, rows per part (undefined: one part), bias]
  const shapes: [number, number, number, 'f32' | 'f16', number | undefined, boolean][] = [
    [1, 64, 48, 'f32', undefined, true], // GEMV
    [3, 128, 40, 'f16', undefined, false], // GEMV, 4 token slots for 3 tokens
    [8, 256, 34, 'f16', undefined, true], // GEMV or register blocks
    [20, 64, 40, 'f32', undefined, false], // tiles
    [70, 128, 20, 'f16', undefined, true], // tiles, several token tiles
    [5, 100, 24, 'f32', undefined, false], // K % 8 != 0: register blocks, separate norm
    [2, 64, 24, 'f16', 10, true], // parts: gating as a second dispatch
  ];
  // GeGLU under the name Gemma's configs give it (gelu_pytorch_tanh), on every path the shapes and tunings reach:
  // GEMV, register blocks, shared-memory tiles, and a weight in parts (gatedAct as a second dispatch).
  const variants: [string, { norm?: boolean; gated?: 'silu' | 'gelu_pytorch_tanh'; residual?: boolean }][] = [
    ['gated silu', { gated: 'silu' }],
    ['rmsNorm + GeGLU (gelu_pytorch_tanh)', { norm: true, gated: 'gelu_pytorch_tanh' }],
    ['rmsNorm + residual', { norm: true, residual: true }],
  ];
  for (const [T, K, rows, dtype, partRows, withBias] of shapes) for (const [vname, v] of variants) for (const [tuningName, tuning] of LINEAR_TUNINGS) {
    it(`T=${T} K=${K} rows=${rows} ${dtype}${partRows ? ` parts of ${partRows}` : ''}${withBias ? ' +bias' : ''}: ${vname} (${tuningName})`, () => withTuning(ctx, tuning, async () => {
      const rand = rng(T * 131 + K * 7 + rows + vname.length);
      const x = randomArray(rand, T * K, -2, 2);
      let w = randomArray(rand, rows * K, -0.5, 0.5);
      if (dtype === 'f16') w = roundF16(w);
      const b = withBias ? randomArray(rand, rows) : null;
      const g = v.norm ? randomArray(rand, K, 0.5, 1.5) : undefined;
      const N = v.gated ? rows / 2 : rows;
      const residual = v.residual ? randomArray(rand, T * N) : undefined;
      const rowBytes = K * (dtype === 'f16' ? 2 : 4) + tuning.weightRowPadding;
      const W = weight(ctx, w, rows, K, dtype, partRows ? partRows * rowBytes : undefined);
      const out = residual ? f32(ctx, residual, [T, N]) : createTensor(ctx, [T, N], 'f32');
      const xt = f32(ctx, x, [T, K]);
      const opts = {
        rmsNorm: g ? { weight: f32(ctx, g), eps: 1e-5 } : undefined,
        gated: v.gated,
        residual: v.residual,
      };
      const got = await run(ctx, (rec) => linear(rec, xt, W, b ? f32(ctx, b) : null, out, T, opts), out);
      const ref = fusedLinearRef(normed(x, T, K, g), w, b, T, K, rows, { gated: v.gated }, residual);
      expectClose(got, ref.out, 1e-5, ref.atol);
    }));
  }
});
