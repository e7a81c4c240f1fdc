// Elementwise activation (out of place; act.inplace.wgsl serves out == x):
//   out[i] = act(x[i])  for i < n  (act from lib/activation.wgsl: ACT).
//
// Bindings: x    f32 [n]
//           out  f32 [n]
//
// Dispatch: one thread per element: i = threadIndex (lib/thread.wgsl).

@group(0) @binding(0) var<uniform> p: Params; // struct Params: ELEMENT_PARAMS in src/ops/elementwise.ts
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  if (i < p.n) {
    out[i] = activation(x[i]);
  }
}
