// Sampler time per engine step at vocab 151936, batch 1 and 64, for the common parameter mixes, on two kinds of
// rows: "peaked" (an LLM's usual row: a N(0, 2.5) bulk and a few dozen tokens at 12..26) and "flat" (top tokens
// only 8..18 over a N(0, 2) bulk: thousands of tokens within reach of the top, the slow case for top-p) and "masked"
// (flat rows where a grammar's bitmask left 1,112 tokens, every other logit -inf: structured outputs' rows).
// Run: npx esbuild bench/sampler.ts --bundle --platform=node --target=node20 --format=esm --loader:.wasm=binary \
//        --outfile=build/bench-sampler.mjs && node build/bench-sampler.mjs
import { SamplingParams, type SamplingParamsInit } from '../src/sampling-params.js';
import { Generator } from '../src/sampling/generator.js';
import { Sampler, type SamplerRequest } from '../src/sampling/sampler.js';

const V = 151936;

/** A row from a deterministic LCG (not Math.random): a normal bulk and 40 strong tokens. */
function logitsRow(seed: number, std: number, lo: number, hi: number): Float32Array {
  let x = seed >>> 0;
  const next = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296);
  const row = Float32Array.from({ length: V }, () => std * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()));
  for (let j = 0; j < 40; j++) row[Math.floor(next() * V)] = lo + (hi - lo) * next();
  return row;
}

const configs: [string, SamplingParamsInit][] = [
  ['greedy', { temperature: 0 }],
  ['temperature 0.8', { temperature: 0.8 }],
  ['top-k 50', { temperature: 0.8, topK: 50 }],
  ['top-p 0.95', { temperature: 0.8, topP: 0.95 }],
  ['top-k 40, top-p 0.9, min-p 0.05', { temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05 }],
  ['top-k 1000', { temperature: 1, topK: 1000 }],
  ['top-p 0.9 + logprobs 5', { temperature: 0.8, topP: 0.9, logprobs: 5 }],
  ['top-p 0.9 + penalties (1k prompt, 256 out)', { temperature: 0.8, topP: 0.9, repetitionPenalty: 1.1, frequencyPenalty: 0.5, presencePenalty: 0.5 }],
];

const sampler = await Sampler.create(V);
const prompt = Array.from({ length: 1024 }, (_, i) => (i * 7919) % V);
const output = Array.from({ length: 256 }, (_, i) => (i * 104729) % V);

/** Median ms of one `sample` call over 15 runs after 3 warm-ups. */
function time(rows: Float32Array[], params: SamplingParams): number {
  const reqs: SamplerRequest[] = rows.map((_, i) => ({ params, generator: new Generator(i), promptTokenIds: prompt, outputTokenIds: output }));
  const t: number[] = [];
  for (let it = 0; it < 18; it++) {
    const t0 = performance.now();
    sampler.sample(rows, reqs);
    if (it >= 3) t.push(performance.now() - t0);
  }
  return t.sort((a, b) => a - b)[t.length >> 1];
}

/** A flat row with all but `keep` tokens (evenly strided) set to -inf, as a grammar bitmask leaves it. */
function maskedRow(seed: number, keep: number): Float32Array {
  const row = logitsRow(seed, 2, 8, 18);
  const stride = Math.floor(V / keep);
  for (let j = 0; j < V; j++) if (j % stride !== seed % stride) row[j] = -Infinity;
  return row;
}

for (const [kind, std, lo, hi] of [['peaked', 2.5, 12, 26], ['flat', 2, 8, 18], ['masked', 0, 0, 0]] as const) {
  const rows = Array.from({ length: 64 }, (_, i) => (kind === 'masked' ? maskedRow(i + 1, 1112) : logitsRow(i + 1, std, lo, hi)));
  console.log(`\n${kind} rows, vocab ${V}: ms per sample() call (median of 15)`);
  console.log(['config'.padEnd(44), 'batch 1'.padStart(8), 'batch 64'.padStart(9), 'ms/row'.padStart(7)].join(' '));
  for (const [name, init] of configs) {
    const params = new SamplingParams(init);
    const one = time(rows.slice(0, 1), params);
    const all = time(rows, params);
    console.log([name.padEnd(44), one.toFixed(3).padStart(8), all.toFixed(2).padStart(9), (all / 64).toFixed(3).padStart(7)].join(' '));
  }
}
