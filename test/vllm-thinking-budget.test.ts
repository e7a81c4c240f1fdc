/**
 * vLLM's `thinking_token_budget` (vllm/v1/sample/thinking_budget_state.py, sampling_params.py
 * validate_thinking_token_budget, the input processor's reasoning_config check): at most `budget` tokens inside the
 * think section, then the end token is forced. The state machine on token ids, then the engine on qwen3-rand (real
 * Qwen3 tokenizer: `<think>` 151667, `</think>` 151668). Random weights never close a think block on their own within
 * a few allowed tokens, so where the end comes is the budget's doing alone. The coverage table is
 * test/VLLM_COVERAGE.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { createApp } from '../bindings/node/server.js';
import { ThinkingBudget } from '../src/sampling/thinking-budget.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

const S = 151667;
const E = 151668;
/** Tokens the tests allow the model to write: none is a delimiter. */
const ALLOWED = [10, 20, 30, 40];
const MODEL = 'qwen3-rand';

/** Feeds `budget` the forced token when there is one, else `free`, `steps` times; returns the tokens. */
function drive(t: ThinkingBudget, free: number[], steps: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const tok = t.forcedTokenId() ?? free[i % free.length];
    t.accept([tok]);
    out.push(tok);
  }
  return out;
}

describe('ThinkingBudget (the state machine)', () => {
  const ids = { startTokenIds: [S], endTokenIds: [E] };

  it('counts from a start in the output; forces the end after exactly `budget` thinking tokens', () => {
    const t = new ThinkingBudget(ids, 3, [1, 2]);
    expect(t.phase).toBe('idle');
    expect(drive(t, [5, S, 6, 7, 8, 9, 1], 7)).toEqual([5, S, 6, 7, 8, E, 1]);
    expect(t.finished).toBe(true);
  });

  it('a prompt that ends inside a think block has spent its tokens after the start already', () => {
    // `<think>\n`: one thinking token in the prompt.
    expect(drive(new ThinkingBudget(ids, 3, [1, S, 198]), [7], 4)).toEqual([7, 7, E, 7]);
    expect(drive(new ThinkingBudget(ids, 0, [1, S]), [7], 2)).toEqual([E, 7]);
    // A closed block in the prompt (Qwen3's enable_thinking false) is no section.
    expect(drive(new ThinkingBudget(ids, 0, [S, 198, E, 198]), [7], 2)).toEqual([7, 7]);
  });

  it('a model that ends its thinking itself is not forced; multi-token ends are forced token by token', () => {
    expect(drive(new ThinkingBudget(ids, 5, [S]), [7, E, 8, 9], 6)).toEqual([7, E, 8, 9, 7, E]);
    const multi = new ThinkingBudget({ startTokenIds: [90, 91], endTokenIds: [92, 93, 94] }, 2, [1]);
    expect(drive(multi, [90, 91, 5, 5, 5, 6], 8)).toEqual([90, 91, 5, 5, 92, 93, 94, 91]);
  });
});

describe('thinking_token_budget on qwen3-rand', () => {
  let llm: LLM;
  let plain: LLM;
  beforeAll(async () => {
    llm = await loadLLM(modelDir('qwen3-rand'), { reasoningConfig: { reasoningStartStr: '<think>', reasoningEndStr: '</think>' } });
    plain = await loadLLM(modelDir('qwen3-rand'));
  });
  afterAll(async () => {
    await llm?.dispose();
    await plain?.dispose();
  });

  const thinking = '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n';

  it("SamplingParams: vLLM's validation (-1 is unlimited; below -1 or not an integer is refused)", () => {
    expect(new SamplingParams({ thinkingTokenBudget: -1 }).thinkingTokenBudget).toBeNull();
    expect(new SamplingParams({ thinkingTokenBudget: 0 }).thinkingTokenBudget).toBe(0);
    expect(() => new SamplingParams({ thinkingTokenBudget: -2 })).toThrow(/thinkingTokenBudget must be a non-negative integer or -1 for unlimited, got -2/);
    expect(() => new SamplingParams({ thinkingTokenBudget: 1.5 })).toThrow(/thinkingTokenBudget must be a non-negative integer, -1/);
  });

  it('the end of thinking comes after exactly `budget` thinking tokens (greedy, random, n > 1)', async () => {
    for (const budget of [0, 1, 4]) {
      for (const init of [{ temperature: 0 }, { temperature: 1, seed: 3, n: 3 }]) {
        const params = new SamplingParams({ ...init, maxTokens: 8, ignoreEos: true, allowedTokenIds: ALLOWED, thinkingTokenBudget: budget });
        const [out] = await llm.generate({ prompt: thinking }, params);
        for (const o of out.outputs) {
          // The prompt's `\n` after <think> is one thinking token: budget - 1 more, then </think>, which no mask stops.
          const at = Math.max(budget - 1, 0);
          expect(o.tokenIds.length, JSON.stringify(init)).toBe(8);
          expect(o.tokenIds.indexOf(E)).toBe(at);
          expect(o.tokenIds.filter((t) => t === E).length).toBe(1);
          expect(o.tokenIds.every((t, i) => i === at || ALLOWED.includes(t))).toBe(true);
        }
      }
    }
  });

  it('logprobs of a forced token are those of the raw row; nothing is forced outside a think section', async () => {
    const params = new SamplingParams({ temperature: 0, maxTokens: 3, ignoreEos: true, allowedTokenIds: ALLOWED, thinkingTokenBudget: 1, logprobs: 0 });
    const [out] = await llm.generate({ prompt: thinking }, params);
    expect(out.outputs[0].tokenIds[0]).toBe(E);
    const forced = out.outputs[0].logprobs![0].get(E)!;
    // Raw logprobs (vLLM's default logprobs_mode): the model's own, before masks and forcing; as logprob_token_ids gives.
    const [ref] = await llm.generate({ prompt: thinking }, new SamplingParams({ temperature: 0, maxTokens: 1, logprobTokenIds: [E] }));
    expect(forced.logprob).toBeCloseTo(ref.outputs[0].logprobs![0].get(E)!.logprob, 5);
    expect(forced.logprob).toBeLessThan(0);
    const [free] = await llm.generate({ prompt: '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' }, new SamplingParams({ temperature: 0, maxTokens: 6, ignoreEos: true, allowedTokenIds: ALLOWED, thinkingTokenBudget: 0 }));
    expect(free.outputs[0].tokenIds.every((t) => ALLOWED.includes(t))).toBe(true);
  });

  it('without a reasoning config the budget is refused (the input processor check)', async () => {
    await expect(plain.generate('Hi', new SamplingParams({ thinkingTokenBudget: 8 }))).rejects.toThrow(/thinkingTokenBudget is set but reasoning_config is not configured/);
  });

  it('server: --reasoning-parser configures it; 400s without, and for bad values', async () => {
    const post = async (app: ReturnType<typeof createApp>, path: string, body: object) => {
      const res = await app.fetch(new Request(`http://x${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, ...body }) }));
      return { status: res.status, body: (await res.json()) as any };
    };
    const none = createApp({ llm: plain, servedModelName: MODEL });
    const r400 = await post(none, '/v1/completions', { prompt: thinking, max_tokens: 2, thinking_token_budget: 2 });
    expect(r400.status).toBe(400);
    expect(r400.body.error).toMatchObject({ param: 'thinking_token_budget' });
    expect(r400.body.error.message).toMatch(/thinking_token_budget is set but reasoning_config is not configured/);
    const bad = await post(none, '/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], thinking_token_budget: -3 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/thinking_token_budget must be a non-negative integer or -1 for unlimited/);

    // A fresh LLM, configured by the server's parser alone (as `serve --reasoning-parser qwen3`).
    const served = await loadLLM(modelDir('qwen3-rand'));
    try {
      const app = createApp({ llm: served, servedModelName: MODEL, reasoningParser: 'qwen3' });
      const c = await post(app, '/v1/completions', { prompt: thinking, max_tokens: 6, temperature: 0, ignore_eos: true, allowed_token_ids: ALLOWED, thinking_token_budget: 3, return_token_ids: true });
      expect(c.status, JSON.stringify(c.body)).toBe(200);
      expect(c.body.choices[0].token_ids.indexOf(E)).toBe(2);
      // Chat: the reasoning the parser splits off holds the budgeted tokens, the answer follows.
      const ch = await post(app, '/v1/chat/completions', {
        messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: '<think>\n' }],
        add_generation_prompt: false,
        continue_final_message: true,
        max_tokens: 6,
        temperature: 0,
        ignore_eos: true,
        allowed_token_ids: ALLOWED,
        thinking_token_budget: 3,
        return_token_ids: true,
      });
      expect(ch.status, JSON.stringify(ch.body)).toBe(200);
      const ids: number[] = ch.body.choices[0].token_ids;
      expect(ids.indexOf(E)).toBeGreaterThanOrEqual(0);
      expect(ids.indexOf(E)).toBeLessThanOrEqual(3);
    } finally {
      await served.dispose();
    }
  });
});
