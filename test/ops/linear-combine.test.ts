/**
 * The GEMV's input merged from split-K attention pieces (LinearOptions.combine, shaders/lib/gemv.combine.wgsl)
 * against the unfused path it replaces at decode: attentionCombine into x, then the o projection. Every weight
 * format's GEMV must give the same outputs, bit for bit (the merge is the combine kernel's arithmetic), and pieces
 * left by pagedAttention's deferCombine must merge to what pagedAttention writes itself.
 */
import { describe, expect, it } from 'vitest';
import { createTensor } from '../../src/gpu/tensor.js';
import { GPU_TUNING } from '../../src/gpu/tuning.js';
import { denseMethod, linear, type LinearMethod } from '../../src/layers/linear.js';
import { blockFormat, QUANT_FORMATS, quantMethod } from '../../src/layers/quant/index.js';
import { attentionCombine, cacheKV, pagedAttention, type AttentionPartials } from '../../src/ops/attention.js';
import { getTestGpu } from '../helpers/gpu.js';
import { f32, i32, randomArray, rng, run, TUNINGS, u32, withTuning } from './util.js';

const FORMATS = ['f32', 'f16', ...QUANT_FORMATS] as const;

/** Random pieces of T tokens x nH heads x splits, the last piece of token 0's heads empty (m = -inf, l = 0, acc = 0). */
function randomPieces(rand: () => number, T: number, nH: number, D: number, splits: number): Float32Array {
  const n = T * nH * splits;
  const data = new Float32Array(n * (4 + D));
  for (let pi = 0; pi < n; pi++) {
    const empty = pi < nH * splits && pi % splits === splits - 1;
    data[4 * pi] = empty ? -Infinity : -3 + 6 * rand();
    data[4 * pi + 1] = empty ? 0 : 0.5 + 2 * rand();
    for (let d = 0; d < D; d++) data[4 * n + pi * D + d] = empty ? 0 : -2 + 4 * rand();
  }
  return data;
}

describe('linear merging attention pieces (LinearOptions.combine) equals attentionCombine + linear', async () => {
  const ctx = await getTestGpu();
  const method = (f: (typeof FORMATS)[number]): LinearMethod => (f === 'f32' || f === 'f16' ? denseMethod(f) : quantMethod(f));
  for (const [tname, tuning] of TUNINGS) {
    for (const format of FORMATS) {
      for (const T of [1, 3]) {
        it(`${tname}, ${format}, T=${T}: the o projection with its residual`, async () => {
          // The merge is off in the GPU tuning (measured slower on an H100); on here, as a GPU may set it.
          await withTuning(ctx, { ...tuning, gemvMergeBytes: 65536 }, async () => {
            // nH D: whole blocks of the format (256-element k-quants).
            const D = format === 'f32' || format === 'f16' ? 16 : Math.max(16, blockFormat(format).blockElems / 4);
            const nH = 4;
            const K = nH * D;
            const N = 40;
            const splits = 3;
            const rand = rng(T * 31 + FORMATS.indexOf(format));
            const m = method(format);
            const W = m.create(ctx, N, K, 'o');
            m.writeRows(ctx, W, 0, new Uint8Array(randomArray(rand, N * K, -0.5, 0.5).buffer), 'F32');
            const bias = f32(ctx, randomArray(rand, N));
            const residual = randomArray(rand, T * N);
            const pieces: AttentionPartials = { part: f32(ctx, randomPieces(rand, T, nH, D, splits)), splits, numHeads: nH, headDim: D };
            const results = [];
            const dispatches: number[] = [];
            for (const fused of [false, true]) {
              const x = createTensor(ctx, [T, K], 'f32');
              const out = f32(ctx, residual, [T, N]);
              const y = await run(
                ctx,
                (rec) => {
                  if (!fused) attentionCombine(rec, pieces, x, T);
                  linear(rec, x, W, bias, out, T, { residual: true, combine: fused ? pieces : undefined });
                  dispatches.push(rec.dispatches);
                },
                out,
              );
              results.push(Array.from(y));
            }
            expect(results[1]).toEqual(results[0]);
            // The GEMV merges (the int8-activation GEMV, from 2 tokens where the tuning asks, leaves it to a dispatch).
            if (T === 1 || format === 'f32' || format === 'f16') expect(dispatches[1]).toBe(dispatches[0] - 1);
            m.destroy(W);
          });
        });
      }
    }
  }

  it("pagedAttention's deferred pieces merge (in the GEMV or by attentionCombine) to its own output", async () => {
    await withTuning(ctx, { ...GPU_TUNING, attentionSplitKeys: 16, gemvMergeBytes: 65536 }, async () => {
      const layout = { numHeads: 4, numKvHeads: 2, headDim: 16 };
      const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
      const T = 2;
      const blockSize = 8;
      const maxBlocksPerSeq = 8;
      const stride = (nH + 2 * nKv) * D;
      const k = createTensor(ctx, [maxBlocksPerSeq, blockSize, nKv, D], 'f32');
      const v = createTensor(ctx, [maxBlocksPerSeq, blockSize, nKv, D], 'f32');
      // Fill 40 positions of one sequence, then attend from positions 38 and 39.
      const P = 40;
      const table = u32(ctx, Array.from({ length: maxBlocksPerSeq }, (_, b) => b));
      await run(ctx, (rec) => cacheKV(rec, f32(ctx, randomArray(rng(3), P * stride), [P, stride]), i32(ctx, Array.from({ length: P }, (_, i) => i)), k, v, P, layout), k);
      const qkv = f32(ctx, randomArray(rng(4), T * stride), [T, stride]);
      const meta = { seqIdx: u32(ctx, [0, 0]), positions: u32(ctx, [P - 2, P - 1]), blockTables: table };
      const opts = { scale: 0.25, slidingWindow: null, blockSize, maxBlocksPerSeq };
      const W = denseMethod('f32').create(ctx, 24, nH * D, 'o');
      W.method.writeRows(ctx, W, 0, new Uint8Array(randomArray(rng(5), 24 * nH * D).buffer), 'F32');
      const outs = [];
      for (const defer of [false, true]) {
        const attn = createTensor(ctx, [T, nH * D], 'f32');
        const out = createTensor(ctx, [T, 24], 'f32');
        let pieces: AttentionPartials | null = null;
        outs.push(
          Array.from(
            await run(
              ctx,
              (rec) => {
                pieces = pagedAttention(rec, qkv, k, v, meta, attn, T, layout, { ...opts, deferCombine: defer });
                expect(pieces !== null).toBe(defer);
                linear(rec, attn, W, null, out, T, { combine: pieces ?? undefined });
              },
              out,
            ),
          ),
        );
      }
      expect(outs[1]).toEqual(outs[0]);
    });
  });
});
