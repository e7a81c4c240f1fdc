/**
 * build/cpu.wasm (AssemblyScript, assembly/cpu/): the CPU backend's kernels, in a module and memory of its own (the
 * model's weights and KV cache live there, beside nothing else), from bytes the bundler embeds, as core.wasm is
 * (src/wasm/core.ts). Multi-threaded: build/cpu-mt.wasm, the same kernels over an imported shared memory, which
 * workers instantiate too (cpu-threads.ts). Each also built with relaxed SIMD (build/cpu-relaxed.wasm,
 * cpu-mt-relaxed.wasm: q4_0's integer dots 16 multiply-adds per instruction, the same outputs bit for bit), loaded
 * where the engine computes relaxed SIMD's dot as the standard says and faster (relaxedSimdFaster). Pointers are byte offsets into `memory`; views are taken after every
 * allocation (growing memory detaches the old ones). Its allocator (assembly/cpu/heap.ts) never frees and grows
 * memory by exactly what is asked: a runner reserves its planned buffers (cpuBlockBytes each) in one grow, so the
 * memory ends at their sum, rounded up to a 64 KiB page.
 *
 * @example
 *   const cpu = await loadCpuKernels();
 *   const p = cpu.alloc(64); cpu.f32().fill(1, p / 4, p / 4 + 16);
 */
import wasmBytes from '../../build/cpu.wasm';
import mtWasmBytes from '../../build/cpu-mt.wasm';
import relaxedWasmBytes from '../../build/cpu-relaxed.wasm';
import mtRelaxedWasmBytes from '../../build/cpu-mt-relaxed.wasm';
import { abortImport, WasmHeap, type HeapExports } from '../wasm/heap.js';
import { instantiateWasm } from '../wasm/modules.js';
import { CPU_OPS, CpuThreads, MIN_SPLIT_ATTENTION, MIN_SPLIT_GATED, type CpuOp, type CpuWorkerHost } from './cpu-threads.js';

/** A kernel export as the threads call it. */
type KernelFn = (...a: readonly (number | boolean)[]) => void;

/** Storage formats of a weight matrix, as assembly/cpu/linear.ts numbers them. */
export const CPU_FORMATS = { f32: 0, f16: 1, q8_0: 2, q4_0: 3, q4_k: 4, iq4_nl: 5, iq4_xs: 6 } as const;
export type CpuFormat = keyof typeof CPU_FORMATS;

/**
 * Bytes of one token's 8-bit activations over K inputs (assembly/cpu/linear-q8.ts: i16 [K], f32 [K / 32] twice, then
 * the relaxed SIMD build's blocks, 40 bytes per 32).
 */
export const actRowBytes = (K: number): number => 2 * K + K / 4 + (40 * K) / 32;

/**
 * Bytes of T tokens' 8-bit activations over K inputs: T rows of actRowBytes, then (relaxed SIMD builds, T >= 4) the
 * same blocks of 4 tokens at a time interleaved for the relaxed GEMMs, 160 bytes per 4 tokens and 32 inputs.
 */
export const actBytes = (T: number, K: number): number => T * actRowBytes(K) + Math.ceil(T / 4) * 5 * K;

/** Activations, as assembly/cpu/ops.ts numbers them. */
export const CPU_ACTS = { silu: 0, gelu: 1, gelu_tanh: 2, relu: 3 } as const;

/** The raw exports (assembly/cpu/index.ts). */
export interface CpuExports extends HeapExports {
  /** Grows memory so that `bytes` more can be allocated without growing again (assembly/cpu/heap.ts). */
  reserve(bytes: number): boolean;
  heapTop(): number;
  heapBase(): number;
  linear(fmt: number, out: number, ldo: number, x: number, ldx: number, w: number, rowBytes: number, T: number, N: number, K: number, acc: boolean, panel: number): void;
  linearQ8(fmt: number, out: number, ldo: number, xq: number, ldq: number, w: number, rowBytes: number, T: number, N: number, K: number, acc: boolean, panel: number): void;
  quantizeActs(xq: number, x: number, ldx: number, T: number, K: number, fmt: number): void;
  /** q4_0 / iq4_nl rows in place into groups of 4 (assembly/cpu/pack.ts); false when a group exceeds the scratch. */
  packRows(fmt: number, w: number, rowBytes: number, N: number): boolean;
  dequantRow(fmt: number, out: number, w: number, rowBytes: number, N: number, n: number, K: number): void;
  rmsNorm(out: number, ldo: number, x: number, ldx: number, w: number, rows: number, H: number, eps: number): void;
  layerNorm(out: number, ldo: number, x: number, ldx: number, w: number, b: number, rows: number, H: number, eps: number): void;
  rope(qkv: number, ld: number, positions: number, invFreq: number, T: number, heads: number, D: number, R: number, scaling: number, cs: number): void;
  gatedAct(act: number, out: number, ldo: number, u: number, ldu: number, T: number, I: number): void;
  actInPlace(act: number, x: number, n: number): void;
  addBias(out: number, ldo: number, b: number, T: number, N: number): void;
  axpby(y: number, a: number, x: number, b: number, n: number): void;
  softcap(x: number, n: number, cap: number): void;
  /** Each token's new key and value into its cache slot (assembly/cpu/ops.ts). */
  writeKv(kCache: number, vCache: number, qkv: number, ldq: number, kOff: number, n: number, slots: number, T: number): void;
  pagedAttention(
    out: number, qkv: number, ldq: number, kCache: number, vCache: number, tables: number, maxBlocks: number, seqIdx: number, positions: number,
    T: number, nH: number, nKv: number, D: number, blockSize: number, scale: number, cap: number, window: number, scores: number,
  ): void;
}

/** The instantiated module, with allocation that reports out-of-memory as a RangeError and views that follow growth. */
export class CpuKernels extends WasmHeap {
  /** The workers matmuls are split with (null: single-threaded). */
  threads: CpuThreads | null = null;

  constructor(readonly k: CpuExports) {
    super(k, 'cpu.wasm', 16);
  }

  /**
   * Grows memory once for `bytes` more of allocations (the sum of their cpuBlockBytes), so that they then grow
   * nothing; a RangeError when wasm32 or the engine cannot give that much.
   */
  reserve(bytes: number): void {
    if (!(bytes >= 0 && bytes <= 2 ** 32) || !this.k.reserve(bytes)) {
      throw new RangeError(`cpu.wasm: out of memory reserving ${bytes} bytes past the ${this.usedBytes} in use (wasm32 memory holds at most 4 GiB)`);
    }
  }

  /** Bytes of blocks allocated so far (each cpuBlockBytes of its request). */
  get usedBytes(): number {
    return this.k.heapTop() - this.k.heapBase();
  }

  /**
   * out[t, :N] (+)= x[t, :K] W^T (x: f32 [T, ldx]), its rows split across the threads when there are several:
   * f32 / f16 weights by linear (assembly/cpu/linear.ts, f32 products), the quantized formats by quantizing x to
   * 8 bits once (quantizeActs) into `acts` and linearQ8 (integer products; assembly/cpu/linear-q8.ts).
   * Scratch: `panel` of 16 K bytes; `acts` of actBytes(T, K) bytes (quantized formats only).
   */
  linear(fmt: number, out: number, ldo: number, x: number, ldx: number, w: number, rowBytes: number, T: number, N: number, K: number, acc: boolean, panel: number, acts: number): void {
    if (fmt === CPU_FORMATS.f32 || fmt === CPU_FORMATS.f16) return this.split(CPU_OPS.linear, fmt, out, ldo, x, ldx, w, rowBytes, T, N, K, acc, panel);
    // llama.cpp's activation blocks: q8_K (a scale per 256) for the 256-blocks formats, q8_0 (per 32) for the others.
    this.k.quantizeActs(acts, x, ldx, T, K, fmt);
    this.split(CPU_OPS.linearQ8, fmt, out, ldo, acts, actRowBytes(K), w, rowBytes, T, N, K, acc, panel);
  }

  /**
   * pagedAttention (assembly/cpu/ops.ts), its query tokens split across the threads when there are several, each run
   * about the same number of (query, key) pairs (read from `positions`); each worker scores in its own scratch,
   * `scores` is the caller's.
   */
  pagedAttention(
    out: number, qkv: number, ldq: number, kCache: number, vCache: number, tables: number, maxBlocks: number, seqIdx: number, positions: number,
    T: number, nH: number, nKv: number, D: number, blockSize: number, scale: number, cap: number, window: number, scores: number,
  ): void {
    const args = (t0: number, t1: number, scratch: number | null) =>
      [out + 4 * t0 * nH * D, qkv + 4 * t0 * ldq, ldq, kCache, vCache, tables, maxBlocks, seqIdx + 4 * t0, positions + 4 * t0, t1 - t0, nH, nKv, D, blockSize, scale, cap, window, scratch ?? scores] as const;
    if (!this.threads) return this.k.pagedAttention(...args(0, T, null));
    const pos = this.i32().subarray(positions / 4, positions / 4 + T);
    const pairs = (t: number) => (window > 0 ? Math.min(pos[t] + 1, window) : pos[t] + 1) * nH * D;
    this.threads.tokens(CPU_OPS.pagedAttention, this.k.pagedAttention as KernelFn, T, pairs, MIN_SPLIT_ATTENTION, args, `the attention over ${T} tokens`);
  }

  /** gatedAct (assembly/cpu/ops.ts), its tokens split across the threads when there are several. */
  gatedAct(act: number, out: number, ldo: number, u: number, ldu: number, T: number, I: number): void {
    const args = (t0: number, t1: number) => [act, out + 4 * t0 * ldo, ldo, u + 4 * t0 * ldu, ldu, t1 - t0, I] as const;
    if (!this.threads) return this.k.gatedAct(...args(0, T));
    this.threads.tokens(CPU_OPS.gatedAct, this.k.gatedAct as KernelFn, T, () => I, MIN_SPLIT_GATED, args, `a gated activation of ${T} x ${I}`);
  }

  /**
   * Rearranges the N rows at w (rowBytes each: format fmt's blocks as a file holds them), in place, into the layout
   * the kernels read: q4_0 and iq4_nl in groups of 4 rows, each block of the 4 rows' f16 scales then their nibbles
   * (q4_0's XOR 0x88: signed q - 8), as llama.cpp repacks q4_0 for its CPU backend (assembly/cpu/blocks.ts,
   * GROUP_BLOCK; the last N % 4 rows as they are), by assembly/cpu/pack.ts (one group at a time through a static
   * scratch in the module's memory: rows of K up to 32768). The other formats are read as a file holds them.
   */
  packRows(fmt: number, w: number, rowBytes: number, N: number): void {
    if (!this.k.packRows(fmt, w, rowBytes, N)) throw new RangeError(`cpu.wasm: cannot pack rows of ${rowBytes} bytes (K > 32768) into groups of 4`);
  }

  private split(op: CpuOp, fmt: number, out: number, ldo: number, x: number, ldx: number, w: number, rowBytes: number, T: number, N: number, K: number, acc: boolean, panel: number): void {
    if (this.threads) this.threads.linear(op, op === CPU_OPS.linear ? this.k.linear : this.k.linearQ8, fmt, out, ldo, x, ldx, w, rowBytes, T, N, K, acc, panel);
    else (op === CPU_OPS.linear ? this.k.linear : this.k.linearQ8)(fmt, out, ldo, x, ldx, w, rowBytes, T, N, K, acc, panel);
  }

  /** Stops the workers, if any. */
  dispose(): void {
    this.threads?.stop();
    this.threads = null;
  }
}

/** Bytes an allocation of `size` takes in cpu.wasm's memory: at least 16, rounded up to 16 (the alignment). */
export function cpuBlockBytes(size: number): number {
  return Math.ceil(Math.max(size, 16) / 16) * 16;
}

const abort = abortImport('cpu.wasm');

/** wasm32's largest memory, in 64 KiB pages: a shared memory declares its maximum up front (address space only). */
const MAX_PAGES = 65536;

/**
 * A module of one function f(a, b, c) = lane 0 of i32x4.relaxed_dot_i8x16_i7x16_add_s(splat a, splat b, splat c)
 * (assembly: param i32 x3, each i32x4.splat, the dot, i32x4.extract_lane 0).
 */
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x03, 0x02,
  0x01, 0x00, 0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, 0x0a, 0x16, 0x01, 0x14, 0x00, 0x20, 0x00, 0xfd, 0x11, 0x20, 0x01,
  0xfd, 0x11, 0x20, 0x02, 0xfd, 0x11, 0xfd, 0x93, 0x02, 0xfd, 0x1b, 0x00, 0x0b,
]);

let relaxed: Promise<boolean> | null = null;

/**
 * Whether this engine runs relaxed SIMD's i8 dot as the standard's deterministic case says: a known answer, not
 * just validation, because Node 20's V8 compiles it behind --experimental-wasm-relaxed-simd and gets it wrong
 * (twice the products, without the addend). False where wasm cannot be compiled from bytes (workerd).
 */
export function relaxedSimd(): Promise<boolean> {
  relaxed ??= (async () => {
    try {
      if (!WebAssembly.validate(RELAXED_PROBE)) return false;
      const { instance } = await WebAssembly.instantiate(RELAXED_PROBE);
      const f = instance.exports.f as (a: number, b: number, c: number) => number;
      // bytes a = [-5, 7, -128, 127], b = [3, 127, 1, 15]: -15 + 889 - 128 + 1905 + 100.
      return f(0x7f8007fb, 0x0f017f03, 100) === 2751;
    } catch {
      return false;
    }
  })();
  return relaxed;
}

let relaxedFaster: Promise<boolean> | null = null;

/**
 * Whether the relaxed SIMD build is the one to load here: the engine runs it correctly (relaxedSimd) and its q4_0
 * matmuls ran at least 10% faster than the SIMD128 build's on the same inputs (a one-token GEMV and a 16-token GEMM
 * over 256 rows of K = 2048, the two builds' calls interleaved, the best of 24 each: ~50-90 ms, once per process;
 * the outputs are the same, so a close call keeps SIMD128). Engines lower the
 * relaxed dot differently: with it a SmolLM2-135M-shaped q4_0 model ran 20-26% slower on Node 22 (V8 12.4) and
 * 34-50% faster on Node 24 (V8 13.6) and Chromium 156 (bench/cpu-compare, 2026-12-07, an AMD EPYC with AVX-512);
 * this probe's relaxed / SIMD128 times there: 0.95-1.4 on Node 22, 0.58-0.67 on Node 24.
 */
export function relaxedSimdFaster(): Promise<boolean> {
  relaxedFaster ??= (async () => {
    if (!(await relaxedSimd())) return false;
    try {
      const [withRelaxed, without] = await Promise.all([q4MatmulTimer(relaxedWasmBytes), q4MatmulTimer(wasmBytes)]);
      let a = Infinity;
      let b = Infinity;
      for (let i = 0; i < 24; i++) {
        a = Math.min(a, withRelaxed());
        b = Math.min(b, without());
      }
      return a < 0.9 * b;
    } catch {
      return false;
    }
  })();
  return relaxedFaster;
}

/**
 * A fresh single-threaded instance of `bytes` (a build of cpu.wasm) holding a q4_0 weight of 256 rows x 2048 (random
 * nibbles, scales 2^-6) and 16 tokens of activations; the returned function runs a one-token and a 16-token matmul
 * and returns their milliseconds.
 */
async function q4MatmulTimer(bytes: Uint8Array): Promise<() => number> {
  const { instance } = await WebAssembly.instantiate(bytes as Uint8Array<ArrayBuffer>, { env: { abort } });
  const cpu = new CpuKernels(instance.exports as unknown as CpuExports);
  const N = 256;
  const K = 2048;
  const T = 16;
  const fmt = CPU_FORMATS.q4_0;
  const rowBytes = (K / 32) * 18;
  const w = cpu.alloc(N * rowBytes);
  const x = cpu.alloc(T * K * 4);
  const out = cpu.alloc(T * N * 4);
  const acts = cpu.alloc(actBytes(T, K));
  const panel = cpu.alloc(16 * K);
  const u8 = cpu.u8();
  let seed = 1;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  for (let i = 0; i < N * rowBytes; i++) u8[w + i] = i % 18 === 0 ? 0x00 : i % 18 === 1 ? 0x24 : next();
  const f32 = cpu.f32();
  for (let i = 0; i < T * K; i++) f32[x / 4 + i] = next() / 128 - 1;
  cpu.packRows(fmt, w, rowBytes, N);
  return () => {
    const t0 = performance.now();
    cpu.linear(fmt, out, N, x, K, w, rowBytes, 1, N, K, false, panel, acts);
    cpu.linear(fmt, out, N, x, K, w, rowBytes, T, N, K, false, panel, acts);
    return performance.now() - t0;
  };
}

/**
 * A fresh instance of the kernels: each CPU runner has its own (its memory holds one model; disposing the runner lets
 * the whole memory go, which a wasm memory cannot otherwise give back). With `threads` > 1 and a worker host, the
 * shared-memory build and threads - 1 workers (`maxK`: the widest matmul input, for their panels; `maxLen`: the longest
 * context, for their attention scores). `relaxed`: the
 * relaxed SIMD build or not (default: where relaxedSimdFaster()); true where the engine lacks it fails to compile.
 */
export async function loadCpuKernels(o: { threads?: number; host?: CpuWorkerHost | null; maxK?: number; maxLen?: number; relaxed?: boolean } = {}): Promise<CpuKernels> {
  const threads = o.threads ?? 1;
  const relaxed = o.relaxed ?? (await relaxedSimdFaster());
  if (threads > 1 && o.host) {
    const module = await WebAssembly.compile((relaxed ? mtRelaxedWasmBytes : mtWasmBytes) as Uint8Array<ArrayBuffer>);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    const instance = await WebAssembly.instantiate(module, { env: { memory, abort } });
    const cpu = new CpuKernels(instance.exports as unknown as CpuExports);
    cpu.threads = await CpuThreads.start(o.host, module, memory, threads, (n) => cpu.alloc(n), o.maxK ?? 4096, o.maxLen ?? 4096);
    return cpu;
  }
  const exports = await instantiateWasm('cpu', relaxed ? relaxedWasmBytes : wasmBytes, { env: { abort } });
  return new CpuKernels(exports as unknown as CpuExports);
}
