// LayerNorm over rows of H values (out of place):
//   out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * weight + bias,  var = mean((x - mean)^2) (biased, as torch)
//
// Bindings: x       f32 [rows, H]
//           weight  f32 [H]
//           bias    f32 [H]
//           out     f32 [rows, H]
//
// Dispatch: one workgroup of WG threads per row r = wid.x + wid.y * nwg.x; workgroupSum (lib/workgroup_sum.wgsl) sums x, then (x - mean)^2.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: ROW_PARAMS in src/ops/norm.ts
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

/** Threads per workgroup; a power of two. */
override WG: u32 = 128;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) {
    return;
  }
  let base = r * p.H;
  var sum = 0.0;
  for (var i = lid; i < p.H; i += WG) {
    sum += x[base + i];
  }
  let mean = workgroupSum(sum, lid) / f32(p.H);
  var sq = 0.0;
  for (var i = lid; i < p.H; i += WG) {
    let d = x[base + i] - mean;
    sq += d * d;
  }
  let inv = inverseSqrt(workgroupSum(sq, lid) / f32(p.H) + p.eps);
  for (var i = lid; i < p.H; i += WG) {
    out[base + i] = (x[base + i] - mean) * inv * weight[i] + bias[i];
  }
}
