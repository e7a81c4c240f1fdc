// Merges the split-K partials of paged_attention.wgsl (flash decoding's second pass):
//   M = max_i m_i,  L = sum_i l_i e^(m_i - M),  out[t, h, :] = sum_i acc_i e^(m_i - M) / L
// over the pieces i < splits of (token t, head h); pieces past the token's keys hold m = -inf, l = 0, acc = 0.
//
// Bindings: partials  f32 [T nH splits (4 + D)]: (m, l, 0, 0) per piece, then acc per piece (vec4 index
//                     T nH splits + pi D / 4 + d4 for piece pi = (t nH + h) splits + i)
//           out       f32 [T, nH D]
//
// Dispatch: one workgroup of WG threads per (head, token) = (wid.x, wid.y); thread d4 = lid, lid + WG, ... merges
// output vec4 d4.

struct Params {
  T: u32,
  nH: u32,
  D: u32,
  splits: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let h = wid.x;
  let t = wid.y;
  let D4 = p.D / 4u;
  let first = (t * p.nH + h) * p.splits;
  let pieces = p.T * p.nH * p.splits;
  var M = -3.0e38;
  for (var i = 0u; i < p.splits; i++) {
    M = max(M, partials[first + i].x);
  }
  var L = 0.0;
  for (var i = 0u; i < p.splits; i++) {
    let ml = partials[first + i];
    L += ml.y * exp(ml.x - M);
  }
  for (var d4 = lid; d4 < D4; d4 += WG) {
    var acc = vec4<f32>(0.0);
    for (var i = 0u; i < p.splits; i++) {
      acc += partials[pieces + (first + i) * D4 + d4] * exp(partials[first + i].x - M);
    }
    out[(t * p.nH + h) * D4 + d4] = acc / L;
  }
}
