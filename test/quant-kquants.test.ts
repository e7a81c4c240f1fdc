/**
 * The k-quants' CPU references (src/layers/quant/formats/k-quants.ts) against llama.cpp's own C
 * (test/fixtures/quant/kquant-reference.json, made by make_kquant_reference.sh from ggml-quants.c): our quantizer
 * writes ggml's bytes, our dequantizer reads them to ggml's floats, bit for bit. The GPU readers (qChunk) are
 * checked by test/ops/quant.test.ts, which runs every format of FORMATS.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { blockFormat, checkQuantization, dequantizeRows, ON_LOAD_FORMATS, quantizeRows, type QuantFormat } from '../src/layers/quant/index.js';
import { expectRoundTrip } from './helpers/quant-round-trip.js';

interface Fixture {
  llama_cpp_commit: string;
  gguf_dequantize_agrees: string | null;
  cases: { name: string; x: string }[];
  formats: Record<string, { blocks: string; dequantized: string }[]>;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/quant/kquant-reference.json', import.meta.url), 'utf8')) as Fixture;
const hexBytes = (hex: string) => Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
const hexF32 = (hex: string) => new Float32Array(hexBytes(hex).buffer);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const KQUANTS: QuantFormat[] = ['q4_k', 'q6_k', 'q5_k', 'q3_k', 'q2_k'];
/** Bytes per 256-element block (ggml-common.h's static_asserts). */
const BLOCK_BYTES: Record<string, number> = { q4_k: 144, q6_k: 210, q5_k: 176, q3_k: 110, q2_k: 84 };

describe(`k-quants against llama.cpp's ggml-quants.c (${fixture.llama_cpp_commit.slice(0, 10)})`, () => {
  it('the fixture covers every k-quant, and gguf-py dequantizes its blocks as ggml does', () => {
    expect(Object.keys(fixture.formats).sort()).toEqual([...KQUANTS].sort());
    expect(fixture.cases.map((c) => c.name)).toEqual(['uniform', 'weights', 'magnitudes', 'positive', 'zeros', 'sparse', 'equal', 'huge', 'tiny', 'ramps']);
    expect(fixture.gguf_dequantize_agrees).toBe('0.19.0');
  });

  for (const format of KQUANTS) {
    const f = blockFormat(format);
    it(`${format}: ${BLOCK_BYTES[format]} bytes a block of 256, quantizable on load`, () => {
      expect([f.blockElems, f.blockBytes, f.ggmlType]).toEqual([256, BLOCK_BYTES[format], format.toUpperCase()]);
      expect(ON_LOAD_FORMATS).toContain(format);
      expect(checkQuantization(format)).toBe(format);
    });

    for (const [i, c] of fixture.cases.entries()) {
      it(`${format} ${c.name}: quantizer writes ggml's bytes, dequantizer reads ggml's floats`, () => {
        const want = fixture.formats[format][i];
        const x = hexF32(c.x);
        const blocks = hexBytes(want.blocks);
        expect(blocks.length).toBe((x.length / 256) * f.blockBytes);
        expect(hex(quantizeRows(format, x, 1, x.length))).toBe(want.blocks);
        const got = dequantizeRows(format, blocks, 1, x.length);
        expect(hex(new Uint8Array(got.buffer))).toBe(hex(new Uint8Array(hexF32(want.dequantized).buffer)));
      });
    }
  }
});

describe('k-quants round trips', () => {
  /**
   * Bounds on RMS error / RMS of x for uniform rows in [-1, 1), from measurements (the test's log lines) with some
   * slack: q4_k 0.054, q6_k 0.013, q5_k 0.028, q3_k 0.124, q2_k 0.232; requantized: q4_k, q2_k 0, q6_k 6e-4,
   * q5_k 5e-3, q3_k 0.032 (a quarter of its first error).
   */
  const MAX_REL_RMSE: Record<string, number> = { q4_k: 0.06, q6_k: 0.015, q5_k: 0.03, q3_k: 0.14, q2_k: 0.26 };
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const rows = 8;
  const cols = 512;
  const x = Float32Array.from({ length: rows * cols }, () => 2 * rand() - 1);
  for (const format of KQUANTS) {
    it(`${format}: dequantize(quantize(x)) is close to x, and quantizing it again changes nothing much`, () => {
      expectRoundTrip(format, x, rows, cols, MAX_REL_RMSE[format]);
    });
  }
});
