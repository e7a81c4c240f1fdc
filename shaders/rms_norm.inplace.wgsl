// RMSNorm in place over rows of H values:
//   x[row] = x[row] / sqrt(mean(x[row]^2) + eps) * (g < split ? weightA : weightB),  g = r % groups
// Row r (of `rows`) starts at element (r / groups) * tokenStride + (r % groups) * H: plain rows are groups = 1,
// tokenStride = H, split = 1; Qwen3's per-head q/k norm views the q and k heads of a fused qkv as groups = nH + nKv
// rows per token, tokenStride = (nH + 2 nKv) D, split = nH (q heads take weightA, k heads weightB).
//
// Bindings: x        f32 [rows, H] (strided as above), read and written
//           weightA  f32 [H]
//           weightB  f32 [H]
//
// Dispatch: one workgroup of WG threads per row r = wid.x + wid.y * nwg.x; workgroupSum (lib/workgroup_sum.wgsl) sums the squares.

struct Params {
  rows: u32,
  H: u32,
  groups: u32,
  tokenStride: u32,
  split: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> weightA: array<f32>;
@group(0) @binding(3) var<storage, read> weightB: array<f32>;

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
  let g = r % p.groups;
  let base = (r / p.groups) * p.tokenStride + g * p.H;
  var ss = 0.0;
  for (var i = lid; i < p.H; i += WG) {
    let v = x[base + i];
    ss += v * v;
  }
  let inv = inverseSqrt(workgroupSum(ss, lid) / f32(p.H) + p.eps);
  // Each thread rewrites only the elements it read above.
  if (g < p.split) {
    for (var i = lid; i < p.H; i += WG) {
      x[base + i] = x[base + i] * inv * weightA[i];
    }
  } else {
    for (var i = lid; i < p.H; i += WG) {
      x[base + i] = x[base + i] * inv * weightB[i];
    }
  }
}
