/**
 * iq4_nl / iq4_xs CPU references (src/layers/quant/formats/iq4.ts) against llama.cpp's C and gguf-py
 * (test/fixtures/quant/iq4-reference.json, made by make_kquant_reference.sh): on kquant_reference.c's float cases our
 * quantizer writes the bytes ggml's quantize_iq4_nl / quantize_iq4_xs write (llama-quantize's path, no importance
 * matrix) and our dequantizer reads them to ggml's floats, bit for bit; on random blocks it reads gguf-py's floats.
 * The GPU readers (qChunk, qChunkI8) are checked by test/ops/quant.test.ts and test/ops/quant-int8.test.ts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { blockFormat, checkQuantization, dequantizeRows, formatOfGgmlType, ON_LOAD_FORMATS, quantizeRows, type QuantFormat } from '../src/layers/quant/index.js';
import { expectRoundTrip } from './helpers/quant-round-trip.js';
import { GGML_TYPES } from '../src/loader/gguf.js';

interface Fixture {
  llama_cpp_commit: string;
  gguf_dequantize_agrees: string | null;
  cases: { name: string; x: string }[];
  formats: Record<string, { blocks: string; dequantized: string }[]>;
  random_blocks: Record<string, { blocks: string; dequantized: string }>;
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/quant/iq4-reference.json', import.meta.url), 'utf8')) as Fixture;
const hexBytes = (hex: string) => Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
const hexF32 = (hex: string) => new Float32Array(hexBytes(hex).buffer);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const f32Hex = (v: Float32Array) => hex(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));

/** [format, ggml type id, elements, bytes a block] (ggml-common.h's static_asserts). */
const IQ4: [QuantFormat, number, number, number][] = [['iq4_nl', 20, 32, 18], ['iq4_xs', 23, 256, 136]];

describe(`iq4_nl / iq4_xs against llama.cpp's ggml-quants.c (${fixture.llama_cpp_commit.slice(0, 10)}) and gguf-py`, () => {
  it('the fixture covers both formats, and gguf-py dequantizes ggml\'s blocks as ggml does', () => {
    expect(Object.keys(fixture.formats).sort()).toEqual(['iq4_nl', 'iq4_xs']);
    expect(Object.keys(fixture.random_blocks).sort()).toEqual(['iq4_nl', 'iq4_xs']);
    expect(fixture.cases.length).toBe(10);
    expect(fixture.gguf_dequantize_agrees).toBe('0.19.0');
  });

  for (const [format, id, elems, bytes] of IQ4) {
    const f = blockFormat(format);
    it(`${format}: ggml type ${id}, ${bytes} bytes a block of ${elems}, quantizable on load`, () => {
      expect([f.blockElems, f.blockBytes, f.ggmlType]).toEqual([elems, bytes, format.toUpperCase()]);
      expect(GGML_TYPES[id]).toEqual([f.ggmlType, elems, bytes]);
      expect(formatOfGgmlType(f.ggmlType)).toBe(format);
      expect(ON_LOAD_FORMATS).toContain(format);
      expect(checkQuantization(format)).toBe(format);
    });

    for (const [i, c] of fixture.cases.entries()) {
      it(`${format} ${c.name}: quantizer writes ggml's bytes, dequantizer reads ggml's floats`, () => {
        const want = fixture.formats[format][i];
        const x = hexF32(c.x);
        const blocks = hexBytes(want.blocks);
        expect(blocks.length).toBe((x.length / elems) * bytes);
        expect(hex(quantizeRows(format, x, 1, x.length))).toBe(want.blocks);
        expect(f32Hex(dequantizeRows(format, blocks, 1, x.length))).toBe(f32Hex(hexF32(want.dequantized)));
      });
    }

    it(`${format}: random blocks dequantize to gguf-py's floats, bit for bit`, () => {
      const { blocks, dequantized } = fixture.random_blocks[format];
      const b = hexBytes(blocks);
      const n = b.length / bytes;
      expect(n).toBeGreaterThanOrEqual(16);
      // As rows of 2 blocks and as one row: rows change nothing.
      expect(f32Hex(dequantizeRows(format, b, n / 2, 2 * elems))).toBe(dequantized);
      expect(f32Hex(dequantizeRows(format, b, 1, n * elems))).toBe(dequantized);
    });
  }
});

describe('iq4 round trips', () => {
  /** Bounds on RMS error / RMS of x for uniform rows in [-1, 1), from measurements (the log lines) with slack. */
  const MAX_REL_RMSE: Record<string, number> = { iq4_nl: 0.08, iq4_xs: 0.08 };
  let seed = 777;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const rows = 8;
  const cols = 512;
  const x = Float32Array.from({ length: rows * cols }, () => 2 * rand() - 1);
  for (const [format] of IQ4) {
    it(`${format}: dequantize(quantize(x)) is close to x, and quantizing it again changes little`, () => {
      expectRoundTrip(format, x, rows, cols, MAX_REL_RMSE[format]);
    });
  }
});
