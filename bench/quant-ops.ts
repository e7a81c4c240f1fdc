/**
 * Kernel lab for block-quantized weights (src/layers/quant/kernels.ts): times linear on Llama-3.2-1B's projection
 * shapes in each format at decode and prefill token counts, for each kernel variant (GEMV shapes, the tensor-core
 * path against the register-blocked one), and checks every variant's outputs against a CPU reference (the
 * format's dequantizer, sums in f64) on sampled rows and tokens.
 *
 * Run (built by `npm run build` into build/bench):
 *   node build/bench/quant-ops.js [--formats q4_0,q8_0,q4_k,q6_k] [--tokens 1,4,16,64,512]
 *     [--gemv 128:32:2,64:8:2] [--int8 off,on] [--shapes qkv,gate/up,down] [--quick] [--unsafe]
 *     [--mma-tiles default,4:2:1:2:2,2:4:2:2:1] [--no-tiled]
 * --gemv: tuning.quantGemv variants (threads:lanes:rows[:staged|:direct], the last tuning.quantGemvStage) for T <= 8 (default: the device's tuning, quantGemvOne
 * at T = 1); above 8, 'mma' (subgroup matrices, where the device has them) and 'tiled' (registers). --int8: the
 * GEMV with float activations (off) and/or int8 ones (on: tuning.quantGemvInt8MinTokens = 1, where the device has
 * packed_4x8_integer_dot_product; staged: the staged GEMV quantizing its inputs itself, tuning.quantGemvStageInt8 = 8;
 * default: the device's tuning at each T); with several, the int8 rows print their speedup
 * (off time / on time). --mma-tiles: subgroup-matrix tiles to compare above 8 tokens (tuning.mmaTiles' tile
 * fields joined by ':'; 'default': the device's table; block formats stage their weight, so DIRECT is ignored);
 * --no-tiled drops the register-blocked kernel. --quick: small shapes for CPU WebGPU.
 * The int8 comparison on an H200: node build/bench/quant-ops.js --tokens 1,4,8 --int8 off,on
 *
 * Timing as bench/ops.js: repetitions recorded into one submit, cycling through copies of the weight (>= 256 MB in
 * all) so that each call streams its weight from memory; GB/s counts the weight's bytes once per call.
 */
import { create } from 'webgpu';
import { dawnFlags, nodeGpu } from '../bindings/node/webgpu.js';
import { GpuContext } from '../src/gpu/context.js';
import { Recorder } from '../src/gpu/recorder.js';
import { createTensor, readTensor, uploadTensor } from '../src/gpu/tensor.js';
import type { KernelTuning, MmaTile } from '../src/gpu/tuning.js';
import { blockFormat, dequantizeRows, quantizeRows, quantMethod, rowBytes, type QuantFormat } from '../src/layers/quant/index.js';
import type { QuantLinearWeight } from '../src/layers/quant/method.js';
import { quantGemvShape } from '../src/layers/quant/kernels.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = flag('--quick');
const list = (name: string, dflt: string) => (option(name) ?? dflt).split(',').filter(Boolean);

/** Seconds per repetition of `record`, all repetitions in one submit (after a warm-up). */
async function time(ctx: GpuContext, iters: number, record: (rec: Recorder, i: number) => void): Promise<number> {
  const tuning = ctx.tuning;
  ctx.tuning = { ...tuning, submitEvery: 0 };
  try {
    const rec = new Recorder(ctx, 'bench');
    for (let i = 0; i < Math.min(iters, 30); i++) record(rec, i);
    rec.submit();
    await ctx.finish();
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) record(rec, i);
    rec.submit();
    await ctx.finish();
    return (performance.now() - t0) / iters / 1e3;
  } finally {
    ctx.tuning = tuning;
  }
}

/** A deterministic generator of uniforms in [-1, 1). */
function uniforms(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** Distinct quantized rows, tiled over the weight (quantizing 16384 x 2048 in k-quants on the CPU takes minutes). */
const DISTINCT_ROWS = 61;

async function main() {
  let gpu = await nodeGpu();
  if (flag('--unsafe')) gpu = create(dawnFlags());
  const ctx = await GpuContext.create(gpu);
  console.log(`device: ${ctx.adapterInfo.vendor} ${ctx.adapterInfo.architecture} ${ctx.adapterInfo.description}; subgroup matrices=${ctx.subgroupMatrix}; packed int8 dot=${ctx.packedDot}`);
  const formats = list('--formats', 'q4_0,q8_0,q4_k,q6_k') as QuantFormat[];
  const Ts = list('--tokens', quick ? '1,4,16,64' : '1,4,16,64,512').map(Number);
  // threads:lanes:rows, then :staged or :direct for tuning.quantGemvStage (default: the device's).
  const gemvs = option('--gemv')
    ? list('--gemv', '').map((v) => {
        const [wg, lanes, rows, stage] = v.split(':');
        if (stage !== undefined && stage !== 'staged' && stage !== 'direct') throw new Error(`--gemv ${v}: the fourth field is staged or direct`);
        return { shape: [Number(wg), Number(lanes), Number(rows)] as [number, number, number], stage: stage === undefined ? undefined : stage === 'staged' };
      })
    : [null];
  // null: the device's tuning (int8 activations from quantGemvInt8MinTokens tokens on, where the device has the dot).
  const int8s: ('off' | 'on' | 'staged' | null)[] = option('--int8')
    ? list('--int8', '').map((v) => {
        if (v !== 'on' && v !== 'off' && v !== 'staged') throw new Error(`--int8: '${v}' is none of off, on, staged`);
        return v;
      })
    : [null];
  if (int8s.some((v) => v === 'on' || v === 'staged') && !ctx.packedDot) throw new Error('--int8 on / staged: this device lacks WGSL packed_4x8_integer_dot_product');
  const pick = option('--shapes')?.split(',');
  const mmaTiles = option('--mma-tiles') ? list('--mma-tiles', '').map((t) => (t === 'default' ? null : (t.split(':').map(Number) as MmaTile))) : [null];
  const tiled = !flag('--no-tiled');
  const shapes: [string, number, number, boolean][] = quick
    ? [['square', 512, 512, false], ['gate/up', 2048, 512, true]]
    : [['qkv', 3072, 2048, false], ['gate/up', 16384, 2048, true], ['down', 2048, 8192, false]];
  const base: KernelTuning = ctx.tuning;
  console.log('\n| format | shape | T | kernel | us | GB/s | rel.err | int8 speedup |\n|---|---|---|---|---|---|---|---|');
  for (const format of formats) {
    for (const [label, rows, K, gated] of shapes) {
      if (pick && !pick.includes(label)) continue;
      const fmt = blockFormat(format);
      const raw = rowBytes(format, K);
      const distinct = quantizeRows(format, uniforms(DISTINCT_ROWS * K, 7).map((v) => v * 0.05), DISTINCT_ROWS, K);
      const all = new Uint8Array(rows * raw);
      for (let r = 0; r < rows; r++) all.set(distinct.subarray((r % DISTINCT_ROWS) * raw, (r % DISTINCT_ROWS + 1) * raw), r * raw);
      const method = quantMethod(format);
      const copies: QuantLinearWeight[] = [];
      do {
        const w = method.create(ctx, rows, K, `${label}`) as QuantLinearWeight;
        method.writeBlocks(ctx, w, 0, all);
        copies.push(w);
      } while (!quick && copies.length * all.byteLength < 256e6);
      const deq = dequantizeRows(format, distinct, DISTINCT_ROWS, K);
      const maxT = Math.max(...Ts);
      const xs = uniforms(maxT * K, 11);
      const x = uploadTensor(ctx, xs, [maxT, K], 'f32');
      const N = gated ? rows / 2 : rows;
      const out = createTensor(ctx, [maxT, N], 'f32');
      for (const T of Ts) {
        const variants: [string, KernelTuning][] =
          T <= 8
            ? gemvs.flatMap((g) =>
                int8s.map((choice): [string, KernelTuning] => {
                  const shape: [number, number, number] = g?.shape ?? [...quantGemvShape(base, T, K)];
                  const inStage = choice === 'staged' || (choice === null && ctx.packedDot && base.quantGemvStage && T <= base.quantGemvStageInt8);
                  const stage = inStage || (g?.stage ?? base.quantGemvStage);
                  const int8 = !inStage && (choice === null ? ctx.packedDot && base.quantGemvInt8MinTokens > 0 && T >= base.quantGemvInt8MinTokens : choice === 'on');
                  const tuning = { ...base, quantGemv: shape, quantGemvOne: shape, quantGemvOneLong: shape, quantGemvStage: stage, quantGemvInt8MinTokens: int8 ? 1 : 0, quantGemvStageInt8: inStage ? 8 : 0 };
                  return [`gemv ${shape.join('/')}${inStage ? ' staged int8' : int8 ? ' int8' : stage ? ' staged' : ''}`, tuning];
                }),
              )
            : [
                ...(ctx.subgroupMatrix
                  ? mmaTiles.map((tile): [string, KernelTuning] =>
                      tile ? [`mma ${tile.join('/')}`, { ...base, mmaTiles: [{ maxTokens: Infinity, tile }] }] : ['mma', base],
                    )
                  : []),
                ...(tiled ? [['tiled', { ...base, mmaMinTokens: 0 }] as [string, KernelTuning]] : []),
              ];
        /** Float-activation GEMV times by shape, for the int8 rows' speedup. */
        const floatTimes = new Map<string, number>();
        for (const [name, tuning] of variants) {
          ctx.tuning = tuning;
          const run = (rec: Recorder, i: number) => copies[i % copies.length].method.apply(rec, x, copies[i % copies.length], null, out, T, gated ? { gated: 'silu' } : {});
          const rec0 = new Recorder(ctx, 'check');
          run(rec0, 0);
          rec0.submit();
          const got = (await readTensor(ctx, out, T * N)) as Float32Array;
          // Reference on sampled tokens and output columns.
          let d2 = 0;
          let r2 = 0;
          const tokens = [...new Set([0, T >> 1, T - 1])];
          for (const t of tokens) {
            for (let s = 0; s < 97; s++) {
              const n = Math.floor((s * N) / 97);
              const dot = (row: number) => {
                let acc = 0;
                const o = (row % DISTINCT_ROWS) * K;
                for (let k = 0; k < K; k++) acc += deq[o + k] * xs[t * K + k];
                return acc;
              };
              let ref = dot(n);
              if (gated) ref = (ref / (1 + Math.exp(-ref))) * dot(N + n);
              d2 += (got[t * N + n] - ref) ** 2;
              r2 += ref * ref;
            }
          }
          const err = Math.sqrt(d2 / Math.max(r2, 1e-30));
          const iters = quick ? 5 : Math.max(20, Math.min(400, Math.round(2e5 / T)));
          const s = await time(ctx, iters, run);
          const bytes = rows * (fmt.blockBytes * K) / fmt.blockElems;
          const shapeName = name.replace(/( staged)? int8$/, '').replace(/ staged$/, '');
          if (!name.endsWith(' int8')) floatTimes.set(shapeName, s);
          const off = floatTimes.get(shapeName);
          const speedup = name.endsWith(' int8') && off ? `${(off / s).toFixed(2)}x` : '';
          console.log(`| ${format} | ${label} ${rows}x${K} | ${T} | ${name} | ${(s * 1e6).toFixed(1)} | ${(bytes / s / 1e9).toFixed(0)} | ${err.toExponential(1)} | ${speedup} |`);
        }
      }
      ctx.tuning = base;
      for (const w of copies) w.method.destroy(w);
      x.buffer.destroy();
      out.buffer.destroy();
    }
  }
  const errors = ctx.takeErrors();
  if (errors.length) console.log('GPU errors:', errors);
  ctx.destroy();
}

await main();
