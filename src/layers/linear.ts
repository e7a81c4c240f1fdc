/**
 * Linear layers and how their weights are stored: a LinearMethod says how a weight matrix is held on the GPU, filled
 * from checkpoint rows, multiplied (y = x W^T + b with linear's fused work) and read as an embedding table (tied LM
 * heads share one storage). Models call `linear` / `embed` here and never see the storage, so a new weight format
 * (GGUF Q4_K, AWQ) is one more LinearMethod, with no change to any model file (vLLM's LinearMethodBase).
 *
 * Today: dense f32 and f16 (`denseMethod`), on ops.linear's kernels; llama.cpp's q8_0 and q4_0 blocks
 * (`quantMethod` in layers/quant/, with kernels of their own; EngineOptions.quantization).
 */
import type { GpuContext } from '../gpu/context.js';
import type { Recorder } from '../gpu/recorder.js';
import { createWeight, destroyWeight, dtypeBytes, writeWeightRows, type Tensor, type Weight } from '../gpu/tensor.js';
import { convertTensor, type FloatDtype } from '../loader/convert.js';
import * as ops from '../ops/index.js';

/** A weight matrix [rows, cols] (HF [out, in] layout) in some storage format. */
export interface LinearWeight {
  rows: number;
  cols: number;
  readonly method: LinearMethod;
}

export interface LinearMethod {
  /** The format's name, e.g. 'f16'. */
  readonly name: string;
  /** Allocates a [rows, cols] weight (contents undefined until written). */
  create(ctx: GpuContext, rows: number, cols: number, label: string): LinearWeight;
  /** Fills rows rowStart.. from whole checkpoint rows: `data` holds their raw little-endian values of dtype `src`. */
  writeRows(ctx: GpuContext, w: LinearWeight, rowStart: number, data: Uint8Array, src: FloatDtype): void;
  /** out = x W^T + b (+ the fused work of `opts`); see ops.linear. */
  apply(rec: Recorder, x: Tensor, w: LinearWeight, bias: Tensor | null, out: Tensor, T: number, opts?: ops.LinearOptions): ops.LinearResult;
  /** out[t, :] = W[ids[t], :] * scale (or += with accumulate): the weight read as an embedding table. */
  embed(rec: Recorder, ids: Tensor, w: LinearWeight, out: Tensor, T: number, accumulate?: boolean, scale?: number): void;
  /** GPU bytes the weight holds. */
  bytes(w: LinearWeight): number;
  destroy(w: LinearWeight): void;
}

/**
 * Which method stores a model's matrix: by its slot (weights.ts: 'qkv', 'embed', 'experts.gateUp', ...) and its width
 * (block formats need whole blocks). A model load takes one LinearMethod for all, or a chooser.
 */
export type MethodChooser = (slot: string, cols: number) => LinearMethod;

/**
 * y = x W^T + b through the weight's method.
 *
 * @example
 *   linear(rec, h, layer.qkv, layer.qkvBias, acts.qkv, T, { rmsNorm: { weight: norm, eps } });
 */
export function linear(rec: Recorder, x: Tensor, w: LinearWeight, bias: Tensor | null, out: Tensor, T: number, opts?: ops.LinearOptions): ops.LinearResult {
  return w.method.apply(rec, x, w, bias, out, T, opts);
}

/** Token (or position) embeddings: out[t, :] (+)= W[ids[t], :] * scale. */
export function embed(rec: Recorder, ids: Tensor, w: LinearWeight, out: Tensor, T: number, accumulate = false, scale = 1): void {
  w.method.embed(rec, ids, w, out, T, accumulate, scale);
}

/** A dense weight: ops.linear's row-range parts (gpu/tensor.ts Weight) in f32 or f16. */
export interface DenseWeight extends Weight, LinearWeight {}

const dense = (w: LinearWeight): DenseWeight => w as DenseWeight;

function makeDense(dtype: 'f32' | 'f16'): LinearMethod {
  const method: LinearMethod = {
    name: dtype,
    create: (ctx, rows, cols, label) => ({ ...createWeight(ctx, rows, cols, dtype, label), method }),
    writeRows: (ctx, w, rowStart, data, src) => writeWeightRows(ctx, dense(w), rowStart, convertTensor(data, src, dtype)),
    apply: (rec, x, w, bias, out, T, opts) => ops.linear(rec, x, dense(w), bias, out, T, opts),
    embed: (rec, ids, w, out, T, accumulate, scale) => ops.embed(rec, ids, dense(w), out, T, accumulate, scale),
    bytes: (w) => dense(w).parts.reduce((n, p) => n + p.rows * dense(w).rowStride * dtypeBytes(dtype), 0),
    destroy: (w) => destroyWeight(dense(w)),
  };
  return method;
}

const DENSE = { f32: makeDense('f32'), f16: makeDense('f16') };

/** Dense weights stored in f32 or f16 (f16 needs no shader-f16: kernels unpack halves). */
export function denseMethod(dtype: 'f32' | 'f16'): LinearMethod {
  return DENSE[dtype];
}
