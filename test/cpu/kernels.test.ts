/**
 * cpu.wasm's kernels (assembly/cpu/) against plain JS references on random inputs: matmul of f32 activations with
 * f32 / f16 weights (the GEMV and panel-GEMM paths, with and without accumulation, ragged row and token counts; the
 * quantized formats' 8-bit-activation matmul is linear-q8.test.ts's), row dequantization of every format, RMSNorm / LayerNorm, rope, the activations, paged attention (GQA, sliding window, soft-cap) and
 * the logit soft-cap.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CPU_ACTS, CPU_FORMATS, loadCpuKernels, type CpuFormat, type CpuKernels } from '../../src/cpu/cpu-wasm.js';
import { cpuRowBytes } from '../../src/cpu/cpu-weights.js';
import { dequantizeRows, quantizeRows } from '../../src/layers/quant/index.js';
import { f16BitsToF32, f32ToF16 } from '../../src/loader/convert.js';
import { randoms, rng } from '../helpers/random.js';

let cpu: CpuKernels;
beforeAll(async () => {
  cpu = await loadCpuKernels();
});

/** Copies data into fresh wasm memory; returns its pointer. */
function put(data: Float32Array | Int32Array | Uint8Array | Uint16Array): number {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const p = cpu.alloc(bytes.byteLength);
  cpu.u8().set(bytes, p);
  return p;
}
const getF32 = (p: number, n: number) => cpu.f32().slice(p / 4, p / 4 + n);

/** A random [N, K] matrix in `format`: its bytes and its exact values (as the kernels must read them). */
function matrix(format: CpuFormat, N: number, K: number, r: () => number): { bytes: Uint8Array; values: Float32Array } {
  const x = randoms(N * K, r);
  if (format === 'f32') return { bytes: new Uint8Array(x.buffer), values: x };
  if (format === 'f16') {
    const h = f32ToF16(x);
    return { bytes: new Uint8Array(h.buffer), values: Float32Array.from(h, f16BitsToF32) };
  }
  const bytes = quantizeRows(format, x, N, K);
  return { bytes, values: dequantizeRows(format, bytes, N, K) };
}

describe('linear', () => {
  const shapes: [T: number, N: number, K: number][] = [
    [1, 13, 256],
    [2, 8, 512],
    [3, 5, 256],
    [4, 8, 256],
    [7, 11, 768],
    [16, 4, 512],
  ];
  describe.each(['f32', 'f16'] as const)('%s', (format) => {
    it.each(shapes)('T %i, N %i, K %i matches x W^T (and adds into out)', (T, N, K) => {
      const r = rng(T * 1000 + N * 10 + K);
      const { bytes, values } = matrix(format, N, K, r);
      const x = randoms(T * K, r);
      const ldo = N + 3; // a wider output: the matrix writes its own columns only
      const init = randoms(T * ldo, r);
      const w = put(bytes);
      const xp = put(x);
      const panel = cpu.alloc(4 * 4 * K);
      for (const acc of [false, true]) {
        const out = put(init);
        cpu.k.linear(CPU_FORMATS[format], out, ldo, xp, K, w, cpuRowBytes(format, K), T, N, K, acc, panel);
        const got = getF32(out, T * ldo);
        for (let t = 0; t < T; t++) {
          for (let n = 0; n < ldo; n++) {
            const i = t * ldo + n;
            if (n >= N) {
              expect(got[i]).toBe(init[i]);
              continue;
            }
            let s = 0;
            for (let k = 0; k < K; k++) s += x[t * K + k] * values[n * K + k];
            if (acc) s += init[i];
            expect(Math.abs(got[i] - s)).toBeLessThan(1e-4 * Math.sqrt(K));
          }
        }
      }
      expect(bytes.byteLength).toBe(N * cpuRowBytes(format, K));
    });
  });

  describe.each(Object.keys(CPU_FORMATS) as CpuFormat[])('%s', (format) => {
    it('dequantRow gives the CPU reference dequantizer values', () => {
      // 6 rows: q4_0 / iq4_nl store rows 0..3 as a group of 4, rows 4 and 5 as the file's.
      const [N, K] = [6, 512];
      const { bytes, values } = matrix(format, N, K, rng(7));
      const w = put(bytes);
      cpu.packRows(CPU_FORMATS[format], w, cpuRowBytes(format, K), N);
      const out = cpu.alloc(4 * K);
      for (let n = 0; n < N; n++) {
        cpu.k.dequantRow(CPU_FORMATS[format], out, w, cpuRowBytes(format, K), N, n, K);
        const got = getF32(out, K);
        for (let k = 0; k < K; k++) expect(Math.abs(got[k] - values[n * K + k])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(values[n * K + k])));
      }
    });
  });

  it('reads f16 subnormals exactly', () => {
    // Every f16 bit pattern but inf / NaN, as one row: dequantRow must give f16BitsToF32 of each.
    const bits = Uint16Array.from({ length: 0x10000 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00);
    const K = bits.length - (bits.length % 4);
    const out = cpu.alloc(4 * K);
    cpu.k.dequantRow(CPU_FORMATS.f16, out, put(bits), 2 * K, 1, 0, K);
    const got = getF32(out, K);
    for (let i = 0; i < K; i++) expect(got[i]).toBe(f16BitsToF32(bits[i]));
  });

  it('handles K that is not a multiple of 4 (f32, f16)', () => {
    for (const format of ['f32', 'f16'] as const) {
      const [T, N, K] = [5, 6, 37];
      const r = rng(99);
      const { bytes, values } = matrix(format, N, K, r);
      const x = randoms(T * K, r);
      const out = cpu.alloc(4 * T * N);
      cpu.k.linear(CPU_FORMATS[format], out, N, put(x), K, put(bytes), cpuRowBytes(format, K), T, N, K, false, cpu.alloc(16 * K));
      const got = getF32(out, T * N);
      for (let t = 0; t < T; t++)
        for (let n = 0; n < N; n++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += x[t * K + k] * values[n * K + k];
          expect(got[t * N + n]).toBeCloseTo(s, 4);
        }
    }
  });
});

describe('norms', () => {
  it('rmsNorm: x / sqrt(mean(x^2) + eps) * w, strided rows', () => {
    const [rows, H, ld] = [5, 67, 70];
    const r = rng(3);
    const x = randoms(rows * ld, r, 3);
    const w = randoms(H, r);
    const out = cpu.alloc(4 * rows * H);
    cpu.k.rmsNorm(out, H, put(x), ld, put(w), rows, H, 1e-5);
    const got = getF32(out, rows * H);
    for (let i = 0; i < rows; i++) {
      let ss = 0;
      for (let j = 0; j < H; j++) ss += x[i * ld + j] ** 2;
      const inv = 1 / Math.sqrt(ss / H + 1e-5);
      for (let j = 0; j < H; j++) expect(got[i * H + j]).toBeCloseTo(x[i * ld + j] * inv * w[j], 5);
    }
  });

  it('layerNorm: (x - mean) / sqrt(var + eps) * w + b', () => {
    const [rows, H] = [4, 33];
    const r = rng(4);
    const x = randoms(rows * H, r, 2);
    const w = randoms(H, r);
    const b = randoms(H, r);
    const out = cpu.alloc(4 * rows * H);
    cpu.k.layerNorm(out, H, put(x), H, put(w), put(b), rows, H, 1e-5);
    const got = getF32(out, rows * H);
    for (let i = 0; i < rows; i++) {
      const row = x.subarray(i * H, (i + 1) * H);
      const mean = row.reduce((a, v) => a + v, 0) / H;
      const v = row.reduce((a, y) => a + (y - mean) ** 2, 0) / H;
      for (let j = 0; j < H; j++) expect(got[i * H + j]).toBeCloseTo(((row[j] - mean) / Math.sqrt(v + 1e-5)) * w[j] + b[j], 5);
    }
  });
});

describe('rope', () => {
  it.each([
    [16, 16],
    [64, 32], // partial rotary: dims >= R pass through
  ])('rotates pairs (i, i + R/2) of every q and k head (D %i, R %i)', (D, R) => {
    const [T, heads, ld] = [3, 5, 5 * D + 7];
    const r = rng(D + R);
    const qkv = randoms(T * ld, r);
    const invFreq = Float32Array.from({ length: R / 2 }, (_, i) => Math.fround(1 / 10000 ** ((2 * i) / R)));
    const positions = Int32Array.from([0, 7, 1234]);
    const p = put(qkv);
    cpu.k.rope(p, ld, put(positions), put(invFreq), T, heads, D, R, 0.9, cpu.alloc(4 * D));
    const got = getF32(p, T * ld);
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < heads; h++) {
        const b = t * ld + h * D;
        for (let i = 0; i < D; i++) {
          let want = qkv[b + i];
          if (i < R) {
            const j = i % (R / 2);
            const a = Math.fround(positions[t] * invFreq[j]);
            const c = Math.cos(a) * 0.9;
            const s = Math.sin(a) * 0.9;
            want = i < R / 2 ? qkv[b + i] * c - qkv[b + i + R / 2] * s : qkv[b + i] * c + qkv[b + i - R / 2] * s;
          }
          expect(got[b + i]).toBeCloseTo(want, 5);
        }
      }
      for (let i = heads * D; i < ld; i++) expect(got[t * ld + i]).toBe(qkv[t * ld + i]);
    }
  });
});

describe('activations', () => {
  const erf = (x: number) => {
    // Abramowitz-Stegun 7.1.26 is too coarse for a reference: integrate instead (Simpson, 2000 steps).
    const n = 2000;
    const h = x / n;
    let s = 0;
    for (let i = 0; i <= n; i++) s += (i === 0 || i === n ? 1 : i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
    return ((2 / Math.sqrt(Math.PI)) * s * h) / 3;
  };
  const refs: Record<keyof typeof CPU_ACTS, (x: number) => number> = {
    silu: (x) => x / (1 + Math.exp(-x)),
    gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
    gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
    relu: (x) => Math.max(0, x),
  };
  it.each(Object.keys(CPU_ACTS) as (keyof typeof CPU_ACTS)[])('gated %s: act(gate) * up; plain in place', (act) => {
    const [T, I] = [3, 21];
    const r = rng(11);
    const u = randoms(T * 2 * I, r, 6);
    const out = cpu.alloc(4 * T * I);
    cpu.k.gatedAct(CPU_ACTS[act], out, I, put(u), 2 * I, T, I);
    const got = getF32(out, T * I);
    for (let t = 0; t < T; t++) for (let i = 0; i < I; i++) expect(got[t * I + i]).toBeCloseTo(refs[act](u[t * 2 * I + i]) * u[t * 2 * I + I + i], 5);
    const p = put(u);
    cpu.k.actInPlace(CPU_ACTS[act], p, u.length);
    getF32(p, u.length).forEach((v, i) => expect(v).toBeCloseTo(refs[act](u[i]), 5));
  });

  it('softcap: cap tanh(x / cap), no overflow', () => {
    const x = Float32Array.from([0, 1, -1, 30, -30, 1e6, -1e6, 5]);
    const p = put(x);
    cpu.k.softcap(p, x.length, 30);
    getF32(p, x.length).forEach((v, i) => expect(v).toBeCloseTo(30 * Math.tanh(x[i] / 30), 5));
  });
});

describe('pagedAttention', () => {
  it.each([
    [4, 4, 16, 0, 0],
    [8, 2, 8, 0, 0], // GQA
    [4, 1, 12, 5, 0], // MQA, sliding window, D not a multiple of 4
    [2, 2, 16, 0, 20], // soft-capped scores
    [6, 2, 64, 0, 0], // the values' sums 32 dimensions at a time in registers, keys 4 at a time
    [3, 1, 40, 6, 0], // 32 in registers and a rest of 8, sliding window
    [2, 1, 32, 0, 20], // soft-capped, D = 32
  ])('nH %i, nKv %i, D %i, window %i, softcap %i: softmax(q k^T scale) v over the paged cache', (nH, nKv, D, window, cap) => {
    const bs = 4;
    const numBlocks = 16;
    const r = rng(nH * 100 + D);
    const kc = randoms(numBlocks * bs * nKv * D, r);
    const vc = randoms(numBlocks * bs * nKv * D, r);
    // Two sequences with scattered block tables; queries at various positions.
    const tables = Int32Array.from([5, 2, 9, 0, 14, 3, 7, 1, 11, 6]); // [2, 5]
    const maxBlocks = 5;
    const seqIdx = Int32Array.from([0, 0, 1, 1, 1]);
    const positions = Int32Array.from([0, 13, 2, 17, 19]);
    const T = positions.length;
    const ldq = (nH + 2 * nKv) * D;
    const qkv = randoms(T * ldq, r);
    const scale = 1 / Math.sqrt(D);
    const out = cpu.alloc(4 * T * nH * D);
    cpu.k.pagedAttention(out, put(qkv), ldq, put(kc), put(vc), put(tables), maxBlocks, put(seqIdx), put(positions), T, nH, nKv, D, bs, scale, cap, window, cpu.alloc(4 * 64));
    const got = getF32(out, T * nH * D);
    for (let t = 0; t < T; t++) {
      const pos = positions[t];
      const lo = window > 0 ? Math.max(0, pos + 1 - window) : 0;
      for (let h = 0; h < nH; h++) {
        const kvh = Math.floor(h / (nH / nKv));
        const at = (j: number) => ((tables[seqIdx[t] * maxBlocks + Math.floor(j / bs)] * bs + (j % bs)) * nKv + kvh) * D;
        const s: number[] = [];
        for (let j = lo; j <= pos; j++) {
          let d = 0;
          for (let i = 0; i < D; i++) d += qkv[t * ldq + h * D + i] * kc[at(j) + i];
          d *= scale;
          s.push(cap ? cap * Math.tanh(d / cap) : d);
        }
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let i = 0; i < D; i++) {
          let o = 0;
          for (let j = lo; j <= pos; j++) o += (e[j - lo] / sum) * vc[at(j) + i];
          expect(got[(t * nH + h) * D + i]).toBeCloseTo(o, 5);
        }
      }
    }
  });
});
