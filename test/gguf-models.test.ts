/**
 * GGUF models end to end (LLM.create on a .gguf path, URL form, folder + ggufFile, splits, tokenizer override)
 * against llama.cpp itself: node-llama-cpp runs llama.cpp on the CPU over the same files. Prompt ids, the top-20
 * log-probabilities along the greedy path and the greedy ids must agree.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaContextSequence } from 'node-llama-cpp';
import { afterAll, describe, expect, it } from 'vitest';
import { SamplingParams } from '../bindings/node/index.js';
import { GgufFormatError, readGgufHeader, readGgufTensorBytes, type GgufValue } from '../src/loader/gguf.js';
import { ModelFileError } from '../src/errors.js';
import { FsByteSource } from '../bindings/node/fs-source.js';
import { FakeHub } from './helpers/fake-hub.js';
import { loadLLM } from './helpers/llm.js';
import type { LinearWeight } from '../src/layers/linear.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';
import { MODELS } from './helpers/paths.js';
import { writeGguf } from './helpers/gguf-writer.js';

const GGUF = join(MODELS, 'gguf');
const PROMPTS = ['Once upon a time', 'The little dog saw a big red ball and'];
const STEPS = 16;

let llamaCpp: Promise<Llama> | null = null;
const llama = () => (llamaCpp ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error }));

/** llama.cpp's prompt ids (BOS prepended as the vocabulary asks), greedy ids and each step's distribution. */
async function llamaCppRun(file: string, text: string, steps: number) {
  const model = await (await llama()).loadModel({ modelPath: file });
  try {
    const ids = model.tokenize(text, false) as number[];
    const prompt = model.tokens.shouldPrependBosToken && model.tokens.bos !== null ? [model.tokens.bos as number, ...ids] : ids;
    // An f32 KV cache as ours in these tests (llama.cpp's default is f16).
    const ctx = await model.createContext({ contextSize: 256, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    const greedy: number[] = [];
    const probs: Map<number, number>[] = [];
    for await (const r of ctx.getSequence().evaluateWithMetadata(prompt as unknown as Parameters<LlamaContextSequence['evaluate']>[0], { probabilities: true }, { temperature: 0 })) {
      greedy.push(r.token as number);
      probs.push(r.probabilities as Map<number, number>);
      if (greedy.length >= steps) break;
    }
    await ctx.dispose();
    return { prompt, greedy, probs };
  } finally {
    await model.dispose();
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'gguf-models-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('GGUF files against llama.cpp (node-llama-cpp on the CPU)', () => {
  // [file, largest |logprob difference| allowed for tokens of probability > 5%, largest |probability difference| in
  // the top 20]: llama.cpp's CPU kernels round through f16 in attention and quantize activations to q8 for quantized
  // weights (measured: 4.9e-3 / 8e-4, 0.12 / 0.015, 8e-5 / 3e-9)
  const files: [string, number, number][] = [
    ['stories260K.gguf', 0.01, 2e-3],
    ['tinystories-656K-q8_0.gguf', 0.2, 0.03],
    ['llama-2-tiny-random.gguf', 1e-3, 1e-5],
  ];
  for (const [file, tol, ptol] of files) {
    it(`${file}: prompt ids, top-20 logprobs along llama.cpp's greedy path and greedy ids equal llama.cpp's`, async () => {
      const llm = await loadLLM(join(GGUF, file));
      try {
        for (const text of PROMPTS) {
          const ref = await llamaCppRun(join(GGUF, file), text, STEPS);
          const all = [...ref.prompt, ...ref.greedy];
          // Our distributions at every position of llama.cpp's path (vLLM prompt logprobs: entry i predicts token i).
          const [scored] = await llm.generate({ promptTokenIds: all }, new SamplingParams({ temperature: 0, maxTokens: 1, promptLogprobs: 20 }));
          for (let s = 0; s < STEPS; s++) {
            const dist = scored.promptLogprobs![ref.prompt.length + s]!;
            const top = [...dist.entries()].sort((a, b) => b[1].logprob - a[1].logprob);
            for (const [id, lp] of top) {
              const p = ref.probs[s].get(id)!;
              expect(Math.abs(Math.exp(lp.logprob) - p), `step ${s} token ${id}`).toBeLessThan(ptol);
              if (lp.logprob > -3) expect(Math.abs(lp.logprob - Math.log(p)), `step ${s} token ${id}`).toBeLessThan(tol);
            }
            // llama.cpp's pick is our best up to the tolerance (random models have near ties).
            expect(dist.get(ref.greedy[s])!.logprob, `step ${s}`).toBeGreaterThan(top[0][1].logprob - tol);
          }
          // Our own greedy run gives llama.cpp's ids until the first near tie.
          const [out] = await llm.generate(text, new SamplingParams({ temperature: 0, maxTokens: STEPS, logprobs: 2, ignoreEos: true }));
          expect(out.promptTokenIds).toEqual(ref.prompt);
          for (let s = 0; s < STEPS; s++) {
            // Past a near tie the paths may part legitimately: compare up to it.
            const [a, b] = [...out.outputs[0].logprobs![s].values()].map((l) => l.logprob).sort((x, y) => y - x);
            if (a - b < 2 * tol) break;
            expect(out.outputs[0].tokenIds[s], `step ${s}`).toBe(ref.greedy[s]);
          }
        }
      } finally {
        await llm.dispose();
      }
    });
  }

  it('weights on the GPU take the bytes they take in the file (within 2%): blocks stay blocks', async () => {
    for (const file of ['tinystories-656K-q8_0.gguf', 'llama-2-tiny-random.gguf']) {
      const h = await readGgufHeader(await FsByteSource.open(join(GGUF, file)));
      const fileBytes = h.tensors.filter((t) => t.shape.length === 2).reduce((n, t) => n + t.byteLength, 0);
      const llm = await loadLLM(join(GGUF, file), { dtype: 'auto' });
      try {
        const weights = new Set<LinearWeight>();
        const visit = (v: unknown, depth: number): void => {
          if (!v || typeof v !== 'object' || depth > 8) return;
          if ('method' in v) weights.add(v as LinearWeight);
          else for (const x of Object.values(v)) visit(x, depth + 1);
        };
        visit(gpuRunnerOf(llm.engine).model.weights, 0);
        const gpuBytes = [...weights].reduce((n, w) => n + w.method.bytes(w), 0);
        expect(gpuBytes / fileBytes, file).toBeGreaterThanOrEqual(1);
        expect(gpuBytes / fileBytes, file).toBeLessThan(1.02);
      } finally {
        await llm.dispose();
      }
    }
  });

  it('stories260K.gguf gives exactly what its safetensors twin gives (same f32 weights, rotary rows un-permuted)', async () => {
    const params = new SamplingParams({ temperature: 0, maxTokens: 24, logprobs: 5, ignoreEos: true });
    const a = await loadLLM(join(GGUF, 'stories260K.gguf'));
    const b = await loadLLM(join(MODELS, 'stories260K'));
    try {
      const [x] = await a.generate(PROMPTS[1], params);
      const [y] = await b.generate(PROMPTS[1], params);
      expect(x.promptTokenIds).toEqual(y.promptTokenIds);
      expect(x.outputs[0].tokenIds).toEqual(y.outputs[0].tokenIds);
      expect(x.outputs[0].text).toBe(y.outputs[0].text);
      for (let s = 0; s < 24; s++) {
        for (const [id, lp] of y.outputs[0].logprobs![s]) expect(x.outputs[0].logprobs![s].get(id)!.logprob).toBeCloseTo(lp.logprob, 5);
      }
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});

/** stories260K.gguf's metadata and tensors, to write variants of it. */
async function stories() {
  const src = await FsByteSource.open(join(GGUF, 'stories260K.gguf'));
  const h = await readGgufHeader(src);
  const tensors = await Promise.all(h.tensors.map(async (t) => ({ name: t.name, type: t.type, ne: t.ne, data: await readGgufTensorBytes(src, t) })));
  await src.close();
  return { metadata: [...h.metadata.entries()] as [string, GgufValue][], tensors };
}

async function greedy(opts: Parameters<typeof loadLLM>[1] & { model: string }): Promise<number[]> {
  const { model, ...rest } = opts;
  const llm = await loadLLM(model, rest);
  try {
    const [out] = await llm.generate(PROMPTS[1], new SamplingParams({ temperature: 0, maxTokens: 12, ignoreEos: true }));
    return [...out.promptTokenIds, ...out.outputs[0].tokenIds];
  } finally {
    await llm.dispose();
  }
}

describe('GGUF models: how they are named, and bad files', async () => {
  const want = await greedy({ model: join(GGUF, 'stories260K.gguf') });
  const { metadata, tensors } = await stories();

  it('split files (-00001-of-00002.gguf): loaded from the first, or found alone in a folder', async () => {
    const dir = join(tmp, 'split');
    mkdirSync(dir, { recursive: true });
    const half = Math.ceil(tensors.length / 2);
    const split = (no: number, md: [string, GgufValue][]) => [...md, ['split.no', no], ['split.count', 2], ['split.tensors.count', tensors.length]] as [string, GgufValue][];
    writeFileSync(join(dir, 'stories-00001-of-00002.gguf'), writeGguf(split(0, metadata), tensors.slice(0, half)));
    writeFileSync(join(dir, 'stories-00002-of-00002.gguf'), writeGguf(split(1, []), tensors.slice(half)));
    expect(await greedy({ model: join(dir, 'stories-00001-of-00002.gguf') })).toEqual(want);
    expect(await greedy({ model: dir })).toEqual(want); // no config.json: the folder's only GGUF model
    rmSync(join(dir, 'stories-00002-of-00002.gguf'));
    await expect(loadLLM(join(dir, 'stories-00001-of-00002.gguf'))).rejects.toThrow(/stories-00002-of-00002\.gguf/);
  });

  it('a folder with ggufFile, a URL, a hub repo by quant type (org/name:Q8_0, with its files listed) and by ggufFile', async () => {
    expect(await greedy({ model: GGUF, ggufFile: 'stories260K.gguf' })).toEqual(want);
    const hub = await FakeHub.start({ repos: { 'test/gguf': GGUF }, mounts: { '/files/': GGUF } });
    try {
      expect(await greedy({ model: `${hub.url}/files/stories260K.gguf` })).toEqual(want);
      const cache = join(tmp, 'hub-cache');
      const hubOpts = { hfEndpoint: hub.url, downloadDir: cache };
      const q8 = await greedy({ model: join(GGUF, 'tinystories-656K-q8_0.gguf') });
      expect(await greedy({ model: 'test/gguf:Q8_0', ...hubOpts })).toEqual(q8);
      expect(await greedy({ model: 'test/gguf:q8_0', ...hubOpts })).toEqual(q8);
      expect(await greedy({ model: 'test/gguf', ggufFile: 'stories260K.gguf', ...hubOpts })).toEqual(want);
      await expect(loadLLM('test/gguf:Q4_K_M', hubOpts)).rejects.toThrow(/has no GGUF file of type Q4_K_M; it has: llama-2-tiny-random\.gguf, stories260K\.gguf, tinystories-656K-q8_0\.gguf/);
      // Several GGUF models and no quant type: llama.cpp's default, Q4_K_M, is not there either.
      await expect(loadLLM('test/gguf', hubOpts)).rejects.toThrow(/no GGUF file of type Q4_K_M \(the default when several are present\)/);
    } finally {
      await hub.close();
    }
  });

  it('tokenizer: a Hugging Face tokenizer instead of the GGUF vocabulary (vLLM\'s advice for GGUF)', async () => {
    expect(await greedy({ model: join(GGUF, 'stories260K.gguf'), tokenizer: join(MODELS, 'stories260K') })).toEqual(want);
    const llm = await loadLLM(join(GGUF, 'tinystories-656K-q8_0.gguf'), { tokenizer: join(MODELS, 'tinystories-656K') });
    try {
      // The HF tokenizer of the twin, not llama.cpp's reading of the GGUF vocabulary (see test/gguf-tokenizer.test.ts).
      expect(llm.engine.tokenizer.encode(PROMPTS[1])).toEqual([1, 80, 247, 229, 401, 614, 1714, 85, 389]);
    } finally {
      await llm.dispose();
    }
  });

  it('bad files give named errors: truncated tensor data, an unimplemented quant type, inconsistent metadata', async () => {
    const dir = join(tmp, 'bad');
    mkdirSync(dir, { recursive: true });
    const good = readFileSync(join(GGUF, 'stories260K.gguf'));
    writeFileSync(join(dir, 'truncated.gguf'), good.subarray(0, good.length - 1000));
    const err = await loadLLM(join(dir, 'truncated.gguf')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GgufFormatError);
    expect((err as GgufFormatError).kind).toBe('truncated');
    expect((err as Error).message).toMatch(/truncated\.gguf: tensor "[^"]+" ends at byte \d+ but the file is \d+ bytes; the file is truncated/);
    // IQ2_XXS (ggml type 16): 66 bytes per 256 elements; the FFN rows of stories260K are 64 wide, so use the embedding
    // shape reinterpreted: a [256, 512] tensor.
    const iq = tensors.map((t) => (t.name === 'blk.0.ffn_down.weight' ? { ...t, type: 16, ne: [256, 1], data: new Uint8Array(66) } : t));
    writeFileSync(join(dir, 'iq.gguf'), writeGguf(metadata, iq));
    await expect(loadLLM(join(dir, 'iq.gguf'))).rejects.toThrow(ModelFileError);
    await expect(loadLLM(join(dir, "iq.gguf"))).rejects.toThrow(/iq\.gguf: tensor model\.layers\.0\.mlp\.down_proj\.weight has type IQ2_XXS, which webgpu-llm cannot load yet \(it loads F32, F16, BF16, Q8_0, Q4_0/);
    const md = metadata.map(([k, v]) => [k, k === 'llama.block_count' ? 6 : v] as [string, GgufValue]);
    writeFileSync(join(dir, 'layers.gguf'), writeGguf(md, tensors));
    await expect(loadLLM(join(dir, 'layers.gguf'))).rejects.toThrow(/layers\.gguf: missing or incomplete weights for LlamaForCausalLM: 5\.attnNorm/);
    const arch = metadata.map(([k, v]) => [k, k === 'general.architecture' ? 'mamba' : v] as [string, GgufValue]);
    writeFileSync(join(dir, 'arch.gguf'), writeGguf(arch, tensors));
    await expect(loadLLM(join(dir, 'arch.gguf'))).rejects.toThrow(/arch\.gguf: general\.architecture "mamba" is not supported/);
  });
});
