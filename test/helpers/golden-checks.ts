/**
 * The comparisons of a model's outputs with Hugging Face's goldens (models.test.ts for the shared checkpoints,
 * fixture-models.test.ts for test/fixtures): prompt token ids, top-20 logprobs of the first generated token, the argmax
 * at every prompt position, and greedy continuations while the golden margins are usable.
 */
import { expect, it } from 'vitest';
import { SamplingParams, type LLM, type RequestOutput } from '../../bindings/node/index.js';
import type { GoldenPrompt } from './paths.js';

/** Measured f32-path error on logits is ~1e-5; greedy steps with a smaller golden margin are not compared. */
export const MARGIN = 1e-3;

/** The request that gives what the checks compare: greedy, EOS banned for the golden's length, logprobs. */
export function goldenRun(llm: LLM, prompts: GoldenPrompt[]): Promise<RequestOutput[]> {
  const n = prompts[0].greedy_ids.length;
  const params = new SamplingParams({ temperature: 0, maxTokens: n, minTokens: n, logprobs: 20, promptLogprobs: 1 });
  return llm.generate(prompts.map((p) => p.text), params);
}

/**
 * Defines the four checks inside the caller's describe; `outs()` gives goldenRun's outputs (made in a beforeAll).
 * `allSteps`: compare every greedy step (trained models, whose margins are large), else up to the first step whose
 * golden margin is below MARGIN (that step itself is a tie-break).
 */
export function goldenChecks(prompts: GoldenPrompt[], outs: () => RequestOutput[], opts: { allSteps?: boolean } = {}): void {
  const comparable = (g: GoldenPrompt) => {
    if (opts.allSteps) return g.greedy_ids.length;
    const i = g.greedy_margins.findIndex((m) => m < MARGIN);
    return i < 0 ? g.greedy_ids.length : i + 1;
  };

  it('tokenizes prompts like Hugging Face', () => {
    prompts.forEach((p, i) => expect(outs()[i].promptTokenIds).toEqual(p.input_ids));
  });

  it('matches the top-20 logprobs of the first generated token', () => {
    prompts.forEach((p, i) => {
      const first = outs()[i].outputs[0].logprobs![0];
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
    prompts.forEach((p, i) => {
      const plp = outs()[i].promptLogprobs!;
      const argmax = plp.slice(1).map((m) => [...m!.entries()].find(([, l]) => l.rank === 1)![0]);
      argmax.push(outs()[i].outputs[0].tokenIds[0]);
      expect(argmax).toEqual(p.argmax_per_position);
    });
  });

  it('greedy-decodes like Hugging Face', () => {
    prompts.forEach((p, i) => {
      const out = outs()[i].outputs[0];
      const k = comparable(p);
      expect(out.tokenIds.slice(0, k)).toEqual(p.greedy_ids.slice(0, k));
      expect(out.finishReason).toBe('length');
      // HF decodes the ids alone, which drops a SentencePiece leading space; vLLM (and we) decode them after the
      // prompt, which keeps it. HF ends a text whose last token splits a UTF-8 character with U+FFFD; vLLM's
      // detokenizer (and ours) holds it back.
      if (k === p.greedy_ids.length) expect(out.text.trimStart()).toBe(p.greedy_text.trimStart().replace(/\uFFFD+$/, ''));
    });
  });
}
