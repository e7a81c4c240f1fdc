// cpu.wasm's allocator: a bump pointer over linear memory that grows the memory by exactly the pages a request
// needs. AssemblyScript's TLSF (assembly/memory.ts, core.wasm's) grows by at least the memory's current size, so a
// model of 75 MB ends in a 128 MB memory, and a wasm memory never shrinks. The CPU runner's buffers (weights, KV
// cache, activations) live as long as the runner, which owns the whole instance, so nothing is ever freed: blocks
// are laid out back to back, 16-byte aligned, and the runner reserves their planned total with one grow before
// loading. The kernels allocate nothing themselves. The heap starts past the static scratch (scratch.ts).
//
// Example (base = the scratch's end): alloc(100) returns base and moves top to base + 112; reserve(1000)
// then grows memory to the pages that hold base + 1112, and alloc(10) returns base + 112 without growing.

import { SCRATCH, SCRATCH_BYTES } from './scratch';

/** The end of the last block (16-byte aligned); blocks lie in [heapBase(), top). */
let top: usize = SCRATCH + SCRATCH_BYTES;

/** Grows memory (if needed) so that bytes [0, end) exist; false when `end` is past wasm32 or the grow fails. */
function ensure(end: u64): bool {
  if (end > <u64>0x1_0000_0000) return false;
  const have = <u64>memory.size() << 16;
  if (end <= have) return true;
  return memory.grow(<i32>((end - have + 0xffff) >> 16)) >= 0;
}

/** Allocates `size` bytes (16-byte aligned, rounded up to 16); 0 when memory cannot grow that far. */
export function alloc(size: usize): usize {
  const end = (<u64>top + <u64>size + 15) & ~(<u64>15);
  if (!ensure(end)) return 0;
  const ptr = top;
  top = <usize>end;
  return ptr;
}

/** Grows memory once so that `bytes` more can be allocated without growing again; false when it cannot. */
export function reserve(bytes: usize): bool {
  return ensure(<u64>top + <u64>bytes);
}

/** The end of the allocated blocks: top - heapBase() bytes are in use. */
export function heapTop(): usize {
  return top;
}

/** Where the first block starts: past the static scratch. */
export function heapBase(): usize {
  return SCRATCH + SCRATCH_BYTES;
}
