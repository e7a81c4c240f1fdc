// linear on llama.cpp block weights (any format of src/layers/quant/formats/), register-blocked path for many
// tokens (prefill):
//   y[t, v] = sum_c dot(x[t, 32 c .. 32 c + 31], W(r, c))   with r = weightRow(v), for t < T, tile columns v
// written by lib/linear.wgsl's epilogue (bias, GATED act(gate) * up, RESIDUAL add). Each 32-element chunk W(r, c) is
// dequantized into registers once per thread (the format's qChunk) and used for its TM tokens (no copy of the
// weights in memory).
//
// Params (p.wStride: the row stride in BYTES), tile columns, storeQuad: lib/linear.wgsl.
// Prelude: qChunk(row, c) (the format's), TM tokens per thread (a const: it sizes the accumulator array).
//
// Bindings: x     f32 [T, K]          read as vec4s; K % 32 == 0
//           w     u32 words of the part: rows of p.wStride bytes: the row's blocks, then padding
//           bias  f32 [>= colOffset + rows]  (a dummy when hasBias == 0)
//           out   f32 [T, outStride]
//
// Dispatch: workgroup (WX, WY); thread (lx, ly) of workgroup (g = wid.x + wid.z nwg.x, wid.y) computes tokens
// t0 = (wid.y WY + ly) TM .. + TM - 1 and tile columns n0 = (g WX + lx) 4 .. + 3.
// Grid: ceil(tileColumns / (4 WX)) x ceil(T / (TM WY)).

@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
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
  let kv = p.K / 4u;
  let nb = p.K / 32u;
  var rows = vec4<u32>(weightRow(n0), weightRow(n0 + 1u), weightRow(n0 + 2u), weightRow(n0 + 3u)) * p.wStride;
  var xr: array<u32, TM>;
  for (var i = 0u; i < TM; i++) {
    xr[i] = min(t0 + i, p.T - 1u) * kv;
  }

  var acc: array<vec4<f32>, TM>;
  for (var b = 0u; b < nb; b++) {
    for (var c = 0u; c < 4u; c++) {
      let qv = qChunk(rows[c], b);
      for (var i = 0u; i < TM; i++) {
        var s = 0.0;
        for (var e = 0u; e < 8u; e++) {
          s += dot(x[xr[i] + 8u * b + e], qv[e]);
        }
        acc[i][c] += s;
      }
    }
  }

  for (var i = 0u; i < TM; i++) {
    if (t0 + i < p.T) {
      storeQuad(t0 + i, n0, acc[i]);
    }
  }
}
