/**
 * One case of the int8-activation GEMV tests (quant-int8.test.ts, quant-stage-int8.test.ts): random inputs, a
 * block-quantized weight of `format` (in parts of `partRows` rows when given), its dequantized values, the optional
 * bias, RMSNorm weight and residual, and linear's options for them.
 */
import type { GpuContext } from '../../src/gpu/context.js';
import { createQuantWeight, dequantizeRows, quantizeRows, rowBytes, type QuantFormat } from '../../src/layers/quant/index.js';
import type { Fusions } from './fused-linear.js';
import { f32, randomArray, rng } from './util.js';

/** Every format with an int8 reader (formats/int8.ts). */
export const I8_FORMATS: QuantFormat[] = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k', 'iq4_nl', 'iq4_xs'];

/** C's roundf. */
export const roundf = (v: number) => Math.sign(v) * Math.round(Math.abs(v));

/** The case's title: tokens, columns, rows, parts, bias and fusions. */
export function caseName(format: QuantFormat, T: number, K: number, rows: number, partRows: number | undefined, withBias: boolean, f: Fusions): string {
  const fname = [f.norm && 'rmsNorm', f.gated, f.residual && 'residual'].filter(Boolean).join(' + ') || 'plain';
  return `${format} T=${T} K=${K} rows=${rows}${partRows ? ` parts of ${partRows}` : ''}${withBias ? ' +bias' : ''}: ${fname}`;
}

export function quantCase(ctx: GpuContext, format: QuantFormat, T: number, K: number, rows: number, partRows: number | undefined, withBias: boolean, f: Fusions) {
  const rand = rng(T * 131 + K * 7 + rows + I8_FORMATS.indexOf(format) * 999);
  const x = randomArray(rand, T * K, -2, 2);
  const wf = randomArray(rand, rows * K, -0.5, 0.5);
  const b = withBias ? randomArray(rand, rows) : null;
  const g = f.norm ? randomArray(rand, K, 0.5, 1.5) : undefined;
  const N = f.gated ? rows / 2 : rows;
  const residual = f.residual ? randomArray(rand, T * N) : undefined;
  const padded = Math.ceil(rowBytes(format, K) / 4) * 4;
  const W = createQuantWeight(ctx, format, rows, K, 'w', partRows ? { maxPartBytes: partRows * padded } : {});
  W.method.writeRows(ctx, W, 0, new Uint8Array(wf.buffer), 'F32');
  const wq = dequantizeRows(format, quantizeRows(format, wf, rows, K), rows, K);
  const xt = f32(ctx, x, [T, K]);
  const opts = { rmsNorm: g ? { weight: f32(ctx, g), eps: 1e-5 } : undefined, gated: f.gated, residual: f.residual };
  return { x, b, g, N, residual, W, wq, xt, opts };
}
