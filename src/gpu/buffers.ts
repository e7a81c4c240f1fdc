/**
 * Buffer helpers: storage buffers with data, zeroed buffers, and readback through a reusable staging buffer.
 */
import type { GpuContext } from './context.js';

/** GPUBufferUsage flags (values fixed by the WebGPU spec; `src/` does not rely on the global enum objects). */
export const BufferUsage = {
  MAP_READ: 0x1,
  MAP_WRITE: 0x2,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  INDEX: 0x10,
  VERTEX: 0x20,
  UNIFORM: 0x40,
  STORAGE: 0x80,
  INDIRECT: 0x100,
  QUERY_RESOLVE: 0x200,
} as const;

/** GPUMapMode.READ */
export const MAP_READ = 0x1;

/** Usage of every tensor and weight buffer: bound as storage, written by the queue, read back or copied. */
export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/** Rounds `n` up to a multiple of `m`. */
export const alignUp = (n: number, m: number): number => Math.ceil(n / m) * m;

/**
 * A zero-filled storage buffer of at least `size` bytes (rounded up to 16).
 *
 * @example
 * const hidden = createZeroBuffer(ctx, maxTokens * hiddenSize * 4, 'hidden'); // f32 [maxTokens, hiddenSize]
 */
export function createZeroBuffer(ctx: GpuContext, size: number, label?: string): GPUBuffer {
  // WebGPU zero-initialises every new buffer.
  return ctx.device.createBuffer({ size: Math.max(16, alignUp(size, 16)), usage: STORAGE_USAGE, label });
}

/**
 * A storage buffer holding `data` (size rounded up to 16 bytes; the tail is zero).
 *
 * @example
 * const ids = createStorageBuffer(ctx, new Uint32Array([1, 2, 3]), 'ids');
 */
export function createStorageBuffer(ctx: GpuContext, data: ArrayBufferView, label?: string): GPUBuffer {
  const size = Math.max(16, alignUp(data.byteLength, 16));
  const buffer = ctx.device.createBuffer({ size, usage: STORAGE_USAGE, label, mappedAtCreation: true });
  new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buffer.unmap();
  return buffer;
}

/**
 * Writes `data` at byte `offset` of `buffer` through the queue. WebGPU wants 4-byte multiples; a 2-byte tail (odd
 * f16 count) is padded with a zero half, so the caller must own those bytes.
 */
export function writeBuffer(ctx: GpuContext, buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
  let bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 !== 0) {
    const padded = new Uint8Array(alignUp(bytes.byteLength, 4));
    padded.set(bytes);
    bytes = padded;
  }
  ctx.device.queue.writeBuffer(buffer, offset, bytes, 0, bytes.byteLength);
}

/**
 * Copies `size` bytes at `offset` of `buffer` back to the CPU. Submits its own copy after everything already
 * submitted, so submit the step's recorder first. Calls are serialised on one reusable MAP_READ staging buffer.
 *
 * @example
 * const ids = new Uint32Array(await readBuffer(ctx, sampled.buffer, sampled.offset, numSeqs * 4));
 */
export async function readBuffer(ctx: GpuContext, buffer: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
  return ctx.staging.read(buffer, offset, size);
}

/** One growable MAP_READ buffer; reads queue behind each other so it is never mapped twice. */
export class StagingBuffer {
  private buffer: GPUBuffer | undefined;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly device: GPUDevice) {}

  read(src: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    const result = this.tail.then(() => this.readNow(src, offset, size));
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async readNow(src: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    // copyBufferToBuffer needs 4-byte aligned offsets and sizes: widen the range, then slice.
    const start = offset - (offset % 4);
    const length = alignUp(offset + size, 4) - start;
    if (!this.buffer || this.buffer.size < length) {
      this.buffer?.destroy();
      this.buffer = this.device.createBuffer({
        size: Math.max(alignUp(length, 4096), 4096),
        usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST,
        label: 'readback staging',
      });
    }
    const staging = this.buffer;
    const encoder = this.device.createCommandEncoder({ label: 'readback' });
    encoder.copyBufferToBuffer(src, start, staging, 0, length);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_READ, 0, length);
    const out = staging.getMappedRange(0, length).slice(offset - start, offset - start + size);
    staging.unmap();
    return out;
  }

  destroy(): void {
    this.buffer?.destroy();
    this.buffer = undefined;
  }
}
