/**
 * `loadFormat: 'dummy'`: fabricated weights with the checkpoint's names and shapes, for benchmarks that need the
 * cost of a real model but not its values. Like vLLM's `initialize_dummy_weights`, matrices and biases are uniform in
 * [-1e-3, 1e-3]; unlike vLLM (which fills norms with the same noise) norm weights are 1 and norm biases 0, so
 * activations keep a sane scale through the layers.
 *
 * Generation is deterministic per (seed, tensor name, chunk size) and independent of tensor order: each tensor runs
 * its own xorshift32 stream. Each 32-bit draw yields two values, each picked from a 65536-entry table of bin centres already
 * converted to the output dtype, so the fill costs a table lookup per element (no float math, no rounding).
 */
import { f32BitsToF16Bits, type StorageDtype } from './convert.js';
import { DEFAULT_MAX_CHUNK_BYTES, type TensorChunk, type TensorInfo } from './safetensors.js';

/** How dummy weights fill a tensor: random uniform (matrices, biases), ones (norm weights) or zeros (norm biases). */
export type DummyInit = 'uniform' | 'ones' | 'zeros';

/** A checkpoint tensor to fabricate: its name and shape as the checkpoint holds them (a family's weight table). */
export interface TensorSpec {
  name: string;
  shape: number[];
  init: DummyInit;
}

export const DUMMY_LOW = -1e-3;
export const DUMMY_HIGH = 1e-3;
/** vLLM's default seed for dummy weights. */
export const DUMMY_SEED = 1234;
/** The `file` of dummy TensorInfos: there is no file. */
export const DUMMY_FILE = '<dummy>';

export interface DummyOptions {
  /** Storage dtype of the generated data: F16 bits or F32 values. Default f16. */
  dtype?: StorageDtype;
  seed?: number;
  /** Tensors larger than this come in row ranges (as streamTensors does). */
  maxChunkBytes?: number;
  /**
   * Write every chunk into one reused buffer (grown as needed) instead of a fresh one: each chunk's `data` is then
   * valid only until the next chunk is requested. Fresh memory costs page faults that can exceed the fill itself.
   */
  reuseBuffer?: boolean;
}

let tableF16: Uint16Array | undefined;
let tableF32: Float32Array | undefined;

/** Centres of 65536 equal bins over [low, high]. */
function binCentres(): Float32Array {
  tableF32 ??= Float32Array.from({ length: 65536 }, (_, j) => DUMMY_LOW + ((DUMMY_HIGH - DUMMY_LOW) * (j + 0.5)) / 65536);
  return tableF32;
}

function f16Centres(): Uint16Array {
  if (!tableF16) {
    const bits = new Uint32Array(binCentres().buffer);
    tableF16 = Uint16Array.from(bits, (b) => f32BitsToF16Bits(b));
  }
  return tableF16;
}

/** FNV-1a of the name, mixed with the seed (murmur3 finalizer); never 0, which would stall xorshift. */
function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0 || 0x9e3779b9;
}

/** Fills `out` (n elements of 2 or 4 bytes) with uniform values; returns the advanced xorshift32 state. */
function fillUniform(out: Uint8Array, dtype: StorageDtype, state: number): number {
  let x = state;
  if (dtype === 'f16') {
    const t = f16Centres();
    const n = out.byteLength / 2;
    const pairs = new Uint32Array(out.buffer, out.byteOffset, n >>> 1);
    for (let i = 0; i < pairs.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      pairs[i] = t[x & 0xffff] | (t[x >>> 16] << 16);
    }
    if (n & 1) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      new Uint16Array(out.buffer, out.byteOffset, n)[n - 1] = t[x & 0xffff];
    }
  } else {
    const t = binCentres();
    const v = new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4);
    let i = 0;
    for (; i + 1 < v.length; i += 2) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      v[i] = t[x & 0xffff];
      v[i + 1] = t[x >>> 16];
    }
    if (i < v.length) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      v[i] = t[x & 0xffff];
    }
  }
  return x;
}

function fillConstant(out: Uint8Array, dtype: StorageDtype, value: 0 | 1, fresh: boolean): void {
  if (value === 0) {
    if (!fresh) out.fill(0); // fresh buffers are already zero
    return;
  }
  if (dtype === 'f16') new Uint16Array(out.buffer, out.byteOffset, out.byteLength / 2).fill(0x3c00);
  else new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4).fill(1);
}

/**
 * Streams dummy weights for every tensor of `specs` (a checkpoint's, from its family's weight table: see
 * checkpointTensors in src/models/registry.ts), in the chunk format of `streamTensors` (TensorInfo dtype F16 or F32,
 * `file` DUMMY_FILE), so the weight uploader takes either source.
 *
 * @example
 *   for (const chunk of streamDummyTensors(checkpointTensors(cfg), { dtype: 'f16' })) upload(chunk);
 */
export function* streamDummyTensors(specs: Iterable<TensorSpec>, opts: DummyOptions = {}): Generator<TensorChunk> {
  const scratch: Scratch = { buf: null };
  for (const spec of specs) yield* chunksOf(spec, opts, scratch);
}

/** The reused buffer of `reuseBuffer`, shared across the tensors of one stream. */
interface Scratch {
  buf: ArrayBuffer | null;
}

/** Chunks of one dummy tensor (rows [rowStart, rowStart + rows) each, at most maxChunkBytes unless one row is larger). */
export function dummyTensorChunks(spec: TensorSpec, opts: DummyOptions = {}): Generator<TensorChunk> {
  return chunksOf(spec, opts, { buf: null });
}

function* chunksOf(spec: TensorSpec, opts: DummyOptions, scratch: Scratch): Generator<TensorChunk> {
  const dtype = opts.dtype ?? 'f16';
  const maxChunk = opts.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  const elemBytes = dtype === 'f16' ? 2 : 4;
  const numel = spec.shape.reduce((a, b) => a * b, 1);
  const info: TensorInfo = {
    name: spec.name,
    dtype: dtype === 'f16' ? 'F16' : 'F32',
    shape: spec.shape,
    file: DUMMY_FILE,
    offset: 0,
    byteLength: numel * elemBytes,
  };
  const totalRows = spec.shape.length === 0 ? 1 : spec.shape[0];
  if (numel === 0) {
    yield { info, rowStart: 0, rows: totalRows, data: new Uint8Array(0) };
    return;
  }
  const rowBytes = info.byteLength / totalRows;
  const step = info.byteLength <= maxChunk ? totalRows : Math.max(1, Math.floor(maxChunk / rowBytes));
  let state = streamSeed(opts.seed ?? DUMMY_SEED, spec.name);
  for (let r = 0; r < totalRows; r += step) {
    const rows = Math.min(step, totalRows - r);
    const n = rows * rowBytes;
    let data: Uint8Array;
    if (opts.reuseBuffer) {
      if (!scratch.buf || scratch.buf.byteLength < n) scratch.buf = new ArrayBuffer(Math.max(n, Math.min(maxChunk, 2 * (scratch.buf?.byteLength ?? 0))));
      data = new Uint8Array(scratch.buf, 0, n);
    } else {
      data = new Uint8Array(n);
    }
    if (spec.init === 'uniform') state = fillUniform(data, dtype, state);
    else fillConstant(data, dtype, spec.init === 'ones' ? 1 : 0, !opts.reuseBuffer);
    yield { info, rowStart: r, rows, data };
  }
}
