/** GPU fills for weights: uniform random values ('dummy' load format) or a constant, without uploading data. */
import type { GpuContext } from '../gpu/context.js';
import { Recorder } from '../gpu/recorder.js';
import type { Weight } from '../gpu/tensor.js';
import threadLib from '../../shaders/lib/thread.wgsl';
import fillSource from '../../shaders/fill.wgsl';
import { grid, wholeBuffer } from './common.js';

const FILL_WG = 256;

function fill(target: Recorder | GpuContext, w: Weight, random: boolean, seed: number, lo: number, hi: number): void {
  const rec = target instanceof Recorder ? target : new Recorder(target, 'fill');
  const { ctx } = rec;
  const kernel = ctx.pipelines.kernel('fill', () => ({
    name: 'fill',
    code: `${threadLib}\n${fillSource}`,
    bindings: ['write'],
    params: 'uuuuuff',
    constants: { WG: FILL_WG },
  }));
  const halfs = w.dtype === 'f16' ? 1 : 0;
  for (const part of w.parts) {
    const elements = part.rows * w.rowStride;
    const words = halfs ? Math.ceil(elements / 2) : elements;
    if (words === 0) continue;
    const [gx, gy] = grid(ctx, Math.ceil(words / FILL_WG));
    const params = [words, part.rowStart * w.rowStride, seed >>> 0, halfs, random ? 1 : 0, lo, hi];
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
