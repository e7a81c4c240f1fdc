// Merges the split-K partials of paged_attention.wgsl (flash decoding's second pass):
//   M = max_i m_i,  L = sum_i l_i e^(m_i - M),  out[t, h, :] = sum_i acc_i e^(m_i - M) / L
// over the pieces i < splits of (token t, head h); pieces past the token's keys hold m = -inf, l = 0, acc = 0.
//
// Prelude: QV, VW as the attention kernels' (vec4<f32> when D % 4 == 0, else f32), statsAt(pi) -> (m, l).
//
// Bindings: partials  f32 [T nH splits (4 + D)]: (m, l, 0, 0) per piece, then acc per piece (vector index
//                     T nH splits 4 / VW + pi DV + dv for piece pi = (t nH + h) splits + i, DV = D / VW)
//           out       f32 [T, nH D]
//
// Dispatch: one workgroup of WG threads per (head, token) = (wid.x, wid.y); thread dv = lid, lid + WG, ... merges
// output vector dv.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: COMBINE_PARAMS in src/ops/attention.ts
@group(0) @binding(1) var<storage, read> partials: array<QV>;
@group(0) @binding(2) var<storage, read_write> out: array<QV>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let h = wid.x;
  let t = wid.y;
  let DV = p.D / VW;
  let first = (t * p.nH + h) * p.splits;
  let pieces = p.T * p.nH * p.splits;
  var M = -3.0e38;
  for (var i = 0u; i < p.splits; i++) {
    M = max(M, statsAt(first + i).x);
  }
  var L = 0.0;
  for (var i = 0u; i < p.splits; i++) {
    let ml = statsAt(first + i);
    L += ml.y * exp(ml.x - M);
  }
  for (var dv = lid; dv < DV; dv += WG) {
    var acc = QV(0.0);
    for (var i = 0u; i < p.splits; i++) {
      acc += partials[pieces * (4u / VW) + (first + i) * DV + dv] * exp(statsAt(first + i).x - M);
    }
    out[(t * p.nH + h) * DV + dv] = acc / L;
  }
}
