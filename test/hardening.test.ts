/**
 * Untrusted requests against the server's fetch handler (no socket): each of issue 19's findings as a regression
 * test, with a greedy canary before and after that must stay exact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BeamSearchParams, InvalidArgumentError, LLM, SamplingParams } from '../bindings/node/index.js';
import { request as httpRequest } from 'node:http';
import { createApp, serve } from '../bindings/node/server.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

const MODEL = 'tiny';
const CANARY = 'Once upon a time, there was a little';

describe('server hardening (tinystories-656K)', () => {
  let llm: LLM;
  let app: ReturnType<typeof createApp>;
  let canary: { text: string; ids: number[] };
  const post = (path: string, body: unknown, a = app) =>
    a.fetch(new Request(`http://local${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) }));
  /** A greedy completion through the server, and its token ids through /tokenize. */
  const runCanary = async () => {
    const res = await post('/v1/completions', { model: MODEL, prompt: CANARY, max_tokens: 12, temperature: 0, logprobs: 2 });
    expect(res.status).toBe(200);
    const body = await res.json();
    const tok = await post('/tokenize', { model: MODEL, prompt: CANARY + body.choices[0].text });
    expect(tok.status).toBe(200);
    return { text: body.choices[0].text as string, ids: (await tok.json()).tokens as number[], logprobs: body.choices[0].logprobs };
  };

  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'));
    app = createApp({ llm, servedModelName: MODEL });
    canary = await runCanary();
    const ref = (await llm.generate(CANARY, new SamplingParams({ temperature: 0, maxTokens: 12 })))[0];
    expect(canary.text).toBe(ref.outputs[0].text);
  });
  afterAll(async () => {
    await llm?.dispose();
  });

  it('1: a prompt too large for the tokenizer scratch fails cleanly and leaves the tokenizer exact', async () => {
    const tokenizer = llm.engine.tokenizer;
    // One 7M-character word: its BPE scratch (50 B a byte, rounded to a power of two) is past what wasm32 can give.
    expect(() => tokenizer.encode('a'.repeat(7_000_000))).toThrow(/out of memory|too large/);
    expect(await runCanary()).toEqual(canary);
    // Again, so that a freed pointer kept by the first failure would be freed twice here.
    expect(() => tokenizer.encode('b'.repeat(7_000_000))).toThrow(/out of memory|too large/);
    expect(await runCanary()).toEqual(canary);
  });

  it('1: prompts are bounded in characters before tokenizing, on every route, with a 400 naming the field', async () => {
    // tinystories: maxModelLen 512, so the default bound is 32 x 512 characters.
    const limit = 32 * 512;
    const huge = 'a'.repeat(6_500_000);
    const cases: [string, unknown, string][] = [
      ['/tokenize', { model: MODEL, prompt: huge }, 'prompt'],
      ['/tokenize', { model: MODEL, messages: [{ role: 'user', content: huge }] }, 'messages'],
      ['/v1/completions', { model: MODEL, prompt: huge, max_tokens: 1 }, 'prompt'],
      ['/v1/completions', { model: MODEL, prompt: ['Tom', 'b'.repeat(limit)], max_tokens: 1 }, 'prompt'],
      ['/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: [{ type: 'text', text: huge }] }], max_tokens: 1 }, 'messages'],
    ];
    for (const [path, body, param] of cases) {
      const res = await post(path, body);
      expect(res.status, path).toBe(400);
      const { error } = await res.json();
      expect(error).toMatchObject({ type: 'BadRequestError', param, code: 400 });
      expect(error.message).toContain(`limit of ${limit}`);
    }
    // At the limit is fine (and tokenizes).
    const at = await post('/tokenize', { model: MODEL, prompt: 'a '.repeat(limit / 2) });
    expect(at.status).toBe(200);
    // A server may set its own bound.
    const small = createApp({ llm, servedModelName: MODEL, maxPromptChars: 10 });
    expect((await post('/tokenize', { model: MODEL, prompt: 'eleven char' }, small)).status).toBe(400);
    expect((await post('/tokenize', { model: MODEL, prompt: 'ten chars!' }, small)).status).toBe(200);
    expect(await runCanary()).toEqual(canary);
  });

  it('2: logprobs and prompt_logprobs are capped at max logprobs (20), -1 (whole vocabulary) included, naming the field', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['/v1/completions', { prompt: CANARY, logprobs: -1 }, 'logprobs'],
      ['/v1/completions', { prompt: CANARY, logprobs: 21 }, 'logprobs'],
      ['/v1/completions', { prompt: CANARY, prompt_logprobs: -1 }, 'prompt_logprobs'],
      ['/v1/completions', { prompt: CANARY, prompt_logprobs: 50 }, 'prompt_logprobs'],
      ['/v1/completions', { prompt: CANARY, logprobs: -2 }, 'logprobs'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], prompt_logprobs: -1 }, 'prompt_logprobs'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], logprobs: true, top_logprobs: -1 }, 'top_logprobs'],
    ];
    const chatApp = createApp({ llm, servedModelName: MODEL, chatTemplate: '{% for m in messages %}{{ m.content }}{% endfor %}' });
    for (const [path, body, param] of cases) {
      const res = await post(path, { model: MODEL, max_tokens: 2, ...body }, chatApp);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await res.json()).error).toMatchObject({ type: 'BadRequestError', param, code: 400 });
    }
    // The cap itself is fine, for both fields.
    const at = await post('/v1/completions', { model: MODEL, prompt: 'Tom', max_tokens: 2, temperature: 0, logprobs: 20, prompt_logprobs: 20 });
    expect(at.status).toBe(200);
    expect(Object.keys((await at.json()).choices[0].logprobs.top_logprobs[0]).length).toBeGreaterThanOrEqual(20);
    // The LLM API: the same cap; -1 passes only where the cap covers the whole vocabulary (maxLogprobs -1).
    await expect(llm.generate('Tom', new SamplingParams({ maxTokens: 1, logprobs: -1 }))).rejects.toThrow(/logprobs.*20/);
    await expect(llm.generate('Tom', new SamplingParams({ maxTokens: 1, promptLogprobs: 21 }))).rejects.toThrow(/promptLogprobs.*20/);
    // Beam search takes 2 x beamWidth logprobs a step: a width past the cap is refused in its own terms.
    await expect(llm.beamSearch(['Tom'], new BeamSearchParams({ beamWidth: 11, maxTokens: 2 }))).rejects.toThrow(/beamWidth must be at most 10/);
    expect((await llm.beamSearch(['Tom'], new BeamSearchParams({ beamWidth: 10, maxTokens: 2 })))[0].sequences).toHaveLength(10);
    expect(await runCanary()).toEqual(canary);
  });

  it('4: chunked request bodies and OPTIONS work over node:http; CORS preflight with allowed origins', async () => {
    /** A raw HTTP request (fetch would not send OPTIONS with a body or a chunked body of our making). */
    const raw = (url: string, method: string, headers: Record<string, string>, chunks: string[]) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = httpRequest(url, { method, headers }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        });
        req.on('error', reject);
        for (const c of chunks) req.write(c);
        req.end();
      });
    const server = await serve({ llm, host: '127.0.0.1', port: 0, servedModelName: MODEL, maxBodyBytes: 4096 });
    const cors = await serve({ llm, host: '127.0.0.1', port: 0, servedModelName: MODEL, allowedOrigins: ['https://app.example'] });
    try {
      const body = JSON.stringify({ model: MODEL, prompt: CANARY, max_tokens: 12, temperature: 0 });
      const chunked = await raw(`${server.url}/v1/completions`, 'POST', { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, [body.slice(0, 10), body.slice(10)]);
      expect(chunked.status, chunked.body).toBe(200);
      expect(JSON.parse(chunked.body).choices[0].text).toBe(canary.text);
      // Chunked past the limit: 413, not 500.
      const big = await raw(`${server.url}/v1/completions`, 'POST', { 'transfer-encoding': 'chunked' }, ['{"prompt": "', 'x'.repeat(3000), 'x'.repeat(3000), '"}']);
      expect(big.status).toBe(413);
      expect(JSON.parse(big.body).error.code).toBe(413);
      // OPTIONS without CORS configured: 204 naming the allowed methods; an unknown path stays 404.
      const options = await raw(`${server.url}/v1/completions`, 'OPTIONS', {}, []);
      expect(options.status).toBe(204);
      expect(options.headers.allow).toBe('POST, OPTIONS');
      expect((await raw(`${server.url}/v1/models`, 'OPTIONS', {}, [])).headers.allow).toBe('GET, OPTIONS');
      expect((await raw(`${server.url}/v1/nothing`, 'OPTIONS', {}, [])).status).toBe(404);
      // With allowed origins: preflight answers for an allowed origin, and responses carry the header.
      const preflight = await raw(`${cors.url}/v1/chat/completions`, 'OPTIONS', { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' }, []);
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example');
      expect(String(preflight.headers['access-control-allow-methods'])).toContain('POST');
      const other = await raw(`${cors.url}/v1/models`, 'GET', { origin: 'https://evil.example' }, []);
      expect(other.status).toBe(200);
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
      const allowed = await raw(`${cors.url}/v1/models`, 'GET', { origin: 'https://app.example' }, []);
      expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example');
    } finally {
      await server.close();
      await cors.close();
    }
    expect(await runCanary()).toEqual(canary);
  });

  it('6: an empty API key is no key; /v1/models does not show the model path', async () => {
    const open = createApp({ llm, servedModelName: MODEL, apiKey: '' });
    const res = await open.fetch(new Request('http://local/v1/models'));
    expect(res.status).toBe(200);
    const { data } = await res.json();
    // The test loads the model from an absolute folder: neither it nor any path may show.
    expect(llm.options.model).toMatch(/^\//);
    expect(data[0].root).toBe(MODEL);
    expect(JSON.stringify(data)).not.toContain(llm.options.model!);
    const keyed = createApp({ llm, servedModelName: MODEL, apiKey: 'k' });
    expect((await keyed.fetch(new Request('http://local/v1/models'))).status).toBe(401);
  });

  it('6: SamplingParams checks every field type, naming the field and the expected type', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ maxTokens: '10' }, /^maxTokens must be an integer or null, got "10"/],
      [{ stop: 5 }, /^stop must be a string, a list of strings or null, got 5/],
      [{ ignoreEos: 'yes' }, /^ignoreEos must be a boolean, got "yes"/],
      [{ badWords: 'x' }, /^badWords must be a list of strings or null, got "x"/],
      [{ temperature: '0.5' }, /^temperature must be a number, got "0.5"/],
      [{ n: 1.5 }, /^n must be an integer, got 1.5/],
      [{ stopTokenIds: [1, '2'] }, /^stopTokenIds must be a list of integers or null/],
      [{ logitBias: [1, 2] }, /^logitBias must be/],
      [{ logitsProcessors: ['f'] }, /^logitsProcessors must be a list of functions or null/],
      [{ outputKind: 'all' }, /^outputKind must be 'cumulative', 'delta' or 'final', got "all"/],
      [{ seed: {} }, /^seed must be an integer or null, got \{\}/],
      [{ detokenize: 1 }, /^detokenize must be a boolean, got 1/],
    ];
    for (const [init, message] of cases) {
      let err: unknown;
      try {
        new SamplingParams(init as never);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(init)).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe(Object.keys(init)[0]);
      expect((err as Error).message).toMatch(message);
    }
    // Right types still pass, ranges are still checked after types.
    expect(new SamplingParams({ maxTokens: 10, stop: 'x', ignoreEos: true, badWords: ['x'], logitBias: { 3: 1 }, seed: null }).maxTokens).toBe(10);
    expect(() => new SamplingParams({ maxTokens: 0 })).toThrow(/maxTokens must be at least 1, got 0/);
  });

  it('6: a disposed LLM says so', async () => {
    const other = await loadLLM(modelDir('tinystories-656K'));
    await other.dispose();
    expect(() => other.engine).toThrow(/disposed/);
    await expect(other.generate('Tom', new SamplingParams({ maxTokens: 1 }))).rejects.toThrow(/disposed/);
  });

  it('3: a request chat template is refused unless trusted; every template renders within a step budget', async () => {
    const messages = [{ role: 'user', content: 'Tom had a dog.' }];
    const heavy = '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{{ messages[0].content }}';
    const light = '{% for m in messages %}{{ m.content }}{% endfor %}';
    // Untrusted (the default): refused before rendering, on chat and on /tokenize, naming the field.
    for (const [path, extra] of [['/v1/chat/completions', { max_tokens: 2 }], ['/tokenize', {}]] as const) {
      for (const body of [{ chat_template: light }, { chat_template_kwargs: { chat_template: light } }]) {
        const res = await post(path, { model: MODEL, messages, ...extra, ...body });
        expect(res.status, path).toBe(400);
        const { error } = await res.json();
        expect(error.param).toBe('chat_template');
        expect(error.message).toMatch(/trust-request-chat-template/);
      }
    }
    // Trusted: a request template renders, but a runaway one stops at the budget with a 400, in well under a second
    // of the 10^10 steps it asked for.
    const trusted = createApp({ llm, servedModelName: MODEL, trustRequestChatTemplate: true });
    const ok = await post('/tokenize', { model: MODEL, messages, chat_template: light }, trusted);
    expect(ok.status).toBe(200);
    expect((await ok.json()).tokens).toEqual(llm.engine.tokenizer.encode('Tom had a dog.', { addSpecialTokens: false }));
    const t0 = Date.now();
    const runaway = await post('/tokenize', { model: MODEL, messages, chat_template: heavy }, trusted);
    expect(runaway.status).toBe(400);
    expect((await runaway.json()).error.message).toMatch(/chat template.*budget/);
    expect(Date.now() - t0).toBeLessThan(5000);
    // The server's own template is bounded too (the model's would be the same).
    const own = createApp({ llm, servedModelName: MODEL, chatTemplate: heavy, chatTemplateMaxSteps: 10_000 });
    const res = await post('/v1/chat/completions', { model: MODEL, messages, max_tokens: 2 }, own);
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/10000 steps/);
    expect(await runCanary()).toEqual(canary);
  });

  it('5: shutdown stops accepting, lets short streams finish, ends the rest with an error event and [DONE]', async () => {
    const server = await serve({ llm, host: '127.0.0.1', port: 0, servedModelName: MODEL });
    const stream = (max: number) =>
      fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, prompt: 'Tom', max_tokens: max, ignore_eos: true, temperature: 0, stream: true }),
      });
    const [long, short] = await Promise.all([stream(500), stream(4)]);
    // Shut down once the short stream's first token is out (its prompt done), so that the grace period covers its
    // last 3 steps even on a loaded machine; the long one's ~500 steps outlast it.
    const reader = short.body!.getReader();
    const first = await reader.read();
    const done = server.shutdown(400);
    const decoder = new TextDecoder();
    let text = decoder.decode(first.value, { stream: true });
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += decoder.decode(r.value, { stream: true });
    const parse = (body: string) => body.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
    const shortEvents = parse(text + decoder.decode());
    const longEvents = parse(await long.text());
    await done;
    // The short one finished in the grace period: its last chunk has a finish reason, no error.
    expect(shortEvents.at(-1)).toBe('[DONE]');
    expect(JSON.parse(shortEvents.at(-2)!).choices[0].finish_reason).toBe('length');
    // The long one was cut: an error event (503) right before [DONE], after some tokens.
    expect(longEvents.at(-1)).toBe('[DONE]');
    expect(JSON.parse(longEvents.at(-2)!).error).toMatchObject({ code: 503, type: 'ServiceUnavailableError' });
    const tokens = longEvents.slice(0, -2).length;
    expect(tokens).toBeGreaterThan(0);
    expect(tokens).toBeLessThan(500);
    // No new connections; the engine still serves (the canary, exact).
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
    expect(await runCanary()).toEqual(canary);
  });

  it('fuzz: 2000 malformed requests all get a 4xx with an OpenAI error body; memory stays bounded; canary exact', async () => {
    // A seeded generator (mulberry32), so a failure names a reproducible case.
    let state = 19;
    const rand = () => {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    // Each entry: a field and values no server may accept for it (wrong type, range or size).
    const bad: Record<string, unknown[]> = {
      temperature: [-1, 'x', {}, [], true, 'inf'],
      top_p: [0, 2, 'a', -0.5],
      top_k: [-2, 1.5, 'k'],
      min_p: [2, -1, '0.1'],
      max_tokens: [0, -5, 1.5, '10', 10_000, {}],
      n: [0, -1, 'x', 2.5],
      logprobs: [-1, 21, 'x', 1.5, 1000],
      prompt_logprobs: [-2, 100, -1, 'p'],
      stop: [5, [1], {}, [''], [null]],
      seed: ['x', 1.5, {}],
      presence_penalty: [3, -3, 'p'],
      frequency_penalty: [2.5, []],
      repetition_penalty: [0, -1, 'r'],
      logit_bias: [{ a: 1 }, [1], 'b', { 999999: 1 }],
      stop_token_ids: [[-1], ['x'], 5, [1e12]],
      allowed_token_ids: [[], [-1], 'x'],
      bad_words: ['x', [1], {}],
      ignore_eos: ['yes', 1],
      truncate_prompt_tokens: [0, -2, 'x'],
      model: ['nope', 5, {}],
      stream: ['yes', 1],
      stream_options: [{ include_usage: true }, 'x'],
    };
    const prompts: unknown[] = [5, {}, [[-1]], [[1e9]], [1.5], [[]], 'x'.repeat(32 * 512 + 1), [true], null];
    const messages: unknown[] = [[], [{ role: 5 }], 'x', [{ role: 'user', content: 5 }], [{ content: 'hi' }], [{ role: 'user', content: [{ type: 'image', x: 1 }] }], null];
    const raws = ['', '{', '[]', '"x"', '5', 'null', '{"prompt": }', '['.repeat(5000), '{"a":'.repeat(3000), '\u0000{'];
    const statuses = new Map<number, number>();
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 2000; i++) {
      const kind = rand();
      let path: string;
      let body: string | Uint8Array<ArrayBuffer>;
      if (kind < 0.1) {
        path = pick(['/v1/completions', '/v1/chat/completions', '/tokenize', '/detokenize']);
        body = pick(raws);
      } else if (kind < 0.15) {
        path = pick(['/v1/completions', '/v1/chat/completions']);
        body = new Uint8Array(Array.from({ length: 1 + Math.floor(rand() * 64) }, (_, j) => (j === 0 ? 0x7b : Math.floor(rand() * 256))));
      } else if (kind < 0.25) {
        path = '/detokenize';
        body = JSON.stringify({ model: MODEL, tokens: pick([[-1], [1e9], 'x', [1.5], null, [[1]]]) });
      } else if (kind < 0.35) {
        path = '/tokenize';
        body = JSON.stringify(rand() < 0.5 ? { model: MODEL, prompt: pick(prompts.filter((p) => typeof p !== 'string' || p.length > 1000)) } : { model: MODEL, messages: pick(messages) });
      } else {
        const chat = rand() < 0.5;
        path = chat ? '/v1/chat/completions' : '/v1/completions';
        const req: Record<string, unknown> = chat ? { model: MODEL, messages: [{ role: 'user', content: 'Tom' }], max_tokens: 2 } : { model: MODEL, prompt: 'Tom', max_tokens: 2 };
        const nFields = 1 + Math.floor(rand() * 3);
        for (let k = 0; k < nFields; k++) {
          const field = pick(Object.keys(bad));
          req[field] = pick(bad[field]);
        }
        if (rand() < 0.2) req[chat ? 'messages' : 'prompt'] = pick(chat ? messages : prompts);
        body = JSON.stringify(req);
      }
      const res = await app.fetch(new Request(`http://local${path}`, { method: 'POST', body }));
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const what = `case ${i}: ${path} ${typeof body === 'string' ? body.slice(0, 200) : `bytes ${Array.from(body).join(',')}`} -> ${res.status} ${text.slice(0, 200)}`;
      expect(res.status >= 400 && res.status < 500, what).toBe(true);
      const { error } = JSON.parse(text);
      expect(error, what).toMatchObject({ message: expect.any(String), type: expect.any(String), code: res.status });
    }
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(256 << 20);
    expect([...statuses.keys()].every((s) => [400, 404, 413].includes(s))).toBe(true);
    expect(await runCanary()).toEqual(canary);
  }, 120_000);

  it('fuzz: SamplingParams takes or refuses 3000 random inits, always with an InvalidArgumentError naming a field', () => {
    let state = 7;
    const rand = () => {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const values: unknown[] = [0, 1, -1, 2, 0.5, 1.5, -0.5, 1e9, NaN, Infinity, -Infinity, '', 'x', '10', true, false, null, {}, [], [1], ['a'], [''], { 1: 2 }, () => 0, [() => 0], new Map([[1, 2]]), 'cumulative'];
    const fields = Object.keys(new SamplingParams()).filter((k) => k !== 'setFields');
    let ok = 0;
    for (let i = 0; i < 3000; i++) {
      const init: Record<string, unknown> = {};
      for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) init[pick(fields)] = pick(values);
      try {
        new SamplingParams(init);
        ok++;
      } catch (e) {
        expect(e, `${i}: ${String(Object.entries(init))}`).toBeInstanceOf(InvalidArgumentError);
        expect(Object.keys(init).concat(['minTokens', 'bestOf'])).toContain((e as InvalidArgumentError).field);
      }
    }
    expect(ok).toBeGreaterThan(50); // the values include right ones, so some inits pass
  });
});
