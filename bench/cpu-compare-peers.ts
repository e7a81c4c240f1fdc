/**
 * The engines bench/cpu-compare.ts runs on the same GGUF file, behind one shape: load once for a thread count, then
 * `run(prompts, maxTokens)` generates greedily for all prompts at once (one stream each) and returns each stream's
 * token times (ms since the run began). Greedy, EOS ignored, no detokenizing where the engine allows.
 *
 *   ours       LLM on the CPU backend (WebAssembly, src/cpu), the engine's continuous batching.
 *   llama.cpp  node-llama-cpp (llama.cpp's native CPU build): one context of `maxStreams` sequences, evaluated
 *              concurrently (node-llama-cpp batches the sequences' tokens into one llama_decode).
 */
import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaModel, type Token } from 'node-llama-cpp';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import type { CpuModelRunner } from '../src/cpu/cpu-model-runner.js';

/** One run: per stream, the times its tokens arrived (ms from the run's start). */
export type TokenTimes = number[][];

export interface BenchEngine {
  readonly name: string;
  run(prompts: number[][], maxTokens: number): Promise<TokenTimes>;
  dispose(): Promise<void>;
}

export interface LoadSpec {
  /** A GGUF file (or a model folder, ours only). */
  model: string;
  threads: number;
  /** The most streams a run will have. */
  maxStreams: number;
  /** Longest prompt + output. */
  maxLen: number;
  /** A prompt's text, for engines that take text only (their tokenizer reads it back as the same ids). */
  text(ids: readonly number[]): string;
}

/** Our CPU backend through the public API (LLM, engine streams); `relaxedSimd` false: the SIMD128 kernels. */
export async function loadOurs(s: LoadSpec, relaxedSimd?: boolean): Promise<BenchEngine & { llm: LLM; wasmBytes(): number }> {
  const blocks = s.maxStreams * Math.ceil(s.maxLen / 16) + 8;
  const llm = await LLM.create({
    model: s.model, device: 'cpu', cpuThreads: s.threads, maxNumSeqs: s.maxStreams, maxModelLen: s.maxLen, numGpuBlocksOverride: blocks,
    enablePrefixCaching: false, generationConfig: 'vllm', log: () => {}, cpuRelaxedSimd: relaxedSimd,
  });
  const params = (maxTokens: number) => new SamplingParams({ temperature: 0, maxTokens, ignoreEos: true, detokenize: false, outputKind: 'delta' });
  return {
    name: relaxedSimd === false ? 'ours-simd128' : 'ours', llm,
    wasmBytes: () => (llm.engine.runner as CpuModelRunner).cpu.k.memory.buffer.byteLength,
    async run(prompts, maxTokens) {
      const t0 = performance.now();
      return Promise.all(prompts.map(async (ids) => {
        const times: number[] = [];
        for await (const out of llm.engine.addRequest({ prompt: { promptTokenIds: ids }, params: params(maxTokens) })) {
          const now = performance.now() - t0;
          for (let k = 0; k < out.outputs[0].tokenIds.length; k++) times.push(now);
        }
        return times;
      }));
    },
    dispose: () => llm.dispose(),
  };
}

let llamaCpp: Promise<Llama> | undefined;

/** llama.cpp's CPU build through node-llama-cpp; a context of maxStreams sequences, f16 KV cache (its default). */
export async function loadLlamaCpp(s: LoadSpec): Promise<BenchEngine> {
  // maxThreads 0: a context's `threads` is then the exact count used.
  const llama = await (llamaCpp ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: 0 }));
  const model: LlamaModel = await llama.loadModel({ modelPath: s.model, gpuLayers: 0 });
  const newContext = () => model.createContext({ sequences: s.maxStreams, contextSize: s.maxStreams * s.maxLen, threads: s.threads, batchSize: 512 });
  let ctx: LlamaContext = await newContext();
  return {
    name: 'llama.cpp',
    async run(prompts, maxTokens) {
      // A fresh context per run: every sequence starts empty (as ours, without prefix caching).
      await ctx.dispose();
      ctx = await newContext();
      const t0 = performance.now();
      return Promise.all(prompts.map(async (ids) => {
        const seq = ctx.getSequence();
        const times: number[] = [];
        for await (const _ of seq.evaluate(ids as Token[], { temperature: 0 })) {
          times.push(performance.now() - t0);
          if (times.length === maxTokens) break;
        }
        seq.dispose();
        return times;
      }));
    },
    async dispose() {
      await ctx.dispose();
      await model.dispose();
    },
  };
}
