/**
 * Continuous batching under load: C concurrent streams, each a random prompt and a fixed number of generated
 * tokens, through the whole engine (scheduler, runner, sampler, detokenizer, streams).
 *
 *   node build/bench/engine.js [MODEL_DIR] [--streams 1,8,32,64] [--prompt 128] [--tokens 128] [--dummy] [--dtype float16]
 *     [--repeat 3] [--timing] [--sync] [--eager] [--tune key=value,...]
 *
 * Prints aggregate decode tokens/s and time to first token (p50/p99) per concurrency, and the ratio of the
 * highest concurrency's throughput to one stream's. --repeat R times every concurrency R times, the rounds
 * interleaved, and reports each one's median round (with the range of its tokens/s): a lent GPU's speed drifts
 * between runs and within one. --timing splits each concurrency's steps into the engine's parts (CPU time of
 * schedule, the runner's synchronous part (inputs, recording, submit), output processing, update; and the wait for
 * the GPU), per step, in the last round. --sync runs the engine without async scheduling (one step at a time), --eager
 * without step graphs (every forward recorded anew: EngineOptions.enforceEager). --tune overrides fields of the
 * device's KernelTuning (bench/tune.ts), as in bench/generate.
 */
import { parseArgs } from 'node:util';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { Generator } from '../src/sampling/generator.js';
import { applyTune } from './tune.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    streams: { type: 'string', default: '1,8,32,64' },
    prompt: { type: 'string', default: '128' },
    tokens: { type: 'string', default: '128' },
    dummy: { type: 'boolean', default: false },
    dtype: { type: 'string', default: 'auto' },
    'kv-memory': { type: 'string', default: String(2 * 2 ** 30) },
    repeat: { type: 'string', default: '1' },
    timing: { type: 'boolean', default: false },
    sync: { type: 'boolean', default: false },
    eager: { type: 'boolean', default: false },
    tune: { type: 'string', default: '' },
  },
});
const streams = values.streams.split(',').map(Number);
const promptLen = Number(values.prompt);
const maxTokens = Number(values.tokens);
const loadStart = performance.now();
const llm = await LLM.create({
  model: positionals[0],
  loadFormat: values.dummy ? 'dummy' : 'auto',
  dtype: values.dtype as 'auto',
  maxNumSeqs: Math.max(...streams),
  maxNumBatchedTokens: 2048,
  maxModelLen: promptLen + maxTokens + 16,
  kvCacheMemoryBytes: Number(values['kv-memory']),
  asyncScheduling: !values.sync,
  enforceEager: values.eager,
});
const loadMs = performance.now() - loadStart;
const cfg = llm.engine.config;
const ctx = llm.engine.runner.ctx;
applyTune(ctx.tuning, values.tune);
if (values.tune) console.log(`# tuning: ${values.tune}`);
// Kernels compiled after load (the engine's warm-up should leave none to compile mid-run).
const builtAtLoad = ctx.pipelines.pipelinesBuilt;
console.log(`# ${positionals[0] ?? 'embedded default'}: ${cfg.architecture}, hidden ${cfg.hiddenSize}, ${cfg.numLayers} layers, vocab ${cfg.vocabSize}; ${values.dummy ? 'dummy' : 'real'} weights`);
console.log(`# adapter: ${ctx.adapter.info.vendor} ${ctx.adapter.info.device} ${ctx.adapter.info.description}; shader-f16 ${ctx.f16}`);
console.log(`# ${promptLen}-token prompts, ${maxTokens} generated tokens each (ignore_eos)\n`);
console.log('| streams | wall s | decode tok/s (aggregate) | per-stream tok/s | TTFT p50 ms | TTFT p99 ms |');
console.log('|---|---|---|---|---|---|');
// --timing: wrap the engine's parts (bench only; the engine keeps no timers).
const parts = { steps: 0, schedule: 0, record: 0, outputs: 0, wait: 0, update: 0 };
if (values.timing) {
  const eng = llm.engine as unknown as Record<string, Record<string, (...a: unknown[]) => unknown>>;
  const wrap = (obj: Record<string, (...a: unknown[]) => unknown>, name: string, key: keyof typeof parts) => {
    const f = obj[name].bind(obj);
    obj[name] = (...a: unknown[]) => {
      const t = performance.now();
      const r = f(...a);
      parts[key] += performance.now() - t;
      if (key === 'record') {
        parts.steps++;
        const w = performance.now();
        return (r as Promise<unknown>).then((v) => ((parts.wait += performance.now() - w), v));
      }
      return r;
    };
  };
  wrap(eng.scheduler, 'schedule', 'schedule');
  wrap(eng.runner, 'execute', 'record');
  wrap(eng.outputs, 'process', 'outputs');
  wrap(eng.scheduler, 'updateFromOutput', 'update');
}
const gen = new Generator(7);
const prompt = () => ({ promptTokenIds: Array.from({ length: promptLen }, () => 100 + (gen.nextU32() % Math.min(cfg.vocabSize - 100, 20000))) });
const params = new SamplingParams({ temperature: 0, maxTokens, ignoreEos: true, outputKind: 'delta' });
const results: Record<number, number> = {};
/** C concurrent streams to the end: wall, TTFTs, tokens, time of the first token of any stream. */
async function run(C: number) {
  const t0 = performance.now();
  const ttft: number[] = [];
  let firstAll = Infinity;
  let tokens = 0;
  await Promise.all(
    Array.from({ length: C }, async () => {
      const start = performance.now();
      let first = true;
      for await (const out of llm.engine.addRequest({ prompt: prompt(), params })) {
        if (first && out.outputs[0].tokenIds.length > 0) {
          first = false;
          const now = performance.now();
          ttft.push(now - start);
          firstAll = Math.min(firstAll, now);
        }
        tokens += out.outputs[0].tokenIds.length;
      }
    }),
  );
  return { t0, end: performance.now(), ttft, tokens, firstAll };
}

// Warm-up: every concurrency once, untimed (pipelines for every batch shape and context length, buffers, JIT).
for (const C of streams) await run(C);
type Round = { tps: number; wall: number; ttft: number[] };
const rounds = new Map<number, Round[]>(streams.map((C) => [C, []]));
for (let r = 0; r < Number(values.repeat); r++) {
  for (const C of streams) {
    for (const k of Object.keys(parts) as (keyof typeof parts)[]) parts[k] = 0;
    const { t0, end, ttft, tokens, firstAll } = await run(C);
    if (values.timing && r === Number(values.repeat) - 1) {
      const per = (k: keyof typeof parts) => (parts[k] / parts.steps).toFixed(3);
      console.log(`# ${C} streams: ${parts.steps} steps, ${((end - t0) / parts.steps).toFixed(2)} ms each; per step: schedule ${per('schedule')}, runner inputs+record+submit ${per('record')}, outputs ${per('outputs')}, GPU wait ${per('wait')} (outputs run inside it), update ${per('update')} ms`);
    }
    // Decode throughput: tokens after each stream's first, over the time since the first token of any stream.
    rounds.get(C)!.push({ tps: (tokens - C) / ((end - firstAll) / 1000), wall: end - t0, ttft: ttft.sort((a, b) => a - b) });
  }
}
for (const C of streams) {
  const all = rounds.get(C)!.sort((a, b) => a.tps - b.tps);
  const { tps, wall, ttft } = all[Math.floor((all.length - 1) / 2)];
  const q = (p: number) => ttft[Math.min(ttft.length - 1, Math.floor(p * ttft.length))];
  const range = all.length > 1 ? ` (${all[0].tps.toFixed(0)}-${all[all.length - 1].tps.toFixed(0)})` : '';
  results[C] = tps;
  console.log(`| ${C} | ${(wall / 1000).toFixed(2)} | ${tps.toFixed(1)}${range} | ${(tps / C).toFixed(1)} | ${q(0.5).toFixed(1)} | ${q(0.99).toFixed(1)} |`);
}
const lo = Math.min(...streams);
const hi = Math.max(...streams);
console.log(`\n${hi} streams / ${lo} stream aggregate decode throughput: ${(results[hi] / results[lo]).toFixed(1)}x`);
console.log(`# load ${(loadMs / 1000).toFixed(1)} s; kernels compiled at load ${builtAtLoad}, after load ${ctx.pipelines.pipelinesBuilt - builtAtLoad}`);
await llm.dispose();
process.exit(0);
