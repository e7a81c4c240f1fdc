/**
 * Kernel tuning: workgroup and tile sizes per device class, picked when the context is created. CPU WebGPU
 * drivers (lavapipe/llvmpipe, SwiftShader) run a workgroup as SIMD loops on one core, where barriers are
 * expensive and a workgroup of one SIMD width (8) wins; GPUs want hundreds of threads per workgroup.
 * bench/ops.ts is where the numbers come from.
 */
export interface KernelTuning {
  /** linear: the largest token count served by the GEMV kernel (threads split K; one weight read per 4 tokens). */
  gemvMaxTokens: number;
  /** linear GEMV: threads per workgroup, and threads sharing one quad of weight rows (powers of two, split <= workgroup). */
  gemvWorkgroup: number;
  gemvSplit: number;
  /**
   * linear for more tokens: 'registers' (linear.tiled.wgsl: register blocks, no shared memory; best on CPU
   * drivers) or 'shared' (linear.gemm.wgsl: shared-memory tiles; for GPUs; needs K % 4 == 0, else 'registers').
   */
  matmul: 'registers' | 'shared';
  /** Register-blocked kernel: workgroup (x threads over columns, y threads over tokens), tokens per thread. */
  tiledWorkgroup: [number, number];
  tiledTokens: number;
  /** Shared-memory kernel: workgroup (each thread a 4 x 4 block: tiles of 4 WY tokens x 4 WX columns) and K step. */
  gemmWorkgroup: [number, number];
  gemmK: number;
  /** Paged attention: threads per workgroup (a power of two), and the most q heads (of one kv head) it serves. */
  attentionWorkgroup: number;
  attentionHeads: number;
  /**
   * Split-K (flash decoding): when a step has fewer than this many attention workgroups (tokens x kv-head groups),
   * each token's keys are cut into pieces of about attentionSplitKeys keys (at most attentionMaxSplits pieces),
   * processed by separate workgroups and merged by a second dispatch. 0 disables.
   */
  attentionSplitBelow: number;
  attentionSplitKeys: number;
  attentionMaxSplits: number;
  /** Row reductions (norms, argmax): threads per row (a power of two). */
  rowWorkgroup: number;
}

export const GPU_TUNING: KernelTuning = {
  gemvMaxTokens: 8,
  gemvWorkgroup: 256,
  gemvSplit: 64,
  matmul: 'shared',
  tiledWorkgroup: [8, 8],
  tiledTokens: 4,
  gemmWorkgroup: [16, 16],
  gemmK: 16,
  attentionWorkgroup: 64,
  attentionHeads: 8,
  attentionSplitBelow: 256,
  attentionSplitKeys: 256,
  attentionMaxSplits: 32,
  rowWorkgroup: 256,
};

export const CPU_TUNING: KernelTuning = {
  gemvMaxTokens: 4,
  gemvWorkgroup: 16,
  gemvSplit: 16,
  matmul: 'registers',
  tiledWorkgroup: [8, 8],
  tiledTokens: 8,
  gemmWorkgroup: [8, 8],
  gemmK: 16,
  attentionWorkgroup: 16,
  attentionHeads: 4,
  attentionSplitBelow: 0,
  attentionSplitKeys: 256,
  attentionMaxSplits: 8,
  rowWorkgroup: 8,
};

/** CPU_TUNING for software adapters, GPU_TUNING otherwise. */
export function defaultTuning(info: GPUAdapterInfo): KernelTuning {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return fallback || /llvmpipe|lavapipe|swiftshader|software/i.test(text) ? { ...CPU_TUNING } : { ...GPU_TUNING };
}
