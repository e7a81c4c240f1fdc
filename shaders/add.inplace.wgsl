// Elementwise sum in place (residual connections):  a[i] += b[i]  for i < n.
//
// Bindings: a  f32 [n], read and written
//           b  f32 [n]
//
// Dispatch: one thread per element: i = threadIndex (lib/thread.wgsl).

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  if (i < p.n) {
    a[i] += b[i];
  }
}
