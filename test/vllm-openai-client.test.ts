/**
 * The official `openai` client against the app's fetch handler (no socket), as vLLM's tests drive its server:
 * vLLM's extra fields pass through the client's body, streams with n > 1 end each choice once, and the 400s vLLM
 * gives reach the client as BadRequestError with the field named. tinystories-656K; ids and counts, not text.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLM } from '../bindings/node/index.js';
import { createApp } from '../bindings/node/server.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

const MODEL = 'tiny';
const TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}";

describe('the openai client against the app (tinystories-656K)', () => {
  let llm: LLM;
  let client: OpenAI;
  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'));
    const app = createApp({ llm, servedModelName: MODEL, chatTemplate: TEMPLATE });
    client = new OpenAI({ baseURL: 'http://x/v1', apiKey: 'none', maxRetries: 0, fetch: ((url: string, init: RequestInit) => app.fetch(new Request(url, init))) as never });
  });
  afterAll(async () => {
    await llm?.dispose();
  });

  it('completions: return_token_ids and prompt_logprobs ride in the body; ids match usage', async () => {
    const res = (await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 5, temperature: 0, return_token_ids: true, prompt_logprobs: 1 } as never)) as any;
    const c = res.choices[0];
    expect(c.prompt_token_ids).toHaveLength(res.usage.prompt_tokens);
    expect(c.token_ids).toHaveLength(res.usage.completion_tokens);
    expect(c.prompt_logprobs).toHaveLength(res.usage.prompt_tokens);
  });

  it('chat streaming with n = 3: one role chunk and one finish_reason per choice, usage last', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'Tom' }], n: 3, temperature: 1, seed: 2, max_tokens: 16, stop: ['.'], stream: true,
      stream_options: { include_usage: true },
    });
    const roles: number[] = [];
    const finishes: number[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined = null;
    for await (const chunk of stream) {
      for (const ch of chunk.choices) {
        if (ch.delta.role) roles.push(ch.index);
        if (ch.finish_reason) finishes.push(ch.index);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(roles.sort()).toEqual([0, 1, 2]);
    expect(finishes.sort()).toEqual([0, 1, 2]);
    expect(usage!.total_tokens).toBe(usage!.prompt_tokens + usage!.completion_tokens);
  });

  it("vLLM's 400s arrive as BadRequestError naming the field", async () => {
    const cases: [object, string][] = [
      [{ prompt: 'x', n: 2, temperature: 0 }, 'n'],
      [{ prompt: 'x', prompt_logprobs: 1, stream: true }, 'prompt_logprobs'],
      [{ prompt: 'x', bad_words: [''] }, 'bad_words'],
      [{ prompt: 'x', logit_bias: { a: 1, b: 2 } }, 'logit_bias'],
    ];
    for (const [body, param] of cases) {
      const err = await client.completions.create({ model: MODEL, ...body } as never).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(body)).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).status).toBe(400);
      expect((err as any).error?.param ?? (err as any).param).toBe(param);
    }
    const tools = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], tools: [], max_tokens: 1 } as never)
      .catch((e: unknown) => e);
    expect(tools).toBeInstanceOf(OpenAI.BadRequestError);
  });
});
