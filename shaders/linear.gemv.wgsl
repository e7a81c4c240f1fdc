// linear, GEMV path for few tokens (decode; memory bound), with the neighbouring elementwise work fused in:
//   xin[t, :]  = x[t, :]                                            (NORM == 0)
//              = x[t, :] g / sqrt(mean(x[t, :]^2) + eps)            (NORM == 1: RMSNorm of the input, weight g)
//   y[t, r]    = dot(xin[t, :], w[r, :]) + (hasBias ? bias[colOffset + r] : 0)     for weight rows r
//   out[t, colOffset + n] (+)= y[t, n]                              (GATED == 0; += when RESIDUAL == 1)
//   out[t, n]             (+)= act(y[t, n]) y[t, upOffset + n]      (GATED == 1: gate rows n, up rows upOffset + n;
//                                                                    act from lib/activation.wgsl: ACT)
// for t < T and output columns n < N, where w is one part of a weight and colOffset the part's first row.
//
// Params, GATED and RESIDUAL come from lib/linear.wgsl (with lib/activation.wgsl); the row-group sums, the norm's
// scale and the writes of the outputs from lib/gemv.wgsl.
//
// Prelude (templated on weight dtype and reduction): WS the weight storage word; loadW8(c) -> array<vec4<f32>, 2>,
// the c-th 8-element chunk of w (f16: one vec4<u32> of 8 halves, 16 bytes, unpacked with unpack2x16float, so no
// shader-f16 is needed; f32: two vec4<f32>); laneSum(v, lid) -> vec4<f32>, the sum of v over the LANES threads of
// lid's row group (subgroupShuffleXor butterfly when every subgroup holds whole row groups, else a shared-memory
// tree); TT tokens per workgroup and R weight rows per row group (consts: they size the accumulator arrays).
//
// Bindings: x     f32 [T, K]          read as vec4s; K % 8 == 0
//           w     f32|f16 [N, wStride] read as 8-element chunks; wStride % 8 == 0
//           bias  f32 [>= colOffset + rows]  (a dummy when hasBias == 0)
//           g     f32 [K]              (a dummy when NORM == 0)
//           out   f32 [T, outStride]
//
// Dispatch: workgroup (g = wid.x + wid.z nwg.x, wid.y) serves tokens wid.y TT .. + TT - 1 (clamped to T - 1:
// computed, never written) and WG / LANES row groups. Row group q = lid / LANES owns OPR = R (GATED: R / 2) output
// columns n0 = (g WG / LANES + q) OPR .. + OPR - 1, i.e. R weight rows (GATED: the gate rows of those columns, then
// their up rows). Its LANES threads split K into 8-element chunks (lane i takes chunks i, i + LANES, ...), so a warp
// reads whole 16-byte words of consecutive chunks of a row; each thread keeps TT x R partial dots (and, for NORM,
// TT partial sums of squares), which laneSum adds up (lib/gemv.wgsl).

@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<WS>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

/** Threads per workgroup; a multiple of LANES. */
override WG: u32 = 128;
/** Threads per row group (splitting K); a power of two. */
override LANES: u32 = 32;
/** 1: RMSNorm the input rows (g, p.eps) before the product. */
override NORM: u32 = 0;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let opr = outputsPerRowGroup(); // output columns per row group
  let groups = WG / LANES;
  let first = (wid.x + wid.z * nwg.x) * groups * opr;
  if (first >= p.N) {
    return; // the whole workgroup: the reductions below stay in uniform control flow
  }
  let q = lid / LANES;
  let lane = lid % LANES;
  let n0 = first + q * opr;
  let t0 = wid.y * TT;
  let kc = p.K / 8u; // chunks per row
  let wc = p.wStride / 8u;
  // Weight row of accumulator j (columns past N are clamped to the last one: computed, never written).
  var row: array<u32, R>;
  for (var j = 0u; j < R; j++) {
    row[j] = rowGroupWeightRow(n0, j, p.upOffset) * wc;
  }
  var xr: array<u32, TT>;
  for (var i = 0u; i < TT; i++) {
    xr[i] = min(t0 + i, p.T - 1u) * (p.K / 4u);
  }

  var acc: array<array<f32, R>, TT>;
  var ss: array<f32, TT>;
  for (var c = lane; c < kc; c += LANES) {
    var wv: array<array<vec4<f32>, 2>, R>;
    for (var j = 0u; j < R; j++) {
      wv[j] = loadW8(row[j] + c);
    }
    var ga = vec4<f32>(1.0);
    var gb = vec4<f32>(1.0);
    if (NORM == 1u) {
      ga = g[2u * c];
      gb = g[2u * c + 1u];
    }
    for (var i = 0u; i < TT; i++) {
      var xa = x[xr[i] + 2u * c];
      var xb = x[xr[i] + 2u * c + 1u];
      if (NORM == 1u) {
        ss[i] += dot(xa, xa) + dot(xb, xb);
        xa *= ga;
        xb *= gb;
      }
      for (var j = 0u; j < R; j++) {
        acc[i][j] += dot(xa, wv[j][0]) + dot(xb, wv[j][1]);
      }
    }
  }

  for (var i = 0u; i < TT; i++) {
    let y = rowGroupSumNormed(acc[i], ss[i], NORM == 1u, p.eps, lid);
    let t = t0 + i;
    if (lane == 0u && t < p.T) {
      storeRowGroup(t, n0, y);
    }
  }
}
