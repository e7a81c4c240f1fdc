/**
 * The Responses API (POST /v1/responses) through the official `openai` client, on qwen3-rand (real Qwen3 tokenizer
 * and chat template, random weights): the greedy output text equals the chat route's for the same conversation
 * (instructions, message items, function calls and their outputs), streamed events come in OpenAI's order with
 * sequence numbers, tools come back as function_call items whose arguments follow the tool's schema, text.format
 * json_schema output validates, reasoning becomes a reasoning item, and what the server cannot do is a 400 naming
 * the field.
 */
import Ajv from 'ajv';
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from '../bindings/node/server.js';
import { modelDir } from './helpers/paths.js';
import { serveForTests } from './helpers/server.js';

const MODEL = 'qwen3-rand';
const WEATHER = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 8 }, unit: { enum: ['c', 'f'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
  required: ['city', 'unit', 'days'],
  additionalProperties: false,
};
/** Responses' flat function tools, and the same tools in chat's nested form. */
const TOOLS = [{ type: 'function' as const, name: 'get_weather', description: 'Weather', parameters: WEATHER, strict: true }];
const CHAT_TOOLS = [{ type: 'function' as const, function: { name: 'get_weather', description: 'Weather', parameters: WEATHER, strict: true } }];
/** Random weights write whitespace in JSON as readily as anything: vLLM's option keeps constrained output short. */
const COMPACT = { structured_outputs: { disable_any_whitespace: true } };

type Event = OpenAI.Responses.ResponseStreamEvent;

/** Collects a stream's events, checking that sequence numbers count from 0 by one. */
async function collect(stream: AsyncIterable<Event>): Promise<Event[]> {
  const events: Event[] = [];
  for await (const e of stream) events.push(e);
  expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
  return events;
}

describe('Responses API through the server (qwen3-rand)', () => {
  const served = serveForTests(modelDir(MODEL), { servedModelName: [MODEL] });
  const ajv = new Ajv();

  // One conversation in both forms: instructions + input items, and chat messages.
  const input: OpenAI.Responses.ResponseInput = [
    { role: 'user', content: [{ type: 'input_text', text: 'Hello' }] },
    { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hi there', annotations: [] }] } as never,
    { role: 'developer', content: 'Answer in French.' },
    { role: 'user', content: 'Tell me about Paris' },
  ];
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hello' },
    { role: 'assistant', content: 'Hi there' },
    { role: 'system', content: 'Answer in French.' },
    { role: 'user', content: 'Tell me about Paris' },
  ];

  it('non-streamed: the chat route\'s greedy text, usage, the request echoed, incomplete at max_output_tokens', async () => {
    const chat = await served.client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 12 });
    const r = await served.client.responses.create({ model: MODEL, instructions: 'Be brief.', input, temperature: 0, max_output_tokens: 12, metadata: { run: 'a' }, user: 'u1' });
    expect(r.id).toMatch(/^resp_/);
    expect(r).toMatchObject({ object: 'response', model: MODEL, store: false, metadata: { run: 'a' }, user: 'u1', instructions: 'Be brief.', max_output_tokens: 12, error: null });
    expect(chat.choices[0].finish_reason).toBe('length');
    expect(r.status).toBe('incomplete');
    expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(r.output).toHaveLength(1);
    const msg = r.output[0] as OpenAI.Responses.ResponseOutputMessage;
    expect(msg).toMatchObject({ type: 'message', role: 'assistant', status: 'incomplete' });
    expect(msg.id).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(msg.content).toEqual([{ type: 'output_text', text: chat.choices[0].message.content, annotations: [], logprobs: [] }]);
    expect(r.output_text).toBe(chat.choices[0].message.content);
    expect(r.usage).toEqual({
      input_tokens: chat.usage!.prompt_tokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 12,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: chat.usage!.prompt_tokens + 12,
    });
    // A plain string input is one user message; a stop string ends the response 'completed'.
    const plain = await served.client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], temperature: 0, max_tokens: 6 });
    const s = await served.client.responses.create({ model: MODEL, input: 'Hi', temperature: 0, max_output_tokens: 6 });
    expect(s.output_text).toBe(plain.choices[0].message.content);
    const stop = plain.choices[0].message.content!.slice(2, 4);
    const stopped = await served.client.responses.create({ model: MODEL, input: 'Hi', temperature: 0, max_output_tokens: 6, stop } as never);
    expect(stopped.status).toBe('completed');
    expect(stopped.incomplete_details).toBeNull();
    expect(plain.choices[0].message.content!.startsWith(stopped.output_text)).toBe(true);
  });

  it('output_text logprobs with include, as the chat route gives them', async () => {
    const chat = await served.client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 5, logprobs: true, top_logprobs: 2 });
    const r = await served.client.responses.create({ model: MODEL, instructions: 'Be brief.', input, temperature: 0, max_output_tokens: 5, include: ['message.output_text.logprobs'], top_logprobs: 2 });
    const part = (r.output[0] as OpenAI.Responses.ResponseOutputMessage).content[0] as OpenAI.Responses.ResponseOutputText;
    expect(part.logprobs).toEqual(chat.choices[0].logprobs!.content);
    expect(part.logprobs!.map((l) => l.token).join('')).toBe(part.text);
    // Streamed: each text delta carries its tokens' logprobs.
    const events = await collect(await served.client.responses.create({ model: MODEL, instructions: 'Be brief.', input, temperature: 0, max_output_tokens: 5, include: ['message.output_text.logprobs'], top_logprobs: 2, stream: true }));
    const streamed = events.flatMap((e) => (e.type === 'response.output_text.delta' ? e.logprobs : []));
    expect(streamed).toEqual(part.logprobs);
    const done = events.find((e) => e.type === 'response.output_text.done') as OpenAI.Responses.ResponseTextDoneEvent;
    expect(done.logprobs).toEqual(part.logprobs);
  });

  it('streamed: OpenAI\'s event sequence, the same text and usage, and the stream helper\'s final response', async () => {
    const whole = await served.client.responses.create({ model: MODEL, instructions: 'Be brief.', input, temperature: 0, max_output_tokens: 12 });
    const events = await collect(await served.client.responses.create({ model: MODEL, instructions: 'Be brief.', input, temperature: 0, max_output_tokens: 12, stream: true }));
    const types = events.map((e) => e.type);
    const deltas = types.filter((t) => t === 'response.output_text.delta').length;
    expect(deltas).toBeGreaterThan(1);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.incomplete',
    ]);
    const created = events[0] as OpenAI.Responses.ResponseCreatedEvent;
    expect(created.response).toMatchObject({ status: 'in_progress', output: [], usage: null, object: 'response' });
    const text = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    expect(text).toBe(whole.output_text);
    const added = events[2] as OpenAI.Responses.ResponseOutputItemAddedEvent;
    const done = events.at(-2) as OpenAI.Responses.ResponseOutputItemDoneEvent;
    expect(done.item.id).toBe(added.item.id);
    expect(done.item).toMatchObject({ type: 'message', status: 'incomplete', content: [{ type: 'output_text', text }] });
    for (const e of events) if ('item_id' in e) expect(e.item_id).toBe(added.item.id);
    const last = events.at(-1) as OpenAI.Responses.ResponseIncompleteEvent;
    expect(last.response.usage).toEqual(whole.usage);
    expect(last.response.output).toEqual([done.item]);
    expect(last.response).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } });
    // The client's stream helper accumulates the same response.
    const helper = served.client.responses.stream({ model: MODEL, instructions: 'Be brief.', input, temperature: 0, max_output_tokens: 12 });
    let helperText = '';
    helper.on('response.output_text.delta', (e) => (helperText += e.delta));
    await helper.done();
    expect(helperText).toBe(whole.output_text);
  });

  it('tools: function_call items with valid arguments, streamed; function_call_output round trip equals the chat route', async () => {
    const validate = ajv.compile(WEATHER);
    const req = { model: MODEL, input: 'What is the weather in Paris?', tools: TOOLS, tool_choice: { type: 'function' as const, name: 'get_weather' }, seed: 5, max_output_tokens: 60, ...COMPACT };
    const r = await served.client.responses.create(req as never) as OpenAI.Responses.Response;
    expect(r.status).toBe('completed');
    expect(r.output).toHaveLength(1);
    const call = r.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', status: 'completed' });
    expect(call.id).toMatch(/^fc_[0-9a-f]{32}$/);
    expect(call.call_id).toMatch(/^chatcmpl-tool-/);
    expect(validate(JSON.parse(call.arguments)), call.arguments).toBe(true);
    expect(r.tools).toEqual(TOOLS);
    // Streamed: one function_call item whose argument deltas add up to the same arguments (same seed).
    const events = await collect((await served.client.responses.create({ ...req, stream: true } as never)) as unknown as AsyncIterable<Event>);
    const types = [...new Set(events.map((e) => e.type))];
    expect(types).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.function_call_arguments.delta', 'response.function_call_arguments.done', 'response.output_item.done', 'response.completed']);
    const args = events.flatMap((e) => (e.type === 'response.function_call_arguments.delta' ? [e.delta] : [])).join('');
    expect(args).toBe(call.arguments);
    const argsDone = events.find((e) => e.type === 'response.function_call_arguments.done') as OpenAI.Responses.ResponseFunctionCallArgumentsDoneEvent;
    expect(argsDone.arguments).toBe(call.arguments);
    const final = (events.at(-1) as OpenAI.Responses.ResponseCompletedEvent).response;
    expect(final.output).toMatchObject([{ type: 'function_call', name: 'get_weather', arguments: call.arguments, status: 'completed' }]);

    // The call and its output sent back as items (the output items as returned): the chat route's text for the
    // same conversation with an assistant tool_calls message and a tool message.
    const output = '{"temp": 21, "unit": "c"}';
    const round = await served.client.responses.create({
      model: MODEL,
      input: [{ role: 'user', content: 'What is the weather in Paris?' }, ...r.output, { type: 'function_call_output', call_id: call.call_id, output }] as OpenAI.Responses.ResponseInput,
      tools: TOOLS,
      tool_choice: 'none',
      temperature: 0,
      max_output_tokens: 10,
    });
    const chat = await served.client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [{ id: call.call_id, type: 'function', function: { name: call.name, arguments: call.arguments } }] },
        { role: 'tool', tool_call_id: call.call_id, content: output },
      ],
      tools: CHAT_TOOLS,
      tool_choice: 'none',
      temperature: 0,
      max_tokens: 10,
    });
    expect(round.output_text).toBe(chat.choices[0].message.content);
    expect(round.usage!.input_tokens).toBe(chat.usage!.prompt_tokens);
  });

  it('text.format json_schema and json_object: output that validates; responses.parse with a zod format', async () => {
    const validate = ajv.compile(WEATHER);
    let completed = 0;
    for (const seed of [1, 2, 3, 4]) {
      const r = await served.client.responses.create({ model: MODEL, input: 'Weather as JSON', seed, max_output_tokens: 60, text: { format: { type: 'json_schema', name: 'weather', schema: WEATHER, strict: true } }, ...COMPACT } as never) as OpenAI.Responses.Response;
      expect(r.text?.format).toMatchObject({ type: 'json_schema', name: 'weather' });
      if (r.status !== 'completed') continue;
      expect(validate(JSON.parse(r.output_text)), r.output_text).toBe(true);
      completed++;
    }
    expect(completed).toBeGreaterThanOrEqual(2);
    const o = await served.client.responses.create({ model: MODEL, input: 'JSON please', seed: 3, max_output_tokens: 60, text: { format: { type: 'json_object' } }, ...COMPACT } as never) as OpenAI.Responses.Response;
    if (o.status === 'completed') expect(typeof JSON.parse(o.output_text)).toBe('object');
    const Answer = z.object({ verdict: z.enum(['yes', 'no']), score: z.number().int().min(0).max(9) });
    const p = await served.client.responses.parse({ model: MODEL, input: 'Verdict?', seed: 2, max_output_tokens: 40, text: { format: zodTextFormat(Answer, 'answer') }, ...COMPACT } as never);
    expect(p.status).toBe('completed');
    expect(Answer.parse(p.output_parsed)).toEqual(p.output_parsed);
  });

  it('--reasoning-parser and --tool-call-parser: reasoning, message and function_call items, streamed too', async () => {
    const app = createApp({ llm: served.llm, servedModelName: MODEL, enableAutoToolChoice: true, toolCallParser: 'hermes', reasoningParser: 'qwen3' });
    const call = async (body: unknown) => app.fetch(new Request('http://local/v1/responses', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
    const chatApp = (body: unknown) => app.fetch(new Request('http://local/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
    // Random weights write no think block or call of their own: a grammar makes them write both in Qwen's form.
    const grammar = 'root ::= "<think>" [a-z]{1,8} "</think>\\n\\n" [a-z]{1,4} "<tool_call>\\n{\\"name\\": \\"get_weather\\", \\"arguments\\": {\\"city\\": \\"" [a-z]{1,5} "\\"}}\\n</tool_call>"';
    const req = { model: MODEL, input: 'Weather?', tools: TOOLS, seed: 7, max_output_tokens: 80, structured_outputs: { grammar }, reasoning: { effort: 'low' } };
    const res = await call(req);
    const r = (await res.json()) as OpenAI.Responses.Response;
    expect(res.status, JSON.stringify(r)).toBe(200);
    const chat = await (await chatApp({ model: MODEL, messages: [{ role: 'user', content: 'Weather?' }], tools: CHAT_TOOLS, seed: 7, max_tokens: 80, structured_outputs: { grammar }, chat_template_kwargs: { reasoning_effort: 'low', enable_thinking: true } })).json();
    const m = chat.choices[0].message;
    expect(r.status).toBe('completed');
    expect(r.output.map((o) => o.type)).toEqual(['reasoning', 'message', 'function_call']);
    const [reasoning, message, fc] = r.output as [OpenAI.Responses.ResponseReasoningItem, OpenAI.Responses.ResponseOutputMessage, OpenAI.Responses.ResponseFunctionToolCall];
    expect(reasoning.id).toMatch(/^rs_/);
    expect(reasoning.content).toEqual([{ type: 'reasoning_text', text: m.reasoning }]);
    expect(message.content[0]).toMatchObject({ type: 'output_text', text: m.content });
    expect(fc).toMatchObject({ name: 'get_weather', arguments: m.tool_calls[0].function.arguments });
    expect(r.reasoning).toEqual({ effort: 'low', summary: null });

    const sse = await (await call({ ...req, stream: true })).text();
    const events = sse.trim().split('\n\n').map((block) => {
      const [ev, data] = block.split('\n');
      const e = JSON.parse(data.slice('data: '.length));
      expect(ev).toBe(`event: ${e.type}`);
      return e;
    });
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const squeeze = events.map((e) => e.type).filter((t, i, a) => t !== a[i - 1]);
    expect(squeeze).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.reasoning_text.delta',
      'response.reasoning_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const final = events.at(-1).response as OpenAI.Responses.Response;
    expect(final.output.map((o) => o.type)).toEqual(['reasoning', 'message', 'function_call']);
    expect((final.output[0] as OpenAI.Responses.ResponseReasoningItem).content).toEqual(reasoning.content);
    expect((final.output[1] as OpenAI.Responses.ResponseOutputMessage).content[0]).toMatchObject({ text: m.content });
    expect(final.output[2]).toMatchObject({ name: 'get_weather', arguments: fc.arguments });

    // The three items sent back with the call's output are one assistant turn (reasoning, text, call) to the template.
    const output = '{"temp": 21}';
    const back = await call({ model: MODEL, input: [{ role: 'user', content: 'Weather?' }, ...r.output, { type: 'function_call_output', call_id: fc.call_id, output }], tools: TOOLS, tool_choice: 'none', temperature: 0, max_output_tokens: 8 });
    const chatBack = await chatApp({
      model: MODEL,
      messages: [{ role: 'user', content: 'Weather?' }, { role: 'assistant', content: m.content, reasoning_content: m.reasoning, tool_calls: [{ id: fc.call_id, type: 'function', function: { name: fc.name, arguments: fc.arguments } }] }, { role: 'tool', tool_call_id: fc.call_id, content: output }],
      tools: CHAT_TOOLS,
      tool_choice: 'none',
      temperature: 0,
      max_tokens: 8,
    });
    const b = (await back.json()) as OpenAI.Responses.Response;
    const cb = await chatBack.json();
    expect(b.usage!.input_tokens).toBe(cb.usage.prompt_tokens);
    const text = (b.output.find((o) => o.type === 'message') as OpenAI.Responses.ResponseOutputMessage | undefined)?.content[0];
    expect((text as OpenAI.Responses.ResponseOutputText | undefined)?.text ?? '').toBe(cb.choices[0].message.content ?? '');
    expect((b.output.find((o) => o.type === 'reasoning') as OpenAI.Responses.ResponseReasoningItem | undefined)?.content?.[0].text ?? null).toBe(cb.choices[0].message.reasoning ?? null);
  });

  it('a stream cut by the request timeout ends with error and response.failed events', async () => {
    const app = createApp({ llm: served.llm, servedModelName: MODEL, requestTimeoutMs: 200 });
    const res = await app.fetch(new Request('http://local/v1/responses', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, input: 'Hi', max_output_tokens: 2000, ignore_eos: true, stream: true }) }));
    expect(res.status).toBe(200);
    const events = (await res.text()).trim().split('\n\n').map((b) => JSON.parse(b.split('\n')[1].slice(6)));
    const [error, failed] = events.slice(-2);
    expect(error).toMatchObject({ type: 'error', code: 'server_error', param: null });
    expect(error.message).toMatch(/request timeout of 0.2 s/);
    expect(failed).toMatchObject({ type: 'response.failed', response: { status: 'failed', error: { code: 'server_error' } } });
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
  });

  it('what the server cannot serve is a 400 naming the field, and the server goes on', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'http://x/a.png' }] }] }, 'input[0].content[0].type', /input_image.*text only/],
      [{ input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] }, 'input[0].content[0].type', /input_file/],
      [{ input: [{ type: 'item_reference', id: 'x' }] }, 'input[0].type', /item_reference/],
      [{ input: [{ role: 'tool', content: 'x' }] }, 'input[0].role', /user, system, developer, assistant/],
      [{ input: [{ type: 'function_call', call_id: 'c', name: 'f' }] }, 'input[0].arguments', /arguments/],
      [{ input: [] }, 'input', /empty/],
      [{ input: Array(4097).fill({ role: 'user', content: 'x' }) }, 'input', /4096/],
      [{ tools: [{ type: 'web_search' }] }, 'tools[0].type', /web_search.*function tools only/],
      [{ tools: [{ type: 'function' }] }, 'tools[0].name', /name/],
      [{ tool_choice: 'required' }, 'tool_choice', /tools/],
      [{ tools: TOOLS, tool_choice: { type: 'file_search' } }, 'tool_choice.type', /file_search/],
      // Without a store (vLLM's default; server-responses-store.test.ts has it on): background needs one.
      [{ background: true }, 'background', /does not support `store=True`/],
      [{ truncation: 'auto' }, 'truncation', /auto/],
      [{ include: ['file_search_call.results'] }, 'include', /file_search_call.results/],
      [{ text: { format: { type: 'xml' } } }, 'text.format.type', /xml/],
      [{ text: { format: { type: 'json_schema', name: 'x' } } }, 'text.format.schema', /schema/],
      [{ text: { format: { type: 'json_object' } }, structured_outputs: { regex: 'a' } }, 'structured_outputs', /only one kind.*text.format/],
      [{ max_output_tokens: 0 }, 'max_output_tokens', /max_output_tokens/],
      [{ metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }, 'metadata', /16/],
      [{ prompt: { id: 'p' } }, 'prompt', /not supported/],
    ];
    for (const [extra, param, message] of cases) {
      const res = await served.post('/v1/responses', { model: MODEL, input: 'Hi', max_output_tokens: 4, ...extra });
      const body = await res.json();
      expect(res.status, `${param}: ${JSON.stringify(body)}`).toBe(400);
      expect(body.error).toMatchObject({ type: 'BadRequestError', param, code: 400 });
      expect(body.error.message).toMatch(message);
    }
    expect((await served.post('/v1/responses', { model: 'nope', input: 'Hi' })).status).toBe(404);
    // vLLM: an unknown previous_response_id (any, without a store) is 404 naming response_id.
    const prev = await served.post('/v1/responses', { model: MODEL, input: 'Hi', previous_response_id: 'resp_1' });
    expect(prev.status).toBe(404);
    expect((await prev.json()).error).toMatchObject({ message: "Response with id 'resp_1' not found.", param: 'response_id' });
    await expect(served.client.responses.create({ model: MODEL, input: 'Hi', tools: [{ type: 'web_search' }] })).rejects.toThrow(/web_search/);
    const ok = await served.client.responses.create({ model: MODEL, input: 'Hi', max_output_tokens: 3, temperature: 0 });
    expect(ok.usage!.output_tokens).toBe(3);
  });
});
