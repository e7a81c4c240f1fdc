/**
 * vLLM's server assertions (tests/entrypoints/openai/test_completion*.py, test_chat*.py, test_return_token_ids.py,
 * test_return_tokens_as_ids.py, test_prompt_logprobs / echo, test_metrics.py, test_sagemaker.py, protocol.py
 * validators) mirrored on tinystories-656K through the app's fetch handler and the `openai` client. Random or tiny
 * weights: shapes, counts, ids and validations. The coverage table is test/VLLM_COVERAGE.md.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLM } from '../bindings/node/index.js';
import { createApp } from '../bindings/node/server.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

const TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}";
const MODEL = 'tiny';
const TOOLS = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }];
const messages = [{ role: 'user', content: 'Once upon a time' }];

/** The `data:` JSON payloads of an SSE body, without `[DONE]`. */
async function events(res: Response): Promise<any[]> {
  const text = await res.text();
  expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
    .map((e) => JSON.parse(e.slice(6)));
}

describe('vLLM server parity (tinystories-656K)', () => {
  let llm: LLM;
  let app: ReturnType<typeof createApp>;
  let parsed: ReturnType<typeof createApp>;
  let client: OpenAI;
  const post = (path: string, body: unknown, a = app, contentType = 'application/json') =>
    a.fetch(new Request(`http://x${path}`, { method: 'POST', headers: { 'content-type': contentType }, body: JSON.stringify(body) }));
  const json = async (path: string, body: unknown, a = app) => {
    const res = await post(path, body, a);
    return { status: res.status, body: (await res.json()) as any };
  };
  const expect400 = async (path: string, body: object, param: string | null, message: RegExp) => {
    const { status, body: b } = await json(path, { model: MODEL, ...body });
    expect(status, JSON.stringify(b)).toBe(400);
    expect(b.error).toMatchObject({ type: 'BadRequestError', code: 400, param });
    expect(b.error.message).toMatch(message);
  };

  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'));
    app = createApp({ llm, servedModelName: MODEL, chatTemplate: TEMPLATE });
    parsed = createApp({ llm, servedModelName: MODEL, chatTemplate: TEMPLATE, enableAutoToolChoice: true, toolCallParser: 'hermes', returnTokensAsTokenIds: true });
    client = new OpenAI({ baseURL: 'http://x/v1', apiKey: 'none', maxRetries: 0, fetch: ((url: string, init: RequestInit) => app.fetch(new Request(url, init))) as never });
  });
  afterAll(async () => {
    await llm?.dispose();
  });

  it('streaming n > 1: exactly one finish_reason chunk per choice (completions and chat)', async () => {
    for (const path of ['/v1/completions', '/v1/chat/completions']) {
      const body = path === '/v1/completions' ? { prompt: 'Once upon a time', max_tokens: 24 } : { messages, max_tokens: 24 };
      // Stop strings end some choices steps before others (seen with these seeds): those must not get a second
      // finish chunk when the request ends.
      for (const stop of [['.'], [' the']]) {
        const res = await post(path, { model: MODEL, ...body, n: 4, temperature: 1, seed: 3, stop, stream: true });
        const chunks = await events(res);
        const finishes = chunks.flatMap((c) => c.choices.filter((ch: any) => ch.finish_reason !== null).map((ch: any) => ch.index));
        expect(finishes.sort(), JSON.stringify(stop)).toEqual([0, 1, 2, 3]);
      }
    }
  });

  it('max_tokens absent or null is 16 for completions; echo with max_tokens 0 returns the prompt', async () => {
    for (const max_tokens of [undefined, null]) {
      const { body } = await json('/v1/completions', { model: MODEL, prompt: 'Tom', max_tokens, temperature: 0, ignore_eos: true });
      expect(body.usage.completion_tokens).toBe(16);
    }
    const { status, body } = await json('/v1/completions', { model: MODEL, prompt: 'Once upon a time', echo: true, max_tokens: 0, logprobs: 1 });
    expect(status).toBe(200);
    expect(body.choices[0].text).toBe('Once upon a time');
    const lp = body.choices[0].logprobs;
    const promptLen = body.usage.prompt_tokens;
    expect(lp.tokens).toHaveLength(promptLen);
    expect(lp.token_logprobs[0]).toBeNull();
    expect(lp.tokens.join('')).toMatch(/^<\|start_story\|> ?Once upon a time$/); // BOS's text, then the prompt's
    // max_tokens 0 without echo stays a 400 (SamplingParams: at least 1).
    await expect400('/v1/completions', { prompt: 'Tom', max_tokens: 0 }, 'max_tokens', /max_tokens must be at least 1/);
  });

  it('truncate_prompt_tokens with truncation_side left (default) and right', async () => {
    const prompt = [1, 400, 401, 402, 403, 404];
    const ids = async (truncation_side?: string) =>
      (await json('/v1/completions', { model: MODEL, prompt, max_tokens: 1, truncate_prompt_tokens: 3, truncation_side, return_token_ids: true })).body.choices[0].prompt_token_ids;
    expect(await ids()).toEqual([402, 403, 404]);
    expect(await ids('left')).toEqual([402, 403, 404]);
    expect(await ids('right')).toEqual([1, 400, 401]);
    await expect400('/v1/completions', { prompt, truncation_side: 'middle' }, 'truncation_side', /./);
  });

  it('return_token_ids: prompt_token_ids and token_ids, streamed as deltas (test_return_token_ids.py)', async () => {
    const enc = (await json('/tokenize', { model: MODEL, prompt: 'Once upon a time' })).body.tokens;
    const { body } = await json('/v1/completions', { model: MODEL, prompt: 'Once upon a time', max_tokens: 6, temperature: 0, return_token_ids: true });
    const c = body.choices[0];
    expect(c.prompt_token_ids).toEqual(enc);
    expect(c.token_ids).toHaveLength(body.usage.completion_tokens);
    expect((await json('/detokenize', { model: MODEL, tokens: c.token_ids })).body.prompt).toBe(c.text);
    const chunks = await events(await post('/v1/completions', { model: MODEL, prompt: 'Once upon a time', max_tokens: 6, temperature: 0, return_token_ids: true, stream: true }));
    expect(chunks[0].choices[0].prompt_token_ids).toEqual(enc);
    expect(chunks.slice(1).every((k) => k.choices[0].prompt_token_ids === undefined)).toBe(true);
    expect(chunks.flatMap((k) => k.choices[0].token_ids)).toEqual(c.token_ids);
    // Chat: the prompt's ids on the response (the first chunk when streaming), each choice's ids on the choice.
    const chat = (await json('/v1/chat/completions', { model: MODEL, messages, max_tokens: 5, temperature: 0, return_token_ids: true })).body;
    const chatEnc = (await json('/tokenize', { model: MODEL, messages })).body.tokens;
    expect(chat.prompt_token_ids).toEqual(chatEnc);
    expect(chat.choices[0].token_ids).toHaveLength(chat.usage.completion_tokens);
    const chatChunks = await events(await post('/v1/chat/completions', { model: MODEL, messages, max_tokens: 5, temperature: 0, return_token_ids: true, stream: true }));
    expect(chatChunks[0].prompt_token_ids).toEqual(chatEnc);
    expect(chatChunks.flatMap((k) => k.choices[0]?.token_ids ?? [])).toEqual(chat.choices[0].token_ids);
    // Absent unless asked.
    const plain = (await json('/v1/completions', { model: MODEL, prompt: 'Tom', max_tokens: 2 })).body.choices[0];
    expect(plain.token_ids).toBeUndefined();
    expect(plain.prompt_token_ids).toBeUndefined();
  });

  it('prompt_logprobs on completions (per choice) and chat (on the response); refused with stream', async () => {
    const { body } = await json('/v1/completions', { model: MODEL, prompt: 'Once upon a time', max_tokens: 2, prompt_logprobs: 2, n: 2, temperature: 1, seed: 1 });
    for (const c of body.choices) {
      const pl = c.prompt_logprobs;
      expect(pl).toHaveLength(body.usage.prompt_tokens);
      expect(pl[0]).toBeNull();
      for (const entry of pl.slice(1)) {
        const n = Object.keys(entry).length;
        expect(n === 2 || n === 3).toBe(true); // the prompt token, plus the top 2 (it may be one of them)
        for (const v of Object.values(entry) as any[]) expect(Object.keys(v).sort()).toEqual(['decoded_token', 'logprob', 'rank']);
      }
    }
    const chat = (await json('/v1/chat/completions', { model: MODEL, messages, max_tokens: 2, prompt_logprobs: 1 })).body;
    expect(chat.prompt_logprobs).toHaveLength(chat.usage.prompt_tokens);
    expect(chat.prompt_logprobs[0]).toBeNull();
    for (const path of ['/v1/completions', '/v1/chat/completions']) {
      for (const prompt_logprobs of [1, -1]) {
        await expect400(path, { prompt: 'x', messages, prompt_logprobs, stream: true }, 'prompt_logprobs', /`prompt_logprobs` are not available when `stream=True`/);
      }
    }
    // prompt_logprobs 0 with stream is allowed (vLLM: only > 0 or -1 is refused).
    expect((await post('/v1/completions', { model: MODEL, prompt: 'x', max_tokens: 1, prompt_logprobs: 0, stream: true })).status).toBe(200);
  });

  it('return_tokens_as_token_ids: logprob tokens as token_id:N (request field, and the server flag)', async () => {
    const { body } = await json('/v1/completions', { model: MODEL, prompt: 'Tom', max_tokens: 3, temperature: 0, logprobs: 1, return_tokens_as_token_ids: true, return_token_ids: true });
    const c = body.choices[0];
    expect(c.logprobs.tokens).toEqual(c.token_ids.map((t: number) => `token_id:${t}`));
    for (const top of c.logprobs.top_logprobs) for (const k of Object.keys(top)) expect(k).toMatch(/^token_id:\d+$/);
    const chat = (await json('/v1/chat/completions', { model: MODEL, messages, max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 2, return_token_ids: true }, parsed)).body;
    const content = chat.choices[0].logprobs.content;
    expect(content.map((x: any) => x.token)).toEqual(chat.choices[0].token_ids.map((t: number) => `token_id:${t}`));
    expect(content[0].top_logprobs.every((x: any) => /^token_id:\d+$/.test(x.token))).toBe(true);
    // The request overrides the server's default.
    const off = (await json('/v1/completions', { model: MODEL, prompt: 'Tom', max_tokens: 2, logprobs: 0, return_tokens_as_token_ids: false }, parsed)).body;
    expect(off.choices[0].logprobs.tokens.join('')).toBe(off.choices[0].text);
  });

  it("400s vLLM gives: greedy n > 1, stream with beam search, empty bad_words, logprobs above max_logprobs, logit_bias keys", async () => {
    await expect400('/v1/completions', { prompt: 'x', n: 2, temperature: 0 }, 'n', /n must be 1 when using greedy sampling, got 2/);
    await expect400('/v1/chat/completions', { messages, n: 3, temperature: 0 }, 'n', /greedy/);
    await expect400('/v1/completions', { prompt: 'x', use_beam_search: true, n: 2, stream: true }, 'stream', /beam search/);
    await expect400('/v1/completions', { prompt: 'x', bad_words: ['ok', ''] }, 'bad_words', /bad_words cannot contain an empty string/);
    await expect400('/v1/completions', { prompt: 'x', logprobs: 21 }, 'logprobs', /at most 20/);
    await expect400('/v1/chat/completions', { messages, logprobs: true, top_logprobs: 21 }, 'top_logprobs', /\[0, 20\]/);
    await expect400('/v1/completions', { prompt: 'x', logit_bias: { '1': 1, a: 2, '-3': 1, b: 0 } }, 'logit_bias', /\["a","-3","b"\]/);
    await expect400('/v1/chat/completions', { messages, temperature: 2.5 }, 'temperature', /temperature must be in \[0, 2\], got 2.5/);
  });

  it('a JSON body sent as a form is refused (validate_json_request)', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await post('/v1/completions', { model: MODEL, prompt: 'x', max_tokens: 1 }, app, type);
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).error.message).toMatch(/Only 'application\/json' is allowed/);
    }
    expect((await post('/v1/completions', { model: MODEL, prompt: 'x', max_tokens: 1 }, app, 'application/json; charset=utf-8')).status).toBe(200);
  });

  it("tool_choice rules (protocol.py check_tool_usage, serving_chat's auto check)", async () => {
    await expect400('/v1/chat/completions', { messages, tools: [] }, 'tools', /`tools` must not be an empty array/);
    for (const tool_choice of ['auto', 'required', { type: 'function', function: { name: 'f' } }]) {
      await expect400('/v1/chat/completions', { messages, tool_choice }, 'tool_choice', /When using `tool_choice`, `tools` must be set/);
      await expect400('/v1/chat/completions', { messages, tool_choice, tools: null }, 'tool_choice', /When using `tool_choice`, `tools` must be set/);
    }
    // 'auto' (explicit, or the default with tools) needs a server that parses calls.
    await expect400('/v1/chat/completions', { messages, tools: TOOLS, tool_choice: 'auto' }, 'tool_choice', /"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser/);
    await expect400('/v1/chat/completions', { messages, tools: TOOLS }, 'tool_choice', /"auto" tool choice requires/);
    expect((await json('/v1/chat/completions', { model: MODEL, messages, tools: TOOLS, max_tokens: 2 }, parsed)).status).toBe(200);
    // 'none' ignores the tools; no tools and no tool_choice is plain chat.
    expect((await json('/v1/chat/completions', { model: MODEL, messages, tools: TOOLS, tool_choice: 'none', max_tokens: 2 })).status).toBe(200);
    expect((await json('/v1/chat/completions', { model: MODEL, messages, max_tokens: 2 })).status).toBe(200);
  });

  it('priority needs --scheduling-policy priority', async () => {
    await expect400('/v1/completions', { prompt: 'x', priority: 1 }, 'priority', /Priority scheduling is not enabled/);
    expect((await json('/v1/completions', { model: MODEL, prompt: 'x', max_tokens: 1, priority: 0 })).status).toBe(200);
  });

  it('SageMaker routes: GET/POST /ping, POST /invocations by body shape (test_sagemaker*.py)', async () => {
    expect((await app.fetch(new Request('http://x/ping'))).status).toBe(200);
    expect((await app.fetch(new Request('http://x/ping', { method: 'POST' }))).status).toBe(200);
    const cmpl = await json('/invocations', { model: MODEL, prompt: 'Tom', max_tokens: 3, temperature: 0 });
    const direct = await json('/v1/completions', { model: MODEL, prompt: 'Tom', max_tokens: 3, temperature: 0 });
    expect(cmpl.body.object).toBe('text_completion');
    expect(cmpl.body.choices[0].text).toBe(direct.body.choices[0].text);
    const chat = await json('/invocations', { model: MODEL, messages, max_tokens: 3, temperature: 0 });
    expect(chat.body.object).toBe('chat.completion');
    const bad = await json('/invocations', { model: MODEL, input: 'x' });
    expect(bad.status).toBe(400);
    const stream = await post('/invocations', { model: MODEL, prompt: 'Tom', max_tokens: 2, stream: true });
    expect((await events(stream)).at(-1).choices[0].finish_reason).toBe('length');
  });

  it("/metrics carries vLLM's request histograms and cache_config_info (test_metrics.py names)", async () => {
    await client.completions.create({ model: MODEL, prompt: 'Tom', max_tokens: 4, temperature: 0.5, n: 2, seed: 1 });
    const text = await (await app.fetch(new Request('http://x/metrics'))).text();
    const names = [
      'vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc', 'vllm:prefix_cache_queries_total',
      'vllm:prefix_cache_hits_total', 'vllm:num_preemptions_total', 'vllm:prompt_tokens_total', 'vllm:generation_tokens_total',
      'vllm:request_success_total', 'vllm:request_prompt_tokens_sum', 'vllm:request_generation_tokens_sum',
      'vllm:iteration_tokens_total_sum', 'vllm:iteration_tokens_total_bucket', 'vllm:request_max_num_generation_tokens_sum',
      'vllm:request_params_n_sum', 'vllm:request_params_max_tokens_sum', 'vllm:time_to_first_token_seconds_sum',
      'vllm:inter_token_latency_seconds_sum', 'vllm:e2e_request_latency_seconds_sum', 'vllm:request_queue_time_seconds_sum',
      'vllm:request_inference_time_seconds_sum', 'vllm:request_prefill_time_seconds_sum', 'vllm:request_decode_time_seconds_sum',
      'vllm:request_time_per_output_token_seconds_sum', 'vllm:cache_config_info',
    ];
    for (const name of names) expect(text, name).toMatch(new RegExp(`^${name}\\{model_name="${MODEL}"`, 'm'));
    expect(text).toMatch(/^vllm:request_params_n_bucket\{model_name="tiny",le="2.0"\} [1-9]/m);
    const blocks = llm.engine.runner.limits.numBlocks;
    expect(text).toMatch(new RegExp(`^vllm:cache_config_info\\{model_name="tiny",block_size="16",.*num_gpu_blocks="${blocks}".*\\} 1.0$`, 'm'));
  });
});
