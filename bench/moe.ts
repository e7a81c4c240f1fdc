/**
 * MoE lab: one sparse MoE layer (moeRoute + fusedMoe, src/ops/moe.ts) of Qwen3-30B-A3B's shape (H 2048, E 128,
 * top-8, I 768, f16 experts: 805 MB gate|up + 403 MB down) at several token counts: the default kernel choice, the
 * GEMV at each tile size (pairs per tile) and rows per row group, and the shared-memory GEMM, printing the time per layer, the expert weight bytes the tiles read per
 * token against the active parameters (K 3 I H 2 bytes per token), the GB/s that makes, and each variant's
 * relative difference from tiles of 1 pair (a check that the GPU agrees with itself across tilings).
 *
 * Run (built by `npm run build` into build/bench, like the other benches):
 *   node build/bench/moe.js [--quick] [--tokens 1,8,64,512] [--tiles 1,2,4,8,16] [--rows 0,4] [--f32] [--tuning cpu|gpu]
 *     [--iters 50]
 * --quick: a small layer (H 256, E 16, top-4, I 128) for CPU WebGPU (lavapipe). --tiles: pairs per tile to time
 * besides the default (moeTileRows, marked *); --rows: weight rows per GEMV row group (MoeOptions.rows; 0: the
 * tuning's gemvRows).
 *
 * Routing: 8 sets of router logits (uniform random, so each token picks K distinct experts about uniformly, as a
 * load-balanced router does), cycled through the timed repetitions, so that repetitions read different experts
 * and do not find them in the L2 cache. "gpu" is the wall time from submit to onSubmittedWorkDone over the
 * repetitions (one submit), "cpu" the recording time per layer.
 */
import { nodeGpu } from '../bindings/node/webgpu.js';
import { GpuContext } from '../src/gpu/context.js';
import { Recorder } from '../src/gpu/recorder.js';
import { createTensor, readTensor, uploadTensor, type Tensor } from '../src/gpu/tensor.js';
import { CPU_TUNING, GPU_TUNING } from '../src/gpu/tuning.js';
import { f16ToF32 } from '../src/gpu/half.js';
import * as ops from '../src/ops/index.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = flag('--quick');
const list = (name: string, fallback: string) => (option(name) ?? fallback).split(',').map(Number);

const [H, E, K, I] = quick ? [256, 16, 4, 128] : [2048, 128, 8, 768];
const dtype = flag('--f32') ? 'f32' : 'f16';
const Ts = list('--tokens', quick ? '1,8,64' : '1,8,64,512');
const tileChoices = list('--tiles', quick ? '1,4' : '1,2,4,8,16');
/** Weight rows per GEMV row group to compare (0: the default, tuning.gemvRows). */
const rowChoices = list('--rows', '0,4').map((r) => (r === 0 ? undefined : (r as 1 | 2 | 4)));
const iters = Number(option('--iters') ?? (quick ? 3 : 50));
const ROUTINGS = 8;

const tuningName = option('--tuning');
const gpu = await nodeGpu();
const ctx = await GpuContext.create(gpu, tuningName ? { tuning: tuningName === 'cpu' ? CPU_TUNING : GPU_TUNING } : {});
console.log(`device: ${ctx.adapterInfo.vendor} ${ctx.adapterInfo.architecture} ${ctx.adapterInfo.description}; subgroups=${ctx.subgroups}`);
console.log(`layer: H ${H}, E ${E}, top-${K}, I ${I}, ${dtype} experts; storage binding ${ctx.limits.maxStorageBufferBindingSize} bytes`);

const gateUp = ops.createExpertWeights(ctx, E, 2 * I, H, dtype, 'gate_up');
const down = ops.createExpertWeights(ctx, E, H, I, dtype, 'down');
ops.fillRandom(ctx, gateUp.weight, 1, -0.05, 0.05);
ops.fillRandom(ctx, down.weight, 2, -0.05, 0.05);
console.log(`expert weights: gate|up in ${gateUp.weight.parts.length} part(s), down in ${down.weight.parts.length}`);
const expertBytes = 3 * I * H * (dtype === 'f16' ? 2 : 4);
const activeBytes = K * expertBytes; // per token

const maxT = Math.max(...Ts);
const xs = new Float32Array(maxT * H);
for (let i = 0; i < xs.length; i++) xs[i] = Math.sin(i * 0.7311);
const x = uploadTensor(ctx, xs, [maxT, H], 'f32');
const out = createTensor(ctx, [maxT, H], 'f32');
let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
const routings = Array.from({ length: ROUTINGS }, () => {
  const logits = new Float32Array(maxT * E).map(() => rand() * 4 - 2);
  return {
    logits: uploadTensor(ctx, logits, [maxT, E], 'f32'),
    ids: createTensor(ctx, [maxT, K], 'u32'),
    weights: createTensor(ctx, [maxT, K], 'f32'),
  };
});

/** One layer for routing r: route, then the experts (the residual add into `out` included). */
/** A kernel choice: the default, or the GEMV with tiles of tileRows pairs and `rows` rows per group, or the GEMM. */
interface Variant {
  kernel?: 'gemv' | 'gemm';
  tileRows?: number;
  rows?: 1 | 2 | 4;
}

function layer(rec: Recorder, r: number, T: number, v: Variant) {
  const { logits, ids, weights } = routings[r % ROUTINGS];
  ops.moeRoute(rec, logits, ids, weights, T, E, K, true);
  ops.fusedMoe(rec, x, ids, weights, gateUp, down, out, T, K, v);
}

/** Pairs per tile of a variant (as fusedMoe picks them). */
function tileRowsOf(T: number, v: Variant): number {
  const tune = ctx.tuning;
  const gemm = v.kernel ? v.kernel === 'gemm' : tune.matmul === 'shared' && (T * K) / E >= 2 * tune.gemmWorkgroup[1];
  return gemm ? 4 * tune.gemmWorkgroup[1] : (v.tileRows ?? ops.moeTileRows(T, K, E));
}

const describe = (T: number, v: Variant) =>
  v.kernel === undefined ? `default (${tileRowsOf(T, v)})` : v.kernel === 'gemm' ? `gemm (${tileRowsOf(T, v)})` : `gemv ${v.tileRows} x${v.rows ?? '-'}`;

async function time(T: number, v: Variant): Promise<{ gpu: number; cpu: number }> {
  const saved = ctx.tuning;
  ctx.tuning = { ...saved, submitEvery: 0 }; // one submit: time the whole queue, not its tail
  try {
    const rec = new Recorder(ctx, 'bench');
    for (let i = 0; i < Math.max(iters, ROUTINGS); i++) layer(rec, i, T, v); // pipelines, bind groups, clocks, every routing
    rec.submit();
    await ctx.finish();
    const c0 = performance.now();
    for (let i = 0; i < iters; i++) layer(rec, i, T, v);
    const c1 = performance.now();
    rec.submit();
    await ctx.finish();
    const c2 = performance.now();
    return { gpu: ((c2 - c1) / iters) * 1e3, cpu: ((c1 - c0) / iters) * 1e3 };
  } finally {
    ctx.tuning = saved;
  }
}

/** Tiles of `tileRows` pairs the routings give at T tokens, on average (from their ids, read back). */
async function meanTiles(T: number, tileRows: number): Promise<{ tiles: number; experts: number }> {
  let tiles = 0;
  let experts = 0;
  for (const r of routings) {
    const ids = (await readTensor(ctx, r.ids, T * K)) as Uint32Array;
    const counts = new Map<number, number>();
    for (const e of ids) counts.set(e, (counts.get(e) ?? 0) + 1);
    for (const c of counts.values()) tiles += Math.ceil(c / tileRows);
    experts += counts.size;
  }
  return { tiles: tiles / ROUTINGS, experts: experts / ROUTINGS };
}

/** out after one layer from zero, for routing 0. */
async function result(T: number, v: Variant): Promise<Float32Array> {
  const rec = new Recorder(ctx, 'check');
  rec.clear(out.buffer);
  layer(rec, 0, T, v);
  rec.submit();
  return (await readTensor(ctx, out, T * H)) as Float32Array;
}

/** Expert e's rows [rows, cols] of `w`, read back as f32. */
async function expertRows(w: ops.ExpertWeights, e: number): Promise<Float32Array> {
  const { weight } = w;
  const part = weight.parts.find((p) => e * w.rows >= p.rowStart && e * w.rows < p.rowStart + p.rows)!;
  const offset = (e * w.rows - part.rowStart) * weight.rowStride * (weight.dtype === 'f16' ? 2 : 4);
  const t: Tensor = { buffer: part.buffer, offset, shape: [w.rows * weight.rowStride], dtype: weight.dtype };
  const raw = await readTensor(ctx, t);
  const all = weight.dtype === 'f16' ? f16ToF32(raw as Uint16Array) : (raw as Float32Array);
  const rows = new Float32Array(w.rows * w.cols);
  for (let r = 0; r < w.rows; r++) rows.set(all.subarray(r * weight.rowStride, r * weight.rowStride + w.cols), r * w.cols);
  return rows;
}

/** The layer for routing 0 in f64 on the CPU from its ids and weights as the GPU routed them (the experts' part). */
async function reference(T: number): Promise<Float64Array> {
  const ids = (await readTensor(ctx, routings[0].ids, T * K)) as Uint32Array;
  const wts = (await readTensor(ctx, routings[0].weights, T * K)) as Float32Array;
  const ref = new Float64Array(T * H);
  const silu = (v: number) => v / (1 + Math.exp(-v));
  for (const e of new Set(ids)) {
    const gu = await expertRows(gateUp, e);
    const dn = await expertRows(down, e);
    for (let i = 0; i < T * K; i++) {
      if (ids[i] !== e) continue;
      const t = Math.floor(i / K);
      const h = new Float64Array(I);
      for (let n = 0; n < I; n++) {
        let g = 0;
        let u = 0;
        for (let j = 0; j < H; j++) {
          g += xs[t * H + j] * gu[n * H + j];
          u += xs[t * H + j] * gu[(I + n) * H + j];
        }
        h[n] = silu(g) * u;
      }
      for (let n = 0; n < H; n++) {
        let y = 0;
        for (let j = 0; j < I; j++) y += h[j] * dn[n * I + j];
        ref[t * H + n] += wts[i] * y;
      }
    }
  }
  return ref;
}

function relError(got: Float32Array, ref: ArrayLike<number>): number {
  let d = 0;
  let r = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isNaN(got[i])) return Infinity;
    d += (got[i] - ref[i]) ** 2;
    r += ref[i] ** 2;
  }
  return Math.sqrt(d / Math.max(r, 1e-30));
}

const col = (v: string | number, width: number) => String(v).padStart(width);
// The GPU against the CPU at the smallest token count (f64, the routing as the GPU chose it).
{
  const T = Math.min(...Ts);
  const err = relError(await result(T, { kernel: 'gemv', tileRows: 1 }), await reference(T));
  console.log(`check: T=${T} against the CPU in f64: relative error ${err.toExponential(1)} ${err < 1e-4 ? 'ok' : 'FAIL'}`);
}
console.log(`\n    T  kernel (pairs/tile)  experts/step  MB read/token  active MB/token    gpu us    cpu us    GB/s   rel.err`);
for (const T of Ts) {
  const ref = await result(T, { kernel: 'gemv', tileRows: 1 });
  const variants: Variant[] = [{}, ...tileChoices.flatMap((tileRows) => rowChoices.map((rows): Variant => ({ kernel: 'gemv', tileRows, rows }))), { kernel: 'gemm' }];
  for (const v of variants) {
    const { gpu: g, cpu } = await time(T, v);
    const { tiles, experts } = await meanTiles(T, tileRowsOf(T, v));
    const bytes = tiles * expertBytes; // each tile reads its expert's gate, up and down rows once
    const err = relError(await result(T, v), ref);
    console.log(
      `${col(T, 5)}  ${describe(T, v).padEnd(20)}  ${col(experts.toFixed(1), 12)}  ${col((bytes / T / 1e6).toFixed(2), 13)}  ` +
        `${col((activeBytes / 1e6).toFixed(2), 15)}  ${col(g.toFixed(1), 8)}  ${col(cpu.toFixed(1), 8)}  ${col((bytes / (g * 1e-6) / 1e9).toFixed(1), 6)}  ${col(err.toExponential(1), 8)}`,
    );
  }
}
console.log('\ngemv A xB: tiles of A pairs, B weight rows per row group (-: tuning.gemvRows); MB read/token: tiles x 3 I H bytes / T, ignoring caches; rel.err: against gemv tiles of 1');
const errors = ctx.takeErrors();
if (errors.length) console.log('GPU errors:', errors);
ctx.destroy();
process.exit(errors.length ? 1 : 0);
