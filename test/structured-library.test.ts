/**
 * Structured outputs in the library beyond structured-outputs.test.ts: llm.chat with tools (toolChoice 'required' /
 * named constrain the output and give parsed CompletionOutput.toolCalls; 'auto' with a toolParser; a
 * reasoningParser; a tool-result round trip), best_of, preemption (a tiny KV pool: recomputed sequences keep their
 * matcher state and give the tokens of an unpreempted run), EOS allowed exactly when the grammar accepts, and
 * disableAdditionalProperties. llama3-rand (random weights: the text is gibberish, constrained text must be valid).
 */
import Ajv from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, SamplingParams, type LLM } from '../bindings/node/index.js';
import { structuredSpec } from '../src/sampling/structured/params.js';
import { loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

const TOOLS = [
  {
    type: 'function' as const,
    function: {
      name: 'get_weather',
      description: 'Weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 8 }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'] },
    },
  },
  { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['utc', 'cet'] } }, required: ['zone'] } } },
];
const MESSAGES = [{ role: 'user', content: 'What is the weather in Paris?' }];
const SEEDS = [11, 12, 13, 14, 15, 16];
/** A schema that cannot close within a few dozen tokens: every token stays constrained. */
const ROWS = { type: 'array', minItems: 1000, items: { type: 'object', properties: { id: { type: 'integer' }, ok: { type: 'boolean' } }, required: ['id', 'ok'] } };

describe('structured outputs in the library (llama3-rand)', () => {
  let llm: LLM;
  const ajv = new Ajv();
  const warnings: string[] = [];
  beforeAll(async () => {
    llm = await loadLLM(modelDir('llama3-rand'), { log: (m: string) => warnings.push(m) } as never);
  });
  afterAll(async () => {
    await llm?.dispose();
    expect(warnings.filter((w) => /refused by its grammar/.test(w))).toEqual([]);
  });

  const params = (seed: number, extra: ConstructorParameters<typeof SamplingParams>[0] = {}) =>
    new SamplingParams({ seed, temperature: 1, maxTokens: 120, ...extra });

  it("chat toolChoice 'required': every output's toolCalls name a tool, with arguments its schema validates", async () => {
    const validators = Object.fromEntries(TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));
    const outs = await llm.chat(SEEDS.map(() => MESSAGES), SEEDS.map((s) => params(s)), { tools: TOOLS, toolChoice: 'required', parallelToolCalls: false, disableAnyWhitespace: true });
    // Parallel calls: a random model makes many; an output cut by maxTokens has no calls (its text is not JSON).
    const parallel = await llm.chat(SEEDS.map(() => MESSAGES), SEEDS.map((s) => params(s, { maxTokens: 200 })), { tools: TOOLS, toolChoice: 'required', disableAnyWhitespace: true });
    for (const o of parallel) if (o.outputs[0].finishReason === 'length') expect(o.outputs[0].toolCalls).toBeNull();
    const finished = parallel.filter((o) => o.outputs[0].finishReason === 'stop');
    for (const o of [...outs, ...finished]) {
      const c = o.outputs[0];
      expect(c.finishReason, c.text).toBe('stop');
      expect(c.toolCalls, c.text).not.toBeNull();
      expect(c.toolCalls!.length).toBeGreaterThan(0);
      expect(c.content).toBeNull();
      for (const call of c.toolCalls!) {
        expect(call.id).toMatch(/^chatcmpl-tool-[0-9a-f]{32}$/);
        expect(call.type).toBe('function');
        const v = validators[call.function.name];
        expect(v, call.function.name).toBeDefined();
        expect(v(JSON.parse(call.function.arguments)), call.function.arguments).toBe(true);
      }
    }
    // parallelToolCalls false: exactly one call.
    for (const o of outs) expect(o.outputs[0].toolCalls).toHaveLength(1);
  });

  it('chat with a named function: one call of it; a round trip with the tool result renders and generates', async () => {
    const validate = ajv.compile(TOOLS[0].function.parameters);
    const choice = { type: 'function', function: { name: 'get_weather' } };
    const [out] = await llm.chat(MESSAGES, params(5), { tools: TOOLS, toolChoice: choice, disableAnyWhitespace: true });
    const calls = out.outputs[0].toolCalls!;
    expect(calls).toHaveLength(1);
    expect(calls[0].function.name).toBe('get_weather');
    expect(validate(JSON.parse(calls[0].function.arguments))).toBe(true);
    // The calls go back as the assistant's tool_calls, the result as a tool message; the template renders both.
    const next = [...MESSAGES, { role: 'assistant', content: null, tool_calls: calls }, { role: 'tool', tool_call_id: calls[0].id, content: '{"temp": 22}' }];
    const [reply] = await llm.chat(next as never, params(6, { maxTokens: 8 }), { tools: TOOLS });
    expect(reply.prompt).toMatch(/temp.*22/);
    expect(reply.prompt).toContain(JSON.parse(calls[0].function.arguments).city);
    expect(reply.outputs[0].tokenIds.length).toBeGreaterThan(0);
    // No parser asked for: plain outputs, no parsed fields.
    expect('toolCalls' in reply.outputs[0]).toBe(false);
  });

  it("toolChoice 'auto' with a toolParser, and a reasoningParser: the fields read the text", async () => {
    // A constraint makes the model write a llama3_json call (auto mode leaves the text free otherwise).
    const so = { regex: '\\{"name": "get_time", "parameters": \\{"zone": "(utc|cet)"\\}\\}' };
    const [auto] = await llm.chat(MESSAGES, params(7, { structuredOutputs: so }), { tools: TOOLS, toolChoice: 'auto', toolParser: 'llama3_json' });
    const c = auto.outputs[0];
    expect(c.toolCalls).toHaveLength(1);
    expect(c.toolCalls![0].function.name).toBe('get_time');
    expect(JSON.parse(c.toolCalls![0].function.arguments).zone).toMatch(/^(utc|cet)$/);
    expect(c.content).toBeNull();
    const [think] = await llm.chat(MESSAGES, params(8, { structuredOutputs: { regex: '<think>[a-z]{1,6}</think>\\n\\n[a-z]{1,6}' } }), { reasoningParser: 'qwen3' });
    const t = think.outputs[0];
    const m = /^<think>([a-z]+)<\/think>\n\n([a-z]+)$/.exec(t.text)!;
    expect(m, t.text).not.toBeNull();
    expect(t.reasoning).toBe(m[1]);
    expect(t.content).toBe(m[2]);
    expect(t.toolCalls).toBeNull();
  });

  it('chat tool options are checked, naming the field', async () => {
    await expect(llm.chat(MESSAGES, params(1), { toolChoice: 'required' })).rejects.toThrow(/toolChoice "required" needs tools/);
    await expect(llm.chat(MESSAGES, params(1), { tools: TOOLS, toolChoice: { type: 'function', function: { name: 'nope' } } })).rejects.toThrow(InvalidArgumentError);
    await expect(llm.chat(MESSAGES, params(1), { tools: TOOLS, toolParser: 'nope' })).rejects.toThrow(/toolParser 'nope'/);
    await expect(llm.chat(MESSAGES, params(1, { structuredOutputs: { regex: 'a' } }), { tools: TOOLS, toolChoice: 'required' })).rejects.toThrow(/cannot be combined/);
  });

  it('best_of: every returned sequence (the best n of best_of) is valid', async () => {
    const validate = ajv.compile(TOOLS[0].function.parameters);
    const [out] = await llm.generate('Weather:', new SamplingParams({ n: 2, bestOf: 4, seed: 9, temperature: 1, maxTokens: 120, structuredOutputs: { json: TOOLS[0].function.parameters, disableAnyWhitespace: true } }));
    expect(out.outputs).toHaveLength(2);
    for (const c of out.outputs) {
      expect(c.finishReason, c.text).toBe('stop');
      expect(validate(JSON.parse(c.text)), c.text).toBe(true);
    }
  });

  it('EOS is allowed exactly when the grammar accepts the text so far', async () => {
    const so = llm.engine.structuredOutputs;
    const g = await so.grammar(structuredSpec({ regex: 'x(yz)*' }));
    const eos = llm.engine.eosTokenIds;
    const tok = llm.engine.tokenizer;
    const allowed = (mask: Int32Array, t: number) => ((mask[t >> 5] >>> (t & 31)) & 1) === 1;
    const id = (s: string) => {
      const ids = tok.encode(s, { addSpecialTokens: false });
      expect(ids, s).toHaveLength(1);
      return ids[0];
    };
    // '' (no), 'x' (yes), 'xy' (no), 'xyz' (yes)
    const steps: [string, boolean][] = [['', false], ['x', true], ['y', false], ['z', true]];
    for (const [piece, accepts] of steps) {
      if (piece) expect(g.accept([id(piece)])).toBe(true);
      const mask = (await g.bitmask())!;
      for (const e of eos) expect(allowed(mask, e), `after '${piece}'`).toBe(accepts);
    }
    g.dispose();
    // End to end: every output that EOS ended is a whole match.
    const outs = await llm.generate(SEEDS.map(() => 'x'), SEEDS.map((s) => params(s, { structuredOutputs: { regex: 'x(yz)*' }, maxTokens: 30 })));
    for (const o of outs) {
      const c = o.outputs[0];
      if (c.finishReason === 'stop') expect(c.text).toMatch(/^x(yz)*$/);
      else expect(c.finishReason).toBe('length');
    }
    expect(outs.some((o) => o.outputs[0].finishReason === 'stop')).toBe(true);
  });

  it('disableAdditionalProperties: objects hold only the listed properties', async () => {
    const schema = { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 99 }, b: { type: 'boolean' } }, required: ['a'] };
    const outs = await llm.generate(SEEDS.map(() => 'JSON:'), SEEDS.map((s) => params(s, { structuredOutputs: { json: schema, disableAdditionalProperties: true, disableAnyWhitespace: true } })));
    for (const o of outs) {
      const v = JSON.parse(o.outputs[0].text);
      expect(Object.keys(v).every((k) => k === 'a' || k === 'b'), o.outputs[0].text).toBe(true);
      expect(Number.isInteger(v.a)).toBe(true);
    }
  });

  it('preemption: constrained sequences recomputed under a tiny KV pool give the tokens of an unpreempted run', async () => {
    const tinyWarnings: string[] = [];
    const tiny = await loadLLM(modelDir('llama3-rand'), { numGpuBlocksOverride: 10, blockSize: 16, maxModelLen: 96, maxNumSeqs: 8, log: (m: string) => tinyWarnings.push(m) } as never);
    try {
      const prompts = Array.from({ length: 8 }, (_, i) => `Rows ${i}: ${'a '.repeat(6 + 2 * i)}`);
      const ps = prompts.map((_, i) => params(100 + i, { maxTokens: 40, structuredOutputs: { json: ROWS, disableAnyWhitespace: true } }));
      const outs = await tiny.generate(prompts, ps);
      expect(tiny.engine.stats.numPreemptions).toBeGreaterThan(0);
      const ref = await llm.generate(prompts, ps);
      expect(outs.map((o) => o.outputs[0].tokenIds)).toEqual(ref.map((o) => o.outputs[0].tokenIds));
      for (const o of outs) expect(o.outputs[0].text).toMatch(/^\[\{"/);
      expect(tinyWarnings.filter((w) => /refused by its grammar/.test(w))).toEqual([]);
    } finally {
      await tiny.dispose();
    }
  });
});
