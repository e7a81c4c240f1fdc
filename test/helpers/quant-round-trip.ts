/** The round-trip check of an on-load quantizer, shared by the k-quant and iq4 tests. */
import { expect } from 'vitest';
import { dequantizeRows, quantizeRows, type QuantFormat } from '../../src/layers/quant/index.js';

/**
 * dequantize(quantize(x)) is within `maxRel` relative RMS error of x [rows, cols], and requantizing the result lands
 * on it again up to half of that first error. Returns the relative RMS error (also logged).
 */
export function expectRoundTrip(format: QuantFormat, x: Float32Array, rows: number, cols: number, maxRel: number): number {
  const y = dequantizeRows(format, quantizeRows(format, x, rows, cols), rows, cols);
  let se = 0;
  let sx = 0;
  for (let i = 0; i < x.length; i++) {
    se += (x[i] - y[i]) ** 2;
    sx += x[i] ** 2;
  }
  const rel = Math.sqrt(se / sx);
  console.log(`${format}: relative RMS error ${rel.toFixed(4)}`);
  expect(rel).toBeLessThan(maxRel);
  const y2 = dequantizeRows(format, quantizeRows(format, y, rows, cols), rows, cols);
  let se2 = 0;
  for (let i = 0; i < y.length; i++) se2 += (y[i] - y2[i]) ** 2;
  console.log(`${format}: requantized ${Math.sqrt(se2 / sx).toFixed(4)}`);
  expect(Math.sqrt(se2 / sx)).toBeLessThan(rel / 2);
  return rel;
}
