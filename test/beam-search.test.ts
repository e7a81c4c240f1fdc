/**
 * LLM.beamSearch with vLLM's algorithm: beamWidth 1 is greedy; a wide beam finds the optimum that an exact search
 * over every continuation finds (branch and bound over `logprobs: -1` per prefix); prompts give the same beams alone
 * or together (no beam corrupts another's KV); and beams of one prompt hold their shared prefix's KV blocks once.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BeamSearchParams, InvalidArgumentError, LLM, SamplingParams } from '../bindings/node/index.js';
import { beamSearch, beamSearchScore, type BeamSearchOutput, type BeamSearchParamsInit } from '../src/beam-search.js';
import type { LLMEngine } from '../src/engine/llm-engine.js';
import type { Scheduler } from '../src/engine/scheduler.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

describe('BeamSearchParams', () => {
  it('has vLLM defaults and names the bad field', () => {
    const p = new BeamSearchParams({ beamWidth: 4, maxTokens: 8 });
    expect({ ...p }).toEqual({ beamWidth: 4, maxTokens: 8, ignoreEos: false, temperature: 0, lengthPenalty: 1, includeStopStrInOutput: false });
    const field = (init: object) => {
      try {
        new BeamSearchParams(init as never);
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidArgumentError);
        return [(e as InvalidArgumentError).field, (e as Error).message];
      }
      throw new Error('did not throw');
    };
    expect(field({ maxTokens: 8 })).toEqual(['beamWidth', 'beamWidth must be an integer >= 1, got undefined.']);
    expect(field({ beamWidth: 2.5, maxTokens: 8 })[0]).toBe('beamWidth');
    expect(field({ beamWidth: 2, maxTokens: 0 })).toEqual(['maxTokens', 'maxTokens must be an integer >= 1, got 0.']);
    expect(field({ beamWidth: 2, maxTokens: 4, temperature: -1 })[0]).toBe('temperature');
    expect(field({ beamWidth: 2, maxTokens: 4, lengthPenalty: NaN })[0]).toBe('lengthPenalty');
    expect(field({ beamWidth: 2, maxTokens: 4, ignoreEos: 'yes' })[0]).toBe('ignoreEos');
    expect(field({ beamWidth: 2, maxTokens: 4, beam_width: 2 })).toEqual(['beam_width', "unknown beam search parameter 'beam_width'"]);
  });

  it("scores as vLLM's get_beam_search_score: a final EOS is not counted in the length", () => {
    expect(beamSearchScore([1, 5, 6, 2], -3, 2, 1)).toBeCloseTo(-1);
    expect(beamSearchScore([1, 5, 6, 7], -3, 2, 1)).toBeCloseTo(-0.75);
    expect(beamSearchScore([1, 5, 6, 7], -3, 2, 0)).toBeCloseTo(-3);
    expect(beamSearchScore([1, 5, 6, 7], -3, 2, 2)).toBeCloseTo(-3 / 16);
  });
});

/**
 * The algorithm on a toy engine whose next-token log-probabilities are a table, worked by hand (P = 1, EOS = 2,
 * beamWidth 2, maxTokens 2):
 *   step 1 from [1]: EOS -0.5 completes [1,2]; [1,5] -1.0 and [1,6] -1.5 live on ([1,7] -3 is cut);
 *   step 2: [1,5,2] -3 and [1,6,2] -1.7 complete; [1,5,8] -1.1 and [1,6,8] -2.5 live on ([1,5,9] -3.5 is cut);
 *   scores (cum / length without a final EOS): [1,5,8] -0.367, [1,2] -0.5, [1,6,8] -0.833, [1,6,2] -0.85, [1,5,2] -1.5.
 */
describe('the algorithm, on a table', () => {
  const TABLE: Record<string, Record<number, number>> = {
    '1': { 2: -0.5, 5: -1.0, 6: -1.5, 7: -3 },
    '1,5': { 2: -2, 8: -0.1, 9: -2.5 },
    '1,6': { 2: -0.2, 8: -1 },
    '1,5,8': { 2: -1 },
    '1,6,8': { 2: -1 },
  };
  function tableEngine(maxModelLen = 100) {
    const batches: number[][][] = [];
    let pending: { tokens: number[]; resolve: (o: unknown) => void }[] = [];
    const engine = {
      tokenizer: { eosTokenId: 2, decode: (ids: number[]) => ids.join(' ') },
      runner: { limits: { maxModelLen } },
      prepareRequest: ({ prompt }: { prompt: string | { promptTokenIds: number[] } }) => ({
        promptTokenIds: typeof prompt === 'string' ? prompt.split(' ').map(Number) : prompt.promptTokenIds,
      }),
      submit: (r: { promptTokenIds: number[] }) => {
        // Outputs arrive on a later tick, like the engine's: what was submitted by then is one batch.
        if (pending.length === 0) {
          setTimeout(() => {
            batches.push(pending.map((p) => p.tokens));
            for (const p of pending.splice(0)) {
              const entry = new Map(Object.entries(TABLE[p.tokens.join(',')]).map(([id, logprob]) => [Number(id), { logprob, rank: 0, decodedToken: null }]));
              p.resolve({ outputs: [{ logprobs: [entry] }] });
            }
          }, 0);
        }
        const out = new Promise((resolve) => pending.push({ tokens: r.promptTokenIds, resolve }));
        return { final: () => out };
      },
    };
    return { engine: engine as unknown as LLMEngine, batches };
  }
  const run = (engine: LLMEngine, init: Partial<BeamSearchParamsInit> = {}) => beamSearch(engine, ['1'], new BeamSearchParams({ beamWidth: 2, maxTokens: 2, ...init }));
  const summary = (o: BeamSearchOutput) => o.sequences.map((s) => [s.tokenIds.join(','), +s.cumulativeLogprob.toFixed(6), s.finishReason]);

  it('completes beams at EOS, ranks by cumulative logprob over length, and batches each step', async () => {
    const { engine, batches } = tableEngine();
    const [out] = await run(engine);
    expect(summary(out)).toEqual([
      ['1,5,8', -1.1, 'length'],
      ['1,2', -0.5, 'stop'],
    ]);
    expect(out.sequences[1].text).toBe('1 2');
    expect(out.sequences[0].logprobs.map((m) => [...m.keys()])).toEqual([[2, 5, 6, 7], [2, 8, 9]]);
    expect(batches).toEqual([[[1]], [[1, 5], [1, 6]]]);
  });

  it('with lengthPenalty 0 ranks by cumulative logprob alone', async () => {
    const [out] = await run(tableEngine().engine, { lengthPenalty: 0 });
    expect(summary(out)).toEqual([
      ['1,2', -0.5, 'stop'],
      ['1,5,8', -1.1, 'length'],
    ]);
  });

  it('completes beams that reach the model length instead of dropping them', async () => {
    const [capped] = await run(tableEngine(3).engine, { maxTokens: 5 });
    const [plain] = await run(tableEngine().engine);
    expect(summary(capped)).toEqual(summary(plain));
  });
});

describe('tinystories-656K', () => {
  let llm: LLM;
  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'), { maxNumSeqs: 32 });
  });
  afterAll(() => llm.dispose());

  it('with beamWidth 1 is greedy decoding', async () => {
    for (const prompt of ['Once upon a time', 'The little dog ran to the park and']) {
      const [beam] = await llm.beamSearch([prompt], new BeamSearchParams({ beamWidth: 1, maxTokens: 24, ignoreEos: true }));
      const [greedy] = await llm.generate(prompt, new SamplingParams({ temperature: 0, maxTokens: 24, ignoreEos: true, logprobs: 0 }));
      expect(beam.sequences).toHaveLength(1);
      const s = beam.sequences[0];
      expect(beam.promptTokenIds).toEqual(greedy.promptTokenIds);
      expect(s.tokenIds).toEqual([...greedy.promptTokenIds, ...greedy.outputs[0].tokenIds]);
      expect(s.cumulativeLogprob).toBeCloseTo(greedy.outputs[0].cumulativeLogprob!, 3);
      expect(s.text).toBe(llm.engine.tokenizer.decode(s.tokenIds));
      expect(s.finishReason).toBe('length');
    }
  });

  it('gives each prompt the same beams alone and together (string and token-id prompts)', async () => {
    const tok = llm.engine.tokenizer;
    const prompts = ['Once upon a time', { promptTokenIds: tok.encode('Lily had a red ball. She') }, 'One day, a big bird flew over the house. The bird was very hungry'];
    const params = new BeamSearchParams({ beamWidth: 4, maxTokens: 20 });
    const together = await llm.beamSearch(prompts, params);
    expect(together).toHaveLength(3);
    for (let i = 0; i < prompts.length; i++) {
      const [alone] = await llm.beamSearch([prompts[i]], params);
      expect(together[i].sequences.map((s) => s.tokenIds)).toEqual(alone.sequences.map((s) => s.tokenIds));
      together[i].sequences.forEach((s, j) => expect(s.cumulativeLogprob).toBeCloseTo(alone.sequences[j].cumulativeLogprob, 4));
      // Best first, by vLLM's score.
      const scores = alone.sequences.map((s) => beamSearchScore(s.tokenIds, s.cumulativeLogprob, tok.eosTokenId, 1));
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      expect(alone.sequences).toHaveLength(4);
      for (const s of alone.sequences) expect(s.logprobs).toHaveLength(s.tokenIds.length - alone.promptTokenIds.length);
    }
  });

  it('holds the KV blocks of prefixes shared by beams once: 4 prompts x 8 beams x 64 tokens', async () => {
    const engine = llm.engine;
    const scheduler = engine['scheduler'] as Scheduler;
    const kv = scheduler.kvCacheManager;
    const B = kv.blockSize;
    const tokensOf = new Map<string, number[]>();
    const submitOriginal = engine.submit.bind(engine);
    const submit = vi.spyOn(engine, 'submit').mockImplementation((r) => {
      tokensOf.set(r.requestId, r.promptTokenIds);
      return submitOriginal(r);
    });
    // Right after each schedule(): the blocks held by running requests, against the two predictions below.
    const steps: { inUse: number; shared: number; unshared: number; beams: number }[] = [];
    const scheduleOriginal = scheduler.schedule.bind(scheduler);
    const schedule = vi.spyOn(scheduler, 'schedule').mockImplementation(() => {
      const out = scheduleOriginal();
      if (out.scheduledRequests.length === 0) return out;
      const seqs = out.scheduledRequests.map((s) => tokensOf.get(s.requestId)!);
      // Shared: every full block before a beam's last token was computed by its parent beam in an earlier step and
      // is found in the prefix cache, one block per distinct prefix; the block holding the last token is the beam's own.
      const prefixes = new Set<string>();
      for (const t of seqs) for (let j = 1; j * B <= t.length - 1; j++) prefixes.add(t.slice(0, j * B).join(','));
      steps.push({
        inUse: kv.numBlocks - kv.numFreeBlocks,
        shared: prefixes.size + seqs.length,
        unshared: seqs.reduce((n, t) => n + Math.ceil(t.length / B), 0),
        beams: seqs.length,
      });
      return out;
    });
    try {
      const prompts = [
        'Once upon a time, there was a little girl named Lily. She loved to play outside in the sun',
        'The little dog ran to the park and',
        'Tom and Sue went to the beach with their mom and dad. They wanted to build a big sand castle, but',
        'A cat',
      ];
      const outs = await llm.beamSearch(prompts, new BeamSearchParams({ beamWidth: 8, maxTokens: 64, ignoreEos: true }));
      for (const o of outs) {
        expect(o.sequences).toHaveLength(8);
        for (const s of o.sequences) expect(s.tokenIds.length - o.promptTokenIds.length).toBe(64);
      }
    } finally {
      submit.mockRestore();
      schedule.mockRestore();
    }
    // One engine step per beam step, all 32 beams batched. (The first may take two: an idle engine schedules the
    // first request of a batch as soon as it is submitted, before the others arrive.)
    expect(steps.filter((s) => s.beams === 32)).toHaveLength(63);
    expect(steps.length - 63).toBeLessThanOrEqual(2);
    expect(steps.slice(0, -63).reduce((n, s) => n + s.beams, 0)).toBe(4);
    for (const s of steps) expect(s.inUse).toBe(s.shared);
    const peak = Math.max(...steps.map((s) => s.inUse));
    const peakUnshared = Math.max(...steps.map((s) => s.unshared));
    console.log(`beam search KV blocks: peak ${peak} in use; unshared beams would need ${peakUnshared}`);
    expect(peak).toBeLessThan(peakUnshared / 2);
    expect(kv.numFreeBlocks).toBe(kv.numBlocks); // nothing leaked
  });
});

describe('stories260K', () => {
  let llm: LLM;
  beforeAll(async () => {
    // The exact search asks for every token's logprob (logprobs -1) and the wide beam for 2 x 16: lift the cap.
    llm = await loadLLM(modelDir('stories260K'), { maxNumSeqs: 64, maxLogprobs: -1 });
  });
  afterAll(() => llm.dispose());

  /**
   * The best sequence of at most `maxTokens` output tokens under vLLM's score, over every continuation: an output
   * ends at EOS or at maxTokens. Branch and bound: logprobs are <= 0, so a prefix with cumulative logprob c scores
   * at best c / (P + maxTokens) ** lengthPenalty whatever follows, and a prefix whose bound is below the best
   * sequence found so far cannot contain a better one. The greedy path, scored first, gives the first bound.
   */
  async function exactBest(promptTokenIds: number[], maxTokens: number, lengthPenalty: number) {
    const eos = llm.engine.tokenizer.eosTokenId;
    const P = promptTokenIds.length;
    const full = new SamplingParams({ maxTokens: 1, temperature: 0, logprobs: -1, detokenize: false });
    const cache = new Map<string, Map<number, number>>();
    let requests = 0;
    const expand = async (prefixes: number[][]) => {
      const todo = prefixes.filter((p) => !cache.has(p.join(',')));
      const outs = await llm.generate(todo.map((p) => ({ promptTokenIds: p })), full);
      requests += todo.length;
      todo.forEach((p, i) => {
        const entry = outs[i].outputs[0].logprobs![0];
        cache.set(p.join(','), new Map([...entry].map(([id, l]) => [id, l.logprob])));
      });
      return prefixes.map((p) => cache.get(p.join(','))!);
    };
    let best = { score: -Infinity, tokens: [] as number[], cum: 0 };
    const offer = (tokens: number[], cum: number) => {
      const score = beamSearchScore(tokens, cum, eos, lengthPenalty);
      if (score > best.score) best = { score, tokens, cum };
    };
    // Greedy path for a first bound.
    let g = { tokens: promptTokenIds, cum: 0 };
    for (let d = 0; d < maxTokens; d++) {
      const [lp] = await expand([g.tokens]);
      const [id, l] = [...lp].reduce((a, b) => (b[1] > a[1] ? b : a));
      g = { tokens: [...g.tokens, id], cum: g.cum + l };
      if (id === eos) break;
    }
    offer(g.tokens, g.cum);
    const bound = (cum: number) => cum / (P + maxTokens) ** lengthPenalty;
    let frontier = [{ tokens: promptTokenIds, cum: 0 }];
    for (let d = 0; d < maxTokens && frontier.length > 0; d++) {
      const dists = await expand(frontier.map((f) => f.tokens));
      const next: typeof frontier = [];
      frontier.forEach((f, i) => {
        for (const [id, l] of dists[i]) {
          const tokens = [...f.tokens, id];
          const cum = f.cum + l;
          if (id === eos || d + 1 === maxTokens) offer(tokens, cum);
          else if (bound(cum) >= best.score) next.push({ tokens, cum });
        }
      });
      frontier = next.filter((n) => bound(n.cum) >= best.score);
    }
    return { ...best, requests };
  }

  // Prompts where the optimum is not the greedy path (and a beam of 2 misses it), so the search has work to do.
  for (const lengthPenalty of [1, 0]) {
    it(`a wide beam finds the exact optimum over all continuations (maxTokens 3, lengthPenalty ${lengthPenalty})`, async () => {
      const tok = llm.engine.tokenizer;
      for (const prompt of ['Sue saw a', 'It was a', 'Tim']) {
        const ids = tok.encode(prompt);
        const exact = await exactBest(ids, 3, lengthPenalty);
        expect(exact.requests).toBeGreaterThan(10); // distributions computed: root, greedy path and unpruned prefixes
        const [greedy] = await llm.generate({ promptTokenIds: ids }, new SamplingParams({ temperature: 0, maxTokens: 3 }));
        expect([...ids, ...greedy.outputs[0].tokenIds]).not.toEqual(exact.tokens);
        const [beam] = await llm.beamSearch([prompt], new BeamSearchParams({ beamWidth: 16, maxTokens: 3, lengthPenalty }));
        const top = beam.sequences[0];
        expect(top.tokenIds).toEqual(exact.tokens);
        expect(beamSearchScore(top.tokenIds, top.cumulativeLogprob, tok.eosTokenId, lengthPenalty)).toBeCloseTo(exact.score, 4);
        expect(top.cumulativeLogprob).toBeCloseTo(exact.cum, 4);
      }
    });
  }
});

describe('beam search abort', () => {
  it('stops at the next step when its signal aborts and frees every block', async () => {
    const llm = await loadLLM(modelDir('tinystories-656K'));
    const c = new AbortController();
    const done = llm.beamSearch(['Once upon a time'], new BeamSearchParams({ beamWidth: 4, maxTokens: 200, ignoreEos: true }), { signal: c.signal });
    setTimeout(() => c.abort(), 300);
    const [out] = await done;
    expect(out.sequences[0].tokenIds.length - out.promptTokenIds.length).toBeLessThan(200);
    const kv = (llm.engine as unknown as { scheduler: { kvCacheManager: { numFreeBlocks: number; numBlocks: number } } }).scheduler.kvCacheManager;
    expect(kv.numFreeBlocks).toBe(kv.numBlocks);
    await llm.dispose();
  });

  it('returns the beams a step started from when the abort lands in the middle of it', async () => {
    const llm = await loadLLM(modelDir('tinystories-656K'));
    const c = new AbortController();
    // The search submits its first step's requests before it first waits: this abort reaches them in flight.
    const done = beamSearch(llm.engine, ['Once upon a time'], new BeamSearchParams({ beamWidth: 4, maxTokens: 50, ignoreEos: true }), { signal: c.signal });
    c.abort();
    const [out] = await done;
    expect(out.sequences.length).toBeGreaterThan(0);
    for (const s of out.sequences) expect(s.tokenIds.slice(0, out.promptTokenIds.length)).toEqual(out.promptTokenIds);
    await llm.dispose();
  });
});
