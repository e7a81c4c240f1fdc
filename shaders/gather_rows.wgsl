// Row gather (the last token of each sequence before the LM head):  out[s, :] = x[rows[s], :]  for s < S.
//
// Bindings: x     f32 [T, H]
//           rows  u32 [S]
//           out   f32 [S, H]
//
// Dispatch: one thread per output element: e = (wid.x + wid.y * nwg.x) * WG + lid over S H.

struct Params {
  S: u32,
  H: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let e = (wid.x + wid.y * nwg.x) * WG + lid;
  if (e >= p.S * p.H) {
    return;
  }
  let s = e / p.H;
  out[e] = x[rows[s] * p.H + e % p.H];
}
