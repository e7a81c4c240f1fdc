/**
 * cpu.wasm's memory against the CPU runner's plan (src/cpu/cpu-model-runner.ts, memoryPlan): a loaded runner's blocks
 * add up to exactly its planned buffers (weights, KV cache, activations, the threads' panels), its memory is that sum
 * past the heap base rounded up to one 64 KiB page (assembly/cpu/heap.ts grows by what is asked, not by doubling),
 * and generating allocates nothing more. The step's rule: halved until its activations fit the KV cache budget.
 */
import { describe, expect, it } from 'vitest';
import { SamplingParams, type LLMOptions } from '../../bindings/node/index.js';
import { cpuDecoderBytes } from '../../src/cpu/cpu-decoder.js';
import { cpuDecoderSizes, cpuRunnerLimits, cpuRunnerOf } from '../../src/cpu/cpu-model-runner.js';
import type { EngineOptions } from '../../src/engine/llm-engine.js';
import { paramCount } from '../../src/models/registry.js';
import { cpuBlockBytes } from '../../src/cpu/cpu-wasm.js';
import { loadLLM } from '../helpers/llm.js';
import { DEFAULT_MODEL, MODELS } from '../helpers/paths.js';

const PAGE = 1 << 16;
const Q8_GGUF = `${MODELS}/gguf/tinystories-656K-q8_0.gguf`;

describe.each<[string, string, LLMOptions]>([
  ['the embedded model, f32', DEFAULT_MODEL, { kvCacheMemoryBytes: 8 << 20, cpuThreads: 1 }],
  ['the embedded model, q4_0 on load, 1 MiB of KV cache', DEFAULT_MODEL, { quantization: 'q4_0', kvCacheMemoryBytes: 1 << 20, cpuThreads: 1 }],
  ['a Q8_0 GGUF (blocks kept)', Q8_GGUF, { kvCacheMemoryBytes: 2 << 20, cpuThreads: 1 }],
  ['the embedded model on 2 threads (shared memory)', DEFAULT_MODEL, { kvCacheMemoryBytes: 4 << 20, cpuThreads: 2 }],
])('%s', (_name, model, opts) => {
  it('fills cpu.wasm with exactly its planned buffers, and generating grows nothing', async () => {
    const llm = await loadLLM(model, { device: 'cpu', ...opts });
    try {
      const r = cpuRunnerOf(llm.engine);
      const { weights, kvCache, activations, threads } = r.memoryPlan;
      const planned = weights + kvCache + activations + threads;
      expect(r.cpu.usedBytes).toBe(planned);
      const memory = r.cpu.k.memory;
      const size = memory.buffer.byteLength;
      expect(size).toBe(Math.ceil((r.cpu.k.heapBase() + planned) / PAGE) * PAGE);

      // The plan's parts, from the config and the limits on their own.
      const c = r.config;
      const l = r.limits;
      expect(kvCache).toBe(2 * c.numLayers * cpuBlockBytes(l.numBlocks * l.blockSize * c.numKvHeads * c.headDim * 4));
      expect(activations).toBe(cpuDecoderBytes(c, cpuDecoderSizes(l)).activations);
      expect(activations).toBeLessThanOrEqual(opts.kvCacheMemoryBytes!);
      expect(weights).toBeGreaterThan(0);
      if (opts.cpuThreads! > 1) {
        expect(threads).toBeGreaterThan(0);
        expect(memory.buffer).toBeInstanceOf(SharedArrayBuffer);
      } else {
        expect(threads).toBe(0);
      }

      const [out] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 8, ignoreEos: true }));
      expect(out.outputs[0].tokenIds).toHaveLength(8);
      expect(memory.buffer.byteLength).toBe(size);
      expect(r.cpu.usedBytes).toBe(planned);
    } finally {
      await llm.dispose();
    }
  });
});

it('f32 weights take 4 bytes a parameter, each slot padded to 16 bytes', async () => {
  const llm = await loadLLM(DEFAULT_MODEL, { device: 'cpu', dtype: 'float32', kvCacheMemoryBytes: 1 << 20, cpuThreads: 1 });
  try {
    const r = cpuRunnerOf(llm.engine);
    const params = paramCount(r.config);
    // Slots: embeddings, final norm, LM head, and per layer two norms and four matrices (qkv and gate/up fused).
    const slots = 3 + 6 * r.config.numLayers;
    expect(r.memoryPlan.weights).toBeGreaterThanOrEqual(4 * params);
    expect(r.memoryPlan.weights).toBeLessThan(4 * params + 16 * slots);
  } finally {
    await llm.dispose();
  }
});

it('a plan past wasm32 fails before any weight streams, naming the sizes', async () => {
  await expect(loadLLM(DEFAULT_MODEL, { device: 'cpu', cpuThreads: 1, kvCacheMemoryBytes: 5 * 2 ** 30 })).rejects.toThrow(
    /cpu.wasm: out of memory reserving \d+ bytes .*weights take \d+ bytes, the KV cache and activations \d+; lower kvCacheMemoryBytes/,
  );
});

describe('the CPU step against the KV cache budget', () => {
  it('halves tokens and logits rows together until the activations fit; a given maxNumBatchedTokens stays', async () => {
    const llm = await loadLLM(DEFAULT_MODEL, { device: 'cpu' });
    const cfg = cpuRunnerOf(llm.engine).config;
    await llm.dispose();
    const step = (o: EngineOptions) => {
      const l = cpuRunnerLimits(cfg, o);
      return [l.maxNumBatchedTokens, l.logitRows];
    };
    const activations = (o: EngineOptions, T: number, rows: number) =>
      cpuDecoderBytes(cfg, cpuDecoderSizes({ ...cpuRunnerLimits(cfg, o), maxNumBatchedTokens: T, logitRows: rows })).activations;
    expect(step({})).toEqual([512, 64]);
    for (const kvCacheMemoryBytes of [8 << 20, 1 << 20, 256 << 10]) {
      const o = { kvCacheMemoryBytes };
      const [T, rows] = step(o);
      expect(rows).toBe(T / 8);
      expect(activations(o, T, rows)).toBeLessThanOrEqual(kvCacheMemoryBytes);
      // The largest on the ladder: the step twice as large does not fit (or the step is the default).
      if (T < 512) expect(activations(o, 2 * T, 2 * rows)).toBeGreaterThan(kvCacheMemoryBytes);
    }
    expect(step({ kvCacheMemoryBytes: 1 << 20 })).toEqual([64, 8]);
    // A given step keeps its tokens; its rows halve (down to 1) until they fit, if they can.
    const o = { kvCacheMemoryBytes: 1 << 20 };
    const [T, rows] = step({ ...o, maxNumBatchedTokens: 100 });
    expect(T).toBe(100);
    expect(rows).toBeLessThan(64);
    expect(activations(o, 100, rows)).toBeLessThanOrEqual(1 << 20);
    expect(activations(o, 100, 2 * rows)).toBeGreaterThan(1 << 20);
    expect(step({ kvCacheMemoryBytes: 64 << 10, maxNumBatchedTokens: 100 })).toEqual([100, 1]);
  });
});
