import { describe, expect, it } from 'vitest';
import { createTensor } from '../../src/gpu/tensor.js';
import { f32ToF16 } from '../../src/gpu/half.js';
import { act, gatedAct, scaleSoftcap, toHalf } from '../../src/ops/elementwise.js';
import { getTestGpu } from '../helpers/gpu.js';
import { expectClose, f32, randomArray, rng, run } from './util.js';

/** erfc in f64: Taylor series of erf near 0, continued fraction in the tail. */
function erfc(z: number): number {
  if (z < 0) return 2 - erfc(-z);
  if (z < 2.5) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 100; n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = z;
  for (let n = 80; n >= 1; n--) f = z + n / 2 / f;
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

const REF: Record<string, (x: number) => number> = {
  relu: (x) => Math.max(x, 0),
  gelu: (x) => 0.5 * x * erfc(-x / Math.SQRT2),
  gelu_new: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  gelu_pytorch_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  silu: (x) => x / (1 + Math.exp(-x)),
};

/** Inputs spanning the interesting ranges: near 0, moderate, the far tails (where exp over/underflows). */
function inputs(n: number, seed: number): Float32Array {
  const x = randomArray(rng(seed), n, -12, 12);
  const special = [0, -0, 1e-7, -1e-7, 100, -100, 30, -30, 88, -88, 1, -1, 3, -3];
  x.set(special.slice(0, n));
  return x;
}

describe('elementwise', async () => {
  const ctx = await getTestGpu();

  for (const name of ['relu', 'gelu', 'gelu_new'] as const) {
    it(`act ${name}, out of place and in place`, async () => {
      const n = 3001;
      const x = inputs(n, 7);
      const want = Array.from(x, REF[name]);
      const out = createTensor(ctx, [n], 'f32');
      expectClose(await run(ctx, (rec) => act(rec, f32(ctx, x), out, n, name), out), want, 2e-6, 1e-7);
      const xt = f32(ctx, x);
      expectClose(await run(ctx, (rec) => act(rec, xt, xt, n, name), xt), want, 2e-6, 1e-7);
    });
  }

  for (const name of ['silu', 'gelu', 'gelu_tanh', 'gelu_pytorch_tanh'] as const) {
    for (const [T, I] of [[1, 5], [6, 64], [33, 100]] as const) {
      it(`gatedAct ${name} T=${T} I=${I}`, async () => {
        const gate = inputs(T * I, T + I);
        const up = randomArray(rng(I), T * I, -2, 2);
        const x = new Float32Array(T * 2 * I);
        for (let t = 0; t < T; t++) {
          x.set(gate.subarray(t * I, (t + 1) * I), t * 2 * I);
          x.set(up.subarray(t * I, (t + 1) * I), t * 2 * I + I);
        }
        const want = Array.from(gate, (g, i) => REF[name](g) * up[i]);
        const out = createTensor(ctx, [T, I], 'f32');
        expectClose(await run(ctx, (rec) => gatedAct(rec, f32(ctx, x), out, T, I, name), out), want, 2e-6, 2e-7);
      });
    }
  }

  // Final logits: Gemma 2's soft-cap 30, Granite's divisor 8, both, over rows of V logits with values far past the cap.
  for (const [name, opts] of [['softcap 30', { softcap: 30 }], ['divisor 8', { divisor: 8 }], ['divisor 0.5 + softcap 2.5', { divisor: 0.5, softcap: 2.5 }]] as const) {
    it(`scaleSoftcap ${name}, in place over [3, 1001]`, async () => {
      const n = 3 * 1001;
      const x = randomArray(rng(11), n, -200, 200);
      x.set([0, -0, 1e-6, -1e-6, 1e30, -1e30, 30, -30, 3e-3]);
      const divisor = 'divisor' in opts ? opts.divisor : 1;
      const cap = 'softcap' in opts ? opts.softcap : 0;
      const want = Array.from(x, (v) => {
        const s = Math.fround(v / divisor); // the division is f32 on the GPU
        return cap ? cap * Math.tanh(s / cap) : s;
      });
      const xt = f32(ctx, x);
      const got = await run(ctx, (rec) => scaleSoftcap(rec, xt, n, opts), xt);
      if (cap) expectClose(got, want, 0, cap * 4e-7); // tanh to about an ulp of 1, times the cap
      else expect(Array.from(got)).toEqual(want); // a division by the f32 divisor, exact
    });
  }

  it('scaleSoftcap rejects a zero divisor and a negative cap', () => {
    const x = f32(ctx, new Float32Array(4));
    expect(() => scaleSoftcap(undefined as never, x, 4, { divisor: 0 })).toThrow(/divisor 0 must be a finite non-zero number/);
    expect(() => scaleSoftcap(undefined as never, x, 4, { softcap: -3 })).toThrow(/softcap -3 must be a finite number >= 0/);
  });

  it('toHalf rounds to the nearest f16, leaving the rest of out as it was', async () => {
    const n = 4104;
    const x = randomArray(rng(5), n, -70000, 70000);
    x.set([0, -0, 1, -1, 65504, -65504, 1e-8, 6e-5, 3.14159, 1e5, -1e5, 0.1, 2049, 2051]);
    for (let i = 14; i < 1000; i++) x[i] /= 1e4; // the usual range of activations
    const out = createTensor(ctx, [n + 8], 'f16');
    const got = await run(ctx, (rec) => toHalf(rec, f32(ctx, x), out, n), out);
    expect(Array.from(got.subarray(0, n))).toEqual(Array.from(f32ToF16(x)));
    expect(Array.from(got.subarray(n))).toEqual(new Array(8).fill(0));
    expect(() => toHalf(undefined as never, f32(ctx, x), out, n - 4)).toThrow(/not a multiple of 8/);
  });
});
