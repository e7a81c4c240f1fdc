// linear on llama.cpp block weights (any format of src/layers/quant/formats/), GEMV path for few tokens (decode; memory bound), with the
// neighbouring elementwise work fused in, as linear.gemv.wgsl:
//   xin[t, :]  = x[t, :]                                            (NORM == 0)
//              = x[t, :] g / sqrt(mean(x[t, :]^2) + eps)            (NORM == 1: RMSNorm of the input, weight g)
//   y[t, r]    = sum_c dot(xin[t, 32 c .. 32 c + 31], W(r, c)) + (hasBias ? bias[colOffset + r] : 0)
//   out[t, colOffset + n] (+)= y[t, n]                              (GATED == 0; += when RESIDUAL == 1)
//   out[t, n]             (+)= act(y[t, n]) y[t, upOffset + n]      (GATED == 1)
// where W(r, c) is chunk c (32 elements) of weight row r, dequantized in registers by the format's qChunk: the
// weights are never expanded in memory.
//
// Params, GATED, RESIDUAL, storeColumn: lib/linear.wgsl (p.wStride is the row stride in BYTES here); the row-group
// sums, the norm's scale and the epilogue: lib/gemv.wgsl.
// Prelude: qChunk(row, c) -> array<vec4<f32>, 8> (BlockFormat.wgsl, src/layers/quant/format.ts); laneSum (as
// linear.gemv) and workgroupSum (lib/workgroup_sum.wgsl); TT tokens per workgroup and R weight rows per row group;
// STAGE and SEGC (below). lib/q_block.wgsl comes along.
//
// STAGE: a lane reads its chunk's 32 inputs as 8 vec4s, 128 bytes apart from its neighbours' (one cache line per
// lane and load). With STAGE the workgroup first copies the inputs, SEGC chunks at a time, into workgroup memory
// with coalesced loads (the norm weight applied, the sums of squares taken there and added up over the workgroup),
// each chunk padded by one vec4 so that 8 lanes reading consecutive chunks hit distinct banks; then the lanes read
// them from there.
//
// I8 (with STAGE): the inputs are quantized to int8 blocks as they are staged and the chunks dotted in int8
// (lib/gemv.stage_i8.wgsl's segmentI8; a stub otherwise), llama.cpp's MMVQ without a quantize dispatch of its own.
//
// Bindings: x     f32 [T, K]          read as vec4s; K % 32 == 0
//           w     u32 words of the part: rows of p.wStride bytes (a multiple of 4): the row's blocks, then padding
//           bias  f32 [>= colOffset + rows]  (a dummy when hasBias == 0)
//           g     f32 [K]              (a dummy when NORM == 0)
//           out   f32 [T, outStride]
//
// Dispatch: as linear.gemv: workgroup (g = wid.x + wid.z nwg.x, wid.y) serves tokens wid.y TT .. + TT - 1 and
// WG / LANES row groups of R weight rows (GATED: R / 2 gate rows, then their up rows); a row group's LANES threads
// split the row's chunks (lane i takes chunks i, i + LANES, ...) and laneSum adds their partial dots.

@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

/** Threads per workgroup; a multiple of LANES. */
override WG: u32 = 64;
/** Threads per row group (splitting K by blocks); a power of two. */
override LANES: u32 = 8;
/** 1: RMSNorm the input rows (g, p.eps) before the product. */
override NORM: u32 = 0;

/** STAGE: token i's chunk b of the segment at xs[(i SEGC + b) 9 + c], c < 8 (the ninth: padding). */
var<workgroup> xs: array<vec4<f32>, select(1u, TT * SEGC * 9u, STAGE && !I8)>;

/** acc[i][j] += dot(xv[i], chunk b of accumulator j's weight row), for the TT tokens and R rows. */
fn dotChunk(acc: ptr<function, array<array<f32, R>, TT>>, xv: array<array<vec4<f32>, 8>, TT>, row: array<u32, R>, b: u32) {
  for (var j = 0u; j < R; j++) {
    let qv = qChunk(row[j], b);
    for (var i = 0u; i < TT; i++) {
      var s = 0.0;
      for (var c = 0u; c < 8u; c++) {
        s += dot(xv[i][c], qv[c]);
      }
      (*acc)[i][j] += s;
    }
  }
}

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
  let nb = p.K / 32u; // chunks per row
  // First byte of accumulator j's weight row (columns past N are clamped to the last one: computed, never written).
  var row: array<u32, R>;
  for (var j = 0u; j < R; j++) {
    row[j] = rowGroupWeightRow(n0, j, p.upOffset) * p.wStride;
  }
  var xr: array<u32, TT>;
  for (var i = 0u; i < TT; i++) {
    xr[i] = min(t0 + i, p.T - 1u) * (p.K / 4u);
  }

  var acc: array<array<f32, R>, TT>;
  var ss: array<f32, TT>;
  if (STAGE) {
    for (var s0 = 0u; s0 < nb; s0 += SEGC) {
      let n4 = min(SEGC, nb - s0) * 8u; // the segment's vec4s per token
      if (I8) {
        segmentI8(&acc, &ss, s0, n4 / 8u, row, xr, lid, lane);
        continue;
      }
      for (var i = 0u; i < TT; i++) {
        for (var v = lid; v < n4; v += WG) {
          let k = 8u * s0 + v;
          var xv = x[xr[i] + k];
          if (NORM == 1u) {
            ss[i] += dot(xv, xv);
            xv *= g[k];
          }
          xs[(i * SEGC + v / 8u) * 9u + v % 8u] = xv;
        }
      }
      workgroupBarrier();
      for (var b = s0 + lane; b < s0 + n4 / 8u; b += LANES) {
        var xv: array<array<vec4<f32>, 8>, TT>;
        for (var i = 0u; i < TT; i++) {
          for (var c = 0u; c < 8u; c++) {
            xv[i][c] = xs[(i * SEGC + b - s0) * 9u + c];
          }
        }
        dotChunk(&acc, xv, row, b);
      }
      workgroupBarrier();
    }
  } else {
    for (var b = lane; b < nb; b += LANES) {
      var ga: array<vec4<f32>, 8>; // the norm weights of the chunk's 32 inputs (1 without NORM)
      for (var c = 0u; c < 8u; c++) {
        ga[c] = vec4<f32>(1.0);
        if (NORM == 1u) {
          ga[c] = g[8u * b + c];
        }
      }
      var xv: array<array<vec4<f32>, 8>, TT>;
      for (var i = 0u; i < TT; i++) {
        for (var c = 0u; c < 8u; c++) {
          let v = x[xr[i] + 8u * b + c];
          if (NORM == 1u) {
            ss[i] += dot(v, v);
          }
          xv[i][c] = v * ga[c];
        }
      }
      dotChunk(&acc, xv, row, b);
    }
  }

  for (var i = 0u; i < TT; i++) {
    var y: array<f32, R>;
    if (STAGE && NORM == 1u) {
      y = rowGroupSumScaled(acc[i], workgroupSum(ss[i], lid), true, p.eps, lid); // squares of the workgroup's copy
    } else {
      y = rowGroupSumNormed(acc[i], ss[i], NORM == 1u, p.eps, lid);
    }
    let t = t0 + i;
    if (lane == 0u && t < p.T) {
      storeRowGroup(t, n0, y);
    }
  }
}
