// The static scratch area of cpu.wasm: SCRATCH_BYTES at the start of the heap, below every block heap.ts allocates
// (its base is past it), so that no data segment holds it (an imported memory's zeros would be stored in the module
// and written again by every worker's instantiation). Not exported from the module (index.ts). Its user:
// pack.ts's packRows, which copies one group of 4 rows here (only the calling thread packs).

/** One group of 4 rows of K = 32768 (18 bytes per 32): the widest that packRows rearranges. */
export const SCRATCH_BYTES: usize = 4 * 18 * (32768 / 32);

/** Where the scratch starts (__heap_base rounded up to 16). */
export const SCRATCH: usize = (__heap_base + 15) & ~15;
