// linear on llama.cpp block weights with int8 activations (llama.cpp's MMVQ): the GEMV of linear.q.gemv.wgsl
// (decode, T <= 8), but the input comes quantized by linear.q.quantize.wgsl (blocks of 32 int8 with a scale d_x and
// d_x sum(a); the fused RMSNorm is done there) and each weight chunk comes from the format's qChunkI8 as int8 quants
// with scales (src/layers/quant/formats/int8.ts), so a chunk's dot with a token is 8 dot4I8Packed:
//   y[t, r] = sum_c d_x(t, c) (d0 sum_{j < 16} a_j q_j + d1 sum_{j >= 16} a_j q_j) + m (d_x sum(a))(t, c)
// then the epilogue of lib/linear.wgsl (bias, gating, residual: storeColumn). The activations are read as 1 byte
// each (two vec4<u32> per chunk and token), so T = 4 reads each weight chunk once for 4 tokens at little more cost.
//
// Params, GATED, RESIDUAL, storeColumn: lib/linear.wgsl (p.wStride is the row stride in BYTES); the row-group sums
// and the epilogue: lib/gemv.wgsl.
// Prelude: QI8, dotI8 and qChunkI8 (formats/int8.ts); laneSum; TT tokens per workgroup, R weight rows per row group.
//
// Bindings: xq    u32 [T, K / 4] as vec4s (two per chunk)
//           xs    vec2<f32> [T, K / 32]: (d_x, d_x sum(a)) per chunk
//           w     u32 words of the part: rows of p.wStride bytes
//           bias  f32 [>= colOffset + rows]  (a dummy when hasBias == 0)
//           out   f32 [T, outStride]
//           w4    (binding 6) the weight buffer again as vec4<u32>, declared by the readers of 16-byte aligned
//                 blocks (q4_k, q5_k) only
//
// Dispatch: as linear.q.gemv.wgsl.

@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> xs: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> w: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

override WG: u32 = 64;
override LANES: u32 = 8;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let opr = outputsPerRowGroup();
  let groups = WG / LANES;
  let first = (wid.x + wid.z * nwg.x) * groups * opr;
  if (first >= p.N) {
    return;
  }
  let q = lid / LANES;
  let lane = lid % LANES;
  let n0 = first + q * opr;
  let t0 = wid.y * TT;
  let nb = p.K / 32u;
  var row: array<u32, R>;
  for (var j = 0u; j < R; j++) {
    row[j] = rowGroupWeightRow(n0, j, p.upOffset) * p.wStride;
  }
  var xr: array<u32, TT>;
  for (var i = 0u; i < TT; i++) {
    xr[i] = min(t0 + i, p.T - 1u) * nb;
  }

  var acc: array<array<f32, R>, TT>;
  for (var b = lane; b < nb; b += LANES) {
    var xa: array<array<vec4<u32>, 2>, TT>;
    var xd: array<vec2<f32>, TT>;
    for (var i = 0u; i < TT; i++) {
      xa[i][0] = xq[2u * (xr[i] + b)];
      xa[i][1] = xq[2u * (xr[i] + b) + 1u];
      xd[i] = xs[xr[i] + b];
    }
    for (var j = 0u; j < R; j++) {
      let wq = qChunkI8(row[j], b);
      for (var i = 0u; i < TT; i++) {
        acc[i][j] += dotI8(xa[i], xd[i], wq);
      }
    }
  }

  for (var i = 0u; i < TT; i++) {
    let y = rowGroupSum(acc[i], lid);
    let t = t0 + i;
    if (lane == 0u && t < p.T) {
      storeRowGroup(t, n0, y);
    }
  }
}
