/**
 * Prefill and decode throughput of the model runner for any config.json shape with dummy weights.
 *
 *   node build/bench/generate.js [CONFIG_DIR] [--dtype float16|float32] [--batch 1,8,32] [--prefill 128,512]
 *                                [--context 128] [--steps 32]
 *
 * Prints tokens/s, the bytes a decode step must move per token (weights once per step, KV reads per sequence),
 * and the achieved bandwidth as a ratio to the adapter's copy bandwidth measured in the same run.
 */
import { parseArgs } from 'node:util';
import { FsModelSource } from '../bindings/node/fs-source.js';
import { nodeGpu } from '../bindings/node/webgpu.js';
import { parseModelConfig, type ModelConfig } from '../src/config/model-config.js';
import { ModelRunner, type ScheduledSeq } from '../src/engine/model-runner.js';
import { GpuContext } from '../src/gpu/context.js';
import { loadWeights } from '../src/models/load-weights.js';
import { Generator } from '../src/sampling/generator.js';
import { SamplingParams } from '../src/sampling-params.js';
import { Sampler } from '../src/sampling/sampler.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    dtype: { type: 'string', default: 'float16' },
    batch: { type: 'string', default: '1,8,32' },
    prefill: { type: 'string', default: '128,512' },
    context: { type: 'string', default: '128' },
    steps: { type: 'string', default: '32' },
    'kv-memory': { type: 'string', default: String(1 << 30) },
  },
});
const list = (s: string) => s.split(',').map(Number);
const dir = positionals[0] ?? 'models/tinystories-656K';
const source = await FsModelSource.open(dir);
const cfg = parseModelConfig(await source.readText('config.json'));
const ctx = await GpuContext.create(await nodeGpu(), { f16: values.dtype === 'float16' ? undefined : false });
const dtype = ctx.f16 && values.dtype === 'float16' ? 'f16' : 'f32';
const info = ctx.adapter.info;
console.log(`# ${dir}: ${cfg.architecture}, hidden ${cfg.hiddenSize}, ${cfg.numLayers} layers, ${cfg.numHeads}/${cfg.numKvHeads} heads x ${cfg.headDim}, ffn ${cfg.intermediateSize}, vocab ${cfg.vocabSize}`);
console.log(`# adapter: ${info.vendor} ${info.architecture} ${info.device} ${info.description}; weights ${dtype}, shader-f16 ${ctx.f16}, subgroups ${ctx.subgroups}`);

const copyGBs = await copyBandwidth(ctx);
console.log(`# copy bandwidth (copyBufferToBuffer, read+write): ${copyGBs.toFixed(1)} GB/s`);

let t0 = performance.now();
const weights = await loadWeights(ctx, source, cfg, { dtype, dummy: true });
await ctx.device.queue.onSubmittedWorkDone();
console.log(`# dummy weights ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const batches = list(values.batch);
const prefills = list(values.prefill);
const context = Number(values.context);
const steps = Number(values.steps);
const blockSize = 16;
const maxBatch = Math.max(...batches);
const maxLen = Math.max(context + steps + 1, ...prefills);
const blocksPerSeq = Math.ceil(maxLen / blockSize);
const kvBytesPerBlock = 2 * cfg.numLayers * blockSize * cfg.numKvHeads * cfg.headDim * (dtype === 'f16' ? 2 : 4);
const numBlocks = Math.max(maxBatch * blocksPerSeq, Math.floor(Number(values['kv-memory']) / kvBytesPerBlock));
const runner = new ModelRunner(ctx, cfg, weights, {
  maxNumBatchedTokens: Math.max(maxBatch, ...prefills),
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

console.log('\n| phase | batch | tokens/step | ms/step | tokens/s | MB moved/token | achieved GB/s | ratio to copy |');
console.log('|---|---|---|---|---|---|---|---|');
for (const P of prefills) {
  const seq: ScheduledSeq = { requestId: 'p', tokenIds: randomIds(P), startPos: 0, blockTable: table(0), sample: greedy };
  await runner.execute([seq]);
  const reps = 3;
  t0 = performance.now();
  for (let r = 0; r < reps; r++) await runner.execute([seq]);
  const ms = (performance.now() - t0) / reps;
  const bytes = weightBytes(cfg, dtype);
  report('prefill', 1, P, ms, bytes / P);
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
  report('decode', B, B, ms, weightBytes(cfg, dtype) / B + kvRead);
}

function report(phase: string, batch: number, tokens: number, ms: number, bytesPerToken: number): void {
  const tps = (tokens / ms) * 1000;
  const gbs = (bytesPerToken * tps) / 1e9;
  console.log(`| ${phase} | ${batch} | ${tokens} | ${ms.toFixed(2)} | ${tps.toFixed(1)} | ${(bytesPerToken / 1e6).toFixed(2)} | ${gbs.toFixed(1)} | ${(gbs / copyGBs).toFixed(3)} |`);
}

/** Bytes of weight matrices one forward reads (the LM head once even when tied). */
function weightBytes(c: ModelConfig, dt: 'f16' | 'f32'): number {
  const H = c.hiddenSize;
  const perLayer = H * (c.numHeads + 2 * c.numKvHeads) * c.headDim + c.numHeads * c.headDim * H + (c.gatedMlp ? 3 : 2) * H * c.intermediateSize;
  return (perLayer * c.numLayers + c.vocabSize * H) * (dt === 'f16' ? 2 : 4);
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
  await run(2);
  const n = 10;
  const t = performance.now();
  await run(n);
  const s = (performance.now() - t) / 1000;
  a.destroy();
  b.destroy();
  return (2 * size * n) / s / 1e9;
}

runner.dispose();
ctx.destroy();
process.exit(0);
