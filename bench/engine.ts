/**
 * Continuous batching under load: C concurrent streams, each a random prompt and a fixed number of generated
 * tokens, through the whole engine (scheduler, runner, sampler, detokenizer, streams).
 *
 *   node build/bench/engine.js [MODEL_DIR] [--streams 1,8,32,64] [--prompt 128] [--tokens 128] [--dummy] [--dtype float16]
 *     [--repeat 3] [--timing] [--sync] [--eager] [--tune key=value,...] [--mma-tiles JSON]
 *
 * Prints per concurrency the aggregate decode tokens/s while all streams decode at once (from the last stream's
 * first token to the first stream's last), the same from the first token of any stream to the end (which also
 * holds the prompt chunks of the streams that start later), time to first token (p50/p99), and the ratios of the
 * highest concurrency's throughputs to one stream's. --repeat R times every concurrency R times, the rounds
 * interleaved, and reports each one's median round (with the range of its tokens/s): a lent GPU's speed drifts
 * between runs and within one. --timing splits each concurrency's steps into the engine's parts (CPU time of
 * schedule, the runner's synchronous part (inputs, recording, submit), output processing, update; and the wait for
 * the GPU), per step, in the last round. --sync runs the engine without async scheduling (one step at a time), --eager
 * without step graphs (every forward recorded anew: EngineOptions.enforceEager). --tune overrides fields of the
 * device's KernelTuning (bench/tune.ts), as in bench/generate; --mma-tiles its tensor-core tile table.
 */
import { parseArgs } from 'node:util';
import { LLM, SamplingParams } from '../bindings/node/index.js';
import { Generator } from '../src/sampling/generator.js';
import { applyTune } from './tune.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';

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
    'mma-tiles': { type: 'string', default: '' },
    quantization: { type: 'string', default: '' },
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
  quantization: values.quantization || null,
});
const loadMs = performance.now() - loadStart;
const cfg = llm.engine.config;
const ctx = gpuRunnerOf(llm.engine).ctx;
applyTune(ctx.tuning, values.tune, values['mma-tiles']);
if (values.tune || values['mma-tiles']) console.log(`# tuning: ${[values.tune, values['mma-tiles']].filter(Boolean).join(' ')}`);
// Kernels compiled after load (the engine's warm-up should leave none to compile mid-run).
const builtAtLoad = ctx.pipelines.pipelinesBuilt;
console.log(`# ${positionals[0] ?? 'embedded default'}: ${cfg.architecture}, hidden ${cfg.hiddenSize}, ${cfg.numLayers} layers, vocab ${cfg.vocabSize}; ${values.dummy ? 'dummy' : 'real'} weights`);
console.log(`# adapter: ${ctx.adapter.info.vendor} ${ctx.adapter.info.device} ${ctx.adapter.info.description}; shader-f16 ${ctx.f16}`);
console.log(`# ${promptLen}-token prompts, ${maxTokens} generated tokens each (ignore_eos)\n`);
console.log('| streams | wall s | decode tok/s, all streams decoding | per-stream tok/s | tok/s from first token (prompt chunks included) | TTFT p50 ms | TTFT p99 ms |');
console.log('|---|---|---|---|---|---|---|');
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
/**
 * C concurrent streams to the end: wall, TTFTs, tokens, the time of the first token of any stream, and the decode
 * rate while all C streams decode at once (tokens delivered between the last stream's first token and the first
 * stream's last, over that time).
 */
async function run(C: number) {
  const t0 = performance.now();
  const ttft: number[] = [];
  const firsts: number[] = [];
  const ends: number[] = [];
  const events: [number, number][] = []; // (time, tokens delivered)
  let tokens = 0;
  await Promise.all(
    Array.from({ length: C }, async () => {
      const start = performance.now();
      let first = true;
      for await (const out of llm.engine.addRequest({ prompt: prompt(), params })) {
        const now = performance.now();
        const n = out.outputs[0].tokenIds.length;
        if (first && n > 0) {
          first = false;
          ttft.push(now - start);
          firsts.push(now);
        }
        tokens += n;
        events.push([now, n]);
      }
      ends.push(performance.now());
    }),
  );
  const allIn = Math.max(...firsts);
  const firstOut = Math.min(...ends);
  let steady = 0;
  for (const [t, n] of events) if (t > allIn && t <= firstOut) steady += n;
  return { t0, end: performance.now(), ttft, tokens, firstAll: Math.min(...firsts), steadyTps: firstOut > allIn ? steady / ((firstOut - allIn) / 1000) : Number.NaN };
}

// Warm-up: every concurrency once, untimed (pipelines for every batch shape and context length, buffers, JIT).
for (const C of streams) await run(C);
type Round = { tps: number; steady: number; wall: number; ttft: number[] };
const rounds = new Map<number, Round[]>(streams.map((C) => [C, []]));
for (let r = 0; r < Number(values.repeat); r++) {
  for (const C of streams) {
    for (const k of Object.keys(parts) as (keyof typeof parts)[]) parts[k] = 0;
    const { t0, end, ttft, tokens, firstAll, steadyTps } = await run(C);
    if (values.timing && r === Number(values.repeat) - 1) {
      const per = (k: keyof typeof parts) => (parts[k] / parts.steps).toFixed(3);
      console.log(`# ${C} streams: ${parts.steps} steps, ${((end - t0) / parts.steps).toFixed(2)} ms each; per step: schedule ${per('schedule')}, runner inputs+record+submit ${per('record')}, outputs ${per('outputs')}, GPU wait ${per('wait')} (outputs run inside it), update ${per('update')} ms`);
    }
    // Decode throughput: while all C streams decode at once (steady); and tokens after each stream's first, over the
    // time since the first token of any stream (which also holds the later streams' prompt chunks).
    rounds.get(C)!.push({ tps: (tokens - C) / ((end - firstAll) / 1000), steady: steadyTps, wall: end - t0, ttft: ttft.sort((a, b) => a - b) });
  }
}
/** The median round by `key`, and the range of `key` over the rounds. */
function median(C: number, key: 'tps' | 'steady'): { round: Round; text: string } {
  const all = [...rounds.get(C)!].sort((a, b) => a[key] - b[key]);
  const round = all[Math.floor((all.length - 1) / 2)];
  const range = all.length > 1 ? ` (${all[0][key].toFixed(0)}-${all[all.length - 1][key].toFixed(0)})` : '';
  return { round, text: `${round[key].toFixed(1)}${range}` };
}
const steadyOf: Record<number, number> = {};
for (const C of streams) {
  const steady = median(C, 'steady');
  const { round, text } = median(C, 'tps');
  const { wall, ttft } = round;
  const q = (p: number) => ttft[Math.min(ttft.length - 1, Math.floor(p * ttft.length))];
  results[C] = round.tps;
  steadyOf[C] = steady.round.steady;
  console.log(`| ${C} | ${(wall / 1000).toFixed(2)} | ${steady.text} | ${(steady.round.steady / C).toFixed(1)} | ${text} | ${q(0.5).toFixed(1)} | ${q(0.99).toFixed(1)} |`);
}
const lo = Math.min(...streams);
const hi = Math.max(...streams);
console.log(`\n${hi} streams / ${lo} stream aggregate decode throughput: ${(steadyOf[hi] / steadyOf[lo]).toFixed(1)}x all decoding, ${(results[hi] / results[lo]).toFixed(1)}x from the first token`);
console.log(`# load ${(loadMs / 1000).toFixed(1)} s; kernels compiled at load ${builtAtLoad}, after load ${ctx.pipelines.pipelinesBuilt - builtAtLoad}`);
await llm.dispose();
process.exit(0);
