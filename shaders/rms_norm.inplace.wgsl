// RMSNorm in place over rows of H (g < split) or HB (g >= split) values:
//   x[row] = x[row] / sqrt(mean(x[row]^2) + eps) * (g < split ? weightA : weightB),  g = r % groups
// Row r (of `rows`) starts at element (r / groups) * tokenStride + (r % groups) * H: plain rows are groups = 1,
// tokenStride = H, split = 1, HB = H; the q/k norms of a fused qkv [T, (nH + 2 nKv) D], tokenStride = (nH + 2 nKv) D:
// - per head (Qwen3, Gemma 3): groups = nH + nKv rows per token, H = HB = D, split = nH (q heads take weightA,
//   k heads weightB);
// - over the whole projection (OLMo 2): groups = 2 rows per token, the q row (H = nH D, weightA) and the k row
//   (HB = nKv D, weightB), split = 1.
//
// Bindings: x        f32 [rows, H] (strided as above), read and written
//           weightA  f32 [H]
//           weightB  f32 [HB]
//
// Dispatch: one workgroup of WG threads per row r = wid.x + wid.y * nwg.x; workgroupSum (lib/workgroup_sum.wgsl) sums the squares.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: INPLACE_PARAMS in src/ops/norm.ts
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
  let n = select(p.HB, p.H, g < p.split);
  var ss = 0.0;
  for (var i = lid; i < n; i += WG) {
    let v = x[base + i];
    ss += v * v;
  }
  let inv = inverseSqrt(workgroupSum(ss, lid) / f32(n) + p.eps);
  // Each thread rewrites only the elements it read above.
  if (g < p.split) {
    for (var i = lid; i < p.H; i += WG) {
      x[base + i] = x[base + i] * inv * weightA[i];
    }
  } else {
    for (var i = lid; i < p.HB; i += WG) {
      x[base + i] = x[base + i] * inv * weightB[i];
    }
  }
}
