/**
 * The relaxed SIMD builds of the CPU kernels (build/cpu-relaxed.wasm, cpu-mt-relaxed.wasm) against the SIMD128
 * ones (cpu.wasm, cpu-mt.wasm) on the same memory: quantizeActs then linearQ8 over q4_0 weights (random nibbles in
 * the grouped layout, assembly/cpu/blocks.ts, the last N % 4 rows in the file's) and q8_0 ones (random bytes, the
 * relaxed GEMM's from 16 tokens), for ragged T x N x K, with and
 * without accumulation; the outputs must be equal bit for bit; and packRows, the same bytes in every build. Plain
 * JavaScript with no imports, so that an engine with relaxed SIMD runs it where the test runner's cannot (Node 20):
 * relaxed.test.ts runs it in process, or with Deno as `deno run --allow-read test/cpu/relaxed-builds.mjs`, which
 * prints the mismatches as JSON.
 */

const FMT_Q8_0 = 2;
const FMT_Q4_0 = 3;
const FMT_IQ4_NL = 5;
/** Bytes of one token's quantized activations, and of T tokens' (src/cpu/cpu-wasm.ts's actRowBytes, actBytes). */
const actRowBytes = (K) => 2 * K + K / 4 + (40 * K) / 32;
const actBytes = (T, K) => T * actRowBytes(K) + Math.ceil(T / 4) * 5 * K;

/** A linear congruential generator: uniform u32s from a seed. */
function lcg(seed) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

/** q4_0 weights of N rows x K in the kernels' layout: groups of 4 rows (72-byte blocks), then N % 4 file rows. */
function q4Weights(N, K, next) {
  const nb = K / 32;
  const rb = 18 * nb;
  const w = new Uint8Array(N * rb);
  const dv = new DataView(w.buffer);
  // An f16 scale in [2^-7, 2^-5): sign 0, exponent 8..9, a random mantissa; half of them negative.
  const scale = () => ((next() & 1) << 15) | ((8 + (next() & 1)) << 10) | (next() & 0x3ff);
  for (let g = 0; g + 4 <= N; g += 4)
    for (let b = 0; b < nb; b++) {
      const o = g * rb + 72 * b;
      for (let r = 0; r < 4; r++) dv.setUint16(o + 2 * r, scale(), true);
      for (let j = 8; j < 72; j++) w[o + j] = next() & 0xff;
    }
  for (let n = N & ~3; n < N; n++)
    for (let b = 0; b < nb; b++) {
      const o = n * rb + 18 * b;
      dv.setUint16(o, scale(), true);
      for (let j = 2; j < 18; j++) w[o + j] = next() & 0xff;
    }
  return { w, rb };
}

/** q8_0 weights of N rows x K as a file holds them: per block an f16 scale (as q4Weights'), then 32 random bytes. */
function q8Weights(N, K, next) {
  const rb = 34 * (K / 32);
  const w = new Uint8Array(N * rb);
  const dv = new DataView(w.buffer);
  for (let o = 0; o < N * rb; o += 34) {
    dv.setUint16(o, ((next() & 1) << 15) | ((8 + (next() & 1)) << 10) | (next() & 0x3ff), true);
    for (let j = 2; j < 34; j++) w[o + j] = next() & 0xff;
  }
  return { w, rb };
}

/** Instantiates a build: its own memory, or `memory` imported (the -mt builds). */
async function instantiate(bytes, memory) {
  const env = { abort() { throw new Error('aborted'); } };
  if (memory) env.memory = memory;
  const { instance } = await WebAssembly.instantiate(bytes, { env });
  return instance.exports;
}

/**
 * Runs every case on the builds given as [name, bytes, shared] and compares each with the first; returns the
 * mismatches (empty: all equal) and the number of cases.
 */
export async function compareBuilds(builds) {
  const runs = [];
  for (const [name, bytes, shared] of builds) {
    const memory = shared ? new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true }) : undefined;
    runs.push({ name, k: await instantiate(bytes, memory) });
  }
  const mismatches = [];
  let cases = 0;
  for (const fmt of [FMT_Q4_0, FMT_Q8_0])
  for (const K of [32, 96, 160, 544])
    for (const N of [1, 3, 4, 5, 8, 13])
      for (const T of [1, 2, 3, 4, 5, 7, 9, 14, 17])
        for (const acc of [false, true]) {
          cases++;
          const next = lcg(K * 1000003 + N * 1009 + T * 17 + (acc ? 1 : 0) + fmt * 7);
          const { w, rb } = (fmt === FMT_Q4_0 ? q4Weights : q8Weights)(N, K, next);
          const ldx = K + 8;
          const ldo = N + 2;
          const x = Float32Array.from({ length: T * ldx }, () => (next() / 2 ** 32 - 0.5) * 6);
          for (let k = 0; k < 32; k++) x[k] = 0; // an all-zero block (d = 0)
          const init = Float32Array.from({ length: T * ldo }, () => next() / 2 ** 32 - 0.5);
          const outs = runs.map(({ k }) => {
            const put = (data) => {
              const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
              const p = k.alloc(bytes.byteLength);
              new Uint8Array(k.memory.buffer).set(bytes, p);
              return p;
            };
            const wp = put(w);
            const xp = put(x);
            const op = put(init);
            const acts = k.alloc(actBytes(T, K));
            const panel = k.alloc(16 * K + 64);
            k.quantizeActs(acts, xp, ldx, T, K, fmt);
            k.linearQ8(fmt, op, ldo, acts, actRowBytes(K), wp, rb, T, N, K, acc, panel);
            return new Uint32Array(k.memory.buffer.slice(op, op + 4 * T * ldo));
          });
          for (let i = 1; i < outs.length; i++) {
            const at = outs[i].findIndex((v, j) => v !== outs[0][j]);
            if (at >= 0) mismatches.push(`${runs[i].name} vs ${runs[0].name}: fmt ${fmt} T ${T} N ${N} K ${K} acc ${acc}: out[${Math.floor(at / ldo)}, ${at % ldo}] bits ${outs[i][at].toString(16)}, want ${outs[0][at].toString(16)}`);
          }
        }
  // packRows (assembly/cpu/pack.ts) over random bytes, q4_0 and iq4_nl: the same bytes in every build (the
  // single-threaded SIMD128 build's against a reference of the layout in linear-q8.test.ts).
  for (const fmt of [FMT_Q4_0, FMT_IQ4_NL])
    for (const [N, K] of [[5, 96], [13, 544], [403, 160]]) {
      cases++;
      const next = lcg(fmt * 7 + N * 1009 + K);
      const rb = (18 * K) / 32;
      const w = Uint8Array.from({ length: N * rb }, () => next() & 0xff);
      const outs = runs.map(({ k }) => {
        const p = k.alloc(w.byteLength);
        new Uint8Array(k.memory.buffer).set(w, p);
        k.packRows(fmt, p, rb, N);
        return new Uint8Array(k.memory.buffer.slice(p, p + w.byteLength));
      });
      for (let i = 1; i < outs.length; i++) {
        const at = outs[i].findIndex((v, j) => v !== outs[0][j]);
        if (at >= 0) mismatches.push(`${runs[i].name} vs ${runs[0].name}: packRows fmt ${fmt} N ${N} K ${K}: byte ${at} is ${outs[i][at]}, want ${outs[0][at]}`);
      }
    }
  return { mismatches, cases };
}

// Deno, as a script: compare the four builds in build/ and print the result.
if (globalThis.Deno && import.meta.main) {
  const read = (name) => Deno.readFile(new URL(`../../build/${name}.wasm`, import.meta.url));
  const result = await compareBuilds([
    ['cpu', await read('cpu'), false],
    ['cpu-relaxed', await read('cpu-relaxed'), false],
    ['cpu-mt-relaxed', await read('cpu-mt-relaxed'), true],
  ]);
  console.log(JSON.stringify(result));
}
