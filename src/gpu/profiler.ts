/**
 * Per-kernel GPU time, for benchmarks: with a profiler attached, the recorder gives every dispatch a compute pass
 * of its own whose start and end write timestamps (the `timestamp-query` feature; GpuContextOptions.timestamps).
 * Passes of one dispatch serialize the step, so totals are an upper bound on the kernels' share of a real step.
 *
 * @example
 * const profiler = new GpuProfiler(ctx);
 * rec.profiler = profiler;
 * model.forward(rec, ...); rec.submit();
 * const byKernel = await profiler.read(); // Map<kernel name, { count, ms }>
 */
import { BufferUsage, MAP_READ } from './buffers.js';
import type { GpuContext } from './context.js';

const QUERY_BYTES = 8;

export class GpuProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  private readonly readBuffer: GPUBuffer;
  private readonly names: string[] = [];

  constructor(
    private readonly ctx: GpuContext,
    /** Most dispatches between two reads. */
    readonly capacity = 2048,
  ) {
    if (!ctx.device.features.has('timestamp-query')) throw new Error('GpuProfiler: the device lacks timestamp-query');
    const count = 2 * capacity;
    this.querySet = ctx.device.createQuerySet({ type: 'timestamp', count });
    this.resolveBuffer = ctx.device.createBuffer({ size: count * QUERY_BYTES, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
    this.readBuffer = ctx.device.createBuffer({ size: count * QUERY_BYTES, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  }

  /** Timestamp writes for the next dispatch's pass, named `name`. */
  next(name: string): GPUComputePassTimestampWrites {
    const i = this.names.length;
    if (i >= this.capacity) throw new Error(`GpuProfiler: more than ${this.capacity} dispatches before read()`);
    this.names.push(name);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** GPU time per kernel name of the dispatches since the last read (submit them first); starts over. */
  async read(): Promise<Map<string, { count: number; ms: number }>> {
    const n = this.names.length;
    const result = new Map<string, { count: number; ms: number }>();
    if (n === 0) return result;
    const encoder = this.ctx.device.createCommandEncoder({ label: 'profiler' });
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, this.readBuffer, 0, 2 * n * QUERY_BYTES);
    this.ctx.device.queue.submit([encoder.finish()]);
    await this.readBuffer.mapAsync(MAP_READ, 0, 2 * n * QUERY_BYTES);
    const ticks = new BigUint64Array(this.readBuffer.getMappedRange(0, 2 * n * QUERY_BYTES).slice(0));
    this.readBuffer.unmap();
    for (let i = 0; i < n; i++) {
      const ms = Number(ticks[2 * i + 1] - ticks[2 * i]) / 1e6;
      const entry = result.get(this.names[i]) ?? { count: 0, ms: 0 };
      entry.count++;
      entry.ms += ms;
      result.set(this.names[i], entry);
    }
    this.names.length = 0;
    return result;
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuffer.destroy();
    this.readBuffer.destroy();
  }
}
