/**
 * The CPU backend's throughput beside the lavapipe WebGPU path, in one run: prefill and decode tokens/s of the
 * executor (no tokenizer, no scheduler: steps built by hand, as bench/generate.ts) on the embedded model
 * (tinystories-656K) and a SmolLM2-135M-shaped model with dummy weights, in f32, q8_0 and q4_0 on the CPU, and f32
 * on WebGPU. Decode runs `--streams` sequences per step (each its own KV blocks) after a prefill of `--prompt`
 * tokens each; prefill is one step of `--prompt` tokens.
 *
 *   node build/bench/cpu.js [--prompt 128] [--steps 32] [--streams 1,8] [--models embedded,smollm2] [--no-gpu] [--only f32,q8_0,q4_0,webgpu]
 *                           [--threads 1,2] [--simd auto|relaxed|simd128]
 */
import { parseArgs } from 'node:util';
import { FsModelSource } from '../bindings/node/fs-source.js';
import { nodeCpuWorkers } from '../bindings/node/cpu-workers.js';
import { nodeGpu } from '../bindings/node/webgpu.js';
import { CpuModelRunner } from '../src/cpu/cpu-model-runner.js';
import type { ModelConfig } from '../src/config/model-config.js';
import type { Executor, ModelHandle, ScheduledSeq } from '../src/engine/executor.js';
import type { EngineOptions } from '../src/engine/llm-engine.js';
import { safetensorsReader } from '../src/loader/checkpoint.js';
import { parseModelConfig } from '../src/models/registry.js';
import { Generator } from '../src/sampling/generator.js';
import { SamplingParams } from '../src/sampling-params.js';
import { GpuModelRunner } from '../src/worker/gpu-model-runner.js';

const { values } = parseArgs({
  options: {
    prompt: { type: 'string', default: '128' },
    steps: { type: 'string', default: '32' },
    streams: { type: 'string', default: '1,8' },
    models: { type: 'string', default: 'embedded,smollm2' },
    'no-gpu': { type: 'boolean', default: false },
    /** CPU threads per run, as a list (each a row of the table). */
    threads: { type: 'string', default: `1,${nodeCpuWorkers.defaultThreads}` },
    /** Only these variants (labels without the device: f32, q8_0, q4_0). */
    only: { type: 'string', default: '' },
    /** The CPU kernels' build: relaxed SIMD, SIMD128, or auto (timed once per process: flips on a loaded machine). */
    simd: { type: 'string', default: 'auto' },
  },
});
if (!['auto', 'relaxed', 'simd128'].includes(values.simd)) throw new Error(`--simd: '${values.simd}' is none of auto, relaxed, simd128`);
const RELAXED = values.simd === 'auto' ? undefined : values.simd === 'relaxed';
const P = Number(values.prompt);
const STEPS = Number(values.steps);
const STREAMS = values.streams.split(',').map(Number);

/** SmolLM2-135M's config.json (HuggingFaceTB/SmolLM2-135M): its shapes, for dummy weights. */
const SMOLLM2_135M = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_attention_heads: 9,
  num_hidden_layers: 30, num_key_value_heads: 3, vocab_size: 49152, max_position_embeddings: 8192, rms_norm_eps: 1e-5,
  rope_theta: 100000, tie_word_embeddings: true, hidden_act: 'silu', torch_dtype: 'bfloat16', bos_token_id: 0, eos_token_id: 0,
};

async function handle(name: string): Promise<{ model: ModelHandle; dummy: boolean }> {
  if (name === 'smollm2') {
    const config = parseModelConfig(SMOLLM2_135M);
    return { model: { name: 'SmolLM2-135M (dummy)', config, openWeights: () => Promise.reject(new Error('dummy weights')) }, dummy: true };
  }
  const source = await FsModelSource.open('models/tinystories-656K');
  const config = parseModelConfig(await source.readText('config.json'));
  return { model: { name: 'tinystories-656K', config, openWeights: () => safetensorsReader(source) }, dummy: false };
}

const greedy = new SamplingParams({ temperature: 0 });
const sample = () => ({ params: greedy, generator: new Generator(0), promptTokenIds: [], outputTokenIds: [] });

/** Tokens/s of a prefill of P tokens and of STEPS decode steps of B streams. */
async function measure(runner: Executor, cfg: ModelConfig, B: number): Promise<{ prefill: number; decode: number }> {
  const bs = runner.limits.blockSize;
  const blocksPer = Math.ceil((P + STEPS + 1) / bs);
  const table = (i: number) => Array.from({ length: blocksPer }, (_, b) => i * blocksPer + b);
  const ids = (n: number, off: number) => Array.from({ length: n }, (_, j) => (j * 31 + off) % cfg.vocabSize);
  const prefill = (i: number): ScheduledSeq => ({ requestId: `r${i}`, tokenIds: ids(P, i), startPos: 0, blockTable: table(i), sample: sample() });
  await runner.execute([prefill(B)]); // warm-up (a sequence of its own)
  let t0 = performance.now();
  for (let i = 0; i < B; i++) await runner.execute([prefill(i)]);
  const prefillRate = (B * P) / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (let s = 0; s < STEPS; s++) {
    await runner.execute(Array.from({ length: B }, (_, i) => ({ requestId: `r${i}`, tokenIds: [(s * 7 + i) % cfg.vocabSize], startPos: P + s, blockTable: table(i), sample: sample() })));
  }
  return { prefill: prefillRate, decode: (B * STEPS) / ((performance.now() - t0) / 1000) };
}

const variants: { label: string; device: 'cpu' | 'webgpu'; opts: EngineOptions }[] = [
  { label: 'cpu f32', device: 'cpu', opts: { dtype: 'float32' } },
  { label: 'cpu q8_0', device: 'cpu', opts: { dtype: 'float32', quantization: 'q8_0' } },
  { label: 'cpu q4_0', device: 'cpu', opts: { dtype: 'float32', quantization: 'q4_0' } },
  ...(values['no-gpu'] ? [] : [{ label: 'webgpu (lavapipe) f32', device: 'webgpu' as const, opts: { dtype: 'float32' as const } }]),
];

const only = values.only ? new Set(values.only.split(',')) : null;
const threadCounts = [...new Set(values.threads.split(',').map(Number))];
const chosen = variants
  .filter((v) => !only || only.has(v.label.split(' ').pop()!) || (v.device === 'webgpu' && only.has('webgpu')))
  .flatMap((v) => (v.device === 'cpu' ? threadCounts.map((t) => ({ ...v, threads: t, label: `${v.label}, ${t} thread${t > 1 ? 's' : ''}` })) : [{ ...v, threads: 1 }]));
console.log(`# prefill: one step of ${P} tokens; decode: ${STEPS} steps of 1 token per stream after a ${P}-token prompt`);
console.log('| model | backend | prefill tok/s | ' + STREAMS.map((b) => `decode tok/s (${b} stream${b > 1 ? 's' : ''})`).join(' | ') + ' |');
console.log('|---|---|---|' + STREAMS.map(() => '---|').join(''));
for (const name of values.models.split(',')) {
  const { model, dummy } = await handle(name);
  for (const v of chosen) {
    const maxSeqs = Math.max(...STREAMS) + 1;
    const opts: EngineOptions = { ...v.opts, loadFormat: dummy ? 'dummy' : 'auto', maxNumSeqs: maxSeqs, maxNumBatchedTokens: Math.max(P, maxSeqs), kvCacheMemoryBytes: 256 << 20, maxModelLen: 1024 };
    const runner = v.device === 'cpu' ? await CpuModelRunner.load(model, opts, { threads: v.threads, host: nodeCpuWorkers, relaxed: RELAXED }) : await GpuModelRunner.load(model, await nodeGpu(), opts);
    const cells: string[] = [];
    let prefill = 0;
    for (const B of STREAMS) {
      const r = await measure(runner, model.config, B);
      if (B === STREAMS[0]) prefill = r.prefill;
      cells.push(r.decode.toFixed(1));
    }
    runner.dispose();
    console.log(`| ${model.name} | ${v.label} | ${prefill.toFixed(0)} | ${cells.join(' | ')} |`);
  }
}
