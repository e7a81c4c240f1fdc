/** Rotary position embedding (NeoX / HF rotate_half) on the q and k heads of a fused qkv. */
import type { Recorder } from '../gpu/recorder.js';
import { bindTensor, type Tensor } from '../gpu/tensor.js';
import threadLib from '../../shaders/lib/thread.wgsl';
import ropeSource from '../../shaders/rope.wgsl';
import { expectTensor, grid } from './common.js';

/** Layout of a fused qkv activation [T, (nH + 2*nKv) * D]: all q heads, then k heads, then v heads. */
export interface QkvLayout {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

const ROPE_WG = 256;

/**
 * Rotates the first `rotaryDim` dims of every q and k head of token t by positions[t] * invFreq, in place:
 * x[i], x[i + R/2] <- x[i] cos - x[i + R/2] sin, x[i + R/2] cos + x[i] sin (cos, sin scaled by attentionScaling).
 *
 * @param qkv        f32 [T, (nH + 2 nKv) D]
 * @param positions  u32 [T]
 * @param invFreq    f32 [rotaryDim / 2] (HF's inv_freq, after any rope scaling)
 * @example
 * rope(rec, qkv, positions, invFreq, T, layout, layout.headDim);
 */
export function rope(
  rec: Recorder,
  qkv: Tensor,
  positions: Tensor,
  invFreq: Tensor,
  T: number,
  layout: QkvLayout,
  rotaryDim: number,
  attentionScaling = 1,
): void {
  if (T === 0) return;
  const { ctx } = rec;
  const { numHeads: nH, numKvHeads: nKv, headDim: D } = layout;
  const stride = (nH + 2 * nKv) * D;
  if (rotaryDim % 2 !== 0 || rotaryDim > D) throw new Error(`rope: rotaryDim ${rotaryDim} must be even and <= ${D}`);
  expectTensor(qkv, 'f32', T * stride, 'rope qkv');
  expectTensor(positions, 'u32', T, 'rope positions');
  expectTensor(invFreq, 'f32', rotaryDim / 2, 'rope invFreq');
  const kernel = ctx.pipelines.kernel('rope', () => ({
    name: 'rope',
    code: `${threadLib}\n${ropeSource}`,
    bindings: ['write', 'read', 'read'],
    params: 'uuuuuf',
    constants: { WG: ROPE_WG },
  }));
  const half = rotaryDim / 2;
  const [gx, gy] = grid(ctx, Math.ceil((T * (nH + nKv) * half) / ROPE_WG));
  const bindings = [bindTensor(ctx, qkv), bindTensor(ctx, positions), bindTensor(ctx, invFreq)];
  rec.run(kernel, [T, nH + nKv, D, stride, half, attentionScaling], bindings, gx, gy);
}
