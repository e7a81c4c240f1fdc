/**
 * Every fixture model against Hugging Face transformers' goldens: prompt token ids, top-20 logprobs of the first
 * generated token, argmax at every prompt position, greedy continuations; plus the llama2.c reference story.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SamplingParams, type LLM, type RequestOutput } from '../bindings/node/index.js';
import { loadGoldens, modelDir } from './helpers/paths.js';
import { goldenChecks, goldenRun } from './helpers/golden-checks.js';
import { loadLLM } from './helpers/llm.js';

const goldens = loadGoldens();
const TRAINED = new Set(['stories260K', 'tinystories-656K']);

describe.each(Object.keys(goldens))('%s', (model) => {
  const g = goldens[model];
  let llm: LLM;
  let outs: RequestOutput[];
  beforeAll(async () => {
    llm = await loadLLM(modelDir(model));
    outs = await goldenRun(llm, g.prompts);
  });
  afterAll(() => llm?.dispose());
  goldenChecks(g.prompts, () => outs, { allSteps: TRAINED.has(model) });
});

describe('stories260K, llama2.c reference', () => {
  it('reproduces llama2.c greedy output for 200 tokens from BOS', async () => {
    const llm = await loadLLM(modelDir('stories260K'));
    const expected = readFileSync(join(modelDir('stories260K'), 'llama2c-expected.txt'), 'utf8');
    const [out] = await llm.generate({ promptTokenIds: [1] }, new SamplingParams({ temperature: 0, maxTokens: 200, ignoreEos: true }));
    expect(out.outputs[0].tokenIds).toHaveLength(200);
    // llama2.c's file ends after the first story (its run stopped there); the 200 tokens continue the same text.
    expect(out.outputs[0].text.startsWith(expected)).toBe(true);
    expect(expected.length).toBeGreaterThan(300);
    await llm.dispose();
  });
});

describe.each(['llama3-rand', 'qwen3-rand', 'phi3-rand', 'tinystories-656K'])('%s on the f16 path', (model) => {
  it('matches the top-20 logprobs within 3e-2 with f16 weights and KV cache', async () => {
    const llm = await loadLLM(modelDir(model), { dtype: 'float16' });
    expect(llm.engine.runner.limits.kvDtype).toBe('f16');
    const g = goldens[model];
    const outs = await llm.generate(g.prompts.map((p) => p.text), new SamplingParams({ temperature: 0, maxTokens: 1, logprobs: 20 }));
    g.prompts.forEach((p, i) => {
      const lp = outs[i].outputs[0].logprobs![0];
      p.last_logits_top20.ids.forEach((id, r) => {
        // Near-ties may fall just outside our top 20; the golden's top-5 must be there.
        const mine = lp.get(id);
        if (mine) expect(Math.abs(mine.logprob - p.last_logprobs_top20[r])).toBeLessThan(3e-2);
        else expect(r).toBeGreaterThanOrEqual(5);
      });
    });
    await llm.dispose();
  });
});
