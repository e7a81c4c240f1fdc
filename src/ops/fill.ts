/** GPU fills for weights: uniform random values ('dummy' load format) or a constant, without uploading data. */
import type { GpuContext } from '../gpu/context.js';
import { paramsStruct } from '../gpu/pipelines.js';
import { Recorder } from '../gpu/recorder.js';
import type { Weight } from '../gpu/tensor.js';
import threadLib from '../../shaders/lib/thread.wgsl';
import fillSource from '../../shaders/fill.wgsl';
import { grid, wholeBuffer } from './common.js';

const FILL_WG = 256;

/**
 * fill.wgsl, per weight part: its words, the element index of word 0 in the whole weight, the seed, halfs (1: two
 * f16 per word, 0: one f32), random (1) or constant lo (0), the range [lo, hi).
 */
const FILL_PARAMS = paramsStruct({ words: 'u32', first: 'u32', seed: 'u32', halfs: 'u32', random: 'u32', lo: 'f32', hi: 'f32' });

function fill(target: Recorder | GpuContext, w: Weight, random: boolean, seed: number, lo: number, hi: number): void {
  const rec = target instanceof Recorder ? target : new Recorder(target, 'fill');
  const { ctx } = rec;
  const kernel = ctx.pipelines.kernel('fill', () => ({
    name: 'fill',
    code: `${threadLib}\n${fillSource}`,
    bindings: ['write'],
    params: FILL_PARAMS,
    constants: { WG: FILL_WG },
  }));
  const halfs = w.dtype === 'f16' ? 1 : 0;
  for (const part of w.parts) {
    const elements = part.rows * w.rowStride;
    const words = halfs ? Math.ceil(elements / 2) : elements;
    if (words === 0) continue;
    const [gx, gy] = grid(ctx, Math.ceil(words / FILL_WG));
    const params = { words, first: part.rowStart * w.rowStride, seed: seed >>> 0, halfs, random: random ? 1 : 0, lo, hi };
    rec.run(kernel, params, [wholeBuffer(part.buffer)], gx, gy);
  }
  if (rec !== target) rec.submit();
}

/**
 * Fills `w` with values uniform in [lo, hi) from a hash of (seed, element index): reproducible and independent of
 * how the weight is split. Given a context it submits at once; given a recorder it records.
 *
 * @example
 * fillRandom(ctx, lmHead, 0, -1e-3, 1e-3); // vLLM's dummy weights
 */
export function fillRandom(target: Recorder | GpuContext, w: Weight, seed: number, lo: number, hi: number): void {
  fill(target, w, true, seed, lo, hi);
}

/** Fills `w` with `value` (e.g. 1 for a norm weight). */
export function fillConstant(target: Recorder | GpuContext, w: Weight, value: number): void {
  fill(target, w, false, 0, value, value);
}
