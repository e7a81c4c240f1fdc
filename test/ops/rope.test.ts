import { describe, expect, it } from 'vitest';
import { createTensor } from '../../src/gpu/tensor.js';
import { cacheKV, ropeCacheKV } from '../../src/ops/attention.js';
import { rope, type QkvLayout } from '../../src/ops/rope.js';
import { getTestGpu } from '../helpers/gpu.js';
import { expectClose, f32, i32, randomArray, rng, run, u32 } from './util.js';

/** HF's inv_freq in f32: 1 / base^(2i / R). */
const invFreqOf = (R: number, base: number) => Float32Array.from({ length: R / 2 }, (_, i) => 1 / base ** ((2 * i) / R));

/** HF LlamaRotaryEmbedding + apply_rotary_pos_emb: f32 angle, then q cos + rotate_half(q) sin. */
function ropeRef(x: Float32Array, pos: number[], invFreq: Float32Array, layout: QkvLayout, R: number, scaling: number): Float64Array {
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
  const stride = (nH + 2 * nKv) * D;
  const y = new Float64Array(x);
  const half = R / 2;
  pos.forEach((p, t) => {
    for (let h = 0; h < nH + nKv; h++) {
      const base = t * stride + h * D;
      for (let i = 0; i < half; i++) {
        const a = Math.fround(p * invFreq[i]);
        const c = Math.cos(a) * scaling;
        const s = Math.sin(a) * scaling;
        const x1 = x[base + i];
        const x2 = x[base + i + half];
        y[base + i] = x1 * c - x2 * s;
        y[base + i + half] = x2 * c + x1 * s;
      }
    }
  });
  return y;
}

const cases: [string, QkvLayout, number, number, number, number[]][] = [
  ['D=8 full rotary', { numHeads: 2, numKvHeads: 2, headDim: 8 }, 8, 10000, 1, [0, 1, 2, 3]],
  ['D=64 GQA, large positions', { numHeads: 4, numKvHeads: 2, headDim: 64 }, 64, 10000, 1, [0, 7, 511, 4095, 8191, 32767]],
  ['D=128 theta 1e6, attention scaling', { numHeads: 2, numKvHeads: 1, headDim: 128 }, 128, 1e6, 1.2, [5, 100000, 3, 77]],
  ['partial rotary (R=16 of D=64)', { numHeads: 3, numKvHeads: 1, headDim: 64 }, 16, 10000, 1, [9, 1000, 2]],
];

describe('rope', async () => {
  const ctx = await getTestGpu();
  cases.forEach(([name, layout, R, base, scaling, pos], i) => {
    it(name, async () => {
      const T = pos.length;
      const stride = (layout.numHeads + 2 * layout.numKvHeads) * layout.headDim;
      const x = randomArray(rng(i + 50), T * stride);
      const invFreq = invFreqOf(R, base);
      const qkv = f32(ctx, x, [T, stride]);
      const got = await run(ctx, (rec) => rope(rec, qkv, u32(ctx, pos), f32(ctx, invFreq), T, layout, R, scaling), qkv);
      // v heads and dims past R are untouched, exactly.
      expectClose(got, ropeRef(x, pos, invFreq, layout, R, scaling), 1e-5, 2e-6);
    });
  });

  // ropeCacheKV must equal rope followed by cacheKV (q heads of qkv, and both caches).
  const fused: [string, QkvLayout, number, 'f32' | 'f16'][] = [
    ['GQA f32 cache', { numHeads: 4, numKvHeads: 2, headDim: 16 }, 16, 'f32'],
    ['MQA f16 cache, partial rotary', { numHeads: 3, numKvHeads: 1, headDim: 64 }, 32, 'f16'],
    ['D=128 f16 cache, odd R/2', { numHeads: 2, numKvHeads: 2, headDim: 128 }, 100, 'f16'],
    // Head dims that are not multiples of 4: odd ones straddle the f16 cache's words (halves set atomically).
    ['D=5 f16 cache, nKv D odd', { numHeads: 3, numKvHeads: 1, headDim: 5 }, 4, 'f16'],
    ['D=5 f32 cache', { numHeads: 2, numKvHeads: 1, headDim: 5 }, 2, 'f32'],
    ['D=6 f16 cache', { numHeads: 2, numKvHeads: 2, headDim: 6 }, 6, 'f16'],
    ['D=10 f16 cache, partial rotary', { numHeads: 4, numKvHeads: 2, headDim: 10 }, 6, 'f16'],
  ];
  fused.forEach(([name, layout, R, kv], i) => {
    it(`ropeCacheKV equals rope + cacheKV, also from split-K sums: ${name}`, async () => {
      const pos = [0, 17, 3000, 5, 9];
      const slots = [3, -1, 0, 7, 5];
      const T = pos.length;
      const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
      const stride = (nH + 2 * nKv) * D;
      // qkv as split-K sums (linear's deferSplit): x = bias + part[0] + part[1] + part[2], added in f32 in that order.
      const S = 3;
      const part = randomArray(rng(i + 50), S * T * stride);
      const bias = randomArray(rng(i + 70), stride);
      const x = Float32Array.from({ length: T * stride }, (_, e) => {
        let v = bias[e % stride];
        for (let k = 0; k < S; k++) v = Math.fround(v + part[k * T * stride + e]);
        return v;
      });
      const invFreq = f32(ctx, invFreqOf(R, 10000));
      const shape = [2, 4, nKv, D];
      const results = [];
      for (const mode of ['separate', 'fused', 'split']) {
        const qkv = f32(ctx, mode === 'split' ? randomArray(rng(1), T * stride) : x, [T, stride]);
        const split = mode === 'split' ? { part: f32(ctx, part), splits: S, bias: f32(ctx, bias) } : null;
        const k = createTensor(ctx, shape, kv);
        const v = createTensor(ctx, shape, kv);
        const positions = u32(ctx, pos);
        const slotMapping = i32(ctx, slots);
        const q = await run(
          ctx,
          (rec) => {
            if (mode !== 'separate') ropeCacheKV(rec, qkv, positions, invFreq, slotMapping, k, v, T, layout, R, 1.1, split);
            else {
              rope(rec, qkv, positions, invFreq, T, layout, R, 1.1);
              cacheKV(rec, qkv, slotMapping, k, v, T, layout);
            }
          },
          qkv,
        );
        const qOnly = Array.from({ length: T }, (_, t) => Array.from(q.subarray(t * stride, t * stride + nH * D))).flat();
        results.push({ q: qOnly, k: Array.from(await run(ctx, () => {}, k)), v: Array.from(await run(ctx, () => {}, v)) });
      }
      const [a, b, c] = results;
      expectClose(b.q, a.q, 0, 1e-6);
      if (kv === 'f32') {
        expectClose(b.k, a.k, 0, 1e-6);
      } else {
        // f16 bits: equal, or one unit apart where the f32 values straddle a rounding boundary.
        b.k.forEach((bits, e) => expect(Math.abs(bits - a.k[e])).toBeLessThanOrEqual(1));
      }
      expect(b.v).toEqual(a.v);
      // From split sums: the same values, so the same results exactly (q heads whole, unrotated dims included).
      expect(c.q).toEqual(b.q);
      expect(c.k).toEqual(b.k);
      expect(c.v).toEqual(b.v);
    });
  });
});
