import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type LlamaContextSequence } from 'node-llama-cpp';
import { afterAll, describe, expect, it } from 'vitest';
import { SamplingParams } from '../bindings/node/index.js';
import { FsByteSource } from '../bindings/node/fs-source.js';
import { readGgufHeader, readGgufTensorBytes, type GgufValue } from '../src/loader/gguf.js';
import { writeGguf } from './helpers/gguf-writer.js';
import type { LLM, RequestOutput } from '../bindings/node/index.js';
import type { LinearWeight } from '../src/layers/linear.js';
import { gpuRunnerOf } from '../src/worker/gpu-model-runner.js';
import { goldenRun } from './helpers/golden-checks.js';
import { assembleFixture, loadFixtureGoldens } from './helpers/fixtures.js';
import { loadLLM } from './helpers/llm.js';
import { loadGoldens, modelDir, MODELS } from './helpers/paths.js';
import { blockBytes, dequantizeRows, quantizeRows, type QuantFormat } from '../src/layers/quant/index.js';
import { checkQuantization } from '../src/layers/quant/index.js';
import { f16BitsToF32 } from '../src/loader/convert.js';
import * as legacyFormats from '../src/layers/quant/formats/legacy.js';

/**
 * llama.cpp's reference quantizers written out independently of blocks.ts, for one block of 32 values, as
 * { d (the f16 value stored), q (the 32 quants, q4_0 still offset by 8) } (ggml-quants.c quantize_row_q8_0_ref /
 * quantize_row_q4_0_ref; all arithmetic in f32).
 */
function refBlock(format: QuantFormat, x: number[]): { d: number; d32: number; q: number[] } {
  const f = Math.fround;
  let amax = 0;
  let max = 0;
  for (const v of x) {
    if (Math.abs(v) > amax) {
      amax = Math.abs(v);
      max = v;
    }
  }
  const d = format === 'q8_0' ? f(amax / 127) : f(max / -8);
  const id = d === 0 ? 0 : f(1 / d);
  const q = x.map((v) => {
    const s = f(v * id);
    if (format === 'q8_0') return (s < 0 ? -Math.round(-s) : Math.round(s)) | 0; // roundf: ties away from zero
    return Math.min(15, Math.trunc(f(s + 8.5)));
  });
  return { d: toF16(d), d32: d, q };
}

/** Rounds to the nearest f16 value (ties to even), for normal and subnormal halves alike. */
function toF16(v: number): number {
  if (v === 0) return v; // keeps -0 (q4_0 of all zeros: d = 0 / -8)
  const e = Math.max(Math.floor(Math.log2(Math.abs(v))), -14);
  const ulp = 2 ** (e - 10);
  const n = v / ulp;
  const r = Math.abs(n - Math.trunc(n)) === 0.5 ? (Math.trunc(n) % 2 === 0 ? Math.trunc(n) : Math.trunc(n) + Math.sign(n)) : Math.round(n);
  return r * ulp;
}

/** One block's (d, q) read from our bytes. */
function readBlock(format: QuantFormat, bytes: Uint8Array, o: number): { d: number; q: number[] } {
  const d = f16BitsToF32(bytes[o] | (bytes[o + 1] << 8));
  const q: number[] = [];
  if (format === 'q8_0') for (let j = 0; j < 32; j++) q.push((bytes[o + 2 + j] << 24) >> 24);
  else {
    for (let j = 0; j < 16; j++) q.push(bytes[o + 2 + j] & 15);
    for (let j = 0; j < 16; j++) q.push(bytes[o + 2 + j] >> 4);
  }
  return { d, q };
}

const fill = (v: number) => new Array(32).fill(v);
/** Blocks whose rounding is easy to get wrong. */
const TRICKY: [string, number[]][] = [
  ['all zeros', fill(0)],
  ['zeros and one value', [0.75, ...fill(0).slice(1)]],
  ['max magnitude negative', [-2, ...Array.from({ length: 31 }, (_, i) => (i - 15) / 8)]],
  ['max magnitude positive, last', [...Array.from({ length: 31 }, (_, i) => (i - 15) / 8), 2]],
  ['equal magnitudes of both signs (first wins)', Array.from({ length: 32 }, (_, i) => (i % 2 ? 1 : -1))],
  ['exact ties of x / d (q8_0: 127 / 2 steps)', Array.from({ length: 32 }, (_, i) => (i === 0 ? 127 : i - 16 + 0.5))],
  ['q4_0 ties: x / d = k + 0.5', Array.from({ length: 32 }, (_, i) => (i === 0 ? -8 : ((i % 16) - 8) + 0.5))],
  ['negative zero and tiny values', [-0, 1e-30, -1e-30, ...fill(1e-7).slice(3)]],
  ['f16-subnormal scale', Array.from({ length: 32 }, (_, i) => (i - 16) * 1e-7)],
  ['large scale', [60000, ...Array.from({ length: 31 }, (_, i) => i * 1000 - 15000)]],
];

describe('quantization: llama.cpp block rules on the CPU', () => {
  for (const format of ['q8_0', 'q4_0'] as const) {
    for (const [name, values] of TRICKY) {
      it(`${format}: ${name}`, () => {
        const x = Float32Array.from(values);
        const bytes = quantizeRows(format, x, 1, 32);
        expect(bytes.length).toBe(blockBytes(format));
        const got = readBlock(format, bytes, 0);
        const ref = refBlock(format, Array.from(x));
        expect(got.d + 0).toBe(ref.d + 0); // (0 / -8 stores -0)
        expect(got.q).toEqual(ref.q);
        // Dequantization: d q, or d (q - 8).
        const deq = dequantizeRows(format, bytes, 1, 32);
        const want = ref.q.map((q) => Math.fround(ref.d * (format === 'q8_0' ? q : q - 8)));
        expect(Array.from(deq)).toEqual(want);
        // The round trip error is at most half a step of the f32 scale (q4_0: a whole step, where +8 clamps to 7),
        // plus the scale's rounding to f16 times the quant.
        for (let j = 0; j < 32; j++) {
          const qj = format === 'q8_0' ? ref.q[j] : ref.q[j] - 8;
          const bound = Math.abs(ref.d32) * (format === 'q8_0' ? 0.5 : 1) * (1 + 1e-6) + Math.abs(qj) * Math.abs(ref.d - ref.d32);
          expect(Math.abs(deq[j] - x[j])).toBeLessThanOrEqual(bound + 1e-30);
        }
      });
    }
  }

  // q4_1 / q5_0 / q5_1: bit for bit against gguf-py below; here the round trip's error bound on the tricky blocks,
  // from the block's own f32 scale (and minimum) and their f16 roundings read back from the bytes.
  for (const format of ['q4_1', 'q5_0', 'q5_1'] as const) {
    it(`${format}: tricky blocks round-trip within a step of the scale`, () => {
      const f = Math.fround;
      const levels = format === 'q4_1' ? 15 : 31;
      for (const [, values] of TRICKY) {
        const x = Float32Array.from(values);
        const bytes = quantizeRows(format, x, 1, 32);
        expect(bytes.length).toBe(blockBytes(format));
        const deq = dequantizeRows(format, bytes, 1, 32);
        const d16 = f16BitsToF32(bytes[0] | (bytes[1] << 8));
        let lo = Infinity;
        let hi = -Infinity;
        for (const v of x) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
        if (format === 'q5_0') {
          let max = 0; // the first of the largest magnitude
          for (const v of x) if (Math.abs(v) > Math.abs(max)) max = v;
          const d32 = f(max / -16);
          expect(d16).toBe(toF16(d32));
          // A whole step where +16 clamps to 15, then the f16 scale's error times |q - 16| <= 16.
          for (let j = 0; j < 32; j++) expect(Math.abs(deq[j] - x[j])).toBeLessThanOrEqual(Math.abs(d32) * (1 + 1e-6) + 16 * Math.abs(d16 - d32) + 1e-30);
        } else {
          const d32 = f(f(hi - lo) / levels);
          const m16 = f16BitsToF32(bytes[2] | (bytes[3] << 8));
          expect([d16, m16]).toEqual([toF16(d32), toF16(lo)]);
          // Half a step, the scale's rounding times q <= levels, the minimum's rounding, and the f32 sum.
          for (let j = 0; j < 32; j++) {
            const bound = d32 * 0.5 * (1 + 1e-5) + levels * Math.abs(d16 - d32) + Math.abs(m16 - lo) + Math.abs(x[j]) * 2 ** -23;
            expect(Math.abs(deq[j] - x[j])).toBeLessThanOrEqual(bound + 1e-30);
          }
        }
      }
    });
  }

  it('the largest magnitude round-trips to itself up to the f16 scale (q8_0: q = +-127; q4_0: q = 0, i.e. -8)', () => {
    const x = Float32Array.from(Array.from({ length: 32 }, (_, i) => (i === 5 ? -3 : Math.sin(i))));
    const q8 = readBlock('q8_0', quantizeRows('q8_0', x, 1, 32), 0);
    expect(q8.q[5]).toBe(-127);
    const q4 = readBlock('q4_0', quantizeRows('q4_0', x, 1, 32), 0);
    expect(q4.q[5]).toBe(0);
    expect(q4.d).toBe(toF16(3 / 8));
  });

  it('rejects rows that are not whole blocks, naming the format', () => {
    expect(() => quantizeRows('q8_0', new Float32Array(40), 1, 40)).toThrow(/q8_0 stores rows in blocks of 32, but a row has 40/);
    expect(() => dequantizeRows('q4_0', new Uint8Array(18), 1, 31)).toThrow(/q4_0 .* 31/);
  });

  it('validates the quantization option', () => {
    expect(checkQuantization(null)).toBe(null);
    expect(checkQuantization(undefined)).toBe(null);
    expect(checkQuantization('q4_0')).toBe('q4_0');
    expect(checkQuantization('q4_k')).toBe('q4_k');
    expect(() => checkQuantization('iq2_xxs')).toThrow(/quantization: 'iq2_xxs' is not supported \(supported: q8_0, q4_0, q4_k, q6_k, q5_k, q3_k, q2_k,/);
    expect(() => checkQuantization(8)).toThrow(/'8' is not supported/);
  });
});

/**
 * A copy of an F32 safetensors checkpoint in a temporary folder (other files linked) with each tensor passed through
 * `map(name, shape, values)`.
 */
function rewriteCheckpoint(src: string, map: (name: string, shape: number[], data: Float32Array) => Float32Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'quant-ckpt-'));
  for (const f of readdirSync(src)) if (f !== 'model.safetensors') symlinkSync(join(src, f), join(dir, f));
  const bytes = readFileSync(join(src, 'model.safetensors'));
  const headerLen = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = Buffer.from(bytes); // same layout: only values change
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`rewriteCheckpoint: ${name} is ${t.dtype}, expected F32`);
    const at = 8 + headerLen + t.data_offsets[0];
    const n = (t.data_offsets[1] - t.data_offsets[0]) / 4;
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + 4 * n));
    const mapped = map(name, t.shape, data);
    Buffer.from(mapped.buffer, mapped.byteOffset, mapped.byteLength).copy(out, at);
  }
  writeFileSync(join(dir, 'model.safetensors'), out);
  return dir;
}

interface GgufCase {
  x: number[];
  blocks: string;
  dequantized: number[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/quant/gguf-reference.json', import.meta.url), 'utf8')) as {
  formats: Record<QuantFormat, GgufCase[]>;
};
const hexBytes = (hex: string) => Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));

describe('quantization: against the gguf Python package (test/fixtures/quant/make_gguf_reference.py)', () => {
  it('covers every format of formats/legacy.ts', () => expect(Object.keys(fixture.formats).sort()).toEqual(Object.keys(legacyFormats).sort()));
  for (const format of Object.keys(fixture.formats) as QuantFormat[]) {
    it(`${format}: our dequantizer equals gguf's on gguf's blocks, and our quantizer writes gguf's bytes`, () => {
      const cases = fixture.formats[format];
      expect(cases.length).toBeGreaterThanOrEqual(10);
      for (const c of cases) {
        const cols = c.x.length;
        const blocks = hexBytes(c.blocks);
        expect(Array.from(dequantizeRows(format, blocks, 1, cols))).toEqual(c.dequantized.map(Math.fround));
        expect(Buffer.from(quantizeRows(format, Float32Array.from(c.x), 1, cols)).toString('hex')).toBe(c.blocks);
      }
    });
  }
});

describe('LLM.create({ quantization }) end to end', () => {
  /** Every LinearWeight of the loaded model, once each (a tied LM head is the embedding). */
  function linearWeights(llm: LLM): LinearWeight[] {
    const w = gpuRunnerOf(llm.engine).model.weights;
    const all = new Set<LinearWeight>();
    // Weights sit in the model's record, its layers and their nested records (a MoE layer's shared expert).
    const visit = (v: unknown, depth: number): void => {
      if (!v || typeof v !== 'object' || depth > 8) return;
      if ('method' in v) all.add(v as LinearWeight);
      else for (const x of Object.values(v)) visit(x, depth + 1);
    };
    visit(w, 0);
    return [...all];
  }
  const byRank = (out: RequestOutput) =>
    [...out.outputs[0].logprobs![0].values()].filter((l) => l.rank <= 20).sort((a, b) => a.rank - b.rank).map((l) => l.logprob);

  /**
   * Tolerances from measurements (lavapipe, see the log line this describe prints): largest |logprob - golden| over
   * the first generated token's top 20 of every prompt: q8_0 0.117 (tinystories-656K), 0.094 (llama3-rand, whose
   * 16-wide projections stay dense), 0.21 (opt350m-rand fixture), 0.057 (qwen2moe-rand); q4_0 1.10
   * (tinystories-656K), 0.23 (llama3-rand). The kernels' own share is ~1e-5 (the dequantized-checkpoint test below). Greedy tokens equal to the f32 path's before the
   * first difference, per tinystories-656K prompt (of 48): q8_0 5, 18, 48, 18; q4_0 5, 0, 0, 4 (q4_0 on a
   * 656K-parameter model changes its text: only its logprob bound is checked).
   */
  const BOUNDS = { q8_0: { logprob: 0.4, greedy: 4 }, q4_0: { logprob: 2.2 } };
  const measured: Record<string, unknown> = {};
  afterAll(() => console.log('quantization measurements', JSON.stringify(measured)));

  for (const model of ['tinystories-656K', 'llama3-rand']) {
    it(`${model}: q8_0 / q4_0 top-20 logprobs near the f32 goldens; greedy ids; weight bytes`, async () => {
      const g = loadGoldens()[model];
      const f32 = await loadLLM(modelDir(model));
      const f32Outs = await goldenRun(f32, g.prompts);
      const f32Bytes = linearWeights(f32).reduce((n, w) => n + w.method.bytes(w), 0);
      await f32.dispose();
      for (const format of ['q8_0', 'q4_0'] as const) {
        const llm = await loadLLM(modelDir(model), { quantization: format });
        const outs = await goldenRun(llm, g.prompts);
        let err = 0;
        g.prompts.forEach((p, i) => byRank(outs[i]).forEach((l, r) => (err = Math.max(err, Math.abs(l - p.last_logprobs_top20[r])))));
        // Per prompt: how many greedy tokens agree with the f32 path's before the first difference.
        const same = g.prompts.map((_, i) => {
          const a = outs[i].outputs[0].tokenIds;
          const b = f32Outs[i].outputs[0].tokenIds;
          let k = 0;
          while (k < a.length && a[k] === b[k]) k++;
          return k;
        });
        const weights = linearWeights(llm);
        const quantized = weights.filter((w) => w.method.name === format);
        const qBytes = quantized.reduce((n, w) => n + w.method.bytes(w), 0);
        const qF32Bytes = quantized.reduce((n, w) => n + w.rows * w.cols * 4, 0);
        const total = weights.reduce((n, w) => n + w.method.bytes(w), 0);
        measured[`${model} ${format}`] = { maxLogprobErr: err, greedySame: same, of: g.prompts[0].greedy_ids.length, quantizedRatio: qBytes / qF32Bytes, totalRatio: total / f32Bytes };
        expect(err).toBeLessThan(BOUNDS[format].logprob);
        if (model === 'tinystories-656K' && format === 'q8_0') for (const k of same) expect(k).toBeGreaterThanOrEqual(BOUNDS.q8_0.greedy);
        expect(quantized.length).toBeGreaterThan(0);
        // Kept dense: the embedding (tied LM head) and matrices whose rows are not whole blocks (llama3-rand: 16 wide).
        const loaded = gpuRunnerOf(llm.engine).model.weights;
        expect([loaded.embed.method.name, loaded.lmHead.method.name]).toEqual(['f32', 'f32']);
        for (const w of weights) expect(w.method.name).toBe(w.cols % 32 === 0 && w !== loaded.embed && w !== loaded.lmHead ? format : 'f32');
        // Bytes per f32 element of the quantized matrices: 34 / 128 (q8_0), 18 / 128 (q4_0), plus rows of an odd
        // block count padded by 2 bytes to whole words (llama3-rand's o_proj: one block a row).
        expect(qBytes / qF32Bytes).toBeGreaterThanOrEqual(blockBytes(format) / 128);
        expect(qBytes / qF32Bytes).toBeLessThanOrEqual((blockBytes(format) + 2) / 128);
        if (model === 'tinystories-656K') expect(qBytes / qF32Bytes).toBe(blockBytes(format) / 128);
        await llm.dispose();
      }
    });
  }

  for (const format of ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'] as const) {
    it(`tinystories-656K ${format} equals the f32 path on the same weights dequantized (a checkpoint rewritten on the CPU)`, async () => {
      // The projection matrices of the checkpoint replaced by dequantize(quantize(W)) (blocks.ts), the rest kept:
      // loaded in f32 it computes what the quantized load should, so what remains is f32 rounding in another order.
      const dir = rewriteCheckpoint(modelDir('tinystories-656K'), (name, shape, data) =>
        /^model\.layers\.\d+\..*_proj\.weight$/.test(name) ? dequantizeRows(format, quantizeRows(format, data, shape[0], shape[1]), shape[0], shape[1]) : data,
      );
      const g = loadGoldens()['tinystories-656K'];
      const ref = await loadLLM(dir);
      const refOuts = await goldenRun(ref, g.prompts);
      await ref.dispose();
      rmSync(dir, { recursive: true });
      const llm = await loadLLM(modelDir('tinystories-656K'), { quantization: format });
      const outs = await goldenRun(llm, g.prompts);
      await llm.dispose();
      let err = 0;
      g.prompts.forEach((_, i) => {
        const a = byRank(outs[i]);
        byRank(refOuts[i]).forEach((l, r) => (err = Math.max(err, Math.abs(l - a[r]))));
        expect(outs[i].outputs[0].tokenIds).toEqual(refOuts[i].outputs[0].tokenIds);
      });
      measured[`tinystories-656K ${format} vs dequantized f32`] = { maxLogprobErr: err };
      // Measured 4.8e-6 (q8_0), 6.7e-6 (q4_0, q4_1), 7.6e-6 (q5_0, q5_1): the quantized kernels add no error of
      // their own.
      expect(err).toBeLessThan(1e-4);
    });
  }

  // Fixture architectures with quantizable matrices among dense ones: OPT (32 wide: attention, MLP and project_out
  // quantized, project_in dense) and Qwen2-MoE (the shared expert's down projection; experts, router and the
  // shared gate stay dense).
  for (const name of ['opt350m-rand', 'qwen2moe-rand']) {
    it(`${name} (fixture) q8_0: top-20 logprobs near the goldens`, async () => {
      const g = loadFixtureGoldens()[name];
      const model = await assembleFixture(name);
      try {
        const llm = await loadLLM(model.dir, { quantization: 'q8_0' });
        const outs = await goldenRun(llm, g.prompts);
        const quantized = linearWeights(llm).filter((w) => w.method.name === 'q8_0').length;
        await llm.dispose();
        let err = 0;
        g.prompts.forEach((p, i) => byRank(outs[i]).forEach((l, r) => (err = Math.max(err, Math.abs(l - p.last_logprobs_top20[r])))));
        measured[`${name} q8_0`] = { maxLogprobErr: err, quantized };
        expect(quantized).toBeGreaterThan(0);
        expect(err).toBeLessThan(BOUNDS.q8_0.logprob);
      } finally {
        await model.dispose();
      }
    });
  }

  it('rejects an unknown quantization with a clear error', async () => {
    await expect(loadLLM(modelDir('tinystories-656K'), { quantization: 'iq2_xxs' as 'q4_0' })).rejects.toThrow(/quantization: 'iq2_xxs' is not supported \(supported: q8_0, q4_0/);
  });
});

/**
 * llama.cpp's prompt ids, greedy ids and per-step distributions over `file` (node-llama-cpp on the CPU, an f32 KV
 * cache as ours).
 */
async function llamaCppGreedy(file: string, text: string, steps: number) {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: file });
  try {
    const ids = model.tokenize(text, false) as number[];
    const prompt = model.tokens.shouldPrependBosToken && model.tokens.bos !== null ? [model.tokens.bos as number, ...ids] : ids;
    const ctx = await model.createContext({ contextSize: 256, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    const greedy: number[] = [];
    const probs: Map<number, number>[] = [];
    for await (const r of ctx.getSequence().evaluateWithMetadata(prompt as unknown as Parameters<LlamaContextSequence['evaluate']>[0], { probabilities: true }, { temperature: 0 })) {
      greedy.push(r.token as number);
      probs.push(r.probabilities as Map<number, number>);
      if (greedy.length >= steps) break;
    }
    await ctx.dispose();
    return { prompt, greedy, probs };
  } finally {
    await model.dispose();
  }
}

describe('GGUF files in every legacy format against llama.cpp (node-llama-cpp on the CPU)', () => {
  // stories260K.gguf (f32) with its block matrices quantized by our reference quantizers (bit for bit ggml's), so
  // llama.cpp and we read the same blocks. llama.cpp's CPU kernels quantize the activations to q8_0 / q8_1 for
  // these weights, so its numbers differ from exact products by more than ours do: the bound is on probabilities
  // (measured over two prompts: largest top-20 probability difference 0.022 (q4_1), 0.012 (q5_0), 0.0073 (q5_1);
  // greedy ids equal for all 12 steps).
  const GGML_TYPE = { q4_0: 2, q4_1: 3, q5_0: 6, q5_1: 7, q8_0: 8 } as const;
  const STEPS = 12;
  const measured: Record<string, unknown> = {};
  afterAll(() => console.log('legacy GGUF vs llama.cpp', JSON.stringify(measured)));
  for (const format of ['q4_1', 'q5_0', 'q5_1'] as const) {
    it(`stories260K as ${format}: top-20 probabilities along llama.cpp's greedy path, and greedy ids`, async () => {
      const src = await FsByteSource.open(join(MODELS, 'gguf', 'stories260K.gguf'));
      const h = await readGgufHeader(src);
      const tensors = await Promise.all(
        h.tensors.map(async (t) => {
          const data = await readGgufTensorBytes(src, t);
          if (!/^blk\.\d+\./.test(t.name) || t.ne.length !== 2 || t.typeName !== 'F32' || t.ne[0] % 32 !== 0) return { name: t.name, type: t.type, ne: t.ne, data };
          const x = new Float32Array(data.buffer, data.byteOffset, t.ne[0] * t.ne[1]);
          return { name: t.name, type: GGML_TYPE[format], ne: t.ne, data: quantizeRows(format, x, t.ne[1], t.ne[0]) };
        }),
      );
      await src.close();
      expect(tensors.filter((t) => t.type === GGML_TYPE[format]).length).toBeGreaterThan(0);
      const dir = mkdtempSync(join(tmpdir(), 'legacy-gguf-'));
      const file = join(dir, `stories260K-${format}.gguf`);
      writeFileSync(file, writeGguf(h.metadata.entries() as Iterable<[string, GgufValue]>, tensors));
      const llm = await loadLLM(file);
      try {
        let maxP = 0;
        const sameGreedy: number[] = [];
        for (const text of ['The little dog saw a big red ball and']) {
          const ref = await llamaCppGreedy(file, text, STEPS);
          const [scored] = await llm.generate({ promptTokenIds: [...ref.prompt, ...ref.greedy] }, new SamplingParams({ temperature: 0, maxTokens: 1, promptLogprobs: 20 }));
          for (let s = 0; s < STEPS; s++) {
            for (const [id, lp] of scored.promptLogprobs![ref.prompt.length + s]!) maxP = Math.max(maxP, Math.abs(Math.exp(lp.logprob) - ref.probs[s].get(id)!));
          }
          const [out] = await llm.generate(text, new SamplingParams({ temperature: 0, maxTokens: STEPS, ignoreEos: true }));
          expect(out.promptTokenIds).toEqual(ref.prompt);
          let k = 0;
          while (k < STEPS && out.outputs[0].tokenIds[k] === ref.greedy[k]) k++;
          sameGreedy.push(k);
        }
        measured[format] = { maxProbDiff: maxP, greedySameSteps: sameGreedy };
        expect(maxP).toBeLessThan(0.04);
        expect(Math.min(...sameGreedy)).toBeGreaterThanOrEqual(6);
      } finally {
        await llm.dispose();
        rmSync(dir, { recursive: true });
      }
    });
  }
});
