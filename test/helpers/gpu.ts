import { nodeGpu } from '../../bindings/node/webgpu.js';
import { GpuContext } from '../../src/gpu/context.js';

let ctx: Promise<GpuContext> | undefined;

/**
 * The GPU context shared by every test of a file (vitest runs each file in its own process, and Dawn allows one
 * device per adapter per process).
 */
export function getTestGpu(): Promise<GpuContext> {
  ctx ??= nodeGpu().then((gpu) => GpuContext.create(gpu));
  return ctx;
}
