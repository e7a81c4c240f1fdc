/**
 * Sampling lab: the cost of sampling per engine step at vocab 151936, batch 1 and 64, two ways:
 *   full: copy the whole logits rows to a staging buffer, map, Sampler.sample (the model runner today);
 *   cand: topKCandidates (shaders/topk*.wgsl) + ~1 KB per row read back + sampleCandidates, and for the rows that
 *         decline, a second copy + map of just those rows and Sampler.sample (the fallback the runner would do).
 * Every cand token is checked against the full path's token for the same seeds (exactness on this device), and
 * the GPU's sums against an f64 reference (their error must stay under SUM_REL_ERROR).
 * Rows: "peaked" (an LLM's usual row: N(0, 2.5) bulk, 40 tokens at 12..26), "flat" (N(0, 2), 40 at 8..18) and
 * "diffuse" (N(0, 2.5), 40 at 6..14: the bulk holds about half the mass at T = 1, the stress case for fallbacks).
 *
 * Run:
 *   npx esbuild bench/sampling.ts --bundle --platform=node --format=esm --target=node20 --loader:.wgsl=text \
 *     --loader:.wasm=binary --external:webgpu --outfile=build/bench/sampling.mjs && node build/bench/sampling.mjs [--quick]
 * --quick: vocab 32000, fewer iterations (CPU WebGPU).
 */
import { nodeGpu } from '../bindings/node/webgpu.js';
import { GpuContext } from '../src/gpu/context.js';
import { Recorder } from '../src/gpu/recorder.js';
import { createTensor, uploadTensor, type Tensor } from '../src/gpu/tensor.js';
import { candidateRecordWords, readCandidateRow, topKCandidates } from '../src/ops/topk.js';
import { SamplingParams, type SamplingParamsInit } from '../src/sampling-params.js';
import { candidateCount, candidateRowParams, sampleCandidates, SUM_REL_ERROR } from '../src/sampling/candidates.js';
import { Generator } from '../src/sampling/generator.js';
import { Sampler, type SamplerRequest } from '../src/sampling/sampler.js';

const quick = process.argv.includes('--quick');
const V = quick ? 32000 : 151936;
const ITERS = quick ? 1 : 12;
/** Repetitions per kernel timing, and how long the clocks are warmed first (ms). */
const KERNEL_ITERS = quick ? 2 : 200;
const WARM_MS = quick ? 0 : 200;
const MAX_S = 64;

/** A row from a deterministic LCG (bench/sampler.ts's rows): a normal bulk and 40 strong tokens. */
function logitsRow(seed: number, std: number, lo: number, hi: number): Float32Array {
  let x = seed >>> 0;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296;
  const row = Float32Array.from({ length: V }, () => std * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()));
  for (let j = 0; j < 40; j++) row[Math.floor(next() * V)] = lo + (hi - lo) * next();
  return row;
}

const mixes: [string, SamplingParamsInit][] = [
  ['temperature 0.8', { temperature: 0.8 }],
  ['temperature 1', { temperature: 1 }],
  ['top-k 50', { temperature: 0.8, topK: 50 }],
  ['top-p 0.95', { temperature: 0.8, topP: 0.95 }],
  ['top-k 40, top-p 0.9, min-p 0.05', { temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05 }],
  ['top-k 100', { temperature: 1, topK: 100 }],
];

const gpu = await nodeGpu();
const ctx = await GpuContext.create(gpu);
const info = ctx.adapterInfo;
console.log(`device: ${info.vendor} ${info.architecture} ${info.description}; vocab ${V}`);
const dev = ctx.device;
const sampler = await Sampler.create(V);

const staging = (() => {
  const cache = new Map<string, GPUBuffer>();
  return (name: string, size: number) => {
    let b = cache.get(name);
    if (!b || b.size < size) {
      b?.destroy();
      b = dev.createBuffer({ label: name, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      cache.set(name, b);
    }
    return b;
  };
})();
const rowParams = createTensor(ctx, [MAX_S, 2], 'f32', 'rowParams');
const records = createTensor(ctx, [MAX_S, candidateRecordWords(256)], 'u32', 'records');

const requests = (params: SamplingParams, S: number, seed: number): SamplerRequest[] =>
  Array.from({ length: S }, (_, r) => ({ params, generator: new Generator(seed * 1000 + r), promptTokenIds: [], outputTokenIds: [] }));

/** The runner today: S whole rows to the CPU sampler. */
async function fullStep(logits: Tensor, S: number, reqs: SamplerRequest[]) {
  const bytes = S * V * 4;
  const buf = staging('full', bytes);
  const t0 = performance.now();
  const rec = new Recorder(ctx);
  rec.copy(logits.buffer, 0, buf, 0, bytes);
  rec.submit();
  await buf.mapAsync(GPUMapMode.READ, 0, bytes);
  const t1 = performance.now();
  const mapped = buf.getMappedRange(0, bytes);
  const views = reqs.map((_, r) => new Float32Array(mapped, r * V * 4, V));
  const tokens = sampler.sample(views, reqs).map((o) => o.tokenId);
  buf.unmap();
  const t2 = performance.now();
  return { ms: t2 - t0, readback: t1 - t0, cpu: t2 - t1, tokens };
}

/** Candidates, then a second small readback for the rows that decline. */
async function candStep(logits: Tensor, S: number, reqs: SamplerRequest[], K: number) {
  const R = candidateRecordWords(K) * 4;
  const buf = staging('cand', S * R);
  const t0 = performance.now();
  const rp = new Float32Array(S * 2);
  reqs.forEach((q, r) => rp.set(candidateRowParams(q.params), 2 * r));
  dev.queue.writeBuffer(rowParams.buffer, 0, rp);
  const rec = new Recorder(ctx);
  topKCandidates(rec, logits, rowParams, records, S, V, K);
  rec.copy(records.buffer, 0, buf, 0, S * R);
  rec.submit();
  await buf.mapAsync(GPUMapMode.READ, 0, S * R);
  const t1 = performance.now();
  const mapped = buf.getMappedRange(0, S * R);
  const tokens: number[] = [];
  const fallback: number[] = [];
  reqs.forEach((q, r) => {
    const id = sampleCandidates(readCandidateRow(mapped, r * R, K), q, V);
    if (id === null) fallback.push(r);
    tokens.push(id ?? -1);
  });
  buf.unmap();
  const t2 = performance.now();
  if (fallback.length > 0) {
    const fb = staging('fallback', fallback.length * V * 4);
    const rec2 = new Recorder(ctx);
    fallback.forEach((r, j) => rec2.copy(logits.buffer, r * V * 4, fb, j * V * 4, V * 4));
    rec2.submit();
    await fb.mapAsync(GPUMapMode.READ, 0, fallback.length * V * 4);
    const m = fb.getMappedRange(0, fallback.length * V * 4);
    const out = sampler.sample(
      fallback.map((_, j) => new Float32Array(m, j * V * 4, V)),
      fallback.map((r) => reqs[r]),
    );
    fallback.forEach((r, j) => (tokens[r] = out[j].tokenId));
    fb.unmap();
  }
  const t3 = performance.now();
  return { ms: t3 - t0, readback: t1 - t0, cpu: t2 - t1, fallbackMs: t3 - t2, fallbacks: fallback.length, tokens };
}

/**
 * GPU time of the kernels alone (steps: bit i = step i + 1): `iters` repetitions in one submit, after about 0.2 s
 * of the same work so that the GPU's clocks are up (the CPU phases between leave it idle).
 */
async function kernelMs(logits: Tensor, S: number, K: number, steps = 0b1111, iters = KERNEL_ITERS): Promise<number> {
  const batch = (n: number) => {
    const rec = new Recorder(ctx);
    for (let i = 0; i < n; i++) topKCandidates(rec, logits, rowParams, records, S, V, K, steps);
    rec.submit();
    return ctx.finish();
  };
  await batch(iters);
  for (let t0 = performance.now(); performance.now() - t0 < WARM_MS; ) await batch(iters);
  const t0 = performance.now();
  await batch(iters);
  return (performance.now() - t0) / iters;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const fmt = (v: number, w = 8, d = 2) => v.toFixed(d).padStart(w);

/** Largest relative error of the GPU's sums against f64, in units of SUM_REL_ERROR, over a few rows. */
async function sumErrors(logits: Tensor, rows: Float32Array[], params: SamplingParams, K: number): Promise<number> {
  const S = Math.min(4, rows.length);
  const reqs = requests(params, S, 0);
  const R = candidateRecordWords(K) * 4;
  const rp = new Float32Array(S * 2);
  reqs.forEach((q, r) => rp.set(candidateRowParams(q.params), 2 * r));
  dev.queue.writeBuffer(rowParams.buffer, 0, rp);
  const buf = staging('check', S * R);
  const rec = new Recorder(ctx);
  topKCandidates(rec, logits, rowParams, records, S, V, K);
  rec.copy(records.buffer, 0, buf, 0, S * R);
  rec.submit();
  await buf.mapAsync(GPUMapMode.READ, 0, S * R);
  const mapped = buf.getMappedRange(0, S * R);
  let worst = 0;
  for (let r = 0; r < S; r++) {
    const c = readCandidateRow(mapped, r * R, K);
    const [invT] = candidateRowParams(params);
    const pre = new Float64Array(V + 1);
    for (let i = 0; i < V; i++) {
      const x = Math.fround(Math.fround(rows[r][i] - c.max) * invT);
      pre[i + 1] = pre[i] + (rows[r][i] >= c.floor && x >= Math.fround(-87.33654) ? Math.exp(x) : 0);
    }
    worst = Math.max(worst, Math.abs(c.sumExp - pre[V]) / pre[V]);
    for (let j = 0; j < K; j++) worst = Math.max(worst, Math.abs(c.prefix[j] - pre[c.ids[j]]) / pre[V]);
  }
  buf.unmap();
  return worst / SUM_REL_ERROR;
}

for (const [kind, std, lo, hi] of [['peaked', 2.5, 12, 26], ['flat', 2, 8, 18], ['diffuse', 2.5, 6, 14]] as const) {
  const rows = Array.from({ length: MAX_S }, (_, i) => logitsRow(i + 1, std, lo, hi));
  const flat = new Float32Array(MAX_S * V);
  rows.forEach((r, i) => flat.set(r, i * V));
  const logits = uploadTensor(ctx, flat, [MAX_S, V], 'f32', `logits.${kind}`);
  const err = await sumErrors(logits, rows, new SamplingParams({ temperature: 0.8 }), 64);
  console.log(`\n${kind} rows: GPU sum error ${(err * 100).toFixed(2)}% of the bound SUM_REL_ERROR`);
  console.log(
    ['config'.padEnd(34), 'S', '  K', 'full ms', '(rdbk', 'cpu)', 'cand ms', '(gpu+rdbk', 'cpu', 'fallbk)', 'fallback%', 'kernel'].join(' '),
  );
  let mismatches = 0;
  for (const [name, init] of mixes) {
    const params = new SamplingParams(init);
    const K = candidateCount([params]);
    for (const S of [1, MAX_S]) {
      const full: Awaited<ReturnType<typeof fullStep>>[] = [];
      const cand: Awaited<ReturnType<typeof candStep>>[] = [];
      for (let it = 0; it <= ITERS; it++) {
        const a = await fullStep(logits, S, requests(params, S, it));
        const b = await candStep(logits, S, requests(params, S, it), K);
        mismatches += a.tokens.filter((t, r) => t !== b.tokens[r]).length;
        if (it === 0) continue; // warm-up: pipelines, buffers
        full.push(a);
        cand.push(b);
      }
      const fallbackRate = cand.reduce((n, c) => n + c.fallbacks, 0) / (cand.length * S);
      const kernel = await kernelMs(logits, S, K);
      const m = (a: { [k: string]: unknown }[], key: string) => median(a.map((x) => x[key] as number));
      console.log(
        [
          name.padEnd(34),
          String(S).padStart(2),
          String(K).padStart(3),
          fmt(m(full, 'ms')),
          fmt(m(full, 'readback')),
          fmt(m(full, 'cpu')),
          fmt(m(cand, 'ms')),
          fmt(m(cand, 'readback')),
          fmt(m(cand, 'cpu')),
          fmt(m(cand, 'fallbackMs')),
          fmt(100 * fallbackRate, 8, 1),
          fmt(kernel, 8, 3),
        ].join(' '),
      );
    }
  }
  console.log(`token mismatches between the two paths: ${mismatches}`);
  logits.buffer.destroy();
}

console.log('\nkernel ms by K, all four steps and each alone (peaked rows):');
const rows = Array.from({ length: MAX_S }, (_, i) => logitsRow(i + 1, 2.5, 12, 26));
const flat = new Float32Array(MAX_S * V);
rows.forEach((r, i) => flat.set(r, i * V));
const logits = uploadTensor(ctx, flat, [MAX_S, V], 'f32', 'logits');
for (const S of quick ? [1] : [1, 8, MAX_S]) {
  for (const K of [64, 128, 256]) {
    const line = [`S=${S}`.padEnd(5), `K=${K}`.padEnd(6), `all ${fmt(await kernelMs(logits, S, K), 7, 3)}`];
    for (const step of [0, 1, 2, 3]) line.push(`step ${step + 1} ${fmt(await kernelMs(logits, S, K, 1 << step), 7, 3)}`);
    console.log(line.join('  '));
  }
}
sampler.dispose();
ctx.destroy();
