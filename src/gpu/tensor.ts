/**
 * Tensors (a row-major region of a device buffer) and weights (a matrix split into row ranges that each fit one
 * storage binding).
 */
import { alignUp, createZeroBuffer, readBuffer, STORAGE_USAGE, writeBuffer } from './buffers.js';
import type { GpuContext } from './context.js';
import type { BufferBinding } from './pipelines.js';

export type DType = 'f32' | 'f16' | 'u32' | 'i32';

/** A device buffer region holding a row-major tensor. */
export interface Tensor {
  buffer: GPUBuffer;
  /** Bytes from the buffer's start; a multiple of 256 if nonzero (WebGPU's storage offset alignment). */
  offset: number;
  /** Preallocated (maximum) shape; ops take the runtime row count as an argument. */
  shape: readonly number[];
  dtype: DType;
}

/** A weight matrix [rows, cols] (HF [out, in] layout), split into row ranges of at most maxStorageBufferBindingSize bytes. */
export interface Weight {
  rows: number;
  cols: number;
  dtype: 'f32' | 'f16';
  /**
   * Elements between consecutive rows in a part: `cols`, except f16 with odd `cols`, padded to even so that every
   * row starts 4-byte aligned (WebGPU writes whole 4-byte words).
   */
  rowStride: number;
  parts: { buffer: GPUBuffer; rowStart: number; rows: number }[];
}

export const dtypeBytes = (dtype: DType): number => (dtype === 'f16' ? 2 : 4);

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Bytes the tensor occupies. */
export const tensorBytes = (t: Tensor): number => numel(t.shape) * dtypeBytes(t.dtype);

/**
 * A tensor in a buffer of its own (zero-filled).
 *
 * @example
 * const hidden = createTensor(ctx, [maxTokens, 2048], 'f32', 'hidden'); // f32 [maxTokens, H]
 */
export function createTensor(ctx: GpuContext, shape: readonly number[], dtype: DType, label?: string): Tensor {
  return { buffer: createZeroBuffer(ctx, numel(shape) * dtypeBytes(dtype), label), offset: 0, shape, dtype };
}

/** A tensor in a buffer of its own holding `data` (f16 given as Uint16Array bits). */
export function uploadTensor(
  ctx: GpuContext,
  data: Float32Array | Uint32Array | Int32Array | Uint16Array,
  shape: readonly number[],
  dtype: DType,
  label?: string,
): Tensor {
  const t = createTensor(ctx, shape, dtype, label);
  if (data.length !== numel(shape)) throw new Error(`uploadTensor ${label ?? ''}: ${data.length} values for shape [${shape}]`);
  writeBuffer(ctx, t.buffer, 0, data);
  return t;
}

/** Reads a whole tensor back (f32 -> Float32Array, u32 -> Uint32Array, i32 -> Int32Array, f16 -> Uint16Array bits). */
export async function readTensor(ctx: GpuContext, t: Tensor, count = numel(t.shape)) {
  const bytes = await readBuffer(ctx, t.buffer, t.offset, count * dtypeBytes(t.dtype));
  switch (t.dtype) {
    case 'f32':
      return new Float32Array(bytes);
    case 'u32':
      return new Uint32Array(bytes);
    case 'i32':
      return new Int32Array(bytes);
    case 'f16':
      return new Uint16Array(bytes);
  }
}

/**
 * The buffer range bound for `t`: exactly its bytes (rounded up to 4). Exact ranges let tensors that share one
 * buffer (an arena) be bound together, even for writing; bind groups are cached by range, so pass the
 * preallocated tensors (maximum shapes) and give ops the runtime sizes as arguments.
 */
export function bindTensor(ctx: GpuContext, t: Tensor, what = 'tensor'): BufferBinding {
  // Ops bind the same (long-lived) tensors every step: the checked binding is kept with the tensor.
  const cached = bindings.get(t);
  if (cached && cached.buffer === t.buffer && cached.offset === t.offset) return cached;
  const limits = ctx.limits;
  if (t.offset % limits.minStorageBufferOffsetAlignment !== 0) {
    throw new Error(`${what}: offset ${t.offset} is not a multiple of ${limits.minStorageBufferOffsetAlignment}`);
  }
  const size = Math.max(4, alignUp(tensorBytes(t), 4));
  if (t.offset + size > t.buffer.size || size > limits.maxStorageBufferBindingSize) {
    throw new Error(`${what}: [${t.shape}] ${t.dtype} at offset ${t.offset} does not fit its buffer or one binding`);
  }
  const binding = { buffer: t.buffer, offset: t.offset, size };
  bindings.set(t, binding);
  return binding;
}

/** bindTensor's results by tensor (tensors are treated as immutable once bound). */
const bindings = new WeakMap<Tensor, BufferBinding>();

/** Whether two tensors start at the same byte of the same buffer (an in-place op). */
export const sameStart = (a: Tensor, b: Tensor): boolean => a.buffer === b.buffer && a.offset === b.offset;

export interface WeightOptions {
  /** Elements of padding after each row (default: the tuning's weightRowPadding bytes). */
  rowPadding?: number;
  /** Upper bound on a part's bytes (default and cap: maxStorageBufferBindingSize). Tests use it to force splits. */
  maxPartBytes?: number;
}

/**
 * Allocates a weight [rows, cols] split into parts of whole rows, each within one storage binding.
 *
 * @example
 * const lmHead = createWeight(ctx, 128256, 2048, 'f16', 'lm_head'); // 2 parts of 128 MiB at most each
 */
export function createWeight(
  ctx: GpuContext,
  rows: number,
  cols: number,
  dtype: 'f32' | 'f16',
  label = 'weight',
  opts: WeightOptions = {},
): Weight {
  const padding = opts.rowPadding ?? ctx.tuning.weightRowPadding / dtypeBytes(dtype);
  const rowStride = (dtype === 'f16' ? alignUp(cols, 2) : cols) + padding;
  const rowBytes = rowStride * dtypeBytes(dtype);
  const cap = Math.min(opts.maxPartBytes ?? Infinity, ctx.maxBinding, ctx.limits.maxBufferSize);
  const partRows = Math.floor(cap / rowBytes);
  if (partRows < 1) throw new Error(`${label}: a row of ${rowBytes} bytes exceeds one storage binding (${cap} bytes)`);
  const parts: Weight['parts'] = [];
  for (let rowStart = 0; rowStart < rows || parts.length === 0; rowStart += partRows) {
    const n = Math.min(partRows, rows - rowStart);
    const size = Math.max(16, alignUp(n * rowBytes, 16));
    const buffer = ctx.device.createBuffer({ size, usage: STORAGE_USAGE, label: `${label}[${parts.length}]` });
    parts.push({ buffer, rowStart, rows: n });
  }
  return { rows, cols, dtype, rowStride, parts };
}

/**
 * Uploads rows `rowStart ..` of `w` (the range may span parts). `data` holds whole rows of `cols` values in
 * `w.dtype` (f16 as Uint16Array bits).
 *
 * @example
 * writeWeightRows(ctx, w, 0, f32ToF16(tensorFromSafetensors)); // all rows at once
 */
export function writeWeightRows(ctx: GpuContext, w: Weight, rowStart: number, data: Float32Array | Uint16Array): void {
  const { cols, rowStride } = w;
  if ((w.dtype === 'f16') !== data instanceof Uint16Array) {
    throw new Error(`writeWeightRows: ${w.dtype} weight given ${data.constructor.name}`);
  }
  if (data.length % cols !== 0) throw new Error(`writeWeightRows: ${data.length} values is not whole rows of ${cols}`);
  const n = data.length / cols;
  if (rowStart < 0 || rowStart + n > w.rows) throw new Error(`writeWeightRows: rows ${rowStart}..${rowStart + n} outside ${w.rows}`);
  const esize = dtypeBytes(w.dtype);
  for (const part of w.parts) {
    const lo = Math.max(rowStart, part.rowStart);
    const hi = Math.min(rowStart + n, part.rowStart + part.rows);
    if (lo >= hi) continue;
    let chunk = data.subarray((lo - rowStart) * cols, (hi - rowStart) * cols);
    if (rowStride !== cols) {
      // Padded rows (f16 with odd cols, tuning.weightRowPadding): spread rows to the stride.
      const padded = data instanceof Uint16Array ? new Uint16Array((hi - lo) * rowStride) : new Float32Array((hi - lo) * rowStride);
      for (let r = 0; r < hi - lo; r++) padded.set(chunk.subarray(r * cols, (r + 1) * cols), r * rowStride);
      chunk = padded;
    }
    writeBuffer(ctx, part.buffer, (lo - part.rowStart) * rowStride * esize, chunk);
  }
}

/** Frees a weight's buffers. */
export function destroyWeight(w: Weight): void {
  for (const p of w.parts) p.buffer.destroy();
}
