import { describe, expect, it } from 'vitest';
import { createZeroBuffer, writeBuffer } from '../../src/gpu/buffers.js';
import { Recorder } from '../../src/gpu/recorder.js';
import { createTensor, type Tensor } from '../../src/gpu/tensor.js';
import { layerNorm, postNormAdd, qkNorm, rmsNorm } from '../../src/ops/norm.js';
import { getTestGpu } from '../helpers/gpu.js';
import { expectClose, f32, randomArray, rng, run, TUNINGS, withTuning } from './util.js';

function rmsRef(x: Float32Array, w: Float32Array, rows: number, H: number, eps: number): Float64Array {
  const y = new Float64Array(rows * H);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < H; i++) ss += x[r * H + i] ** 2;
    const inv = 1 / Math.sqrt(ss / H + eps);
    for (let i = 0; i < H; i++) y[r * H + i] = x[r * H + i] * inv * w[i];
  }
  return y;
}

function layerRef(x: Float32Array, w: Float32Array, b: Float32Array, rows: number, H: number, eps: number): Float64Array {
  const y = new Float64Array(rows * H);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < H; i++) mean += x[r * H + i];
    mean /= H;
    let v = 0;
    for (let i = 0; i < H; i++) v += (x[r * H + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / H + eps);
    for (let i = 0; i < H; i++) y[r * H + i] = (x[r * H + i] - mean) * inv * w[i] + b[i];
  }
  return y;
}

describe('norms', async () => {
  const ctx = await getTestGpu();

  for (const [rows, H, eps] of [[1, 8, 1e-6], [3, 37, 1e-5], [17, 2048, 1e-6], [5, 130, 1e-5]] as const) for (const [tn, tuning] of TUNINGS) {
    it(`rmsNorm rows=${rows} H=${H} (${tn})`, () => withTuning(ctx, tuning, async () => {
      const rand = rng(rows * 100 + H);
      const x = randomArray(rand, rows * H, -3, 3);
      const w = randomArray(rand, H, 0.5, 1.5);
      const out = createTensor(ctx, [rows, H], 'f32');
      const got = await run(ctx, (rec) => rmsNorm(rec, f32(ctx, x), f32(ctx, w), out, rows, H, eps), out);
      expectClose(got, rmsRef(x, w, rows, H, eps), 1e-5, 1e-6);
    }));

    it(`layerNorm rows=${rows} H=${H} (${tn})`, () => withTuning(ctx, tuning, async () => {
      const rand = rng(rows * 101 + H);
      const x = randomArray(rand, rows * H, -3, 5);
      const w = randomArray(rand, H, 0.5, 1.5);
      const b = randomArray(rand, H);
      const out = createTensor(ctx, [rows, H], 'f32');
      const got = await run(ctx, (rec) => layerNorm(rec, f32(ctx, x), f32(ctx, w), f32(ctx, b), out, rows, H, eps), out);
      expectClose(got, layerRef(x, w, b, rows, H, eps), 1e-5, 2e-6);
    }));
  }

  it('rmsNorm in place touches only the first `rows` rows; layerNorm refuses in place', async () => {
    const rand = rng(3);
    const [rows, H] = [3, 48];
    const x = randomArray(rand, 5 * H);
    const w = randomArray(rand, H);
    const t = f32(ctx, x, [5, H]);
    const got = await run(ctx, (rec) => rmsNorm(rec, t, f32(ctx, w), t, rows, H, 1e-6), t);
    expectClose(got.subarray(0, rows * H), rmsRef(x, w, rows, H, 1e-6), 1e-5, 1e-6);
    expect(Array.from(got.subarray(rows * H))).toEqual(Array.from(x.subarray(rows * H)));
    const rec = new Recorder(ctx);
    expect(() => layerNorm(rec, t, f32(ctx, w), f32(ctx, w), t, rows, H, 1e-5)).toThrow(/must not be x/);
  });

  it('x and out sharing one arena buffer', async () => {
    const rand = rng(4);
    const [rows, H] = [4, 40];
    const x = randomArray(rand, rows * H);
    const w = randomArray(rand, H);
    const b = randomArray(rand, H);
    const arena = createZeroBuffer(ctx, 4096);
    writeBuffer(ctx, arena, 0, x);
    const xt: Tensor = { buffer: arena, offset: 0, shape: [rows, H], dtype: 'f32' };
    const out: Tensor = { buffer: arena, offset: 1024, shape: [rows, H], dtype: 'f32' };
    const wt: Tensor = { buffer: arena, offset: 2048, shape: [H], dtype: 'f32' };
    const bt: Tensor = { buffer: arena, offset: 2304, shape: [H], dtype: 'f32' };
    writeBuffer(ctx, arena, 2048, w);
    writeBuffer(ctx, arena, 2304, b);
    const got = await run(ctx, (rec) => rmsNorm(rec, xt, wt, out, rows, H, 1e-6), out);
    expectClose(got, rmsRef(x, w, rows, H, 1e-6), 1e-5, 1e-6);
    const got2 = await run(ctx, (rec) => layerNorm(rec, xt, wt, bt, out, rows, H, 1e-5), out);
    expectClose(got2, layerRef(x, w, b, rows, H, 1e-5), 1e-5, 2e-6);
  });

  for (const [nH, nKv, D] of [[4, 2, 16], [2, 1, 128], [3, 3, 8]] as const) for (const [tn, tuning] of TUNINGS) {
    it(`qkNorm nH=${nH} nKv=${nKv} D=${D} (${tn})`, () => withTuning(ctx, tuning, async () => {
      const T = 5;
      const rand = rng(nH * 7 + D);
      const stride = (nH + 2 * nKv) * D;
      const x = randomArray(rand, T * stride, -2, 2);
      const qw = randomArray(rand, D, 0.5, 1.5);
      const kw = randomArray(rand, D, 0.5, 1.5);
      const qkv = f32(ctx, x, [T, stride]);
      const got = await run(ctx, (rec) => qkNorm(rec, qkv, f32(ctx, qw), f32(ctx, kw), T, { numHeads: nH, numKvHeads: nKv, headDim: D }, 1e-6), qkv);
      const want = new Float64Array(x);
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < nH + nKv; h++) {
          const base = t * stride + h * D;
          want.set(rmsRef(x.subarray(base, base + D), h < nH ? qw : kw, 1, D, 1e-6), base);
        }
      }
      expectClose(got, want, 1e-5, 1e-6);
    }));
  }

  // OLMo 2: q_norm over the whole q row of a token [nH D], k_norm over the whole k row [nKv D]; head dims not a
  // multiple of 4 included.
  for (const [nH, nKv, D] of [[4, 2, 16], [3, 1, 5], [2, 2, 6], [16, 16, 64]] as const) for (const [tn, tuning] of TUNINGS) {
    it(`qkNorm over the projection nH=${nH} nKv=${nKv} D=${D} (${tn})`, () => withTuning(ctx, tuning, async () => {
      const T = 4;
      const rand = rng(nH * 11 + D);
      const stride = (nH + 2 * nKv) * D;
      const x = randomArray(rand, T * stride, -2, 2);
      const qw = randomArray(rand, nH * D, 0.5, 1.5);
      const kw = randomArray(rand, nKv * D, 0.5, 1.5);
      const qkv = f32(ctx, x, [T, stride]);
      const layout = { numHeads: nH, numKvHeads: nKv, headDim: D };
      const got = await run(ctx, (rec) => qkNorm(rec, qkv, f32(ctx, qw), f32(ctx, kw), T, layout, 1e-6, 'projection'), qkv);
      const want = new Float64Array(x); // v columns untouched
      for (let t = 0; t < T; t++) {
        const q = t * stride;
        const k = q + nH * D;
        want.set(rmsRef(x.subarray(q, k), qw, 1, nH * D, 1e-6), q);
        want.set(rmsRef(x.subarray(k, k + nKv * D), kw, 1, nKv * D, 1e-6), k);
      }
      expectClose(got, want, 1e-5, 1e-6);
    }));
  }

  it('qkNorm checks the weights of its mode', () => {
    const qkv = f32(ctx, new Float32Array(2 * 4 * 8));
    const w8 = f32(ctx, new Float32Array(8));
    expect(() => qkNorm(new Recorder(ctx), qkv, w8, w8, 2, { numHeads: 2, numKvHeads: 1, headDim: 8 }, 1e-6, 'projection')).toThrow(/qkNorm qWeight: \[8\] holds fewer than 16 elements/);
    expect(() => qkNorm(new Recorder(ctx), qkv, w8, w8, 2, { numHeads: 2, numKvHeads: 1, headDim: 8 }, 1e-6, 'heads' as never)).toThrow(/mode 'heads'/);
  });

  // Gemma 2/3 and OLMo 2 sandwich norms: x += rmsNorm(h) * w, and Gemma's next input norm of the new x in the same pass.
  for (const [rows, H] of [[1, 8], [5, 130], [3, 2304]] as const) for (const [tn, tuning] of TUNINGS) {
    it(`postNormAdd rows=${rows} H=${H}, alone and with the next pre-norm (${tn})`, () => withTuning(ctx, tuning, async () => {
      const rand = rng(rows * 13 + H);
      const x = randomArray(rand, rows * H, -2, 2);
      const h = randomArray(rand, rows * H, -8, 8);
      const w = randomArray(rand, H, 0.5, 1.5);
      const wNext = randomArray(rand, H, 0.5, 1.5);
      const normed = rmsRef(h, w, rows, H, 1e-6);
      const sum = Float32Array.from(x, (v, i) => v + normed[i]);
      for (const next of [false, true]) {
        const xt = f32(ctx, x, [rows, H]);
        const ht = f32(ctx, h, [rows, H]);
        const out = createTensor(ctx, [rows, H], 'f32');
        const normOut = next ? { weight: f32(ctx, wNext), eps: 1e-5, out } : undefined;
        const gotX = await run(ctx, (rec) => postNormAdd(rec, xt, ht, f32(ctx, w), rows, H, 1e-6, normOut), xt);
        expectClose(gotX, sum, 1e-5, 1e-6);
        expect(Array.from(await run(ctx, () => {}, ht))).toEqual(Array.from(h)); // h is only read
        if (next) expectClose(await run(ctx, () => {}, out), rmsRef(gotX as Float32Array, wNext, rows, H, 1e-5), 1e-5, 1e-6);
      }
    }));
  }

  it('postNormAdd refuses h or normOut.out aliasing x', () => {
    const t = f32(ctx, new Float32Array(16));
    const w = f32(ctx, new Float32Array(8));
    const rec = new Recorder(ctx);
    expect(() => postNormAdd(rec, t, t, w, 2, 8, 1e-6)).toThrow(/x and h must be different/);
    expect(() => postNormAdd(rec, t, f32(ctx, new Float32Array(16)), w, 2, 8, 1e-6, { weight: w, eps: 1e-6, out: t })).toThrow(/normOut.out must not be x or h/);
  });
});
