// Shared by the GEMV kernels (linear.gemv, linear.q.gemv, linear.q.gemv.i8, moe.gemv; included by prepending): the
// row-group reduction and the epilogue of one token. A row group of LANES threads owns OPR = R (GATED: R / 2)
// output columns n0 .. n0 + OPR - 1 and R weight rows (GATED: the OPR gate rows, then their up rows); each of its
// threads holds partial dots acc[j] of those rows, which rowGroupSum adds up (four rows per laneSum) and
// storeRowGroup hands, column by column, to the kernel's writer:
//   storeColumn(t, n, y, yUp)   y from weight row n's sum, yUp (GATED) from its up row's
// (lib/linear.wgsl's for the linear kernels: bias, gating, residual). The including kernel declares R (a const),
// LANES, GATED, storeColumn and Params with N and K; laneSum comes from lib/lane_sum.*.wgsl.
//
// With the fused rope (lib/gemv.rope.wgsl, ROPE true; else its stubs, GEMV_NO_ROPE in src/ops/linear.ts), a row
// group's output columns are rotary pairs instead: accumulator j < R / 2 holds pair n0 + j's first weight row and
// j + R / 2 its second (ropePairRow), and storeRopePair writes the pair, rotated, into q or the KV cache.

/** Output columns (GATED: gate / up pairs; ROPE: rotary pairs) per row group. */
fn outputsPerRowGroup() -> u32 {
  return select(R, R / 2u, GATED == 1u || ROPE);
}

/**
 * The weight row of accumulator j of the row group whose first output column is n0: row n0 + j, or (GATED) gate row
 * n0 + j for j < OPR and, for j >= OPR, the up row upOffset + n0 + j - OPR. Columns past N are clamped to the last
 * one (computed, never stored: storeRowGroup skips them).
 */
fn rowGroupWeightRow(n0: u32, j: u32, upOffset: u32) -> u32 {
  if (ROPE) {
    let opr = R / 2u;
    return ropePairRow(min(n0 + j % opr, p.N - 1u), j >= opr);
  }
  if (GATED == 1u) {
    let opr = R / 2u;
    return min(n0 + j % opr, p.N - 1u) + select(0u, upOffset, j >= opr);
  }
  return min(n0 + j, p.N - 1u);
}

/** The sums over lid's row group of a thread's R partial dots. Every thread of the workgroup must call it. */
fn rowGroupSum(acc: array<f32, R>, lid: u32) -> array<f32, R> {
  var y: array<f32, R>;
  for (var j0 = 0u; j0 < R; j0 += 4u) {
    var v = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
      if (j0 + c < R) {
        v[c] = acc[j0 + c];
      }
    }
    v = laneSum(v, lid);
    for (var c = 0u; c < 4u; c++) {
      if (j0 + c < R) {
        y[j0 + c] = v[c];
      }
    }
  }
  return y;
}

/**
 * rowGroupSum for a kernel with the input's RMSNorm fused (linear.gemv, linear.q.gemv): the sums times
 * 1 / sqrt(mean(x^2) + eps), the mean from the row group's partial sums of squares ss over K inputs, when norm
 * (else times 1). Every thread of the workgroup must call it, with a uniform norm.
 */
fn rowGroupSumNormed(acc: array<f32, R>, ss: f32, norm: bool, eps: f32, lid: u32) -> array<f32, R> {
  var total = 0.0;
  if (norm) {
    total = laneSum(vec4<f32>(ss, 0.0, 0.0, 0.0), lid).x;
  }
  return rowGroupSumScaled(acc, total, norm, eps, lid);
}

/**
 * rowGroupSum times 1 / sqrt(total / K + eps) when norm (else times 1), `total` the input row's sum of squares
 * already summed by the caller (linear.q.gemv's staged inputs sum theirs over the workgroup). Every thread of the
 * workgroup must call it.
 */
fn rowGroupSumScaled(acc: array<f32, R>, total: f32, norm: bool, eps: f32, lid: u32) -> array<f32, R> {
  var y = rowGroupSum(acc, lid);
  var scale = 1.0;
  if (norm) {
    scale = inverseSqrt(total / f32(p.K) + eps);
  }
  for (var j = 0u; j < R; j++) {
    y[j] *= scale;
  }
  return y;
}

/** Writes token t's output columns n0 + j < N (j < OPR) from the row group's sums y; called by one thread. */
fn storeRowGroup(t: u32, n0: u32, y: array<f32, R>) {
  let opr = outputsPerRowGroup();
  for (var j = 0u; j < R; j++) { // constant trip count: y stays in registers
    if (j < opr && n0 + j < p.N) {
      if (ROPE) {
        storeRopePair(t, n0 + j, y[j], y[(j + opr) % R]);
      } else {
        storeColumn(t, n0 + j, y[j], y[(j + opr) % R]);
      }
    }
  }
}
