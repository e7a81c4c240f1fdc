/** The paged KV cache: writing this step's keys and values, and paged attention over them. */
import { paramsStruct } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, type Tensor } from '../gpu/tensor.js';
import threadLib from '../../shaders/lib/thread.wgsl';
import attentionLib from '../../shaders/lib/paged_attention.wgsl';
import softcapLib from '../../shaders/lib/softcap.wgsl';
import attentionSource from '../../shaders/paged_attention.wgsl';
import attentionSubgroupSource from '../../shaders/paged_attention.subgroup.wgsl';
import attentionTiledSource from '../../shaders/paged_attention.tiled.wgsl';
import combineSource from '../../shaders/paged_attention.combine.wgsl';
import cacheSource from '../../shaders/cache_kv.wgsl';
import ropeLib from '../../shaders/lib/rope.wgsl';
import ropeCacheSource from '../../shaders/rope_cache_kv.wgsl';
import { expectTensor, grid, isPowerOfTwo, wholeBuffer } from './common.js';
import type { SplitSums } from './linear.js';

/** Layout of a fused qkv activation [T, (nH + 2 nKv) D]: all q heads, then k heads, then v heads. */
export interface QkvLayout {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

const CACHE_WG = 256;

/** cache_kv.wgsl: T tokens, the layout. */
const CACHE_PARAMS = paramsStruct({ T: 'u32', nH: 'u32', nKv: 'u32', D: 'u32' });
/**
 * rope_cache_kv.wgsl: T tokens, the layout, half = R / 2 rotary pairs, the cos / sin scaling; with split sums, the
 * K splits in part and hasBias (0 / 1).
 */
const ROPE_CACHE_PARAMS = paramsStruct({ T: 'u32', nH: 'u32', nKv: 'u32', D: 'u32', half: 'u32', scaling: 'f32', splits: 'u32', hasBias: 'u32' });
/**
 * lib/paged_attention.wgsl (all three attention kernels): T tokens, the layout, qkv's row stride, the cache's block
 * size and block table width, the window (0: none), the softmax scale, groupsPerKv (workgroups per kv head:
 * ceil(G / GT)), splits (pieces of the key range; 1: write out directly), partLen (keys per piece when splits > 1),
 * softcap (> 0: scores soft-capped at it).
 */
const ATTENTION_PARAMS = paramsStruct({
  T: 'u32',
  nH: 'u32',
  nKv: 'u32',
  D: 'u32',
  qkvStride: 'u32',
  blockSize: 'u32',
  maxBlocksPerSeq: 'u32',
  window: 'u32',
  scale: 'f32',
  groupsPerKv: 'u32',
  splits: 'u32',
  partLen: 'u32',
  softcap: 'f32',
});
/** paged_attention.combine.wgsl: T tokens of nH heads of D, the pieces per head. */
const COMBINE_PARAMS = paramsStruct({ T: 'u32', nH: 'u32', D: 'u32', splits: 'u32' });
/** Largest head dim the attention kernel holds (its query lives in 256 f32 of shared memory per head). */
const MAX_HEAD_DIM = 256;

/**
 * cache_kv.wgsl's and rope_cache_kv.wgsl's prelude: the cache word KS and storeK / storeV(e, v, two), which write
 * cache element e (and e + 1 when `two`):
 * - f32: a word per element.
 * - f16, even head dim: e is even and `two` true, so the pair is one u32 word (pack2x16float: no shader-f16).
 * - f16, odd head dim: a pair may straddle words, and a word two tokens' slots (when nKv D is odd), so each half is
 *   set with atomicAnd then atomicOr on its own 16 bits: operations on disjoint bits commute, so two threads
 *   writing a word's two halves both land.
 */
function cacheWritePrelude(kt: 'f32' | 'f16', D: number): string {
  const store = (name: string, cache: string) => {
    if (kt === 'f32') return `fn ${name}(e: u32, v: vec2<f32>, two: bool) { ${cache}[e] = v.x; if (two) { ${cache}[e + 1u] = v.y; } }\n`;
    if (D % 2 === 0) return `fn ${name}(e: u32, v: vec2<f32>, two: bool) { ${cache}[e >> 1u] = pack2x16float(v); }\n`;
    return `fn ${name}Half(e: u32, x: f32) {
  let sh = (e & 1u) * 16u;
  atomicAnd(&${cache}[e >> 1u], ~(0xffffu << sh));
  atomicOr(&${cache}[e >> 1u], (pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu) << sh);
}
fn ${name}(e: u32, v: vec2<f32>, two: bool) { ${name}Half(e, v.x); if (two) { ${name}Half(e + 1u, v.y); } }
`;
  };
  const ks = kt === 'f32' ? 'f32' : D % 2 === 0 ? 'u32' : 'atomic<u32>';
  return `alias KS = ${ks};\n${store('storeK', 'kCache')}${store('storeV', 'vCache')}`;
}

/**
 * The prelude of a kernel that writes single cache elements in any order (the GEMV's fused rope, lib/gemv.rope.wgsl):
 * KS and storeKElem / storeVElem(e, x), which set element e. f16: the two halves of a word may come from different
 * threads, so each half is set with atomicAnd then atomicOr on its own 16 bits (as cacheWritePrelude's odd head dims).
 */
export function cacheElementPrelude(kt: 'f32' | 'f16'): string {
  const store = (name: string, cache: string) =>
    kt === 'f32'
      ? `fn ${name}(e: u32, x: f32) { ${cache}[e] = x; }\n`
      : `fn ${name}(e: u32, x: f32) {
  let sh = (e & 1u) * 16u;
  atomicAnd(&${cache}[e >> 1u], ~(0xffffu << sh));
  atomicOr(&${cache}[e >> 1u], (pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu) << sh);
}
`;
  return `alias KS = ${kt === 'f32' ? 'f32' : 'atomic<u32>'};\n${store('storeKElem', 'kCache')}${store('storeVElem', 'vCache')}`;
}

/** The vector width of the attention kernels for head dim D: vec4 reads when D % 4 == 0, else scalars. */
const vectorWidth = (D: number): 1 | 4 => (D % 4 === 0 ? 4 : 1);

/**
 * The attention kernels' vectors (see lib/paged_attention.wgsl): QV of VW f32, vdot, QN vectors of the largest head,
 * and the split-K record of a piece, (m, l) in f32 words 4 pi, 4 pi + 1 of partials: written by the attention
 * kernels (storeStats), read by the combine kernel (statsAt).
 */
function vectorPrelude(vw: 1 | 4, stats: 'store' | 'read'): string {
  const statsFn =
    stats === 'store'
      ? vw === 4
        ? 'fn storeStats(pi: u32, m: f32, l: f32) { partials[pi] = vec4<f32>(m, l, 0.0, 0.0); }'
        : 'fn storeStats(pi: u32, m: f32, l: f32) { partials[4u * pi] = m; partials[4u * pi + 1u] = l; }'
      : vw === 4
        ? 'fn statsAt(pi: u32) -> vec2<f32> { return partials[pi].xy; }'
        : 'fn statsAt(pi: u32) -> vec2<f32> { return vec2<f32>(partials[4u * pi], partials[4u * pi + 1u]); }';
  return `alias QV = ${vw === 4 ? 'vec4<f32>' : 'f32'};
const VW = ${vw}u;
const QN = ${MAX_HEAD_DIM / vw}u;
fn vdot(a: QV, b: QV) -> f32 { return ${vw === 4 ? 'dot(a, b)' : 'a * b'}; }
${statsFn}
`;
}

/** The attention kernels' prelude: vector reads of the caches and q heads per workgroup. */
function cachePrelude(kt: 'f32' | 'f16', vw: 1 | 4, gt: number): string {
  let ks: string;
  let read: (c: string) => string;
  if (vw === 4) {
    ks = kt === 'f16' ? 'vec2<u32>' : 'vec4<f32>';
    read = kt === 'f16' ? (c) => `let v = ${c}[i]; return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));` : (c) => `return ${c}[i];`;
  } else {
    ks = kt === 'f16' ? 'u32' : 'f32';
    read = kt === 'f16' ? (c) => `let v = unpack2x16float(${c}[i >> 1u]); return select(v.x, v.y, (i & 1u) == 1u);` : (c) => `return ${c}[i];`;
  }
  return `${vectorPrelude(vw, 'store')}alias KS = ${ks};
fn loadK(i: u32) -> QV { ${read('kCache')} }
fn loadV(i: u32) -> QV { ${read('vCache')} }
const GT = ${gt}u;
`;
}

/**
 * Lanes per key of paged_attention.subgroup.wgsl for head dim D: one vec4 each up to the subgroup's (or 32) width,
 * a power of two; 0 when the portable kernel must run (no subgroups, or D not a multiple of 4).
 */
function keyLanes(rec: Recorder, D: number): number {
  const { ctx } = rec;
  if (!ctx.subgroups || !ctx.tuning.attentionSubgroups || D % 4 !== 0) return 0;
  let dl = 1;
  while (dl < D / 4 && dl < 32 && dl < ctx.subgroupMinSize) dl *= 2;
  return dl;
}

export function cacheDtype(kCache: Tensor, vCache: Tensor, what: string): 'f32' | 'f16' {
  if (kCache.dtype !== vCache.dtype || (kCache.dtype !== 'f32' && kCache.dtype !== 'f16')) {
    throw new Error(`${what}: caches must both be f32 or both f16 (got ${kCache.dtype}, ${vCache.dtype})`);
  }
  return kCache.dtype;
}

/**
 * Writes the k and v heads of each token into its cache slot: kCache[slot] = k[t], vCache[slot] = v[t] for
 * slot = slotMapping[t] = block * blockSize + offset; slot < 0 skips the token.
 *
 * @param qkv          f32 [T, (nH + 2 nKv) D]
 * @param slotMapping  i32 [T]
 * @param kCache       f32 | f16 [numBlocks, blockSize, nKv, D]
 * @param vCache       same as kCache
 * @example
 * cacheKV(rec, qkv, slotMapping, kv[layer].k, kv[layer].v, T, layout);
 */
export function cacheKV(rec: Recorder, qkv: Tensor, slotMapping: Tensor, kCache: Tensor, vCache: Tensor, T: number, layout: QkvLayout): void {
  if (T === 0) return;
  const { ctx } = rec;
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
  expectTensor(qkv, 'f32', T * (nH + 2 * nKv) * D, 'cacheKV qkv');
  expectTensor(slotMapping, 'i32', T, 'cacheKV slotMapping');
  const kt = cacheDtype(kCache, vCache, 'cacheKV');
  const key = `cache_kv.${kt}.${D % 2 ? 'odd' : 'even'}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: `${threadLib}\n${cacheSource}`,
    prelude: cacheWritePrelude(kt, D),
    bindings: ['read', 'read', 'write', 'write'],
    params: CACHE_PARAMS,
    constants: { WG: CACHE_WG },
  }));
  const [gx, gy] = grid(ctx, Math.ceil((T * nKv * Math.ceil(D / 2)) / CACHE_WG));
  const bindings = [bindTensor(ctx, qkv), bindTensor(ctx, slotMapping), bindTensor(ctx, kCache), bindTensor(ctx, vCache)];
  rec.run(kernel, { T, nH, nKv, D }, bindings, gx, gy);
}

const ROPE_CACHE_WG = 256;

/**
 * Rotary position embedding (NeoX / HF rotate_half) fused with cacheKV: rotates the first `rotaryDim` dims of every
 * q head of token t in place by positions[t] invFreq (x[i], x[i + R/2] <- x[i] cos - x[i + R/2] sin,
 * x[i + R/2] cos + x[i] sin, cos and sin scaled by attentionScaling), and writes the k heads so rotated and the v
 * heads into the caches at slotMapping[t] (slot < 0 skips the token's k and v). The k columns of qkv are left
 * unrotated: only the cache holds rotated keys (paged attention reads nothing else). Any head dim.
 *
 * @param qkv          f32 [T, (nH + 2 nKv) D]
 * @param positions    u32 [T]
 * @param invFreq      f32 [rotaryDim / 2] (HF's inv_freq, after any rope scaling)
 * @param slotMapping  i32 [T]
 * @param kCache       f32 | f16 [numBlocks, blockSize, nKv, D]
 * @param vCache       same as kCache
 * @param split        qkv as the tensor-core linear's split-K sums (its deferSplit): they are added up here, and
 *                     the q heads written whole into qkv
 * @example
 * ropeCacheKV(rec, qkv, positions, invFreq, slotMapping, kv[layer].k, kv[layer].v, T, layout, layout.headDim);
 */
export function ropeCacheKV(
  rec: Recorder,
  qkv: Tensor,
  positions: Tensor,
  invFreq: Tensor,
  slotMapping: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  T: number,
  layout: QkvLayout,
  rotaryDim: number,
  attentionScaling = 1,
  split: SplitSums | null = null,
): void {
  if (T === 0) return;
  const { ctx } = rec;
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
  if (rotaryDim % 2 !== 0 || rotaryDim > D) throw new Error(`ropeCacheKV: rotaryDim ${rotaryDim} must be even and at most the head dim ${D}`);
  expectTensor(qkv, 'f32', T * (nH + 2 * nKv) * D, 'ropeCacheKV qkv');
  expectTensor(positions, 'u32', T, 'ropeCacheKV positions');
  expectTensor(invFreq, 'f32', rotaryDim / 2, 'ropeCacheKV invFreq');
  expectTensor(slotMapping, 'i32', T, 'ropeCacheKV slotMapping');
  const kt = cacheDtype(kCache, vCache, 'ropeCacheKV');
  const cols = (nH + 2 * nKv) * D;
  if (split) {
    expectTensor(split.part, 'f32', split.splits * T * cols, 'ropeCacheKV split sums');
    if (split.bias) expectTensor(split.bias, 'f32', cols, 'ropeCacheKV split bias');
  }
  const key = `rope_cache_kv.${kt}.${D % 2 ? 'odd' : 'even'}${split ? '.split' : ''}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: `${threadLib}\n${ropeLib}\n${ropeCacheSource}`,
    prelude: cacheWritePrelude(kt, D) + (split ? SPLIT_QKV : 'const SPLIT = false;\nfn qkvAt(i: u32) -> f32 { return qkv[i]; }\n'),
    bindings: split ? ['write', 'read', 'read', 'read', 'write', 'write', 'read', 'read'] : ['write', 'read', 'read', 'read', 'write', 'write'],
    params: ROPE_CACHE_PARAMS,
    constants: { WG: ROPE_CACHE_WG },
  }));
  const [gx, gy] = grid(ctx, Math.ceil((T * (nH + 2 * nKv) * Math.ceil(D / 2)) / ROPE_CACHE_WG));
  const bindings = [
    bindTensor(ctx, qkv),
    bindTensor(ctx, positions),
    bindTensor(ctx, invFreq),
    bindTensor(ctx, slotMapping),
    bindTensor(ctx, kCache),
    bindTensor(ctx, vCache),
  ];
  if (split) bindings.push(bindTensor(ctx, split.part), split.bias ? bindTensor(ctx, split.bias) : wholeBuffer(ctx.dummy));
  const params = { T, nH, nKv, D, half: rotaryDim / 2, scaling: attentionScaling, splits: split?.splits ?? 1, hasBias: split?.bias ? 1 : 0 };
  rec.run(kernel, params, bindings, gx, gy);
}

/** rope_cache_kv.wgsl's qkvAt over split-K sums: part f32 [splits, T, cols] (+ bias f32 [cols]). */
const SPLIT_QKV = `const SPLIT = true;
@group(0) @binding(7) var<storage, read> part: array<f32>;
@group(0) @binding(8) var<storage, read> bias: array<f32>;
fn qkvAt(i: u32) -> f32 {
  let cols = (p.nH + 2u * p.nKv) * p.D;
  let t = i / cols;
  let c = i % cols;
  var v = 0.0;
  if (p.hasBias != 0u) {
    v = bias[c];
  }
  for (var s = 0u; s < p.splits; s++) {
    v += part[(s * p.T + t) * cols + c];
  }
  return v;
}
`;

/** Per-token metadata of a step, built by the model runner. */
export interface AttentionMetadata {
  /** u32 [T]: which sequence (row of blockTables) each token belongs to. */
  seqIdx: Tensor;
  /** u32 [T]: each token's position in its sequence. */
  positions: Tensor;
  /** u32 [S, maxBlocksPerSeq]: the cache blocks of each sequence, in order. */
  blockTables: Tensor;
  /**
   * The step's query tiles for the tiled kernel (see {@link attentionTiling}), when the step has them: table u32
   * [2 count] of (first token, token count) pairs from {@link attentionTiles}, count a bound on their number
   * (unused pairs (0, 0)). Without it, every step runs the per-token kernels.
   */
  tiles?: { table: Tensor; count: number };
}

/** The tiled prompt kernel's shape for a layout (see paged_attention.tiled.wgsl). */
export interface AttentionTiling {
  /** Lanes per query row, vec4s of the head per lane, q heads per workgroup, workgroups per kv head. */
  lanes: number;
  vec4sPerLane: number;
  heads: number;
  groupsPerKv: number;
  /** Queries per tile, keys staged per step, threads per workgroup. */
  queries: number;
  keys: number;
  threads: number;
}

/**
 * The tiled kernel's shape for a step of T tokens with this layout, or null when the step runs the per-token
 * kernels (T below tuning.attentionTiledTokens, no subgroups, or a head too wide for the lanes).
 */
export function attentionTiling(ctx: Recorder['ctx'], layout: QkvLayout, T: number): AttentionTiling | null {
  const tune = ctx.tuning;
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
  if (!ctx.subgroups || !tune.attentionSubgroups || tune.attentionTiledTokens <= 0 || T < tune.attentionTiledTokens) return null;
  if (D % 4 !== 0 || D > MAX_HEAD_DIM || nH % nKv !== 0) return null;
  // A lane per 32 dims (registers), a power of two within the subgroup.
  let lanes = 1;
  while (lanes * 32 < D && lanes < ctx.subgroupMinSize) lanes *= 2;
  const threads = Math.max(tune.attentionWorkgroup, lanes);
  const rows = threads / lanes;
  const G = nH / nKv;
  const groupsPerKv = Math.ceil(G / rows);
  const heads = Math.ceil(G / groupsPerKv);
  const keys = Math.max(1, Math.min(tune.attentionTileKeys, Math.floor(2048 / D)));
  return { lanes, vec4sPerLane: Math.ceil(D / 4 / lanes), heads, groupsPerKv, queries: Math.floor(rows / heads), keys, threads };
}

/**
 * The tile list of a step for the tiled kernel: each sequence's tokens (consecutive in the flat batch, with
 * consecutive positions) in tiles of up to `queries`, as (first token, count) pairs, written into `out` from 0
 * and the rest of its first 2 `count` words zeroed; `count` = {@link attentionTileCount}. Returns the tiles used.
 *
 * @param tokensPerSeq  tokens of each sequence of the step, in flat-batch order
 */
export function attentionTiles(tokensPerSeq: readonly number[], queries: number, out: Uint32Array, count: number): number {
  let tile = 0;
  let t = 0;
  for (const n of tokensPerSeq) {
    for (let k = 0; k < n; k += queries) {
      if (tile >= count) throw new Error(`attentionTiles: more than ${count} tiles`);
      out[2 * tile] = t + k;
      out[2 * tile + 1] = Math.min(queries, n - k);
      tile++;
    }
    t += n;
  }
  out.fill(0, 2 * tile, 2 * count);
  return tile;
}

/** A bound on the tiles of a step of T tokens from at most maxSeqs sequences (the tiled dispatch's size). */
export const attentionTileCount = (T: number, queries: number, maxSeqs: number): number => Math.min(T, Math.ceil(T / queries) + maxSeqs);

export interface AttentionOptions {
  /** Softmax scale, usually 1 / sqrt(headDim). */
  scale: number;
  /** Keys per query including itself (HF/Mistral `sliding_window`), or null for full causal attention. */
  slidingWindow: number | null;
  blockSize: number;
  maxBlocksPerSeq: number;
  /**
   * Attention logit soft-capping (Gemma 2 `attn_logit_softcapping`): each score s = scale q.k becomes
   * softcap tanh(s / softcap) before the softmax. 0 or absent: none.
   */
  softcap?: number;
}

/**
 * Causal paged attention for a flat batch mixing prefill and decode tokens. Token t (sequence s = seqIdx[t],
 * position p = positions[t]) attends to its sequence's cached keys at positions max(0, p - window + 1) .. p, read
 * through blockTables[s]; q head h uses kv head h / (nH / nKv). Run cacheKV (or ropeCacheKV) for the step first.
 * One workgroup serves all q heads of a kv head (up to tuning.attentionHeads), reading each key once; when a step
 * has few tokens (decode), long key ranges are split over several workgroups and merged by a second dispatch.
 * Heads are read in vec4s when D % 4 == 0; any other head dim (up to 256) runs the portable kernel on scalars.
 *
 * @param qkv  f32 [T, (nH + 2 nKv) D] (only the q heads are read)
 * @param out  f32 [T, nH D]
 * @example
 * pagedAttention(rec, qkv, k, v, meta, attnOut, T, layout,
 *   { scale: 1 / Math.sqrt(128), slidingWindow: null, blockSize: 16, maxBlocksPerSeq: 256 });
 */
export function pagedAttention(
  rec: Recorder,
  qkv: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  meta: AttentionMetadata,
  out: Tensor,
  T: number,
  layout: QkvLayout,
  opts: AttentionOptions,
): void {
  if (T === 0) return;
  const { ctx } = rec;
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
  if (!(D >= 1 && D <= MAX_HEAD_DIM)) throw new Error(`pagedAttention: head dim ${D} must be 1 to ${MAX_HEAD_DIM}`);
  const softcap = opts.softcap ?? 0;
  if (!(softcap >= 0)) throw new Error(`pagedAttention: softcap ${softcap} must be >= 0`);
  if (nH % nKv !== 0) throw new Error(`pagedAttention: ${nH} heads are not a multiple of ${nKv} kv heads`);
  const wg = ctx.tuning.attentionWorkgroup;
  if (!isPowerOfTwo(wg)) throw new Error('pagedAttention: workgroup size must be a power of two');
  expectTensor(qkv, 'f32', T * (nH + 2 * nKv) * D, 'pagedAttention qkv');
  expectTensor(out, 'f32', T * nH * D, 'pagedAttention out');
  expectTensor(meta.seqIdx, 'u32', T, 'pagedAttention seqIdx');
  expectTensor(meta.positions, 'u32', T, 'pagedAttention positions');
  expectTensor(meta.blockTables, 'u32', opts.maxBlocksPerSeq, 'pagedAttention blockTables');
  const kt = cacheDtype(kCache, vCache, 'pagedAttention');
  // A prompt-sized step the runner listed tiles for: the tiled kernel.
  const tiling = meta.tiles ? attentionTiling(ctx, layout, T) : null;
  if (meta.tiles && tiling) return pagedAttentionTiled(rec, qkv, kCache, vCache, meta, meta.tiles, out, T, layout, opts, kt, tiling);
  // q heads per workgroup: the whole group of heads sharing a kv head, or an even share of it.
  const tune = ctx.tuning;
  const G = nH / nKv;
  const perKv = Math.ceil(G / tune.attentionHeads);
  const gt = Math.ceil(G / perKv);
  const dl = keyLanes(rec, D);
  const vw = vectorWidth(D);
  const epl = Math.ceil(D / 4 / Math.max(dl, 1));
  const key = dl ? `paged_attention.subgroup.${kt}.${wg}.${gt}.${dl}.${epl}` : `paged_attention.${kt}.${vw}.${wg}.${gt}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: `${softcapLib}\n${attentionLib}\n${dl ? attentionSubgroupSource : attentionSource}`,
    prelude: dl
      ? `enable subgroups;\n${cachePrelude(kt, vw, gt)}const EPL = ${epl}u;\n`
      : `${cachePrelude(kt, vw, gt)}const DPT = ${Math.ceil(MAX_HEAD_DIM / vw / wg)}u;\n`,
    bindings: ['read', 'read', 'read', 'read', 'read', 'read', 'write', 'write'],
    params: ATTENTION_PARAMS,
    constants: (dl ? { WG: wg, DL: dl } : { WG: wg }) as Record<string, number>,
  }));
  if (T > ctx.limits.maxComputeWorkgroupsPerDimension) throw new Error(`pagedAttention: ${T} tokens exceed one dispatch`);
  const window = opts.slidingWindow ?? 0;

  // Split-K when the step has too few workgroups to fill the device (few tokens, long contexts).
  const maxKeys = opts.maxBlocksPerSeq * opts.blockSize;
  const span = window > 0 ? Math.min(window, maxKeys) : maxKeys;
  let splits = 1;
  let partLen = span;
  if (T * nKv * perKv < tune.attentionSplitBelow && span > tune.attentionSplitKeys) {
    splits = Math.min(tune.attentionMaxSplits, Math.ceil(span / tune.attentionSplitKeys));
    // Pieces of whole rounds of keys: WG keys at a time (portable kernel), WG / DL (subgroup kernel).
    const round = dl ? wg / dl : wg;
    partLen = Math.ceil(span / splits / round) * round;
    splits = Math.ceil(span / partLen);
  }
  // Per piece: its (m, l, 0, 0) record and its D accumulators (see lib/paged_attention.wgsl).
  const partials = splits > 1 ? ctx.scratchBuffer('attention partials', T * nH * splits * (16 + 4 * D)) : ctx.dummy;
  const { blockSize, maxBlocksPerSeq, scale } = opts;
  const params = { T, nH, nKv, D, qkvStride: (nH + 2 * nKv) * D, blockSize, maxBlocksPerSeq, window, scale, groupsPerKv: perKv, splits, partLen, softcap };
  const bindings = attentionBindings(rec, qkv, kCache, vCache, meta, out, partials);
  rec.run(kernel, params, bindings, nKv * perKv, T, splits);
  if (splits > 1) {
    const combine = ctx.pipelines.kernel(`paged_attention.combine.${vw}.${wg}`, () => ({
      name: 'paged_attention.combine',
      code: combineSource,
      prelude: vectorPrelude(vw, 'read'),
      bindings: ['read', 'write'],
      params: COMBINE_PARAMS,
      constants: { WG: wg },
    }));
    rec.run(combine, { T, nH, D, splits }, [wholeBuffer(partials), bindTensor(ctx, out)], nH, T);
  }
}

/** pagedAttention's tiled kernel for prompts (shaders/paged_attention.tiled.wgsl). */
function pagedAttentionTiled(
  rec: Recorder,
  qkv: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  meta: AttentionMetadata,
  tiles: { table: Tensor; count: number },
  out: Tensor,
  T: number,
  layout: QkvLayout,
  opts: AttentionOptions,
  kt: 'f32' | 'f16',
  tiling: AttentionTiling,
): void {
  const { ctx } = rec;
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
  const { lanes, vec4sPerLane, heads, groupsPerKv, queries, keys, threads } = tiling;
  expectTensor(tiles.table, 'u32', 2 * tiles.count, 'pagedAttention tiles');
  if (tiles.count > ctx.limits.maxComputeWorkgroupsPerDimension) throw new Error(`pagedAttention: ${tiles.count} tiles exceed one dispatch`);
  const key = `paged_attention.tiled.${kt}.${threads}.${heads}.${lanes}.${vec4sPerLane}.${queries}.${keys}.${D / 4}`;
  const kernel = ctx.pipelines.kernel(key, () => ({
    name: key,
    code: `${softcapLib}\n${attentionLib}\n${attentionTiledSource}`,
    prelude:
      `enable subgroups;\n${cachePrelude(kt, 4, heads)}` +
      `const R = ${lanes}u;\nconst DR4 = ${vec4sPerLane}u;\nconst BQ = ${queries}u;\nconst BK = ${keys}u;\nconst D4C = ${D / 4}u;\n`,
    bindings: ['read', 'read', 'read', 'read', 'read', 'read', 'write', 'write', 'read'],
    params: ATTENTION_PARAMS,
    constants: { WG: threads },
  }));
  const { blockSize, maxBlocksPerSeq, scale } = opts;
  const window = opts.slidingWindow ?? 0;
  const params = { T, nH, nKv, D, qkvStride: (nH + 2 * nKv) * D, blockSize, maxBlocksPerSeq, window, scale, groupsPerKv, splits: 1, partLen: 0, softcap: opts.softcap ?? 0 };
  const bindings = [...attentionBindings(rec, qkv, kCache, vCache, meta, out, ctx.dummy), bindTensor(ctx, tiles.table)];
  rec.run(kernel, params, bindings, nKv * groupsPerKv, tiles.count);
}

/** lib/paged_attention.wgsl's bindings 1-8. */
function attentionBindings(rec: Recorder, qkv: Tensor, kCache: Tensor, vCache: Tensor, meta: AttentionMetadata, out: Tensor, partials: GPUBuffer) {
  const { ctx } = rec;
  return [
    bindTensor(ctx, qkv),
    bindTensor(ctx, kCache),
    bindTensor(ctx, vCache),
    bindTensor(ctx, meta.seqIdx),
    bindTensor(ctx, meta.positions),
    bindTensor(ctx, meta.blockTables),
    bindTensor(ctx, out),
    wholeBuffer(partials),
  ];
}
