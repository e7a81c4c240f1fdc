/**
 * Memory of the CPU backend for one model, in a fresh process: whether it fits an edge isolate's limit (Cloudflare
 * Workers: 128 MB per isolate, JS heap and wasm memories together). Loads the model on the CPU backend (1 thread,
 * as in isolates), generates `--tokens` tokens greedily for one prompt, and prints one table row:
 *
 *   cpu.wasm     the kernels' linear memory (weights, KV cache, activations): it only grows, so its final size is its peak
 *   JS heap      V8's heap used after the run (tokenizer tables, engine state)
 *   RSS delta    peak resident set size minus the process's before loading (Node's own ~40 MB left out)
 *   peak RSS     the whole Node process's peak
 *
 *   node build/bench/cpu-memory.js [--model models/tinystories-656K | file.gguf] [--kv-bytes 67108864] [--tokens 32]
 *   (no --kv-bytes: the engine's default KV cache budget on the CPU)
 */
import { parseArgs } from 'node:util';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import type { CpuModelRunner } from '../src/cpu/cpu-model-runner.js';

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
  console.log('| model | KV cache budget | cpu.wasm memory | JS heap used | RSS delta (peak) | peak RSS (whole process) |\n|---|---|---|---|---|---|');
  process.exit(0);
}
global.gc?.();
const before = process.memoryUsage().rss;
const kvBytes = values['kv-bytes'] ? Number(values['kv-bytes']) : undefined;
const llm = await LLM.create({ model: values.model, device: 'cpu', cpuThreads: 1, kvCacheMemoryBytes: kvBytes, log: () => {} });
const [out] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: Number(values.tokens), ignoreEos: true }));
if (out.outputs[0].tokenIds.length !== Number(values.tokens)) throw new Error('generation stopped early');
const wasm = (llm.engine.runner as CpuModelRunner).cpu.k.memory.buffer.byteLength;
global.gc?.();
const heap = process.memoryUsage().heapUsed;
const peak = process.resourceUsage().maxRSS * 1024;
const mb = (b: number) => `${(b / MB).toFixed(1)} MB`;
console.log(`| ${values.model.split('/').pop()} | ${kvBytes === undefined ? 'default' : mb(kvBytes)} | ${mb(wasm)} | ${mb(heap)} | ${mb(peak - before)} | ${mb(peak)} |`);
await llm.dispose();
