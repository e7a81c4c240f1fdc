/**
 * Kernel lab: times linear (decode and prefill shapes, each kernel variant), paged attention, and the CPU cost of
 * recording a decode step, printing GB/s and GFLOP/s.
 *
 * Run (no extra dependencies: esbuild comes with tsup):
 *   npx esbuild bench/ops.ts --bundle --platform=node --format=esm --loader:.wgsl=text --external:webgpu \
 *     --outfile=build/bench-ops.mjs && node build/bench-ops.mjs [--quick] [--f32] [--tuning cpu|gpu]
 *     [--only linear|attention|overhead]
 * --quick: small shapes for CPU WebGPU (lavapipe); default: the shapes of 1-8B models (K=2048; N=2048, 8192, 128256).
 *
 * Timing: each case records `iters` repetitions into one recorder; "gpu" is the wall time from submit to
 * onSubmittedWorkDone divided by iters (so it includes no recording), "cpu" the recording time per repetition.
 */
import { nodeGpu } from '../bindings/node/webgpu.js';
import { GpuContext } from '../src/gpu/context.js';
import { Recorder } from '../src/gpu/recorder.js';
import { createTensor, createWeight, destroyWeight, uploadTensor, type Tensor } from '../src/gpu/tensor.js';
import { CPU_TUNING, GPU_TUNING, type KernelTuning } from '../src/gpu/tuning.js';
import * as ops from '../src/ops/index.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = flag('--quick');
const only = option('--only');

async function time(ctx: GpuContext, iters: number, record: (rec: Recorder) => void): Promise<{ gpu: number; cpu: number }> {
  const rec = new Recorder(ctx, 'bench');
  record(rec); // warm-up: pipelines, bind groups
  rec.submit();
  await ctx.finish();
  const c0 = performance.now();
  for (let i = 0; i < iters; i++) record(rec);
  const c1 = performance.now();
  rec.submit();
  await ctx.finish();
  const c2 = performance.now();
  return { gpu: (c2 - c1) / iters / 1e3, cpu: (c1 - c0) / iters / 1e3 };
}

const col = (v: string | number, width: number) => String(v).padStart(width);
const num = (v: number, digits = 1) => col(v.toFixed(digits), 9);

/** linear's kernels, forced through the tuning: GEMV, shared-memory tiles, register blocks. */
const LINEAR_VARIANTS: [string, (t: KernelTuning, T: number) => KernelTuning][] = [
  ['gemv', (t, T) => ({ ...t, gemvMaxTokens: T })],
  ...[32, 64, 128, 256].map((split): [string, (t: KernelTuning, T: number) => KernelTuning] => [
    `gemv/${split}`,
    (t, T) => ({ ...t, gemvMaxTokens: T, gemvWorkgroup: 256, gemvSplit: split }),
  ]),
  ['gemm', (t) => ({ ...t, gemvMaxTokens: 0, matmul: 'shared' })],
  ['tiled', (t) => ({ ...t, gemvMaxTokens: 0, matmul: 'registers' })],
];

async function benchLinear(ctx: GpuContext, dtype: 'f32' | 'f16') {
  const Ts = quick ? [1, 64] : [1, 8, 64, 512];
  const KNs: [number, number][] = quick ? [[512, 512], [2048, 2048]] : [[2048, 2048], [2048, 8192], [2048, 128256]];
  const base = ctx.tuning;
  console.log(`\nlinear, ${dtype} weights       T       K       N kernel        gpu us    cpu us      GB/s   GFLOP/s`);
  for (const [K, N] of KNs) {
    const w = createWeight(ctx, N, K, dtype, 'w');
    ops.fillRandom(ctx, w, 1, -0.01, 0.01);
    const x = createTensor(ctx, [Math.max(...Ts), K], 'f32');
    const out = createTensor(ctx, [Math.max(...Ts), N], 'f32');
    for (const T of Ts) {
      for (const [name, tune] of LINEAR_VARIANTS) {
        if (name.startsWith('gemv') ? T > 16 || (quick && name !== 'gemv') : T < 8) continue;
        ctx.tuning = tune(base, T);
        const flops = 2 * T * K * N;
        const iters = Math.max(2, Math.min(100, Math.round((quick ? 1e8 : 2e11) / flops)));
        const { gpu, cpu } = await time(ctx, iters, (rec) => ops.linear(rec, x, w, null, out, T));
        const bytes = N * K * (dtype === 'f16' ? 2 : 4) + 4 * T * (K + N);
        console.log(
          `${' '.repeat(24)}${col(T, 6)} ${col(K, 7)} ${col(N, 7)} ${name.padEnd(9)}` +
            `${num(gpu * 1e6)} ${num(cpu * 1e6)} ${num(bytes / gpu / 1e9)} ${num(flops / gpu / 1e9)}`,
        );
      }
    }
    ctx.tuning = base;
    destroyWeight(w);
    x.buffer.destroy();
    out.buffer.destroy();
  }
}

async function benchAttention(ctx: GpuContext, kv: 'f32' | 'f16') {
  const [nH, nKv, D] = quick ? [8, 2, 64] : [32, 8, 128];
  const blockSize = 16;
  const layout = { numHeads: nH, numKvHeads: nKv, headDim: D };
  // [sequences, context length, new tokens per sequence]
  const cases: [number, number, number][] = quick
    ? [[1, 512, 1], [4, 512, 1], [1, 256, 256]]
    : [[1, 4096, 1], [16, 1024, 1], [64, 2048, 1], [1, 512, 512], [4, 2048, 512]];
  console.log(`\nattention, ${kv} cache, nH=${nH} nKv=${nKv} D=${D}   seqs context  new split   gpu us    cpu us   KV GB/s`);
  const base = ctx.tuning;
  for (const [S, L, fresh] of cases) {
    const blocksPerSeq = Math.ceil(L / blockSize);
    const numBlocks = S * blocksPerSeq;
    const cacheShape = [numBlocks, blockSize, nKv, D];
    const kCache = createTensor(ctx, cacheShape, kv);
    const vCache = createTensor(ctx, cacheShape, kv);
    const T = S * fresh;
    const seq: number[] = [];
    const pos: number[] = [];
    for (let s = 0; s < S; s++) for (let p = L - fresh; p < L; p++) seq.push(s), pos.push(p);
    const u32 = (a: ArrayLike<number>, shape: number[]): Tensor => uploadTensor(ctx, Uint32Array.from(a), shape, 'u32');
    const tables = Array.from({ length: numBlocks }, (_, i) => i);
    const meta = { seqIdx: u32(seq, [T]), positions: u32(pos, [T]), blockTables: u32(tables, [S, blocksPerSeq]) };
    const qkv = createTensor(ctx, [T, (nH + 2 * nKv) * D], 'f32');
    const out = createTensor(ctx, [T, nH * D], 'f32');
    const opts = { scale: 1 / Math.sqrt(D), slidingWindow: null, blockSize, maxBlocksPerSeq: blocksPerSeq };
    const iters = quick ? 3 : 20;
    // Unique cache bytes the step reads (each sequence's prefix once).
    const kvBytes = S * 2 * L * nKv * D * (kv === 'f16' ? 2 : 4);
    for (const split of base.attentionSplitBelow > 0 ? [true, false] : [false]) {
      ctx.tuning = split ? base : { ...base, attentionSplitBelow: 0 };
      const { gpu, cpu } = await time(ctx, iters, (rec) => ops.pagedAttention(rec, qkv, kCache, vCache, meta, out, T, layout, opts));
      console.log(
        `${' '.repeat(44)}${col(S, 5)} ${col(L, 7)} ${col(fresh, 4)} ${col(split ? 'auto' : 'off', 5)}` +
          `${num(gpu * 1e6)} ${num(cpu * 1e6)} ${num(kvBytes / gpu / 1e9)}`,
      );
    }
    ctx.tuning = base;
    for (const t of [kCache, vCache, qkv, out, meta.seqIdx, meta.positions, meta.blockTables]) t.buffer.destroy();
  }
}

/** CPU cost of recording one decode step of a Llama-like model (tiny tensors, so the GPU time is negligible). */
async function benchOverhead(ctx: GpuContext) {
  const [H, nH, nKv, D, I, L] = [256, 4, 2, 64, 512, 32];
  const layout = { numHeads: nH, numKvHeads: nKv, headDim: D };
  const qkvN = (nH + 2 * nKv) * D;
  const layers = Array.from({ length: L }, () => ({
    qkv: createWeight(ctx, qkvN, H, 'f16'),
    o: createWeight(ctx, H, nH * D, 'f16'),
    up: createWeight(ctx, 2 * I, H, 'f16'),
    down: createWeight(ctx, H, I, 'f16'),
    n1: createTensor(ctx, [H], 'f32'),
    n2: createTensor(ctx, [H], 'f32'),
    k: createTensor(ctx, [16, 16, nKv, D], 'f16'),
    v: createTensor(ctx, [16, 16, nKv, D], 'f16'),
  }));
  const t = (shape: number[]) => createTensor(ctx, shape, 'f32');
  const [x, h, qkv, attn, up, act] = [t([8, H]), t([8, H]), t([8, qkvN]), t([8, nH * D]), t([8, 2 * I]), t([8, I])];
  const u32 = (a: number[], shape: number[]) => uploadTensor(ctx, Uint32Array.from(a), shape, 'u32');
  const meta = { seqIdx: u32([0], [1]), positions: u32([5], [1]), blockTables: u32(Array.from({ length: 16 }, (_, i) => i), [1, 16]) };
  const slots = uploadTensor(ctx, Int32Array.from([5]), [1], 'i32');
  const invFreq = t([D / 2]);
  const attnOpts = { scale: 0.125, slidingWindow: null, blockSize: 16, maxBlocksPerSeq: 16 };
  // A decode step with the fused ops (residual add + norm, rope + cache write): 9 dispatches per layer.
  const step = (rec: Recorder) => {
    ops.rmsNorm(rec, x, layers[0].n1, h, 1, H, 1e-6);
    for (const l of layers) {
      ops.linear(rec, h, l.qkv, null, qkv, 1);
      ops.ropeCacheKV(rec, qkv, meta.positions, invFreq, slots, l.k, l.v, 1, layout, D);
      ops.pagedAttention(rec, qkv, l.k, l.v, meta, attn, 1, layout, attnOpts);
      ops.linear(rec, attn, l.o, null, h, 1);
      ops.addRmsNorm(rec, x, h, l.n2, 1, H, 1e-6);
      ops.linear(rec, h, l.up, null, up, 1);
      ops.gatedAct(rec, up, act, 1, I, 'silu');
      ops.linear(rec, act, l.down, null, h, 1);
      ops.addRmsNorm(rec, x, h, l.n1, 1, H, 1e-6);
    }
  };
  const rec = new Recorder(ctx, 'overhead');
  step(rec);
  rec.submit();
  await ctx.finish();
  const d0 = rec.dispatches;
  const steps = 20;
  const c0 = performance.now();
  for (let i = 0; i < steps; i++) {
    step(rec);
    rec.submit();
  }
  const c1 = performance.now();
  await ctx.finish();
  const n = (rec.dispatches - d0) / steps;
  const perStep = (c1 - c0) / steps;
  console.log(`\nrecording a ${L}-layer decode step: ${n} dispatches, ${perStep.toFixed(2)} ms CPU (${((perStep / n) * 1e3).toFixed(2)} us per dispatch)`);
}

const tuningName = option('--tuning');
const ctx = await GpuContext.create(await nodeGpu(), tuningName ? { tuning: tuningName === 'cpu' ? CPU_TUNING : GPU_TUNING } : {});
const info = ctx.adapterInfo;
console.log(`device: ${info.vendor} ${info.architecture} ${info.description}; shader-f16=${ctx.f16} subgroups=${ctx.subgroups}`);
console.log(`tuning: ${JSON.stringify(ctx.tuning)}`);
const dtype = flag('--f32') ? 'f32' : 'f16';
if (!only || only === 'linear') await benchLinear(ctx, dtype);
if (!only || only === 'attention') await benchAttention(ctx, dtype);
if (!only || only === 'overhead') await benchOverhead(ctx);
const errors = ctx.takeErrors();
if (errors.length) console.log('GPU errors:', errors);
ctx.destroy();
