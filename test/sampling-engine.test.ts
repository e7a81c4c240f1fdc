/**
 * SamplingParams through the engine: n and bestOf (forked sequences sharing the prompt's KV blocks), stop strings
 * and stop tokens, logprobs, generation_config defaults.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SamplingParams, type LLM } from '../bindings/node/index.js';
import { modelDir } from './helpers/paths.js';
import { loadLLM } from './helpers/llm.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';

const PROMPT = 'Once upon a time, there was a little girl named';

describe('tinystories-656K', () => {
  let llm: LLM;
  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'));
  });
  afterAll(() => llm.dispose());

  it('n > 1 forks after the prompt: sequence i equals a single request seeded seed + i', async () => {
    const [out] = await llm.generate(PROMPT, new SamplingParams({ n: 3, seed: 11, temperature: 1, maxTokens: 20, ignoreEos: true }));
    expect(out.outputs.map((o) => o.index)).toEqual([0, 1, 2]);
    for (let i = 0; i < 3; i++) {
      const [alone] = await llm.generate(PROMPT, new SamplingParams({ seed: 11 + i, temperature: 1, maxTokens: 20, ignoreEos: true }));
      expect(out.outputs[i].tokenIds).toEqual(alone.outputs[0].tokenIds);
      expect(out.outputs[i].text).toBe(alone.outputs[0].text);
    }
    expect(new Set(out.outputs.map((o) => o.text)).size).toBeGreaterThan(1);
    // Every block is back in the pool: forks released their shares.
    const kv = (llm.engine as unknown as { scheduler: { kvCacheManager: { numFreeBlocks: number; numBlocks: number } } }).scheduler.kvCacheManager;
    expect(kv.numFreeBlocks).toBe(kv.numBlocks);
  });

  it('bestOf returns the n sequences with the highest cumulative logprob', async () => {
    const params = new SamplingParams({ n: 2, bestOf: 4, seed: 5, temperature: 1, maxTokens: 12, ignoreEos: true });
    const [out] = await llm.generate(PROMPT, params);
    expect(out.outputs).toHaveLength(2);
    const singles = [];
    for (let i = 0; i < 4; i++) {
      const [s] = await llm.generate(PROMPT, new SamplingParams({ seed: 5 + i, temperature: 1, maxTokens: 12, ignoreEos: true, logprobs: 0 }));
      singles.push(s.outputs[0]);
    }
    singles.sort((a, b) => b.cumulativeLogprob! - a.cumulativeLogprob!);
    expect(out.outputs.map((o) => o.tokenIds)).toEqual(singles.slice(0, 2).map((s) => s.tokenIds));
    expect(out.outputs.map((o) => o.index)).toEqual([0, 1]);
  });

  it('stops on strings that span tokens, reporting the stop string, with and without it in the text', async () => {
    // Token boundaries in the text, from a delta stream (one delta per token).
    const deltas: string[] = [];
    const params = new SamplingParams({ temperature: 0, maxTokens: 60, outputKind: 'delta' });
    for await (const o of llm.engine.addRequest({ prompt: PROMPT, params })) deltas.push(o.outputs[0].text);
    const text = deltas.join('');
    let cut = 0;
    for (let i = 1, at = deltas[0].length; i < deltas.length && cut === 0; at += deltas[i].length, i++) {
      // A stop string made of the end of one token and the start of the next, first seen there.
      if (deltas[i - 1].length >= 2 && deltas[i].length >= 2 && text.indexOf(text.slice(at - 2, at + 2)) === at - 2) cut = at;
    }
    expect(cut).toBeGreaterThan(0);
    const stop = text.slice(cut - 2, cut + 2);
    const [s1] = await llm.generate(PROMPT, new SamplingParams({ temperature: 0, maxTokens: 60, stop: [stop, 'zzzz'] }));
    expect(s1.outputs[0].text).toBe(text.slice(0, cut - 2));
    expect(s1.outputs[0].finishReason).toBe('stop');
    expect(s1.outputs[0].stopReason).toBe(stop);
    const [s2] = await llm.generate(PROMPT, new SamplingParams({ temperature: 0, maxTokens: 60, stop: [stop], includeStopStrInOutput: true }));
    expect(s2.outputs[0].text).toBe(text.slice(0, cut + 2));
    // The earliest of several stops wins; a stop inside the first token ends at once.
    const first = text.slice(0, 3);
    const [s3] = await llm.generate(PROMPT, new SamplingParams({ temperature: 0, maxTokens: 60, stop: [stop, first] }));
    expect(s3.outputs[0].text).toBe('');
    expect(s3.outputs[0].stopReason).toBe(first);
  });

  it('stop token ids and EOS report their reasons; streamed text never shows a partial stop string', async () => {
    const [full] = await llm.generate(PROMPT, new SamplingParams({ temperature: 0, maxTokens: 30 }));
    const stopId = full.outputs[0].tokenIds[5];
    const [st] = await llm.generate(PROMPT, new SamplingParams({ temperature: 0, maxTokens: 30, stopTokenIds: [stopId] }));
    expect(st.outputs[0].finishReason).toBe('stop');
    expect(st.outputs[0].stopReason).toBe(stopId);
    expect(st.outputs[0].tokenIds.at(-1)).toBe(stopId);
    const stop = full.outputs[0].text.slice(20, 26);
    const seen: string[] = [];
    for await (const o of llm.engine.addRequest({ prompt: PROMPT, params: new SamplingParams({ temperature: 0, maxTokens: 30, stop: [stop] }) })) {
      seen.push(o.outputs[0].text);
    }
    for (const t of seen) expect(t.includes(stop.slice(0, 3)) && !full.outputs[0].text.slice(0, 20).includes(stop.slice(0, 3))).toBe(false);
    expect(seen.at(-1)).toBe(full.outputs[0].text.slice(0, 20));
  });

  it('logprobs: the sampled token and top-k with ranks, cumulative sum, decoded tokens', async () => {
    const [out] = await llm.generate(PROMPT, new SamplingParams({ temperature: 0, maxTokens: 6, logprobs: 3 }));
    const o = out.outputs[0];
    expect(o.logprobs).toHaveLength(6);
    let sum = 0;
    o.logprobs!.forEach((m, i) => {
      const mine = m.get(o.tokenIds[i])!;
      expect(mine.rank).toBe(1); // greedy
      expect(mine.decodedToken).toBe(llm.engine.tokenizer.decode([o.tokenIds[i]]));
      expect([...m.values()].filter((l) => l.rank <= 3)).toHaveLength(3);
      sum += mine.logprob;
    });
    expect(o.cumulativeLogprob).toBeCloseTo(sum, 4);
  });
});

describe('generation_config.json defaults', () => {
  it("llama3-rand and qwen2-rand apply their defaults under 'auto' and not under 'vllm'; user fields win", async () => {
    for (const [model, expected] of [
      ['llama3-rand', { temperature: 0.6, topP: 0.9 }],
      ['qwen2-rand', { temperature: 0.7, topP: 0.8, topK: 20, repetitionPenalty: 1.05 }],
    ] as const) {
      const auto = await loadLLM(modelDir(model));
      expect(auto.getDefaultSamplingParams()).toMatchObject(expected);
      expect(auto.engine.withModelDefaults(new SamplingParams({ temperature: 0.3 }))).toMatchObject({ ...expected, temperature: 0.3 });
      await auto.dispose();
      const vllm = await loadLLM(modelDir(model), { generationConfig: 'vllm' });
      expect(vllm.getDefaultSamplingParams()).toMatchObject({ temperature: 1, topP: 1, topK: 0, repetitionPenalty: 1 });
      await vllm.dispose();
    }
  });

  it("takes a folder's generation_config.json instead of the model's (vLLM's generation_config=DIR)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wllm-gc-'));
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ temperature: 0.25, top_k: 7, max_new_tokens: 5 }));
    const lines: string[] = [];
    const llm = await loadLLM(modelDir('llama3-rand'), { generationConfig: dir, log: (m) => lines.push(m) });
    // The folder's fields replace the model's (temperature 0.6, top_p 0.9): top_p is back to vLLM's 1.
    expect(llm.getDefaultSamplingParams()).toMatchObject({ temperature: 0.25, topK: 7, topP: 1, maxTokens: 5 });
    const [out] = await llm.generate('Once upon a time');
    expect(out.outputs[0].tokenIds).toHaveLength(5);
    expect(lines.join('\n')).toMatch(/the given generation config.*"temperature":0\.25/);
    await llm.dispose();
    const empty = mkdtempSync(join(tmpdir(), 'wllm-gc-'));
    await expect(loadLLM(modelDir('llama3-rand'), { generationConfig: empty })).rejects.toThrow(/generation_config\.json does not exist/);
  });
});

describe('generation_config.json notice', () => {
  it('says once which defaults came from the model', async () => {
    const lines: string[] = [];
    const llm = await loadLLM(modelDir('qwen2-rand'), { log: (m) => lines.push(m) });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/generation_config\.json.*"temperature":0\.7.*"topK":20/);
    await llm.dispose();
    const quiet: string[] = [];
    await (await loadLLM(modelDir('qwen2-rand'), { log: (m) => quiet.push(m), generationConfig: 'vllm' })).dispose();
    expect(quiet).toHaveLength(0);
  });
});

describe('GPU candidate sampling', () => {
  it('gives the same tokens as full-row sampling, seeded, with every filter', async () => {
    const llm = await loadLLM(modelDir('tinystories-656K'));
    const params = [
      { temperature: 0.8 },
      { temperature: 1, topK: 20 },
      { temperature: 0.9, topP: 0.9 },
      { temperature: 1, minP: 0.05 },
      { temperature: 0.7, topK: 40, topP: 0.95, minP: 0.02 },
      { temperature: 1.3, topK: 100 },
    ].map((p, i) => new SamplingParams({ ...p, seed: 40 + i, maxTokens: 24, ignoreEos: true }));
    const prompts = params.map((_, i) => `Once upon a time, there was a ${['cat', 'dog', 'girl', 'boy', 'bird', 'tree'][i]}`);
    const on = await llm.generate(prompts, params);
    gpuRunnerOf(llm.engine).candidateSampling = false;
    const off = await llm.generate(prompts, params);
    expect(on.map((o) => o.outputs[0].tokenIds)).toEqual(off.map((o) => o.outputs[0].tokenIds));
    await llm.dispose();
  });
});
