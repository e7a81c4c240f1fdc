/**
 * Memory of the CPU backend for one model, in a fresh process: whether it fits an edge isolate's limit (Cloudflare
 * Workers: 128 MB per isolate, JS heap and wasm memories together). Loads the model on the CPU backend (1 thread,
 * as in isolates), generates `--tokens` tokens greedily for one prompt, and prints one table row:
 *
 *   planned      the runner's planned buffers (runner.memoryPlan: weights + KV cache + activations), and the step it
 *                picked (maxNumBatchedTokens / logits rows)
 *   cpu.wasm     the kernels' linear memory (weights, KV cache, activations): it only grows, so its final size is its peak
 *   core.wasm    the tokenizer's and sampler's module memory (shared by every model of the process)
 *   JS heap      V8's heap used after the run (tokenizer tables, engine state)
 *   isolate      cpu.wasm + core.wasm + JS heap: what counts against the isolate's limit
 *   RSS delta    peak resident set size minus the process's before loading (Node's own ~40 MB left out; it also
 *                holds the loader's file chunks and garbage not yet collected, so it is noisy)
 * (MB here is 2^20 bytes.)
 *
 *   node build/bench/cpu-memory.js [--model models/tinystories-656K | file.gguf] [--kv-bytes 67108864] [--tokens 32]
 *   (no --kv-bytes: the engine's default KV cache budget on the CPU)
 */
import { parseArgs } from 'node:util';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import type { CpuModelRunner } from '../src/cpu/cpu-model-runner.js';
import { loadCore } from '../src/wasm/core.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/tinystories-656K' },
    'kv-bytes': { type: 'string' },
    tokens: { type: 'string', default: '32' },
    header: { type: 'boolean', default: false },
  },
});
const MB = 1 << 20;
if (values.header) {
  console.log(
    '| model | KV cache budget | step (tokens / logits rows) | planned buffers | cpu.wasm memory | core.wasm memory | JS heap used | isolate share (cpu.wasm + core.wasm + heap) | RSS delta (peak) |\n|---|---|---|---|---|---|---|---|---|',
  );
  process.exit(0);
}
global.gc?.();
const before = process.memoryUsage().rss;
const kvBytes = values['kv-bytes'] ? Number(values['kv-bytes']) : undefined;
const llm = await LLM.create({ model: values.model, device: 'cpu', cpuThreads: 1, kvCacheMemoryBytes: kvBytes, log: () => {} });
const [out] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: Number(values.tokens), ignoreEos: true }));
if (out.outputs[0].tokenIds.length !== Number(values.tokens)) throw new Error('generation stopped early');
const runner = llm.engine.runner as CpuModelRunner;
const wasm = runner.cpu.k.memory.buffer.byteLength;
const core = (await loadCore()).exports.memory.buffer.byteLength;
const p = runner.memoryPlan;
global.gc?.();
const heap = process.memoryUsage().heapUsed;
const peak = process.resourceUsage().maxRSS * 1024;
const mb = (b: number) => `${(b / MB).toFixed(1)} MB`;
const planned = `${mb(p.weights + p.kvCache + p.activations + p.threads)} (${mb(p.weights)} + ${mb(p.kvCache)} + ${mb(p.activations)})`;
const step = `${runner.limits.maxNumBatchedTokens} / ${runner.limits.logitRows}`;
console.log(
  `| ${values.model.split('/').pop()} | ${kvBytes === undefined ? 'default' : mb(kvBytes)} | ${step} | ${planned} | ${mb(wasm)} | ${mb(core)} | ${mb(heap)} | ${mb(wasm + core + heap)} | ${mb(peak - before)} |`,
);
await llm.dispose();
