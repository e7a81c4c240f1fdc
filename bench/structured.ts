/**
 * Structured outputs under load: F free streams (greedy, fixed length) alone, then the same F beside C constrained
 * streams (a JSON schema that never closes within the token budget, so every constrained token is masked), with the
 * grammar bitmask applied on the GPU and on the CPU.
 *
 *   node build/bench/structured.js MODEL_DIR [--free 32] [--constrained 32] [--tokens 64] [--prompt 32] [--repeat 2]
 *     [--constrained-temperature 1]   (0: greedy constrained rows, the GPU argmax of the masked row)
 *     [--dtype float16] [--dummy]     (--dummy: random weights for a config.json + tokenizer folder, e.g. .benchcfg/llama-3.2-1b)
 *
 * Prints per run the free streams' decode throughput (their tokens over the time until the last of them ends), its
 * ratio to the free-only run and to a run beside C rows of the same sampling without a grammar, the constrained
 * streams' throughput, and the time a constrained token adds over an unconstrained one.
 */
import { parseArgs } from 'node:util';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    free: { type: 'string', default: '32' },
    constrained: { type: 'string', default: '32' },
    tokens: { type: 'string', default: '64' },
    prompt: { type: 'string', default: '32' },
    repeat: { type: 'string', default: '2' },
    dtype: { type: 'string', default: 'auto' },
    dummy: { type: 'boolean', default: false },
    'constrained-temperature': { type: 'string', default: '1' },
  },
});
const model = positionals[0];
if (!model) throw new Error('usage: structured.js MODEL_DIR [--free F] [--constrained C] [--tokens N]');
const F = Number(values.free);
const C = Number(values.constrained);
const N = Number(values.tokens);
const P = Number(values.prompt);

/** Rows of a table that cannot close within N tokens: every token stays constrained. */
const SCHEMA = {
  type: 'array',
  minItems: 1000,
  items: { type: 'object', properties: { id: { type: 'integer' }, name: { type: 'string', maxLength: 8 }, ok: { type: 'boolean' } }, required: ['id', 'name', 'ok'] },
};

const llm = await LLM.create({ model, dtype: values.dtype as 'auto', loadFormat: values.dummy ? 'dummy' : 'auto', maxNumSeqs: Math.max(64, F + C), kvCacheMemoryBytes: 512 << 20 });
const runner = gpuRunnerOf(llm.engine);
const prompt = (i: number) => ({ promptTokenIds: Array.from({ length: P }, (_, k) => 1000 + ((i * 7919 + k * 104729) % 20000)) });

/** F free streams beside `extra` more: constrained by the schema (grammar) or the same rows without it. */
async function run(extra: number, grammar = true): Promise<{ freeTps: number; consTps: number; seconds: number }> {
  const t0 = performance.now();
  let freeEnd = 0;
  let consEnd = 0;
  const free = Array.from({ length: F }, (_, i) =>
    llm.generate(prompt(i), new SamplingParams({ temperature: 0, maxTokens: N, ignoreEos: true })).then(() => (freeEnd = Math.max(freeEnd, performance.now()))),
  );
  const temperature = Number(values['constrained-temperature']);
  const cons = Array.from({ length: extra }, (_, i) =>
    llm
      .generate(prompt(F + i), new SamplingParams({ temperature, seed: i, maxTokens: N, ...(grammar ? { structuredOutputs: { json: SCHEMA, disableAnyWhitespace: true } } : { ignoreEos: true }) }))
      .then(() => (consEnd = Math.max(consEnd, performance.now()))),
  );
  await Promise.all([...free, ...cons]);
  return { freeTps: (F * N) / ((freeEnd - t0) / 1000), consTps: extra ? (extra * N) / ((consEnd - t0) / 1000) : 0, seconds: (performance.now() - t0) / 1000 };
}

// Warm-up: kernels, the grammar's compile (cached afterwards), the tokenizer info.
await run(Math.min(C, 2));
await run(C, false);
const rows: string[] = [];
for (let r = 0; r < Number(values.repeat); r++) {
  runner.gpuTokenMask = true;
  const base = await run(0);
  const plain = await run(C, false);
  const gpu = await run(C);
  runner.gpuTokenMask = false;
  const cpu = await run(C);
  runner.gpuTokenMask = true;
  if (process.env.PROBE) {
    runner.candidateSampling = false;
    const nc = await run(C);
    runner.candidateSampling = true;
    console.log(`GPU mask, no candidates: free ${nc.freeTps.toFixed(0)} constrained ${nc.consTps.toFixed(0)} ${nc.seconds.toFixed(2)} s`);
  }
  // Per constrained token: the run's extra time over the same rows without their grammar.
  const fmt = (x: { freeTps: number; consTps: number; seconds: number }) =>
    `free ${x.freeTps.toFixed(0)} tok/s (${((100 * x.freeTps) / base.freeTps).toFixed(0)}% of alone, ${((100 * x.freeTps) / plain.freeTps).toFixed(0)}% of beside free rows), ` +
    `constrained ${x.consTps.toFixed(0)} tok/s, ${x.seconds.toFixed(2)} s, +${((1000 * (x.seconds - plain.seconds)) / (C * N)).toFixed(3)} ms per constrained token`;
  rows.push(
    `round ${r}: free alone ${base.freeTps.toFixed(0)} tok/s | + ${C} free rows: ${plain.freeTps.toFixed(0)} tok/s (${((100 * plain.freeTps) / base.freeTps).toFixed(0)}%), ${plain.seconds.toFixed(2)} s` +
      ` | + ${C} constrained, GPU mask: ${fmt(gpu)} | CPU mask: ${fmt(cpu)}`,
  );
}
console.log(`model ${model}, ${F} free + ${C} constrained streams, ${N} tokens, prompt ${P}`);
for (const r of rows) console.log(r);
await llm.dispose();
