/**
 * The GEMV's fused rope (`shaders/lib/gemv.rope.wgsl`): the qkv projection of a decode step rotates its q and k
 * heads and writes k and v into the KV cache in its epilogue, so that ropeCacheKV is not a dispatch of its own (one
 * dispatch less per layer; at batch 1 a step's cost is mostly per dispatch). linear (every weight format's GEMV, via
 * lib/gemv.wgsl) takes it as LinearOptions.rope and says in its result whether it did; where it did not (larger
 * token counts on other kernels, weight parts that cut heads, a device binding fewer than 10 storage buffers), the
 * caller runs ropeCacheKV as before.
 */
import { paramsStruct } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, type Tensor } from '../gpu/tensor.js';
import ropeLib from '../../shaders/lib/rope.wgsl';
import gemvRopeLib from '../../shaders/lib/gemv.rope.wgsl';
import { cacheDtype, cacheElementPrelude, type QkvLayout } from './attention.js';
import { expectTensor } from './common.js';

/** What ropeCacheKV would do after the qkv projection (see its parameters), for the projection to do instead. */
export interface RopeCacheWrite {
  positions: Tensor; // u32 [T]
  invFreq: Tensor; // f32 [rotaryDim / 2]
  slotMapping: Tensor; // i32 [T]
  kCache: Tensor; // f32 | f16 [numBlocks, blockSize, nKv, D]
  vCache: Tensor; // same as kCache
  layout: QkvLayout;
  rotaryDim: number;
  /** The cos / sin multiplier (HF's attention_scaling; 1 for most rope types). */
  scaling: number;
}

/** The GEMV's params with the fused rope: LINEAR_PARAMS's fields, then the layout, half = rotaryDim / 2 and scaling. */
export const ropeParamFields = { nH: 'u32', nKv: 'u32', D: 'u32', half: 'u32', scaling: 'f32' } as const;

/** lib/gemv.wgsl's rope hooks for GEMVs without the fused rope. */
export const GEMV_NO_ROPE = `const ROPE = false;
fn ropePairRow(u: u32, second: bool) -> u32 { return u; }
fn storeRopePair(t: u32, u: u32, a: f32, b: f32) {}
`;

/** The fused rope of one GEMV dispatch: its WGSL, prelude, key, extra bindings and params. */
export interface GemvRope {
  /** Cache dtype: part of the kernel key. */
  kt: 'f32' | 'f16';
  bindings: ReturnType<typeof bindTensor>[];
  params: { nH: number; nKv: number; D: number; half: number; scaling: number };
}

/** WGSL to include after lib/linear.wgsl and before lib/gemv.wgsl: the rope epilogue, or its stubs. */
export const gemvRopeCode = (rope: GemvRope | null): string => (rope ? `${ropeLib}\n${gemvRopeLib}\n` : GEMV_NO_ROPE);

/** The prelude the rope epilogue needs (cache element stores), or nothing. */
export const gemvRopePrelude = (rope: GemvRope | null): string => (rope ? cacheElementPrelude(rope.kt) : '');

/** Storage binding kinds of the rope epilogue (bindings 6-10). */
export const GEMV_ROPE_BINDINGS = ['read', 'read', 'read', 'write', 'write'] as const;

/** ROPE_LINEAR_PARAMS built from a kernel's base fields. */
export const withRopeParams = <F extends Record<string, 'u32' | 'f32' | 'i32'>>(fields: F) => paramsStruct({ ...fields, ...ropeParamFields });

/**
 * The fused rope for a GEMV of a weight whose parts are `parts` into `out` [T, N], or null when it cannot be fused:
 * not asked, N not the layout's (nH + 2 nKv) D, an odd head dim or rotary dim, a part cutting a head, or a device
 * binding fewer than 10 storage buffers.
 */
export function gemvRope(rec: Recorder, rope: RopeCacheWrite | undefined, parts: readonly { rowStart: number; rows: number }[], N: number, T: number): GemvRope | null {
  if (!rope) return null;
  const { ctx } = rec;
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = rope.layout;
  const R = rope.rotaryDim;
  if (ctx.limits.maxStorageBuffersPerShaderStage < 10) return null;
  if (N !== (nH + 2 * nKv) * D || D % 2 !== 0 || R % 2 !== 0 || R > D) return null;
  if (parts.some((p) => p.rowStart % D !== 0 || p.rows % D !== 0)) return null;
  expectTensor(rope.positions, 'u32', T, 'linear rope positions');
  expectTensor(rope.invFreq, 'f32', R / 2, 'linear rope invFreq');
  expectTensor(rope.slotMapping, 'i32', T, 'linear rope slotMapping');
  const kt = cacheDtype(rope.kCache, rope.vCache, 'linear rope');
  const bindings = [rope.positions, rope.invFreq, rope.slotMapping, rope.kCache, rope.vCache].map((t) => bindTensor(ctx, t));
  return { kt, bindings, params: { nH, nKv, D, half: R / 2, scaling: rope.scaling } };
}
