// linear, register-blocked path for many tokens (prefill; compute bound):
//   y[t, v] = dot(x[t, :], w[weightRow(v), :])   for t < T and tile columns v
// written by lib/linear.wgsl's epilogue (bias, GATED act(gate) * up, RESIDUAL add), where w is one part of a weight.
//
// Params, tile columns (GATED: gate/up quads), the bias/act/residual epilogue (storeQuad): lib/linear.wgsl.
// Prelude (templated): XV the activation vector (vec4<f32> | f32) and VW its width (4 | 1), WS, loadW(i) -> XV,
// vdot (src/ops/common.ts weightPrelude); TM tokens per thread (a const: it sizes the accumulator array).
//
// Bindings: x     f32 [T, K]          read as XV
//           w     f32|f16 [rows, wStride]  (one part of the weight; wStride >= K, both multiples of VW)
//           bias  f32 [>= colOffset + rows]  (a dummy when hasBias == 0)
//           out   f32 [T, outStride]
//
// Dispatch: workgroup (WX, WY) threads; thread (lx, ly) of workgroup (g = wid.x + wid.z * nwg.x, wid.y) computes
// the TM x 4 block of tokens t0 = (wid.y * WY + ly) * TM .. + TM - 1 and tile columns n0 = (g * WX + lx) * 4 .. + 3,
// walking K in VW-wide chunks with all TM x vectors and 4 w vectors in registers (no shared memory: on CPU
// WebGPU drivers barriers are slow, and caches serve the reuse). Grid: ceil(N / (4 WX)) x ceil(T / (TM WY)).

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
  if (n0 >= tileColumns() || t0 >= p.T) {
    return;
  }
  let kv = p.K / VW;
  let ws = p.wStride / VW;
  let r0 = weightRow(n0) * ws;
  let r1 = weightRow(n0 + 1u) * ws;
  let r2 = weightRow(n0 + 2u) * ws;
  let r3 = weightRow(n0 + 3u) * ws;
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

  // A constant trip count keeps acc in registers (a dynamic index would move it to local memory for the whole
  // kernel: measured 10x slower on an H200).
  for (var i = 0u; i < TM; i++) {
    if (t0 + i < p.T) {
      storeQuad(t0 + i, n0, acc[i]);
    }
  }
}
