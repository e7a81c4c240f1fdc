/**
 * Top-K candidates of logits rows, so that sampling can read back ~1 KB per row instead of the whole vocabulary:
 * per row, the K largest logits (descending, ties to the lower id), the max, the min-p floor, the sum of
 * exp((l - max) / T) over the survivors of the whole row, and per candidate that sum over the lower ids.
 * src/sampling/candidates.ts turns a record into the CPU sampler's exact token, or declines.
 *
 * Four dispatches, chunks of CH = WG * EPT logits (4096 on GPUs):
 *   1. topk.wgsl          (row, chunk): radix select of the chunk's K largest           -> cand [S, NC, K]
 *   2. topk.merge.wgsl    row: radix select of the row's K among NC * K, bitonic sort    -> ids, logits, max, floor
 *   3. topk.sum.wgsl      (row, chunk): survivors' exp sums and candidates' in-chunk prefixes -> partial [S, NC]
 *   4. topk.combine.wgsl  row: the row's sum and the candidates' full prefixes
 * Steps 1 and 3 read the row (S * V * 4 bytes each); 2 and 4 touch S * NC * K * 8 and S * NC * 8 bytes.
 */
import { paramsStruct, type ParamFields, type ParamsStruct } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, type Tensor } from '../gpu/tensor.js';
import topkLib from '../../shaders/lib/topk.wgsl';
import selectSource from '../../shaders/topk.wgsl';
import mergeSource from '../../shaders/topk.merge.wgsl';
import sumSource from '../../shaders/topk.sum.wgsl';
import combineSource from '../../shaders/topk.combine.wgsl';
import { expectTensor, grid, isPowerOfTwo, wholeBuffer } from './common.js';

/** The largest K the kernels take (a power of two up to this). */
export const MAX_CANDIDATES = 256;
/** Logits per thread in steps 1 and 3 (topk.wgsl holds them in registers: at most 16). */
const EPT = 16;

/** u32 words of one row's record in `out`: [max, floor, sumExp, nanCount, ids[K], logits[K], prefix[K]]. */
export const candidateRecordWords = (K: number): number => 4 + 3 * K;

/** topk.wgsl, topk.merge.wgsl, topk.sum.wgsl: S rows of V logits in NC = ceil(V / CH) chunks. */
const TOPK_PARAMS = paramsStruct({ S: 'u32', V: 'u32', NC: 'u32' });
/** topk.combine.wgsl: as TOPK_PARAMS, and CH the logits per chunk (steps 1 and 3). */
const TOPK_COMBINE_PARAMS = paramsStruct({ S: 'u32', V: 'u32', NC: 'u32', CH: 'u32' });

/**
 * Records the four dispatches for rows 0..S-1.
 *
 * @param logits     f32 [S, V]
 * @param rowParams  f32 [S, 2]: 1/T and the min-p offset, from candidateRowParams (src/sampling/candidates.ts)
 * @param out        u32 [S, candidateRecordWords(K)]: one record per row (see readCandidateRow)
 * @param K          candidates per row: a power of two, at most 256
 * @param steps      which of the four dispatches to record, bit i for step i + 1 (benchmarks time them apart)
 * @example
 * topKCandidates(rec, acts.logits, rowParams, candidates, S, V, 64);
 * rec.copy(candidates.buffer, 0, staging, 0, S * candidateRecordWords(64) * 4);
 */
export function topKCandidates(rec: Recorder, logits: Tensor, rowParams: Tensor, out: Tensor, S: number, V: number, K = 64, steps = 0b1111): void {
  if (S === 0) return;
  if (!isPowerOfTwo(K) || K > MAX_CANDIDATES) throw new Error(`topKCandidates: K must be a power of two up to ${MAX_CANDIDATES}, got ${K}`);
  expectTensor(logits, 'f32', S * V, 'topKCandidates logits');
  expectTensor(rowParams, 'f32', S * 2, 'topKCandidates rowParams');
  expectTensor(out, 'u32', S * candidateRecordWords(K), 'topKCandidates out');
  const { ctx } = rec;
  // GPUs: 256 threads (chunks of 4096); CPU drivers (rowWorkgroup 8): 64, so a row still has few chunks to merge.
  const wg = Math.min(256, Math.max(64, ctx.tuning.rowWorkgroup));
  const CH = wg * EPT;
  const NC = Math.ceil(V / CH);
  const cand = wholeBuffer(ctx.scratchBuffer('topk.cand', S * NC * K * 8));
  const partial = wholeBuffer(ctx.scratchBuffer('topk.partial', S * NC * 8));
  const constants = { WG: wg, K, EPT };
  const kernel = <F extends ParamFields>(name: string, code: string, bindings: ('read' | 'write')[], params: ParamsStruct<F>, consts: Record<string, number>) =>
    ctx.pipelines.kernel(`${name}.${wg}.${K}`, () => ({ name, code, bindings, params, constants: consts }));
  const select = kernel('topk', `${topkLib}\n${selectSource}`, ['read', 'write'], TOPK_PARAMS, constants);
  const merge = kernel('topk.merge', `${topkLib}\n${mergeSource}`, ['read', 'read', 'write'], TOPK_PARAMS, { WG: wg, K });
  const sum = kernel('topk.sum', `${topkLib}\n${sumSource}`, ['read', 'read', 'write', 'write'], TOPK_PARAMS, constants);
  const combine = kernel('topk.combine', combineSource, ['read', 'write'], TOPK_COMBINE_PARAMS, { WG: wg, K });
  const l = bindTensor(ctx, logits);
  const rp = bindTensor(ctx, rowParams);
  const o = bindTensor(ctx, out);
  const [cx, cy] = grid(ctx, S * NC);
  const [rx, ry] = grid(ctx, S);
  const params = { S, V, NC };
  if (steps & 1) rec.run(select, params, [l, cand], cx, cy);
  if (steps & 2) rec.run(merge, params, [cand, rp, o], rx, ry);
  if (steps & 4) rec.run(sum, params, [l, rp, o, partial], cx, cy);
  if (steps & 8) rec.run(combine, { S, V, NC, CH }, [partial, o], rx, ry);
}

/** One row's record, copied out of a readback (the shape src/sampling/candidates.ts takes as `Candidates`). */
export interface CandidateRow {
  max: number;
  floor: number;
  sumExp: number;
  nanCount: number;
  ids: Uint32Array;
  logits: Float32Array;
  prefix: Float32Array;
}

/**
 * Reads the record at `byteOffset` (4-byte aligned) of a readback of `out`.
 *
 * @example
 * const row = readCandidateRow(mapped, r * candidateRecordWords(K) * 4, K);
 */
export function readCandidateRow(data: ArrayBuffer, byteOffset: number, K: number): CandidateRow {
  const words = candidateRecordWords(K);
  const u32 = new Uint32Array(data.slice(byteOffset, byteOffset + words * 4));
  const f32 = new Float32Array(u32.buffer);
  return {
    max: f32[0],
    floor: f32[1],
    sumExp: f32[2],
    nanCount: u32[3],
    ids: u32.subarray(4, 4 + K),
    logits: f32.subarray(4 + K, 4 + 2 * K),
    prefix: f32.subarray(4 + 2 * K, 4 + 3 * K),
  };
}
