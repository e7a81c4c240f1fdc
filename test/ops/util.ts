/** Test utilities for the ops: seeded random data, uploads, readback, tolerant comparison. */
import { expect } from 'vitest';
import type { GpuContext } from '../../src/gpu/context.js';
import { f16ToF32, f32ToF16 } from '../../src/gpu/half.js';
import { Recorder } from '../../src/gpu/recorder.js';
import { CPU_TUNING, GPU_TUNING, type KernelTuning } from '../../src/gpu/tuning.js';
import { createWeight, readTensor, uploadTensor, writeWeightRows, type Tensor, type Weight } from '../../src/gpu/tensor.js';

/** mulberry32: a small seeded generator, so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [lo, hi). */
export function randomArray(rand: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rand();
  return out;
}

/** Values rounded through f16 (what an f16 weight or cache holds). */
export const roundF16 = (v: Float32Array): Float32Array => f16ToF32(f32ToF16(v));

export const f32 = (ctx: GpuContext, data: Float32Array, shape: number[] = [data.length]): Tensor =>
  uploadTensor(ctx, data, shape, 'f32');
export const u32 = (ctx: GpuContext, data: ArrayLike<number>, shape: number[] = [data.length]): Tensor =>
  uploadTensor(ctx, Uint32Array.from(data), shape, 'u32');
export const i32 = (ctx: GpuContext, data: ArrayLike<number>, shape: number[] = [data.length]): Tensor =>
  uploadTensor(ctx, Int32Array.from(data), shape, 'i32');

/** A weight holding `data` [rows, cols] (rounded to f16 when dtype is f16), split in parts of at most maxPartBytes. */
export function weight(ctx: GpuContext, data: Float32Array, rows: number, cols: number, dtype: 'f32' | 'f16', maxPartBytes?: number): Weight {
  const w = createWeight(ctx, rows, cols, dtype, 'test weight', { maxPartBytes });
  writeWeightRows(ctx, w, 0, dtype === 'f16' ? f32ToF16(data) : data);
  return w;
}

/** Records with `body`, submits, and reads `out` back as f32 (or u32/i32 for integer tensors). */
export async function run(ctx: GpuContext, body: (rec: Recorder) => void, out: Tensor) {
  const rec = new Recorder(ctx, 'test');
  body(rec);
  rec.submit();
  const result = await readTensor(ctx, out);
  expect(ctx.takeErrors()).toEqual([]);
  return result;
}

/** Asserts |actual - expected| <= atol + rtol |expected| everywhere, naming the worst element. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number | ArrayLike<number> = 0): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = typeof atol === 'number' ? atol : atol[i];
    const err = Math.abs(actual[i] - expected[i]);
    const excess = err - (a + rtol * Math.abs(expected[i]));
    if (!(excess <= worstExcess) || Number.isNaN(actual[i])) {
      worst = i;
      worstExcess = Number.isNaN(actual[i]) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    expect.fail(`element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (over tolerance by ${worstExcess})`);
  }
}

/** Both tuning presets: GPU-sized workgroups must be correct on lavapipe too. */
export const TUNINGS: [string, KernelTuning][] = [
  ['cpu tuning', CPU_TUNING],
  ['gpu tuning', GPU_TUNING],
];

/** More linear configurations: GEMV splits and workgroup shapes the benchmarks may pick. */
export const LINEAR_TUNINGS: [string, KernelTuning][] = [
  ...TUNINGS,
  ['gemv 4 rows x 8 lanes of 64, 8 tokens', { ...GPU_TUNING, gemvWorkgroup: 64, gemvLanes: 8, gemvRows: 4, gemvTokens: 8 }],
  ['gemv 1 row x 4 lanes of 8, 2 tokens, gemm 8x4 K8', { ...GPU_TUNING, gemvWorkgroup: 8, gemvLanes: 4, gemvRows: 1, gemvTokens: 2, gemmWorkgroup: [8, 4], gemmSmallTokens: 0, gemmK: 8 }],
];

/** Runs `body` with `tuning` in force, restoring the context's own afterwards. */
export async function withTuning<R>(ctx: GpuContext, tuning: KernelTuning, body: () => Promise<R>): Promise<R> {
  const saved = ctx.tuning;
  ctx.tuning = tuning;
  try {
    return await body();
  } finally {
    ctx.tuning = saved;
  }
}
