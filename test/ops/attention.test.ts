import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context.js';
import { f32ToF16 } from '../../src/gpu/half.js';
import { Recorder } from '../../src/gpu/recorder.js';
import { createTensor, uploadTensor, type Tensor } from '../../src/gpu/tensor.js';
import { CPU_TUNING, GPU_TUNING, type KernelTuning } from '../../src/gpu/tuning.js';
import { attentionTileCount, attentionTiles, attentionTiling, cacheKV, pagedAttention, type QkvLayout } from '../../src/ops/attention.js';
import { getTestGpu } from '../helpers/gpu.js';
import { expectClose, f32, i32, randomArray, rng, roundF16, run, TUNINGS, u32, withTuning } from './util.js';

interface Case {
  name: string;
  layout: QkvLayout;
  /** Per sequence: [tokens known after this step, tokens new in this step]. */
  seqs: [number, number][];
  blockSize: number;
  window: number | null;
  kv: 'f32' | 'f16';
  qScale?: number;
  /** Gemma 2's attention logit soft-capping (0 / absent: none). */
  softcap?: number;
}

/**
 * A step's flat batch: tokens of several sequences in shuffled order (or, `shuffle` false, each sequence's in a run,
 * as the model runner lays them out), caches holding the earlier tokens.
 */
function makeBatch(c: Case, seed: number, shuffle = true) {
  const rand = rng(seed);
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = c.layout;
  const bs = c.blockSize;
  const kvRow = nKv * D;
  // True keys and values per sequence and position, rounded as the cache will hold them.
  const round = (v: Float32Array) => (c.kv === 'f16' ? roundF16(v) : v);
  const keys = c.seqs.map(([len]) => round(randomArray(rand, len * kvRow)));
  const values = c.seqs.map(([len]) => round(randomArray(rand, len * kvRow)));
  // Non-contiguous block ids: a shuffled pool with spare blocks.
  const needed = c.seqs.map(([len]) => Math.ceil(len / bs));
  const numBlocks = needed.reduce((a, b) => a + b, 0) + 3;
  const pool = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  const maxBlocksPerSeq = Math.max(...needed) + 1;
  const tables = new Uint32Array(c.seqs.length * maxBlocksPerSeq);
  let next = 0;
  c.seqs.forEach((_, s) => {
    for (let b = 0; b < needed[s]; b++) tables[s * maxBlocksPerSeq + b] = pool[next++];
  });
  const slotOf = (s: number, pos: number) => tables[s * maxBlocksPerSeq + Math.floor(pos / bs)] * bs + (pos % bs);
  // Caches: earlier tokens written, this step's slots filled with junk that cacheKV must overwrite.
  const kCache = new Float32Array(numBlocks * bs * kvRow).fill(99);
  const vCache = new Float32Array(numBlocks * bs * kvRow).fill(99);
  c.seqs.forEach(([len, fresh], s) => {
    for (let pos = 0; pos < len - fresh; pos++) {
      const slot = slotOf(s, pos);
      kCache.set(keys[s].subarray(pos * kvRow, (pos + 1) * kvRow), slot * kvRow);
      vCache.set(values[s].subarray(pos * kvRow, (pos + 1) * kvRow), slot * kvRow);
    }
  });
  // This step's tokens, shuffled.
  const tokens: [number, number][] = [];
  c.seqs.forEach(([len, fresh], s) => {
    for (let pos = len - fresh; pos < len; pos++) tokens.push([s, pos]);
  });
  for (let i = tokens.length - 1; i > 0 && shuffle; i--) {
    const j = Math.floor(rand() * (i + 1));
    [tokens[i], tokens[j]] = [tokens[j], tokens[i]];
  }
  const T = tokens.length;
  const stride = (nH + 2 * nKv) * D;
  const qkv = randomArray(rand, T * stride, -(c.qScale ?? 1), c.qScale ?? 1);
  tokens.forEach(([s, pos], t) => {
    qkv.set(keys[s].subarray(pos * kvRow, (pos + 1) * kvRow), t * stride + nH * D);
    qkv.set(values[s].subarray(pos * kvRow, (pos + 1) * kvRow), t * stride + (nH + nKv) * D);
  });
  return { keys, values, tables, maxBlocksPerSeq, numBlocks, kCache, vCache, tokens, qkv, T, slotOf };
}

/** out[t, h, :] by the definition, in f64. */
function attentionRef(c: Case, b: ReturnType<typeof makeBatch>): Float64Array {
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = c.layout;
  const stride = (nH + 2 * nKv) * D;
  const scale = 1 / Math.sqrt(D);
  const out = new Float64Array(b.T * nH * D);
  b.tokens.forEach(([s, pos], t) => {
    const lo = c.window ? Math.max(0, pos - c.window + 1) : 0;
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / (nH / nKv));
      const scores: number[] = [];
      for (let j = lo; j <= pos; j++) {
        let d = 0;
        for (let i = 0; i < D; i++) d += b.qkv[t * stride + h * D + i] * b.keys[s][(j * nKv + kvh) * D + i];
        scores.push(c.softcap ? c.softcap * Math.tanh((d * scale) / c.softcap) : d * scale);
      }
      const m = Math.max(...scores);
      const e = scores.map((x) => Math.exp(x - m));
      const sum = e.reduce((a, x) => a + x, 0);
      for (let i = 0; i < D; i++) {
        let acc = 0;
        for (let j = lo; j <= pos; j++) acc += e[j - lo] * b.values[s][(j * nKv + kvh) * D + i];
        out[(t * nH + h) * D + i] = acc / sum;
      }
    }
  });
  return out;
}

function cacheTensor(ctx: GpuContext, data: Float32Array, c: Case, numBlocks: number): Tensor {
  const shape = [numBlocks, c.blockSize, c.layout.numKvHeads, c.layout.headDim];
  return c.kv === 'f16' ? uploadTensor(ctx, f32ToF16(data), shape, 'f16') : uploadTensor(ctx, data, shape, 'f32');
}

/** cacheKV then pagedAttention over batch `b` of case `c` (with the tiled kernel's tiles when given): the output. */
async function attend(ctx: GpuContext, c: Case, b: ReturnType<typeof makeBatch>, tiles?: { table: Uint32Array; count: number }) {
  const { numHeads: nH, headDim: D } = c.layout;
  const kCache = cacheTensor(ctx, b.kCache, c, b.numBlocks);
  const vCache = cacheTensor(ctx, b.vCache, c, b.numBlocks);
  const qkv = f32(ctx, b.qkv, [b.T, b.qkv.length / b.T]);
  const slots = i32(ctx, b.tokens.map(([s, pos]) => b.slotOf(s, pos)));
  const meta = {
    seqIdx: u32(ctx, b.tokens.map(([s]) => s)),
    positions: u32(ctx, b.tokens.map(([, pos]) => pos)),
    blockTables: u32(ctx, b.tables, [c.seqs.length, b.maxBlocksPerSeq]),
    ...(tiles ? { tiles: { table: u32(ctx, tiles.table), count: tiles.count } } : {}),
  };
  const out = createTensor(ctx, [b.T, nH * D], 'f32');
  const opts = { scale: 1 / Math.sqrt(D), slidingWindow: c.window, blockSize: c.blockSize, maxBlocksPerSeq: b.maxBlocksPerSeq, softcap: c.softcap };
  return run(
    ctx,
    (rec) => {
      cacheKV(rec, qkv, slots, kCache, vCache, b.T, c.layout);
      pagedAttention(rec, qkv, kCache, vCache, meta, out, b.T, c.layout, opts);
    },
    out,
  );
}

const L = (numHeads: number, numKvHeads: number, headDim: number): QkvLayout => ({ numHeads, numKvHeads, headDim });

const cases: Case[] = [
  { name: 'decode over 3 chunks of keys', layout: L(1, 1, 8), seqs: [[40, 1]], blockSize: 4, window: null, kv: 'f32' },
  { name: 'G=16 heads per kv head (several workgroups each)', layout: L(32, 2, 16), seqs: [[30, 3]], blockSize: 8, window: null, kv: 'f16' },
  { name: 'G=5 heads per kv head (uneven split on CPU)', layout: L(10, 2, 8), seqs: [[20, 2]], blockSize: 4, window: null, kv: 'f32' },
  { name: 'single decode token', layout: L(2, 2, 8), seqs: [[5, 1]], blockSize: 4, window: null, kv: 'f32' },
  { name: 'prefill from scratch, D=16, MQA', layout: L(4, 1, 16), seqs: [[11, 11]], blockSize: 4, window: null, kv: 'f32' },
  {
    name: 'mixed prefill + decode, D=64, GQA 4:2',
    layout: L(4, 2, 64),
    seqs: [[9, 9], [23, 1], [40, 6], [3, 1]],
    blockSize: 8,
    window: null,
    kv: 'f32',
    qScale: 4,
  },
  { name: 'D=128, GQA 6:2, f16 cache', layout: L(6, 2, 128), seqs: [[70, 3], [17, 17]], blockSize: 16, window: null, kv: 'f16' },
  { name: 'D=256 (largest), f32 cache', layout: L(2, 1, 256), seqs: [[40, 2]], blockSize: 16, window: null, kv: 'f32' },
  { name: 'D=12, f16 cache', layout: L(3, 1, 12), seqs: [[9, 4]], blockSize: 4, window: null, kv: 'f16' },
  { name: 'sliding window 5', layout: L(2, 1, 16), seqs: [[20, 20], [13, 1]], blockSize: 4, window: 5, kv: 'f32', qScale: 3 },
  { name: 'sliding window larger than context', layout: L(2, 2, 8), seqs: [[6, 6]], blockSize: 2, window: 64, kv: 'f16' },
  { name: 'window of 1 (only the token itself)', layout: L(2, 2, 8), seqs: [[7, 4]], blockSize: 4, window: 1, kv: 'f32' },
  { name: 'long context (online softmax over many chunks)', layout: L(4, 2, 64), seqs: [[1500, 2], [300, 1]], blockSize: 16, window: null, kv: 'f16', qScale: 3 },
  { name: 'long context with window 200', layout: L(2, 1, 32), seqs: [[900, 1]], blockSize: 16, window: 200, kv: 'f32', qScale: 3 },
  // Head dims that are not a multiple of 4: the portable kernel on scalars (and cache writes of odd heads).
  { name: 'D=5, f16 cache (odd: rows straddle f16 words)', layout: L(3, 1, 5), seqs: [[9, 4], [6, 6]], blockSize: 4, window: null, kv: 'f16', qScale: 3 },
  { name: 'D=5, f32 cache, window 4', layout: L(2, 2, 5), seqs: [[13, 5]], blockSize: 4, window: 4, kv: 'f32' },
  { name: 'D=6, GQA 4:2, f32 cache', layout: L(4, 2, 6), seqs: [[20, 3], [7, 7]], blockSize: 4, window: null, kv: 'f32', qScale: 3 },
  { name: 'D=10, GQA 6:3, f16 cache, long context', layout: L(6, 3, 10), seqs: [[300, 2], [5, 5]], blockSize: 8, window: null, kv: 'f16', qScale: 3 },
  // Gemma 2's logit soft-capping, with scores well past the cap.
  { name: 'softcap 5, GQA 4:2', layout: L(4, 2, 16), seqs: [[40, 5], [100, 1], [12, 12]], blockSize: 8, window: null, kv: 'f16', qScale: 6, softcap: 5 },
  { name: 'softcap 2 with window 6, D=6', layout: L(2, 1, 6), seqs: [[30, 4]], blockSize: 4, window: 6, kv: 'f32', qScale: 4, softcap: 2 },
];

describe('pagedAttention + cacheKV', async () => {
  const ctx = await getTestGpu();
  const tunings: [string, KernelTuning][] = [
    ...TUNINGS,
    // Split-K forced: pieces of 16 to 32 keys (a multiple of the workgroup), some of them empty.
    ['split-K, gpu tuning', { ...GPU_TUNING, attentionWorkgroup: 16, attentionSplitBelow: 1e9, attentionSplitKeys: 16, attentionMaxSplits: 40 }],
    ['split-K, cpu tuning', { ...CPU_TUNING, attentionSplitBelow: 1e9, attentionSplitKeys: 24, attentionMaxSplits: 5 }],
    // The portable kernel (no subgroups), alone and split.
    ['portable, gpu tuning', { ...GPU_TUNING, attentionSubgroups: false, attentionWorkgroup: 64 }],
    ['portable split-K', { ...GPU_TUNING, attentionSubgroups: false, attentionWorkgroup: 16, attentionSplitBelow: 1e9, attentionSplitKeys: 16, attentionMaxSplits: 40 }],
  ];
  cases.forEach((c, i) => tunings.forEach(([tuningName, tuning]) => {
    it(`${c.name} (${tuningName})`, () => withTuning(ctx, tuning, async () => {
      const b = makeBatch(c, 1000 + i);
      const got = await attend(ctx, c, b);
      expectClose(got, attentionRef(c, b), 1e-5, 2e-6);
    }));
  }));

  // The tiled kernel for prompts, forced on every case (the runner's flat batch: each sequence's tokens in a run).
  const tiled: [string, KernelTuning][] = [
    ['tiled, gpu tuning', { ...GPU_TUNING, attentionTiledTokens: 1 }],
    ['tiled, cpu tuning', { ...CPU_TUNING, attentionTiledTokens: 1 }],
    ['tiled, 16 threads, 3 keys a step', { ...GPU_TUNING, attentionTiledTokens: 1, attentionWorkgroup: 16, attentionTileKeys: 3 }],
    ['tiled, 256 threads, 64 keys a step', { ...GPU_TUNING, attentionTiledTokens: 1, attentionWorkgroup: 256, attentionTileKeys: 64 }],
  ];
  cases.forEach((c, i) => tiled.forEach(([tuningName, tuning]) => {
    if (c.layout.headDim % 4 !== 0) return; // the per-token kernels serve such steps (see below)
    it(`${c.name} (${tuningName})`, () => withTuning(ctx, tuning, async () => {
      const b = makeBatch(c, 2000 + i, false);
      const tiling = attentionTiling(ctx, c.layout, b.T);
      expect(tiling).not.toBeNull();
      // A bound of a few spare tiles past the used ones (left (0, 0): skipped).
      const count = attentionTileCount(b.T, tiling!.queries, c.seqs.length) + 2;
      const table = new Uint32Array(2 * count).fill(7);
      const used = attentionTiles(c.seqs.map(([, fresh]) => fresh), tiling!.queries, table, count);
      expect(used).toBe(c.seqs.reduce((n, [, fresh]) => n + Math.ceil(fresh / tiling!.queries), 0));
      const got = await attend(ctx, c, b, { table, count });
      expectClose(got, attentionRef(c, b), 1e-5, 2e-6);
    }));
  }));

  it('head dims that are not a multiple of 4 get no tiling: a step with tiles runs the per-token kernels', () =>
    withTuning(ctx, tiled[0][1], async () => {
      const c = cases.find((x) => x.layout.headDim === 6)!;
      const b = makeBatch(c, 3000, false);
      expect(attentionTiling(ctx, c.layout, b.T)).toBeNull();
      const table = new Uint32Array(2 * b.T);
      attentionTiles(c.seqs.map(([, fresh]) => fresh), 4, table, b.T);
      expectClose(await attend(ctx, c, b, { table, count: b.T }), attentionRef(c, b), 1e-5, 2e-6);
    }));

  it('rejects a head dim past 256 and a negative softcap', () => {
    const t = (n: number, dtype: 'f32' | 'u32') => createTensor(ctx, [n], dtype);
    const meta = { seqIdx: t(1, 'u32'), positions: t(1, 'u32'), blockTables: t(1, 'u32') };
    const call = (D: number, softcap: number) =>
      pagedAttention(new Recorder(ctx), t(3 * D, 'f32'), t(4 * D, 'f32'), t(4 * D, 'f32'), meta, t(D, 'f32'), 1, L(1, 1, D), {
        scale: 1,
        slidingWindow: null,
        blockSize: 4,
        maxBlocksPerSeq: 1,
        softcap,
      });
    expect(() => call(260, 0)).toThrow(/head dim 260 must be 1 to 256/);
    expect(() => call(8, -1)).toThrow(/softcap -1 must be >= 0/);
  });

  it('attentionTiles cuts each sequence into tiles and zeroes the rest of the bound', () => {
    const out = new Uint32Array(2 * 8).fill(9);
    expect(attentionTiles([5, 1, 8], 4, out, 8)).toBe(5);
    expect(Array.from(out)).toEqual([0, 4, 4, 1, 5, 1, 6, 4, 10, 4, 0, 0, 0, 0, 0, 0]);
    expect(() => attentionTiles([9], 4, out, 2)).toThrow(/more than 2 tiles/);
    expect(attentionTileCount(2048, 16, 256)).toBe(384);
    expect(attentionTileCount(64, 16, 256)).toBe(64);
  });

  it('cacheKV writes f32 and f16 slots and skips slot -1', async () => {
    const layout = L(2, 2, 4);
    const T = 3;
    const stride = 6 * 4;
    const qkvData = Float32Array.from({ length: T * stride }, (_, i) => i + 0.5);
    const qkv = f32(ctx, qkvData, [T, stride]);
    for (const dtype of ['f32', 'f16'] as const) {
      const k = createTensor(ctx, [2, 2, 2, 4], dtype);
      const v = createTensor(ctx, [2, 2, 2, 4], dtype);
      const slots = i32(ctx, [3, -1, 0]);
      const kGot = await run(ctx, (rec) => cacheKV(rec, qkv, slots, k, v, T, layout), k);
      const vGot = await run(ctx, () => {}, v);
      const kWant = new Float32Array(4 * 8);
      const vWant = new Float32Array(4 * 8);
      for (const [t, slot] of [[0, 3], [2, 0]]) {
        kWant.set(qkvData.subarray(t * stride + 8, t * stride + 16), slot * 8);
        vWant.set(qkvData.subarray(t * stride + 16, t * stride + 24), slot * 8);
      }
      const asF32 = (a: ArrayLike<number>) => (dtype === 'f16' ? Array.from(a as Uint16Array, (h) => h) : Array.from(a));
      expect(asF32(kGot)).toEqual(asF32(dtype === 'f16' ? f32ToF16(kWant) : kWant));
      expect(asF32(vGot)).toEqual(asF32(dtype === 'f16' ? f32ToF16(vWant) : vWant));
    }
  });
});
