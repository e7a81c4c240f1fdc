/**
 * The GEMV's input merged from split-K attention pieces (`shaders/lib/gemv.combine.wgsl`): at decode the attention
 * splits each head's keys over several workgroups, and the o projection's GEMV merges their pieces as it stages its
 * input, so that attention's combine is not a dispatch of its own (one dispatch less per layer on GPUs). linear
 * takes the pieces as LinearOptions.combine; where its kernel cannot merge them (more tokens, the int8-activation
 * GEMV, an input too wide for workgroup memory) it runs attentionCombine into x first.
 */
import { paramsStruct } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, type Tensor } from '../gpu/tensor.js';
import gemvCombineLib from '../../shaders/lib/gemv.combine.wgsl';
import { attentionCombine, type AttentionPartials } from './attention.js';

/** The GEMV's input read straight from its x binding (lib/gemv.combine.wgsl's hooks without the merge). */
export const GEMV_PLAIN_X = `const COMBINE = false;
fn stageInput(t0: u32, lid: u32) {}
fn inputAt(i: u32, xi: u32, v: u32) -> vec4<f32> { return x[xi + v]; }
`;

/** Bytes of workgroup memory left to the GEMV's own use (its shared-memory lane sums: WG vec4s). */
const GEMV_OWN_SHARED = 4096;

/** The merge of one GEMV: its WGSL and prelude, its x binding (the pieces) and params. */
export interface GemvCombine {
  code: string;
  prelude: string;
  x: ReturnType<typeof bindTensor>;
  params: { nH: number; D: number; splits: number };
}

/** Params of a GEMV that merges pieces: the kernel's fields, then nH, D and splits. */
export const withCombineParams = <F extends Record<string, 'u32' | 'f32' | 'i32'>>(fields: F) => paramsStruct({ ...fields, nH: 'u32', D: 'u32', splits: 'u32' });

/**
 * The merge for a GEMV of TT tokens a workgroup over inputs of K, or null when it does not merge (no pieces, more
 * piece bytes per workgroup than tuning.gemvMergeBytes, or TT staged rows of K do not fit in workgroup memory); then
 * x must be written first (see {@link combineFirst}).
 */
export function gemvCombine(rec: Recorder, pieces: AttentionPartials | undefined, K: number, TT: number): GemvCombine | null {
  if (!pieces) return null;
  const { numHeads: nH, headDim: D, splits } = pieces;
  if (nH * D !== K || D % 4 !== 0) throw new Error(`linear combine: ${nH} heads of ${D} are not the input width ${K}`);
  if (TT * K * 4 + GEMV_OWN_SHARED > rec.ctx.limits.maxComputeWorkgroupStorageSize) return null;
  if (TT * K * splits * 4 > rec.ctx.tuning.gemvMergeBytes) return null;
  return {
    code: `${gemvCombineLib}\n`,
    prelude: `const KV4 = ${K / 4}u;\n`,
    x: bindTensor(rec.ctx, pieces.part, 'linear combine pieces'),
    params: { nH, D, splits },
  };
}

/** Merges the pieces into x (T rows) where the kernel does not: the attention's own combine dispatch. */
export function combineFirst(rec: Recorder, pieces: AttentionPartials | undefined, x: Tensor, T: number): void {
  if (pieces) attentionCombine(rec, pieces, x, T);
}
