// Elementwise activation in place:  x[i] = act(x[i])  for i < n  (act from lib/activation.wgsl: ACT).
//
// Bindings: x  f32 [n], read and written
//
// Dispatch: one thread per element: i = threadIndex (lib/thread.wgsl).

@group(0) @binding(0) var<uniform> p: Params; // struct Params: ELEMENT_PARAMS in src/ops/elementwise.ts
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  if (i < p.n) {
    x[i] = activation(x[i]);
  }
}
