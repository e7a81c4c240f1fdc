// Sampling from GPU candidates (src/sampling/candidates.ts) against the CPU sampler itself (Sampler.sample on the
// whole row): for the same generator state the token must be the same and the generator must advance the same,
// or the candidates must decline (null) and leave the generator untouched. The GPU's outputs are simulated here
// exactly (top-K in the sampler's order) with its sums perturbed by up to half the error bound, so the margins are
// exercised; test/ops/topk.test.ts runs the same check on the real kernel's output.
import { beforeAll, describe, expect, it } from 'vitest';
import { SamplingParams, type SamplingParamsInit } from '../src/sampling-params.js';
import {
  candidateCount,
  candidateRowParams,
  candidatesEligible,
  exp4,
  sampleCandidates,
  SUM_REL_ERROR,
  type Candidates,
} from '../src/sampling/candidates.js';
import { Generator } from '../src/sampling/generator.js';
import { Sampler, type SamplerRequest } from '../src/sampling/sampler.js';

// ---- Test data (mulberry32: never the generator under test) --------------------------------------------------
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const gauss = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

type RowKind = 'peaked' | 'flat' | 'quantized' | 'masked' | 'zeros' | 'plateau';
/** LLM-like rows and the edge cases: ties (quantized, plateau at the top), -inf ranges, +-0. */
function makeRow(kind: RowKind, V: number, seed: number): Float32Array {
  const r = rng(seed);
  const row = Float32Array.from({ length: V }, () => 2 * gauss(r));
  if (kind === 'peaked') for (let j = 0; j < 40; j++) row[Math.floor(r() * V)] = 8 + 10 * r();
  if (kind === 'quantized') for (let i = 0; i < V; i++) row[i] = Math.round(row[i] * 2) / 2; // many exact ties
  if (kind === 'masked') for (let i = 0; i < V; i++) if (r() < 0.7) row[i] = -Infinity;
  if (kind === 'zeros') {
    // Everything below 0 but 30 tokens at +0 or -0: the max, the floor and the cut sit on signed zeros.
    for (let i = 0; i < V; i++) row[i] = -Math.abs(row[i]) - 0.01;
    for (let j = 0; j < 30; j++) row[Math.floor(r() * V)] = r() < 0.5 ? -0 : 0;
  }
  if (kind === 'plateau') {
    // 100 tokens share the top logit, 100 more share the next: ties across every K.
    for (let j = 0; j < 100; j++) row[Math.floor(r() * V)] = 9;
    for (let j = 0; j < 100; j++) row[Math.floor(r() * V)] = 8.5;
  }
  return row;
}

/** Share of draws the candidates must prove per kind of row (measured 0.87, 0.73, 0.73, 0.73, -, 0.55). */
const MIN_PROVEN: Record<RowKind, number> = { peaked: 0.75, flat: 0.6, quantized: 0.6, masked: 0.6, zeros: 0.3, plateau: 0.4 };

const LOWEST = -3.4028234663852886e38;

/**
 * What ops/topk.ts computes, in f64: the top K (descending, ties to the lower id), max, floor, the survivors'
 * sum of e^x and its id-order prefixes, each sum then perturbed by a relative error up to `noise` and rounded to
 * f32 like the GPU's outputs.
 */
function simulateGpu(row: Float32Array, order: Uint32Array, K: number, params: SamplingParams, noise: number, r: () => number): Candidates {
  const V = row.length;
  const n = Math.min(K, V);
  const ids = order.subarray(0, n);
  const logits = Float32Array.from(ids, (i) => row[i]);
  const m = logits[0];
  const [invT, off] = candidateRowParams(params);
  const floor = off <= 0 ? Math.max(LOWEST, Math.fround(m + off)) : LOWEST;
  const pre = new Float64Array(V + 1);
  for (let i = 0; i < V; i++) {
    const x = Math.fround(Math.fround(row[i] - m) * invT);
    pre[i + 1] = pre[i] + (row[i] >= floor ? Math.exp(x) : 0);
  }
  const jitter = (v: number) => Math.fround(v * (1 + noise * (2 * r() - 1)));
  return { max: m, floor, sumExp: jitter(pre[V]), nanCount: 0, ids, logits, prefix: Float32Array.from(ids, (i) => jitter(pre[i])) };
}

/** Ids by the sampler's order: logit descending, ties to the lower id. */
function sortOrder(row: Float32Array): Uint32Array {
  return Uint32Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
}

const req = (params: SamplingParams, seed: number): SamplerRequest => ({
  params,
  generator: new Generator(seed),
  promptTokenIds: [],
  outputTokenIds: [],
});

interface Tally {
  draws: number;
  proven: number;
}

/**
 * For each seed: the sampler's token on the whole row vs the candidates' answer. Returns how many were proven.
 */
function compare(sampler: Sampler, row: Float32Array, cands: Candidates, params: SamplingParams, seeds: number[], tally: Tally): void {
  for (const seed of seeds) {
    const full = req(params, seed);
    const [{ tokenId }] = sampler.sample([row], [full]);
    const mine = req(params, seed);
    const id = sampleCandidates(cands, mine, row.length);
    tally.draws++;
    if (id === null) {
      expect(Array.from(mine.generator.state), 'a fallback leaves the generator alone').toEqual(Array.from(new Generator(seed).state));
      continue;
    }
    tally.proven++;
    if (id !== tokenId) {
      expect.fail(`seed ${seed} ${JSON.stringify(params)}: candidates gave ${id}, the sampler ${tokenId}`);
    }
    expect(Array.from(mine.generator.state)).toEqual(Array.from(full.generator.state));
  }
}

const TEMPS = [0.05, 0.5, 0.8, 1, 1.3];
const TOP_K = [0, 1, 2, 10, 40, 63, 64, 65, 100, 127, 200];
const TOP_P = [1, 0.3, 0.8, 0.9, 0.95, 0.99, 0.999];
const MIN_P = [0, 0.02, 0.1, 0.5];

/** A deterministic spread of parameter mixes (not the full product: it would be 1540 per row). */
function paramMixes(count: number, seed: number): SamplingParamsInit[] {
  const r = rng(seed);
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)];
  return Array.from({ length: count }, () => ({
    temperature: pick(TEMPS),
    topK: r() < 0.5 ? 0 : pick(TOP_K),
    topP: r() < 0.4 ? 1 : pick(TOP_P),
    minP: r() < 0.6 ? 0 : pick(MIN_P),
  }));
}

describe('exp4 mirror', () => {
  it('is within 2 ulp of e^x over the sampler range, 0 below -87.33654', () => {
    let worst = 0;
    for (let i = 0; i <= 200000; i++) {
      const x = Math.fround(-87.33654 * (i / 200000));
      const e = Math.exp(x);
      if (e < 2 ** -126) continue; // subnormal results: absolute error only
      worst = Math.max(worst, Math.abs(exp4(x) - e) / e);
    }
    expect(worst).toBeLessThan(2 ** -22);
    expect(exp4(0)).toBe(1);
    expect(exp4(-88)).toBe(0);
    expect(exp4(-Infinity)).toBe(0);
    expect(exp4(Number.NaN)).toBe(0);
  });
});

describe('sampleCandidates', () => {
  let sampler: Sampler;
  let small: Sampler;
  const V = 4096;
  beforeAll(async () => {
    sampler = await Sampler.create(V);
    small = await Sampler.create(50);
  });

  for (const kind of ['peaked', 'flat', 'quantized', 'masked', 'zeros', 'plateau'] as RowKind[]) {
    it(`${kind} rows: every proven token equals the sampler's (K = 64 and 256, sums off by up to half the bound)`, () => {
      const tally: Tally = { draws: 0, proven: 0 };
      for (let rowSeed = 1; rowSeed <= 6; rowSeed++) {
        const row = makeRow(kind, V, rowSeed * 97 + kind.length);
        const order = sortOrder(row);
        const r = rng(rowSeed);
        for (const init of paramMixes(24, rowSeed * 13 + kind.length)) {
          const params = new SamplingParams(init);
          for (const K of [64, 256]) {
            const cands = simulateGpu(row, order, K, params, SUM_REL_ERROR / 2, r);
            compare(sampler, row, cands, params, [1, 2, 3, 4, 5, 6].map((s) => s + rowSeed * 1000), tally);
          }
        }
      }
      expect(tally.draws).toBe(6 * 24 * 2 * 6);
      // Most draws must be proven (the point of the exercise); ties and flat rows fall back more.
      expect(tally.proven / tally.draws).toBeGreaterThan(MIN_PROVEN[kind]);
    });
  }

  it('every path: plain, top-k <= 64, top-k > 64, top-p, min-p, mixed, over many seeds', () => {
    const cases: [SamplingParamsInit, number][] = [
      [{ temperature: 1 }, 0.3],
      [{ temperature: 0.7 }, 0.3],
      [{ temperature: 0.8, topK: 50 }, 0.99],
      [{ temperature: 1, topK: 40, topP: 0.9 }, 0.99],
      [{ temperature: 1, topK: 100 }, 0.5],
      [{ temperature: 1, topK: 100, topP: 0.8 }, 0.5],
      [{ temperature: 0.8, topP: 0.95 }, 0.5],
      [{ temperature: 0.8, topP: 0.5 }, 0.9],
      [{ temperature: 1, minP: 0.05 }, 0.9],
      [{ temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05 }, 0.99],
    ];
    const row = makeRow('peaked', V, 7);
    const order = sortOrder(row);
    for (const [init, minRate] of cases) {
      const params = new SamplingParams(init);
      const tally: Tally = { draws: 0, proven: 0 };
      const cands = simulateGpu(row, order, 256, params, SUM_REL_ERROR / 2, rng(1));
      compare(sampler, row, cands, params, Array.from({ length: 300 }, (_, i) => i), tally);
      expect(tally.proven / tally.draws, JSON.stringify(init)).toBeGreaterThanOrEqual(minRate);
    }
  });

  it('a list holding the whole vocabulary (V < K) proves every draw, by exact replay', () => {
    const tally: Tally = { draws: 0, proven: 0 };
    for (const kind of ['peaked', 'flat', 'quantized', 'masked', 'zeros'] as RowKind[]) {
      const row = makeRow(kind, 50, 3);
      if (!row.some((x) => x > -Infinity)) row[0] = 0;
      const order = sortOrder(row);
      for (const init of paramMixes(40, kind.length)) {
        const params = new SamplingParams(init);
        // Sums off by 100x the bound: a complete list must not need them.
        const cands = simulateGpu(row, order, 64, params, 100 * SUM_REL_ERROR, rng(2));
        compare(small, row, cands, params, [11, 12, 13, 14, 15], tally);
      }
    }
    expect(tally.proven).toBe(tally.draws);
  });

  it('top-p boundary below the 16 T candidates (the sampler widens to every survivor): replayed when all are listed', () => {
    // 5 tokens at 16, 40 just below 16 - 16 T = 0, the rest far down: top-p 0.9999999 needs the tokens below the
    // cut. With min-p 1e-7 (floor 16 + ln 1e-7 = -0.12) the far tokens drop out and the list holds every survivor.
    const tally: Tally = { draws: 0, proven: 0 };
    const r = rng(9);
    const row = Float32Array.from({ length: V }, () => -30 - r());
    for (let j = 0; j < 5; j++) row[j * 700 + 3] = 16 - 0.01 * j;
    for (let j = 0; j < 40; j++) row[j * 97 + 5] = -0.01 - 0.002 * j;
    const params = new SamplingParams({ temperature: 1, topP: 0.9999999, minP: 1e-7 });
    compare(sampler, row, simulateGpu(row, sortOrder(row), 64, params, SUM_REL_ERROR / 2, r), params, Array.from({ length: 300 }, (_, i) => i), tally);
    // Whole vocabulary listed (V = 50 < K): no min-p needed.
    const tiny = Float32Array.from({ length: 50 }, (_, i) => (i % 10 === 0 ? 16 : -0.5 * r()));
    const plain = new SamplingParams({ temperature: 1, topP: 0.9999999 });
    compare(small, tiny, simulateGpu(tiny, sortOrder(tiny), 64, plain, 0, r), plain, Array.from({ length: 300 }, (_, i) => i), tally);
    // (The tail holds ~1e-6 of the mass, so draws rarely land there; what is checked is that the widened
    // kept set and its mass replay exactly. An instrumented run took the widened path on all 600 draws.)
    expect(tally.proven).toBe(tally.draws);
  });

  it('low temperatures: weights underflow past the list, so the list is complete and every draw proven', () => {
    const tally: Tally = { draws: 0, proven: 0 };
    const row = makeRow('peaked', V, 11);
    const order = sortOrder(row);
    for (const init of [{ temperature: 0.05 }, { temperature: 0.05, topP: 0.9 }, { temperature: 0.1, minP: 0.1 }]) {
      const params = new SamplingParams(init);
      const cands = simulateGpu(row, order, 64, params, 100 * SUM_REL_ERROR, rng(3));
      compare(sampler, row, cands, params, Array.from({ length: 200 }, (_, i) => i), tally);
    }
    expect(tally.proven).toBe(tally.draws);
  });

  it('falls back when it must: top-k >= K, ties across the K-th, flat rows, ineligible rows, NaN, foreign floor', () => {
    const row = makeRow('flat', V, 5);
    const order = sortOrder(row);
    const none = (init: SamplingParamsInit, K: number, r = row, o = order, seeds = 50) => {
      const params = new SamplingParams(init);
      const cands = simulateGpu(r, o, K, params, 0, rng(4));
      for (let seed = 0; seed < seeds; seed++) {
        const q = req(params, seed);
        expect(sampleCandidates(cands, q, r.length), JSON.stringify(init)).toBeNull();
        expect(Array.from(q.generator.state)).toEqual(Array.from(new Generator(seed).state));
      }
    };
    none({ temperature: 1, topK: 64 }, 64); // the 64th logit is the list's last: ties below it unknown
    none({ temperature: 1, topK: 300 }, 256);
    // A plateau of 100 equal top logits: top-k 40 keeps all 100 (ties), more than K = 64 holds.
    none({ temperature: 1, topK: 40 }, 64, makeRow('plateau', V, 1), sortOrder(makeRow('plateau', V, 1)));
    // Flat row, T = 1.5, K = 64: the list holds a small share of the mass, most plain draws land outside it.
    const params = new SamplingParams({ temperature: 1.5 });
    const cands = simulateGpu(row, order, 64, params, 0, rng(5));
    let fallbacks = 0;
    for (let seed = 0; seed < 200; seed++) if (sampleCandidates(cands, req(params, seed), V) === null) fallbacks++;
    expect(fallbacks).toBeGreaterThan(150);
    // Rows that edit the logits or ask for logprobs, and greedy rows, never use candidates.
    for (const init of [
      { temperature: 1, logprobs: 2 },
      { temperature: 1, repetitionPenalty: 1.1 },
      { temperature: 1, presencePenalty: 0.5 },
      { temperature: 1, logitBias: { 3: 1 } },
      { temperature: 1, allowedTokenIds: [1, 2] },
      { temperature: 0 },
    ] as SamplingParamsInit[]) {
      expect(candidatesEligible(new SamplingParams(init), 0)).toBe(false);
      none(init, 64, row, order, 3);
    }
    expect(candidatesEligible(new SamplingParams({ temperature: 1, minTokens: 2 }), 1)).toBe(false);
    expect(candidatesEligible(new SamplingParams({ temperature: 1, minTokens: 2 }), 2)).toBe(true);
    // NaN in the row, or a floor other than the sampler's: declined.
    const p = new SamplingParams({ temperature: 1, minP: 0.1 });
    const good = simulateGpu(row, order, 64, p, 0, rng(6));
    expect(sampleCandidates({ ...good, nanCount: 1 }, req(p, 1), V)).toBeNull();
    expect(sampleCandidates({ ...good, floor: Math.fround(good.floor + 1e-3) }, req(p, 1), V)).toBeNull();
    expect(sampleCandidates({ ...good, max: good.max + 1 }, req(p, 1), V)).toBeNull();
  });

  it('sums beyond the error bound are caught by the margins only if within it: a 100x error breaks exactness', () => {
    // Sanity of the test itself: with sums 100x worse than the bound, the plain path must produce some token the
    // sampler would not (so the comparisons above do test the margins).
    const row = makeRow('peaked', V, 21);
    const order = sortOrder(row);
    const params = new SamplingParams({ temperature: 1 });
    let wrong = 0;
    for (let s = 0; s < 40; s++) {
      const cands = simulateGpu(row, order, 256, params, 0, rng(s));
      const bad = { ...cands, sumExp: cands.sumExp * (1 + 300 * SUM_REL_ERROR) };
      for (let seed = 0; seed < 50; seed++) {
        const id = sampleCandidates(bad, req(params, seed + 100 * s), V);
        if (id === null) continue;
        const [{ tokenId }] = sampler.sample([row], [req(params, seed + 100 * s)]);
        if (id !== tokenId) wrong++;
      }
    }
    expect(wrong).toBeGreaterThan(0);
  });

  it('at vocab 151936: LLM-like rows, the common mixes, exact', async () => {
    const big = await Sampler.create(151936);
    const tally: Tally = { draws: 0, proven: 0 };
    for (let rowSeed = 1; rowSeed <= 2; rowSeed++) {
      const row = makeRow('peaked', 151936, rowSeed);
      const order = sortOrder(row);
      for (const init of [
        { temperature: 0.8 },
        { temperature: 0.8, topK: 50 },
        { temperature: 0.8, topP: 0.95 },
        { temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05 },
        { temperature: 1, topK: 100 },
      ]) {
        const params = new SamplingParams(init);
        const cands = simulateGpu(row, order, 128, params, SUM_REL_ERROR / 2, rng(rowSeed));
        compare(big, row, cands, params, Array.from({ length: 20 }, (_, i) => i), tally);
      }
    }
    big.dispose();
    expect(tally.proven / tally.draws).toBeGreaterThan(0.5);
  });

  it('candidateCount: 64, or the power of two above the largest top-k, up to 256', () => {
    const P = (topK: number) => new SamplingParams({ temperature: 1, topK });
    expect(candidateCount([])).toBe(64);
    expect(candidateCount([P(0), P(63)])).toBe(64);
    expect(candidateCount([P(64)])).toBe(128);
    expect(candidateCount([P(40), P(127)])).toBe(128);
    expect(candidateCount([P(128)])).toBe(256);
    expect(candidateCount([P(5000)])).toBe(256);
  });
});
