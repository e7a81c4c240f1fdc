/** WebGPU plumbing: context, buffers, tensors and weights, pipelines, the per-step recorder, kernel tuning. */
export { GpuContext, type GpuContextOptions } from './context.js';
export { BufferUsage, STORAGE_USAGE, createStorageBuffer, createZeroBuffer, readBuffer, writeBuffer } from './buffers.js';
export { PipelineCache, Kernel, type KernelSource, type BindingKind, type BufferBinding } from './pipelines.js';
export { Recorder } from './recorder.js';
export {
  type DType,
  type Tensor,
  type Weight,
  type WeightOptions,
  dtypeBytes,
  numel,
  tensorBytes,
  createTensor,
  uploadTensor,
  readTensor,
  bindTensor,
  sameStart,
  createWeight,
  writeWeightRows,
  destroyWeight,
} from './tensor.js';
export { f32ToF16, f16ToF32, toHalfBits, fromHalfBits } from './half.js';
export { CPU_TUNING, GPU_TUNING, defaultTuning, type KernelTuning } from './tuning.js';
