import { describe, expect, it } from 'vitest';
import { createStorageBuffer, readBuffer } from '../../src/gpu/buffers.js';
import { f16ToF32, f32ToF16, fromHalfBits, toHalfBits } from '../../src/gpu/half.js';
import { paramsStruct } from '../../src/gpu/pipelines.js';
import { Recorder } from '../../src/gpu/recorder.js';
import { createTensor, createWeight, readTensor, writeWeightRows, type Tensor, type Weight } from '../../src/gpu/tensor.js';
import { scaleSoftcap } from '../../src/ops/elementwise.js';
import { embed } from '../../src/ops/embedding.js';
import { fillConstant, fillRandom } from '../../src/ops/fill.js';
import { rmsNorm } from '../../src/ops/norm.js';
import { getTestGpu } from '../helpers/gpu.js';
import { f32, randomArray, rng, u32, weight } from './util.js';

async function readWeight(ctx: Awaited<ReturnType<typeof getTestGpu>>, w: Weight): Promise<Float32Array> {
  const out = new Float32Array(w.rows * w.cols);
  for (const part of w.parts) {
    const bytes = await readBuffer(ctx, part.buffer, 0, part.rows * w.rowStride * (w.dtype === 'f16' ? 2 : 4));
    const values = w.dtype === 'f16' ? f16ToF32(new Uint16Array(bytes)) : new Float32Array(bytes);
    for (let r = 0; r < part.rows; r++) {
      out.set(values.subarray(r * w.rowStride, r * w.rowStride + w.cols), (part.rowStart + r) * w.cols);
    }
  }
  return out;
}

describe('gpu plumbing', async () => {
  const ctx = await getTestGpu();
  const clearTensors = async (...ts: Tensor[]) => {
    const rec = new Recorder(ctx);
    for (const t of ts) rec.clear(t.buffer);
    rec.submit();
    await ctx.finish();
  };

  it('context reports its features and limits', () => {
    expect(typeof ctx.f16).toBe('boolean');
    expect(typeof ctx.subgroups).toBe('boolean');
    expect(ctx.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
    expect(ctx.maxBinding).toBe(ctx.limits.maxStorageBufferBindingSize);
  });

  it('half conversion rounds to nearest even and round-trips', () => {
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff);
    expect(toHalfBits(1e6)).toBe(0x7c00);
    expect(toHalfBits(2 ** -24)).toBe(1);
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    for (let h = 0; h < 0x7c00; h += 37) expect(toHalfBits(fromHalfBits(h))).toBe(h);
  });

  it('readBuffer reads unaligned ranges, concurrently', async () => {
    const data = Uint8Array.from({ length: 103 }, (_, i) => i);
    const buffer = createStorageBuffer(ctx, data);
    const [a, b, c] = await Promise.all([readBuffer(ctx, buffer, 1, 5), readBuffer(ctx, buffer, 0, 103), readBuffer(ctx, buffer, 97, 6)]);
    expect(Array.from(new Uint8Array(a))).toEqual([1, 2, 3, 4, 5]);
    expect(Array.from(new Uint8Array(b))).toEqual(Array.from(data));
    expect(Array.from(new Uint8Array(c))).toEqual([97, 98, 99, 100, 101, 102]);
  });

  for (const [dtype, cols] of [['f32', 7], ['f16', 7], ['f16', 8]] as const) {
    it(`writeWeightRows ${dtype} cols=${cols}: row ranges spanning parts`, async () => {
      const rows = 23;
      const stride = dtype === 'f16' ? cols + (cols % 2) : cols;
      const w = createWeight(ctx, rows, cols, dtype, 'w', { maxPartBytes: 5 * stride * (dtype === 'f16' ? 2 : 4) });
      expect(w.parts.map((p) => [p.rowStart, p.rows])).toEqual([[0, 5], [5, 5], [10, 5], [15, 5], [20, 3]]);
      let data = randomArray(rng(cols), rows * cols);
      if (dtype === 'f16') data = f16ToF32(f32ToF16(data));
      // Three uploads with odd boundaries.
      for (const [lo, hi] of [[0, 3], [3, 12], [12, 23]]) {
        const chunk = data.subarray(lo * cols, hi * cols);
        writeWeightRows(ctx, w, lo, dtype === 'f16' ? f32ToF16(chunk) : chunk);
      }
      expect(Array.from(await readWeight(ctx, w))).toEqual(Array.from(data));
      expect(() => writeWeightRows(ctx, w, 20, new Float32Array(4 * cols))).toThrow();
    });
  }

  it('fillRandom is reproducible, in range, and independent of the split', async () => {
    for (const dtype of ['f32', 'f16'] as const) {
      const whole = createWeight(ctx, 40, 6, dtype, 'whole');
      const split = createWeight(ctx, 40, 6, dtype, 'split', { maxPartBytes: 7 * 6 * 4 });
      expect(split.parts.length).toBeGreaterThan(1);
      fillRandom(ctx, whole, 42, -0.5, 0.25);
      const rec = new Recorder(ctx);
      fillRandom(rec, split, 42, -0.5, 0.25);
      rec.submit();
      const a = await readWeight(ctx, whole);
      const b = await readWeight(ctx, split);
      expect(Array.from(a)).toEqual(Array.from(b));
      expect(Math.min(...a)).toBeGreaterThanOrEqual(-0.5);
      expect(Math.max(...a)).toBeLessThanOrEqual(0.25);
      expect(new Set(a).size).toBeGreaterThan(200);
      fillRandom(ctx, whole, 43, -0.5, 0.25);
      expect(Array.from(await readWeight(ctx, whole))).not.toEqual(Array.from(a));
      fillConstant(ctx, split, 1.5);
      expect(Array.from(await readWeight(ctx, split))).toEqual(new Array(240).fill(1.5));
    }
    expect(ctx.takeErrors()).toEqual([]);
  });

  it('paramsStruct gives the WGSL struct and writes named values into words of their types, in field order', () => {
    const P = paramsStruct({ T: 'u32', offset: 'i32', eps: 'f32', n: 'u32', scale: 'f32' });
    expect(P.wgsl).toBe('struct Params {\n  T: u32,\n  offset: i32,\n  eps: f32,\n  n: u32,\n  scale: f32,\n}\n');
    expect(P.size).toBe(32); // 5 words, padded to 16 bytes
    expect(paramsStruct({ a: 'u32' }).size).toBe(16);
    const words = new Uint32Array(10).fill(7);
    const [i32, f32] = [new Int32Array(words.buffer), new Float32Array(words.buffer)];
    P.write(words, i32, f32, 2, { eps: 1e-6, T: 3, scale: 0.1, n: 2 ** 32 - 1, offset: -5 });
    const want = new Uint32Array(10).fill(7);
    want[2] = 3;
    new Int32Array(want.buffer)[3] = -5;
    new Float32Array(want.buffer)[4] = 1e-6;
    want[5] = 2 ** 32 - 1;
    new Float32Array(want.buffer)[6] = 0.1;
    expect(Array.from(words)).toEqual(Array.from(want));
    expect(() => P.write(words, i32, f32, 0, { T: 1 } as never)).toThrow(/no value for field offset/);
    expect(() => paramsStruct({ x: 'f16' as never })).toThrow(/field x has type 'f16'/);
  });

  it('a recorder survives more dispatches than its uniform ring holds, and reuses bind groups', async () => {
    // acc += a row of ones, count times (embed accumulating): the sum shows that every dispatch ran once.
    const n = 64;
    const acc = f32(ctx, new Float32Array(n));
    const ones = weight(ctx, new Float32Array(n).fill(1), 1, n, 'f32');
    const ids = u32(ctx, [0]);
    const rec = new Recorder(ctx);
    embed(rec, ids, ones, acc, 1, true);
    const groups = ctx.pipelines.bindGroupCount;
    const count = Math.ceil(ctx.uniforms.size / ctx.uniforms.align) + 10;
    for (let i = 1; i < count; i++) embed(rec, ids, ones, acc, 1, true);
    rec.submit();
    expect(ctx.pipelines.bindGroupCount).toBe(groups);
    const got = (await readTensor(ctx, acc)) as Float32Array;
    expect(Array.from(got)).toEqual(new Array(n).fill(count));
    expect(ctx.takeErrors()).toEqual([]);
  });

  it('a captured step graph replays its dispatches and copies, params included, into later steps', async () => {
    const n = 40;
    const x = f32(ctx, randomArray(rng(3), n));
    const w = f32(ctx, randomArray(rng(4), n));
    const y = f32(ctx, new Float32Array(n));
    const z = f32(ctx, new Float32Array(n));
    // y = softcap(rmsNorm(x) * w / 0.5, 1.5), then a copy of y into z: two dispatches with f32 params, a copy.
    const record = (rec: Recorder) => {
      rmsNorm(rec, x, w, y, 4, n / 4, 1e-5);
      scaleSoftcap(rec, y, n, { divisor: 0.5, softcap: 1.5 });
      rec.copy(y.buffer, 0, z.buffer, 0, n * 4);
    };
    const eager = new Recorder(ctx);
    record(eager);
    eager.submit();
    const want = Array.from(await readTensor(ctx, z));
    await clearTensors(y, z);
    const rec = new Recorder(ctx);
    const graph = rec.capture(() => record(rec));
    rec.submit();
    expect(graph.commands.map((c) => c.kind)).toEqual(['dispatch', 'dispatch', 'copy']);
    expect(Array.from(await readTensor(ctx, z))).toEqual(want);
    // Replayed in a later step: the same results, from the graph's two dispatches alone.
    await clearTensors(y, z);
    const dispatches = rec.dispatches;
    rec.replay(graph);
    rec.submit();
    expect(rec.dispatches - dispatches).toBe(2);
    expect(Array.from(await readTensor(ctx, z))).toEqual(want);
    expect(() => rec.capture(() => rec.capture(() => {}))).toThrow(/already capturing/);
    expect(ctx.takeErrors()).toEqual([]);
  });

  it('readTensor returns the typed array of the dtype', async () => {
    const t = createTensor(ctx, [3], 'u32');
    expect(await readTensor(ctx, t)).toBeInstanceOf(Uint32Array);
  });
});
