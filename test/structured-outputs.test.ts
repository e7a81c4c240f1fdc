/**
 * Structured outputs (SamplingParams.structuredOutputs, xgrammar): with random test models the text is gibberish,
 * but constrained text must be valid: JSON that ajv validates against the schema, exact choices, full regex
 * matches, EBNF languages; over many seeds, with n > 1 forks and stop strings; free rows in a mixed batch get the
 * tokens they get alone; bad constraints are InvalidArgumentErrors and the engine goes on.
 */
import Ajv from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, SamplingParams, type LLM } from '../bindings/node/index.js';
import { applyTokenBitmask } from '../src/sampling/sampler.js';
import { structuredSpec } from '../src/sampling/structured/params.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';
import { countRunAhead, loadLLM } from './helpers/llm.js';
import { modelDir } from './helpers/paths.js';

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 6 },
    age: { type: 'integer', minimum: 0, maximum: 99 },
    pet: { enum: ['cat', 'dog', null] },
    tags: { type: 'array', items: { type: 'boolean' }, maxItems: 3 },
  },
  required: ['name', 'age', 'pet', 'tags'],
  additionalProperties: false,
} as const;

const SEEDS = Array.from({ length: 12 }, (_, i) => 1000 + 7 * i);

describe('StructuredOutputsParams validation', () => {
  const bad = (so: unknown, msg: RegExp) => {
    expect(() => new SamplingParams({ structuredOutputs: so as never })).toThrow(InvalidArgumentError);
    expect(() => new SamplingParams({ structuredOutputs: so as never })).toThrow(msg);
  };
  it('needs exactly one kind, of the right type', () => {
    bad({ json: {}, regex: 'a' }, /only use one kind.*json, regex/);
    bad({}, /must use one kind/);
    bad({ disableAnyWhitespace: true }, /must use one kind/);
    bad({ json: '{not json' }, /json is not valid JSON/);
    bad({ json: 3 }, /json/);
    bad({ choice: [] }, /at least one/);
    bad({ choice: 'yes' }, /choice/);
    bad({ regex: '' }, /regex must not be empty/);
    bad({ jsonSchema: {} }, /unknown field.*jsonSchema/);
    bad('json', /StructuredOutputsParams/);
    expect(() => new SamplingParams({ structuredOutputs: { json: '{"type": "object"}', disableAnyWhitespace: true } })).not.toThrow();
  });
  it('keys are canonical: the same schema as text or object compiles once', () => {
    const a = structuredSpec({ json: { type: 'object', properties: { a: { type: 'integer' } } } });
    const b = structuredSpec({ json: '{ "type": "object", "properties": {"a": {"type": "integer"}} }' });
    expect(a.key).toBe(b.key);
    expect(structuredSpec({ json: { type: 'object' }, disableAnyWhitespace: true }).key).not.toBe(structuredSpec({ json: { type: 'object' } }).key);
    expect(new SamplingParams({ structuredOutputs: { choice: ['a'] } }).clone({ seed: 1 }).structuredSpec?.kind).toBe('choice');
  });
  it('applyTokenBitmask keeps exactly the allowed tokens (CPU reference)', () => {
    const V = 77;
    const row = Float32Array.from({ length: V }, (_, i) => i);
    const mask = new Int32Array(3);
    const allowed = [0, 5, 31, 32, 63, 64, 76];
    for (const t of allowed) mask[t >> 5] |= 1 << (t & 31);
    applyTokenBitmask(row, mask);
    for (let t = 0; t < V; t++) expect(row[t]).toBe(allowed.includes(t) ? t : -Infinity);
  });
});

for (const model of ['qwen3-rand', 'llama3-rand']) {
  describe(model, () => {
    let llm: LLM;
    const ajv = new Ajv();
    beforeAll(async () => {
      llm = await loadLLM(modelDir(model));
    });
    afterAll(() => llm.dispose());

    const run = (so: object, extra: ConstructorParameters<typeof SamplingParams>[0] = {}, seeds = SEEDS) =>
      llm.generate(
        seeds.map(() => 'Give me a person as JSON:'),
        seeds.map((seed) => new SamplingParams({ structuredOutputs: so, seed, temperature: 1, maxTokens: 80, ...extra })),
      );

    it('JSON schema: every seed gives JSON the schema validates, ended by EOS', async () => {
      const validate = ajv.compile(PERSON);
      const outs = await run({ json: PERSON, disableAnyWhitespace: true });
      for (const o of outs) {
        const c = o.outputs[0];
        expect(c.finishReason).toBe('stop');
        const value = JSON.parse(c.text);
        expect(validate(value), `${c.text}: ${ajv.errorsText(validate.errors)}`).toBe(true);
        expect(c.text.replace(/"(?:[^"\\]|\\.)*"/g, '""')).not.toMatch(/\s/); // disableAnyWhitespace: compact outside strings
        expect(llm.engine.eosTokenIds).toContain(c.tokenIds.at(-1));
      }
      expect(new Set(outs.map((o) => o.outputs[0].text)).size).toBeGreaterThan(1);
      // Greedy too (the row is masked before the argmax).
      const [g] = await run({ json: JSON.stringify(PERSON), disableAnyWhitespace: true }, { temperature: 0 }, [0]);
      expect(validate(JSON.parse(g.outputs[0].text))).toBe(true);
    });

    it('choice: exactly one of the choices', async () => {
      const choice = ['yes', 'no', 'maybe not', 'Évidemment "oui"'];
      const outs = await run({ choice });
      for (const o of outs) {
        expect(choice).toContain(o.outputs[0].text);
        expect(o.outputs[0].finishReason).toBe('stop');
      }
      expect(new Set(outs.map((o) => o.outputs[0].text)).size).toBeGreaterThan(1);
    });

    it('regex: the whole text matches', async () => {
      const regex = '[0-9]{3}-[a-z]{2,4}(\\.(com|org))?';
      for (const o of await run({ regex })) {
        expect(o.outputs[0].text).toMatch(new RegExp(`^(?:${regex})$`));
        expect(o.outputs[0].finishReason).toBe('stop');
      }
    });

    it('grammar (EBNF): sentences of the language', async () => {
      const grammar = 'root ::= greeting " " name "!"\ngreeting ::= "hi" | "hello"\nname ::= [A-Z] [a-z]{1,5}';
      for (const o of await run({ grammar })) expect(o.outputs[0].text).toMatch(/^(hi|hello) [A-Z][a-z]{1,5}!$/);
    });

    it('jsonObject: parseable JSON', async () => {
      const outs = await run({ jsonObject: true, disableAnyWhitespace: true }, { maxTokens: 120 }, SEEDS.slice(0, 4));
      for (const o of outs) if (o.outputs[0].finishReason === 'stop') expect(() => JSON.parse(o.outputs[0].text)).not.toThrow();
    });

    it('n > 1: each forked sequence keeps its own grammar state', async () => {
      const validate = ajv.compile(PERSON);
      const [out] = await llm.generate('Person:', new SamplingParams({ n: 4, seed: 3, temperature: 1, maxTokens: 80, structuredOutputs: { json: PERSON, disableAnyWhitespace: true } }));
      expect(out.outputs).toHaveLength(4);
      for (const c of out.outputs) {
        expect(c.finishReason, c.text).toBe('stop');
        expect(validate(JSON.parse(c.text)), c.text).toBe(true);
      }
      expect(new Set(out.outputs.map((c) => c.text)).size).toBeGreaterThan(1);
    });

    it('stop strings still stop a constrained sequence', async () => {
      const outs = await run({ regex: 'ab(cd)+x' }, { stop: ['cdcd'], maxTokens: 40 });
      for (const o of outs) {
        const c = o.outputs[0];
        if (c.stopReason === 'cdcd') expect(c.text).toMatch(/^ab$|^ab(cd)*$/);
        else expect(c.text).toMatch(/^abcdx$/);
      }
    });

    it('a mixed batch: free rows get the tokens they get alone', async () => {
      const free = [new SamplingParams({ temperature: 0, maxTokens: 12, ignoreEos: true }), new SamplingParams({ temperature: 1, seed: 9, maxTokens: 12, ignoreEos: true })];
      const alone = await llm.generate(['The sky is', 'A cat'], free);
      const constrained = new SamplingParams({ structuredOutputs: { json: PERSON, disableAnyWhitespace: true }, temperature: 1, seed: 1, maxTokens: 60 });
      const mixed = await llm.generate(['The sky is', 'Person:', 'A cat'], [free[0], constrained, free[1]]);
      expect(mixed[0].outputs[0].tokenIds).toEqual(alone[0].outputs[0].tokenIds);
      expect(mixed[2].outputs[0].tokenIds).toEqual(alone[1].outputs[0].tokenIds);
      expect(ajv.validate(PERSON, JSON.parse(mixed[1].outputs[0].text))).toBe(true);
    });

    it('the GPU bitmask gives the tokens of the CPU mask (greedy constrained rows: the GPU argmax of the masked row)', async () => {
      const runner = gpuRunnerOf(llm.engine);
      const params = [
        ...SEEDS.slice(0, 4).map((seed) => new SamplingParams({ structuredOutputs: { json: PERSON, disableAnyWhitespace: true }, seed, temperature: 1, maxTokens: 60 })),
        new SamplingParams({ structuredOutputs: { regex: '[a-z]{3,9}@[a-z]{2,5}\\.com' }, temperature: 0, maxTokens: 30 }),
        new SamplingParams({ structuredOutputs: { choice: ['red', 'green', 'blue'] }, seed: 3, temperature: 0.7, topK: 20, topP: 0.9, maxTokens: 10 }),
        new SamplingParams({ temperature: 1, seed: 4, maxTokens: 12, ignoreEos: true }),
      ];
      const prompts = params.map((_, i) => `Prompt ${i}:`);
      const before = { gpu: runner.gpuTokenMask };
      try {
        runner.gpuTokenMask = false;
        const cpu = await llm.generate(prompts, params);
        runner.gpuTokenMask = true;
        // A greedy constrained row is the GPU's argmax of its masked row: the CPU sampler never sees it.
        type Req = { params: SamplingParams };
        const sampler = (runner as unknown as { sampler: { sample: (rows: unknown[], reqs: Req[]) => unknown } }).sampler;
        const sample = sampler.sample;
        let greedyConstrainedOnCpu = 0;
        sampler.sample = function (this: unknown, rows: unknown[], reqs: Req[]) {
          greedyConstrainedOnCpu += reqs.filter((q) => q.params.greedy && q.params.structuredOutputs).length;
          return sample.call(this, rows, reqs);
        };
        const gpu = await llm.generate(prompts, params).finally(() => (sampler.sample = sample));
        expect(greedyConstrainedOnCpu).toBe(0);
        expect(gpu.map((o) => o.outputs[0].tokenIds)).toEqual(cpu.map((o) => o.outputs[0].tokenIds));
        for (const o of gpu.slice(0, 4)) expect(ajv.validate(PERSON, JSON.parse(o.outputs[0].text))).toBe(true);
      } finally {
        runner.gpuTokenMask = before.gpu;
      }
    });

    it('greedy constrained rows run ahead (bitmasks made while the GPU runs) and give the tokens of one step at a time', async () => {
      const params = [
        new SamplingParams({ structuredOutputs: { json: PERSON, disableAnyWhitespace: true }, temperature: 0, maxTokens: 60 }),
        new SamplingParams({ structuredOutputs: { regex: '[a-z]{3,9}@[a-z]{2,5}\\.com' }, temperature: 0, maxTokens: 30 }),
        new SamplingParams({ structuredOutputs: { choice: ['red', 'green', 'blue'] }, temperature: 0, maxTokens: 10 }),
        // Free rows that end within 4 steps: the steps run ahead after them hold constrained rows only.
        new SamplingParams({ temperature: 0, maxTokens: 4, ignoreEos: true }),
      ];
      const prompts = params.map((_, i) => `Prompt ${i}:`);
      const options = (llm.engine as unknown as { options: { asyncScheduling?: boolean } }).options;
      const before = options.asyncScheduling;
      try {
        options.asyncScheduling = false;
        const sync = await llm.generate(prompts, params);
        options.asyncScheduling = true;
        const ahead = countRunAhead(llm);
        const async = await llm.generate(prompts, params);
        expect(ahead.n).toBeGreaterThan(10);
        expect(async.map((o) => o.outputs[0].tokenIds)).toEqual(sync.map((o) => o.outputs[0].tokenIds));
        expect(ajv.validate(PERSON, JSON.parse(async[0].outputs[0].text))).toBe(true);
        expect(async[1].outputs[0].text).toMatch(/^[a-z]{3,9}@[a-z]{2,5}\.com$/);
        expect(['red', 'green', 'blue']).toContain(async[2].outputs[0].text);
      } finally {
        options.asyncScheduling = before;
      }
    });

    it('a schema xgrammar refuses is an InvalidArgumentError, and the engine goes on', async () => {
      const bad = new SamplingParams({ structuredOutputs: { json: { type: 'objekt' } }, maxTokens: 4 });
      await expect(llm.generate('x', bad)).rejects.toThrow(InvalidArgumentError);
      await expect(llm.generate('x', bad)).rejects.toThrow(/objekt/);
      await expect(llm.engine.compileStructuredOutputs(new SamplingParams({ structuredOutputs: { grammar: 'root ::= "a' } }))).rejects.toThrow(InvalidArgumentError);
      await expect(llm.engine.compileStructuredOutputs(new SamplingParams({ structuredOutputs: { regex: '[a-' } }))).rejects.toThrow(InvalidArgumentError);
      const [ok] = await run({ choice: ['a', 'b'] }, {}, [1]);
      expect(['a', 'b']).toContain(ok.outputs[0].text);
    });

    it('compiles a grammar once per key', async () => {
      const so = llm.engine.structuredOutputs;
      const before = so.compiles;
      await run({ choice: ['one', 'two', 'three'] }, {}, [1, 2, 3]);
      await run({ choice: ['one', 'two', 'three'] }, {}, [4]);
      expect(so.compiles - before).toBe(1);
    });
  });
}
