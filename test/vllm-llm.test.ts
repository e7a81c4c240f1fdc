/**
 * vLLM's offline assertions (tests/entrypoints/llm/*, tests/samplers/*, vllm/sampling_params.py) mirrored on the
 * test models: EOS ids of generation_config.json as stop tokens, priority scheduling, RequestOutput.metrics,
 * SamplingParams validation. Random weights: shapes, counts, ids and validations, never text.
 * The coverage table is test/VLLM_COVERAGE.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { InvalidArgumentError } from '../src/errors.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

describe('SamplingParams validation (vllm/sampling_params.py _verify_args, _verify_greedy_sampling)', () => {
  it('refuses n > 1 with greedy sampling, as vLLM', () => {
    expect(() => new SamplingParams({ temperature: 0, n: 2 })).toThrow(/n must be 1 when using greedy sampling, got 2/);
    expect(() => new SamplingParams({ temperature: 1e-6, n: 3 })).toThrow(InvalidArgumentError);
    expect(new SamplingParams({ temperature: 0, n: 1 }).n).toBe(1);
    expect(new SamplingParams({ temperature: 0.5, n: 4 }).n).toBe(4);
  });

  it('refuses bad_words with an empty string, or of the wrong shape', () => {
    expect(() => new SamplingParams({ badWords: ['ok', ''] })).toThrow(/badWords cannot contain an empty string/);
    for (const bad of ['word', [1, 2], [['a']], { a: 1 }]) {
      expect(() => new SamplingParams({ badWords: bad as never })).toThrow(/badWords must be a list of strings or null/);
    }
    expect(new SamplingParams({ badWords: ['a', 'b'] }).badWords).toEqual(['a', 'b']);
  });

  it("keeps vLLM's other checks (test_sampling_params validation cases)", () => {
    const cases: [object, RegExp][] = [
      [{ n: 0 }, /n must be an integer >= 1/],
      [{ presencePenalty: 2.5 }, /presencePenalty must be in \[-2, 2\]/],
      [{ frequencyPenalty: -3 }, /frequencyPenalty must be in \[-2, 2\]/],
      [{ repetitionPenalty: 0 }, /repetitionPenalty must be greater than zero/],
      [{ temperature: -1 }, /temperature must be non-negative/],
      // vLLM >= 0.24 (#44965): temperature must be in [0, 2]; infinity is not a finite number.
      [{ temperature: 2.01 }, /temperature must be in \[0, 2\], got 2.01/],
      [{ temperature: Infinity }, /temperature must be a finite number/],
      [{ topP: 0 }, /topP must be in \(0, 1\]/],
      [{ topK: -2 }, /topK must be/],
      [{ minP: 1.5 }, /minP must be in \[0, 1\]/],
      [{ maxTokens: 0 }, /maxTokens must be at least 1/],
      [{ minTokens: -1 }, /minTokens must be greater than or equal to 0/],
      [{ minTokens: 5, maxTokens: 4 }, /minTokens must be less than or equal to maxTokens=4/],
      [{ logprobs: -2 }, /logprobs must be non-negative or -1/],
      [{ promptLogprobs: -2 }, /promptLogprobs must be non-negative or -1/],
      [{ stop: ['a', ''] }, /stop cannot contain an empty string/],
    ];
    for (const [init, message] of cases) expect(() => new SamplingParams(init), JSON.stringify(init)).toThrow(message);
    expect(new SamplingParams({ temperature: 2 }).temperature).toBe(2);
  });
});

describe('LLM on tinystories-656K (tests/entrypoints/llm)', () => {
  let llm: LLM;
  let prio: LLM;
  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'));
    prio = await loadLLM(modelDir('tinystories-656K'), { schedulingPolicy: 'priority', maxNumSeqs: 1 });
  });
  afterAll(async () => {
    await llm?.dispose();
    await prio?.dispose();
  });

  it("the tokenizer's EOS ends a sequence with stop_reason null (vLLM's primary eos_token_id)", async () => {
    const [out] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 8, allowedTokenIds: [2] }));
    expect(out.outputs[0]).toMatchObject({ tokenIds: [2], finishReason: 'stop', stopReason: null, text: '' });
  });

  it('refuses a bad word that tokenizes to nothing (update_from_tokenizer)', async () => {
    await expect(llm.generate('Tom', new SamplingParams({ badWords: ['cat', '   '] }))).rejects.toThrow(/badWords entries must tokenize to at least one token/);
    await expect(llm.generate('Tom', new SamplingParams({ badWords: [' cat'], maxTokens: 2 }))).resolves.toHaveLength(1);
  });

  it('RequestOutput.metrics carries the request timestamps, in order (RequestStateStats)', async () => {
    const before = Date.now() / 1000;
    const [out] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 5, ignoreEos: true }));
    const m = out.metrics!;
    expect(m.arrivalTime).toBeGreaterThanOrEqual(before - 1);
    expect(m.arrivalTime).toBeLessThanOrEqual(Date.now() / 1000);
    expect(m.scheduledTs).not.toBeNull();
    expect(m.queuedTs).toBeLessThanOrEqual(m.scheduledTs!);
    expect(m.scheduledTs!).toBeLessThanOrEqual(m.firstTokenTs!);
    expect(m.firstTokenTs!).toBeLessThanOrEqual(m.lastTokenTs!);
    expect(m.firstTokenLatency).toBeGreaterThan(0);
    expect(m.numGenerationTokens).toBe(5);
    expect(JSON.parse(JSON.stringify(out)).metrics.numGenerationTokens).toBe(5);
  });

  it('the engine records the phase histograms and request params of each finished request', async () => {
    const m = llm.engine.metrics;
    const before = { n: m.requestParamsN.count, q: m.requestQueueTime.count, it: m.iterationTokens.count, max: m.requestParamsMaxTokens.sum };
    await llm.generate(['Tom', 'Lily'], new SamplingParams({ temperature: 0.8, n: 2, seed: 1, maxTokens: 3, ignoreEos: true }));
    expect(m.requestParamsN.count - before.n).toBe(2);
    expect(m.requestQueueTime.count - before.q).toBe(2);
    expect(m.requestParamsMaxTokens.sum - before.max).toBe(6);
    expect(m.iterationTokens.count).toBeGreaterThan(before.it);
    expect(m.requestDecodeTime.count).toBe(m.requestPrefillTime.count);
  });

  it('priority: refused under fcfs (as vLLM), one per prompt, lower first under the priority policy', async () => {
    const p = new SamplingParams({ temperature: 0, maxTokens: 2 });
    await expect(llm.generate(['a', 'b'], p, { priority: [0, 1] })).rejects.toThrow(/Priority scheduling is not enabled/);
    await expect(llm.generate(['a', 'b'], p, { priority: [0, 0] })).resolves.toHaveLength(2);
    await expect(prio.generate(['a', 'b'], p, { priority: [1] })).rejects.toThrow(/one per prompt/);
    await expect(prio.generate(['a'], p, { priority: [0.5] })).rejects.toThrow(/priority must be an integer/);
    // One sequence a step: the low-priority request, submitted first, runs after the high-priority one.
    const outs = await prio.generate(['Tom went', 'Lily saw'], new SamplingParams({ temperature: 0, maxTokens: 4, ignoreEos: true }), { priority: [5, -5] });
    expect(outs.map((o) => o.outputs[0].tokenIds.length)).toEqual([4, 4]);
    expect(outs[1].metrics!.firstTokenTs!).toBeLessThan(outs[0].metrics!.firstTokenTs!);
  });

  it('truncation keeps the last tokens by default, the first with truncationSide right', async () => {
    const ids = [1, 400, 401, 402, 403, 404];
    const params = new SamplingParams({ temperature: 0, maxTokens: 1, truncatePromptTokens: 3 });
    const left = llm.engine.prepareRequest({ prompt: { promptTokenIds: ids }, params });
    const right = llm.engine.prepareRequest({ prompt: { promptTokenIds: ids }, params, truncationSide: 'right' });
    expect(left.promptTokenIds).toEqual([402, 403, 404]);
    expect(right.promptTokenIds).toEqual([1, 400, 401]);
  });
});

describe('EOS ids from generation_config.json are stop tokens (llama3-rand: eos [128001, 128008, 128009], tokenizer <|eot_id|>)', () => {
  let llm: LLM;
  beforeAll(async () => {
    llm = await loadLLM(modelDir('llama3-rand'));
  });
  afterAll(async () => {
    await llm?.dispose();
  });

  it('stop_reason is the id for the extra EOS ids, null for the tokenizer EOS; ignoreEos ignores them all', async () => {
    const run = async (allowed: number[], ignoreEos = false) =>
      (await llm.generate('Hi', new SamplingParams({ temperature: 0, maxTokens: 3, allowedTokenIds: allowed, ignoreEos })))[0].outputs[0];
    expect(llm.engine.primaryEosTokenId).toBe(128009);
    for (const id of [128001, 128008]) expect(await run([id])).toMatchObject({ finishReason: 'stop', stopReason: id, tokenIds: [id] });
    expect(await run([128009])).toMatchObject({ finishReason: 'stop', stopReason: null, tokenIds: [128009] });
    expect(await run([128001], true)).toMatchObject({ finishReason: 'length', stopReason: null, tokenIds: [128001, 128001, 128001] });
  });
});
