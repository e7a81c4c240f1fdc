// The batched CPU sampler (assembly/sampler.ts via src/sampling/sampler.ts) against plain-JS references written
// here from vLLM's rules (vllm/v1/sample/sampler.py and its ops), never calling the sampler's own code.
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import { SamplingParams, type SamplingParamsInit } from '../src/sampling-params.js';
import { badWordsTokenIds, bannedByBadWords } from '../src/sampling/bad-words.js';
import { Generator } from '../src/sampling/generator.js';
import { topLogprobs } from '../src/sampling/logprobs.js';
import { needsLogitsRow, Sampler, type SamplerRequest } from '../src/sampling/sampler.js';

// ---- Test data ---------------------------------------------------------------------------------------------
/** mulberry32: test data only (the sampler's generator is under test, so it is not used to make inputs). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function normalRow(V: number, seed: number, std = 2): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: V }, () => std * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
}
/** An LLM-like row: a diffuse bulk plus a few strong candidates. */
function peakedRow(V: number, seed: number): Float32Array {
  const row = normalRow(V, seed, 2);
  const r = rng(seed + 1);
  for (let j = 0; j < 40; j++) row[Math.floor(r() * V)] = 8 + 10 * r();
  return row;
}
const req = (init: SamplingParamsInit, more: Partial<SamplerRequest> = {}, seed = 0): SamplerRequest => ({
  params: new SamplingParams(init),
  generator: new Generator(seed),
  promptTokenIds: [],
  outputTokenIds: [],
  ...more,
});

// ---- References (float64, vLLM's formulations) --------------------------------------------------------------
/** Stages 2-3: allowed ids, bad words, min-tokens, logit bias, then repetition, frequency and presence. */
function refProcessed(row: Float32Array, q: SamplerRequest): Float64Array {
  const p = q.params;
  const x = Float64Array.from(row);
  const out = q.outputTokenIds;
  if (p.allowedTokenIds) {
    const ok = new Set(p.allowedTokenIds);
    x.forEach((_, i) => !ok.has(i) && (x[i] = -Infinity));
  }
  for (const w of q.badWordsTokenIds ?? []) {
    const pre = w.slice(0, -1);
    if (pre.length <= out.length && pre.every((t, j) => out[out.length - pre.length + j] === t)) x[w[w.length - 1]] = -Infinity;
  }
  if (out.length < p.minTokens) for (const id of q.stopTokenIds ?? []) x[id] = -Infinity;
  for (const [id, b] of p.logitBias ?? []) x[id] += b;
  const seen = new Set([...Array.from(q.promptTokenIds), ...out]);
  for (const id of seen) x[id] = x[id] > 0 ? x[id] / p.repetitionPenalty : x[id] * p.repetitionPenalty;
  const counts = new Map<number, number>();
  for (const id of out) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, c] of counts) x[id] = x[id] - p.frequencyPenalty * c - p.presencePenalty;
  return x;
}
const argmaxOf = (x: ArrayLike<number>) => {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
  return b;
};
function softmax(y: Float64Array): Float64Array {
  let m = -Infinity;
  for (const v of y) m = Math.max(m, v);
  const e = y.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}
/** Stage 4's distribution: temperature, min-p, top-k (ties kept), top-p (ascending cumsum <= 1 - p masked). */
function refProbs(x: Float64Array, p: SamplingParams): Float64Array {
  const y = x.map((v) => v / p.temperature);
  if (p.minP > 0) {
    const probs = softmax(y);
    const cut = p.minP * probs.reduce((a, b) => Math.max(a, b), 0);
    probs.forEach((q, i) => q < cut && (y[i] = -Infinity));
  }
  if (p.topK > 0 && p.topK < y.length) {
    const kth = [...y].sort((a, b) => b - a)[p.topK - 1];
    y.forEach((v, i) => v < kth && (y[i] = -Infinity));
  }
  if (p.topP < 1) {
    const probs = softmax(y);
    // Ascending order; among equal logits the higher id comes first (so the lower id survives longer).
    const asc = Array.from(y.keys()).sort((a, b) => y[a] - y[b] || b - a);
    let cum = 0;
    asc.forEach((i, j) => {
      cum += probs[i];
      if (cum <= 1 - p.topP && j < asc.length - 1) y[i] = -Infinity;
    });
  }
  return softmax(y);
}

/** Pearson chi-square of observed counts against probabilities, small cells pooled; passes at alpha = 1e-4. */
function expectChiSquare(counts: Map<number, number>, probs: Float64Array, n: number): void {
  for (const [id, c] of counts) if (c > 0) expect(probs[id], `token ${id} drawn ${c}x outside the kept set`).toBeGreaterThan(0);
  const cells: { e: number; o: number }[] = [];
  let pool = { e: 0, o: 0 };
  probs.forEach((q, id) => {
    const cell = { e: q * n, o: counts.get(id) ?? 0 };
    if (cell.e >= 5) cells.push(cell);
    else if (q > 0) (pool.e += cell.e), (pool.o += cell.o);
  });
  if (pool.e >= 5) cells.push(pool);
  else if (cells.length > 0) (cells[cells.length - 1].e += pool.e), (cells[cells.length - 1].o += pool.o);
  const df = cells.length - 1;
  if (df < 1) return;
  const stat = cells.reduce((s, c) => s + (c.o - c.e) ** 2 / c.e, 0);
  const z = 3.719; // one-sided 1e-4
  const crit = df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3; // Wilson-Hilferty
  expect(stat, `chi-square ${stat.toFixed(1)} with ${df} df (critical ${crit.toFixed(1)})`).toBeLessThan(crit);
}

let sampler: Sampler;
let big: Sampler;
const samplers = new Map<number, Sampler>();
async function samplerFor(V: number): Promise<Sampler> {
  if (!samplers.has(V)) samplers.set(V, await Sampler.create(V));
  return samplers.get(V)!;
}
beforeAll(async () => {
  sampler = await samplerFor(1000);
  big = await samplerFor(151936);
});

/** n draws of one row under `init`, batch rows sharing the logits, each with its own seed. */
function draws(s: Sampler, row: Float32Array, init: SamplingParamsInit, n: number, batch = 500): Map<number, number> {
  const counts = new Map<number, number>();
  for (let done = 0; done < n; done += batch) {
    const S = Math.min(batch, n - done);
    const rows = Array.from({ length: S }, () => row);
    const reqs = Array.from({ length: S }, (_, j) => req(init, {}, 1000 + done + j));
    for (const o of s.sample(rows, reqs)) counts.set(o.tokenId, (counts.get(o.tokenId) ?? 0) + 1);
  }
  return counts;
}

// ---- Per-field tests ------------------------------------------------------------------------------------------
describe('stages 2-3: each field matches the reference (greedy pick of the processed row)', () => {
  const V = 1000;
  const cases: [string, (r: () => number, row: Float32Array) => SamplerRequest][] = [
    ['logitBias', (r) => req({ temperature: 0, logitBias: new Map(Array.from({ length: 20 }, () => [Math.floor(r() * V), (r() - 0.3) * 20])) })],
    ['allowedTokenIds', (r) => req({ temperature: 0, allowedTokenIds: Array.from({ length: 12 }, () => Math.floor(r() * V)) })],
    ['minTokens (EOS/stop masked while short)', (r, row) => {
      const top = topIds(row, 3);
      const outLen = Math.floor(r() * 6);
      return req({ temperature: 0, minTokens: 3, maxTokens: 10 }, { outputTokenIds: Array(outLen).fill(7), stopTokenIds: [top[0], top[1]] });
    }],
    ['badWords', (r, row) => {
      const top = topIds(row, 4);
      const out = [5, 6, top[3]];
      const words = [[top[0]], [6, top[3], top[1]], [9, top[2]]];
      return req({ temperature: 0, badWords: ['x'] }, { outputTokenIds: r() < 0.5 ? out : [1], badWordsTokenIds: words });
    }],
    ['repetitionPenalty (prompt + output)', (r, row) => {
      const top = topIds(row, 20);
      const pick = () => top[Math.floor(r() * 20)];
      return req({ temperature: 0, repetitionPenalty: [0.5, 1.3, 2, 5][Math.floor(r() * 4)] }, { promptTokenIds: [pick(), pick(), pick()], outputTokenIds: [pick(), pick()] });
    }],
    ['frequencyPenalty and presencePenalty (output)', (r, row) => {
      const top = topIds(row, 10);
      const out = Array.from({ length: 12 }, () => top[Math.floor(r() * 10)]);
      return req({ temperature: 0, frequencyPenalty: r() * 4 - 2, presencePenalty: r() * 4 - 2 }, { outputTokenIds: out });
    }],
    ['everything at once', (r, row) => {
      const top = topIds(row, 30);
      const pick = () => top[Math.floor(r() * 30)];
      return req(
        { temperature: 0, logitBias: { [pick()]: 3, [pick()]: -50 }, repetitionPenalty: 1.5, frequencyPenalty: 0.7, presencePenalty: -0.4, minTokens: 9, maxTokens: 20, badWords: ['x'] },
        { promptTokenIds: [pick(), pick()], outputTokenIds: [pick(), pick(), pick()], stopTokenIds: [pick()], badWordsTokenIds: [[pick()]] },
      );
    }],
  ];
  for (const [name, make] of cases) {
    it(name, () => {
      const r = rng(name.length * 7919);
      const rows: Float32Array[] = [];
      const reqs: SamplerRequest[] = [];
      for (let t = 0; t < 60; t++) {
        // Mixed signs and near-ties around the top, so the rules decide the winner.
        const row = Float32Array.from(normalRow(V, t * 31 + name.length, 1.5), (v) => v + (t % 3) - 1);
        rows.push(row);
        reqs.push(make(r, row));
      }
      const out = sampler.sample(rows, reqs);
      const changed = out.filter((o, t) => o.tokenId !== argmaxOf(rows[t])).length;
      out.forEach((o, t) => expect(o.tokenId, `row ${t}`).toBe(argmaxOf(refProcessed(rows[t], reqs[t]))));
      expect(changed, 'the field should change some picks').toBeGreaterThan(0);
    });
  }
});

function topIds(row: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: row.length }, (_, i) => i)
    .sort((a, b) => row[b] - row[a] || a - b)
    .slice(0, k);
}

// ---- Distributions --------------------------------------------------------------------------------------------
describe('stage 4: draws follow the reference distribution (chi-square)', () => {
  const V = 64;
  const row = normalRow(V, 5, 1.5);
  const cases: SamplingParamsInit[] = [
    { temperature: 1 },
    { temperature: 0.6 },
    { temperature: 1.7, topK: 7 },
    { temperature: 1, topP: 0.8 },
    { temperature: 1, minP: 0.15 },
    { temperature: 1.3, topK: 20, topP: 0.9, minP: 0.05 },
    { temperature: 0.9, topP: 0.5, minP: 0.3 },
  ];
  for (const init of cases) {
    it(JSON.stringify(init), async () => {
      const s = await samplerFor(V);
      const n = 20_000;
      const p = new SamplingParams(init);
      expectChiSquare(draws(s, row, init, n), refProbs(Float64Array.from(row), p), n);
    });
  }

  it('ties: top-k keeps every token equal to the k-th; top-p splits ties by id', async () => {
    const s = await samplerFor(V);
    const tied = Float32Array.from({ length: V }, (_, i) => [0, -0.5, -1, -3][i % 4]);
    for (const init of [{ topK: 5 }, { topK: 17, temperature: 0.7 }, { topP: 0.3 }, { topK: 40, topP: 0.6 }]) {
      const n = 20_000;
      expectChiSquare(draws(s, tied, init, n), refProbs(Float64Array.from(tied), new SamplingParams(init)), n);
    }
  });

  it('vocab 151936, LLM-like logits: temperature, top-k (small and large), top-p, min-p', () => {
    const rowBig = peakedRow(151936, 3);
    const cases = [{ temperature: 1 }, { topK: 10 }, { temperature: 0.8, topP: 0.9 }, { temperature: 1.2, topK: 30, topP: 0.95, minP: 0.01 }, { temperature: 1.5, topK: 300, topP: 0.99 }];
    for (const init of cases) {
      const n = 3000;
      expectChiSquare(draws(big, rowBig, init, n, 64), refProbs(Float64Array.from(rowBig), new SamplingParams(init)), n);
    }
  });

  it('vocab 151936, a flat row: a top-p boundary below the candidates (every survivor becomes one)', () => {
    // One token on top, the bulk just over 16 below it: the bulk holds ~1% of the mass, outside the candidates.
    const flat = Float32Array.from(normalRow(151936, 11, 0.3), (x) => x - 16.5);
    flat[777] = 0;
    const p = new SamplingParams({ topP: 0.995 });
    const ref = refProbs(Float64Array.from(flat), p);
    const m = flat.reduce((a, b) => Math.max(a, b), -Infinity);
    const tail = Array.from(flat).reduce((z, l, i) => z + (l < m - 16 ? ref[i] : 0), 0);
    expect(tail, 'kept mass below the cut').toBeGreaterThan(0.002);
    const n = 3000;
    expectChiSquare(draws(big, flat, { topP: 0.995 }, n, 64), ref, n);
  });

  it('vocab 151936, a grammar-masked row (-inf outside scattered runs): the draws skip masked runs exactly', () => {
    // 1,200 allowed tokens in runs of 1-40 with gaps of 1-400: whole 16-token groups are masked, others partly.
    const masked = new Float32Array(151936).fill(-Infinity);
    const live = normalRow(151936, 13, 1);
    const r = rng(21);
    for (let i = 5, k = 0; k < 1200 && i < masked.length; i += 1 + Math.floor(r() * 400)) {
      for (let e = i + 1 + Math.floor(r() * 40); i < e && k < 1200; i++, k++) masked[i] = live[i];
    }
    // One token on top, the rest 16.3-17.7 below it (outside the candidates) with ~5e-5 of the mass: top-p
    // 0.99999 puts the boundary among them, so the draw widens to every survivor.
    const deep = Float32Array.from(masked, (x) => x * 0.2 - 17);
    const top = masked.findIndex((x) => x > -Infinity);
    deep[top] = 0;
    const tail = 1 - 1 / deep.reduce((z, l) => z + Math.exp(l), 0);
    expect(tail).toBeGreaterThan(2e-5);
    for (const [row, init] of [
      [masked, { temperature: 0.8 }], [masked, { temperature: 0.8, topP: 0.95 }], [masked, { topP: 0.9, minP: 0.02 }],
      [deep, { topP: 0.99999 }], [deep, { temperature: 1 }],
    ] as [Float32Array, SamplingParamsInit][]) {
      const n = 3000;
      expectChiSquare(draws(big, row, init, n, 64), refProbs(Float64Array.from(row), new SamplingParams(init)), n);
    }
  });

  it('boundaries in the tail bin (tokens beyond 16/T below the max) stay exact', async () => {
    const V2 = 4096;
    const s = await samplerFor(V2);
    // One strong token and 4095 far below it: the k-th and the top-p boundary fall in the tail bin.
    const tail = Float32Array.from({ length: V2 }, (_, i) => (i === 0 ? 0 : -16.5 - (i % 97) * 0.01));
    for (const init of [{ topK: 3000 }, { topP: 0.99999 }, { topK: 2000, topP: 0.999995 }]) {
      const p = new SamplingParams(init);
      const ref = refProbs(Float64Array.from(tail), p);
      const n = 2000;
      expectChiSquare(draws(s, tail, init, n), ref, n);
    }
    // Spread the tail so its mass matters at temperature 2 (s = logit / 2): boundaries inside the binned range.
    const wide = Float32Array.from({ length: V2 }, (_, i) => -((i * 7919) % V2) / 80);
    for (const init of [{ temperature: 2, topK: 1500 }, { temperature: 2, topP: 0.97 }, { topK: 3500 }]) {
      const n = 20_000;
      expectChiSquare(draws(s, wide, init, n), refProbs(Float64Array.from(wide), new SamplingParams(init)), n);
    }
  });

  it('top-k above the number of survivors keeps them all (allowedTokenIds, min-p)', () => {
    const row = normalRow(1000, 8, 1);
    for (const init of [
      { topK: 10, allowedTokenIds: [3, 10, 500, 999, 42] },
      { topK: 100, allowedTokenIds: [3, 10, 500, 999, 42] },
      { topK: 300, minP: 0.2, temperature: 0.5 },
    ]) {
      const n = 10_000;
      const ref = refProbs(refProcessed(row, req(init)), new SamplingParams(init));
      expectChiSquare(draws(sampler, row, init, n), ref, n);
    }
  });

  it('greedy: argmax with ties to the lowest id; a row masked down to one token returns it', async () => {
    const s = await samplerFor(V);
    const tied = new Float32Array(V).fill(1);
    tied[9] = tied[40] = 3;
    expect(s.sample(tied, [req({ temperature: 0 })])[0].tokenId).toBe(9);
    expect(s.sample(tied, [req({ temperature: 1e-6 })])[0].tokenId).toBe(9);
    const out = s.sample(tied, [req({ allowedTokenIds: [3], logitBias: { 3: -100 } })]);
    expect(out[0].tokenId).toBe(3);
  });
});

// ---- Seeds ----------------------------------------------------------------------------------------------------
describe('seeded generators', () => {
  it('a seed gives the same tokens alone and in a batch of 8 with other requests', () => {
    const V = 151936;
    const steps = 12;
    const target = (): SamplerRequest => req({ temperature: 0.9, topP: 0.95, topK: 40, seed: 77 }, {}, 77);
    const stepRow = (t: number) => peakedRow(V, 100 + t);
    const runAlone = () => {
      const q = target();
      const tokens: number[] = [];
      for (let t = 0; t < steps; t++) {
        const [o] = big.sample([stepRow(t)], [{ ...q, outputTokenIds: tokens }]);
        tokens.push(o.tokenId);
      }
      return tokens;
    };
    const alone = runAlone();
    expect(runAlone()).toEqual(alone);

    const q = target();
    const others = [
      req({ temperature: 0 }),
      req({ temperature: 1.5, minP: 0.1 }, {}, 1),
      req({ temperature: 1, logprobs: 5, repetitionPenalty: 1.2 }, { promptTokenIds: [1, 2, 3] }, 2),
      req({ temperature: 0.7, topK: 5, logitsProcessors: [(_, l) => (l.fill(0, 0, 1000), l)] }, {}, 3),
      req({ temperature: 1, frequencyPenalty: 1, allowedTokenIds: [1, 2, 3, 4, 5, 6, 7, 8, 9] }, {}, 4),
      req({ temperature: 1, topP: 0.3 }, {}, 5),
      req({ temperature: 0.8, topK: 1000 }, {}, 6),
    ];
    const tokens: number[] = [];
    for (let t = 0; t < steps; t++) {
      const batch = [...others.slice(0, 3), { ...q, outputTokenIds: tokens }, ...others.slice(3)];
      const rows = batch.map((_, j) => (j === 3 ? stepRow(t) : peakedRow(V, 5000 + 17 * t + j)));
      tokens.push(big.sample(rows, batch)[3].tokenId);
    }
    expect(tokens).toEqual(alone);
    expect(new Set(alone).size).toBeGreaterThan(1);
  });

  it('wasm steps the same xoshiro128** as Generator: one uniform() per sampled row, none for greedy', () => {
    const row = normalRow(1000, 1);
    for (const init of [{ temperature: 1 }, { topK: 3, topP: 0.5 }, { temperature: 0 }]) {
      const q = req(init, {}, 12345);
      const ref = new Generator(12345);
      for (let t = 0; t < 5; t++) {
        sampler.sample([row], [q]);
        if (!q.params.greedy) ref.uniform();
      }
      expect([...q.generator.state]).toEqual([...ref.state]);
    }
  });

  it('the draw is the inverse CDF of one uniform(): a top-1 row and a uniform row', () => {
    const flat = new Float32Array(1000);
    const q = req({ temperature: 1 }, {}, 9);
    const ref = new Generator(9);
    for (let t = 0; t < 20; t++) expect(sampler.sample([flat], [q])[0].tokenId).toBe(Math.floor(ref.uniform() * 1000));
  });
});

// ---- Logprobs -------------------------------------------------------------------------------------------------
describe('stage 5: logprobs of the raw row', () => {
  /** Independent reference: log-softmax in f64, full sort (ties to lower id), rank = #{logprob >= own}. */
  function refLogprobs(row: Float32Array, id: number, k: number) {
    const lse = Math.log(Array.from(row).reduce((s, v) => s + Math.exp(v), 0));
    const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
    const top = order.slice(0, k < 0 ? row.length : k);
    return { sampled: row[id] - lse, rank: Array.from(row).filter((v) => v >= row[id]).length, top: top.map((t) => [t, row[t] - lse]) };
  }
  it('sampled logprob, rank (ties rank last) and top-k, for k = 0, 5, 20, 100 and -1, unaffected by processing', () => {
    const V = 1000;
    for (const k of [0, 5, 20, 100, -1]) {
      const row = normalRow(V, 40 + k);
      row[10] = row[11] = row[12] = 9; // a three-way tie at the top
      const reqs = [
        req({ temperature: 0, logprobs: k }),
        req({ temperature: 1, logprobs: k, logitBias: { 500: 100 }, repetitionPenalty: 3 }, { promptTokenIds: [10, 11] }, 3),
        req({ temperature: 0.5, topK: 3, logprobs: k, allowedTokenIds: [11, 12, 13] }, {}, 4),
      ];
      const out = sampler.sample([row, row, row], reqs);
      expect(out[0].tokenId).toBe(10);
      expect(out[1].tokenId).toBe(500);
      out.forEach((o, j) => {
        const ref = refLogprobs(row, o.tokenId, k);
        const lp = o.logprobs!;
        expect(lp.sampled, `req ${j}`).toBeCloseTo(ref.sampled, 4);
        expect([...lp.top.keys()]).toEqual(ref.top.map(([t]) => t));
        [...lp.top.values()].forEach((v, i) => expect(v).toBeCloseTo(ref.top[i][1], 4));
        const rank = lp.ranks.get(o.tokenId)!;
        const inTop = ref.top.findIndex(([t]) => t === o.tokenId);
        expect(rank).toBe(inTop >= 0 ? inTop + 1 : ref.rank);
        // The TS helper agrees (what the engine uses for prompt logprobs).
        const ts = topLogprobs(row, o.tokenId, k);
        expect(ts.sampled).toBeCloseTo(lp.sampled, 4);
        expect([...ts.ranks]).toEqual([...lp.ranks]);
      });
      if (k === 0) expect(out[0].logprobs!.ranks.get(10)).toBe(3); // tied with 11 and 12: #{>=} = 3
    }
  });
  it('no logprobs requested: null', () => {
    expect(sampler.sample(normalRow(1000, 1), [req({})])[0].logprobs).toBeNull();
  });
});

// ---- Logits processors, bad words, validation ------------------------------------------------------------------
describe('logitsProcessors (JS, after masks and bias, before penalties)', () => {
  it('see the masked row and the output ids; their result is penalised', () => {
    const row = new Float32Array(1000);
    row[1] = 5;
    let seen: { out: readonly number[]; l1: number; l2: number } | null = null;
    const q = req(
      {
        temperature: 0,
        allowedTokenIds: [2, 3, 4],
        repetitionPenalty: 4,
        logitsProcessors: [
          (out, l) => ((seen = { out: [...out], l1: l[1], l2: l[2] }), l),
          (_, l) => Float32Array.from(l, (v, i) => (i === 3 ? 10 : i === 4 ? 6 : v)), // a new array
        ],
      },
      { outputTokenIds: [3, 9], promptTokenIds: [] },
    );
    expect(sampler.sample([row], [q])[0].tokenId).toBe(4); // 10 / 4 = 2.5 < 6
    expect(seen).toEqual({ out: [3, 9], l1: -Infinity, l2: 0 });
  });
  it('must return V logits', () => {
    const bad = req({ logitsProcessors: [() => new Float32Array(3)] });
    expect(() => sampler.sample([new Float32Array(1000)], [bad])).toThrow(InvalidArgumentError);
  });
});

describe('badWords', () => {
  it('tokenizes as vLLM: as is, and with a leading space when that yields a new first token of the same length', () => {
    const table: Record<string, number[]> = { foo: [1], ' foo': [2], 'foo bar': [1, 3], ' foo bar': [2, 3], baz: [4, 5], ' baz': [6] };
    expect(badWordsTokenIds([' foo', 'foo bar', 'baz'], (t) => table[t])).toEqual([[1], [2], [1, 3], [2, 3], [4, 5]]);
  });
  it('bans the last token when the output ends with the rest', () => {
    expect(bannedByBadWords([[7], [1, 2, 3], [2, 3, 9], [4, 5]], [0, 1, 2])).toEqual([7, 3]);
    expect(bannedByBadWords([[1, 2, 3]], [2])).toEqual([]);
  });
});

describe('validation', () => {
  const row = new Float32Array(1000);
  const cases: [string, SamplerRequest][] = [
    ['allowedTokenIds', req({ allowedTokenIds: [5, 1000] })],
    ['logitBias', req({ logitBias: { 1000: 1 } })],
    ['stopTokenIds', req({ minTokens: 2 }, { stopTokenIds: [1234] })],
    ['badWords', req({ badWords: ['x'] }, { badWordsTokenIds: [[3, -1]] })],
    ['outputTokenIds', req({ presencePenalty: 1 }, { outputTokenIds: [1, 2.5] })],
    ['promptTokenIds', req({ repetitionPenalty: 1.1 }, { promptTokenIds: [99999] })],
  ];
  for (const [field, q] of cases) {
    it(`rejects an out-of-vocabulary id in ${field}`, () => {
      expect(() => sampler.sample([row], [q])).toThrow(InvalidArgumentError);
      try {
        sampler.sample([row], [q]);
      } catch (e) {
        expect((e as InvalidArgumentError).field).toBe(field);
      }
    });
  }
  it('rejects rows of the wrong shape and badWords without their ids', () => {
    expect(() => sampler.sample(new Float32Array(999), [req({})])).toThrow(RangeError);
    expect(() => sampler.sample([row, row], [req({})])).toThrow(RangeError);
    expect(() => sampler.sample([row], [req({ badWords: ['x'] })])).toThrow(/badWordsTokenIds/);
  });
  it('ids are checked before anything runs: generators do not advance on a rejected batch', () => {
    const ok = req({ temperature: 1 }, {}, 5);
    const before = [...ok.generator.state];
    expect(() => sampler.sample([row, row], [ok, req({ allowedTokenIds: [1000] })])).toThrow(InvalidArgumentError);
    expect([...ok.generator.state]).toEqual(before);
  });
  it('needsLogitsRow: only plain greedy rows can use the GPU argmax', () => {
    expect(needsLogitsRow(new SamplingParams({ temperature: 0 }), 0)).toBe(false);
    expect(needsLogitsRow(new SamplingParams({ temperature: 0, minTokens: 2 }), 1)).toBe(true);
    expect(needsLogitsRow(new SamplingParams({ temperature: 0, minTokens: 2 }), 2)).toBe(false);
    expect(needsLogitsRow(new SamplingParams({ temperature: 0, logprobs: 0 }), 0)).toBe(true);
    expect(needsLogitsRow(new SamplingParams({ temperature: 0, repetitionPenalty: 1.1 }), 0)).toBe(true);
    expect(needsLogitsRow(new SamplingParams({}), 0)).toBe(true);
  });
});
