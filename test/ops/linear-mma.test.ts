/**
 * The subgroup-matrix linear kernel is generated per tile (src/ops/linear-mma.ts) and runs only where the device has
 * chromium-experimental-subgroup-matrix, which CPU WebGPU lacks: here its text and the GPU tuning table are checked
 * (bench/goldens.js checks its results against the goldens on a GPU).
 */
import { describe, expect, it } from 'vitest';
import { GPU_TUNING, type MmaTile } from '../../src/gpu/tuning.js';
import { mmaKernelCode, mmaSharedBytes } from '../../src/ops/linear-mma.js';
import { mmaTile } from '../../src/ops/linear.js';
import { blockFormat, QUANT_FORMATS } from '../../src/layers/quant/formats/index.js';

const TILES: MmaTile[] = [...GPU_TUNING.mmaTiles.map((t) => t.tile), [1, 1, 1, 1, 1], [4, 4, 2, 2, 1], [1, 2, 1, 2, 4], [2, 2, 1, 2, 2, 2], [4, 2, 1, 1, 2, 2, 1], [4, 2, 1, 2, 2, 1, 1, 1], [2, 2, 2, 2, 1, 2, 0, 1]];

describe('linear.mma kernel generation', () => {
  it.each(TILES.map((t) => [t.join(''), t] as const))('tile %s: every generated part filled, one variable per block', (_name, tile) => {
    const [wm, wn, sgm, sgn, sk, km = 1, direct = 0, xh = 0] = tile;
    for (const gated of wn % 2 === 0 ? [false, true] : [false]) {
      const { prelude, code } = mmaKernelCode(tile, gated);
      expect(code).not.toMatch(/^ *\/\/ @generated/m);
      expect(prelude).toContain(`const WM = ${wm}u;`);
      expect(prelude).toContain(`const SK = ${sk}u;`);
      expect(prelude).toMatch(/^enable f16;/);
      // Result blocks are variables of their own, never arrays (which spill to local memory).
      expect(code).not.toMatch(/array<subgroup_matrix/);
      for (let i = 0; i < wm; i++) for (let j = 0; j < wn; j++) expect(code).toContain(`var c${i}_${j}: subgroup_matrix_result<f32, 16, 16>;`);
      // Each thread stages its share of x and (unless DIRECT) w rows: BM + BN rows of 4 SK KM chunks over 32 SGM
      // SGN SK threads.
      const threads = 32 * sgm * sgn * sk;
      const xChunks = Math.ceil((16 * wm * sgm * 4 * sk * km) / threads);
      const wChunks = direct ? 0 : Math.ceil((16 * wn * sgn * 4 * sk * km) / threads);
      expect(code.match(/var px\d+ = /g)?.length).toBe(xChunks);
      expect(code.match(/var pw\d+ = /g)?.length ?? 0).toBe(wChunks);
      if (direct) {
        // The weight is read as halves, never staged; each subgroup holds the next step's 2 KM x WN blocks.
        expect(code).toContain('var<storage, read> w: array<f16>;');
        expect(code).not.toContain('var<workgroup> ws');
        expect(code.match(/var b\d+_\d+ = subgroupMatrixLoad/g)?.length).toBe(2 * km * wn);
        expect(code.match(/let q\d+_\d+ = b\d+_\d+;/g)?.length).toBe(2 * km * wn);
      } else {
        expect(code).toContain('var<workgroup> ws: array<f16, BN * LD>;');
      }
      expect(prelude).toContain(`const KM = ${km}u;`);
      // x as f32 (rounded as it is staged) or, XH, as f16 chunks: one binding and one loadX / stageX either way.
      expect(code.match(/@binding\(1\) var<storage, read> x: array<([^>]+>)>;/)?.[1]).toBe(xh ? 'vec4<u32>' : 'vec4<f32>');
      expect(code.match(/^fn (loadX|stageX)\(/gm)).toEqual(['fn loadX(', 'fn stageX(']);
      expect(code).not.toContain(xh ? '// @x-f32 {' : '// @x-f16 {');
      // Gated: each output block stores its up block beside it.
      const stores = code.match(/subgroupMatrixStore\(/g)?.length;
      expect(stores).toBe(wm * wn);
    }
  });

  it.each(QUANT_FORMATS.map((f) => [f] as const))('block format %s: the staged-q region in place of staged-w, 32-element chunks per thread', (format) => {
    for (const tile of [...GPU_TUNING.mmaTiles.map((t) => t.tile), [2, 2, 1, 2, 2, 2] as MmaTile]) {
      const [, wn, , sgn, sk, km = 1, , xh = 0] = tile;
      const staged: MmaTile = [tile[0], wn, tile[2], sgn, sk, km, 0, xh];
      const { prelude, code } = mmaKernelCode(staged, false, blockFormat(format).wgsl);
      expect(prelude).toContain('fn qChunk(');
      expect(code).toContain('var<storage, read> w: array<u32>;');
      expect(code).toContain('fn qHalf(');
      expect(code).not.toMatch(/^\/\/ @staged-w \{/m);
      expect(code.match(/^fn (loadW|stageW)\(/gm)).toEqual(['fn loadW(', 'fn stageW(']);
      const threads = 32 * tile[2] * sgn * sk;
      expect(code.match(/var pw\d+ = /g)?.length).toBe(Math.ceil((16 * wn * sgn * sk * km) / threads));
      // f16 weights never see the block region.
      expect(mmaKernelCode(staged, false).code).not.toMatch(/^\/\/ @staged-q \{/m);
    }
    expect(() => mmaKernelCode([1, 2, 1, 2, 4, 1, 1], false, blockFormat(format).wgsl)).toThrow(/staged/);
  });

  it('fits every GPU tile in the workgroup memory of common GPUs (48 KiB)', () => {
    for (const { tile } of GPU_TUNING.mmaTiles) expect(mmaSharedBytes(tile)).toBeLessThanOrEqual(48 * 1024);
  });

  it('orders the GPU tiles by token count, ending with one for any shape', () => {
    const tiles = GPU_TUNING.mmaTiles;
    const last = tiles[tiles.length - 1];
    expect(last.maxTokens).toBe(Infinity);
    expect(last.maxColumns ?? Infinity).toBe(Infinity);
    for (let i = 1; i < tiles.length; i++) expect(tiles[i].maxTokens).toBeGreaterThanOrEqual(tiles[i - 1].maxTokens);
  });
});

describe('linear.mma tile choice', () => {
  it('runs a DIRECT tile staged where K is not whole steps or the rows not whole 32-row blocks', () => {
    const tune = { ...GPU_TUNING, mmaTiles: [{ maxTokens: Infinity, tile: [1, 2, 1, 2, 4, 1, 1] as MmaTile }] };
    expect(mmaTile(tune, 16, 2048, 2048)).toEqual([1, 2, 1, 2, 4, 1, 1]);
    expect(mmaTile(tune, 16, 2048, 2048 + 64)?.[6]).toBe(0); // K % (32 SK KM = 128) != 0
    expect(mmaTile(tune, 16, 2048 + 16, 2048)?.[6]).toBe(0); // rows % 32 != 0
    expect(mmaTile(tune, 16, 2048, 2048, Infinity, true)).toEqual([1, 2, 1, 2, 4, 1, 0, 0]); // quantized: always staged
  });

  it('picks the first tile whose token, column and depth bounds cover the shape', () => {
    const tiles = GPU_TUNING.mmaTiles;
    expect(mmaTile(GPU_TUNING, 16, 3072, 2048)).toEqual(tiles[0].tile);
    expect(mmaTile(GPU_TUNING, 64, 16384, 2048)).toEqual(tiles.find((t) => t.maxTokens >= 64 && (t.maxColumns ?? Infinity) >= 16384)!.tile);
    expect(mmaTile(GPU_TUNING, 16, 128256, 2048)).toEqual(tiles.find((t) => t.maxTokens >= 16 && (t.maxColumns ?? Infinity) >= 128256)!.tile); // the LM head
    expect(mmaTile(GPU_TUNING, 2048, 2048, 8192)).toEqual(tiles[tiles.length - 1].tile);
  });

  it('picks among the tiles for the kind of weight: f16 or quantized', () => {
    const f16: MmaTile = [4, 2, 1, 2, 2, 1, 1];
    const quantized: MmaTile = [2, 2, 2, 2, 1];
    const both: MmaTile = [2, 4, 2, 2, 1];
    const tune = {
      ...GPU_TUNING,
      mmaTiles: [{ maxTokens: 64, weights: 'f16' as const, tile: f16 }, { maxTokens: 32, weights: 'quantized' as const, tile: quantized }, { maxTokens: Infinity, tile: both }],
    };
    expect(mmaTile(tune, 32, 2048, 2048)).toEqual(f16);
    expect(mmaTile(tune, 32, 2048, 2048, Infinity, true)).toEqual(quantized);
    expect(mmaTile(tune, 64, 2048, 2048, Infinity, true)).toEqual(both);
    expect(mmaTile(tune, 128, 2048, 2048)).toEqual(both);
    // The tuned table: quantized weights at 17-64 tokens skip the f16-only weight-direct tile.
    const tiles = GPU_TUNING.mmaTiles;
    expect(mmaTile(GPU_TUNING, 64, 8192, 2048, Infinity, true)).toEqual(tiles.find((t) => t.maxTokens >= 64 && t.weights !== 'f16' && (t.maxColumns ?? Infinity) >= 8192)!.tile);
    expect(mmaTile(GPU_TUNING, 64, 8192, 2048, Infinity, true)).not.toEqual(mmaTile(GPU_TUNING, 64, 8192, 2048));
  });

  it('skips the tiles whose workgroup memory exceeds the limit', () => {
    const big: MmaTile = [4, 4, 2, 4, 1];
    const small: MmaTile = [2, 4, 2, 2, 1];
    const tune = { ...GPU_TUNING, mmaTiles: [{ maxTokens: 64, tile: small }, { maxTokens: Infinity, tile: big }] };
    expect(mmaTile(tune, 2048, 2048, 2048)).toEqual(big);
    expect(mmaSharedBytes(big)).toBeGreaterThan(32768);
    expect(mmaTile(tune, 2048, 2048, 2048, 32768)).toEqual(small);
    expect(mmaTile(tune, 2048, 2048, 2048, 1024)).toBeNull();
  });
});
