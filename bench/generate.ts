/**
 * Prefill and decode throughput of the model runner for any config.json shape with dummy weights.
 *
 *   node build/bench/generate.js [CONFIG_DIR] [--dtype float16|float32] [--batch 1,8,32] [--prefill 128,512]
 *                                [--context 128] [--steps 32] [--unsafe] [--no-mma] [--profile] [--tune key=value,...] (lists as a:b:c)
 *                                [--quantization q4_0|q4_k_m|...] [--prefill-seqs N] (each prefill of P tokens as N prompts of P / N, like an engine chunk)
 *                                [--mma-tiles JSON] (tuning.mmaTiles, e.g. '[{"maxTokens":null,"tile":[2,4,2,2,1]}]'; null = Infinity)
 *
 * Prints tokens/s, the bytes a decode step must move per token (weights once per step, KV reads per sequence),
 * and the achieved bandwidth as a ratio to the adapter's copy bandwidth measured in the same run: the faster of
 * copyBufferToBuffer and a vec4 compute copy (Dawn's copyBufferToBuffer can be far below what shaders reach).
 * --unsafe creates Dawn with allow_unsafe_apis (experimental features such as subgroup matrices, i.e. tensor cores);
 * --no-mma keeps linear off them. --profile prints GPU time per kernel of a decode step of each batch (timestamp
 * queries, one pass per dispatch). --tune overrides fields of the device's KernelTuning (bench/tune.ts).
 */
import { parseArgs } from 'node:util';
import { create } from 'webgpu';
import { FsModelSource } from '../bindings/node/fs-source.js';
import { dawnFlags, nodeGpu } from '../bindings/node/webgpu.js';
import type { ModelConfig } from '../src/config/model-config.js';
import { parseModelConfig } from '../src/models/registry.js';
import { denseMethod } from '../src/layers/linear.js';
import { blockFormat, checkQuantization, modelQuantMethods, slotFormat, type Quantization } from '../src/layers/quant/index.js';
import type { ScheduledSeq } from '../src/engine/executor.js';
import { GpuModelRunner } from '../src/worker/gpu-model-runner.js';
import { GpuContext } from '../src/gpu/context.js';
import { Recorder } from '../src/gpu/recorder.js';
import { GpuProfiler } from '../src/gpu/profiler.js';
import { loadWeights } from '../src/models/load-weights.js';
import { Generator } from '../src/sampling/generator.js';
import { SamplingParams } from '../src/sampling-params.js';
import { Sampler } from '../src/sampling/sampler.js';
import { applyTune } from './tune.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    dtype: { type: 'string', default: 'float16' },
    batch: { type: 'string', default: '1,8,32' },
    prefill: { type: 'string', default: '128,512' },
    'prefill-seqs': { type: 'string', default: '1' },
    context: { type: 'string', default: '128' },
    steps: { type: 'string', default: '32' },
    'kv-memory': { type: 'string', default: String(1 << 30) },
    unsafe: { type: 'boolean', default: false },
    'no-mma': { type: 'boolean', default: false },
    tune: { type: 'string', default: '' },
    'mma-tiles': { type: 'string', default: '' },
    profile: { type: 'boolean', default: false },
    quantization: { type: 'string', default: '' },
  },
});
const list = (s: string) => s.split(',').map(Number);
const dir = positionals[0] ?? 'models/tinystories-656K';
const source = await FsModelSource.open(dir);
const cfg = parseModelConfig(await source.readText('config.json'));
const quantization = checkQuantization(values.quantization || null);
let gpu = await nodeGpu(); // also points Vulkan at a driver and installs the WebGPU globals
// Held for the whole run: Dawn's instance must outlive its devices.
if (values.unsafe || values.profile) {
  // --profile: full-resolution timestamps (Dawn rounds them to 100 us otherwise).
  gpu = create(values.profile ? [...dawnFlags(), 'disable-dawn-features=timestamp_quantization'] : dawnFlags());
}
const ctx = await GpuContext.create(gpu, {
  timestamps: values.profile,
  f16: values.dtype === 'float16' ? undefined : false,
  subgroupMatrix: values['no-mma'] ? false : undefined,
});
const dtype = ctx.f16 && values.dtype === 'float16' ? 'f16' : 'f32';
applyTune(ctx.tuning, values.tune, values['mma-tiles']);
if (values.tune || values['mma-tiles']) console.log(`# tuning: ${JSON.stringify(ctx.tuning)}`);
const info = ctx.adapter.info;
console.log(`# ${dir}: ${cfg.architecture}, hidden ${cfg.hiddenSize}, ${cfg.numLayers} layers, ${cfg.numHeads}/${cfg.numKvHeads} heads x ${cfg.headDim}, ffn ${cfg.intermediateSize}, vocab ${cfg.vocabSize}`);
console.log(`# adapter: ${info.vendor} ${info.architecture} ${info.device} ${info.description}; weights ${dtype}, shader-f16 ${ctx.f16}, subgroups ${ctx.subgroups}, subgroup matrices ${ctx.subgroupMatrix}`);

const copyGBs = await copyBandwidth(ctx);
const shaderGBs = await shaderCopyBandwidth(ctx);
const bestGBs = Math.max(copyGBs, shaderGBs);
console.log(`# copy bandwidth (read+write): copyBufferToBuffer ${copyGBs.toFixed(1)} GB/s, vec4 compute copy ${shaderGBs.toFixed(1)} GB/s; ratios below are to ${bestGBs.toFixed(1)}`);

let t0 = performance.now();
const weights = await loadWeights(ctx, { name: source.name, openWeights: () => Promise.reject(new Error('dummy weights')) }, cfg, {
  method: quantization ? modelQuantMethods(quantization, denseMethod(dtype)) : denseMethod(dtype),
  dummy: true,
});
await ctx.device.queue.onSubmittedWorkDone();
console.log(`# dummy weights ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const batches = list(values.batch);
const prefills = list(values.prefill);
const context = Number(values.context);
const steps = Number(values.steps);
const blockSize = 16;
const prefillSeqs = Number(values['prefill-seqs']);
const maxBatch = Math.max(...batches, prefillSeqs);
const maxLen = Math.max(context + steps + 1, ...prefills);
const blocksPerSeq = Math.ceil(maxLen / blockSize);
const kvBytesPerBlock = 2 * cfg.numLayers * blockSize * cfg.numKvHeads * cfg.headDim * (dtype === 'f16' ? 2 : 4);
const numBlocks = Math.max(maxBatch * blocksPerSeq, Math.floor(Number(values['kv-memory']) / kvBytesPerBlock));
const runner = new GpuModelRunner(ctx, cfg, weights, {
  maxNumBatchedTokens: Math.max(maxBatch, context, ...prefills),
  maxNumSeqs: maxBatch,
  maxModelLen: maxLen,
  blockSize,
  numBlocks: Math.min(numBlocks, maxBatch * blocksPerSeq),
  kvDtype: dtype,
}, await Sampler.create(cfg.vocabSize));
const greedy = { params: new SamplingParams({ temperature: 0 }), generator: new Generator(0), promptTokenIds: [], outputTokenIds: [] };
const gen = new Generator(1);
const randomIds = (n: number) => Array.from({ length: n }, () => gen.nextU32() % cfg.vocabSize);
const table = (i: number) => Array.from({ length: blocksPerSeq }, (_, b) => i * blocksPerSeq + b);

// Warm-up: an idle GPU runs its first ~100 ms of work at a lower clock (H200: a 128-token prefill 28 ms, then
// 6.8 ms), which would land in whichever case is timed first.
{
  const warm = [{ requestId: 'w', tokenIds: randomIds(Math.min(512, maxLen, runner.limits.maxNumBatchedTokens)), startPos: 0, blockTable: table(0), sample: greedy }];
  const until = performance.now() + 1500;
  while (performance.now() < until) await runner.execute(warm);
}
const breakdown: string[] = [];
console.log('\n| phase | batch | tokens/step | ms/step | tokens/s | MB moved/token | achieved GB/s | ratio to copy |');
console.log('|---|---|---|---|---|---|---|---|');
for (const P of prefills) {
  const n = Math.floor(P / prefillSeqs);
  const seqs = Array.from({ length: prefillSeqs }, (_, i): ScheduledSeq => ({ requestId: `p${i}`, tokenIds: randomIds(n), startPos: 0, blockTable: table(i), sample: greedy }));
  await runner.execute(seqs);
  const reps = 3;
  t0 = performance.now();
  for (let r = 0; r < reps; r++) await runner.execute(seqs);
  const ms = (performance.now() - t0) / reps;
  const bytes = weightBytes(cfg, dtype, quantization);
  report('prefill', prefillSeqs, n * prefillSeqs, ms, bytes / (n * prefillSeqs));
  checkErrors(`prefill ${P}`);
  if (values.profile) breakdown.push(await profileStep(n * prefillSeqs, prefillSeqs, n));
}
for (const B of batches) {
  // Fill each sequence's first `context` tokens (untimed), then time decode steps.
  const ctxSeqs = Array.from({ length: B }, (_, i): ScheduledSeq => ({ requestId: `s${i}`, tokenIds: randomIds(context), startPos: 0, blockTable: table(i), sample: greedy }));
  for (let i = 0; i < B; i += Math.max(1, Math.floor(runner.limits.maxNumBatchedTokens / context))) {
    await runner.execute(ctxSeqs.slice(i, i + Math.max(1, Math.floor(runner.limits.maxNumBatchedTokens / context))));
  }
  const step = (k: number) => Array.from({ length: B }, (_, i): ScheduledSeq => ({ requestId: `s${i}`, tokenIds: [k % cfg.vocabSize], startPos: context + k, blockTable: table(i), sample: greedy }));
  await runner.execute(step(0));
  t0 = performance.now();
  for (let k = 1; k <= steps; k++) await runner.execute(step(k));
  const ms = (performance.now() - t0) / steps;
  const kvRead = (context + steps / 2) * 2 * cfg.numLayers * cfg.numKvHeads * cfg.headDim * (dtype === 'f16' ? 2 : 4);
  report('decode', B, B, ms, weightBytes(cfg, dtype, quantization) / B + kvRead);
  checkErrors(`decode ${B}`);
  breakdown.push(await decodeBreakdown(B, ms));
  if (values.profile) breakdown.push(await profileStep(B, B, context + steps + 1));
}

/**
 * Where a decode step's time goes (batch B), from the runner's own forward (its last step's inputs, still on the GPU):
 * recording alone (CPU: the ops anew, then a replay of the step's captured graph as the runner does), the submit
 * alone (Dawn turns the commands into Vulkan's there), recording and submitting back to back without waiting (the
 * larger of CPU and GPU), and one step at a time with a wait (CPU + GPU + the wait's latency); the rest of a runner
 * step is its input upload, readback and sampling.
 */
async function decodeBreakdown(B: number, stepMs: number): Promise<string> {
  const { inputs, r } = lastStepInputs(B, context + steps + 1);
  const n = 20;
  const record = (rec: Recorder) => {
    runner.model.forward(rec, inputs, r.acts, runner.cache);
    runner.model.logits(rec, null, B, r.acts); // every token sampled, in order: as the runner's decode steps
  };
  const capturing = new Recorder(ctx, 'profile');
  const graph = capturing.capture(() => record(capturing));
  const dispatches = capturing.dispatches;
  capturing.submit();
  const times = { record: 0, replay: 0, submit: 0 };
  const once = (replay: boolean) => {
    const rec = new Recorder(ctx, 'profile');
    let t = performance.now();
    if (replay) rec.replay(graph);
    else record(rec);
    times[replay ? 'replay' : 'record'] += performance.now() - t;
    t = performance.now();
    rec.submit();
    times.submit += performance.now() - t;
  };
  for (const replay of [false, true]) once(replay);
  await ctx.finish();
  times.record = times.replay = times.submit = 0;
  for (let i = 0; i < n; i++) once(false);
  await ctx.finish();
  for (let i = 0; i < n; i++) once(true);
  await ctx.finish();
  const recordMs = times.record / n;
  const replayMs = times.replay / n;
  const submitMs = times.submit / (2 * n);
  let t = performance.now();
  for (let i = 0; i < n; i++) once(true);
  await ctx.finish();
  const pipelined = (performance.now() - t) / n;
  t = performance.now();
  for (let i = 0; i < n; i++) {
    once(true);
    await ctx.finish();
  }
  const serial = (performance.now() - t) / n;
  checkErrors('breakdown');
  const each = (ms: number) => `${ms.toFixed(2)} ms (${((ms / dispatches) * 1e3).toFixed(1)} us each)`;
  return (
    `# decode batch ${B}, ${dispatches} dispatches: recording ${each(recordMs)}, replayed ${each(replayMs)}, submit ${each(submitMs)}; ` +
    `replayed back to back ${pipelined.toFixed(2)} ms/step (GPU-bound when above replay + submit); one at a time with a wait ${serial.toFixed(2)} ms; ` +
    `runner step ${stepMs.toFixed(2)} ms (so ${(stepMs - serial).toFixed(2)} ms of input upload, readback and sampling)`
  );
}

/**
 * GPU time per kernel of the runner's last step (T tokens, `sampled` logits rows, sequences of up to `seqLen`
 * tokens), each dispatch in a timed pass of its own (--profile; needs timestamp-query).
 */
async function profileStep(T: number, sampled: number, seqLen: number): Promise<string> {
  const { inputs, rows, r } = lastStepInputs(T, seqLen);
  const profiler = new GpuProfiler(ctx);
  const rec = new Recorder(ctx, 'profile');
  rec.profiler = profiler;
  runner.model.forward(rec, inputs, r.acts, runner.cache);
  runner.model.logits(rec, sampled === T ? null : rows, sampled, r.acts);
  rec.submit();
  const byKernel = [...(await profiler.read()).entries()].sort((a, b) => b[1].ms - a[1].ms);
  profiler.destroy();
  const total = byKernel.reduce((sum, [, v]) => sum + v.ms, 0);
  const lines = byKernel.map(([name, v]) => `#   ${v.ms.toFixed(3).padStart(8)} ms ${((100 * v.ms) / total).toFixed(1).padStart(5)}%  x${String(v.count).padEnd(4)} ${name}`);
  return [`# profile, ${T} tokens (${sampled} sampled): ${total.toFixed(2)} ms of kernels`, ...lines].join('\n');
}

/**
 * The runner's inputs of its last step, still on the GPU, as a forward of T tokens; `seqLen`, the step's longest
 * sequence in tokens, gives the block-table stride the runner wrote them with.
 */
function lastStepInputs(T: number, seqLen: number) {
  const r = runner as unknown as {
    acts: Parameters<typeof runner.model.forward>[2];
    inputs: GPUBuffer;
    layout: Record<string, number>;
    forwardInputs(T: number, maxBlocksPerSeq: number): Parameters<typeof runner.model.forward>[1];
  };
  // The runner's own views of its input buffer, which still holds the last step's inputs (its tiles included).
  const inputs = r.forwardInputs(T, Math.ceil(seqLen / blockSize));
  const rows = { buffer: r.inputs, offset: r.layout.sampleRows, shape: [T], dtype: 'u32' as const };
  return { inputs, rows, r };
}

/** Uncaptured device errors make a step do nothing (and look fast): surface them. */
function checkErrors(what: string): void {
  const errors = ctx.takeErrors();
  if (errors.length) console.log(`# GPU errors during ${what}: ${errors.slice(0, 3).join(' | ')}`);
}

function report(phase: string, batch: number, tokens: number, ms: number, bytesPerToken: number): void {
  const tps = (tokens / ms) * 1000;
  const gbs = (bytesPerToken * tps) / 1e9;
  console.log(`| ${phase} | ${batch} | ${tokens} | ${ms.toFixed(2)} | ${tps.toFixed(1)} | ${(bytesPerToken / 1e6).toFixed(2)} | ${gbs.toFixed(1)} | ${(gbs / bestGBs).toFixed(3)} |`);
}

/** Bytes of weight matrices one forward reads (the LM head once even when tied). */
/**
 * Weight bytes one token's forward reads: every matrix, except that a mixture-of-experts layer counts its router, its
 * shared expert and top-K experts (the active parameters), not all E.
 */
function weightBytes(c: ModelConfig, dt: 'f16' | 'f32', q: Quantization | null): number {
  const dense = dt === 'f16' ? 2 : 4;
  // Bytes per element of a projection matrix in slot `slot` (embeddings and the LM head stay dense).
  const per = (slot: string) => {
    if (!q) return dense;
    const f = blockFormat(slotFormat(q, slot));
    return f.blockBytes / f.blockElems;
  };
  const H = c.hiddenSize;
  const attn = H * (c.numHeads + 2 * c.numKvHeads) * c.headDim * per('qkv') + c.numHeads * c.headDim * H * per('o');
  let bytes = c.vocabSize * H * dense;
  for (let l = 0; l < c.numLayers; l++) {
    const m = c.moe;
    const mlp = m?.sparseLayers[l]
      ? (m.numExperts * H + m.topK * 3 * H * m.intermediateSize + (m.sharedIntermediateSize ? 3 * H * m.sharedIntermediateSize + H : 0)) * dense
      : ((c.gatedMlp ? 2 : 1) * per('up') + per('down')) * H * c.intermediateSize;
    bytes += attn + mlp;
  }
  return bytes;
}

/** Device copy bandwidth: copyBufferToBuffer of a large buffer, bytes read plus written per second. */
async function copyBandwidth(c: GpuContext): Promise<number> {
  const size = Math.min(256 << 20, c.device.limits.maxBufferSize);
  const a = c.device.createBuffer({ size, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const b = c.device.createBuffer({ size, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const run = async (n: number) => {
    const enc = c.device.createCommandEncoder();
    for (let i = 0; i < n; i++) enc.copyBufferToBuffer(i % 2 ? b : a, 0, i % 2 ? a : b, 0, size);
    c.device.queue.submit([enc.finish()]);
    await c.device.queue.onSubmittedWorkDone();
  };
  return copyRate(run, 10, size, [a, b]);
}

/** Device copy bandwidth of a compute shader moving one vec4<u32> per thread, bytes read plus written per second. */
async function shaderCopyBandwidth(c: GpuContext): Promise<number> {
  const size = Math.min(256 << 20, c.device.limits.maxBufferSize, c.device.limits.maxStorageBufferBindingSize);
  const usage = GPUBufferUsage.STORAGE;
  const a = c.device.createBuffer({ size, usage });
  const b = c.device.createBuffer({ size, usage });
  const wg = 256;
  const module = c.device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${wg}u + lid;
  if (i < arrayLength(&src)) {
    dst[i] = src[i];
  }
}`,
  });
  const pipeline = c.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const groups = (dir: number) =>
    c.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: dir ? b : a } },
        { binding: 1, resource: { buffer: dir ? a : b } },
      ],
    });
  const bg = [groups(0), groups(1)];
  const count = size / 16 / wg;
  const gy = Math.ceil(count / c.device.limits.maxComputeWorkgroupsPerDimension);
  const run = async (n: number) => {
    const enc = c.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    for (let i = 0; i < n; i++) {
      pass.setBindGroup(0, bg[i % 2]);
      pass.dispatchWorkgroups(Math.ceil(count / gy), gy);
    }
    pass.end();
    c.device.queue.submit([enc.finish()]);
    await c.device.queue.onSubmittedWorkDone();
  };
  return copyRate(run, 40, size, [a, b]);
}

/** GB/s (read + write) of `run(n)` copies of `size` bytes, after 2 untimed; destroys `buffers` after. */
async function copyRate(run: (n: number) => Promise<void>, n: number, size: number, buffers: GPUBuffer[]): Promise<number> {
  await run(2);
  const t = performance.now();
  await run(n);
  const s = (performance.now() - t) / 1000;
  for (const b of buffers) b.destroy();
  return (2 * size * n) / s / 1e9;
}

for (const line of breakdown) console.log(line);
runner.dispose();
ctx.destroy();
process.exit(0);
