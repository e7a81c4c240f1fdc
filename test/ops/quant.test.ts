import { describe, expect, it } from 'vitest';
import { readBuffer } from '../../src/gpu/buffers.js';
import { createTensor } from '../../src/gpu/tensor.js';
import { linear, embed } from '../../src/layers/linear.js';
import { blockFormat, createQuantWeight, dequantizeRows, QUANT_FORMATS, quantizeRows, quantMethod, rowBytes, type QuantFormat } from '../../src/layers/quant/index.js';
import { getTestGpu } from '../helpers/gpu.js';
import { fusedLinearRef, normed, type Fusions } from './fused-linear.js';
import { GPU_TUNING, type KernelTuning } from '../../src/gpu/tuning.js';
import type { GpuContext } from '../../src/gpu/context.js';
import { expectClose, f32, randomArray, rng, run, u32, withTuning } from './util.js';


/** Bytes of a weight's row `r` as padded on the GPU. */
const paddedRowBytes = (format: QuantFormat, K: number) => Math.ceil(rowBytes(format, K) / 4) * 4;
/** The case's K in whole blocks of the format: as given for 32-element blocks, times 8 for 256-element ones. */
const blockK = (format: QuantFormat, K: number) => (K * blockFormat(format).blockElems) / 32;

/** The case's fusions as a test name's words. */
const fusionName = (f: Fusions) => [f.norm && 'rmsNorm', f.gated, f.residual && 'residual'].filter(Boolean).join(' + ') || 'plain';

/**
 * One quantized linear of random inputs and weights (`seed`) through `linear` (under `tuning` when given) against
 * fusedLinearRef over the dequantized weights in f64.
 */
async function checkQuantLinear(ctx: GpuContext, format: QuantFormat, c: { T: number; K: number; rows: number; partRows?: number; bias: boolean; f: Fusions; seed: number }, tuning?: KernelTuning): Promise<void> {
  const { T, K, rows, partRows, f } = c;
  const rand = rng(c.seed);
  const x = randomArray(rand, T * K, -2, 2);
  const wf = randomArray(rand, rows * K, -0.5, 0.5);
  const b = c.bias ? randomArray(rand, rows) : null;
  const g = f.norm ? randomArray(rand, K, 0.5, 1.5) : undefined;
  const N = f.gated ? rows / 2 : rows;
  const residual = f.residual ? randomArray(rand, T * N) : undefined;
  const W = createQuantWeight(ctx, format, rows, K, 'w', partRows ? { maxPartBytes: partRows * paddedRowBytes(format, K) } : {});
  if (partRows) expect(W.parts.length).toBe(Math.ceil(rows / partRows));
  W.method.writeRows(ctx, W, 0, new Uint8Array(wf.buffer), 'F32');
  const wq = dequantizeRows(format, quantizeRows(format, wf, rows, K), rows, K);
  const out = residual ? f32(ctx, residual, [T, N]) : createTensor(ctx, [T, N], 'f32');
  const opts = { rmsNorm: g ? { weight: f32(ctx, g), eps: 1e-5 } : undefined, gated: f.gated, residual: f.residual };
  const forward = () => run(ctx, (rec) => linear(rec, f32(ctx, x, [T, K]), W, b ? f32(ctx, b) : null, out, T, opts), out);
  const got = tuning ? await withTuning(ctx, tuning, forward) : await forward();
  const ref = fusedLinearRef(normed(x, T, K, f.norm ? g : undefined), wq, b, T, K, rows, f, residual);
  expectClose(got, ref.out, 1e-5, ref.atol);
  W.method.destroy(W);
}

describe('quantized linear (every format of layers/quant/formats) against f64 products of the dequantized weights', async () => {
  const ctx = await getTestGpu();
  // [T, K, weight rows, rows per part (undefined: one part), bias, fusions]
  const cases: [number, number, number, number | undefined, boolean, Fusions][] = [
    [1, 64, 48, undefined, true, {}],
    [1, 96, 40, undefined, false, { norm: true, gated: 'silu' }], // 3 blocks: rows padded, blocks at odd halves
    [2, 256, 34, 12, true, {}], // parts
    [2, 96, 24, 10, true, { gated: 'gelu_pytorch_tanh' }], // parts: gating as a second dispatch
    [5, 128, 40, undefined, false, { norm: true, residual: true }],
    [5, 64, 20, undefined, true, { gated: 'gelu_pytorch_tanh' }],
    [33, 96, 36, 8, true, { norm: true, residual: true }], // register blocks, parts, separate norm
    [33, 64, 40, undefined, false, { norm: true, gated: 'silu' }],
    [70, 160, 20, undefined, true, {}], // several token tiles
    [70, 64, 24, 6, false, { gated: 'silu' }],
  ];
  for (const format of QUANT_FORMATS) {
    for (const [T, K32, rows, partRows, withBias, f] of cases) {
      const K = blockK(format, K32);
      const fname = fusionName(f);
      it(`${format} T=${T} K=${K} rows=${rows}${partRows ? ` parts of ${partRows}` : ''}${withBias ? ' +bias' : ''}: ${fname}`, () =>
        checkQuantLinear(ctx, format, { T, K, rows, partRows, bias: withBias, f, seed: T * 131 + K * 7 + rows + fname.length + QUANT_FORMATS.indexOf(format) * 999 }));
    }
  }

  it('rejects rows that are not whole blocks of 32, naming the weight', () => {
    expect(() => quantMethod('q8_0').create(ctx, 8, 100, 'layers.0.down')).toThrow(/layers.0.down: q8_0 stores rows in blocks of 32, but a row has 100 elements/);
    expect(() => quantMethod('q4_0').create(ctx, 8, 0, 'w')).toThrow(/q4_0 .* 0 elements/);
  });

  it('bytes: rows of 34 / 18 bytes per 32 elements, padded to 4 bytes', () => {
    const a = quantMethod('q8_0').create(ctx, 10, 96, 'a'); // 3 blocks: 102 -> 104 bytes a row
    const b = quantMethod('q4_0').create(ctx, 10, 128, 'b'); // 4 blocks: 72 bytes a row
    expect(a.method.bytes(a)).toBe(10 * 104);
    expect(b.method.bytes(b)).toBe(10 * 72);
    a.method.destroy(a);
    b.method.destroy(b);
  });

  it('a weight of segments in different formats (a fused q|k|v of a mixed file) multiplies and embeds as one', async () => {
    const formats = QUANT_FORMATS.slice(0, 3);
    const K = Math.max(...formats.map((f) => blockK(f, 32)));
    const segs = formats.map((format, i) => ({ format, rows: 5 + 3 * i }));
    const rows = segs.reduce((n, s) => n + s.rows, 0);
    const wf = randomArray(rng(77), rows * K, -0.5, 0.5);
    const W = createQuantWeight(ctx, segs, rows, K, 'qkv', { maxPartBytes: 4 * paddedRowBytes(formats[0], K) });
    const wq = new Float32Array(rows * K);
    let at = 0;
    for (const s of segs) {
      const x = wf.subarray(at * K, (at + s.rows) * K);
      quantMethod(s.format).writeBlocks(ctx, W, at, quantizeRows(s.format, x, s.rows, K));
      wq.set(dequantizeRows(s.format, quantizeRows(s.format, x, s.rows, K), s.rows, K), at * K);
      at += s.rows;
    }
    expect(() => quantMethod(formats[0]).writeBlocks(ctx, W, 3, new Uint8Array(rowBytes(formats[0], K) * 4))).toThrow(/span formats/);
    for (const T of [3, 40]) {
      const x = randomArray(rng(T), T * K, -2, 2);
      const out = createTensor(ctx, [T, rows], 'f32');
      const got = await run(ctx, (rec) => linear(rec, f32(ctx, x, [T, K]), W, null, out, T), out);
      const ref = fusedLinearRef(normed(x, T, K), wq, null, T, K, rows, {});
      expectClose(got, ref.out, 1e-5, ref.atol);
    }
    const ids = [0, rows - 1, 6, 9];
    const out = createTensor(ctx, [ids.length, K], 'f32');
    const got = await run(ctx, (rec) => embed(rec, u32(ctx, ids), W, out, ids.length), out);
    const want = new Float64Array(ids.length * K);
    ids.forEach((id, t) => want.set(wq.subarray(id * K, (id + 1) * K), t * K));
    expectClose(got, want, 1e-6, 1e-6);
    W.method.destroy(W);
  });

  for (const format of QUANT_FORMATS) {
    it(`${format}: writeBlocks of raw (unpadded) rows stores what writeRows stores, across parts`, async () => {
      const rows = 9;
      const K = blockK(format, 96);
      const wf = randomArray(rng(3), rows * K);
      const raw = quantizeRows(format, wf, rows, K); // GGUF layout: rows of 3 blocks back to back
      const opts = { maxPartBytes: 4 * paddedRowBytes(format, K) };
      const A = createQuantWeight(ctx, format, rows, K, 'a', opts);
      const B = createQuantWeight(ctx, format, rows, K, 'b', opts);
      A.method.writeRows(ctx, A, 0, new Uint8Array(wf.buffer), 'F32');
      quantMethod(format).writeBlocks(ctx, B, 0, raw.subarray(0, 5 * raw.length / rows));
      quantMethod(format).writeBlocks(ctx, B, 5, raw.subarray(5 * raw.length / rows));
      for (let p = 0; p < A.parts.length; p++) {
        const n = A.parts[p].rows * A.parts[p].rowStride;
        expect(new Uint8Array(await readBuffer(ctx, B.parts[p].buffer, 0, n))).toEqual(new Uint8Array(await readBuffer(ctx, A.parts[p].buffer, 0, n)));
      }
      expect(() => quantMethod(format).writeBlocks(ctx, B, 0, raw.subarray(0, 10))).toThrow(/not whole rows/);
    });

    it(`${format}: embed reads rows dequantized (parts, scale, accumulate)`, async () => {
      const V = 13;
      const K = blockK(format, 96);
      const wf = randomArray(rng(11), V * K);
      const wq = dequantizeRows(format, quantizeRows(format, wf, V, K), V, K);
      const W = createQuantWeight(ctx, format, V, K, 'embed', { maxPartBytes: 5 * paddedRowBytes(format, K) });
      W.method.writeRows(ctx, W, 0, new Uint8Array(wf.buffer), 'F32');
      const ids = [0, 12, 5, 4, 7, 12];
      const T = ids.length;
      const base = randomArray(rng(12), T * K);
      const out = f32(ctx, base, [T, K]);
      const scale = 1.5;
      const got = await run(ctx, (rec) => embed(rec, u32(ctx, ids), W, out, T, true, scale), out);
      const want = new Float64Array(T * K);
      for (let t = 0; t < T; t++) for (let k = 0; k < K; k++) want[t * K + k] = base[t * K + k] + Math.fround(wq[ids[t] * K + k] * scale);
      expectClose(got, want, 1e-6, 1e-6);
    });
  }
});

describe('quantized GEMV shapes and staged inputs (tuning.quantGemv*, quantGemvStage) against the same reference', async () => {
  const ctx = await getTestGpu();
  // [threads, lanes, rows] x staged: lanes past the subgroup (lavapipe's 8) sum through lane_sum.split.wgsl.
  const shapes: [number, number, number, boolean][] = [
    [64, 32, 4, true],
    [128, 64, 1, true],
    [64, 64, 2, false],
  ];
  // [T, K in 32-chunks, rows, fusions]: several segments (64 chunks a token at T = 1, 16 at T = 4) with a short last
  // one, the norm's sums over the workgroup, gating.
  const cases: [number, number, number, Fusions][] = [
    [1, 131, 12, { norm: true, gated: 'silu' }],
    [4, 37, 18, { norm: true, residual: true }],
  ];
  for (const format of ['q4_0', 'q4_k'] as const) {
    for (const [wg, lanes, rowsPer, stage] of shapes) {
      for (const [T, K32, rows, f] of cases) {
        const K = blockK(format, 32 * K32);
        const shape: [number, number, number] = [wg, lanes, rowsPer];
        const tuning = { ...GPU_TUNING, quantGemv: shape, quantGemvOne: shape, quantGemvOneLong: shape, quantGemvStage: stage, quantGemvInt8MinTokens: 0, quantGemvStageInt8: 0 };
        it(`${format} ${wg}/${lanes}/${rowsPer}${stage ? ' staged' : ''} T=${T} K=${K} rows=${rows}: ${fusionName(f)}`, () =>
          checkQuantLinear(ctx, format, { T, K, rows, bias: false, f, seed: T * 17 + K + rows * 3 + lanes }, tuning));
      }
    }
  }
});
