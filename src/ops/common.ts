/** Helpers shared by the ops: grid wrapping, shader preludes, argument checks. */
import type { GpuContext } from '../gpu/context.js';
import type { BufferBinding } from '../gpu/pipelines.js';
import { numel, type DType, type Tensor } from '../gpu/tensor.js';
import laneSumSubgroup from '../../shaders/lib/lane_sum.subgroup.wgsl';
import laneSumSplit from '../../shaders/lib/lane_sum.split.wgsl';
import laneSumShared from '../../shaders/lib/lane_sum.shared.wgsl';

/**
 * Splits `groups` workgroups into a 2-D grid [x, y] with x within the per-dimension limit; shaders rebuild the
 * index as wid.x + wid.y * nwg.x and skip the (fewer than x) extra workgroups.
 */
export function grid(ctx: GpuContext, groups: number): [number, number] {
  const max = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

/** Throws unless `t` has `dtype` and holds at least `count` elements. */
export function expectTensor(t: Tensor, dtype: DType, count: number, what: string): void {
  if (t.dtype !== dtype) throw new Error(`${what}: expected ${dtype}, got ${t.dtype}`);
  if (numel(t.shape) < count) throw new Error(`${what}: [${t.shape}] holds fewer than ${count} elements`);
}

/** The whole buffer as a binding (weight parts, caches in buffers of their own); one object per buffer. */
export function wholeBuffer(buffer: GPUBuffer): BufferBinding {
  let b = whole.get(buffer);
  if (!b) {
    b = { buffer, offset: 0, size: buffer.size };
    whole.set(buffer, b);
  }
  return b;
}

const whole = new WeakMap<GPUBuffer, BufferBinding>();

export const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/**
 * WGSL prelude for reading a weight bound as `w: array<WS>` in vectors of `vw` f32 (the templated part of the
 * linear and embedding kernels): XV the vector type, VW its width, loadW(i) the i-th vector of `w`, vdot.
 * f16 weights are stored as u32 words holding two halves and unpacked with unpack2x16float, which needs no
 * shader-f16, so f16 weights work on every device.
 */
export function weightPrelude(dtype: 'f32' | 'f16', vw: 1 | 4): string {
  const xv = vw === 4 ? 'vec4<f32>' : 'f32';
  let ws: string;
  let load: string;
  if (dtype === 'f32') {
    ws = xv;
    load = 'return w[i];';
  } else if (vw === 4) {
    ws = 'vec2<u32>';
    load = 'let v = w[i]; return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));';
  } else {
    ws = 'u32';
    load = 'let v = unpack2x16float(w[i >> 1u]); return select(v.x, v.y, (i & 1u) == 1u);';
  }
  return `alias XV = ${xv};
const VW = ${vw}u;
alias WS = ${ws};
fn loadW(i: u32) -> XV { ${load} }
fn vdot(a: XV, b: XV) -> f32 { return ${vw === 4 ? 'dot(a, b)' : 'a * b'}; }
`;
}

/** WGSL for reading 8-element chunks of a weight bound as `w`: loadW8(c) -> array<vec4<f32>, 2> (linear.gemv, moe.gemv). */
export function chunkPrelude(dtype: 'f32' | 'f16'): string {
  return dtype === 'f16'
    ? `alias WS = vec4<u32>;
fn loadW8(c: u32) -> array<vec4<f32>, 2> {
  let v = w[c];
  return array<vec4<f32>, 2>(vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)), vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w)));
}
`
    : `alias WS = vec4<f32>;
fn loadW8(c: u32) -> array<vec4<f32>, 2> { return array<vec4<f32>, 2>(w[2u * c], w[2u * c + 1u]); }
`;
}

/**
 * Whether every subgroup holds whole groups of `lanes` consecutive invocations (lanes a power of two), so that
 * subgroup shuffles and butterflies can combine a group: the device has subgroups of at least `lanes` threads.
 */
export function wholeSubgroups(ctx: GpuContext, lanes: number): boolean {
  return ctx.subgroups && ctx.subgroupMinSize >= lanes;
}

/**
 * The laneSum (shaders/lib/lane_sum.*.wgsl) of a GEMV kernel whose row groups have `lanes` threads: a subgroup
 * butterfly when every subgroup holds whole row groups; subgroupAdd, then workgroup memory across the row group's
 * subgroups, when row groups span subgroups of one fixed size; else a tree in workgroup memory. `code` goes before
 * the kernel, `prelude` into its prelude, `key` into its pipeline key; `subgroups`: whether the prelude enables
 * subgroups.
 */
export function laneSumKernel(ctx: GpuContext, lanes: number): { code: string; prelude: string; key: string; subgroups: boolean } {
  const sg = ctx.subgroupMinSize;
  if (wholeSubgroups(ctx, lanes)) return { code: laneSumSubgroup, prelude: 'enable subgroups;\n', key: 's', subgroups: true };
  if (ctx.subgroups && sg > 1 && sg === ctx.subgroupMaxSize && lanes % sg === 0) {
    return { code: laneSumSplit, prelude: `enable subgroups;\nconst SG = ${sg}u;\n`, key: `h${sg}`, subgroups: true };
  }
  return { code: laneSumShared, prelude: '', key: 'w', subgroups: false };
}
