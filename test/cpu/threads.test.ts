/**
 * The CPU backend's threads (src/cpu/cpu-threads.ts, Node's worker_threads): a matmul split across workers gives
 * the single-threaded result bit for bit, in every format, with ragged row splits, and so do the attention and the
 * gated activation split by tokens; through the engine, the same logprobs on 1 and 3 threads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeCpuWorkers } from '../../bindings/node/cpu-workers.js';
import { SamplingParams, type RequestOutput } from '../../bindings/node/index.js';
import { actBytes, CPU_ACTS, CPU_FORMATS, loadCpuKernels, type CpuFormat, type CpuKernels } from '../../src/cpu/cpu-wasm.js';
import { cpuRowBytes } from '../../src/cpu/cpu-weights.js';
import { quantizeRows } from '../../src/layers/quant/index.js';
import { f32ToF16 } from '../../src/loader/convert.js';
import { loadLLM } from '../helpers/llm.js';
import { loadGoldens, modelDir } from '../helpers/paths.js';

const uniform = (n: number, seed: number) => {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s / 2 ** 32 - 0.5));
};

function weights(format: CpuFormat, N: number, K: number): Uint8Array {
  const x = uniform(N * K, 1);
  if (format === 'f32') return new Uint8Array(x.buffer);
  if (format === 'f16') return new Uint8Array(f32ToF16(x).buffer);
  return quantizeRows(format, x, N, K);
}

/** Calls the threads of `cpu` have split so far (CpuThreads' sequence number). */
const splitsOf = (cpu: CpuKernels) => (cpu.threads as unknown as { seq: number }).seq;

describe('linear on 3 threads', () => {
  let single: CpuKernels;
  let multi: CpuKernels;
  beforeAll(async () => {
    single = await loadCpuKernels();
    multi = await loadCpuKernels({ threads: 3, host: nodeCpuWorkers, maxK: 2560 });
    expect(multi.threads?.count).toBe(3);
  });
  afterAll(() => multi?.dispose());

  const run = (cpu: CpuKernels, format: CpuFormat, T: number, N: number, K: number, acc: boolean) => {
    const bytes = weights(format, N, K);
    const w = cpu.alloc(bytes.length);
    cpu.u8().set(bytes, w);
    cpu.packRows(CPU_FORMATS[format], w, cpuRowBytes(format, K), N);
    const x = cpu.alloc(4 * T * K);
    cpu.f32().set(uniform(T * K, 2), x / 4);
    const out = cpu.alloc(4 * T * N);
    cpu.f32().set(uniform(T * N, 3), out / 4);
    cpu.linear(CPU_FORMATS[format], out, N, x, K, w, cpuRowBytes(format, K), T, N, K, acc, cpu.alloc(16 * K), cpu.alloc(actBytes(T, K)));
    return cpu.f32().slice(out / 4, out / 4 + T * N);
  };

  it.each(Object.keys(CPU_FORMATS) as CpuFormat[])('%s: the single-threaded result, bit for bit', (format) => {
    for (const [T, acc] of [[1, false], [5, true]] as const) {
      const N = 250; // rows split 84 / 84 / 82
      const K = 2560; // 640 K multiply-adds a token: split from one token on (MIN_SPLIT)
      const splits = splitsOf(multi);
      expect(run(multi, format, T, N, K, acc)).toEqual(run(single, format, T, N, K, acc));
      expect(splitsOf(multi)).toBe(splits + 1); // the workers took their rows
    }
  });
});

describe('pagedAttention on 3 threads', () => {
  it.each([0, 24])('window %i: the single-threaded result, bit for bit, the query tokens split by their keys', async (window) => {
    const single = await loadCpuKernels();
    const multi = await loadCpuKernels({ threads: 3, host: nodeCpuWorkers, maxK: 64, maxLen: 64 });
    try {
      const [nH, nKv, D, bs, maxBlocks] = [8, 2, 64, 4, 12];
      // Two sequences: a 30-token prompt from position 0 and 12 tokens at positions 30..41 (a later chunk).
      const positions = Int32Array.from([...Array.from({ length: 30 }, (_, i) => i), ...Array.from({ length: 12 }, (_, i) => 30 + i)]);
      const seqIdx = Int32Array.from(positions, (_, t) => (t < 30 ? 0 : 1));
      const tables = Int32Array.from({ length: 2 * maxBlocks }, (_, i) => (i * 7 + 3) % (2 * maxBlocks));
      const T = positions.length;
      const ldq = (nH + 2 * nKv) * D;
      const results = [single, multi].map((cpu) => {
        const put = (a: Float32Array | Int32Array) => {
          const p = cpu.alloc(a.byteLength);
          new Uint8Array(cpu.k.memory.buffer).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), p);
          return p;
        };
        const cache = 2 * maxBlocks * bs * nKv * D;
        const out = cpu.alloc(4 * T * nH * D);
        const args = [out, put(uniform(T * ldq, 5)), ldq, put(uniform(cache, 6)), put(uniform(cache, 7)), put(tables), maxBlocks, put(seqIdx), put(positions), T, nH, nKv, D, bs, 0.125, 0, window, cpu.alloc(4 * 64)] as const;
        const splits = splitsOf(multi);
        cpu.pagedAttention(...args);
        if (cpu === multi) expect(splitsOf(multi)).toBe(splits + 1); // the workers took their tokens
        return cpu.f32().slice(out / 4, out / 4 + T * nH * D);
      });
      expect(results[1]).toEqual(results[0]);
    } finally {
      multi.dispose();
    }
  });
});

it('gatedAct on 3 threads: the single-threaded result, bit for bit, the tokens split', async () => {
  const single = await loadCpuKernels();
  const multi = await loadCpuKernels({ threads: 3, host: nodeCpuWorkers, maxK: 64 });
  try {
    const [T, I] = [40, 2048];
    const results = [single, multi].map((cpu) => {
      const u = cpu.alloc(4 * T * 2 * I);
      cpu.f32().set(uniform(T * 2 * I, 9).map((v) => 8 * v), u / 4);
      const out = cpu.alloc(4 * T * I);
      const splits = splitsOf(multi);
      cpu.gatedAct(CPU_ACTS.silu, out, I, u, 2 * I, T, I);
      if (cpu === multi) expect(splitsOf(multi)).toBe(splits + 1);
      return cpu.f32().slice(out / 4, out / 4 + T * I);
    });
    expect(results[1]).toEqual(results[0]);
  } finally {
    multi.dispose();
  }
});

it('the engine on 1 and 3 CPU threads gives the same logprobs', async () => {
  const g = loadGoldens()['llama3-rand'];
  const params = new SamplingParams({ temperature: 0, maxTokens: 6, logprobs: 5 });
  const outs: RequestOutput[][] = [];
  for (const cpuThreads of [1, 3]) {
    const llm = await loadLLM(modelDir('llama3-rand'), { device: 'cpu', cpuThreads });
    outs.push(await llm.generate(g.prompts.map((p) => p.text), params));
    await llm.dispose();
  }
  outs[0].forEach((o, i) => {
    expect(outs[1][i].outputs[0].tokenIds).toEqual(o.outputs[0].tokenIds);
    o.outputs[0].logprobs!.forEach((m, s) => m.forEach((l, id) => expect(outs[1][i].outputs[0].logprobs![s].get(id)!.logprob).toBe(l.logprob)));
  });
});

describe('a worker that fails or dies', () => {
  // A q4_0 matmul of 256 rows x 2048 split between the caller (rows 0-127) and one worker (rows 128-255).
  const N = 256;
  const K = 2048;
  const rowBytes = cpuRowBytes('q4_0', K);
  const setUp = async () => {
    const cpu = await loadCpuKernels({ threads: 2, host: nodeCpuWorkers, maxK: K });
    const x = cpu.alloc(4 * K);
    cpu.f32().set(uniform(K, 2), x / 4);
    return { cpu, x, out: cpu.alloc(4 * N), panel: cpu.alloc(16 * K), acts: cpu.alloc(actBytes(1, K)) };
  };

  it("a kernel that traps in the worker fails that matmul and the later ones with the worker's error", async () => {
    const { cpu, x, out, panel, acts } = await setUp();
    try {
      // The weight ends where the memory does: the caller's rows are in it, the worker's past the end.
      const w = cpu.u8().length - (N / 2) * rowBytes;
      const call = () => cpu.linear(CPU_FORMATS.q4_0, out, N, x, K, w, rowBytes, 1, N, K, false, panel, acts);
      expect(call).toThrow(/worker thread 1 failed in linearQ8 \(256 x 2048, 1 tokens\): .*out of bounds/);
      expect(call).toThrow(/worker thread 1 failed/);
    } finally {
      cpu.dispose();
    }
  });

  it('a worker that died makes the matmul throw after the stall bound instead of hanging', async () => {
    const { cpu, x, out, panel, acts } = await setUp();
    try {
      const bytes = weights('q4_0', N, K);
      const w = cpu.alloc(bytes.length);
      cpu.u8().set(bytes, w);
      cpu.packRows(CPU_FORMATS.q4_0, w, rowBytes, N);
      const threads = cpu.threads!;
      const call = () => cpu.linear(CPU_FORMATS.q4_0, out, N, x, K, w, rowBytes, 1, N, K, false, panel, acts);
      call(); // alive: answers
      threads.stallMs = 300;
      (threads as unknown as { workers: { terminate(): void }[] }).workers[0].terminate();
      await new Promise((r) => setTimeout(r, 200));
      const t0 = performance.now();
      expect(call).toThrow(/worker thread 1 did not finish its rows of a 256 x 2048 matmul within 0\.3 s .*\(it died or hangs\)/);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(call).toThrow(/did not finish/);
    } finally {
      cpu.dispose();
    }
  });
});
