/** ropeCacheKV (shaders/rope_cache_kv.wgsl) against HF's rotary embedding: rotated q heads in qkv, rotated k heads and
 * the v heads in the caches, also from the tensor-core linear's split-K sums. */
import { describe, expect, it } from 'vitest';
import { createTensor } from '../../src/gpu/tensor.js';
import { f16ToF32, f32ToF16 } from '../../src/gpu/half.js';
import { ropeCacheKV, type QkvLayout } from '../../src/ops/attention.js';
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

/**
 * What ropeCacheKV leaves: the q heads of qkv rotated ([T, nH D]), and caches [slots, nKv, D] holding each token's
 * rotated k heads and its v heads at its slot (slot < 0: skipped; other slots stay 0).
 */
function ropeCacheRef(x: Float32Array, pos: number[], slots: number[], invFreq: Float32Array, layout: QkvLayout, R: number, scaling: number, numSlots: number) {
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
  const stride = (nH + 2 * nKv) * D;
  const y = ropeRef(x, pos, invFreq, layout, R, scaling);
  const q = new Float64Array(pos.length * nH * D);
  const k = new Float64Array(numSlots * nKv * D);
  const v = new Float64Array(numSlots * nKv * D);
  pos.forEach((_, t) => {
    q.set(y.subarray(t * stride, t * stride + nH * D), t * nH * D);
    if (slots[t] < 0) return;
    k.set(y.subarray(t * stride + nH * D, t * stride + (nH + nKv) * D), slots[t] * nKv * D);
    v.set(y.subarray(t * stride + (nH + nKv) * D, (t + 1) * stride), slots[t] * nKv * D);
  });
  return { q, k, v };
}

// [name, layout, rotary dims R, theta, attention scaling, positions, cache dtype]
const cases: [string, QkvLayout, number, number, number, number[], 'f32' | 'f16'][] = [
  ['D=8 full rotary', { numHeads: 2, numKvHeads: 2, headDim: 8 }, 8, 10000, 1, [0, 1, 2, 3], 'f32'],
  ['D=64 GQA, large positions', { numHeads: 4, numKvHeads: 2, headDim: 64 }, 64, 10000, 1, [0, 7, 511, 4095, 8191, 32767], 'f32'],
  ['D=128 theta 1e6, attention scaling, f16 cache', { numHeads: 2, numKvHeads: 1, headDim: 128 }, 128, 1e6, 1.2, [5, 100000, 3, 77], 'f16'],
  ['partial rotary (R=16 of D=64)', { numHeads: 3, numKvHeads: 1, headDim: 64 }, 16, 10000, 1, [9, 1000, 2], 'f32'],
  ['MQA f16 cache, partial rotary', { numHeads: 3, numKvHeads: 1, headDim: 64 }, 32, 10000, 1.1, [0, 17, 3000, 5, 9], 'f16'],
  ['D=128 f16 cache, odd R/2', { numHeads: 2, numKvHeads: 2, headDim: 128 }, 100, 10000, 1.1, [0, 17, 3000, 5, 9], 'f16'],
  // Head dims that are not multiples of 4: odd ones straddle the f16 cache's words (halves set atomically).
  ['D=5 f16 cache, nKv D odd', { numHeads: 3, numKvHeads: 1, headDim: 5 }, 4, 10000, 1, [0, 17, 3000, 5, 9], 'f16'],
  ['D=5 f32 cache', { numHeads: 2, numKvHeads: 1, headDim: 5 }, 2, 10000, 1, [0, 17, 3000, 5, 9], 'f32'],
  ['D=6 f16 cache', { numHeads: 2, numKvHeads: 2, headDim: 6 }, 6, 10000, 1, [0, 17, 3000, 5, 9], 'f16'],
  ['D=10 f16 cache, partial rotary', { numHeads: 4, numKvHeads: 2, headDim: 10 }, 6, 10000, 1, [0, 17, 3000, 5, 9], 'f16'],
];

describe('ropeCacheKV', async () => {
  const ctx = await getTestGpu();
  cases.forEach(([name, layout, R, theta, scaling, pos, kv], i) => {
    it(`${name}: against HF's rotary embedding, also from split-K sums`, async () => {
      const T = pos.length;
      const slots = [3, -1, 0, 7, 5, 6].slice(0, T);
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
      const invFreqData = invFreqOf(R, theta);
      const invFreq = f32(ctx, invFreqData);
      const numSlots = 8;
      const shape = [2, 4, nKv, D];
      const results = [];
      for (const mode of ['plain', 'split']) {
        const qkv = f32(ctx, mode === 'split' ? randomArray(rng(1), T * stride) : x, [T, stride]);
        const split = mode === 'split' ? { part: f32(ctx, part), splits: S, bias: f32(ctx, bias) } : null;
        const k = createTensor(ctx, shape, kv);
        const v = createTensor(ctx, shape, kv);
        const q = await run(ctx, (rec) => ropeCacheKV(rec, qkv, u32(ctx, pos), invFreq, i32(ctx, slots), k, v, T, layout, R, scaling, split), qkv);
        const qOnly = Array.from({ length: T }, (_, t) => Array.from(q.subarray(t * stride, t * stride + nH * D))).flat();
        results.push({ q: qOnly, k: Array.from(await run(ctx, () => {}, k)), v: Array.from(await run(ctx, () => {}, v)) });
      }
      const [a, c] = results;
      const want = ropeCacheRef(x, pos, slots, invFreqData, layout, R, scaling, numSlots);
      expectClose(a.q, want.q, 1e-5, 2e-6);
      if (kv === 'f32') {
        expectClose(a.k, want.k, 1e-5, 2e-6);
        expect(a.v).toEqual(Array.from(Float32Array.from(want.v)));
      } else {
        // f16: k within a rounding of the f32 value (plus its error), v exactly the f16 of each value.
        expectClose(f16ToF32(Uint16Array.from(a.k)), want.k, 2 ** -10, 4e-6);
        expect(a.v).toEqual(Array.from(f32ToF16(Float32Array.from(want.v))));
      }
      // From split sums: the same values, so the same results exactly (q heads whole, unrotated dims included).
      expect(c.q).toEqual(a.q);
      expect(c.k).toEqual(a.k);
      expect(c.v).toEqual(a.v);
    });
  });
});
