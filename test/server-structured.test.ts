/**
 * Structured outputs through the OpenAI-compatible server (qwen3-rand: real Qwen3 tokenizer and chat template, random
 * weights): response_format json_schema / json_object, vLLM's structured_outputs and guided_* extras, tool_choice
 * 'required' and named functions (valid calls with ids), the official client's chat.completions.parse with a zod
 * schema, and 400s with OpenAI error bodies for constraints the engine refuses, after which the server still serves.
 */
import Ajv from 'ajv';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { serve } from '../bindings/node/server.js';
import { modelDir } from './helpers/paths.js';
import { serveForTests } from './helpers/server.js';

const MODEL = 'qwen3-rand';
const SEEDS = [1, 2, 3, 4, 5, 6];

const WEATHER = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 8 }, unit: { enum: ['c', 'f'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
  required: ['city', 'unit', 'days'],
  additionalProperties: false,
};
const TOOLS = [
  { type: 'function' as const, function: { name: 'get_weather', description: 'Weather', parameters: WEATHER } },
  { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['utc', 'cet'] } }, required: ['zone'], additionalProperties: false } } },
];
const messages = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];
/**
 * Random weights write whitespace as readily as anything, and JSON allows it anywhere: without this option most runs
 * end on max_tokens. vLLM's option, applied to response_format and tool_choice constraints as vLLM does.
 */
const COMPACT = { structured_outputs: { disable_any_whitespace: true } };

describe('structured outputs through the server (qwen3-rand)', () => {
  const served = serveForTests(modelDir(MODEL), { servedModelName: [MODEL] });
  const ajv = new Ajv();

  it('chat.completions.parse with a zod schema gives parsed objects', async () => {
    const Answer = z.object({ verdict: z.enum(['yes', 'no', 'unsure']), score: z.number().int().min(0).max(9), ok: z.boolean() });
    for (const seed of SEEDS) {
      const res = await served.client.chat.completions.parse({ model: MODEL, messages, seed, max_tokens: 60, response_format: zodResponseFormat(Answer, 'answer'), ...COMPACT });
      const m = res.choices[0].message;
      expect(res.choices[0].finish_reason).toBe('stop');
      expect(Answer.parse(m.parsed)).toEqual(m.parsed);
      expect(JSON.parse(m.content!)).toEqual(m.parsed);
    }
  });

  it('response_format json_object and json_schema (streamed too)', async () => {
    const obj = await served.client.chat.completions.create({ model: MODEL, messages, seed: 3, max_tokens: 100, response_format: { type: 'json_object' }, ...COMPACT } as never);
    const c = (obj as OpenAI.ChatCompletion).choices[0];
    if (c.finish_reason === 'stop') expect(() => JSON.parse(c.message.content!)).not.toThrow();
    const validate = ajv.compile(WEATHER);
    const stream = await served.client.chat.completions.create({
      model: MODEL,
      messages,
      seed: 4,
      max_tokens: 60,
      stream: true,
      response_format: { type: 'json_schema', json_schema: { name: 'w', schema: WEATHER, strict: true } },
      ...COMPACT,
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe('stop');
    expect(validate(JSON.parse(text)), text).toBe(true);
  });

  it("completions take vLLM's structured_outputs and guided_* extras", async () => {
    const choice = ['alpha', 'beta', 'gamma'];
    for (const seed of SEEDS) {
      const a = await served.client.completions.create({ model: MODEL, prompt: 'Pick one:', seed, max_tokens: 20, structured_outputs: { choice } } as never);
      expect(choice).toContain((a as OpenAI.Completion).choices[0].text);
      const b = await served.client.completions.create({ model: MODEL, prompt: 'Code:', seed, max_tokens: 20, guided_regex: '[A-Z]{2}-[0-9]{3}' } as never);
      expect((b as OpenAI.Completion).choices[0].text).toMatch(/^[A-Z]{2}-[0-9]{3}$/);
    }
    const c = await served.client.completions.create({ model: MODEL, prompt: 'JSON:', seed: 9, max_tokens: 60, structured_outputs: { json: WEATHER, disable_any_whitespace: true }, n: 3 } as never);
    for (const ch of (c as OpenAI.Completion).choices) expect(ajv.validate(WEATHER, JSON.parse(ch.text)), ch.text).toBe(true);
    // guided_json, whitespace allowed: what ends by the grammar validates; a cut text is a prefix of valid JSON.
    const g = await served.client.completions.create({ model: MODEL, prompt: 'JSON:', seed: 9, max_tokens: 100, guided_json: WEATHER, n: 3 } as never);
    for (const ch of (g as OpenAI.Completion).choices) if (ch.finish_reason === 'stop') expect(ajv.validate(WEATHER, JSON.parse(ch.text)), ch.text).toBe(true);
    const d = await served.client.chat.completions.create({ model: MODEL, messages, seed: 2, max_tokens: 20, structured_outputs: { grammar: 'root ::= "ok" | "no"' } } as never);
    expect(['ok', 'no']).toContain((d as OpenAI.ChatCompletion).choices[0].message.content);
  });

  it("tool_choice 'required': valid calls with ids and finish_reason 'tool_calls'", async () => {
    let checked = 0;
    for (const seed of SEEDS) {
      const res = await served.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS, tool_choice: 'required', seed, max_tokens: 80, ...COMPACT, parallel_tool_calls: seed > 4 } as never);
      const c = (res as OpenAI.ChatCompletion).choices[0];
      if (c.finish_reason === 'length') continue; // cut by max_tokens: raw text, as vLLM
      expect(c.finish_reason).toBe('tool_calls');
      expect(c.message.content).toBeNull();
      expect(c.message.tool_calls!.length).toBeGreaterThan(0);
      if (seed <= 4) expect(c.message.tool_calls).toHaveLength(1); // parallel_tool_calls: false
      for (const call of c.message.tool_calls!) {
        if (call.type !== 'function') throw new Error('not a function call');
        expect(call.id).toMatch(/^chatcmpl-tool-[0-9a-f]{32}$/);
        const tool = TOOLS.find((t) => t.function.name === call.function.name)!;
        expect(tool).toBeDefined();
        expect(ajv.validate(tool.function.parameters, JSON.parse(call.function.arguments)), call.function.arguments).toBe(true);
      }
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(SEEDS.length / 2);
  });

  it('a named tool_choice: that function, valid arguments, streamed as tool-call deltas', async () => {
    const validate = ajv.compile(WEATHER);
    const tool_choice = { type: 'function' as const, function: { name: 'get_weather' } };
    const res = (await served.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS, tool_choice, seed: 5, max_tokens: 60, ...COMPACT } as never)) as OpenAI.ChatCompletion;
    const call = res.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe('get_weather');
    expect(validate(JSON.parse(call.function.arguments))).toBe(true);
    expect(res.choices[0].finish_reason).toBe('stop');
    // The same request streamed: the first delta carries id and name, the arguments add up to the same text.
    const stream = (await served.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS, tool_choice, seed: 5, max_tokens: 60, stream: true, ...COMPACT } as never)) as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>;
    let args = '';
    let id: string | undefined;
    let name: string | undefined;
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
        id ??= tc.id;
        name ??= tc.function?.name;
        args += tc.function?.arguments ?? '';
      }
    }
    expect(id).toMatch(/^chatcmpl-tool-/);
    expect(name).toBe('get_weather');
    expect(args).toBe(call.function.arguments);
  });

  it("--tool-call-parser hermes and --reasoning-parser qwen3: calls and reasoning out of the text, streamed too", async () => {
    const parsed = await serve({ llm: served.llm, host: '127.0.0.1', port: 0, servedModelName: [MODEL], enableAutoToolChoice: true, toolCallParser: 'hermes', reasoningParser: 'qwen3' });
    try {
      const c2 = new OpenAI({ baseURL: `${parsed.url}/v1`, apiKey: 'none', maxRetries: 0 });
      // Random weights write no calls of their own: a grammar makes them write one in Qwen's form.
      const grammar = 'root ::= "<think>" [a-z]{1,8} "</think>\\n\\n" [a-z]{0,4} "<tool_call>\\n{\\"name\\": \\"get_time\\", \\"arguments\\": {\\"zone\\": \\"" ("utc" | "cet") "\\"}}\\n</tool_call>"';
      const req = { model: MODEL, messages, tools: TOOLS, seed: 7, max_tokens: 80, structured_outputs: { grammar } };
      const res = (await c2.chat.completions.create(req as never)) as OpenAI.ChatCompletion;
      const m = res.choices[0].message as OpenAI.ChatCompletionMessage & { reasoning?: string };
      expect(res.choices[0].finish_reason).toBe('tool_calls');
      expect(m.reasoning).toMatch(/^[a-z]{1,8}$/);
      expect(m.content ?? '').toMatch(/^[a-z]{0,4}$/);
      const tc = m.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(tc.function.name).toBe('get_time');
      expect(JSON.parse(tc.function.arguments).zone).toMatch(/^(utc|cet)$/);
      const stream = (await c2.chat.completions.create({ ...req, stream: true } as never)) as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>;
      let reasoning = '';
      let content = '';
      const calls: unknown[] = [];
      let finish: string | null = null;
      for await (const chunk of stream) {
        const d = chunk.choices[0]?.delta as (OpenAI.ChatCompletionChunk.Choice.Delta & { reasoning?: string }) | undefined;
        reasoning += d?.reasoning ?? '';
        content += d?.content ?? '';
        calls.push(...(d?.tool_calls ?? []));
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect({ reasoning, content, finish }).toEqual({ reasoning: m.reasoning, content: m.content ?? '', finish: 'tool_calls' });
      expect(calls).toMatchObject([{ index: 0, type: 'function', function: { name: 'get_time', arguments: tc.function.arguments } }]);
      // tool_choice 'none' leaves the text alone.
      const raw = (await c2.chat.completions.create({ ...req, tool_choice: 'none' } as never)) as OpenAI.ChatCompletion;
      expect(raw.choices[0].message.tool_calls ?? []).toEqual([]);
      expect(raw.choices[0].message.content).toContain('<tool_call>');
    } finally {
      await parsed.close();
    }
  });

  it('refused constraints are 400s with OpenAI error bodies, and the server goes on', async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'objekt' } } } }, 'response_format', /objekt/],
      [{ structured_outputs: { regex: '[a-' } }, 'structured_outputs', /regex/],
      [{ structured_outputs: { grammar: 'root ::= "a' } }, 'structured_outputs', /grammar/],
      [{ structured_outputs: { json: {}, regex: 'a' } }, 'structured_outputs', /one kind/],
      [{ structured_outputs: { choice: [] } }, 'structured_outputs', /at least one/],
      [{ structured_outputs: { jsn: {} } }, 'structured_outputs', /unknown field 'jsn'/],
      [{ response_format: { type: 'json_object' }, guided_regex: 'a' }, 'guided_regex', /only one kind/],
      [{ response_format: { type: 'xml' } }, 'response_format', /not supported/],
      [{ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice', /not among the tools/],
      [{ tool_choice: 'required' }, 'tool_choice', /When using `tool_choice`, `tools` must be set/],
    ];
    for (const [extra, param, message] of cases) {
      for (let k = 0; k < 2; k++) {
        const res = await served.post('/v1/chat/completions', { model: MODEL, messages, max_tokens: 8, ...(extra as object) });
        const body = await res.json();
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(body.error).toMatchObject({ type: 'BadRequestError', param, code: 400 });
        expect(body.error.message).toMatch(message);
      }
    }
    expect((await fetch(`${served.server.url}/health`)).status).toBe(200);
    const ok = await served.client.chat.completions.create({ model: MODEL, messages, seed: 1, max_tokens: 10, structured_outputs: { choice: ['a', 'b'] } } as never);
    expect(['a', 'b']).toContain((ok as OpenAI.ChatCompletion).choices[0].message.content);
  });
});
