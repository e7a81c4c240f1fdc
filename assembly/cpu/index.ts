// The single entry of build/cpu.wasm: the CPU backend's kernels (src/cpu/ drives them), free functions over linear
// memory. Its own module and memory, apart from core.wasm (tokenizer, sampler): a model's weights and KV cache live
// here, so core.wasm's heap stays small. The TS facade (src/cpu/cpu-wasm.ts) owns every allocation.
// Modules: linear.ts (matmul over f32 / f16 / q8_0 / q4_0 / q4_k weights), ops.ts (norms, rope, activations,
// paged attention).

export { alloc, free } from '../memory';
export * from './linear';
export * from './ops';
