/**
 * cpu.wasm's 8-bit-activation matmul (assembly/cpu/linear-q8.ts) against an f64 reference of the same math:
 * quantizeActs gives exactly the reference's blocks (llama.cpp's q8_0 and q8_K activations), and linearQ8, through the facade (CpuKernels.linear: quantize once, then the integer GEMV or GEMM),
 * matches sum_b dx[b] sum_k w[k] q[k] in f64 over the dequantized weights, up to the f32 rounding of the block
 * sums, for every quantized format: ragged rows, tokens and strides, accumulation, and on 3 threads. q4_0 and
 * iq4_nl weights are read in groups of 4 rows (CpuKernels.packRows): their layout, and every row count around it;
 * packRows gives every byte of a reference of that layout, in the single-threaded and the shared-memory builds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeCpuWorkers } from '../../bindings/node/cpu-workers.js';
import { actBytes, actRowBytes, CPU_FORMATS, loadCpuKernels, type CpuFormat, type CpuKernels } from '../../src/cpu/cpu-wasm.js';
import { cpuRowBytes } from '../../src/cpu/cpu-weights.js';
import { dequantizeRows, quantizeRows } from '../../src/layers/quant/index.js';
import { randoms, rng } from '../helpers/random.js';

/** Rounds to the nearest integer, ties to even (f32x4.nearest). */
function nearestEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
}

/**
 * The reference 8-bit blocks of rows x [T, ldx] (K values each): q, d and d * sum(q) per block of 32, as llama.cpp
 * quantizes activations: q8_0 (d = max|x| / 127, q = x * (127 / max|x|) rounded) or, `wide`, q8_K (per 256: m the
 * first value of largest |x|, s = -127 / m, q = x * s rounded, d = 1 / s); ties to even, products in f32.
 */
function quantizeRef(x: Float32Array, T: number, ldx: number, K: number, wide = false) {
  const nb = K / 32;
  const q = new Int16Array(T * K);
  const d = new Float32Array(T * nb);
  const s = new Float32Array(T * nb);
  for (let t = 0; t < T; t++) {
    let db = 0;
    let id = 0;
    for (let b = 0; b < nb; b++) {
      const at = t * ldx + b * 32;
      if (!wide || b % 8 === 0) {
        const n = wide ? 256 : 32;
        let amax = 0;
        let m = 0;
        for (let j = 0; j < n; j++) if (Math.abs(x[at + j]) > amax) [amax, m] = [Math.abs(x[at + j]), x[at + j]];
        id = amax === 0 ? 0 : wide ? Math.fround(-127 / m) : Math.fround(127 / amax);
        db = amax === 0 ? 0 : wide ? Math.fround(1 / id) : Math.fround(amax / 127);
      }
      let sum = 0;
      for (let j = 0; j < 32; j++) sum += q[t * K + b * 32 + j] = nearestEven(Math.fround(x[at + j] * id));
      d[t * nb + b] = db;
      s[t * nb + b] = Math.fround(db * sum);
    }
  }
  return { q, d, s };
}

/**
 * q (K values) in quantizeActs' order: per block of 32, the even elements of 0..15, the odd ones, the even ones of
 * 16..31, the odd ones (so that the kernels widen 8 int8 weights of a block with one or two shifts).
 */
function actOrder(q: Int16Array): Int16Array {
  const out = new Int16Array(q.length);
  for (let b = 0; b < q.length; b += 32)
    for (let c = 0; c < 4; c++) for (let i = 0; i < 8; i++) out[b + 8 * c + i] = q[b + 16 * (c >> 1) + 2 * i + (c & 1)];
  return out;
}

/** The CPU's quantized weight formats (all but f32 / f16). */
type CpuQuant = Exclude<CpuFormat, 'f32' | 'f16'>;
const QUANTIZED = (Object.keys(CPU_FORMATS) as CpuFormat[]).filter((f): f is CpuQuant => f !== 'f32' && f !== 'f16');
const BLOCK: Record<string, number> = { q8_0: 32, q4_0: 32, iq4_nl: 32, q4_k: 256, iq4_xs: 256 };
/** The 256-blocks formats take q8_K activations (a scale per 256), as in llama.cpp. */
const wideActs = (f: CpuQuant) => BLOCK[f] === 256;

/** Copies data into fresh wasm memory; returns its pointer. */
function put(cpu: CpuKernels, data: Float32Array | Uint8Array): number {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const p = cpu.alloc(bytes.byteLength);
  cpu.u8().set(bytes, p);
  return p;
}

/**
 * Runs out (+)= x W^T through cpu.linear on a random case and checks it against the f64 reference: within
 * 2^-22 (nb + 4) of sum |terms| (the f32 roundings of the scale products and of the sums over nb blocks).
 */
function check(cpu: CpuKernels, format: CpuQuant, T: number, N: number, K: number, seed: number): void {
  const r = rng(seed);
  const wf = randoms(N * K, r);
  const bytes = quantizeRows(format, wf, N, K);
  const wv = dequantizeRows(format, bytes, N, K);
  const ldx = K + 32; // strided tokens
  const x = randoms(T * ldx, r, 3);
  for (let k = 0; k < 32; k++) x[k] = 0; // an all-zero block: d = 0
  const ref = quantizeRef(x, T, ldx, K, wideActs(format));
  const ldo = N + 3; // a wider output: the matrix writes its own columns only
  const init = randoms(T * ldo, r);
  const w = put(cpu, bytes);
  cpu.packRows(CPU_FORMATS[format], w, cpuRowBytes(format, K), N);
  const xp = put(cpu, x);
  const panel = cpu.alloc(16 * K);
  const acts = cpu.alloc(actBytes(T, K));
  const nb = K / 32;
  for (const acc of [false, true]) {
    const out = put(cpu, init);
    cpu.linear(CPU_FORMATS[format], out, ldo, xp, ldx, w, cpuRowBytes(format, K), T, N, K, acc, panel, acts);
    const got = cpu.f32().slice(out / 4, out / 4 + T * ldo);
    for (let t = 0; t < T; t++)
      for (let n = 0; n < ldo; n++) {
        const i = t * ldo + n;
        if (n >= N) {
          expect(got[i]).toBe(init[i]);
          continue;
        }
        let want = acc ? init[i] : 0;
        let mag = Math.abs(want);
        for (let b = 0; b < nb; b++) {
          let s = 0;
          let a = 0;
          for (let k = b * 32; k < b * 32 + 32; k++) {
            s += wv[n * K + k] * ref.q[t * K + k];
            a += Math.abs(wv[n * K + k] * ref.q[t * K + k]);
          }
          want += ref.d[t * nb + b] * s;
          mag += Math.abs(ref.d[t * nb + b]) * a; // (q8_K scales may be negative)
        }
        const tol = 2 ** -22 * (nb + 4) * mag + 1e-30;
        if (!(Math.abs(got[i] - want) <= tol)) expect.fail(`${format} T ${T} N ${N} K ${K} acc ${acc}: out[${t}, ${n}] = ${got[i]}, want ${want} (tol ${tol})`);
      }
  }
}

describe('8-bit activations', () => {
  let cpu: CpuKernels;
  beforeAll(async () => {
    cpu = await loadCpuKernels();
  });

  it.each([false, true])('quantizeActs gives the reference blocks exactly (q8_K: %s; zero blocks, strided rows)', (wide) => {
    const [T, K, ldx] = [3, 512, 517];
    const x = randoms(T * ldx, rng(11), 5);
    for (let k = 32; k < 64; k++) x[ldx + k] = 0;
    for (let k = 256; k < 512; k++) x[2 * ldx + k] = 0;
    for (let k = 0; k < 32; k++) x[k] = k === 5 ? -1e-30 : 0; // a tiny block maximum: the scales stay finite
    const ref = quantizeRef(x, T, ldx, K, wide);
    const ldq = actRowBytes(K);
    const xq = cpu.alloc(T * ldq);
    cpu.k.quantizeActs(xq, put(cpu, x), ldx, T, K, CPU_FORMATS[wide ? 'q4_k' : 'q8_0']);
    const nb = K / 32;
    for (let t = 0; t < T; t++) {
      const row = xq + t * ldq;
      expect(new Int16Array(cpu.u8().buffer, row, K)).toEqual(actOrder(ref.q.subarray(t * K, (t + 1) * K)));
      expect(cpu.f32().slice((row + 2 * K) / 4, (row + 2 * K) / 4 + nb)).toEqual(ref.d.subarray(t * nb, (t + 1) * nb));
      expect(cpu.f32().slice((row + 2 * K) / 4 + nb, (row + 2 * K) / 4 + 2 * nb)).toEqual(ref.s.subarray(t * nb, (t + 1) * nb));
    }
    if (!wide) expect(ref.q[5]).toBe(-127);
    expect([...ref.q.subarray(2 * K + 256, 3 * K)].every((v) => v === 0)).toBe(true);
  });

  // GEMV (T < 4), GEMM with even and odd token counts, ragged rows (N % 4 != 0), the widest block counts.
  const shapes: [T: number, N: number, K: number][] = [
    [1, 13, 256],
    [2, 8, 512],
    [3, 5, 256],
    [4, 8, 256],
    [5, 9, 768],
    [7, 11, 512],
    [16, 4, 256],
  ];
  describe.each(QUANTIZED)('%s', (format) => {
    it.each(shapes)('T %i, N %i, K %i matches the f64 reference (and adds into out)', (T, N, K) => check(cpu, format, T, N, K, T * 1000 + N * 10 + K));
  });

  it.each(QUANTIZED.filter((f) => BLOCK[f] === 32))('%s: K of one and three blocks of 32', (format) => {
    for (const [T, N, K] of [[1, 3, 32], [6, 7, 96]]) check(cpu, format, T, N, K, K + N);
  });

  it('reads a subnormal q8_0 block scale exactly', () => {
    // Dummy weights of +-1e-3 quantize to d ~ 8e-6: an f16 subnormal.
    const block = new Uint8Array(34);
    block[0] = 0x85; // d = 0x0085: 133 * 2^-24
    for (let j = 0; j < 32; j++) block[2 + j] = (j * 9 - 100) & 0xff;
    const x = randoms(32, rng(5));
    const o = cpu.alloc(4);
    cpu.linear(CPU_FORMATS.q8_0, o, 1, put(cpu, x), 32, put(cpu, block), 34, 1, 1, 32, false, 0, cpu.alloc(actRowBytes(32)));
    const { q, d } = quantizeRef(x, 1, 32, 32);
    const want = q.reduce((a, v, j) => a + v * d[0] * 133 * 2 ** -24 * (((j * 9 - 100) << 24) >> 24), 0);
    expect(Math.abs(cpu.f32()[o / 4] - want)).toBeLessThan(1e-6 * Math.abs(want)); // read as 0 or a normal: far off
  });

  // The 4-row GEMV turns 4 f16 block scales to f32 at once (shift and mask in i32 lanes, times 2^112): every class.
  it.each(['q4_0', 'iq4_nl'] as const)('%s: the 4-row GEMV reads subnormal, negative, zero and extreme block scales exactly', (format) => {
    const scales = [0x0085, 0x8001, 0x3c00, 0xbc00, 0x0000, 0x7bff, 0x0400, 0x83ff]; // rows 0-3, 2 blocks each
    const [N, K] = [4, 64];
    const r = rng(17);
    const bytes = new Uint8Array(N * 2 * 18);
    for (let i = 0; i < N * 2; i++) {
      bytes[18 * i] = scales[i] & 0xff;
      bytes[18 * i + 1] = scales[i] >> 8;
      for (let j = 2; j < 18; j++) bytes[18 * i + j] = Math.floor((r() + 1) * 128) & 0xff;
    }
    const half = (h: number) => (h & 0x8000 ? -1 : 1) * ((h & 0x7c00) === 0 ? (h & 0x3ff) * 2 ** -24 : 2 ** (((h >> 10) & 31) - 15) * (1 + (h & 0x3ff) / 1024));
    const kv = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
    const x = randoms(K, r, 2);
    const { q, d } = quantizeRef(x, 1, K, K);
    const o = cpu.alloc(16);
    const w = put(cpu, bytes);
    cpu.packRows(CPU_FORMATS[format], w, 36, N);
    cpu.linear(CPU_FORMATS[format], o, N, put(cpu, x), K, w, 36, 1, N, K, false, cpu.alloc(16 * K), cpu.alloc(actBytes(1, K)));
    for (let n = 0; n < N; n++) {
      let want = 0;
      let mag = 0;
      for (let b = 0; b < 2; b++) {
        const p = 18 * (2 * n + b);
        let s = 0;
        for (let j = 0; j < 32; j++) {
          const nib = j < 16 ? bytes[p + 2 + j] & 15 : bytes[p + 2 + j - 16] >> 4;
          s += (format === 'q4_0' ? nib - 8 : kv[nib]) * q[32 * b + j];
        }
        want += half(scales[2 * n + b]) * d[b] * s;
        mag += Math.abs(half(scales[2 * n + b]) * d[b] * s);
      }
      expect(Math.abs(cpu.f32()[o / 4 + n] - want)).toBeLessThanOrEqual(2 ** -22 * 6 * mag);
    }
  });
});

describe('q4_0 and iq4_nl in groups of 4 rows', () => {
  let cpu: CpuKernels;
  beforeAll(async () => {
    cpu = await loadCpuKernels();
  });

  it.each(['q4_0', 'iq4_nl'] as const)('%s: packRows interleaves each 4 rows block by block (d x 4, nibbles x 4; q4_0 XOR 0x88), the last N %% 4 rows kept', (format) => {
    const [N, K] = [7, 96];
    const rb = cpuRowBytes(format, K);
    const bytes = quantizeRows(format, randoms(N * K, rng(3)), N, K);
    const w = put(cpu, bytes);
    cpu.packRows(CPU_FORMATS[format], w, rb, N);
    const got = cpu.u8().slice(w, w + N * rb);
    const want = new Uint8Array(N * rb);
    for (let b = 0; b < K / 32; b++)
      for (let r = 0; r < 4; r++) {
        want.set(bytes.subarray(r * rb + 18 * b, r * rb + 18 * b + 2), 72 * b + 2 * r);
        want.set(bytes.subarray(r * rb + 18 * b + 2, r * rb + 18 * b + 18).map((v) => (format === 'q4_0' ? v ^ 0x88 : v)), 72 * b + 8 + 16 * r);
      }
    want.set(bytes.subarray(4 * rb), 4 * rb);
    expect(got).toEqual(want);
  });

  // Every row count from 1 (no group) to 9 (two groups and one row), one and three blocks, the GEMV (T < 4) and
  // the GEMM with even and odd token counts.
  it.each(['q4_0', 'iq4_nl'] as const)('%s: N 1..9, K 32 and 96, T 1..5 and 8 match the f64 reference over the dequantized rows', (format) => {
    for (let N = 1; N <= 9; N++) for (const K of [32, 96]) for (const T of [1, 2, 3, 4, 5, 8]) check(cpu, format, T, N, K, 100 * N + 10 * T + K);
  });
});

/**
 * The layout of assembly/cpu/blocks.ts (GROUP_BLOCK), written out byte by byte from the file's rows (rb bytes each,
 * 18-byte blocks): group i's block b is rows 4i .. 4i + 3's f16 d, then their 16 nibble bytes (q4_0's XOR 0x88);
 * the last N % 4 rows copied as they are.
 */
function groupedRef(format: 'q4_0' | 'iq4_nl', src: Uint8Array, rb: number, N: number): Uint8Array {
  const out = new Uint8Array(N * rb);
  const flip = format === 'q4_0' ? 0x88 : 0;
  const groups = Math.floor(N / 4);
  for (let i = 0; i < groups; i++)
    for (let b = 0; b < rb / 18; b++)
      for (let r = 0; r < 4; r++) {
        const from = (4 * i + r) * rb + 18 * b;
        const to = 4 * i * rb + 72 * b;
        out[to + 2 * r] = src[from];
        out[to + 2 * r + 1] = src[from + 1];
        for (let j = 0; j < 16; j++) out[to + 8 + 16 * r + j] = src[from + 2 + j] ^ flip;
      }
  for (let n = 4 * groups; n < N; n++) for (let j = 0; j < rb; j++) out[n * rb + j] = src[n * rb + j];
  return out;
}

describe('packRows (assembly/cpu/pack.ts) against a reference of the layout', () => {
  const builds: [string, () => Promise<CpuKernels>][] = [
    ['cpu.wasm', () => loadCpuKernels({ relaxed: false })],
    ['cpu-mt.wasm (shared memory)', () => loadCpuKernels({ relaxed: false, threads: 2, host: nodeCpuWorkers, maxK: 64 })],
  ];
  // Random bytes (no f16 is decoded): no group, one, many (N 1027: 256 groups and 3 rows), and the widest rows the
  // scratch takes (K 32768: one group of 72 KiB).
  const cases = [
    [1, 32], [3, 96], [4, 32], [6, 64], [7, 576], [9, 1536], [1027, 576], [402, 160], [5, 32768],
  ] as const;
  it.each(builds)('%s: every byte as the reference, q4_0 and iq4_nl, N 1 .. 1027 and K 32 .. 32768; the padding around untouched', async (_name, load) => {
    const cpu = await load();
    try {
      for (const format of ['q4_0', 'iq4_nl'] as const)
        for (const [N, K] of cases) {
          const rb = cpuRowBytes(format, K);
          const r = rng(N * 7919 + K + (format === 'q4_0' ? 0 : 1));
          const src = Uint8Array.from({ length: N * rb + 32 }, () => Math.floor((r() + 1) * 128));
          const p = put(cpu, src);
          cpu.packRows(CPU_FORMATS[format], p + 16, rb, N);
          const want = src.slice();
          want.set(groupedRef(format, src.subarray(16, 16 + N * rb), rb, N), 16);
          const got = cpu.u8().subarray(p, p + src.length);
          expect(got.findIndex((v, i) => v !== want[i]), `${format} N ${N} K ${K}: first byte off`).toBe(-1);
        }
    } finally {
      cpu.dispose();
    }
  });

  it('leaves the other formats as they are, and refuses rows wider than its scratch (K > 32768)', async () => {
    const cpu = await loadCpuKernels({ relaxed: false });
    const r = rng(5);
    const src = Uint8Array.from({ length: 8 * 34 * 3 }, () => Math.floor((r() + 1) * 128));
    const p = put(cpu, src);
    for (const format of ['f32', 'f16', 'q8_0', 'q4_k', 'iq4_xs'] as const) cpu.packRows(CPU_FORMATS[format], p, 34 * 3, 8);
    expect(cpu.u8().slice(p, p + src.length)).toEqual(src);
    const wide = cpuRowBytes('q4_0', 32768 + 32);
    const w = cpu.alloc(4 * wide);
    expect(() => cpu.packRows(CPU_FORMATS.q4_0, w, wide, 4)).toThrow(RangeError);
  });
});

describe('8-bit activations on 3 threads', () => {
  let multi: CpuKernels;
  beforeAll(async () => {
    multi = await loadCpuKernels({ threads: 3, host: nodeCpuWorkers, maxK: 2304 });
    expect(multi.threads?.count).toBe(3);
  });
  afterAll(() => multi?.dispose());

  // N K >= 2^19, so the rows split 84 / 84 / 82 (GEMV) or run as panels on each thread (GEMM, odd T).
  it.each(QUANTIZED)('%s matches the f64 reference', (format) => {
    for (const T of [1, 5]) check(multi, format, T, 250, 2304, T + 7);
  });
});
