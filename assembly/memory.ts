// Allocation entry points for the TS facade. The module runs AssemblyScript's "minimal" runtime, whose heap is
// TLSF: `free` really returns memory, so a tokenizer that is dropped can give its tables back.

/** Allocates `size` bytes (16-byte aligned); the memory may grow, detaching JS views of the old buffer. */
export function alloc(size: usize): usize {
  return heap.alloc(size);
}

/** Frees a block returned by `alloc`. */
export function free(ptr: usize): void {
  heap.free(ptr);
}
