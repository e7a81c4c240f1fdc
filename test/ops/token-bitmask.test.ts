import { describe, expect, it } from 'vitest';
import { tokenBitmask } from '../../src/ops/token-bitmask.js';
import { applyTokenBitmask } from '../../src/sampling/sampler.js';
import { getTestGpu } from '../helpers/gpu.js';
import { f32, randomArray, rng, run, u32 } from './util.js';

describe('tokenBitmask', () => {
  // V not a multiple of 32 (a partial last word), rows masked out of order, some rows left alone.
  for (const [S, V, seed] of [
    [5, 77, 1],
    [8, 151936, 2],
    [3, 32, 3],
  ] as const) {
    it(`S=${S} V=${V}: the masked rows equal the CPU reference, the others are untouched`, async () => {
      const ctx = await getTestGpu();
      const rand = rng(seed);
      const x = randomArray(rand, S * V, -5, 5);
      const W = Math.ceil(V / 32);
      const rows = [S - 1, 0, ...(S > 3 ? [2] : [])];
      const masks = new Int32Array(rows.length * W);
      for (let i = 0; i < masks.length; i++) {
        // Words of every kind: all allowed, none allowed, sparse, random.
        const k = i % 4;
        masks[i] = k === 0 ? -1 : k === 1 ? 0 : k === 2 ? 1 << (i % 32) : (rand() * 2 ** 32) | 0;
      }
      const want = x.slice();
      rows.forEach((r, m) => applyTokenBitmask(want.subarray(r * V, (r + 1) * V), masks.subarray(m * W, (m + 1) * W)));
      const logits = f32(ctx, x);
      const got = await run(ctx, (rec) => tokenBitmask(rec, logits, u32(ctx, rows), u32(ctx, new Uint32Array(masks.buffer)), rows.length, V), logits);
      expect(Array.from(got)).toEqual(Array.from(want));
    });
  }
});
