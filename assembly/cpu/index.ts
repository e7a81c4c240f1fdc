// The single entry of build/cpu.wasm: the CPU backend's kernels (src/cpu/ drives them), free functions over linear
// memory. Its own module and memory, apart from core.wasm (tokenizer, sampler): a model's weights and KV cache live
// here, so core.wasm's heap stays small. The TS facade (src/cpu/cpu-wasm.ts) owns every allocation.
// Modules: linear.ts (matmul of f32 activations with f32 / f16 weights; row dequantization), linear-q8.ts
// (quantizing activations to 8 bits, matmul of them with q8_0 / q4_0 / q4_k / iq4_nl / iq4_xs weights), blocks.ts
// (their shared helpers), ops.ts (norms, rope, activations, paged attention), pack.ts (q4_0 / iq4_nl rows into
// the kernels' groups of 4, on load). Built twice (package.json build:wasm):
// build/cpu.wasm with its own memory, and build/cpu-mt.wasm
// over an imported shared memory, which the worker threads of src/cpu/cpu-threads.ts instantiate too (only the
// calling thread allocates; workers run `linear` / `linearQ8` on their rows). Allocation: heap.ts (a bump pointer
// that grows memory by exactly what is asked, not TLSF's doubling).

export * from './heap';
export * from './linear';
export * from './linear-q8';
export * from './ops';
export * from './pack';
