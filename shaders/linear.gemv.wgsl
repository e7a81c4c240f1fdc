// linear, GEMV path for few tokens (decode; memory bound):
//   out[t, colOffset + n] = dot(x[t, :], w[n, :]) + (hasBias ? bias[colOffset + n] : 0)   for t < T, n < N
// where w is one part of a weight (N of its rows) and colOffset the part's first row.
//
// Prelude (templated on weight dtype and vector width): XV the activation vector (vec4<f32> | f32) and VW its
// width (4 | 1); WS the weight storage word and loadW(i) -> XV reading weight vector i (f16 weights are stored as
// u32 pairs and unpacked with unpack2x16float, so they need no shader-f16); vdot(XV, XV) -> f32; TT tokens per
// workgroup (a const: it sizes the accumulator array, and WGSL wants a const-expression there).
//
// Bindings: x     f32     [T, K]         read as XV
//           w     f32|f16 [N, wStride]   read as WS words through loadW (wStride >= K; both multiples of VW)
//           bias  f32 [>= colOffset + N]  (bound to a dummy when hasBias == 0)
//           out   f32 [T, outStride]
//
// Dispatch: workgroup g = wid.x + wid.z * nwg.x computes WG / SPLIT quads of columns (a quad: 4 weight rows, one
// vec4 of outputs) for tokens wid.y * TT .. + TT - 1: quad q = lid / SPLIT covers columns 4 (g WG / SPLIT + q) ..
// + 3. The SPLIT threads of a quad split K into VW-wide chunks (thread i takes chunks i, i + SPLIT, ...), so
// neighbouring threads read neighbouring pieces of each weight row; a shared-memory tree adds their SPLIT partial
// sums.

struct Params {
  T: u32,
  K: u32,
  N: u32,
  wStride: u32,
  outStride: u32,
  colOffset: u32,
  hasBias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<XV>;
@group(0) @binding(2) var<storage, read> w: array<WS>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

/** Threads per workgroup; a power of two. */
override WG: u32 = 256;
/** Threads per quad of rows; a power of two dividing WG. */
override SPLIT: u32 = 256;

var<workgroup> partial: array<array<vec4<f32>, TT>, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let quads = WG / SPLIT;
  let first = (wid.x + wid.z * nwg.x) * quads * 4u;
  if (first >= p.N) {
    return;
  }
  let q = lid / SPLIT;
  let sl = lid % SPLIT;
  let n0 = first + q * 4u;
  let t0 = wid.y * TT;
  let kv = p.K / VW;
  let ws = p.wStride / VW;
  // Rows and tokens past the end are clamped to the last valid one: computed, never written.
  let r0 = min(n0, p.N - 1u) * ws;
  let r1 = min(n0 + 1u, p.N - 1u) * ws;
  let r2 = min(n0 + 2u, p.N - 1u) * ws;
  let r3 = min(n0 + 3u, p.N - 1u) * ws;
  var xr: array<u32, TT>;
  for (var j = 0u; j < TT; j++) {
    xr[j] = min(t0 + j, p.T - 1u) * kv;
  }

  var acc: array<vec4<f32>, TT>;
  for (var k = sl; k < kv; k += SPLIT) {
    let w0 = loadW(r0 + k);
    let w1 = loadW(r1 + k);
    let w2 = loadW(r2 + k);
    let w3 = loadW(r3 + k);
    for (var j = 0u; j < TT; j++) {
      let xv = x[xr[j] + k];
      acc[j] += vec4<f32>(vdot(xv, w0), vdot(xv, w1), vdot(xv, w2), vdot(xv, w3));
    }
  }

  partial[lid] = acc;
  workgroupBarrier();
  for (var s = SPLIT / 2u; s > 0u; s >>= 1u) {
    if (sl < s) {
      for (var j = 0u; j < TT; j++) {
        partial[lid][j] += partial[lid + s][j];
      }
    }
    workgroupBarrier();
  }

  for (var o = sl; o < TT * 4u; o += SPLIT) {
    let j = o / 4u;
    let r = o % 4u;
    let t = t0 + j;
    let n = n0 + r;
    if (t < p.T && n < p.N) {
      var y = partial[q * SPLIT][j][r];
      if (p.hasBias != 0u) {
        y += bias[p.colOffset + n];
      }
      out[t * p.outStride + p.colOffset + n] = y;
    }
  }
}
