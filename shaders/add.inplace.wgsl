// Elementwise sum in place (residual connections):  a[i] += b[i]  for i < n.
//
// Bindings: a  f32 [n], read and written
//           b  f32 [n]
//
// Dispatch: one thread per element: i = (wid.x + wid.y * nwg.x) * WG + lid.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < p.n) {
    a[i] += b[i];
  }
}
