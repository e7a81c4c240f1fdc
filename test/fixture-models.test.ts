/**
 * The fixture checkpoints of test/fixtures (tiny random models of the architectures the engine is growing into, made
 * by test/fixtures/make_fixtures.py) against Hugging Face transformers' goldens, compared as models.test.ts compares
 * the shared models: prompt token ids, top-20 logprobs of the first generated token, argmax at every prompt position,
 * greedy continuations while the golden margins are usable. Fixtures not in SUPPORTED must fail to load with an
 * error naming what is missing; move a fixture into SUPPORTED when its family lands.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig, SamplingParams, type LLM, type RequestOutput } from '../bindings/node/index.js';
import { assembleFixture, loadFixtureGoldens, readFixtureConfig, type AssembledModel } from './helpers/fixtures.js';
import { loadLLM } from './helpers/llm.js';
import type { GoldenPrompt } from './helpers/paths.js';

/** Fixtures that load and match their goldens today. */
const SUPPORTED = new Set([
  'gemma2-rand', 'gemma3-rand', 'phi4mini-rand', 'smollm3-rand', 'olmo2-rand', 'granite-rand',
  'mixtral-rand', 'qwen2moe-rand', 'qwen3moe-rand', 'opt350m-rand', 'llama-hd6-rand', 'gpt2-hd5-rand',
]);

/**
 * What the load error of an unsupported fixture must name: its architecture class, or, where the class is known
 * but a feature of the checkpoint is not, that feature's config key.
 */
const MISSING_FEATURE: Record<string, string> = {};

const goldens = loadFixtureGoldens();
const fixtures = Object.keys(goldens);
/** Measured f32-path error on logits is ~1e-5; greedy steps with a smaller golden margin are not compared. */
const MARGIN = 1e-3;

/** Greedy ids must match up to the first step whose golden margin is below MARGIN (that step is a tie-break). */
function comparableSteps(g: GoldenPrompt): number {
  const i = g.greedy_margins.findIndex((m) => m < MARGIN);
  return i < 0 ? g.greedy_ids.length : i + 1;
}

it('SUPPORTED names fixtures that exist', () => {
  for (const name of SUPPORTED) expect(fixtures).toContain(name);
});

describe.each(fixtures.filter((f) => SUPPORTED.has(f)))('%s', (name) => {
  const g = goldens[name];
  let model: AssembledModel;
  let llm: LLM;
  let outs: RequestOutput[];
  beforeAll(async () => {
    model = await assembleFixture(name);
    llm = await loadLLM(model.dir);
    const n = g.prompts[0].greedy_ids.length;
    const params = new SamplingParams({ temperature: 0, maxTokens: n, minTokens: n, logprobs: 20, promptLogprobs: 1 });
    outs = await llm.generate(g.prompts.map((p) => p.text), params);
  });
  afterAll(async () => {
    await llm?.dispose();
    await model?.dispose();
  });

  it('loads as its architecture', () => {
    expect(llm.engine.config.architecture).toBe(g.architecture);
  });

  it('tokenizes prompts like Hugging Face', () => {
    g.prompts.forEach((p, i) => expect(outs[i].promptTokenIds).toEqual(p.input_ids));
  });

  it('matches the top-20 logprobs of the first generated token', () => {
    g.prompts.forEach((p, i) => {
      const first = outs[i].outputs[0].logprobs![0];
      const byRank = [...first.entries()].filter(([, l]) => l.rank <= 20).sort((a, b) => a[1].rank - b[1].rank);
      expect(byRank.length).toBe(20);
      byRank.forEach(([id, l], r) => {
        const gid = p.last_logits_top20.ids[r];
        // Near-ties may swap ranks; then the values still agree.
        if (id !== gid) expect(Math.abs(p.last_logprobs_top20[r] - l.logprob)).toBeLessThan(1e-3);
        expect(l.logprob).toBeCloseTo(p.last_logprobs_top20[r], 3);
      });
    });
  });

  it('matches the argmax at every prompt position', () => {
    g.prompts.forEach((p, i) => {
      const plp = outs[i].promptLogprobs!;
      const argmax = plp.slice(1).map((m) => [...m!.entries()].find(([, l]) => l.rank === 1)![0]);
      argmax.push(outs[i].outputs[0].tokenIds[0]);
      expect(argmax).toEqual(p.argmax_per_position);
    });
  });

  it('greedy-decodes like Hugging Face', () => {
    g.prompts.forEach((p, i) => {
      const k = comparableSteps(p);
      expect(outs[i].outputs[0].tokenIds.slice(0, k)).toEqual(p.greedy_ids.slice(0, k));
      expect(outs[i].outputs[0].finishReason).toBe('length');
      // HF decodes the ids alone, which drops a SentencePiece leading space; we decode them after the prompt. HF ends
      // a text whose last token splits a UTF-8 character with U+FFFD; vLLM's detokenizer (and ours) holds it back.
      if (k === p.greedy_ids.length) expect(outs[i].outputs[0].text.trimStart()).toBe(p.greedy_text.trimStart().replace(/\uFFFD+$/, ''));
    });
  });

  it('reads config.v4.json (the transformers 4.x form) as config.json', async () => {
    const v5 = parseModelConfig(await readFixtureConfig(name), 'config.json');
    const v4 = parseModelConfig(await readFixtureConfig(name, 'config.v4.json'), 'config.v4.json');
    expect({ ...v4, raw: null }).toEqual({ ...v5, raw: null });
  });
});

describe.each(fixtures.filter((f) => !SUPPORTED.has(f)))('%s (not supported yet)', (name) => {
  it(`fails to load, naming what is missing`, async () => {
    const model = await assembleFixture(name);
    try {
      const expected = MISSING_FEATURE[name] ?? goldens[name].architecture;
      await expect(loadLLM(model.dir)).rejects.toThrow(expected);
    } finally {
      await model.dispose();
    }
  });
});
