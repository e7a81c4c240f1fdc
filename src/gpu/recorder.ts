/**
 * The recorder: one command encoder per engine step. Ops append dispatches; compute passes are opened and closed
 * as needed (copies need a closed pass); `submit()` writes the step's uniform params with one `writeBuffer` and
 * submits one command buffer.
 */
import { BufferUsage } from './buffers.js';
import type { GpuContext } from './context.js';
import type { BufferBinding, Kernel, ParamFields, ParamValues } from './pipelines.js';
import type { GpuProfiler } from './profiler.js';

/** Bytes in the uniform ring: 4096 dispatches at NVIDIA's 256-byte offset alignment before a mid-step flush. */
const RING_BYTES = 1 << 20;

/**
 * Uniform params for every dispatch of a step, one slot per dispatch, mirrored on the CPU and uploaded once per
 * submit. Slots restart at 0 when no recorder is open; queue order makes that safe (a later `writeBuffer` runs
 * after the earlier submits that read the old values).
 */
export class UniformRing {
  readonly buffer: GPUBuffer;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f32: Float32Array;
  /** Slot alignment in bytes (the device's minUniformBufferOffsetAlignment). */
  readonly align: number;
  cursor = 0;
  /** Recorders with slots not yet uploaded. */
  open = 0;

  constructor(device: GPUDevice, align: number) {
    this.align = Math.max(16, align);
    this.buffer = device.createBuffer({ size: RING_BYTES, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST, label: 'uniform ring' });
    const mirror = new ArrayBuffer(RING_BYTES);
    this.u32 = new Uint32Array(mirror);
    this.i32 = new Int32Array(mirror);
    this.f32 = new Float32Array(mirror);
  }

  get size(): number {
    return RING_BYTES;
  }

  destroy(): void {
    this.buffer.destroy();
  }
}

/** One command of a {@link StepGraph}. */
type Command =
  | { kind: 'dispatch'; pipeline: GPUComputePipeline; group: GPUBindGroup; params: Uint32Array; paramsSize: number; x: number; y: number; z: number; name: string }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number }
  | { kind: 'clear'; buffer: GPUBuffer; offset: number; size: number | undefined };

/**
 * Commands recorded once by {@link Recorder.capture} and replayed into later steps by {@link Recorder.replay}: the
 * pipelines, bind groups, uniform params (as raw words) and sizes of each dispatch, and the copies, in order. The
 * ops' own work (checks, kernel choice, params, bind-group lookup) is done once; a replay only hands Dawn the
 * commands, as vLLM's CUDA graphs spare the CPU a step's kernel launches. Valid while what the ops chose from is
 * unchanged: the same buffers (bind groups hold them) and the same values of everything the params came from.
 */
export interface StepGraph {
  readonly commands: readonly Command[];
}

/**
 * Records one engine step.
 *
 * @example
 * const rec = new Recorder(ctx);
 * rmsNorm(rec, hidden, normWeight, normed, T, H, 1e-6);
 * linear(rec, normed, wqkv, null, qkv, T);
 * rec.submit();
 */
export class Recorder {
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private lastPipeline: GPUComputePipeline | undefined;
  /** Byte range of the ring this recorder wrote since its last upload. */
  private lo = Infinity;
  private hi = 0;
  /** Dispatches recorded since construction (for tests and benchmarks). */
  dispatches = 0;
  /** Reused for setBindGroup's dynamic offset (Dawn copies it), sparing an allocation per dispatch. */
  private readonly offsets = [0];
  /** Dispatches recorded since the last submit (see KernelTuning.submitEvery). */
  private pending = 0;
  /** When set, every dispatch runs in a pass of its own, timed (benchmarks only). */
  profiler: GpuProfiler | null = null;
  /** Off: nothing is submitted before `submit()` (KernelTuning.submitEvery is ignored), e.g. to `discard()` it. */
  autoSubmit = true;
  /** Commands being captured (see capture). */
  private log: Command[] | null = null;

  constructor(
    readonly ctx: GpuContext,
    readonly label = 'step',
  ) {}

  /**
   * Appends a dispatch of `kernel`: writes `params` (by field name, typed by the kernel's params struct) into a
   * fresh uniform slot and binds `bindings` to bindings 1.. (a cached bind group).
   */
  run<F extends ParamFields>(kernel: Kernel<F>, params: ParamValues<F>, bindings: readonly BufferBinding[], x: number, y = 1, z = 1): void {
    if (x === 0 || y === 0 || z === 0) return;
    const ring = this.ctx.uniforms;
    const struct = kernel.params;
    const offset = this.slot(struct.size);
    const base = offset >> 2;
    struct.write(ring.u32, ring.i32, ring.f32, base, params);
    // Bit j: read binding j shares its buffer with a write binding (see Kernel.variant).
    let aliased = 0;
    const kinds = kernel.bindings;
    for (let i = 0; i < bindings.length; i++) {
      if (kinds[i] !== 'write') continue;
      for (let j = 0; j < bindings.length; j++) {
        if (kinds[j] === 'read' && bindings[j].buffer === bindings[i].buffer) aliased |= 1 << j;
      }
    }
    const variant = kernel.variant(aliased);
    const group = this.ctx.pipelines.bindGroup(variant.layout, ring.buffer, kernel.paramsSize, bindings);
    const name = kernel.source.name;
    const { paramsSize } = kernel;
    this.log?.push({ kind: 'dispatch', pipeline: variant.pipeline, group, params: ring.u32.slice(base, base + struct.types.length), paramsSize, x, y, z, name });
    this.offsets[0] = offset;
    this.dispatch(variant.pipeline, group, x, y, z, this.offsets, name);
  }

  /**
   * Runs `record` (which records through this recorder's run, copy and clear only), recording as usual, and
   * returns its commands as a graph that {@link replay} appends to later steps without running `record` again.
   */
  capture(record: () => void): StepGraph {
    if (this.log) throw new Error('Recorder.capture: already capturing');
    const commands: Command[] = (this.log = []);
    try {
      record();
    } finally {
      this.log = null;
    }
    return { commands };
  }

  /** Appends a captured graph's commands: its dispatches with their params in fresh uniform slots, its copies. */
  replay(graph: StepGraph): void {
    const ring = this.ctx.uniforms;
    for (const c of graph.commands) {
      if (c.kind === 'copy') {
        this.copy(c.src, c.srcOffset, c.dst, c.dstOffset, c.size);
        continue;
      }
      if (c.kind === 'clear') {
        this.clear(c.buffer, c.offset, c.size);
        continue;
      }
      const offset = this.slot(c.paramsSize);
      ring.u32.set(c.params, offset >> 2);
      this.offsets[0] = offset;
      this.dispatch(c.pipeline, c.group, c.x, c.y, c.z, this.offsets, c.name);
    }
  }

  /** A fresh uniform slot for `paramsSize` bytes of params: its byte offset in the ring. */
  private slot(paramsSize: number): number {
    const ring = this.ctx.uniforms;
    const slot = Math.ceil(paramsSize / ring.align) * ring.align;
    if (ring.cursor + slot > ring.size) this.flushRing(slot);
    if (this.lo === Infinity) ring.open++;
    const offset = ring.cursor;
    ring.cursor += slot;
    this.lo = Math.min(this.lo, offset);
    this.hi = Math.max(this.hi, offset + paramsSize);
    return offset;
  }

  /** Appends a dispatch with a caller-built bind group. */
  dispatch(pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, x: number, y = 1, z = 1, dynamicOffsets?: number[], name = pipeline.label): void {
    if (this.profiler) {
      this.endPass();
      this.encoder ??= this.ctx.device.createCommandEncoder({ label: this.label });
      this.pass = this.encoder.beginComputePass({ label: name, timestampWrites: this.profiler.next(name) });
      this.lastPipeline = undefined;
    }
    const pass = this.computePass();
    if (pipeline !== this.lastPipeline) {
      pass.setPipeline(pipeline);
      this.lastPipeline = pipeline;
    }
    if (dynamicOffsets) pass.setBindGroup(0, bindGroup, dynamicOffsets);
    else pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
    if (this.profiler) this.endPass();
    // Hand the GPU what is recorded so far, so that it runs while the rest of the step is recorded.
    const every = this.ctx.tuning.submitEvery;
    if (this.autoSubmit && every > 0 && ++this.pending >= every) this.submit();
  }

  /** Appends a buffer-to-buffer copy (offsets and size multiples of 4). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.log?.push({ kind: 'copy', src, srcOffset, dst, dstOffset, size });
    this.commandEncoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  /** Appends a zero fill of `size` bytes at `offset` (multiples of 4). */
  clear(buffer: GPUBuffer, offset = 0, size?: number): void {
    this.log?.push({ kind: 'clear', buffer, offset, size });
    this.commandEncoder.clearBuffer(buffer, offset, size);
  }

  /** The encoder with no compute pass open, for commands other than dispatches. */
  get commandEncoder(): GPUCommandEncoder {
    this.endPass();
    return (this.encoder ??= this.ctx.device.createCommandEncoder({ label: this.label }));
  }

  /** Uploads this step's uniforms and submits everything recorded. The recorder can record the next step. */
  submit(): void {
    this.pending = 0;
    this.endPass();
    this.uploadRing();
    if (this.encoder) {
      this.ctx.device.queue.submit([this.encoder.finish()]);
      this.encoder = undefined;
    }
  }

  /**
   * Drops what was recorded since the last submit, unrun, and frees its uniform slots. Recording alone builds the
   * pipelines and bind groups a step needs (a warm-up); record such steps with `autoSubmit` off.
   */
  discard(): void {
    this.pending = 0;
    this.endPass();
    this.encoder = undefined;
    if (this.lo === Infinity) return;
    this.lo = Infinity;
    this.hi = 0;
    const ring = this.ctx.uniforms;
    if (--ring.open === 0) ring.cursor = 0;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) {
      this.encoder ??= this.ctx.device.createCommandEncoder({ label: this.label });
      this.pass = this.encoder.beginComputePass({ label: this.label });
      this.lastPipeline = undefined;
    }
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = undefined;
    }
  }

  private uploadRing(): void {
    if (this.lo === Infinity) return;
    const ring = this.ctx.uniforms;
    const lo = this.lo;
    const hi = Math.ceil(this.hi / 4) * 4;
    // The written byte range of the mirror (dawn.node: an ArrayBuffer with a range is 1-4 us cheaper than a view).
    this.ctx.device.queue.writeBuffer(ring.buffer, lo, ring.u32.buffer as ArrayBuffer, lo, hi - lo);
    this.lo = Infinity;
    this.hi = 0;
    if (--ring.open === 0) ring.cursor = 0;
  }

  /** The ring is full: submit what is recorded so far (its uniforms first) and start over at slot 0. */
  private flushRing(slot: number): void {
    const ring = this.ctx.uniforms;
    const mine = this.lo === Infinity ? 0 : 1;
    if (ring.open > mine) {
      throw new Error('uniform ring full while several recorders are open; submit one before recording more');
    }
    if (slot > ring.size) throw new Error(`params of ${slot} bytes exceed the uniform ring`);
    this.submit();
    ring.cursor = 0;
  }
}
