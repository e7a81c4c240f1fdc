// topKCandidates (shaders/topk*.wgsl) against a CPU reference: exact ids and logits (descending, ties to the lower
// id, NaN last), max and floor bit for bit, and the sums within half the error bound that the exact sampler
// relies on (SUM_REL_ERROR); then the kernel's records through sampleCandidates against the CPU sampler.
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context.js';
import { createTensor } from '../../src/gpu/tensor.js';
import { candidateRecordWords, readCandidateRow, topKCandidates } from '../../src/ops/topk.js';
import { SamplingParams, type SamplingParamsInit } from '../../src/sampling-params.js';
import { candidateRowParams, sampleCandidates, SUM_REL_ERROR } from '../../src/sampling/candidates.js';
import { Generator } from '../../src/sampling/generator.js';
import { Sampler } from '../../src/sampling/sampler.js';
import { getTestGpu } from '../helpers/gpu.js';
import { f32, rng, run, TUNINGS, withTuning } from './util.js';

const LOWEST = -3.4028234663852886e38;
const bits = new DataView(new ArrayBuffer(4));
/** shaders/lib/topk.wgsl sortKey / keyValue. */
function sortKey(x: number): number {
  bits.setFloat32(0, x);
  const b = bits.getUint32(0);
  const a = b & 0x7fffffff;
  if (a > 0x7f800000) return 0;
  if (a === 0) return 0x80000000;
  return b !== a ? ~b >>> 0 : (b | 0x80000000) >>> 0;
}
function keyValue(k: number): number {
  bits.setUint32(0, k >= 0x80000000 ? k & 0x7fffffff : ~k >>> 0);
  return bits.getFloat32(0);
}

interface RefRow {
  max: number;
  floor: number;
  sumExp: number;
  nanCount: number;
  ids: number[];
  logits: number[];
  prefix: number[];
}

/** The record of one row, in f64 for the sums (expNeg is exp4 to 2 ulp; the reference uses Math.exp). */
function reference(row: Float32Array, invT: number, off: number, K: number): RefRow {
  const V = row.length;
  const keys = Array.from(row, sortKey);
  const order = Array.from(row.keys()).sort((a, b) => keys[b] - keys[a] || a - b);
  const n = Math.min(K, V);
  const max = keyValue(keys[order[0]]);
  const floor = off <= 0 ? Math.max(LOWEST, Math.fround(max + off)) : LOWEST;
  const pre = new Float64Array(V + 1);
  let nanCount = 0;
  for (let i = 0; i < V; i++) {
    if (keys[i] === 0) nanCount++;
    const x = Math.fround(Math.fround(row[i] - max) * invT);
    pre[i + 1] = pre[i] + (keys[i] !== 0 && row[i] >= floor && x >= Math.fround(-87.33654) ? Math.exp(x) : 0);
  }
  const ids = order.slice(0, n);
  return { max, floor, sumExp: pre[V], nanCount, ids, logits: ids.map((i) => keyValue(keys[i])), prefix: ids.map((i) => pre[i]) };
}

type Kind = 'normal' | 'quantized' | 'masked' | 'nan' | 'peaked';
function makeRow(kind: Kind, V: number, r: () => number): Float32Array {
  const row = Float32Array.from({ length: V }, () => 3 * (r() + r() + r() - 1.5));
  if (kind === 'quantized') for (let i = 0; i < V; i++) row[i] = Math.round(row[i]); // heavy ties
  if (kind === 'masked') for (let i = 0; i < V; i++) if (r() < 0.98) row[i] = -Infinity; // fewer finite than K
  if (kind === 'nan') for (let j = 0; j < 3; j++) row[Math.floor(r() * V)] = Number.NaN;
  if (kind === 'peaked') for (let j = 0; j < 30; j++) row[Math.floor(r() * V)] = 10 + 8 * r();
  return row;
}

async function runTopK(ctx: GpuContext, rows: Float32Array[], params: [number, number][], K: number) {
  const S = rows.length;
  const V = rows[0].length;
  const flat = new Float32Array(S * V);
  rows.forEach((row, s) => flat.set(row, s * V));
  const out = createTensor(ctx, [S, candidateRecordWords(K)], 'u32');
  const logits = f32(ctx, flat, [S, V]);
  const rp = f32(ctx, Float32Array.from(params.flat()), [S, 2]);
  const words = (await run(ctx, (rec) => topKCandidates(rec, logits, rp, out, S, V, K), out)) as Uint32Array;
  for (const t of [out, logits, rp]) t.buffer.destroy();
  return rows.map((_, s) => readCandidateRow(words.buffer as ArrayBuffer, s * candidateRecordWords(K) * 4, K));
}

function expectRecord(got: ReturnType<typeof readCandidateRow>, ref: RefRow, what: string): void {
  const n = ref.ids.length;
  expect(Array.from(got.ids.subarray(0, n)), `${what} ids`).toEqual(ref.ids);
  expect(Array.from(got.logits.subarray(0, n)), `${what} logits`).toEqual(ref.logits);
  expect(got.max, `${what} max`).toBe(ref.max);
  expect(got.floor, `${what} floor`).toBe(ref.floor);
  expect(got.nanCount, `${what} NaN count`).toBe(ref.nanCount);
  if (ref.nanCount > 0) return;
  // Half the bound the sampler assumes, relative to the row's sum (every prefix is at most that sum).
  const tol = (SUM_REL_ERROR / 2) * ref.sumExp;
  expect(Math.abs(got.sumExp - ref.sumExp), `${what} sumExp ${got.sumExp} vs ${ref.sumExp}`).toBeLessThanOrEqual(tol);
  for (let j = 0; j < n; j++) {
    if (Math.abs(got.prefix[j] - ref.prefix[j]) > tol) expect.fail(`${what} prefix[${j}] ${got.prefix[j]} vs ${ref.prefix[j]}`);
  }
}

describe('topKCandidates', () => {
  let ctx: GpuContext;
  beforeAll(async () => {
    ctx = await getTestGpu();
  });

  for (const [name, tuning] of TUNINGS) {
    it(`${name}: random rows, S up to 16, every kind, K 64 / 128 / 256, odd V`, async () => {
      await withTuning(ctx, tuning, async () => {
        const r = rng(7);
        for (const [S, V, K] of [[1, 100, 64], [5, 3001, 64], [16, 20000, 128], [3, 4096 * 3, 256], [2, 40, 64], [4, 1000, 256]] as const) {
          const kinds: Kind[] = ['normal', 'quantized', 'masked', 'nan', 'peaked'];
          const rows = Array.from({ length: S }, (_, s) => makeRow(kinds[s % kinds.length], V, r));
          const params = rows.map((_, s): [number, number] => candidateRowParams(new SamplingParams({ temperature: [1, 0.7, 0.3][s % 3], minP: [0, 0.05, 0][s % 3] })));
          const got = await runTopK(ctx, rows, params, K);
          rows.forEach((row, s) => expectRecord(got[s], reference(row, params[s][0], params[s][1], K), `S=${S} V=${V} K=${K} row ${s}`));
        }
      });
    });
  }

  it('vocab 151936, S = 64: LLM-like, quantized and masked rows, K = 64', async () => {
    const r = rng(11);
    const V = 151936;
    const kinds: Kind[] = ['peaked', 'normal', 'quantized', 'masked'];
    const rows = Array.from({ length: 64 }, (_, s) => makeRow(kinds[s % 4], V, r));
    const params = rows.map((_, s): [number, number] => candidateRowParams(new SamplingParams({ temperature: 0.5 + (s % 5) * 0.2, minP: s % 7 === 0 ? 0.1 : 0 })));
    const got = await runTopK(ctx, rows, params, 64);
    rows.forEach((row, s) => expectRecord(got[s], reference(row, params[s][0], params[s][1], 64), `row ${s}`));
  });

  it('a row of equal logits: the K lowest ids; all -inf but one; -0 and +0 tie', async () => {
    const V = 5000;
    const flat = new Float32Array(V).fill(1.5);
    const lone = new Float32Array(V).fill(-Infinity);
    lone[4321] = -3;
    const zeros = Float32Array.from({ length: V }, (_, i) => (i % 3 === 0 ? -0 : i % 3 === 1 ? 0 : -1));
    const rows = [flat, lone, zeros];
    const params = rows.map((): [number, number] => [1, 1]);
    const got = await runTopK(ctx, rows, params, 64);
    expect(Array.from(got[0].ids)).toEqual(Array.from({ length: 64 }, (_, i) => i));
    expect(got[1].ids[0]).toBe(4321);
    expect(got[1].sumExp).toBe(1);
    expect(Array.from(got[2].ids.subarray(0, 4))).toEqual([0, 1, 3, 4]);
    rows.forEach((row, s) => expectRecord(got[s], reference(row, 1, 1, 64), `row ${s}`));
  });

  it("the kernel's records sample exactly what the CPU sampler draws (or decline)", async () => {
    const V = 32000;
    const sampler = await Sampler.create(V);
    const r = rng(5);
    const mixes: SamplingParamsInit[] = [
      { temperature: 0.8 },
      { temperature: 1, topK: 50 },
      { temperature: 0.8, topP: 0.95 },
      { temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05 },
      { temperature: 1, topK: 100, topP: 0.9 },
      { temperature: 1.2, minP: 0.02 },
    ];
    const rows = Array.from({ length: 12 }, (_, s) => makeRow(s % 2 ? 'peaked' : 'normal', V, r));
    const params = rows.map((_, s) => new SamplingParams(mixes[s % mixes.length]));
    const got = await runTopK(ctx, rows, params.map(candidateRowParams), 128);
    let proven = 0;
    let draws = 0;
    rows.forEach((row, s) => {
      for (let seed = 0; seed < 40; seed++) {
        const mk = () => ({ params: params[s], generator: new Generator(seed), promptTokenIds: [], outputTokenIds: [] });
        const full = mk();
        const [{ tokenId }] = sampler.sample([row], [full]);
        const mine = mk();
        const id = sampleCandidates(got[s], mine, V);
        draws++;
        if (id === null) continue;
        proven++;
        expect(id, `row ${s} seed ${seed}`).toBe(tokenId);
        expect(Array.from(mine.generator.state)).toEqual(Array.from(full.generator.state));
      }
    });
    sampler.dispose();
    expect(proven / draws).toBeGreaterThan(0.5);
  });
});
