/**
 * Kernel tuning: workgroup and tile sizes per device class, picked when the context is created. CPU WebGPU
 * drivers (lavapipe/llvmpipe, SwiftShader) run a workgroup as SIMD loops on one core, where barriers are
 * expensive and a workgroup of one SIMD width (8) wins; GPUs want hundreds of threads per workgroup.
 * bench/ops.ts is where the numbers come from.
 */
/**
 * A linear.mma.wgsl tile: [WM, WN, SGM, SGN, SK, KM?, DIRECT?]: WM x WN blocks of 16 x 16 outputs per subgroup,
 * SGM x SGN subgroups over the workgroup's outputs, SK subgroups splitting K, each multiplying 32 KM of K per step
 * (KM default 1); DIRECT 1: weight blocks loaded from memory by each subgroup (one step ahead, in registers)
 * instead of staged in workgroup memory (default 0; needs K % (32 SK KM) == 0 and weight rows % 32 == 0, else the
 * tile runs staged); XH 1: x converted to f16 by a to_half dispatch first, so that the tile stages half the bytes
 * and converts nothing (default 0: x read as f32 and rounded as it is staged). Gated weights need WN even.
 */
export type MmaTile = [number, number, number, number, number, number?, number?, number?];

export interface KernelTuning {
  /** linear: the largest token count served by the GEMV kernel (each weight row read once per gemvTokens tokens). */
  gemvMaxTokens: number;
  /**
   * linear GEMV: threads per workgroup, threads per row group (splitting K in 16-byte chunks; a power of two; and
   * for rows of gemvLongK or more, gemvLongLanes), weight rows per row group (1, 2 or 4; gated weights need 2 or
   * 4), and tokens per workgroup (a power of two).
   */
  gemvWorkgroup: number;
  gemvLanes: number;
  gemvLongK: number;
  gemvLongLanes: number;
  gemvRows: number;
  gemvTokens: number;
  /**
   * linear GEMV on block-quantized weights (shaders/linear.q.gemv.wgsl; tokens up to gemvMaxTokens, gemvTokens per
   * workgroup): threads per workgroup, threads per row group (splitting K in 32-element chunks; a power of two) and
   * weight rows per row group (2 or 4).
   */
  quantGemv: [number, number, number];
  /** quantGemv's shape for one token (batch-1 decode), where more rows per row group pay off (H200: 64/32/4). */
  quantGemvOne: [number, number, number];
  /** quantGemvOne's shape for rows of gemvLongK or more (the down projection: few rows, many chunks each). */
  quantGemvOneLong: [number, number, number];
  /**
   * The quantized GEMV stages its inputs in workgroup memory (coalesced loads; linear.q.gemv.wgsl's STAGE) instead
   * of each lane loading its chunks' inputs itself.
   */
  quantGemvStage: boolean;
  /**
   * The quantized GEMV with int8 activations (linear.q.gemv.i8.wgsl, llama.cpp's MMVQ: activations quantized to
   * blocks of 32 int8 once per linear, dot4I8Packed on the weights' quants) where the device has WGSL's
   * packed_4x8_integer_dot_product (GpuContext.packedDot) and the format has an int8 reader, for T >= this many
   * tokens (0: never). On an H200 (bench/quant-ops.js --int8 off,on) the float GEMV wins at T = 1 for most shapes
   * (int8 0.6-0.8x for q4_0/q8_0: its quantize pass and lower occupancy cost more than the bytes it saves) and int8
   * wins from T = 4 (1.1-3.5x: the weights are read once for all tokens and the dot products are packed). Off on
   * CPU drivers, whose emulated dot4I8Packed is slower than float FMAs; tests force it on by setting it to 1.
   */
  quantGemvInt8MinTokens: number;
  /**
   * The staged quantized GEMV (quantGemvStage) quantizes its inputs to int8 blocks itself as it stages them and
   * dots the weights' int8 quants (shaders/lib/gemv.stage_i8.wgsl: llama.cpp's MMVQ without the quantize dispatch;
   * the fused RMSNorm, gating, residual and rope kept), for T <= this many tokens (0: never), where the device has
   * packed_4x8_integer_dot_product and the format an int8 reader. Where it applies, quantGemvInt8MinTokens's
   * separate quantize pass does not run. Every workgroup quantizes the whole input: it pays at one token, where it
   * spares the quantize dispatch (and keeps the fused rope); from 2-4 tokens on, the separate pass wins (below).
   * Each 32-element chunk is quantized by four threads (two vec4s each; the chunk's max and sum by subgroup
   * shuffles), so it needs subgroups that follow the invocation index in fours (laneSumKernel's 's' sums). H100,
   * 2026-12-07, engine 1 stream (float inputs / one thread a chunk / four): q4_0 556 / 644 / 716 tok/s, q4_k
   * 624 / 614 / 656; a step's kernels (q4_0, generate.js --profile) 1.92 / 1.97 / 1.79 ms. Reading each lane's
   * first one or two weight chunks before the staging (to overlap their loads with it) took 2.07 / 2.12 ms.
   */
  quantGemvStageInt8: number;
  /**
   * linear on subgroup matrices (tensor cores; used only where the device has chromium-experimental-subgroup-matrix
   * with 16 x 16 x 16 f16 -> f32 matrices and 32-wide subgroups) for T >= mmaMinTokens (0: never), with the tile of
   * the first of mmaTiles whose maxTokens covers T, maxColumns (default: any) the weight's rows and maxDepth
   * (default: any) its columns K (the last one beyond), among the tiles for the weight's kind: weights 'f16' or
   * 'quantized' (default: both).
   */
  mmaMinTokens: number;
  mmaTiles: { maxTokens: number; maxColumns?: number; maxDepth?: number; weights?: 'f16' | 'quantized'; tile: MmaTile }[];
  /**
   * linear on subgroup matrices splits K across workgroups (partial sums added by linear.reduce.wgsl) when its tiles
   * give fewer than this many workgroups: enough of them to keep the GPU's memory busy (0: never).
   */
  mmaSplitWorkgroups: number;
  /**
   * The least K a split covers: every workgroup of a split ends in an epilogue that writes its whole tile of
   * partial sums (a guard for big tiles over few tokens: 128 tokens on 128 x 256 tiles would split K = 2048 into
   * 32 pieces of 64; the tuned tables keep such steps on smaller tiles, where it does not bind).
   */
  mmaMinSplitK: number;
  /**
   * linear for more tokens: 'registers' (linear.tiled.wgsl: register blocks, no shared memory; best on CPU
   * drivers) or 'shared' (linear.gemm.wgsl: shared-memory tiles; for GPUs; needs K % 4 == 0, else 'registers').
   */
  matmul: 'registers' | 'shared';
  /** Register-blocked kernel: workgroup (x threads over columns, y threads over tokens), tokens per thread. */
  tiledWorkgroup: [number, number];
  tiledTokens: number;
  /**
   * Shared-memory kernel: workgroup (each thread a 4 x 4 block: tiles of 4 WY tokens x 4 WX columns) and K step;
   * up to gemmSmallTokens tokens, gemmSmallWorkgroup (smaller tiles: more workgroups for a few tokens).
   */
  gemmWorkgroup: [number, number];
  gemmSmallTokens: number;
  gemmSmallWorkgroup: [number, number];
  gemmK: number;
  /**
   * Paged attention: the subgroup kernel (when the device has subgroups; else the portable one), threads per
   * workgroup (a power of two, at least 32 for the subgroup kernel), and the most q heads (of one kv head) it serves.
   */
  attentionSubgroups: boolean;
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
  /**
   * Steps of at least attentionTiledTokens tokens (0: never) run the tiled kernel for prompts
   * (shaders/paged_attention.tiled.wgsl; needs subgroups and the runner's tile list): a workgroup per tile of
   * consecutive tokens of one sequence, staging attentionTileKeys keys at a time (fewer where the head dim needs:
   * 16 KiB of workgroup memory at most).
   */
  attentionTiledTokens: number;
  attentionTileKeys: number;
  /** Row reductions (norms, argmax): threads per row (a power of two). */
  rowWorkgroup: number;
  /**
   * The split-K epilogue fused with the next RMSNorm (shaders/linear.reduce.norm.wgsl): at most this many threads
   * per row (a power of two), each adding up 4 columns of every split.
   */
  reduceNormWorkgroup: number;
  /**
   * Bytes of padding after each weight row: rows of a power-of-two size (16 KiB for K = 8192 in f16) put every
   * row's same column on the same memory channels, and the GEMMs that walk many rows at once slowed down 2.5-4x
   * (H200, bench/ops.js --pad: down 8192 -> 2048 at 512 tokens 668 -> 265 us, at 1 token 41 -> 16 us; 16 bytes
   * did not help, 64 and 128 did). 0 on CPU drivers.
   */
  weightRowPadding: number;
  /**
   * Submit a step's commands every this many dispatches (0: once, at the end), so that the GPU starts on the first
   * layers while the CPU records the rest.
   */
  submitEvery: number;
}

export const GPU_TUNING: KernelTuning = {
  gemvMaxTokens: 8,
  gemvWorkgroup: 128,
  gemvLanes: 32,
  gemvLongK: 4096,
  gemvLongLanes: 64,
  gemvRows: 2,
  gemvTokens: 4,
  quantGemv: [128, 32, 2],
  // H200 (bench/quant-ops.js, 2026-12-05): at T = 1, 64/32/4 took 16 / 30 / 33 us on q4_0 qkv / gate|up / down
  // against 27 / 46 / 28 for 128/32/2; at T = 4 the 4-row groups lose (gate|up 156 us against 95). H100, engine
  // 1 stream q4_0 (two rounds per call, 2026-12-06): 64/32/4 502-505 tok/s, 128/64/2 481, 256/64/2 452-475,
  // 256/128/2 369-392; another call 64/32/4 471-508, 128/32/2 509-511, 256/32/4 480-483 (f16 548): no shape is
  // the lever (bench/quant-ops.js --int8 off: q4_0 qkv 16-24 us for 3.5 MB where f16's GEMV reads 12.6 MB in 10.7).
  // H100, 2026-12-07 (bench/gpu-gemv.sh, then the engine in one call, two rounds): with the inputs staged, 128/32/2
  // is the fastest one-token shape of every kernel (bench/quant-ops.js: q4_0 qkv / gate|up / down 13.3 / 25.6 / 22.1
  // us against 23.1 / 31.1 / 36.4 for 64/32/4 direct; q4_k 13.7 / 50.9 / 45.5 against 20.1 / 53.6 / 82.5), and
  // engine batch-1 decode (Llama-3.2-1B shapes) q4_0 624 / 624 tok/s against 453 / 505 for 64/32/4 direct, 546 / 546
  // staged, 570 / 571 for 128/64/1 staged, 510 / 504 for 128/32/2 direct; q4_k 564 / 629 against 454 / 448.
  // H100, 2026-12-07, a third call (bench/gpu-gemv.sh: engine 1 stream, two rounds, --timing): 256/32/2 against
  // 128/32/2, q4_0 609 / 647 against 574 / 620 tok/s, q4_k 627 / 636 against 577 / 610; the runner's step replays
  // in 0.64-0.71 ms of CPU and runs back to back at 1.38-1.42 ms: the GPU bounds batch-1 decode, not the host.
  quantGemvOne: [256, 32, 2],
  quantGemvOneLong: [256, 32, 2],
  // A lane's direct loads of its chunks' inputs touch a cache line per lane and vec4 (stride 128 bytes), ~8x the
  // loads a coalesced copy into workgroup memory needs (measured above).
  quantGemvStage: true,
  quantGemvInt8MinTokens: 2,
  // H100, 2026-12-07 (bench/gpu-gemv.sh; per kernel, bench/quant-ops.js --int8 off,on,staged, us for Llama-3.2-1B's
  // qkv / gate|up / down at one token): q4_0 22.3 / 28.1 / 26.0 float, 17.8 / 22.9 / 24.2 int8 in the stage (46.5 /
  // 31.1 / 37.9 with the separate pass); q4_k 26.7 / 46.6 / 33.2 -> 18.0 / 40.3 / 21.0; q8_0 62.9 / 33.0 / 35.0 ->
  // 13.9 / 36.1 / 18.6. At 4-8 tokens the separate pass is ahead (q4_k gate|up at 8: 50 us against 95). Engine,
  // 1 stream, two rounds: q4_k 565 / 625 -> 652 / 655 tok/s, q4_0 648 / 648 -> 631 / 648 (the step's other
  // dispatches bound it there); 8 streams with it at every T: 1,435 against 2,759-2,989, hence one token only.
  quantGemvStageInt8: 1,
  mmaMinTokens: 9,
  // H200, chosen by the kernel time of whole steps (bench/generate.js --mma-tiles --profile; step times swing with
  // the host, and before its warm-up the first case ran at a low clock). Weight-direct tiles (DIRECT): 16 x 64 up
  // to 16 tokens (batch 16: 4.2-4.5 ms a step against 5.7-5.9 with staged tiles); from 17 to 64 tokens, 64 x 32
  // per subgroup, K split over 2 subgroups (batch 64: 5.16 ms of kernels against 5.31 with staged 32 x 32 tiles,
  // gate/up 1.47 -> 1.30 ms; SK 4, 64 x 64 blocks, KM 2 or 4 subgroups were slower). 64 x 128 staged tiles for
  // the LM head and for prefills up to 256 tokens (128 tokens: 6.75 ms a step against 7.3 with the next). Beyond,
  // 128 x 256 tiles of 8 subgroups with 4 x 4 blocks each (47 KiB of workgroup memory; where the limit is lower,
  // the tiles that fit): an engine chunk of 2048 tokens 62 -> 48 ms of kernels (gate/up 75 -> 109 TFLOPS); 2 x 4
  // blocks or KM 2 were slower. There, x goes to f16 first (XH): an engine chunk 43.95 -> 42.79 ms of kernels
  // (the products 35.4 -> 33.2 ms, the to_half dispatches 1.1 ms); at 16 and 64 tokens the to_half dispatches
  // cost what the products gained, and XH with weight-direct tiles, KM 2, SK 4 or 4 x 4 blocks per subgroup lost.
  // Quantized weights are always staged (dequantized on the way into workgroup memory), and staged, the 17-64 token
  // tile loses to the 64 x 128 one: q4_0 at 64 streams (H100, bench/mma-tables.sh, 2026-12-08) 6.17 -> 5.26 ms of
  // kernels a step (gate/up 1.92 -> 1.31, o/down 1.75 -> 1.40, qkv 0.75 -> 0.59), the runner 10,446 -> 13,183
  // tok/s; 64 x 32 blocks over 4 subgroups (KM 1, staged) ran the same 5.25, 2 or 1 subgroups 6.05-7.28.
  mmaTiles: [
    { maxTokens: 16, maxColumns: 32768, tile: [1, 2, 1, 2, 4, 1, 1] },
    { maxTokens: 64, maxColumns: 32768, weights: 'f16', tile: [4, 2, 1, 2, 2, 1, 1] },
    { maxTokens: 256, tile: [2, 4, 2, 2, 1] },
    { maxTokens: Infinity, tile: [4, 4, 2, 4, 1, 1, 0, 1] },
  ],
  // H200 (bench/generate.js --tune mmaSplitWorkgroups=N): decode batch 16 7.6 -> 5.3-5.8 ms, batch 64 unchanged.
  mmaSplitWorkgroups: 264,
  mmaMinSplitK: 256,

  matmul: 'shared',
  tiledWorkgroup: [8, 8],
  tiledTokens: 4,
  gemmWorkgroup: [16, 16],
  gemmSmallTokens: 0, // 8 x 8 tiles measured slower at 64 tokens on an H200
  gemmSmallWorkgroup: [8, 8],
  gemmK: 16,
  attentionSubgroups: true,
  attentionWorkgroup: 128,
  // H200, decode steps (bench/generate.js --profile --tune attentionHeads=N, 16 layers): 2 heads a workgroup (each
  // kv head's keys read by 2 workgroups) against 8: batch 64 at context 192 0.80 -> 0.67-0.69 ms, at context 1024
  // 2.78 -> 2.40-2.53; batch 8 at 1024 1.17 -> 0.97; batch 1 0.47 -> 0.40. 1 head: better for batches of 1 and 16,
  // worse for 64.
  attentionHeads: 2,
  attentionSplitBelow: 256,
  attentionSplitKeys: 32,
  attentionMaxSplits: 32,
  attentionTiledTokens: 128,
  attentionTileKeys: 32,
  rowWorkgroup: 256,
  reduceNormWorkgroup: 512,
  weightRowPadding: 64,
  submitEvery: 32,
};

export const CPU_TUNING: KernelTuning = {
  gemvMaxTokens: 4,
  gemvWorkgroup: 16,
  gemvLanes: 8,
  gemvLongK: 1 << 30,
  gemvLongLanes: 8,
  gemvRows: 2,
  gemvTokens: 4,
  quantGemv: [64, 8, 2],
  quantGemvOne: [64, 8, 2],
  quantGemvOneLong: [64, 8, 2],
  quantGemvStage: false,
  quantGemvInt8MinTokens: 0,
  quantGemvStageInt8: 0,
  mmaMinTokens: 0,
  mmaTiles: [{ maxTokens: Infinity, tile: [2, 2, 1, 1, 1] }],
  mmaSplitWorkgroups: 0,
  mmaMinSplitK: 0,
  matmul: 'registers',
  tiledWorkgroup: [8, 8],
  tiledTokens: 8,
  gemmWorkgroup: [8, 8],
  gemmSmallTokens: 0,
  gemmSmallWorkgroup: [8, 8],
  gemmK: 16,
  attentionSubgroups: true,
  attentionWorkgroup: 16,
  attentionHeads: 4,
  attentionSplitBelow: 0,
  attentionSplitKeys: 256,
  attentionMaxSplits: 8,
  attentionTiledTokens: 128,
  attentionTileKeys: 32,
  rowWorkgroup: 8,
  reduceNormWorkgroup: 8,
  weightRowPadding: 0,
  submitEvery: 0,
};

/** CPU_TUNING for software adapters, GPU_TUNING otherwise. */
export function defaultTuning(info: GPUAdapterInfo): KernelTuning {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  const fallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return fallback || /llvmpipe|lavapipe|swiftshader|software/i.test(text) ? { ...CPU_TUNING } : { ...GPU_TUNING };
}
