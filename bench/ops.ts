/**
 * Kernel lab: times linear (decode, batched and prefill shapes, each kernel and tuning variant, with a check of
 * every variant's output against the f32 shared-memory kernel), paged attention, and the CPU cost of recording a
 * decode step, printing GB/s and GFLOP/s. GPU_TUNING's values come from here.
 *
 * Run (built by `npm run build` into build/bench, like the other benches):
 *   node build/bench/ops.js [--quick] [--f32] [--tuning cpu|gpu] [--only linear|attention|overhead] [--unsafe]
 *     [--tokens 1,8,64] [--shapes qkv,o,gate/up,down,lm-head] [--mma 44114,22221] [--split 0,264,528] [--repeat 3]
 *     [--pad 32] [--cases 64x176x1,1x4096x1] [--heads 32x8x64]
 * --tokens, --shapes: which linear cases; --mma: subgroup-matrix tiles to time (WM WN SGM SGN SK [KM DIRECT XH], see
 * src/gpu/tuning.ts MmaTile); --cases: attention's (sequences x context x new tokens of each); --heads: its q heads x
 * kv heads x head dim; --split: time the tuned tiles (or each --mma tile) with these tuning.mmaSplitWorkgroups.
 * --quick: small shapes for CPU WebGPU (lavapipe); default: Llama-3.2-1B's shapes (H 2048, I 8192, V 128256).
 * --pad: elements of padding after each weight row (default: tuning.weightRowPadding bytes). --unsafe: Dawn with allow_unsafe_apis, for the subgroup-matrix (tensor core) variants.
 *
 * Timing: each case records `iters` repetitions into one recorder; "gpu" is the wall time from submit to
 * onSubmittedWorkDone divided by iters (so it includes no recording), "cpu" the recording time per repetition.
 */
import { create } from 'webgpu';
import { dawnFlags, nodeGpu } from '../bindings/node/webgpu.js';
import { GpuContext } from '../src/gpu/context.js';
import { paramsStruct } from '../src/gpu/pipelines.js';
import { Recorder } from '../src/gpu/recorder.js';
import { createTensor, createWeight, destroyWeight, readTensor, uploadTensor, type Tensor } from '../src/gpu/tensor.js';
import { CPU_TUNING, GPU_TUNING, type KernelTuning, type MmaTile } from '../src/gpu/tuning.js';
import * as ops from '../src/ops/index.js';
import { mmaSharedBytes } from '../src/ops/linear-mma.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = flag('--quick');
const only = option('--only');

async function time(ctx: GpuContext, iters: number, record: (rec: Recorder) => void): Promise<{ gpu: number; cpu: number }> {
  // One submit for all repetitions: with the tuning's submitEvery, most of the work would run while recording and
  // the submit-to-done time would time only the tail.
  const tuning = ctx.tuning;
  ctx.tuning = { ...tuning, submitEvery: 0 };
  try {
    return await timeOnce(ctx, iters, record);
  } finally {
    ctx.tuning = tuning;
  }
}

async function timeOnce(ctx: GpuContext, iters: number, record: (rec: Recorder) => void): Promise<{ gpu: number; cpu: number }> {
  const rec = new Recorder(ctx, 'bench');
  // Warm-up: pipelines, bind groups, and GPU clocks (they drop while the CPU checks the previous case, and the
  // first case timed after that pause measured up to 3x slow).
  for (let i = 0; i < Math.min(iters, 50); i++) record(rec);
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

type Variant = [string, (t: KernelTuning) => KernelTuning];
const gemv = (wg: number, lanes: number, rows: number, tokens = 4): Variant => [
  `gemv ${wg}/${lanes}/${rows}${tokens !== 4 ? ` tt${tokens}` : ''}`,
  (t) => ({ ...t, gemvMaxTokens: 8, gemvWorkgroup: wg, gemvLanes: lanes, gemvLongK: 1 << 30, gemvRows: rows, gemvTokens: tokens }),
];
const mma = (tile: MmaTile): Variant => [
  `mma ${tile.join('')}`,
  (t) => ({ ...t, gemvMaxTokens: 0, mmaMinTokens: 1, mmaTiles: [{ maxTokens: Infinity, tile }] }),
];
/** The tuning as it stands (GEMV for T <= gemvMaxTokens, else subgroup matrices or tiles). */
const current: Variant = ['current', (t) => t];
const gemm = (wx: number, wy: number, bk: number): Variant => [
  `gemm ${wx}x${wy}k${bk}`,
  (t) => ({ ...t, gemvMaxTokens: 0, mmaMinTokens: 0, matmul: 'shared', gemmWorkgroup: [wx, wy], gemmSmallTokens: 0, gemmK: bk }),
];
const tiled: Variant = ['tiled', (t) => ({ ...t, gemvMaxTokens: 0, mmaMinTokens: 0, matmul: 'registers' })];

const GEMV_VARIANTS: Variant[] = quick
  ? [gemv(16, 8, 2, 4), gemv(8, 8, 1, 4)]
  : [current, gemv(64, 32, 2), gemv(256, 64, 2), gemv(128, 64, 2)];
/** Few tokens (split K for more warps) and many (bigger tiles). */
const MMA_FEW: Variant[] = [[4, 2, 1, 1, 4], [4, 2, 1, 2, 2], [2, 2, 2, 2, 1], [4, 4, 1, 1, 2], [1, 2, 1, 1, 8], [4, 2, 1, 1, 2], [2, 2, 2, 1, 2], [1, 4, 1, 2, 4], [4, 4, 1, 1, 4], [1, 2, 1, 2, 4]].map((t) => mma(t as MmaTile));
const MMA_MANY: Variant[] = [[4, 4, 2, 2, 1], [2, 4, 2, 2, 1], [4, 2, 2, 2, 1], [4, 4, 2, 1, 1], [2, 2, 4, 2, 1], [2, 4, 4, 2, 1], [4, 4, 1, 2, 1]].map((t) => mma(t as MmaTile));
const TILE_VARIANTS: Variant[] = quick ? [gemm(8, 8, 16), tiled] : [gemm(16, 16, 16), gemm(8, 8, 16), gemm(16, 8, 16), gemm(16, 16, 32)];

/** Relative error of `got` against `ref`: ||got - ref|| / ||ref||; NaN anywhere gives Infinity. */
function relError(got: Float32Array, ref: Float32Array): number {
  let d = 0;
  let r = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isNaN(got[i])) return Infinity;
    d += (got[i] - ref[i]) ** 2;
    r += ref[i] ** 2;
  }
  return Math.sqrt(d / Math.max(r, 1e-30));
}

async function benchLinear(ctx: GpuContext, dtype: 'f32' | 'f16') {
  // [T, K, weight rows, gated, label]
  const Ts = quick ? [1, 4, 64] : (option('--tokens') ?? '1,8,16,64,512,2048').split(',').map(Number);
  const shapes: [number, number, boolean, string][] = quick
    ? [[512, 512, false, 'square'], [512, 2048, true, 'gate/up']]
    : [[2048, 3072, false, 'qkv'], [2048, 2048, false, 'o'], [2048, 16384, true, 'gate/up'], [8192, 2048, false, 'down'], [2048, 128256, false, 'lm head']];
  const base = ctx.tuning;
  const pad = { rowPadding: option('--pad') === undefined ? undefined : Number(option('--pad')) };
  console.log(`\nlinear, ${dtype} weights  shape         T      K       N kernel            gpu us    cpu us      GB/s   GFLOP/s   rel.err`);
  const pick = option('--shapes')?.split(',');
  for (const [K, rows, gated, label] of shapes) {
    if (label === 'lm head' && dtype === 'f32') continue;
    if (pick && !pick.includes(label.replace(/ /g, '-'))) continue;
    const w = createWeight(ctx, rows, K, dtype, 'w', pad);
    ops.fillRandom(ctx, w, 1, -0.05, 0.05);
    // Timed calls cycle through copies of the weight (same values) totalling at least 256 MB, so that each call
    // streams its weight from memory as a model's layers do, instead of finding it in the L2 cache (50 MB on an
    // H200: a 12 MB weight timed alone measured 2-6x faster than in the model).
    const bytesPerCopy = rows * K * (dtype === 'f16' ? 2 : 4);
    const copies = [w];
    while (!quick && copies.length * bytesPerCopy < 256e6) {
      const c = createWeight(ctx, rows, K, dtype, 'w copy', pad);
      ops.fillRandom(ctx, c, 1, -0.05, 0.05);
      copies.push(c);
    }
    const maxT = Math.max(...Ts);
    const xs = new Float32Array(maxT * K);
    for (let i = 0; i < xs.length; i++) xs[i] = Math.sin(i * 0.7311) * 1.5;
    const x = uploadTensor(ctx, xs, [maxT, K], 'f32');
    const N = gated ? rows / 2 : rows;
    const out = createTensor(ctx, [maxT, N], 'f32');
    const refOut = createTensor(ctx, [maxT, N], 'f32');
    const opts = gated ? { gated: 'silu' as const } : {};
    for (const T of Ts) {
      if (label === 'lm head' && T > 64) continue;
      // Reference: the f32 shared-memory kernel.
      ctx.tuning = gemm(16, 16, 16)[1](base);
      const rec0 = new Recorder(ctx, 'ref');
      ops.linear(rec0, x, w, null, refOut, T, opts);
      rec0.submit();
      const ref = (await readTensor(ctx, refOut, T * N)) as Float32Array;
      const chosen = option('--mma')?.split(',').map((t) => mma([...t].map(Number) as MmaTile)); // 5 to 8 digits
      const mmas = !ctx.subgroupMatrix ? [] : chosen ?? (T <= 8 ? MMA_FEW.slice(0, 1) : T <= 64 ? MMA_FEW : MMA_MANY);
      const tiles = chosen ? [] : T > 512 ? TILE_VARIANTS.slice(0, 1) : TILE_VARIANTS;
      const splitList = option('--split')?.split(',').map(Number);
      // --split: the tuned tiles (or each --mma tile) with each of these tuning.mmaSplitWorkgroups.
      const splitVariants: Variant[] = (chosen ?? [current]).flatMap(([name, tune]) =>
        (splitList ?? []).map((n): Variant => [`${name === 'current' ? 'split' : name} /${n}`, (t) => ({ ...tune(t), mmaSplitWorkgroups: n })]),
      );
      const flops = 2 * T * K * rows;
      const bytes = rows * K * (dtype === 'f16' ? 2 : 4);
      const iters = Math.max(3, Math.min(200, Math.round((quick ? 2e7 : 4e9) / Math.max(bytes, flops / 50))));
      const variants = splitList ? splitVariants : T <= 8 ? [...GEMV_VARIANTS, ...mmas] : [current, ...mmas, ...tiles];
      // --repeat R: R rounds over the variants, each keeping its fastest time and its largest error (the lent GPU's
      // timings drift between runs and within one, so rounds interleave the variants).
      const best = new Map<string, { gpu: number; cpu: number; err: number }>();
      for (let round = 0; round < Number(option('--repeat') ?? 1); round++) {
        for (const [name, tune] of variants) {
          ctx.tuning = tune(base);
          if (name.startsWith('mma') && mmaSharedBytes(ctx.tuning.mmaTiles[0].tile) > ctx.limits.maxComputeWorkgroupStorageSize) continue;
          ctx.device.queue.writeBuffer(out.buffer, 0, new Float32Array(T * N).fill(Number.NaN)); // unwritten outputs show
          let call = 0;
          const { gpu, cpu } = await time(ctx, iters, (rec) => ops.linear(rec, x, copies[call++ % copies.length], null, out, T, opts));
          const err = relError((await readTensor(ctx, out, T * N)) as Float32Array, ref);
          const prev = best.get(name);
          const faster = !prev || gpu < prev.gpu;
          best.set(name, { gpu: faster ? gpu : prev.gpu, cpu: faster ? cpu : prev.cpu, err: Math.max(err, prev?.err ?? 0) });
        }
      }
      for (const [name, { gpu, cpu, err }] of best) {
        console.log(
          `${' '.repeat(24)}${label.padEnd(9)} ${col(T, 5)} ${col(K, 6)} ${col(rows, 7)} ${name.padEnd(18)}` +
            `${num(gpu * 1e6)} ${num(cpu * 1e6)} ${num(bytes / gpu / 1e9)} ${num(flops / gpu / 1e9)} ${col(err.toExponential(1), 9)}`,
        );
      }
    }
    ctx.tuning = base;
    for (const c of copies) destroyWeight(c);
    for (const t of [x, out, refOut]) t.buffer.destroy();
  }
}

async function benchAttention(ctx: GpuContext, kv: 'f32' | 'f16') {
  const [nH, nKv, D] = quick ? [8, 2, 64] : (option('--heads') ?? '32x8x64').split('x').map(Number);
  const blockSize = 16;
  const layout = { numHeads: nH, numKvHeads: nKv, headDim: D };
  // [sequences, context length, new tokens per sequence]
  const cases: [number, number, number][] = quick
    ? [[1, 512, 1], [4, 512, 1], [1, 256, 256]]
    : (option('--cases') ?? '1x176x1,8x176x1,64x176x1,1x4096x1,1x512x512').split(',').map((c) => c.split('x').map(Number) as [number, number, number]);
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
    const splits: [string, KernelTuning][] = [
      ['auto', base],
      ['off', { ...base, attentionSplitBelow: 0 }],
      ['32', { ...base, attentionSplitBelow: 1 << 20, attentionSplitKeys: 32 }],
      ['128', { ...base, attentionSplitBelow: 1 << 20, attentionSplitKeys: 128 }],
      ['wg64', { ...base, attentionWorkgroup: 64 }],
      ['wg256', { ...base, attentionWorkgroup: 256 }],
      ['h8', { ...base, attentionHeads: 8 }],
      ['h4', { ...base, attentionHeads: 4 }],
      ['h1', { ...base, attentionHeads: 1 }],
      ['port.', { ...base, attentionSubgroups: false, attentionWorkgroup: 64, attentionSplitKeys: 64 }],
    ];
    for (const [name, tuning] of splits) {
      ctx.tuning = tuning;
      const { gpu, cpu } = await time(ctx, iters, (rec) => ops.pagedAttention(rec, qkv, kCache, vCache, meta, out, T, layout, opts));
      console.log(
        `${' '.repeat(44)}${col(S, 5)} ${col(L, 7)} ${col(fresh, 4)} ${col(name, 6)}` +
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
  const [x, qkv, attn, act] = [t([8, H]), t([8, qkvN]), t([8, nH * D]), t([8, I])];
  const u32 = (a: number[], shape: number[]) => uploadTensor(ctx, Uint32Array.from(a), shape, 'u32');
  const meta = { seqIdx: u32([0], [1]), positions: u32([5], [1]), blockTables: u32(Array.from({ length: 16 }, (_, i) => i), [1, 16]) };
  const slots = uploadTensor(ctx, Int32Array.from([5]), [1], 'i32');
  const invFreq = t([D / 2]);
  const attnOpts = { scale: 0.125, slidingWindow: null, blockSize: 16, maxBlocksPerSeq: 16 };
  // A decode step as Transformer.forward records it for Llama: 6 dispatches per layer.
  const step = (rec: Recorder) => {
    for (const l of layers) {
      ops.linear(rec, x, l.qkv, null, qkv, 1, { rmsNorm: { weight: l.n1, eps: 1e-6 } });
      ops.ropeCacheKV(rec, qkv, meta.positions, invFreq, slots, l.k, l.v, 1, layout, D);
      ops.pagedAttention(rec, qkv, l.k, l.v, meta, attn, 1, layout, attnOpts);
      ops.linear(rec, attn, l.o, null, x, 1, { residual: true });
      ops.linear(rec, x, l.up, null, act, 1, { rmsNorm: { weight: l.n2, eps: 1e-6 }, gated: 'silu' });
      ops.linear(rec, act, l.down, null, x, 1, { residual: true });
    }
  };
  const rec = new Recorder(ctx, 'overhead');
  // Warm-up: the first steps run unoptimised JavaScript (2-3x the recording time of later ones).
  for (let i = 0; i < 30; i++) {
    step(rec);
    rec.submit();
  }
  await ctx.finish();
  const d0 = rec.dispatches;
  const steps = 30;
  let record = 0;
  const c0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const r0 = performance.now();
    step(rec);
    record += performance.now() - r0;
    rec.submit();
  }
  const c1 = performance.now();
  await ctx.finish();
  const n = (rec.dispatches - d0) / steps;
  const perStep = (c1 - c0) / steps;
  console.log(
    `\nrecording a ${L}-layer decode step: ${n} dispatches, ${(record / steps).toFixed(2)} ms recording + ` +
      `${(perStep - record / steps).toFixed(2)} ms submit (${((record / steps / n) * 1e3).toFixed(2)} us per dispatch)`,
  );
  // The same step replayed from a captured graph (the runner's step graphs): Dawn's calls and the params alone.
  const graph = rec.capture(() => step(rec));
  rec.submit();
  for (let i = 0; i < 30; i++) {
    rec.replay(graph);
    rec.submit();
  }
  let replay = 0;
  for (let i = 0; i < steps; i++) {
    const r0 = performance.now();
    rec.replay(graph);
    replay += performance.now() - r0;
    rec.submit();
  }
  await ctx.finish();
  console.log(`replayed from a step graph: ${(replay / steps).toFixed(2)} ms recording (${((replay / steps / n) * 1e3).toFixed(2)} us per dispatch)`);
  dispatchCosts(ctx);
}

/**
 * Where one dispatch's recording goes: Recorder.run as a whole, and its parts alone (the bind-group lookup, and
 * Dawn's setBindGroup and dispatchWorkgroups on a prebuilt group), per call, over a kernel with 6 bindings.
 */
function dispatchCosts(ctx: GpuContext) {
  const kernel = ctx.pipelines.kernel('bench.noop6', () => ({
    name: 'bench.noop6',
    code:
      '@group(0) @binding(0) var<uniform> p: Params;\n' +
      [1, 2, 3, 4, 5].map((i) => `@group(0) @binding(${i}) var<storage, read> b${i}: array<u32>;`).join('\n') +
      '\n@group(0) @binding(6) var<storage, read_write> o: array<u32>;\n' +
      '@compute @workgroup_size(1) fn main() { o[0] = p.n + b1[0] + b2[0] + b3[0] + b4[0] + b5[0]; }',
    bindings: ['read', 'read', 'read', 'read', 'read', 'write'],
    params: paramsStruct({ n: 'u32' }),
  }));
  const bufs = Array.from({ length: 6 }, () => createTensor(ctx, [64], 'f32'));
  const bindings = bufs.map((t) => ({ buffer: t.buffer, offset: 0, size: 256 }));
  const N = 4000;
  const time = (f: (i: number) => void) => {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) f(i);
    return ((performance.now() - t0) / N) * 1e3;
  };
  const rec = new Recorder(ctx, 'dispatch costs');
  const whole = time(() => rec.run(kernel, { n: 1 }, bindings, 1));
  rec.submit();
  const variant = kernel.variant(0);
  const lookup = time(() => ctx.pipelines.bindGroup(variant.layout, ctx.uniforms.buffer, kernel.paramsSize, bindings));
  const group = ctx.pipelines.bindGroup(variant.layout, ctx.uniforms.buffer, kernel.paramsSize, bindings);
  const enc = ctx.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(variant.pipeline);
  const offsets = [0];
  const setGroup = time((i) => {
    offsets[0] = (i % 64) * 256;
    pass.setBindGroup(0, group, offsets);
  });
  const dispatch = time(() => pass.dispatchWorkgroups(1));
  const pipeline = time(() => pass.setPipeline(variant.pipeline));
  pass.end();
  ctx.device.queue.submit([enc.finish()]);
  console.log(
    `one dispatch (6 bindings): Recorder.run ${whole.toFixed(2)} us; alone: bind-group lookup ${lookup.toFixed(2)}, ` +
      `setPipeline ${pipeline.toFixed(2)}, setBindGroup ${setGroup.toFixed(2)}, dispatchWorkgroups ${dispatch.toFixed(2)} us`,
  );
  for (const t of bufs) t.buffer.destroy();
}

const tuningName = option('--tuning');
let gpu = await nodeGpu(); // also points Vulkan at a driver and installs the WebGPU globals
if (flag('--unsafe')) gpu = create(dawnFlags());
const ctx = await GpuContext.create(gpu, tuningName ? { tuning: tuningName === 'cpu' ? CPU_TUNING : GPU_TUNING } : {});
const info = ctx.adapterInfo as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number; subgroupMatrixConfigs?: unknown };
console.log(`device: ${info.vendor} ${info.architecture} ${info.description}; shader-f16=${ctx.f16} subgroups=${ctx.subgroups} (${info.subgroupMinSize}..${info.subgroupMaxSize}) subgroup matrices=${ctx.subgroupMatrix}`);
console.log(`features: ${[...ctx.adapter.features].sort().join(' ')}`);
console.log(`subgroup matrix configs: ${JSON.stringify(info.subgroupMatrixConfigs ?? [])}`);
console.log(`limits: storage binding ${ctx.limits.maxStorageBufferBindingSize}, workgroup storage ${ctx.limits.maxComputeWorkgroupStorageSize}`);
console.log(`tuning: ${JSON.stringify(ctx.tuning)}`);
const dtype = flag('--f32') ? 'f32' : 'f16';
if (!only || only === 'linear') await benchLinear(ctx, dtype);
if (!only || only === 'attention') await benchAttention(ctx, dtype);
if (!only || only === 'overhead') await benchOverhead(ctx);
const errors = ctx.takeErrors();
if (errors.length) console.log('GPU errors:', errors);
ctx.destroy();
process.exit(0);
