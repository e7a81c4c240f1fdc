/**
 * The GPU context: one adapter, one device, and the per-device caches every op uses (pipelines, bind groups, the
 * uniform ring, the readback staging buffer).
 */
import { alignUp, StagingBuffer, STORAGE_USAGE } from './buffers.js';
import { PipelineCache } from './pipelines.js';
import { UniformRing } from './recorder.js';
import { defaultTuning, type KernelTuning } from './tuning.js';

export interface GpuContextOptions {
  /**
   * Enable shader-f16 on the device. Default: when the adapter has it. No kernel needs it today: f16 weights and
   * KV caches are read and written as packed u32 pairs, so they work on every device.
   */
  f16?: boolean;
  /** Use subgroup operations in kernels that have a subgroup variant. Default: when the adapter has them. */
  subgroups?: boolean;
  /**
   * Use subgroup matrices (tensor cores) for linear with many tokens. Default: when the adapter has
   * chromium-experimental-subgroup-matrix (Dawn exposes it only with its allow_unsafe_apis toggle) with 16 x 16 x 16
   * f16 matrices accumulating in f32 and 32-wide subgroups. Products then round activations to f16.
   */
  subgroupMatrix?: boolean;
  powerPreference?: GPUPowerPreference;
  /** Enable timestamp queries (for GpuProfiler) when the adapter has them. Default: off. */
  timestamps?: boolean;
  /** Workgroup and tile sizes; default: by device class ({@link defaultTuning}). */
  tuning?: KernelTuning;
}

/** Limits requested at the adapter's maximum: big weights, many bindings, large workgroups. */
const MAX_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxUniformBufferBindingSize',
] as const;

const SUBGROUP_MATRIX = 'chromium-experimental-subgroup-matrix';

/** A subgroup-matrix configuration as Dawn reports it in GPUAdapterInfo.subgroupMatrixConfigs. */
interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/** Whether linear.mma.wgsl can run: 16 x 16 x 16 f16 -> f32 subgroup matrices and subgroups of exactly 32. */
function hasSubgroupMatrix(adapter: GPUAdapter): boolean {
  if (!adapter.features.has(SUBGROUP_MATRIX)) return false;
  const info = adapter.info as GPUAdapterInfo & { subgroupMatrixConfigs?: SubgroupMatrixConfig[]; subgroupMinSize?: number; subgroupMaxSize?: number };
  if (info.subgroupMinSize !== 32 || info.subgroupMaxSize !== 32) return false;
  return (info.subgroupMatrixConfigs ?? []).some(
    (c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16,
  );
}

/** A plain copy of a GPUSupportedLimits (its attributes are getters on the prototype). */
function copyLimits(limits: GPUSupportedLimits): GPUSupportedLimits {
  const copy: Record<string, number> = {};
  for (let o = limits; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Object.getOwnPropertyNames(o)) {
      const value = (limits as unknown as Record<string, unknown>)[key];
      if (typeof value === 'number' && !(key in copy)) copy[key] = value;
    }
  }
  return copy as unknown as GPUSupportedLimits;
}

/** Errors kept from `uncapturederror` events (validation errors would otherwise surface as wrong numbers). */
const MAX_KEPT_ERRORS = 32;

/**
 * @example
 * const ctx = await GpuContext.create(await platform.gpu());
 * console.log(ctx.adapterInfo.description, ctx.f16);
 */
export class GpuContext {
  readonly pipelines: PipelineCache;
  readonly uniforms: UniformRing;
  readonly staging: StagingBuffer;
  /** A 16-byte storage buffer bound where a kernel's optional input (e.g. a bias) is absent. */
  readonly dummy: GPUBuffer;
  /** Messages of uncaptured device errors, oldest first (at most 32). */
  readonly errors: string[] = [];
  /** Set when the device is lost. */
  lost: GPUDeviceLostInfo | undefined;
  /** Workgroup and tile sizes the ops use (may be changed between steps; kernels are cached per value). */
  tuning: KernelTuning;

  private constructor(
    /** The WebGPU entry point, kept so that Dawn's instance outlives the device. */
    readonly gpu: GPU,
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    /** shader-f16 is enabled on the device (kernels do not need it: f16 storage is handled as u32 pairs). */
    readonly f16: boolean,
    /** subgroups are enabled on the device and used by kernels. */
    readonly subgroups: boolean,
    /** chromium-experimental-subgroup-matrix is enabled and linear uses it (see GpuContextOptions). */
    readonly subgroupMatrix: boolean,
    /** WGSL has packed_4x8_integer_dot_product (dot4I8Packed, pack4xI8): the int8 quantized GEMV can run. */
    readonly packedDot: boolean,
    tuning: KernelTuning,
  ) {
    this.tuning = tuning;
    this.pipelines = new PipelineCache(device);
    this.uniforms = new UniformRing(device, device.limits.minUniformBufferOffsetAlignment);
    this.staging = new StagingBuffer(device);
    this.dummy = device.createBuffer({ size: 16, usage: STORAGE_USAGE, label: 'dummy' });
    device.addEventListener('uncapturederror', (ev) => {
      const error = (ev as GPUUncapturedErrorEvent).error;
      if (this.errors.length >= MAX_KEPT_ERRORS) this.errors.shift();
      this.errors.push(error.message);
    });
    void device.lost.then((info) => {
      this.lost = info;
    });
  }

  static async create(gpu: GPU, opts: GpuContextOptions = {}): Promise<GpuContext> {
    const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
    if (!adapter) throw new Error("WebGPU: no adapter available (no GPU, or no driver for it; device 'cpu' runs without one)");
    const f16 = (opts.f16 ?? true) && adapter.features.has('shader-f16');
    if (opts.f16 === true && !f16) throw new Error('WebGPU: f16 requested but the adapter lacks shader-f16');
    const subgroups = (opts.subgroups ?? true) && adapter.features.has('subgroups');
    const subgroupMatrix = subgroups && f16 && (opts.subgroupMatrix ?? true) && hasSubgroupMatrix(adapter);
    if (opts.subgroupMatrix === true && !subgroupMatrix) throw new Error('WebGPU: subgroup matrices requested but the adapter lacks 16x16x16 f16 ones');
    const requiredFeatures: GPUFeatureName[] = [];
    if (f16) requiredFeatures.push('shader-f16');
    if (subgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
    if (subgroupMatrix) requiredFeatures.push(SUBGROUP_MATRIX as GPUFeatureName);
    if (opts.timestamps && adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
    const requiredLimits: Record<string, number> = {};
    const adapterLimits = adapter.limits as unknown as Record<string, number>;
    for (const name of MAX_LIMITS) {
      const value = adapterLimits[name];
      if (typeof value === 'number') requiredLimits[name] = value;
    }
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'webgpu-llm' });
    const packedDot = gpu.wgslLanguageFeatures?.has('packed_4x8_integer_dot_product') ?? false;
    return new GpuContext(gpu, adapter, device, f16, subgroups, subgroupMatrix, packedDot, opts.tuning ?? defaultTuning(adapter.info));
  }

  /**
   * The device's limits, read once: Dawn's `device.limits` builds a new object on every access, too slow for the
   * per-dispatch checks of the ops.
   */
  get limits(): GPUSupportedLimits {
    return (this.cachedLimits ??= copyLimits(this.device.limits));
  }

  private cachedLimits: GPUSupportedLimits | undefined;

  get adapterInfo(): GPUAdapterInfo {
    return this.adapter.info;
  }

  /** The smallest subgroup the device may run (1 when unknown or without subgroups). */
  get subgroupMinSize(): number {
    const info = this.adapter.info as GPUAdapterInfo & { subgroupMinSize?: number };
    return this.subgroups ? (info.subgroupMinSize ?? 1) : 1;
  }

  /** The largest subgroup the device may run (1 when unknown or without subgroups). */
  get subgroupMaxSize(): number {
    const info = this.adapter.info as GPUAdapterInfo & { subgroupMaxSize?: number };
    return this.subgroups ? (info.subgroupMaxSize ?? 1) : 1;
  }

  /** Largest storage binding in bytes (a Weight part or a bound tensor range never exceeds it). */
  get maxBinding(): number {
    return this.limits.maxStorageBufferBindingSize;
  }

  private readonly scratch = new Map<string, GPUBuffer>();

  /**
   * A storage buffer of at least `size` bytes for an op's intermediate results, shared by every call of that op
   * (`name`). It is replaced by a larger one when too small; the old one is left to the garbage collector, since
   * a recorded but unsubmitted step may still use it.
   */
  scratchBuffer(name: string, size: number): GPUBuffer {
    let buffer = this.scratch.get(name);
    if (!buffer || buffer.size < size) {
      buffer = this.device.createBuffer({ size: Math.max(alignUp(size, 256), 4096), usage: STORAGE_USAGE, label: `scratch ${name}` });
      this.scratch.set(name, buffer);
    }
    return buffer;
  }

  /** Waits until the GPU has finished everything submitted so far. */
  finish(): Promise<void> {
    return this.device.queue.onSubmittedWorkDone();
  }

  /** Returns and forgets the uncaptured errors seen so far. */
  takeErrors(): string[] {
    return this.errors.splice(0);
  }

  destroy(): void {
    this.uniforms.destroy();
    this.staging.destroy();
    this.dummy.destroy();
    for (const b of this.scratch.values()) b.destroy();
    this.device.destroy();
  }
}
