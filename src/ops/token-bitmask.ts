/** Structured outputs on the GPU: a grammar's token bitmask applied to logits rows before the argmax / top-K. */
import { paramsStruct } from '../gpu/pipelines.js';
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, type Tensor } from '../gpu/tensor.js';
import threadLib from '../../shaders/lib/thread.wgsl';
import tokenBitmaskSource from '../../shaders/token_bitmask.wgsl';
import { expectTensor, grid } from './common.js';

const WG = 256;

/** token_bitmask.wgsl: M masked rows, V logits per row, W = ceil(V / 32) mask words per row. */
const TOKEN_BITMASK_PARAMS = paramsStruct({ M: 'u32', V: 'u32', W: 'u32' });

/**
 * Sets logits[rows[m], t] to -inf for every token t that mask row m does not allow (bit t % 32 of word t >> 5 unset;
 * xgrammar's layout). The CPU reference is sampling/sampler.ts applyTokenBitmask.
 *
 * @param logits  f32 [S, V], edited in place
 * @param rows    u32 [M]: the logits row of each mask row
 * @param mask    u32 [M, ceil(V / 32)]
 * @example
 * tokenBitmask(rec, acts.logits, maskRows, masks, 3, vocabSize);
 */
export function tokenBitmask(rec: Recorder, logits: Tensor, rows: Tensor, mask: Tensor, M: number, V: number): void {
  if (M === 0) return;
  const { ctx } = rec;
  const W = Math.ceil(V / 32);
  expectTensor(logits, 'f32', V, 'tokenBitmask logits');
  expectTensor(rows, 'u32', M, 'tokenBitmask rows');
  expectTensor(mask, 'u32', M * W, 'tokenBitmask mask');
  const kernel = ctx.pipelines.kernel('token_bitmask', () => ({
    name: 'token_bitmask',
    code: `${threadLib}\n${tokenBitmaskSource}`,
    bindings: ['write', 'read', 'read'],
    params: TOKEN_BITMASK_PARAMS,
    constants: { WG },
  }));
  const [gx, gy] = grid(ctx, Math.ceil((M * W) / WG));
  rec.run(kernel, { M, V, W }, [bindTensor(ctx, logits), bindTensor(ctx, rows), bindTensor(ctx, mask)], gx, gy);
}
