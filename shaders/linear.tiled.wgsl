// linear, register-blocked path for many tokens (prefill; compute bound):
//   out[t, colOffset + n] = dot(x[t, :], w[n, :]) + (hasBias ? bias[colOffset + n] : 0)   for t < T, n < N
// where w is one part of a weight (N of its rows) and colOffset the part's first row.
//
// Prelude (templated): XV, VW, WS, loadW, vdot as in linear.gemv.wgsl; TM tokens per thread (a const: it sizes
// the accumulator array).
//
// Bindings: as linear.gemv.wgsl.
//
// Dispatch: workgroup (WX, WY) threads; thread (lx, ly) of workgroup (g = wid.x + wid.z * nwg.x, wid.y) computes
// the TM x 4 block of tokens t0 = (wid.y * WY + ly) * TM .. + TM - 1 and columns n0 = (g * WX + lx) * 4 .. + 3,
// walking K in VW-wide chunks with all TM x vectors and 4 w vectors in registers (no shared memory: on CPU
// WebGPU drivers barriers are slow, and caches serve the reuse). Grid: ceil(N / (4 WX)) x ceil(T / (TM WY)).

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

override WX: u32 = 8;
override WY: u32 = 8;

@compute @workgroup_size(WX, WY)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let n0 = ((wid.x + wid.z * nwg.x) * WX + lid.x) * 4u;
  let t0 = (wid.y * WY + lid.y) * TM;
  if (n0 >= p.N || t0 >= p.T) {
    return;
  }
  let kv = p.K / VW;
  let ws = p.wStride / VW;
  let r0 = n0 * ws;
  let r1 = min(n0 + 1u, p.N - 1u) * ws;
  let r2 = min(n0 + 2u, p.N - 1u) * ws;
  let r3 = min(n0 + 3u, p.N - 1u) * ws;
  var xr: array<u32, TM>;
  for (var i = 0u; i < TM; i++) {
    xr[i] = min(t0 + i, p.T - 1u) * kv;
  }

  var acc: array<vec4<f32>, TM>;
  for (var k = 0u; k < kv; k++) {
    let w0 = loadW(r0 + k);
    let w1 = loadW(r1 + k);
    let w2 = loadW(r2 + k);
    let w3 = loadW(r3 + k);
    for (var i = 0u; i < TM; i++) {
      let xv = x[xr[i] + k];
      acc[i] += vec4<f32>(vdot(xv, w0), vdot(xv, w1), vdot(xv, w2), vdot(xv, w3));
    }
  }

  var b = vec4<f32>(0.0);
  if (p.hasBias != 0u) {
    for (var c = 0u; c < 4u; c++) {
      b[c] = bias[p.colOffset + min(n0 + c, p.N - 1u)];
    }
  }
  for (var i = 0u; i < TM; i++) {
    let t = t0 + i;
    if (t >= p.T) {
      break;
    }
    let y = acc[i] + b;
    let o = t * p.outStride + p.colOffset + n0;
    for (var c = 0u; c < 4u; c++) {
      if (n0 + c < p.N) {
        out[o + c] = y[c];
      }
    }
  }
}
