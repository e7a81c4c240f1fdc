/** Greedy sampling on the GPU: the index of each row's maximum. */
import { paramsStruct } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, type Tensor } from '../gpu/tensor.js';
import argmaxSource from '../../shaders/argmax.wgsl';
import { expectTensor, grid } from './common.js';

/** argmax.wgsl: S rows of V logits. */
const ARGMAX_PARAMS = paramsStruct({ S: 'u32', V: 'u32' });

/**
 * out[s] = the first index of the maximum of logits[s, :] (torch.argmax semantics; NaN is not special-cased).
 *
 * @param logits  f32 [S, V]
 * @param out     u32 [S]
 * @example
 * argmax(rec, logits, sampled, numSeqs, vocabSize);
 */
export function argmax(rec: Recorder, logits: Tensor, out: Tensor, S: number, V: number): void {
  if (S === 0) return;
  const { ctx } = rec;
  expectTensor(logits, 'f32', S * V, 'argmax logits');
  expectTensor(out, 'u32', S, 'argmax out');
  const wg = ctx.tuning.rowWorkgroup;
  const kernel = ctx.pipelines.kernel(`argmax.${wg}`, () => ({
    name: 'argmax',
    code: argmaxSource,
    bindings: ['read', 'write'],
    params: ARGMAX_PARAMS,
    constants: { WG: wg },
  }));
  const [gx, gy] = grid(ctx, S);
  rec.run(kernel, { S, V }, [bindTensor(ctx, logits), bindTensor(ctx, out)], gx, gy);
}
