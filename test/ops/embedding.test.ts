import { describe, expect, it } from 'vitest';
import { Recorder } from '../../src/gpu/recorder.js';
import { createTensor } from '../../src/gpu/tensor.js';
import { argmax } from '../../src/ops/argmax.js';
import { embed, gatherRows } from '../../src/ops/embedding.js';
import { getTestGpu } from '../helpers/gpu.js';
import { f32, randomArray, rng, roundF16, run, TUNINGS, u32, weight, withTuning } from './util.js';

describe('embed, gatherRows, argmax', async () => {
  const ctx = await getTestGpu();

  // [V, H, dtype, rows per part]
  for (const [V, H, dtype, partRows] of [[10, 8, 'f32', undefined], [50, 13, 'f16', 7], [300, 64, 'f32', 64], [33, 5, 'f16', 10]] as const) {
    it(`embed V=${V} H=${H} ${dtype}${partRows ? ` parts of ${partRows} rows` : ''}, then accumulate`, async () => {
      const rand = rng(V + H);
      let table = randomArray(rand, V * H);
      if (dtype === 'f16') table = roundF16(table);
      const stride = dtype === 'f16' ? H + (H % 2) : H;
      const W = weight(ctx, table, V, H, dtype, partRows ? partRows * stride * (dtype === 'f16' ? 2 : 4) : undefined);
      const ids = [0, V - 1, 3, 3, Math.floor(V / 2), V - 2, 1];
      const T = ids.length;
      const out = createTensor(ctx, [T, H], 'f32');
      const want = new Float32Array(T * H);
      ids.forEach((id, t) => want.set(table.subarray(id * H, (id + 1) * H), t * H));
      expect(Array.from(await run(ctx, (rec) => embed(rec, u32(ctx, ids), W, out, T), out))).toEqual(Array.from(want));
      // Learned positions on top: out += table[pos].
      const pos = ids.map((_, t) => t);
      const sum = want.map((v, i) => v + table[(pos[Math.floor(i / H)] * H) + (i % H)]);
      const got = await run(ctx, (rec) => embed(rec, u32(ctx, pos), W, out, T, true), out);
      expect(Array.from(got)).toEqual(Array.from(sum));
    });
  }

  // Gemma's sqrt(H) in f32 and Granite's embedding_multiplier: each element times the f32 scale, exactly as f32 math.
  for (const [name, scale] of [['Gemma sqrt(H), H=9', Math.fround(Math.sqrt(9 * 256))], ['Granite multiplier 12', 12], ['0.37', 0.37]] as const) {
    it(`embed with a multiplier: ${name}, f16 table in parts, then accumulated`, async () => {
      const [V, H] = [40, 9];
      const table = roundF16(randomArray(rng(7), V * H));
      const W = weight(ctx, table, V, H, 'f16', 12 * (H + 1) * 2);
      const ids = [39, 0, 12, 12, 25];
      const T = ids.length;
      const out = createTensor(ctx, [T, H], 'f32');
      const s = Math.fround(scale);
      const want = Float32Array.from({ length: T * H }, (_, i) => Math.fround(table[ids[Math.floor(i / H)] * H + (i % H)] * s));
      expect(Array.from(await run(ctx, (rec) => embed(rec, u32(ctx, ids), W, out, T, false, scale), out))).toEqual(Array.from(want));
      const twice = want.map((v) => Math.fround(v + v));
      expect(Array.from(await run(ctx, (rec) => embed(rec, u32(ctx, ids), W, out, T, true, scale), out))).toEqual(Array.from(twice));
    });
  }

  it('embed rejects a scale that is not finite', () => {
    const W = weight(ctx, new Float32Array(8), 2, 4, 'f32');
    const out = createTensor(ctx, [1, 4], 'f32');
    expect(() => embed(new Recorder(ctx), u32(ctx, [0]), W, out, 1, false, NaN)).toThrow(/scale NaN is not a finite number/);
  });

  it('gatherRows picks rows in any order', async () => {
    const [T, H] = [9, 12];
    const x = randomArray(rng(1), T * H);
    const rows = [8, 0, 4, 4];
    const out = createTensor(ctx, [rows.length, H], 'f32');
    const want = rows.flatMap((r) => Array.from(x.subarray(r * H, (r + 1) * H)));
    expect(Array.from(await run(ctx, (rec) => gatherRows(rec, f32(ctx, x, [T, H]), u32(ctx, rows), out, rows.length, H), out))).toEqual(want);
  });

  for (const [S, V] of [[1, 5], [3, 1000], [2, 50257], [4, 151936]] as const) for (const [tn, tuning] of TUNINGS) {
    it(`argmax S=${S} V=${V}: first index of the max (${tn})`, () => withTuning(ctx, tuning, async () => {
      const rand = rng(S * V);
      const logits = randomArray(rand, S * V, -30, 10);
      const want: number[] = [];
      for (let s = 0; s < S; s++) {
        // Plant ties: the max appears twice; the first occurrence must win.
        const a = Math.floor(rand() * V);
        const b = Math.floor(rand() * V);
        logits[s * V + a] = 11;
        logits[s * V + b] = 11;
        want.push(Math.min(a, b));
      }
      const out = createTensor(ctx, [S], 'u32');
      expect(Array.from(await run(ctx, (rec) => argmax(rec, f32(ctx, logits), out, S, V), out))).toEqual(want);
    }));
  }

  it('argmax with all -inf but one, and all equal', async () => {
    const V = 700;
    const logits = new Float32Array(2 * V).fill(-Infinity);
    logits[513] = -1e30;
    logits.fill(0.25, V);
    const out = createTensor(ctx, [2], 'u32');
    expect(Array.from(await run(ctx, (rec) => argmax(rec, f32(ctx, logits), out, 2, V), out))).toEqual([513, 0]);
  });
});
