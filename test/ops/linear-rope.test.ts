/**
 * The GEMV's fused rope and KV-cache write (LinearOptions.rope, shaders/lib/gemv.rope.wgsl) against the unfused
 * path it replaces at decode: the qkv projection, then ropeCacheKV. Every weight format's GEMV (dense f32 / f16 and
 * each block format) must leave the same q heads and caches, bit for bit: the products are the same sums, the
 * rotation the same cos and sin (lib/rope.wgsl).
 */
import { describe, expect, it } from 'vitest';
import { createTensor, type Tensor } from '../../src/gpu/tensor.js';
import { denseMethod, linear, type LinearMethod } from '../../src/layers/linear.js';
import { blockFormat, QUANT_FORMATS, quantMethod } from '../../src/layers/quant/index.js';
import { ropeCacheKV, type QkvLayout } from '../../src/ops/attention.js';
import { linear as denseLinear } from '../../src/ops/linear.js';
import { getTestGpu } from '../helpers/gpu.js';
import { f32, i32, randomArray, rng, run, TUNINGS, u32, weight, withTuning } from './util.js';

const invFreqOf = (R: number, base: number) => Float32Array.from({ length: R / 2 }, (_, i) => 1 / base ** ((2 * i) / R));

/** [name, layout, rotary dim, attention scaling, cache dtype, bias, RMSNorm of the input] */
type Case = [string, QkvLayout, number, number, 'f32' | 'f16', boolean, boolean];
const cases: Case[] = [
  ['Llama-like GQA, f16 cache, rmsNorm', { numHeads: 4, numKvHeads: 2, headDim: 16 }, 16, 1, 'f16', false, true],
  ['bias, scaling, f32 cache', { numHeads: 2, numKvHeads: 1, headDim: 8 }, 8, 1.2, 'f32', true, false],
  ['partial rotary (R=4 of D=12), f16 cache, rmsNorm', { numHeads: 3, numKvHeads: 1, headDim: 12 }, 4, 1, 'f16', true, true],
];
const FORMATS = ['f32', 'f16', ...QUANT_FORMATS] as const;

describe('linear with the fused rope (LinearOptions.rope) equals linear + ropeCacheKV', async () => {
  const ctx = await getTestGpu();
  const method = (f: (typeof FORMATS)[number]): LinearMethod => (f === 'f32' || f === 'f16' ? denseMethod(f) : quantMethod(f));
  for (const [tname, tuning] of TUNINGS) {
    for (const format of FORMATS) {
      cases.forEach(([name, layout, R, scaling, kt, withBias, withNorm], ci) => {
        for (const T of [1, 3]) {
          it(`${tname}, ${format}, T=${T}: ${name}`, async () => {
            await withTuning(ctx, tuning, async () => {
              const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
              const N = (nH + 2 * nKv) * D;
              // Whole blocks of the format (256-element k-quants), a multiple of 8 for the dense GEMV.
              const K = format === 'f32' || format === 'f16' ? 64 : Math.max(64, blockFormat(format).blockElems);
              const rand = rng(ci * 97 + T * 13 + FORMATS.indexOf(format));
              const m = method(format);
              const W = m.create(ctx, N, K, 'qkv');
              m.writeRows(ctx, W, 0, new Uint8Array(randomArray(rand, N * K, -0.5, 0.5).buffer), 'F32');
              const x = f32(ctx, randomArray(rand, T * K, -2, 2), [T, K]);
              const bias = withBias ? f32(ctx, randomArray(rand, N)) : null;
              const rmsNorm = withNorm ? { weight: f32(ctx, randomArray(rand, K, 0.5, 1.5)), eps: 1e-5 } : undefined;
              const positions = u32(ctx, [7, 3000, 1].slice(0, T));
              const slotMapping = i32(ctx, [5, -1, 0].slice(0, T));
              const invFreq = f32(ctx, invFreqOf(R, 10000));
              const cacheShape = [2, 4, nKv, D];
              const results = [];
              for (const fused of [false, true]) {
                const qkv = createTensor(ctx, [T, N], 'f32');
                const kCache = createTensor(ctx, cacheShape, kt);
                const vCache = createTensor(ctx, cacheShape, kt);
                let roped = false;
                const q = await run(
                  ctx,
                  (rec) => {
                    const rope = fused ? { positions, invFreq, slotMapping, kCache, vCache, layout, rotaryDim: R, scaling } : undefined;
                    roped = linear(rec, x, W, bias, qkv, T, { rmsNorm, rope }).roped;
                    if (!roped) ropeCacheKV(rec, qkv, positions, invFreq, slotMapping, kCache, vCache, T, layout, R, scaling);
                  },
                  qkv,
                );
                // The GEMV serves every format at these token counts (the int8-activation GEMV, from 2 tokens where
                // the tuning asks, does not fuse the rope).
                if (fused && (T === 1 || format === 'f32' || format === 'f16')) expect(roped).toBe(true);
                const qHeads = Array.from({ length: T }, (_, t) => Array.from(q.subarray(t * N, t * N + nH * D))).flat();
                results.push({ q: qHeads, k: Array.from(await run(ctx, () => {}, kCache)), v: Array.from(await run(ctx, () => {}, vCache)) });
              }
              const [want, got] = results;
              expect(got.q).toEqual(want.q);
              expect(got.k).toEqual(want.k);
              expect(got.v).toEqual(want.v);
              m.destroy(W);
            });
          });
        }
      });
    }
  }

  it('weight parts that cut a head are not fused (the caller runs ropeCacheKV); parts of whole heads are', async () => {
    const layout = { numHeads: 2, numKvHeads: 1, headDim: 8 };
    const N = 32;
    const K = 16;
    const data = randomArray(rng(5), N * K);
    const T = 1;
    const rope = (kCache: Tensor, vCache: Tensor) => ({
      positions: u32(ctx, [3]),
      invFreq: f32(ctx, invFreqOf(8, 10000)),
      slotMapping: i32(ctx, [1]),
      kCache,
      vCache,
      layout,
      rotaryDim: 8,
      scaling: 1,
    });
    for (const [partRows, fused] of [[12, false], [16, true], [8, true]] as const) {
      const w = weight(ctx, data, N, K, 'f32', partRows * K * 4);
      expect(w.parts.length).toBe(Math.ceil(N / partRows));
      const out = createTensor(ctx, [T, N], 'f32');
      const k = createTensor(ctx, [2, 4, 1, 8], 'f32');
      const v = createTensor(ctx, [2, 4, 1, 8], 'f32');
      let roped = false;
      await run(ctx, (rec) => (roped = denseLinear(rec, f32(ctx, randomArray(rng(6), K), [T, K]), w, null, out, T, { rope: rope(k, v) }).roped), out);
      expect(roped).toBe(fused);
    }
  });
});
