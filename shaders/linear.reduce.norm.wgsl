// linear split-K epilogue fused with the next block's RMSNorm (one dispatch instead of two): for each token t,
//   out[t, n] (+)= sum_s part[s, t, n] (+ bias[n])            for n < N (lib/linear.wgsl's storeColumn, RESIDUAL)
//   normed[t, n] = out[t, n] / sqrt(mean(out[t, :N]^2) + eps) * weight[n]
// with the same params as the linear.mma dispatch it follows (eps its RMSNorm epsilon). The output row must be
// whole: N == outStride, colOffset 0, no gating; N % 4 == 0 (partial sums are read as vec4s: a row of splits is
// few loads per thread, all in flight at once, in one workgroup per token).
//
// Bindings: part    f32 [splits(), T, N]  read as vec4s
//           bias    f32 [>= N]  (a dummy when hasBias == 0)
//           out     f32 [T, N]
//           weight  f32 [N]
//           normed  f32 [T, N]
//
// Dispatch: one workgroup of WG threads per token t = wid.x + wid.y * nwg.x; workgroupSum
// (lib/workgroup_sum.wgsl) sums the squares.

@group(0) @binding(1) var<storage, read> part: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read_write> normed: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= p.T) {
    return;
  }
  let row = t * p.N;
  let N4 = p.N / 4u;
  var ss = 0.0;
  for (var n4 = lid; n4 < N4; n4 += WG) {
    var y = vec4<f32>();
    for (var s = 0u; s < splits(); s++) {
      y += part[(s * p.T + t) * N4 + n4];
    }
    let n = 4u * n4;
    storeColumn(t, n, y.x, 0.0);
    storeColumn(t, n + 1u, y.y, 0.0);
    storeColumn(t, n + 2u, y.z, 0.0);
    storeColumn(t, n + 3u, y.w, 0.0);
    let v = vec4<f32>(out[row + n], out[row + n + 1u], out[row + n + 2u], out[row + n + 3u]);
    ss += dot(v, v);
  }
  let inv = inverseSqrt(workgroupSum(ss, lid) / f32(p.N) + p.eps);
  for (var n = lid; n < p.N; n += WG) {
    normed[row + n] = out[row + n] * inv * weight[n];
  }
}
