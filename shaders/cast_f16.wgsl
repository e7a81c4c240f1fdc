// f32 -> f16 copy of an activation (the subgroup-matrix linear reads its input as f16 matrices):
//   out[i] = f16(x[i])   for i < n (n even), stored as u32 words of two halves (pack2x16float: no shader-f16)
//
// Bindings: x    f32 [n]  read as vec2s
//           out  u32 [n / 2]
//
// Dispatch: one thread per word: i = (wid.x + wid.y * nwg.x) * WG + lid.

struct Params {
  words: u32, // n / 2
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < p.words) {
    out[i] = pack2x16float(x[i]);
  }
}
