/**
 * Speculative decoding (src/spec-decode/, src/sampling/rejection-sampler.ts, the scheduler's verify-and-roll-back):
 * the n-gram proposer and the config; the proposer port (an oracle's drafts in place of the n-gram ones); the
 * rejection sampler against known target distributions (chi-square over many seeded draws) and against the CPU
 * sampler's own draws; and end to end on the trained tinystories-656K, whose
 * stories repeat enough for drafts to be accepted: greedy outputs token for token equal to those without
 * speculation (batches, preemption, prefix caching, the CPU runner and the WebGPU one on lavapipe), max_tokens and
 * stop strings exact when one step accepts several tokens, seeded random runs reproducible, and the counters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, SamplingParams, type LLM, type LLMOptions, type RequestOutput } from '../bindings/node/index.js';
import { Generator } from '../src/sampling/generator.js';
import { rejectGreedy, rejectRandom, targetProbs } from '../src/sampling/rejection-sampler.js';
import { Sampler } from '../src/sampling/sampler.js';
import { parseSpeculativeConfig } from '../src/spec-decode/config.js';
import { MAX_LOOKBACK, NgramProposer } from '../src/spec-decode/ngram-proposer.js';
import type { Proposer } from '../src/spec-decode/proposer.js';
import { chiSquare, CRIT, expectSameDistribution } from './helpers/chi-square.js';
import { parseCommand, UsageError } from '../bindings/node/cli/args.js';
import { engineOptions } from '../bindings/node/cli/flags.js';
import { SERVE } from '../bindings/node/cli/serve.js';
import { ServerMetrics } from '../src/server/metrics.js';
import { Request } from '../src/engine/request.js';
import { Scheduler } from '../src/engine/scheduler.js';
import { loadLLM } from './helpers/llm.js';
import { DEFAULT_MODEL } from './helpers/paths.js';

const ngram = (k: number, lo: number, hi: number) => new NgramProposer({ method: 'ngram', numSpeculativeTokens: k, promptLookupMin: lo, promptLookupMax: hi });

describe('NgramProposer', () => {
  it('proposes what followed the earliest earlier occurrence of the longest matching suffix', () => {
    expect(ngram(3, 1, 3).lookup([1, 2, 3, 4, 1, 2])).toEqual([3, 4, 1]);
    // "2 3" occurs twice before: the earliest one (followed by 5 2) wins.
    expect(ngram(2, 2, 2).lookup([2, 3, 5, 2, 3, 9, 7, 2, 3])).toEqual([5, 2]);
    // The 3-gram "6 8 9" matches at 3 (followed by 7); the 1-gram "9" alone matches first at 1 (followed by 4).
    expect(ngram(1, 1, 3).lookup([5, 9, 4, 6, 8, 9, 7, 6, 8, 9])).toEqual([7]);
    expect(ngram(1, 1, 1).lookup([5, 9, 4, 6, 8, 9, 7, 6, 8, 9])).toEqual([4]);
  });
  it('proposes fewer than k tokens near the end, and nothing without a match of at least promptLookupMin', () => {
    expect(ngram(5, 1, 2).lookup([1, 2, 1])).toEqual([2, 1]);
    expect(ngram(3, 2, 3).lookup([1, 2, 3, 1])).toEqual([]);
    expect(ngram(3, 1, 3).lookup([5])).toEqual([]);
    expect(ngram(3, 1, 3).lookup([])).toEqual([]);
    expect(ngram(3, 1, 1).lookup([1, 1, 1, 1, 1], 2)).toEqual([1, 1]);
    expect(ngram(3, 1, 3).lookup([1, 1, 1, 1])).toEqual([1]); // the 3-gram at 0: one token follows it
  });
  it('looks back at most MAX_LOOKBACK tokens', () => {
    const far = [42, 43, ...new Array<number>(MAX_LOOKBACK).fill(0).map((_, i) => 100 + (i % 1000) * 0 + i), 42];
    expect(ngram(1, 1, 1).lookup(far)).toEqual([]);
    expect(ngram(1, 1, 1).lookup(far.slice(1 + 2))).toEqual([]);
    expect(ngram(1, 1, 1).lookup([42, 43, 1, 2, 42])).toEqual([43]);
  });
});

describe('parseSpeculativeConfig', () => {
  it("takes vLLM's keys, camelCase or snake_case, with defaults", () => {
    expect(parseSpeculativeConfig(undefined)).toBeNull();
    expect(parseSpeculativeConfig({ method: 'ngram', num_speculative_tokens: 4, prompt_lookup_max: 3 })).toEqual({ method: 'ngram', numSpeculativeTokens: 4, promptLookupMin: 3, promptLookupMax: 3 });
    expect(parseSpeculativeConfig({ method: 'ngram', numSpeculativeTokens: 2, promptLookupMin: 2 })).toEqual({ method: 'ngram', numSpeculativeTokens: 2, promptLookupMin: 2, promptLookupMax: 2 });
    expect(parseSpeculativeConfig({ method: 'ngram', numSpeculativeTokens: 2, promptLookupMin: 1, promptLookupMax: 4 })).toMatchObject({ promptLookupMin: 1, promptLookupMax: 4 });
  });
  it('refuses what it cannot do, naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ method: 'eagle', numSpeculativeTokens: 2 }, /method must be 'ngram'/],
      [{ method: 'ngram', model: 'some/draft', numSpeculativeTokens: 2 }, /method 'ngram' does not take: model/],
      [{ method: 'ngram' }, /numSpeculativeTokens is required/],
      [{ method: 'ngram', numSpeculativeTokens: 0 }, /numSpeculativeTokens must be an integer in \[1, 16\]/],
      [{ method: 'ngram', numSpeculativeTokens: 2.5 }, /numSpeculativeTokens/],
      [{ method: 'ngram', numSpeculativeTokens: 2, promptLookupMin: 4, promptLookupMax: 2 }, /promptLookupMin \(4\) must not exceed/],
      [{ method: 'ngram', numSpeculativeTokens: 2, lookahead: 1 }, /does not take: lookahead/],
      ['ngram', /must be an object/],
    ];
    for (const [c, msg] of bad) expect(() => parseSpeculativeConfig(c)).toThrow(msg);
    expect(() => parseSpeculativeConfig({ method: 'x' })).toThrow(InvalidArgumentError);
  });
});

describe('serve --speculative-config', () => {
  it("takes vLLM's JSON and refuses what is not a JSON object", () => {
    const o = engineOptions(parseCommand(SERVE, ['m', '--speculative-config', '{"method": "ngram", "num_speculative_tokens": 3}']).values, 'm');
    expect(parseSpeculativeConfig(o.speculativeConfig)).toEqual({ method: 'ngram', numSpeculativeTokens: 3, promptLookupMin: 5, promptLookupMax: 5 });
    expect(engineOptions(parseCommand(SERVE, ['m']).values, 'm').speculativeConfig).toBeUndefined();
    expect(() => engineOptions(parseCommand(SERVE, ['m', '--speculative-config', '{method: ngram}']).values, 'm')).toThrow(UsageError);
    expect(() => engineOptions(parseCommand(SERVE, ['m', '--speculative-config', '[1]']).values, 'm')).toThrow(/must be a JSON object/);
  });
});

describe('Scheduler with speculative decoding', () => {
  const mk = (maxTokens: number) => new Request({ requestId: 'r', promptTokenIds: [1, 2, 3, 4], samplingParams: { maxTokens }, eosTokenIds: [0] });
  it('schedules 1 + k tokens, rolls back rejected drafts and frees the blocks that held only them', () => {
    const s = new Scheduler({ maxNumBatchedTokens: 64, maxNumSeqs: 4, maxModelLen: 64, numSpeculativeTokens: 4 }, { numBlocks: 8, blockSize: 4 });
    s.addRequest(mk(20));
    s.updateFromOutput(s.schedule(), new Map([['r', [5]]]));
    s.updateDraftTokenIds(new Map([['r', [6, 7, 8, 9, 10]]])); // more than k: cut to 4
    let out = s.schedule();
    expect(out.scheduledRequests[0]).toMatchObject({ tokenIds: [5, 6, 7, 8, 9], startPosition: 4, blockTable: [0, 1, 2], needsSample: true, specTokenIds: [6, 7, 8, 9] });
    expect(out.totalNumScheduledTokens).toBe(5);
    // Every draft rejected: one token (the target's at the first draft's position); positions 6..8 were garbage.
    let o = s.updateFromOutput(out, new Map([['r', [11]]]));
    expect(o.outputs[0].newTokenIds).toEqual([11]);
    expect(s.kvCacheManager.blockTable('r')).toEqual([0, 1]);
    expect(o.stats.specDecoding).toMatchObject({ numDrafts: 1, numDraftTokens: 4, numAcceptedTokens: 0, numAcceptedTokensPerPos: [0, 0, 0, 0] });
    // No drafts: a plain decode from position 5 (the computed tokens were rolled back to 5).
    out = s.schedule();
    expect(out.scheduledRequests[0]).toMatchObject({ tokenIds: [11], startPosition: 5, blockTable: [0, 1] });
    expect(out.scheduledRequests[0].specTokenIds).toBeUndefined();
    s.updateFromOutput(out, new Map([['r', [12]]]));
    s.updateDraftTokenIds(new Map([['r', [13, 14]]]));
    out = s.schedule();
    expect(out.scheduledRequests[0]).toMatchObject({ tokenIds: [12, 13, 14], startPosition: 6, specTokenIds: [13, 14] });
    // Both accepted, plus the bonus token.
    o = s.updateFromOutput(out, new Map([['r', [13, 14, 15]]]));
    expect(o.outputs[0].newTokenIds).toEqual([13, 14, 15]);
    out = s.schedule();
    expect(out.scheduledRequests[0]).toMatchObject({ tokenIds: [15], startPosition: 9 });
    expect(o.stats.specDecoding).toMatchObject({ numDrafts: 2, numDraftTokens: 6, numAcceptedTokens: 2, numAcceptedTokensPerPos: [1, 1, 0, 0], acceptanceRate: 2 / 6 });
  });
  it('never verifies drafts past max_tokens, and a step that accepts several stops at the cap', () => {
    const s = new Scheduler({ maxNumBatchedTokens: 64, maxNumSeqs: 4, maxModelLen: 64, numSpeculativeTokens: 4 }, { numBlocks: 8, blockSize: 4 });
    s.addRequest(mk(3));
    s.updateFromOutput(s.schedule(), new Map([['r', [5]]]));
    s.updateDraftTokenIds(new Map([['r', [6, 7, 8, 9]]]));
    const out = s.schedule();
    // 1 output so far, cap 3: this step can add 2 tokens, so one draft (and its bonus) at most.
    expect(out.scheduledRequests[0]).toMatchObject({ tokenIds: [5, 6], specTokenIds: [6] });
    const o = s.updateFromOutput(out, new Map([['r', [6, 7]]]));
    expect(o.outputs[0]).toMatchObject({ newTokenIds: [6, 7], finishReason: 'length' });
    expect(s.kvCacheManager.numFreeBlocks).toBe(8);
  });
  it('drafts wait for the budget: a step with little left verifies fewer', () => {
    const s = new Scheduler({ maxNumBatchedTokens: 3, maxNumSeqs: 4, maxModelLen: 64, numSpeculativeTokens: 4 }, { numBlocks: 8, blockSize: 4 });
    s.addRequest(mk(20));
    let out = s.schedule();
    expect(out.totalNumScheduledTokens).toBe(3);
    s.updateFromOutput(out, new Map());
    out = s.schedule();
    s.updateFromOutput(out, new Map([['r', [5]]]));
    s.updateDraftTokenIds(new Map([['r', [6, 7, 8, 9]]]));
    out = s.schedule();
    expect(out.scheduledRequests[0]).toMatchObject({ tokenIds: [5, 6, 7], specTokenIds: [6, 7] });
  });
});


describe('rejection sampler', () => {
  it('greedy: accepts drafts while they equal the argmax, then the target token; the bonus when all are accepted', () => {
    expect(rejectGreedy([5, 7, 9], [5, 7, 2, 4])).toEqual([5, 7, 2]);
    expect(rejectGreedy([5, 7, 9], [1, 7, 9, 4])).toEqual([1]);
    expect(rejectGreedy([5, 7, 9], [5, 7, 9, 4])).toEqual([5, 7, 9, 4]);
    expect(rejectGreedy([], [3])).toEqual([3]);
    expect(() => rejectGreedy([1], [1])).toThrow(/2 targets/);
  });

  const p0 = Float64Array.from([0.05, 0.3, 0.1, 0.25, 0.2, 0.1]);
  const p1 = Float64Array.from([0.4, 0.1, 0.1, 0.1, 0.2, 0.1]);
  const N = 40000;
  it('random: each position is distributed as the target, whatever the draft (chi-square, seeded)', () => {
    for (const draft of [1, 0, 3]) {
      const g = new Generator(1234 + draft);
      const first = new Array(6).fill(0);
      const second = new Array(6).fill(0);
      let accepted = 0;
      for (let i = 0; i < N; i++) {
        const out = rejectRandom([draft], [p0, p1], g);
        first[out[0]]++;
        if (out.length === 2) {
          accepted++;
          second[out[1]]++;
        }
      }
      const c1 = chiSquare(first, p0, N);
      expect(c1.stat, `first token, draft ${draft}`).toBeLessThan(CRIT[c1.df]);
      // The bonus token, drawn only after an accept, is distributed as the next position's target.
      const c2 = chiSquare(second, p1, accepted);
      expect(c2.stat, `bonus token, draft ${draft}`).toBeLessThan(CRIT[c2.df]);
      // Acceptance probability is the target's probability of the draft.
      expect(Math.abs(accepted / N - p0[draft])).toBeLessThan(4 * Math.sqrt((p0[draft] * (1 - p0[draft])) / N) + 1e-9);
    }
  });
  it('random: a draft of probability 0 is never accepted, one of probability 1 always; seeded draws reproduce', () => {
    const g = new Generator(7);
    const point = Float64Array.from([0, 1, 0]);
    for (let i = 0; i < 200; i++) {
      expect(rejectRandom([0], [point, point], g)[0]).toBe(1);
      expect(rejectRandom([1], [point, point], g)).toEqual([1, 1]);
    }
    const run = () => {
      const h = new Generator(99);
      return Array.from({ length: 50 }, () => rejectRandom([2, 1], [p0, p1, p0], h));
    };
    expect(run()).toEqual(run());
  });
  it('targetProbs draws as the CPU sampler does (temperature, top-k, top-p, min-p; chi-square)', async () => {
    const V = 8;
    const logits = Float32Array.from([1.0, 2.5, 0.3, 2.0, -1.0, 1.7, 0.9, 2.5]);
    const sampler = await Sampler.create(V);
    const cases = [
      { temperature: 0.8 },
      { temperature: 1.3, topK: 4 },
      { temperature: 1, topP: 0.7 },
      { temperature: 1, minP: 0.3 },
      { temperature: 0.9, topK: 6, topP: 0.9, minP: 0.05 },
    ];
    for (const c of cases) {
      const params = new SamplingParams(c);
      const p = targetProbs(logits, params);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      const g = new Generator(2024);
      const counts = new Array(V).fill(0);
      const n = 6000;
      for (let i = 0; i < n; i++) counts[sampler.sample([logits], [{ params, generator: g, promptTokenIds: [], outputTokenIds: [] }])[0].tokenId]++;
      const { stat, df } = chiSquare(counts, p, n);
      expect(stat, JSON.stringify(c)).toBeLessThan(CRIT[df] ?? 30);
    }
    sampler.dispose();
  });
});

// Stories the model continues with repeats ("Once upon a time ... Once upon a time").
const PROMPTS = [
  'Once upon a time, there was a little girl named Lily. Lily liked to play. Once upon a time, there was a little',
  'Tom had a red ball. Tom had a red ball. Tom had a',
  'The cat sat on the mat. The dog sat on the mat. The bird',
  'One day, a boy went to the park.',
];
// Its random continuations repeat the prompt often enough (T 0.4: ~25% of drafts accepted).
const REPEAT = 'Lily and Ben are friends. They like to play. Lily and Ben are friends. They like to play. Lily and Ben';
const SPEC = { method: 'ngram', numSpeculativeTokens: 4, promptLookupMin: 1, promptLookupMax: 3 } as const;
const greedy = (maxTokens: number, extra: Record<string, unknown> = {}) => new SamplingParams({ temperature: 0, maxTokens, ignoreEos: true, ...extra });
const ids = (outs: RequestOutput[]) => outs.map((o) => o.outputs[0].tokenIds);

describe.each([
  ['cpu', { device: 'cpu' }],
  ['webgpu (lavapipe)', {}],
] as [string, LLMOptions][])('speculative decoding end to end, %s', (_, device) => {
  let base: LLM;
  let spec: LLM;
  beforeAll(async () => {
    base = await loadLLM(DEFAULT_MODEL, { ...device, asyncScheduling: false });
    spec = await loadLLM(DEFAULT_MODEL, { ...device, speculativeConfig: SPEC });
  });
  afterAll(() => {
    base?.dispose();
    spec?.dispose();
  });

  it('greedy: token for token the output without speculation, in one batch, with drafts accepted', async () => {
    const want = await base.generate(PROMPTS, greedy(48));
    const got = await spec.generate(PROMPTS, greedy(48));
    expect(ids(got)).toEqual(ids(want));
    expect(got.map((o) => o.outputs[0].text)).toEqual(want.map((o) => o.outputs[0].text));
    const s = spec.engine.stats.specDecoding!;
    expect(s.numDrafts).toBeGreaterThan(0);
    expect(s.numAcceptedTokens).toBeGreaterThan(0);
    expect(s.numAcceptedTokens).toBeLessThanOrEqual(s.numDraftTokens);
    expect(s.acceptanceRate).toBeCloseTo(s.numAcceptedTokens / s.numDraftTokens, 12);
    expect(s.numAcceptedTokensPerPos.reduce((a, b) => a + b, 0)).toBe(s.numAcceptedTokens);
    // Position j is accepted only if position j - 1 was.
    for (let j = 1; j < s.numAcceptedTokensPerPos.length; j++) expect(s.numAcceptedTokensPerPos[j]).toBeLessThanOrEqual(s.numAcceptedTokensPerPos[j - 1]);
    expect(base.engine.stats.specDecoding).toBeNull();
    // /metrics: vLLM's spec_decode counters, equal to the engine's.
    const text = new ServerMetrics('m', spec.engine).render();
    expect(text).toContain(`vllm:spec_decode_num_drafts_total{model_name="m"} ${s.numDrafts}.0`);
    expect(text).toContain(`vllm:spec_decode_num_draft_tokens_total{model_name="m"} ${s.numDraftTokens}.0`);
    expect(text).toContain(`vllm:spec_decode_num_accepted_tokens_total{model_name="m"} ${s.numAcceptedTokens}.0`);
    expect(text).toContain(`vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name="m",position="0"} ${s.numAcceptedTokensPerPos[0]}.0`);
    expect(new ServerMetrics('m', base.engine).render()).not.toContain('spec_decode');
  });

  it('a bad speculativeConfig fails LLM.create before loading, naming the field', async () => {
    await expect(loadLLM(DEFAULT_MODEL, { ...device, speculativeConfig: { method: 'ngram', numSpeculativeTokens: 99 } })).rejects.toThrow(/speculativeConfig.numSpeculativeTokens/);
  });

  it('max_tokens is exact when a step accepts several tokens (no overshoot)', async () => {
    for (const n of [1, 2, 3, 5, 7, 13]) {
      const [want] = await base.generate(PROMPTS[1], greedy(n));
      const [got] = await spec.generate(PROMPTS[1], greedy(n));
      expect(got.outputs[0].tokenIds).toEqual(want.outputs[0].tokenIds);
      expect(got.outputs[0].tokenIds.length).toBe(n);
      expect(got.outputs[0].finishReason).toBe('length');
    }
  });

  it('stop strings end the output where they do without speculation', async () => {
    const [full] = await base.generate(PROMPTS[1], greedy(40));
    const text = full.outputs[0].text;
    // Stop strings from the middle and the end of the text, found by the detokenizer mid-step.
    for (const stop of [text.slice(20, 26), text.slice(-8, -3), 'red ball']) {
      const [want] = await base.generate(PROMPTS[1], greedy(40, { stop: [stop] }));
      const [got] = await spec.generate(PROMPTS[1], greedy(40, { stop: [stop] }));
      expect(got.outputs[0].text).toBe(want.outputs[0].text);
      expect(got.outputs[0].finishReason).toBe(want.outputs[0].finishReason);
      expect(got.outputs[0].stopReason).toBe(want.outputs[0].stopReason);
    }
  });

  it('seeded random sampling reproduces, and non-speculated requests (logprobs) keep their outputs', async () => {
    const seeded = new SamplingParams({ temperature: 0.8, topP: 0.95, maxTokens: 32, seed: 11, ignoreEos: true });
    const a = await spec.generate(PROMPTS, seeded);
    const b = await spec.generate(PROMPTS, seeded);
    expect(ids(a)).toEqual(ids(b));
    const lp = greedy(24, { logprobs: 1 });
    expect(ids(await spec.generate(PROMPTS, lp))).toEqual(ids(await base.generate(PROMPTS, lp)));
  });
});

describe('speculative decoding with random sampling (CPU)', () => {
  it('the tokens after accepted or rejected drafts are distributed as without speculation (two-sample chi-square)', async () => {
    const base = await loadLLM(DEFAULT_MODEL, { device: 'cpu', maxNumSeqs: 64 });
    const spec = await loadLLM(DEFAULT_MODEL, { device: 'cpu', maxNumSeqs: 64, speculativeConfig: SPEC });
    try {
      // Seeds differ between the runs: the two samples are independent draws of the same distribution.
      const draw = (llm: LLM, seed0: number) =>
        llm.generate(
          Array.from({ length: 400 }, () => REPEAT),
          Array.from({ length: 400 }, (_, i) => new SamplingParams({ temperature: 0.4, maxTokens: 8, ignoreEos: true, seed: seed0 + i })),
        );
      const a = ids(await draw(base, 0));
      const b = ids(await draw(spec, 100000));
      const st = spec.engine.stats.specDecoding!;
      expect(st.numAcceptedTokens).toBeGreaterThan(100);
      expect(st.numAcceptedTokens).toBeLessThan(st.numDraftTokens); // rejections happened too
      // Positions 1..7 follow verified drafts.
      expectSameDistribution(a, b, 1, 8);
    } finally {
      base.dispose();
      spec.dispose();
    }
  });
});

describe('speculative decoding under memory pressure (CPU)', () => {
  it('greedy outputs equal without speculation with preemption and prefix caching, and no block leaks', async () => {
    const opts: LLMOptions = { device: 'cpu', blockSize: 4, numGpuBlocksOverride: 40, maxNumSeqs: 8, maxNumBatchedTokens: 64 };
    const base = await loadLLM(DEFAULT_MODEL, opts);
    const spec = await loadLLM(DEFAULT_MODEL, { ...opts, speculativeConfig: SPEC });
    try {
      const prompts = [...PROMPTS, ...PROMPTS.map((p) => `${p} ${p}`)];
      const want = await base.generate(prompts, greedy(40));
      const got = await spec.generate(prompts, greedy(40));
      expect(ids(got)).toEqual(ids(want));
      expect(spec.engine.stats.numPreemptions).toBeGreaterThan(0);
      expect(spec.engine.stats.prefixCacheHits).toBeGreaterThan(0);
      expect(spec.engine.stats.specDecoding!.numAcceptedTokens).toBeGreaterThan(0);
      expect(spec.engine.stats.kvCacheUsage).toBe(0);
    } finally {
      base.dispose();
      spec.dispose();
    }
  });
});

describe('the proposer port (EngineOptions.proposer, CPU)', () => {
  it('drafts in place of the n-gram one: right drafts all accepted, wrong ones none, the output unchanged', async () => {
    const base = await loadLLM(DEFAULT_MODEL, { device: 'cpu' });
    const [want] = await base.generate(PROMPTS[2], greedy(24));
    const V = base.engine.config.vocabSize;
    base.dispose();
    const wantIds = want.outputs[0].tokenIds;
    const promptLen = want.promptTokenIds.length;
    const asked = new Set<number>();
    let wrong = false;
    // An oracle: the greedy continuation of the tokens it is given, or (wrong) the next id of each of its tokens.
    const proposer: Proposer = {
      async propose(requests) {
        const drafts = new Map<string, { tokenIds: number[] }>();
        for (const r of requests) {
          asked.add(r.maxTokens);
          const n = r.outputTokenIds.length;
          const next = wantIds.slice(n, n + r.maxTokens);
          drafts.set(r.requestId, { tokenIds: wrong ? next.map((t) => (t + 1) % V) : next });
        }
        return drafts;
      },
      release() {},
      dispose() {},
    };
    const spec = await loadLLM(DEFAULT_MODEL, { device: 'cpu', speculativeConfig: SPEC, proposer });
    try {
      const [right] = await spec.generate(PROMPTS[2], greedy(24));
      expect(right.outputs[0].tokenIds).toEqual(wantIds);
      const s = { ...spec.engine.stats.specDecoding! };
      expect(s.numDraftTokens).toBeGreaterThan(0);
      expect(s.numAcceptedTokens).toBe(s.numDraftTokens);
      // k drafts asked for, fewer only where max_tokens is near.
      expect(Math.max(...asked)).toBe(SPEC.numSpeculativeTokens);
      expect(Math.min(...asked)).toBeGreaterThan(0);
      wrong = true;
      const [w] = await spec.generate(PROMPTS[2], greedy(24));
      expect(w.outputs[0].tokenIds).toEqual(wantIds);
      const t = spec.engine.stats.specDecoding!;
      expect(t.numDraftTokens).toBeGreaterThan(s.numDraftTokens);
      expect(t.numAcceptedTokens).toBe(s.numAcceptedTokens);
    } finally {
      spec.dispose();
    }
    await expect(loadLLM(DEFAULT_MODEL, { device: 'cpu', proposer })).rejects.toThrow(/proposer needs speculativeConfig/);
  });
});
