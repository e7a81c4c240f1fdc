/**
 * The Responses API store, as vLLM serves it with VLLM_ENABLE_RESPONSES_API_STORE=1 (serving_responses.py:
 * store, previous_response_id, retrieve_responses, cancel_responses, background; its not-found and cancel errors),
 * plus OpenAI's DELETE, through the official `openai` client on qwen3-rand. A continued conversation is checked
 * against the chat route given the whole conversation: the same prompt tokens and the same greedy text. The store's
 * bounds (entries, bytes) are checked on the store itself.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LLM } from '../bindings/node/index.js';
import { createApp } from '../bindings/node/server.js';
import { ResponseStore } from '../src/server/responses-store.js';
import type { ResponseObject } from '../src/server/responses-protocol.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

const MODEL = 'qwen3-rand';

/** An OpenAI client whose requests go to `app.fetch` (no socket). */
function clientOf(app: ReturnType<typeof createApp>): OpenAI {
  return new OpenAI({ baseURL: 'http://x/v1', apiKey: 'none', maxRetries: 0, fetch: ((url: string, init: RequestInit) => app.fetch(new Request(url, init))) as never });
}

/** Polls a background response until it leaves queued / in_progress (bounded by steps, not by time). */
async function settle(client: OpenAI, id: string): Promise<OpenAI.Responses.Response> {
  for (let i = 0; i < 2000; i++) {
    const r = await client.responses.retrieve(id);
    if (r.status !== 'queued' && r.status !== 'in_progress') return r;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`response ${id} never finished`);
}

describe('Responses API store (qwen3-rand)', () => {
  let llm: LLM;
  let stored: OpenAI;
  let plain: OpenAI;
  let app: ReturnType<typeof createApp>;
  let none: ReturnType<typeof createApp>;
  const raw = (a: ReturnType<typeof createApp>, method: string, path: string, body?: object) =>
    a.fetch(new Request(`http://x${path}`, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) }));

  beforeAll(async () => {
    llm = await loadLLM(modelDir(MODEL));
    app = createApp({ llm, servedModelName: MODEL, responsesStore: true });
    none = createApp({ llm, servedModelName: MODEL });
    stored = clientOf(app);
    plain = clientOf(none);
  });
  afterAll(async () => {
    await llm?.dispose();
  });

  it('store (the default) keeps a response: GET returns it; store: false does not', async () => {
    const r = await stored.responses.create({ model: MODEL, input: 'Hello', max_output_tokens: 4, temperature: 0 });
    expect(r).toMatchObject({ store: true });
    expect(r.id).toMatch(/^resp_[0-9a-f]{32}$/);
    expect(await stored.responses.retrieve(r.id)).toEqual(r);
    const off = await stored.responses.create({ model: MODEL, input: 'Hello', max_output_tokens: 2, store: false });
    expect(off).toMatchObject({ store: false });
    await expect(stored.responses.retrieve(off.id)).rejects.toMatchObject({ status: 404 });
  });

  it('previous_response_id continues the conversation: the chat route on the whole of it gives the same prompt and text', async () => {
    const first = await stored.responses.create({ model: MODEL, instructions: 'Be brief.', input: 'Hello', max_output_tokens: 6, temperature: 0 });
    const second = await stored.responses.create({ model: MODEL, previous_response_id: first.id, input: 'Tell me more', max_output_tokens: 6, temperature: 0 });
    expect(second.previous_response_id).toBe(first.id);
    const chat = await stored.chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello' },
        { role: 'assistant', content: first.output_text },
        { role: 'user', content: 'Tell me more' },
      ],
      max_tokens: 6,
      temperature: 0,
    });
    expect(second.usage!.input_tokens).toBe(chat.usage!.prompt_tokens);
    expect(second.output_text).toBe(chat.choices[0].message.content ?? '');
    // A third turn carries both earlier ones (vLLM's msg_store holds the whole conversation).
    const third = await stored.responses.create({ model: MODEL, previous_response_id: second.id, input: 'And?', max_output_tokens: 2, temperature: 0 });
    expect(third.usage!.input_tokens).toBeGreaterThan(second.usage!.input_tokens + 2);
  });

  it('a streamed response is stored as its final event carries it', async () => {
    const stream = await stored.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 4, temperature: 0, stream: true });
    let final: OpenAI.Responses.Response | null = null;
    for await (const e of stream) if (e.type === 'response.completed' || e.type === 'response.incomplete') final = e.response;
    expect(final).not.toBeNull();
    // (The client adds output_text to what it retrieves, not to an event's response.)
    const got = await stored.responses.retrieve(final!.id);
    expect({ ...got, output_text: undefined }).toEqual({ ...final, output_text: undefined });
  });

  it("vLLM's errors: unknown ids 404, cancelling a finished response 400; DELETE removes one", async () => {
    const r = await stored.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 2 });
    const cancel = await raw(app, 'POST', `/v1/responses/${r.id}/cancel`);
    expect(cancel.status).toBe(400);
    expect((await cancel.json()).error).toMatchObject({ message: 'Cannot cancel a synchronous response.', param: 'response_id' });
    expect(await stored.responses.delete(r.id)).toEqual({ id: r.id, object: 'response', deleted: true });
    for (const [method, path] of [['GET', `/v1/responses/${r.id}`], ['DELETE', `/v1/responses/${r.id}`], ['POST', `/v1/responses/${r.id}/cancel`]]) {
      const res = await raw(app, method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect((await res.json()).error).toMatchObject({ message: `Response with id '${r.id}' not found.`, param: 'response_id', code: 404 });
    }
    const missing = await raw(app, 'POST', '/v1/responses', { model: MODEL, input: 'Hi', previous_response_id: 'resp_nope' });
    expect(missing.status).toBe(404);
    // A hostile id is looked up, never echoed whole.
    const long = await raw(app, 'GET', `/v1/responses/${'x'.repeat(5000)}`);
    expect(long.status).toBe(404);
    expect((await long.json()).error.message.length).toBeLessThan(200);
  });

  it('background: answered queued at once, then completed with the text a foreground request gives; cancel stops it', async () => {
    const req = { model: MODEL, input: 'Once upon a time', max_output_tokens: 5, temperature: 0 } as const;
    const fg = await stored.responses.create(req);
    const bg = await stored.responses.create({ ...req, background: true });
    expect(bg).toMatchObject({ status: 'queued', background: true, store: true, output: [] });
    const done = await settle(stored, bg.id);
    expect(done.status).toBe(fg.status);
    expect(done.output_text).toBe(fg.output_text);
    expect(done.usage).toEqual(fg.usage);

    const aborted = llm.engine.metrics.requestsFinished.abort;
    const long = await stored.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 500, ignore_eos: true, background: true } as never);
    const cancelled = await stored.responses.cancel(long.id);
    expect(cancelled.status).toBe('cancelled');
    expect((await settle(stored, long.id)).status).toBe('cancelled');
    // Its engine request was aborted (not run to its 500 tokens): the engine drains with one more abort.
    const busy = () => llm.engine.stats.numRunning + llm.engine.stats.numWaiting > 0;
    for (let i = 0; i < 2000 && busy(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(busy()).toBe(false);
    expect(llm.engine.metrics.requestsFinished.abort).toBe(aborted + 1);
    expect((await stored.responses.retrieve(long.id)).output).toEqual([]);
  });

  it('without a store (vLLM\'s default): store is false, ids are not found, background is refused', async () => {
    const r = await plain.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 2 });
    expect(r).toMatchObject({ store: false });
    await expect(plain.responses.retrieve(r.id)).rejects.toMatchObject({ status: 404 });
    const prev = await raw(none, 'POST', '/v1/responses', { model: MODEL, input: 'Hi', previous_response_id: r.id });
    expect(prev.status).toBe(404);
    const bg = await raw(none, 'POST', '/v1/responses', { model: MODEL, input: 'Hi', background: true });
    expect(bg.status).toBe(400);
    expect((await bg.json()).error).toMatchObject({ param: 'background', message: expect.stringMatching(/does not support `store=True`.*VLLM_ENABLE_RESPONSES_API_STORE=1/) });
    const noStore = await raw(app, 'POST', '/v1/responses', { model: MODEL, input: 'Hi', background: true, store: false });
    expect((await noStore.json()).error).toMatchObject({ param: 'background', message: 'background can only be used when `store` is true' });
  });
});

describe('ResponseStore bounds', () => {
  const response = (id: string, text = ''): ResponseObject => ({ id, object: 'response', output: [{ type: 'message', content: [{ text }] }] }) as never;

  it('keeps at most maxEntries, evicting the oldest', () => {
    const s = new ResponseStore({ maxEntries: 2 });
    for (const id of ['a', 'b', 'c']) expect(s.put(response(id), [])).toBe(true);
    expect([s.get('a'), !!s.get('b'), !!s.get('c')]).toEqual([undefined, true, true]);
    expect(s.size).toBe(2);
  });

  it('keeps at most maxBytes; one larger alone is not kept; bytes are returned on delete and update', () => {
    const one = JSON.stringify(response('a', 'x'.repeat(100))).length + JSON.stringify([]).length;
    const s = new ResponseStore({ maxBytes: 2 * one + 10 });
    expect(s.put(response('a', 'x'.repeat(100)), [])).toBe(true);
    expect(s.put(response('b', 'y'.repeat(100)), [])).toBe(true);
    expect(s.usedBytes).toBe(2 * one);
    expect(s.put(response('c', 'z'.repeat(100)), [])).toBe(true);
    expect(s.get('a')).toBeUndefined();
    expect(s.usedBytes).toBe(2 * one);
    expect(s.put(response('big', 'w'.repeat(1000)), [])).toBe(false);
    expect(s.get('big')).toBeUndefined();
    expect(s.update(response('b', ''))).toBe(true);
    expect(s.usedBytes).toBeLessThan(2 * one);
    expect(s.delete('b') && s.delete('c')).toBe(true);
    expect([s.size, s.usedBytes]).toEqual([0, 0]);
    expect(() => new ResponseStore({ maxEntries: 0 })).toThrow(/maxEntries must be a positive integer/);
  });
});
