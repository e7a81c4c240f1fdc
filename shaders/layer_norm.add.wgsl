// Residual add fused with the next LayerNorm, both in place:
//   x[r, :] += h[r, :];  h[r, :] = (x[r, :] - mean) / sqrt(var + eps) * weight + bias   for r < rows
// (biased variance, as torch). x is the residual stream, h the sublayer's output, which after the add is dead and
// takes the normalised row.
//
// Bindings: x       f32 [rows, H], read and written
//           h       f32 [rows, H], read and written
//           weight  f32 [H]
//           bias    f32 [H]
//
// Dispatch: one workgroup of WG threads per row r = wid.x + wid.y * nwg.x; workgroupSum (lib/workgroup_sum.wgsl) sums x, then (x - mean)^2.
// Each thread touches only elements i = lid, lid + WG, ... of its row.

struct Params {
  rows: u32,
  H: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> h: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

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
    let v = x[base + i] + h[base + i];
    x[base + i] = v;
    sum += v;
  }
  let mean = workgroupSum(sum, lid) / f32(p.H);
  var sq = 0.0;
  for (var i = lid; i < p.H; i += WG) {
    let d = x[base + i] - mean;
    sq += d * d;
  }
  let inv = inverseSqrt(workgroupSum(sq, lid) / f32(p.H) + p.eps);
  for (var i = lid; i < p.H; i += WG) {
    h[base + i] = (x[base + i] - mean) * inv * weight[i] + bias[i];
  }
}
