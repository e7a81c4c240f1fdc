import { describe, expect, it } from 'vitest';
import { writeBuffer } from '../../src/gpu/buffers.js';
import type { GpuContext } from '../../src/gpu/context.js';
import { f32ToF16 } from '../../src/gpu/half.js';
import { Recorder } from '../../src/gpu/recorder.js';
import { createTensor, readTensor } from '../../src/gpu/tensor.js';
import { CPU_TUNING, GPU_TUNING, type KernelTuning } from '../../src/gpu/tuning.js';
import {
  createExpertWeights,
  fusedMoe,
  moeGroup,
  moeGroupLayout,
  moeRoute,
  moeTileRows,
  maxTiles,
  sharedExpertGate,
  writeExpertRows,
  type ExpertWeights,
} from '../../src/ops/moe.js';
import { getTestGpu } from '../helpers/gpu.js';
import { expectClose, f32, randomArray, rng, roundF16, run, TUNINGS, u32, weight, withTuning } from './util.js';

const silu = (v: number) => v / (1 + Math.exp(-v));

/** HF routing in f64: softmax over E, top-K by (logit desc, index asc), optionally renormalised. */
function routeRef(logits: Float32Array, T: number, E: number, K: number, norm: boolean) {
  const ids = new Uint32Array(T * K);
  const weights = new Float64Array(T * K);
  for (let t = 0; t < T; t++) {
    const row = Array.from(logits.subarray(t * E, (t + 1) * E));
    const m = Math.max(...row);
    const ex = row.map((l) => Math.exp(l - m));
    const total = ex.reduce((a, b) => a + b, 0);
    const order = row.map((_, e) => e).sort((a, b) => row[b] - row[a] || a - b);
    const picked = order.slice(0, K);
    const sum = picked.reduce((a, e) => a + ex[e], 0);
    picked.forEach((e, k) => {
      ids[t * K + k] = e;
      weights[t * K + k] = ex[e] / (norm ? sum : total);
    });
  }
  return { ids, weights };
}

/** K distinct random experts per token (as top-k gives) and random positive weights. */
function randomRouting(rand: () => number, T: number, E: number, K: number) {
  const ids = new Uint32Array(T * K);
  for (let t = 0; t < T; t++) {
    const pool = Array.from({ length: E }, (_, e) => e);
    for (let k = 0; k < K; k++) ids[t * K + k] = pool.splice(Math.floor(rand() * pool.length), 1)[0];
  }
  return { ids, weights: randomArray(rand, T * K, 0.1, 1) };
}

/**
 * The MoE block in f64: out[t] = residual[t] + sum_k w[t, k] ((silu(x G_e^T) * (x U_e^T)) D_e^T), with the
 * tolerance scale sum_k |w| sum_i |h_i D_e[n, i]| + rounding of h from its own scale.
 */
function moeRef(
  x: Float32Array,
  ids: Uint32Array,
  w: ArrayLike<number>,
  gateUp: Float32Array, // [E, 2I, H]
  down: Float32Array, // [E, H, I]
  residual: Float32Array,
  T: number,
  K: number,
  H: number,
  I: number,
) {
  const out = Float64Array.from(residual);
  const atol = new Float64Array(T * H).fill(1e-6);
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < K; k++) {
      const e = ids[t * K + k];
      const h = new Float64Array(I);
      const hScale = new Float64Array(I);
      for (let i = 0; i < I; i++) {
        let g = 0;
        let u = 0;
        let gm = 0;
        let um = 0;
        for (let j = 0; j < H; j++) {
          const xv = x[t * H + j];
          g += xv * gateUp[(e * 2 * I + i) * H + j];
          u += xv * gateUp[(e * 2 * I + I + i) * H + j];
          gm += Math.abs(xv * gateUp[(e * 2 * I + i) * H + j]);
          um += Math.abs(xv * gateUp[(e * 2 * I + I + i) * H + j]);
        }
        h[i] = silu(g) * u;
        hScale[i] = gm * (Math.abs(u) + 1) + um * (Math.abs(silu(g)) + 1);
      }
      for (let n = 0; n < H; n++) {
        let s = 0;
        let m = 0;
        for (let i = 0; i < I; i++) {
          const d = down[(e * H + n) * I + i];
          s += h[i] * d;
          m += (Math.abs(h[i]) + hScale[i] * 1e-6) * Math.abs(d);
        }
        out[t * H + n] += w[t * K + k] * s;
        atol[t * H + n] += 4e-6 * Math.abs(w[t * K + k]) * m;
      }
    }
  }
  return { out, atol };
}

/** Expert weights holding `data` [E, rows, cols], written one expert at a time as a loader does. */
function experts(ctx: GpuContext, data: Float32Array, E: number, rows: number, cols: number, dtype: 'f32' | 'f16', maxPartBytes?: number): ExpertWeights {
  const w = createExpertWeights(ctx, E, rows, cols, dtype, 'test experts', { maxPartBytes });
  for (let e = 0; e < E; e++) {
    const rowsOf = data.subarray(e * rows * cols, (e + 1) * rows * cols);
    writeExpertRows(ctx, w, e, 0, dtype === 'f16' ? f32ToF16(rowsOf) : rowsOf);
  }
  return w;
}

interface BlockCase {
  T: number;
  E: number;
  K: number;
  dtype: 'f32' | 'f16';
  H?: number;
  I?: number;
  /** Experts per weight part (undefined: one part). */
  partExperts?: number;
  /** ids[t, k] given instead of random. */
  route?: (t: number, k: number) => number;
  tileRows?: number;
  rows?: 1 | 2 | 4;
  kernel?: 'gemv' | 'gemm';
}

async function checkBlock(ctx: GpuContext, c: BlockCase) {
  const { T, E, K, dtype } = c;
  const H = c.H ?? 32;
  const I = c.I ?? 24;
  const rand = rng(T * 1009 + E * 101 + K * 11 + (dtype === 'f16' ? 7 : 0) + (c.partExperts ?? 0));
  const x = randomArray(rand, T * H);
  let gu = randomArray(rand, E * 2 * I * H, -0.5, 0.5);
  let dn = randomArray(rand, E * H * I, -0.5, 0.5);
  if (dtype === 'f16') {
    gu = roundF16(gu);
    dn = roundF16(dn);
  }
  const residual = randomArray(rand, T * H);
  const routing = randomRouting(rand, T, E, K);
  if (c.route) for (let t = 0; t < T; t++) for (let k = 0; k < K; k++) routing.ids[t * K + k] = c.route(t, k);
  const bytes = dtype === 'f16' ? 2 : 4;
  const rowBytes = (cols: number) => Math.ceil((cols + ctx.tuning.weightRowPadding / bytes) / 8) * 8 * bytes;
  const gateUp = experts(ctx, gu, E, 2 * I, H, dtype, c.partExperts ? c.partExperts * 2 * I * rowBytes(H) : undefined);
  const down = experts(ctx, dn, E, H, I, dtype, c.partExperts ? c.partExperts * H * rowBytes(I) : undefined);
  if (c.partExperts) {
    expect(gateUp.weight.parts.map((p) => p.rows / (2 * I))).toEqual(partSizes(E, c.partExperts));
    expect(down.weight.parts.map((p) => p.rows / H)).toEqual(partSizes(E, c.partExperts));
  }
  const out = f32(ctx, residual, [T, H]);
  const xt = f32(ctx, x, [T, H]);
  const idt = u32(ctx, routing.ids);
  const wt = f32(ctx, routing.weights);
  const got = await run(ctx, (rec) => fusedMoe(rec, xt, idt, wt, gateUp, down, out, T, K, { tileRows: c.tileRows, rows: c.rows, kernel: c.kernel }), out);
  const ref = moeRef(x, routing.ids, routing.weights, gu, dn, residual, T, K, H, I);
  expectClose(got, ref.out, 1e-5, ref.atol);
}

/** Experts per part when E experts are split `per` at a time. */
const partSizes = (E: number, per: number) => Array.from({ length: Math.ceil(E / per) }, (_, i) => Math.min(per, E - i * per));

describe('moeRoute', async () => {
  const ctx = await getTestGpu();
  // [T, E, K, norm, distinct logit levels (0: continuous; few levels make ties)]
  const cases: [number, number, number, boolean, number][] = [
    [5, 8, 2, true, 0], // Mixtral
    [37, 60, 4, false, 0], // Qwen2-MoE
    [70, 128, 8, true, 0], // Qwen3-MoE
    [33, 8, 2, false, 3],
    [33, 16, 8, true, 2],
    [3, 4, 4, true, 1], // all tied: ids in order, weights 1 / 4
  ];
  for (const [T, E, K, norm, levels] of cases) {
    it(`T=${T} E=${E} K=${K} ${norm ? 'renormalised' : 'softmax weights'}${levels ? `, logits of ${levels} values (ties)` : ''}`, async () => {
      const rand = rng(T * 31 + E * 7 + K);
      const logits = randomArray(rand, T * E, -4, 4);
      if (levels) for (let i = 0; i < logits.length; i++) logits[i] = Math.floor(rand() * levels) * 0.75;
      const lt = f32(ctx, logits, [T, E]);
      const ids = createTensor(ctx, [T, K], 'u32');
      const weights = createTensor(ctx, [T, K], 'f32');
      const gotW = await run(ctx, (rec) => moeRoute(rec, lt, ids, weights, T, E, K, norm), weights);
      const gotIds = await readTensor(ctx, ids);
      const ref = routeRef(logits, T, E, K, norm);
      expect(Array.from(gotIds)).toEqual(Array.from(ref.ids));
      expectClose(gotW, ref.weights, 1e-5, 1e-7);
    });
  }

  it('rejects a top-k larger than the experts', async () => {
    const rec = new Recorder(ctx);
    const t = createTensor(ctx, [8], 'f32');
    expect(() => moeRoute(rec, t, createTensor(ctx, [8], 'u32'), t, 1, 4, 5, true)).toThrow(/top-k 5 must be in 1..4/);
    rec.discard();
  });
});

describe('moeGroup', async () => {
  const ctx = await getTestGpu();
  // [T, E, K, tile rows, how ids are drawn]
  const cases: [number, number, number, number, string][] = [
    [1, 8, 2, 1, 'top-k'],
    [70, 8, 8, 4, 'top-k'], // 560 pairs: three blocks of the scatter
    [40, 128, 8, 2, 'top-k'],
    [33, 8, 2, 8, 'one expert'],
    [100, 5, 3, 3, 'any'], // repeats within a token, uneven tiles
    [20, 300, 6, 2, 'top-k'], // more experts than GPU-tuned threads: runs of 2 per thread in the scan
  ];
  for (const [T, E, K, TR, how] of cases) for (const [name, tuning] of TUNINGS) {
    it(`T=${T} E=${E} K=${K} tiles of ${TR}, ${how}: counts, offsets, every pair once in stable order, tiles (${name})`, () => withTuning(ctx, tuning, async () => {
      const rand = rng(T + E + K + TR);
      const P = T * K;
      let ids = randomRouting(rand, T, E, K).ids;
      if (how === 'one expert') ids = new Uint32Array(P).fill(3);
      if (how === 'any') ids = Uint32Array.from({ length: P }, () => Math.floor(rand() * E));
      const layout = moeGroupLayout(E, P, TR);
      const groups = createTensor(ctx, [layout.words], 'u32');
      const got = (await run(ctx, (rec) => moeGroup(rec, u32(ctx, ids), groups, T, E, K, TR), groups)) as Uint32Array;
      const counts = new Array(E).fill(0);
      for (const e of ids) counts[e]++;
      const offsets = [0];
      const tileOffsets = [0];
      for (let e = 0; e < E; e++) {
        offsets.push(offsets[e] + counts[e]);
        tileOffsets.push(tileOffsets[e] + Math.ceil(counts[e] / TR));
      }
      const sorted = Array.from({ length: P }, (_, i) => i).sort((a, b) => ids[a] - ids[b] || a - b);
      const tiles: number[] = [];
      for (let e = 0; e < E; e++) for (let j = 0; j * TR < counts[e]; j++) tiles.push(e, offsets[e] + j * TR);
      expect(Array.from(got.subarray(layout.counts, layout.counts + E))).toEqual(counts);
      expect(Array.from(got.subarray(layout.offsets, layout.offsets + E + 1))).toEqual(offsets);
      expect(Array.from(got.subarray(layout.tileOffsets, layout.tileOffsets + E + 1))).toEqual(tileOffsets);
      expect(Array.from(got.subarray(layout.sorted, layout.sorted + P))).toEqual(sorted);
      expect(tiles.length / 2).toBeLessThanOrEqual((layout.words - layout.tiles) / 2);
      expect(Array.from(got.subarray(layout.tiles, layout.tiles + tiles.length))).toEqual(tiles);
    }));
  }
});

describe('fusedMoe', async () => {
  const ctx = await getTestGpu();
  for (const T of [1, 2, 5, 33, 70]) for (const E of [4, 8]) for (const K of [1, 2]) for (const dtype of ['f32', 'f16'] as const) {
    it(`T=${T} E=${E} K=${K} ${dtype}`, () => checkBlock(ctx, { T, E, K, dtype }));
  }
  for (const [name, tuning] of TUNINGS) {
    it(`weights in parts of 3 experts, T=33 E=8 K=2 f16 (${name})`, () => withTuning(ctx, tuning, () => checkBlock(ctx, { T: 33, E: 8, K: 2, dtype: 'f16', partExperts: 3 })));
    it(`parts of 1 expert, T=5 E=4 K=2 f32, H=48 I=40 (${name})`, () => withTuning(ctx, tuning, () => checkBlock(ctx, { T: 5, E: 4, K: 2, dtype: 'f32', partExperts: 1, H: 48, I: 40 })));
    it(`every token to experts 2 and 5, others idle, T=70 E=8 K=2 (${name})`, () =>
      withTuning(ctx, tuning, () => checkBlock(ctx, { T: 70, E: 8, K: 2, dtype: 'f16', route: (_t, k) => (k === 0 ? 5 : 2) })));
    it(`every token to expert 0, T=33 E=4 K=1, parts of 2 (${name})`, () =>
      withTuning(ctx, tuning, () => checkBlock(ctx, { T: 33, E: 4, K: 1, dtype: 'f32', route: () => 0, partExperts: 2 })));
  }
  // [tile rows, weight rows per row group, tuning]: the variants the benchmark compares (GPU tuning: the
  // shared-memory lane sums of 32 lanes on lavapipe's 8-wide subgroups).
  const variants: [number, 1 | 2 | 4 | undefined, number][] = [[1, undefined, 0], [3, 4, 0], [16, 1, 0], [3, 1, 1], [4, 4, 1]];
  for (const [tileRows, rows, tuningIndex] of variants) {
    const [name, tuning] = TUNINGS[tuningIndex];
    it(`tiles of ${tileRows} pairs, ${rows ?? 'default'} rows per group, T=33 E=8 K=2 f16, H=64 I=32 (${name})`, () =>
      withTuning(ctx, tuning, () => checkBlock(ctx, { T: 33, E: 8, K: 2, dtype: 'f16', tileRows, rows, H: 64, I: 32 })));
  }

  // The shared-memory kernel (prefill on GPUs): tiles of 4 WY pairs.
  const gemmTunings: [string, KernelTuning][] = [
    ['gpu tuning, 16x16 K16', GPU_TUNING],
    ['8x4 K8', { ...CPU_TUNING, gemmWorkgroup: [8, 4], gemmK: 8 }],
  ];
  for (const [name, tuning] of gemmTunings) {
    it(`gemm: T=70 E=4 K=2 f16, parts of 3 experts (${name})`, () => withTuning(ctx, tuning, () => checkBlock(ctx, { T: 70, E: 4, K: 2, dtype: 'f16', partExperts: 3, kernel: 'gemm' })));
    it(`gemm: T=33 E=8 K=2 f32, H=48 I=40 (${name})`, () => withTuning(ctx, tuning, () => checkBlock(ctx, { T: 33, E: 8, K: 2, dtype: 'f32', H: 48, I: 40, kernel: 'gemm' })));
    it(`gemm: every token to expert 1, T=70 E=4 K=1 f16 (${name})`, () => withTuning(ctx, tuning, () => checkBlock(ctx, { T: 70, E: 4, K: 1, dtype: 'f16', route: () => 1, kernel: 'gemm' })));
    it(`gemm: T=1 E=8 K=2 f32 (${name})`, () => withTuning(ctx, tuning, () => checkBlock(ctx, { T: 1, E: 8, K: 2, dtype: 'f32', kernel: 'gemm' })));
  }

  it('the tile bound holds for any routing and any range of experts (a weight part)', () => {
    const rand = rng(31);
    for (let trial = 0; trial < 2000; trial++) {
      const E = 1 + Math.floor(rand() * 40);
      const K = 1 + Math.floor(rand() * Math.min(E, 8));
      const T = 1 + Math.floor(rand() * 60);
      const TR = 1 + Math.floor(rand() * 16);
      // Skewed routings too: a few favourite experts.
      const favourites = 1 + Math.floor(rand() * E);
      const counts = new Array(E).fill(0);
      for (const e of randomRouting(() => (rand() < 0.7 ? (rand() * favourites) / E : rand()), T, E, K).ids) counts[e]++;
      const lo = Math.floor(rand() * E);
      const hi = lo + 1 + Math.floor(rand() * (E - lo));
      const tiles = counts.slice(lo, hi).reduce((a, c) => a + Math.ceil(c / TR), 0);
      expect(tiles).toBeLessThanOrEqual(maxTiles(T, T * K, hi - lo, TR));
    }
  });

  it('tiles: one pair each for decode, two once an expert expects half a pair', () => {
    expect(moeTileRows(1, 8, 128)).toBe(1);
    expect(moeTileRows(7, 8, 128)).toBe(1);
    expect(moeTileRows(8, 8, 128)).toBe(2);
    expect(moeTileRows(64, 8, 128)).toBe(2);
    expect(moeTileRows(33, 2, 8)).toBe(2);
  });

  it('a recorded step replays right under another routing (grids depend on T only)', async () => {
    const T = 5;
    const E = 8;
    const K = 2;
    const H = 32;
    const I = 16;
    const rand = rng(77);
    const gu = randomArray(rand, E * 2 * I * H, -0.5, 0.5);
    const dn = randomArray(rand, E * H * I, -0.5, 0.5);
    const gateUp = experts(ctx, gu, E, 2 * I, H, 'f32');
    const down = experts(ctx, dn, E, H, I, 'f32');
    const x = randomArray(rand, T * H);
    const xt = f32(ctx, x, [T, H]);
    const idt = createTensor(ctx, [T, K], 'u32');
    const wt = createTensor(ctx, [T, K], 'f32');
    const out = createTensor(ctx, [T, H], 'f32');
    const rec = new Recorder(ctx);
    const first = randomRouting(rand, T, E, K);
    writeBuffer(ctx, idt.buffer, 0, first.ids);
    writeBuffer(ctx, wt.buffer, 0, first.weights);
    const graph = rec.capture(() => fusedMoe(rec, xt, idt, wt, gateUp, down, out, T, K));
    rec.submit();
    const zero = new Float32Array(T * H);
    expectClose((await readTensor(ctx, out)) as Float32Array, moeRef(x, first.ids, first.weights, gu, dn, zero, T, K, H, I).out, 1e-5, 1e-5);
    // All tokens to one expert: a different tile count and layout, same dispatches.
    const second = { ids: Uint32Array.from({ length: T * K }, (_, i) => (i % K === 0 ? 6 : 1)), weights: randomArray(rand, T * K) };
    writeBuffer(ctx, idt.buffer, 0, second.ids);
    writeBuffer(ctx, wt.buffer, 0, second.weights);
    writeBuffer(ctx, out.buffer, 0, zero);
    rec.replay(graph);
    rec.submit();
    const got = (await readTensor(ctx, out)) as Float32Array;
    expectClose(got, moeRef(x, second.ids, second.weights, gu, dn, zero, T, K, H, I).out, 1e-5, 1e-5);
    expect(ctx.takeErrors()).toEqual([]);
  });

  it('adds into x itself (out = x)', async () => {
    const T = 5;
    const E = 4;
    const K = 2;
    const H = 32;
    const I = 16;
    const rand = rng(55);
    const gu = randomArray(rand, E * 2 * I * H, -0.5, 0.5);
    const dn = randomArray(rand, E * H * I, -0.5, 0.5);
    const x = randomArray(rand, T * H);
    const routing = randomRouting(rand, T, E, K);
    const xt = f32(ctx, x, [T, H]);
    const got = await run(ctx, (rec) => fusedMoe(rec, xt, u32(ctx, routing.ids), f32(ctx, routing.weights), experts(ctx, gu, E, 2 * I, H, 'f32'), experts(ctx, dn, E, H, I, 'f32'), xt, T, K), xt);
    const ref = moeRef(x, routing.ids, routing.weights, gu, dn, x, T, K, H, I);
    expectClose(got, ref.out, 1e-5, ref.atol);
  });

  it('routes and combines from router logits end to end (Mixtral-style renormalised top-2)', async () => {
    const T = 9;
    const E = 8;
    const K = 2;
    const H = 40;
    const I = 16;
    const rand = rng(123);
    const logits = randomArray(rand, T * E, -3, 3);
    const gu = roundF16(randomArray(rand, E * 2 * I * H, -0.5, 0.5));
    const dn = roundF16(randomArray(rand, E * H * I, -0.5, 0.5));
    const x = randomArray(rand, T * H);
    const residual = randomArray(rand, T * H);
    const gateUp = experts(ctx, gu, E, 2 * I, H, 'f16');
    const down = experts(ctx, dn, E, H, I, 'f16');
    const ids = createTensor(ctx, [T, K], 'u32');
    const weights = createTensor(ctx, [T, K], 'f32');
    const out = f32(ctx, residual, [T, H]);
    const xt = f32(ctx, x, [T, H]);
    const lt = f32(ctx, logits, [T, E]);
    const got = await run(ctx, (rec) => {
      moeRoute(rec, lt, ids, weights, T, E, K, true);
      fusedMoe(rec, xt, ids, weights, gateUp, down, out, T, K);
    }, out);
    const route = routeRef(logits, T, E, K, true);
    const ref = moeRef(x, route.ids, route.weights, gu, dn, residual, T, K, H, I);
    expectClose(got, ref.out, 1e-5, ref.atol);
  });

  it('rejects mismatched or misaligned expert weights', async () => {
    expect(() => createExpertWeights(ctx, 4, 8, 12, 'f32')).toThrow(/cols a multiple of 8/);
    expect(() => createExpertWeights(ctx, 4, 8, 16, 'f32', 'e', { maxPartBytes: 100 })).toThrow(/one expert of \d+ bytes exceeds/);
    const gateUp = createExpertWeights(ctx, 4, 32, 16, 'f32');
    const down = createExpertWeights(ctx, 4, 16, 8, 'f32');
    expect(() => writeExpertRows(ctx, gateUp, 4, 0, new Float32Array(16))).toThrow(/expert 4 outside/);
    expect(() => writeExpertRows(ctx, gateUp, 0, 31, new Float32Array(32))).toThrow(/not whole rows/);
    const t = createTensor(ctx, [64], 'f32');
    const ids = createTensor(ctx, [64], 'u32');
    const rec = new Recorder(ctx);
    expect(() => fusedMoe(rec, t, ids, t, gateUp, down, t, 1, 2)).toThrow(/do not match/);
    rec.discard();
  });
});

describe('sharedExpertGate', async () => {
  const ctx = await getTestGpu();
  for (const dtype of ['f32', 'f16'] as const) for (const [name, tuning] of TUNINGS) {
    it(`out += sigmoid(x . g) y, T=5 H=40, ${dtype} gate (${name})`, () => withTuning(ctx, tuning, async () => {
      const T = 5;
      const H = 40;
      const rand = rng(dtype === 'f16' ? 3 : 4);
      const x = randomArray(rand, T * H);
      let g = randomArray(rand, H);
      if (dtype === 'f16') g = roundF16(g);
      const y = randomArray(rand, T * H);
      const residual = randomArray(rand, T * H);
      const out = f32(ctx, residual, [T, H]);
      const got = await run(ctx, (rec) => sharedExpertGate(rec, f32(ctx, x), weight(ctx, g, 1, H, dtype), f32(ctx, y), out, T), out);
      const ref = new Float64Array(T * H);
      for (let t = 0; t < T; t++) {
        let d = 0;
        for (let j = 0; j < H; j++) d += x[t * H + j] * g[j];
        const s = 1 / (1 + Math.exp(-d));
        for (let j = 0; j < H; j++) ref[t * H + j] = residual[t * H + j] + s * y[t * H + j];
      }
      expectClose(got, ref, 1e-5, 1e-6);
    }));
  }
});
