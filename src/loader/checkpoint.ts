/**
 * The seam between checkpoint formats and the weight loader (models/load-weights.ts): whatever the files are
 * (safetensors shards, a GGUF file or its splits, an AWQ / GPTQ checkpoint repacked on the fly), the loader sees
 * tensors under their Hugging Face names, streamed in chunks of whole rows.
 *
 * A tensor's dtype is a float type ('F32', 'F16', 'BF16': raw little-endian values) or a ggml block type name
 * ('Q8_0', 'Q4_K', ...: each row its blocks back to back, as GGUF stores them and
 * layers/quant/formats/ reads them). 1-D tensors are always float.
 */
import type { ModelSource } from '../platform.js';
import { readCheckpoint, streamTensors, type TensorChunk, type TensorInfo } from './safetensors.js';

/** A tensor as a reader lists it: `dtype` may also be a ggml block type name; `file` names it in errors. */
export type CheckpointTensor = Omit<TensorInfo, 'dtype'> & { dtype: string };

/** A chunk of rows of a CheckpointTensor. */
export type CheckpointChunk = Omit<TensorChunk, 'info'> & { info: CheckpointTensor };

export interface WeightsReader {
  /** Files it reads, for errors ("model.safetensors", "model-Q4_K_M.gguf"). */
  readonly files: string[];
  /** Tensors by Hugging Face name (`model.layers.0.self_attn.q_proj.weight`). */
  readonly tensors: ReadonlyMap<string, CheckpointTensor>;
  /**
   * The tensors' rows, in chunks of whole rows, tensor after tensor in the order given (host memory: one chunk at a
   * time).
   */
  stream(tensors: Iterable<CheckpointTensor>): AsyncIterable<CheckpointChunk>;
}

/**
 * A safetensors checkpoint (model.safetensors, or shards listed by model.safetensors.index.json) as a WeightsReader.
 *
 * @example
 *   const weights = await safetensorsReader(source);
 *   weights.tensors.get('model.norm.weight'); // { dtype: 'BF16', shape: [2048], file: 'model.safetensors', ... }
 */
export async function safetensorsReader(source: ModelSource): Promise<WeightsReader> {
  const ckpt = await readCheckpoint(source);
  return {
    files: ckpt.files,
    tensors: ckpt.tensors,
    stream: (tensors) => streamTensors(source, tensors as Iterable<TensorInfo>),
  };
}
