/**
 * The server's request timeout (ServerOptions.requestTimeoutMs, serve --request-timeout): a request that runs past
 * it is aborted alone (its KV blocks freed) and answers 408 with an OpenAI error body (a stream: an error event, then
 * `[DONE]`), while a request beside it in the same batches finishes with exactly its greedy tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LLM, SamplingParams } from '../bindings/node/index.js';
import { createApp } from '../bindings/node/server.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

const MODEL = 'tiny';
const TIMEOUT_MS = 250;

describe('request timeout (tinystories-656K)', () => {
  let llm: LLM;
  let timed: ReturnType<typeof createApp>;
  let free: ReturnType<typeof createApp>;
  const post = (a: ReturnType<typeof createApp>, path: string, body: unknown) =>
    a.fetch(new Request(`http://local${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
  /** 200 greedy tokens, through the app without a timeout; its text must equal the library's. */
  const canaryBody = { model: MODEL, prompt: 'Once upon a time', max_tokens: 200, ignore_eos: true, temperature: 0 };
  let canaryText: string;

  beforeAll(async () => {
    llm = await loadLLM(modelDir('tinystories-656K'));
    timed = createApp({ llm, servedModelName: MODEL, requestTimeoutMs: TIMEOUT_MS });
    free = createApp({ llm, servedModelName: MODEL });
    const [ref] = await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 200, ignoreEos: true }));
    canaryText = ref.outputs[0].text;
  });
  afterAll(async () => {
    await llm?.dispose();
  });

  it('refuses a timeout that is not a positive number', () => {
    expect(() => createApp({ llm, requestTimeoutMs: 0 })).toThrow(/requestTimeoutMs/);
    expect(() => createApp({ llm, requestTimeoutMs: Number.NaN })).toThrow(/requestTimeoutMs/);
  });

  it('a short request within the timeout is untouched', async () => {
    const res = await post(timed, '/v1/completions', { model: MODEL, prompt: 'Tom', max_tokens: 2, temperature: 0 });
    expect(res.status).toBe(200);
    expect((await res.json()).choices[0].finish_reason).toBe('length');
  });

  it('a request past the timeout fails alone with 408; the request beside it finishes exactly', async () => {
    const t0 = performance.now();
    // The stream's client reads one chunk and then waits: the request stays open past the timeout for certain.
    const [long, stream, canary] = await Promise.all([
      post(timed, '/v1/completions', { model: MODEL, prompt: 'Tom', max_tokens: 480, ignore_eos: true, temperature: 0 }),
      post(timed, '/v1/completions', { model: MODEL, prompt: 'Lily', max_tokens: 400, ignore_eos: true, stream: true }),
      post(free, '/v1/completions', canaryBody),
    ]);
    expect(long.status).toBe(408);
    const err = (await long.json()).error;
    expect(err).toMatchObject({ code: 408, type: 'RequestTimeoutError', param: null });
    expect(err.message).toMatch(/request timeout of 0.25 s/);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);

    const reader = stream.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toMatch(/^data: /);
    await new Promise((r) => setTimeout(r, TIMEOUT_MS * 2));
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    const events = rest.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
    expect(events.at(-1)).toBe('[DONE]');
    expect(JSON.parse(events.at(-2)!).error).toMatchObject({ code: 408, type: 'RequestTimeoutError' });

    expect(canary.status).toBe(200);
    const body = await canary.json();
    expect(body.choices[0].text).toBe(canaryText);
    expect(body.choices[0].finish_reason).toBe('length');
    // Nothing of the timed-out requests is left running: the engine idles, and serves the canary again exactly.
    await new Promise((r) => setTimeout(r, 50));
    expect((llm.engine as unknown as { scheduler: { hasUnfinishedRequests(): boolean } }).scheduler.hasUnfinishedRequests()).toBe(false);
    // (through the app without a timeout: 8 tokens can take longer than 0.25 s on a loaded machine)
    const again = await post(free, '/v1/completions', { ...canaryBody, max_tokens: 8 });
    expect((await again.json()).choices[0].text).toBe(canaryText.slice(0, (await llm.generate('Once upon a time', new SamplingParams({ temperature: 0, maxTokens: 8, ignoreEos: true })))[0].outputs[0].text.length));
  });
});
