// The GEMV's input as split-K attention partials (flash decoding's second pass fused into the o projection, one
// dispatch less per layer): the workgroup first merges the pieces of its TT tokens into workgroup memory, exactly as
// paged_attention.combine.wgsl would into the attention output,
//   M = max_i m_i,  L = sum_i l_i e^(m_i - M),  x[t, h D + d] = sum_i acc_i[d] e^(m_i - M) / L,
// then reads x from there (inputAt). The x binding holds the partials of pagedAttention's split-K: f32 [T nH splits
// (4 + D)], (m, l, 0, 0) per piece pi = (t nH + h) splits + i as vec4 pi, then acc as vec4 T nH splits + pi D / 4 + dv.
// D % 4 == 0; K = nH D.
//
// Params (COMBINE_LINEAR_PARAMS in src/ops/linear-combine.ts): LINEAR_PARAMS's, then nH, D, splits. Prelude: KV4,
// the vec4s of an input row (K / 4), so that the staged rows are sized at compile time.

const COMBINE = true;

var<workgroup> xStaged: array<vec4<f32>, TT * KV4>;

/**
 * Merges the pieces of tokens t0 .. t0 + TT - 1 (clamped to T - 1) into xStaged. Every thread of the workgroup calls
 * it (it ends in a barrier).
 */
fn stageInput(t0: u32, lid: u32) {
  let DV = p.D / 4u;
  let pieces = p.T * p.nH * p.splits;
  for (var e = lid; e < TT * KV4; e += WG) {
    let t = min(t0 + e / KV4, p.T - 1u);
    let k = e % KV4;
    let h = k / DV;
    let first = (t * p.nH + h) * p.splits;
    var M = -3.0e38;
    for (var i = 0u; i < p.splits; i++) {
      M = max(M, x[first + i].x);
    }
    var L = 0.0;
    for (var i = 0u; i < p.splits; i++) {
      let ml = x[first + i].xy;
      L += ml.y * exp(ml.x - M);
    }
    var acc = vec4<f32>(0.0);
    for (var i = 0u; i < p.splits; i++) {
      acc += x[pieces + (first + i) * DV + k % DV] * exp(x[first + i].x - M);
    }
    xStaged[e] = acc / L;
  }
  workgroupBarrier();
}

/** Vector v of the input row of the workgroup's token i (xi: that row's first vector in x, unused here). */
fn inputAt(i: u32, xi: u32, v: u32) -> vec4<f32> {
  return xStaged[i * KV4 + v];
}
