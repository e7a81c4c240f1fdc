/**
 * Speculative decoding with a draft model (src/spec-decode/draft-model-proposer.ts): the config and its checks, the
 * rejection sampler with draft distributions q (chi-square), and end to end on the trained tinystories-656K with two
 * drafts: the target itself (every draft must be accepted: acceptance 100% in the metrics) and its first layer alone
 * (a truncated copy written in set-up: drafts accepted and rejected). Greedy outputs token for token equal to those
 * without speculation (batches, the CPU runner and the WebGPU one on lavapipe, max_tokens and stop strings,
 * preemption and prefix caching); random sampling distributed as without speculation (two-sample chi-square).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, SamplingParams, type LLM, type LLMOptions, type RequestOutput } from '../bindings/node/index.js';
import { parseCommand } from '../bindings/node/cli/args.js';
import { engineOptions } from '../bindings/node/cli/flags.js';
import { SERVE } from '../bindings/node/cli/serve.js';
import { Generator } from '../src/sampling/generator.js';
import { rejectRandom } from '../src/sampling/rejection-sampler.js';
import { ServerMetrics } from '../src/server/metrics.js';
import { parseSpeculativeConfig } from '../src/spec-decode/config.js';
import type { DraftModelProposer } from '../src/spec-decode/draft-model-proposer.js';
import { CpuModelRunner } from '../src/cpu/cpu-model-runner.js';
import { GpuModelRunner } from '../src/worker/gpu-model-runner.js';
import { chiSquare, CRIT, expectSameDistribution } from './helpers/chi-square.js';
import { truncatedDraft } from './helpers/draft-model.js';
import { loadLLM } from './helpers/llm.js';
import { DEFAULT_MODEL, modelDir } from './helpers/paths.js';

describe('parseSpeculativeConfig: draft_model', () => {
  it("takes vLLM's keys (a model without a method is a draft model), with defaults", () => {
    const base = { method: 'draft_model', model: 'org/draft', numSpeculativeTokens: 3, draftSampleMethod: 'greedy', revision: null, quantization: null };
    expect(parseSpeculativeConfig({ model: 'org/draft', num_speculative_tokens: 3 })).toEqual(base);
    expect(parseSpeculativeConfig({ method: 'draft_model', model: 'org/draft', numSpeculativeTokens: 3, draft_sample_method: 'probabilistic', revision: 'v2' })).toEqual({ ...base, draftSampleMethod: 'probabilistic', revision: 'v2' });
  });
  it('refuses what it cannot do, naming the field', () => {
    const bad: [unknown, RegExp][] = [
      [{ method: 'draft_model', numSpeculativeTokens: 2 }, /speculativeConfig.model must name the draft model/],
      [{ method: 'draft_model', model: '', numSpeculativeTokens: 2 }, /speculativeConfig.model must name/],
      [{ model: 'x' }, /numSpeculativeTokens is required/],
      [{ model: 'x', numSpeculativeTokens: 17 }, /numSpeculativeTokens must be an integer in \[1, 16\]/],
      [{ model: 'x', numSpeculativeTokens: 2, draftSampleMethod: 'nucleus' }, /draftSampleMethod must be 'greedy' or 'probabilistic'/],
      [{ model: 'x', numSpeculativeTokens: 2, promptLookupMax: 3 }, /method 'draft_model' does not take: promptLookupMax/],
      [{ method: 'ngram', model: 'x', numSpeculativeTokens: 2 }, /method 'ngram' does not take: model/],
      [{ method: 'eagle', model: 'x', numSpeculativeTokens: 2 }, /method must be 'ngram' or 'draft_model'/],
    ];
    for (const [c, msg] of bad) expect(() => parseSpeculativeConfig(c), JSON.stringify(c)).toThrow(msg);
  });
  it('serve --speculative-config takes a draft model', () => {
    const o = engineOptions(parseCommand(SERVE, ['m', '--speculative-config', '{"model": "org/draft", "num_speculative_tokens": 5}']).values, 'm');
    expect(parseSpeculativeConfig(o.speculativeConfig)).toMatchObject({ method: 'draft_model', model: 'org/draft', numSpeculativeTokens: 5 });
  });
});


describe('rejection sampler with draft distributions', () => {
  const p0 = Float64Array.from([0.05, 0.3, 0.1, 0.25, 0.2, 0.1]);
  const p1 = Float64Array.from([0.4, 0.1, 0.1, 0.1, 0.2, 0.1]);
  const N = 40000;
  it('drafts drawn from q: each position is distributed as the target, acceptance is sum min(p, q) (chi-square)', () => {
    const qs = [Float64Array.from([0.5, 0.1, 0.1, 0.1, 0.1, 0.1]), Float64Array.from([0, 0.6, 0, 0.4, 0, 0]), p0];
    for (const q of qs) {
      const g = new Generator(4321);
      const first = new Array(6).fill(0);
      const second = new Array(6).fill(0);
      let accepted = 0;
      for (let i = 0; i < N; i++) {
        // The draft is drawn from q by inverse CDF, as the draft-model proposer does.
        let u = g.uniform();
        let x = 0;
        while (x < 5 && (u -= q[x]) >= 0) x++;
        const out = rejectRandom([x], [p0, p1], g, [q]);
        first[out[0]]++;
        if (out.length === 2) {
          accepted++;
          second[out[1]]++;
        }
      }
      const c1 = chiSquare(first, p0, N);
      expect(c1.stat, `first token, q ${q.join(',')}`).toBeLessThan(CRIT[c1.df]);
      const c2 = chiSquare(second, p1, accepted);
      expect(c2.stat, `bonus token, q ${q.join(',')}`).toBeLessThan(CRIT[c2.df]);
      const rate = p0.reduce((acc, p, t) => acc + Math.min(p, q[t]), 0);
      expect(Math.abs(accepted / N - rate)).toBeLessThan(4 * Math.sqrt((rate * (1 - rate)) / N) + 1e-9);
    }
  });
  it('q = p accepts every draft', () => {
    const g = new Generator(5);
    for (const x of [1, 3, 4]) for (let i = 0; i < 100; i++) expect(rejectRandom([x], [p0, p1], g, [p0])[0]).toBe(x);
  });
});

// Stories the model continues with repeats, and plain openings.
const PROMPTS = [
  'Once upon a time, there was a little girl named Lily. Lily liked to play.',
  'Tom had a red ball. Tom had a red ball. Tom had a',
  'The cat sat on the mat. The dog sat on the mat. The bird',
  'One day, a boy went to the park.',
];
const greedy = (maxTokens: number, extra: Record<string, unknown> = {}) => new SamplingParams({ temperature: 0, maxTokens, ignoreEos: true, ...extra });
const ids = (outs: RequestOutput[]) => outs.map((o) => o.outputs[0].tokenIds);
const K = 4;

let shallow = ''; // the target's first layer alone
beforeAll(() => {
  shallow = truncatedDraft(DEFAULT_MODEL, 1);
});
afterAll(() => {
  if (shallow) rmSync(shallow, { recursive: true, force: true });
});

describe('draft model validation', () => {
  it('a draft whose vocabulary differs from the target is refused before serving, naming both', async () => {
    // stories260K: vocabulary 512; the target tinystories-656K: 2048.
    const err = await loadLLM(DEFAULT_MODEL, { device: 'cpu', speculativeConfig: { model: modelDir('stories260K'), numSpeculativeTokens: 2 } }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.field).toBe('speculativeConfig.model');
    expect(err.message).toMatch(/vocabulary of 512 tokens but the target .* has 2048/);
    const missing = await loadLLM(DEFAULT_MODEL, { device: 'cpu', speculativeConfig: { model: '/nonexistent/draft', numSpeculativeTokens: 2 } }).catch((e) => e);
    expect(String(missing)).toMatch(/nonexistent\/draft/);
  });
});

describe.each([
  ['cpu', { device: 'cpu' }],
  ['webgpu (lavapipe)', { device: 'webgpu' }],
] as [string, LLMOptions][])('draft-model speculative decoding end to end, %s', (_, device) => {
  let base: LLM;
  let self: LLM;
  let small: LLM;
  beforeAll(async () => {
    base = await loadLLM(DEFAULT_MODEL, { ...device, asyncScheduling: false });
    self = await loadLLM(DEFAULT_MODEL, { ...device, speculativeConfig: { model: DEFAULT_MODEL, numSpeculativeTokens: K } });
    small = await loadLLM(DEFAULT_MODEL, { ...device, speculativeConfig: { method: 'draft_model', model: shallow, num_speculative_tokens: K } });
    // The draft runs on the target's backend.
    const runnerOf = (llm: LLM) => (llm.engine as unknown as { proposer: DraftModelProposer }).proposer.runner;
    const kind = device.device === 'cpu' ? CpuModelRunner : GpuModelRunner;
    for (const llm of [self, small]) expect(runnerOf(llm)).toBeInstanceOf(kind);
    expect(small.engine.runner).toBeInstanceOf(kind);
  });
  afterAll(() => {
    base?.dispose();
    self?.dispose();
    small?.dispose();
  });

  it('draft = the target: greedy outputs equal, every draft accepted (acceptance 100% in the metrics)', async () => {
    const want = await base.generate(PROMPTS, greedy(40));
    const got = await self.generate(PROMPTS, greedy(40));
    expect(ids(got)).toEqual(ids(want));
    const s = self.engine.stats.specDecoding!;
    expect(s.numDrafts).toBeGreaterThan(0);
    expect(s.numAcceptedTokens).toBe(s.numDraftTokens);
    expect(s.acceptanceRate).toBe(1);
    // Every step of a request verifies k drafts until the last few tokens: position j accepted as often as drafted.
    expect(s.numAcceptedTokensPerPos[0]).toBe(s.numDrafts);
    const text = new ServerMetrics('m', self.engine).render();
    expect(text).toContain(`vllm:spec_decode_num_accepted_tokens_total{model_name="m"} ${s.numDraftTokens}.0`);
    expect(text).toContain(`vllm:spec_decode_num_draft_tokens_total{model_name="m"} ${s.numDraftTokens}.0`);
  });

  it('a one-layer draft: greedy outputs equal in a batch, drafts accepted and rejected', async () => {
    const want = await base.generate(PROMPTS, greedy(40));
    const got = await small.generate(PROMPTS, greedy(40));
    expect(ids(got)).toEqual(ids(want));
    expect(got.map((o) => o.outputs[0].text)).toEqual(want.map((o) => o.outputs[0].text));
    const s = small.engine.stats.specDecoding!;
    expect(s.numAcceptedTokens).toBeGreaterThan(0);
    expect(s.numAcceptedTokens).toBeLessThan(s.numDraftTokens);
    for (let j = 1; j < K; j++) expect(s.numAcceptedTokensPerPos[j]).toBeLessThanOrEqual(s.numAcceptedTokensPerPos[j - 1]);
  });

  it('max_tokens is exact and stop strings end the output where they do without speculation', async () => {
    for (const n of [1, 2, 3, 5, 6, 11]) {
      const [want] = await base.generate(PROMPTS[1], greedy(n));
      for (const llm of [self, small]) {
        const [got] = await llm.generate(PROMPTS[1], greedy(n));
        expect(got.outputs[0].tokenIds).toEqual(want.outputs[0].tokenIds);
        expect(got.outputs[0].finishReason).toBe('length');
      }
    }
    const [full] = await base.generate(PROMPTS[0], greedy(40));
    const text = full.outputs[0].text;
    for (const stop of [text.slice(20, 26), text.slice(-8, -3)]) {
      const [want] = await base.generate(PROMPTS[0], greedy(40, { stop: [stop] }));
      for (const llm of [self, small]) {
        const [got] = await llm.generate(PROMPTS[0], greedy(40, { stop: [stop] }));
        expect(got.outputs[0].text).toBe(want.outputs[0].text);
        expect(got.outputs[0].finishReason).toBe(want.outputs[0].finishReason);
      }
    }
  });

  it('seeded random sampling reproduces with the draft', async () => {
    const seeded = new SamplingParams({ temperature: 0.8, topP: 0.95, maxTokens: 24, seed: 11, ignoreEos: true });
    const a = await small.generate(PROMPTS, seeded);
    const b = await small.generate(PROMPTS, seeded);
    expect(ids(a)).toEqual(ids(b));
  });
});


describe('draft-model speculative decoding with random sampling (CPU)', () => {
  it('outputs are distributed as without speculation, greedy and probabilistic drafts (two-sample chi-square)', async () => {
    const opts: LLMOptions = { device: 'cpu', maxNumSeqs: 64 };
    const base = await loadLLM(DEFAULT_MODEL, opts);
    const greedyDraft = await loadLLM(DEFAULT_MODEL, { ...opts, speculativeConfig: { model: shallow, numSpeculativeTokens: 3 } });
    const sampledDraft = await loadLLM(DEFAULT_MODEL, { ...opts, speculativeConfig: { model: shallow, numSpeculativeTokens: 3, draftSampleMethod: 'probabilistic' } });
    try {
      const R = 400;
      const draw = (llm: LLM, seed0: number) =>
        llm.generate(
          Array.from({ length: R }, () => PROMPTS[1]),
          Array.from({ length: R }, (_, i) => new SamplingParams({ temperature: 0.7, maxTokens: 8, ignoreEos: true, seed: seed0 + i })),
        );
      const a = ids(await draw(base, 0));
      for (const [llm, seed0] of [
        [greedyDraft, 100000],
        [sampledDraft, 200000],
      ] as const) {
        const b = ids(await draw(llm, seed0));
        const st = llm.engine.stats.specDecoding!;
        expect(st.numAcceptedTokens).toBeGreaterThan(100);
        expect(st.numAcceptedTokens).toBeLessThan(st.numDraftTokens);
        expectSameDistribution(a, b, 0, 8);
      }
      // Drafts drawn from the request's own generator: a seeded request reproduces with probabilistic drafts too.
      const again = ids(await sampledDraft.generate(PROMPTS, PROMPTS.map((_, i) => new SamplingParams({ temperature: 0.9, maxTokens: 16, ignoreEos: true, seed: 7 + i }))));
      expect(ids(await sampledDraft.generate(PROMPTS, PROMPTS.map((_, i) => new SamplingParams({ temperature: 0.9, maxTokens: 16, ignoreEos: true, seed: 7 + i }))))).toEqual(again);
    } finally {
      base.dispose();
      greedyDraft.dispose();
      sampledDraft.dispose();
    }
  });
});

describe('draft-model speculative decoding under memory pressure (CPU)', () => {
  it('greedy outputs equal without speculation with preemption and prefix caching; no block leaks', async () => {
    const opts: LLMOptions = { device: 'cpu', blockSize: 4, numGpuBlocksOverride: 40, maxNumSeqs: 8, maxNumBatchedTokens: 64 };
    const base = await loadLLM(DEFAULT_MODEL, opts);
    const self = await loadLLM(DEFAULT_MODEL, { ...opts, speculativeConfig: { model: DEFAULT_MODEL, numSpeculativeTokens: K } });
    const small = await loadLLM(DEFAULT_MODEL, { ...opts, speculativeConfig: { model: shallow, numSpeculativeTokens: K } });
    try {
      const prompts = [...PROMPTS, ...PROMPTS.map((p) => `${p} ${p}`)];
      const want = await base.generate(prompts, greedy(40));
      for (const llm of [self, small]) {
        expect(ids(await llm.generate(prompts, greedy(40)))).toEqual(ids(want));
        expect(llm.engine.stats.numPreemptions).toBeGreaterThan(0);
        expect(llm.engine.stats.prefixCacheHits).toBeGreaterThan(0);
        expect(llm.engine.stats.kvCacheUsage).toBe(0);
      }
      // The target as its own draft stays exact through preemption and prefix hits: every draft accepted.
      const s = self.engine.stats.specDecoding!;
      expect(s.numAcceptedTokens).toBe(s.numDraftTokens);
      expect(small.engine.stats.specDecoding!.numAcceptedTokens).toBeGreaterThan(0);
    } finally {
      base.dispose();
      self.dispose();
      small.dispose();
    }
  });
});
