/**
 * The OpenAI-compatible server on loopback, driven by the official `openai` client (and raw fetch where a client
 * would refuse to send the request): completions and chat, streaming and not, usage, logprobs, stop, n, errors with
 * OpenAI's body, auth, request ids, tokenize/detokenize, /metrics, and a disconnect that frees its KV blocks.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { SamplingParams, type SamplingParamsInit } from '../bindings/node/index.js';
import { createApp, serve } from '../bindings/node/server.js';
import { modelDir, REPO } from './helpers/paths.js';
import { serveForTests } from './helpers/server.js';

/** tinystories has no chat template: this one continues the user's text as a story. */
const TEMPLATE = "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}\n{% else %}{{ m.content }}{% endif %}{% endfor %}";
const MODEL = 'tiny';

/** The `data:` payloads of an SSE body, `[DONE]` included. */
async function sseData(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice('data: '.length));
}

/** Polls until `check` holds (the engine frees aborted requests at its next step). */
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('OpenAI-compatible server (tinystories-656K)', () => {
  const served = serveForTests(modelDir('tinystories-656K'), { servedModelName: [MODEL, 'tinystories'], chatTemplate: TEMPLATE });
  /** The output of the same request run alone through the LLM. */
  const reference = async (prompt: string | { promptTokenIds: number[] }, init: SamplingParamsInit) =>
    (await served.llm.generate(prompt, new SamplingParams({ temperature: 0, ...init })))[0];

  it('lists the served model, answers /health and /version', async () => {
    const models = await served.client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL, 'tinystories']);
    expect(models.data[0]).toMatchObject({ object: 'model', owned_by: 'vllm', max_model_len: 512 });
    expect((await fetch(`${served.server.url}/health`)).status).toBe(200);
    expect(await (await fetch(`${served.server.url}/version`)).json()).toEqual({ version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });

  it('completes text as LLM.generate does, with usage', async () => {
    const prompt = 'Once upon a time';
    const ref = await reference(prompt, { maxTokens: 24 });
    const res = await served.client.completions.create({ model: MODEL, prompt, max_tokens: 24, temperature: 0 });
    expect(res.object).toBe('text_completion');
    expect(res.model).toBe(MODEL);
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0]).toMatchObject({ index: 0, text: ref.outputs[0].text, finish_reason: ref.outputs[0].finishReason });
    const promptTokens = served.llm.engine.tokenizer.encode(prompt).length;
    expect(res.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: ref.outputs[0].tokenIds.length, total_tokens: promptTokens + ref.outputs[0].tokenIds.length });
    // OpenAI's default max_tokens is 16; the other served name works too.
    const short = await served.client.completions.create({ model: 'tinystories', prompt, temperature: 0, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(short.usage?.completion_tokens).toBe(16);
  });

  it('streams completions with usage once or in every chunk', async () => {
    const prompt = 'The little dog ran to the park and';
    const ref = await reference(prompt, { maxTokens: 20 });
    const stream = await served.client.completions.create({ model: MODEL, prompt, max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const chunks: OpenAI.Completion[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      for (const c of chunk.choices) text += c.text;
    }
    expect(text).toBe(ref.outputs[0].text);
    expect(chunks.length).toBeGreaterThan(2);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage?.completion_tokens).toBe(ref.outputs[0].tokenIds.length);
    expect(chunks.at(-2)!.choices[0].finish_reason).toBe(ref.outputs[0].finishReason);
    expect(chunks.slice(0, -1).every((c) => c.usage == null)).toBe(true);

    const cont = await served.client.completions.create({
      model: MODEL, prompt, max_tokens: 8, temperature: 0, stream: true, ignore_eos: true,
      stream_options: { include_usage: true, continuous_usage_stats: true },
    } as OpenAI.CompletionCreateParamsStreaming);
    const usages: number[] = [];
    for await (const chunk of cont) usages.push(chunk.usage!.completion_tokens);
    expect(usages.at(-1)).toBe(8);
    expect(usages).toEqual([...usages].sort((a, b) => a - b));
  });

  it('takes several prompts, token ids and echo', async () => {
    const prompts = ['Lily had a red ball. She', 'Tom'];
    const refs = await Promise.all(prompts.map((p) => reference(p, { maxTokens: 12 })));
    const res = await served.client.completions.create({ model: MODEL, prompt: prompts, max_tokens: 12, temperature: 0 });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(res.choices.map((c) => c.text)).toEqual(refs.map((r) => r.outputs[0].text));

    const ids = served.llm.engine.tokenizer.encode(prompts[0]);
    const byIds = await served.client.completions.create({ model: MODEL, prompt: [ids, ids], max_tokens: 12, temperature: 0 });
    expect(byIds.choices.map((c) => c.text)).toEqual([refs[0].outputs[0].text, refs[0].outputs[0].text]);

    const echoed = await served.client.completions.create({ model: MODEL, prompt: prompts[1], max_tokens: 12, temperature: 0, echo: true });
    expect(echoed.choices[0].text).toBe(prompts[1] + refs[1].outputs[0].text);
  });

  it('returns completion logprobs in OpenAI shape, echo included', async () => {
    const prompt = 'A cat';
    const ref = await reference(prompt, { maxTokens: 8, logprobs: 3, ignoreEos: true });
    const res = await served.client.completions.create({ model: MODEL, prompt, max_tokens: 8, temperature: 0, logprobs: 3, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
    const lp = res.choices[0].logprobs!;
    expect(lp.tokens).toHaveLength(8);
    expect(lp.tokens!.join('')).toBe(res.choices[0].text);
    ref.outputs[0].tokenIds.forEach((id, i) => expect(lp.token_logprobs![i]).toBeCloseTo(ref.outputs[0].logprobs![i].get(id)!.logprob, 4));
    for (const [i, top] of lp.top_logprobs!.entries()) {
      // Greedy: the sampled token is the most likely, so the top 3 include it.
      expect(Object.keys(top!)).toHaveLength(3);
      expect(Math.max(...Object.values(top!))).toBeCloseTo(lp.token_logprobs![i]!, 5);
    }
    expect(lp.text_offset).toEqual(lp.tokens!.map((_, i) => lp.tokens!.slice(0, i).join('').length));

    const echoed = await served.client.completions.create({ model: MODEL, prompt, max_tokens: 4, temperature: 0, logprobs: 1, echo: true });
    const elp = echoed.choices[0].logprobs!;
    const promptLen = served.llm.engine.tokenizer.encode(prompt).length;
    expect(elp.tokens).toHaveLength(promptLen + 4);
    expect(elp.token_logprobs![0]).toBeNull();
    expect(elp.token_logprobs!.slice(1).every((x) => typeof x === 'number' && x <= 0)).toBe(true);
  });

  it('stops at a stop string and reports it', async () => {
    const prompt = 'Once upon a time';
    const ref = await reference(prompt, { maxTokens: 40 });
    const full = ref.outputs[0].text;
    const word = full.trim().split(/\s+/)[4];
    const res = await served.client.completions.create({ model: MODEL, prompt, max_tokens: 40, temperature: 0, stop: [word] });
    expect(res.choices[0].text).toBe(full.slice(0, full.indexOf(word)));
    expect(res.choices[0]).toMatchObject({ finish_reason: 'stop', stop_reason: word });
    const stream = await served.client.completions.create({ model: MODEL, prompt, max_tokens: 40, temperature: 0, stop: word, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    expect(text).toBe(res.choices[0].text);
  });

  it('chats through the template, streaming the role first and [DONE] last', async () => {
    const messages = [{ role: 'user' as const, content: 'Once upon a time, a girl' }];
    const tok = await (await served.post('/tokenize', { model: MODEL, messages })).json();
    expect(tok.tokens).toEqual(served.llm.engine.tokenizer.encode('<|start_story|>Once upon a time, a girl', { addSpecialTokens: false }));
    const ref = await reference({ promptTokenIds: tok.tokens }, { maxTokens: 20 });

    const res = await served.client.chat.completions.create({ model: MODEL, messages, max_tokens: 20, temperature: 0 });
    expect(res.object).toBe('chat.completion');
    expect(res.choices[0].message).toMatchObject({ role: 'assistant', content: ref.outputs[0].text });
    expect(res.choices[0].finish_reason).toBe(ref.outputs[0].finishReason);
    expect(res.usage).toMatchObject({ prompt_tokens: tok.count, completion_tokens: ref.outputs[0].tokenIds.length });

    const stream = await served.client.chat.completions.create({ model: MODEL, messages, max_completion_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let content = '';
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      content += chunk.choices[0]?.delta.content ?? '';
    }
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(content).toBe(ref.outputs[0].text);
    expect(chunks.at(-1)!.usage?.total_tokens).toBe(tok.count + ref.outputs[0].tokenIds.length);

    const raw = await sseData(await served.post('/v1/chat/completions', { model: MODEL, messages, max_tokens: 4, temperature: 0, stream: true }));
    expect(JSON.parse(raw[0]).choices[0].delta.role).toBe('assistant');
    expect(raw.at(-1)).toBe('[DONE]');
    expect(JSON.parse(raw.at(-2)!).choices[0].finish_reason).not.toBeNull();
  });

  it('returns chat logprobs with top alternatives', async () => {
    const messages = [{ role: 'user' as const, content: 'Tom' }];
    const res = await served.client.chat.completions.create({ model: MODEL, messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 2, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const content = res.choices[0].logprobs!.content!;
    expect(content).toHaveLength(6);
    expect(content.map((c) => c.token).join('')).toBe(res.choices[0].message.content);
    for (const c of content) {
      expect(c.top_logprobs).toHaveLength(2);
      expect(c.top_logprobs[0]).toMatchObject({ token: c.token, logprob: c.logprob });
      expect(c.top_logprobs[1].logprob).toBeLessThanOrEqual(c.logprob);
      expect(c.bytes).toEqual([...new TextEncoder().encode(c.token)]);
    }
  });

  it('gives n choices per prompt once the engine samples n > 1, and a clear 400 until then', async (ctx) => {
    let supported = true;
    try {
      served.llm.engine.prepareRequest({ prompt: 'x', params: new SamplingParams({ n: 2 }), requestId: 'probe-n' });
    } catch {
      supported = false;
    }
    const req = { model: MODEL, prompt: ['Tom', 'A cat'], n: 3, max_tokens: 6, temperature: 1, seed: 7 };
    if (!supported) {
      await expect(served.client.completions.create(req)).rejects.toMatchObject({ status: 400, param: 'n' });
      ctx.skip();
    }
    const res = await served.client.completions.create(req);
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5]);
    const stream = await served.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Tom' }], n: 2, max_tokens: 6, stream: true });
    const roles = new Map<number, string>();
    const text = new Map<number, string>();
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        if (c.delta.role) roles.set(c.index, c.delta.role);
        text.set(c.index, (text.get(c.index) ?? '') + (c.delta.content ?? ''));
      }
    }
    expect([...roles.keys()].sort()).toEqual([0, 1]);
    expect([...text.keys()].sort()).toEqual([0, 1]);
  });

  it('runs beam search for use_beam_search: n beams as n choices, width 1 as greedy', async () => {
    const prompt = 'Once upon a time';
    const ref = await reference(prompt, { maxTokens: 8 });
    const beam = (n: number) => ({ model: MODEL, prompt, max_tokens: 8, n, use_beam_search: true }) as OpenAI.CompletionCreateParamsNonStreaming;
    const one = await served.client.completions.create(beam(1));
    expect(one.choices[0].text).toBe(ref.outputs[0].text);
    const three = await served.client.completions.create(beam(3));
    expect(three.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(new Set(three.choices.map((c) => c.text)).size).toBe(3);
    expect(three.usage?.completion_tokens).toBeGreaterThanOrEqual(3);
    expect(three.usage?.completion_tokens).toBeLessThanOrEqual(3 * 8);
    const chat = await served.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: prompt }], max_tokens: 8, n: 2, use_beam_search: true } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(chat.choices.map((c) => c.index)).toEqual([0, 1]);
  });

  it('answers bad requests with OpenAI error bodies and the right status', async () => {
    const bad = async (req: object, status: number, param: string | null, message: RegExp) => {
      const res = await served.post('/v1/completions', { model: MODEL, prompt: 'Tom', ...req });
      expect(res.status).toBe(status);
      const body = await res.json();
      expect(body.error).toMatchObject({ param, code: status, type: expect.any(String) });
      expect(body.error.message).toMatch(message);
    };
    await bad({ temperature: -1 }, 400, 'temperature', /temperature/);
    await bad({ top_p: 2 }, 400, 'top_p', /top_p must be in \(0, 1\]/);
    await bad({ temperature: 'hot' }, 400, 'temperature', /number/);
    await bad({ max_tokens: 1.5 }, 400, 'max_tokens', /int/);
    await bad({ min_tokens: 9, max_tokens: 4 }, 400, 'min_tokens', /min_tokens/);
    await bad({ stop_token_ids: [99999] }, 400, 'stop_token_ids', /99999/);
    await bad({ logit_bias: { abc: 1 } }, 400, 'logit_bias', /cannot be converted to integer token IDs: \["abc"\]/);
    await bad({ suffix: 'The end.' }, 400, 'suffix', /suffix is not supported/);
    await bad({ logprobs: 21 }, 400, 'logprobs', /at most 20/);
    await bad({ prompt: [5, 99999] }, 400, 'prompt', /99999/);
    const long = 'word '.repeat(600);
    const longLen = served.llm.engine.tokenizer.encode(long).length;
    await bad({ prompt: long }, 400, 'prompt', new RegExp(`${longLen}\\b.*\\b512|512\\b.*\\b${longLen}`));
    await bad({ max_tokens: 600 }, 400, 'max_tokens', /512/);
    await bad({ model: 'gpt-4' }, 404, 'model', /gpt-4/);
    await bad({ length_penalty: 0.5 }, 400, 'length_penalty', /use_beam_search/);
    await bad({ use_beam_search: true, n: 0 }, 400, 'n', /n must be/);

    // Through the client: typed errors carrying the body's fields.
    await expect(served.client.completions.create({ model: MODEL, prompt: 'Tom', temperature: -1 })).rejects.toMatchObject({ status: 400, param: 'temperature', type: 'BadRequestError' });
    await expect(served.client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(
      served.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], add_generation_prompt: true, continue_final_message: true } as OpenAI.ChatCompletionCreateParamsNonStreaming),
    ).rejects.toMatchObject({ status: 400, param: 'continue_final_message' });
    await expect(served.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], top_logprobs: 50, logprobs: true })).rejects.toMatchObject({ status: 400, param: 'top_logprobs' });
    await expect(
      served.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://127.0.0.1/x.png' } }] }] }),
    ).rejects.toMatchObject({ status: 400, param: 'messages' });
  });

  it('rejects malformed bodies over raw HTTP and keeps serving', async () => {
    const cases: [string, number, RegExp][] = [
      ['{"model": "tiny", "prompt": ', 400, /not valid JSON/],
      ['[1, 2]', 400, /JSON object/],
      ['{"model": "tiny"}', 400, /prompt/],
      ['{"model": "tiny", "prompt": {"text": "x"}}', 400, /prompt/],
    ];
    for (const [body, status, message] of cases) {
      const res = await served.post('/v1/completions', body);
      expect(res.status).toBe(status);
      const json = await res.json();
      expect(json.error.message).toMatch(message);
      expect(json.error.type).toBe('BadRequestError');
    }
    const chat = await served.post('/v1/chat/completions', { model: MODEL, messages: 'hello' });
    expect(chat.status).toBe(400);
    expect((await chat.json()).error.param).toBe('messages');
    const missing = await fetch(`${served.server.url}/v1/embeddings`, { method: 'POST', body: '{}' });
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.type).toBe('NotFoundError');
    expect((await served.client.completions.create({ model: MODEL, prompt: 'Tom', max_tokens: 2 })).choices).toHaveLength(1);
  });

  it('limits body size: 413 from the fetch handler, without a socket', async () => {
    const app = createApp({ llm: served.llm, servedModelName: MODEL, maxBodyBytes: 1024 });
    const big = JSON.stringify({ model: MODEL, prompt: 'x'.repeat(2000) });
    const withLength = await app.fetch(new Request('http://local/v1/completions', { method: 'POST', headers: { 'content-length': String(big.length) }, body: big }));
    expect(withLength.status).toBe(413);
    expect((await withLength.json()).error).toMatchObject({ code: 413 });
    const chunked = await app.fetch(new Request('http://local/v1/completions', { method: 'POST', body: new Blob([big]).stream(), duplex: 'half' } as RequestInit));
    expect(chunked.status).toBe(413);
    const ok = await app.fetch(new Request('http://local/v1/completions', { method: 'POST', body: JSON.stringify({ model: MODEL, prompt: 'Tom', max_tokens: 2 }) }));
    expect(ok.status).toBe(200);
    expect((await ok.json()).choices[0].text).toEqual(expect.any(String));
  });

  it('a bad request beside a running stream does not disturb it', async () => {
    const prompt = 'There was a boy who loved to read books about dragons and';
    const ref = await reference(prompt, { maxTokens: 40, ignoreEos: true });
    const stream = await served.client.completions.create({ model: MODEL, prompt, max_tokens: 40, temperature: 0, stream: true, ignore_eos: true } as OpenAI.CompletionCreateParamsStreaming);
    let text = '';
    let i = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      if (i++ === 2) {
        expect((await served.post('/v1/completions', '{oops')).status).toBe(400);
        expect((await served.post('/v1/completions', { model: MODEL, prompt: 'x', top_k: -5 })).status).toBe(400);
        expect((await served.post('/v1/completions', { model: MODEL, prompt: 'word '.repeat(600) })).status).toBe(400);
      }
    }
    expect(text).toBe(ref.outputs[0].text);
  });

  it('requires the API key on /v1 only, and echoes X-Request-Id', async () => {
    const secured = await serve({ llm: served.llm, host: '127.0.0.1', port: 0, servedModelName: MODEL, apiKey: 'sekret' });
    try {
      const anon = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
      await expect(anon.models.list()).rejects.toMatchObject({ status: 401, type: 'AuthenticationError' });
      const noKey = await fetch(`${secured.url}/v1/models`);
      expect(noKey.status).toBe(401);
      expect((await noKey.json()).error.code).toBe(401);
      const keyed = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: 'sekret', maxRetries: 0 });
      expect((await keyed.models.list()).data[0].id).toBe(MODEL);
      expect((await fetch(`${secured.url}/health`)).status).toBe(200);
      expect((await fetch(`${secured.url}/metrics`)).status).toBe(200);

      const res = await fetch(`${secured.url}/v1/completions`, {
        method: 'POST',
        headers: { authorization: 'Bearer sekret', 'x-request-id': 'req-42' },
        body: JSON.stringify({ model: MODEL, prompt: 'Tom', max_tokens: 2 }),
      });
      expect(res.headers.get('x-request-id')).toBe('req-42');
      expect((await res.json()).id).toBe('cmpl-req-42');
      expect((await fetch(`${secured.url}/health`)).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await secured.close();
    }
  });

  it('tokenizes and detokenizes with vLLM bodies', async () => {
    const tok = await (await served.post('/tokenize', { model: MODEL, prompt: 'Once upon a time', return_token_strs: true })).json();
    const ids = served.llm.engine.tokenizer.encode('Once upon a time');
    expect(tok).toEqual({ count: ids.length, max_model_len: 512, tokens: ids, token_strs: served.llm.engine.tokenizer.convertIdsToTokens(ids) });
    const plain = await (await served.post('/tokenize', { prompt: 'Once upon a time', add_special_tokens: false })).json();
    expect(plain.tokens).toEqual(ids.slice(1));
    expect(await (await served.post('/detokenize', { model: MODEL, tokens: ids.slice(1) })).json()).toEqual({ prompt: 'Once upon a time' });
    const bad = await served.post('/detokenize', { tokens: [1, 5000] });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.param).toBe('tokens');
  });

  it('aborts a request whose client disconnects, freeing its KV blocks, and /metrics shows it', async () => {
    const before = await (await fetch(`${served.server.url}/metrics`)).text();
    const aborts = (m: string) => Number(/vllm:request_success_total\{[^}]*finished_reason="abort"\} (\S+)/.exec(m)![1]);
    const controller = new AbortController();
    const stream = await served.client.completions.create(
      { model: MODEL, prompt: 'Once upon a time', max_tokens: 400, temperature: 0, stream: true, ignore_eos: true } as OpenAI.CompletionCreateParamsStreaming,
      { signal: controller.signal },
    );
    let seen = 0;
    try {
      for await (const _ of stream) if (++seen === 3) controller.abort();
    } catch {
      // the client may end the iteration or throw its abort error
    }
    expect(seen).toBe(3);
    await until(() => served.llm.engine.stats.numRunning === 0 && served.llm.engine.stats.kvCacheUsage === 0);
    const after = await (await fetch(`${served.server.url}/metrics`)).text();
    expect(aborts(after)).toBe(aborts(before) + 1);
  });

  it('exports Prometheus metrics with vLLM names', async () => {
    const m = await (await fetch(`${served.server.url}/metrics`)).text();
    for (const name of ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc', 'vllm:prefix_cache_queries_total', 'vllm:prefix_cache_hits_total']) {
      expect(m).toMatch(new RegExp(`^${name}\\{model_name="${MODEL}"\\} \\S+$`, 'm'));
    }
    expect(m).toMatch(/^# TYPE vllm:time_to_first_token_seconds histogram$/m);
    const value = (re: RegExp) => Number(re.exec(m)![1]);
    expect(value(/^vllm:prompt_tokens_total\{[^}]*\} (\S+)$/m)).toBeGreaterThan(0);
    expect(value(/^vllm:generation_tokens_total\{[^}]*\} (\S+)$/m)).toBeGreaterThan(0);
    expect(value(/^vllm:time_to_first_token_seconds_count\{[^}]*\} (\S+)$/m)).toBeGreaterThan(5);
    expect(value(/^vllm:time_to_first_token_seconds_bucket\{[^}]*le="\+Inf"\} (\S+)$/m)).toBe(value(/^vllm:time_to_first_token_seconds_count\{[^}]*\} (\S+)$/m));
    expect(value(/^vllm:request_success_total\{[^}]*finished_reason="length"\} (\S+)$/m)).toBeGreaterThan(0);
    // Per-request token histograms: cumulative buckets ending at the count; the engine's numbers.
    const generated = value(/^vllm:request_generation_tokens_sum\{[^}]*\} (\S+)$/m);
    expect(generated).toBeGreaterThan(0);
    expect(generated).toBeLessThanOrEqual(value(/^vllm:generation_tokens_total\{[^}]*\} (\S+)$/m));
    expect(value(/^vllm:request_generation_tokens_bucket\{[^}]*le="\+Inf"\} (\S+)$/m)).toBe(value(/^vllm:request_generation_tokens_count\{[^}]*\} (\S+)$/m));
    expect(value(/^vllm:prompt_tokens_total\{[^}]*\} (\S+)$/m)).toBe(served.llm.engine.metrics.promptTokens);
    expect(value(/^vllm:num_requests_running\{[^}]*\} (\S+)$/m)).toBe(0);
  });
});

// The built command (npm run build); skipped while dist/ predates the serve command.
const CLI = join(REPO, 'dist/cli.js');
const builtWithServe = existsSync(CLI) && readFileSync(CLI, 'utf8').includes('webgpu-llm serve');

describe.skipIf(!builtWithServe)('webgpu-llm serve', () => {
  it('serves the embedded model with VLLM_API_KEY until SIGINT', async () => {
    const child = spawn('node', [CLI, 'serve', '--port', '0', '--served-model-name', 'stories', '--max-model-len', '256'], {
      env: { ...process.env, VLLM_API_KEY: 'k' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      let stderr = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          const m = /at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(stderr);
          if (m) resolve(m[1]);
        });
        child.on('exit', () => reject(new Error(`serve exited: ${stderr}`)));
      });
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'k', maxRetries: 0 });
      expect((await client.models.list()).data[0]).toMatchObject({ id: 'stories', max_model_len: 256 });
      const res = await client.completions.create({ model: 'stories', prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
      expect(res.usage?.completion_tokens).toBeGreaterThan(0);
      expect((await fetch(`${url}/v1/models`)).status).toBe(401);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});
