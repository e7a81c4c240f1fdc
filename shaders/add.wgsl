// Elementwise sum (out of place; add.inplace.wgsl serves out == a):  out[i] = a[i] + b[i]  for i < n.
//
// Bindings: a    f32 [n]
//           b    f32 [n]
//           out  f32 [n]
//
// Dispatch: one thread per element: i = threadIndex (lib/thread.wgsl).

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  if (i < p.n) {
    out[i] = a[i] + b[i];
  }
}
