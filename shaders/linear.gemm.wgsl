// linear, shared-memory tiled path for many tokens on GPUs (prefill; compute bound):
//   y[t, v] = dot(x[t, :], w[weightRow(v), :])   for t < T and tile columns v
// written by lib/linear.wgsl's epilogue (bias, GATED act(gate) * up, RESIDUAL add), where w is one part of a weight.
//
// Params, tile columns (GATED: gate/up quads), the bias/act/residual epilogue (storeQuad): lib/linear.wgsl.
// Prelude (templated): XV = vec4<f32>, VW = 4, WS, loadW(i) -> vec4<f32> (src/ops/common.ts weightPrelude; this
// kernel needs K % 4 == 0).
//
// Bindings: x     f32 [T, K]
//           w     f32|f16 [rows, wStride]  (one part of the weight)
//           bias  f32 [>= colOffset + rows]  (a dummy when hasBias == 0)
//           out   f32 [T, outStride]
//
// Dispatch: workgroup (WX, WY) threads computes a tile of BM = 4 WY tokens x BN = 4 WX columns: tokens
// wid.y * BM .., tile columns g * BN .. with g = wid.x + wid.z * nwg.x. K is walked BK at a time: the workgroup stages
// the x tile [BM, BK] and the w tile [BN, BK] in shared memory, transposed to [BK, BM] and [BK, BN] and held as
// vec4s; then thread (tx, ty) accumulates the outer products of xs[k, 4 ty .. 4 ty + 3] and ws[k, 4 tx .. 4 tx + 3]
// into its 4 x 4 block (two vec4 shared loads per 16 FMAs). Grid: ceil(N / BN) x ceil(T / BM).

@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<WS>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override WX: u32 = 16;
override WY: u32 = 16;
/** K per stage; a multiple of 4. */
override BK: u32 = 16;

const TN = 4u; // columns per thread (one vec4)
const TM = 4u; // tokens per thread

/** x tile, transposed, in vec4s of 4 tokens: xs[k * WY + m / 4][m % 4] (BM = 4 WY). */
var<workgroup> xs: array<vec4<f32>, BK * WY>;
/** w tile, transposed, in vec4s of 4 columns: ws[k * WX + n / 4][n % 4] (BN = 4 WX). */
var<workgroup> ws: array<vec4<f32>, BK * WX>;

@compute @workgroup_size(WX, WY)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let BM = WY * TM;
  let BN = WX * TN;
  let tileN = (wid.x + wid.z * nwg.x) * BN;
  let tileM = wid.y * BM;
  if (tileN >= tileColumns()) {
    return;
  }
  let tid = lid.y * WX + lid.x;
  let threads = WX * WY;
  let kv = p.K / 4u;
  let wsv = p.wStride / 4u;
  let k4s = BK / 4u; // vec4s per tile row

  var acc: array<vec4<f32>, TM>;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    // Stage the tiles: element e of the BM x (BK / 4) vec4s of x, and of the BN x (BK / 4) of w.
    for (var e = tid; e < BM * k4s; e += threads) {
      let m = e / k4s;
      let kq = e % k4s;
      let k = k0 / 4u + kq;
      var v = vec4<f32>(0.0);
      if (k < kv) {
        v = x[min(tileM + m, p.T - 1u) * kv + k];
      }
      for (var j = 0u; j < 4u; j++) {
        xs[(kq * 4u + j) * WY + m / 4u][m % 4u] = v[j];
      }
    }
    for (var e = tid; e < BN * k4s; e += threads) {
      let n = e / k4s;
      let kq = e % k4s;
      let k = k0 / 4u + kq;
      var v = vec4<f32>(0.0);
      if (k < kv) {
        v = loadW(weightRow(tileN + n) * wsv + k);
      }
      for (var j = 0u; j < 4u; j++) {
        ws[(kq * 4u + j) * WX + n / 4u][n % 4u] = v[j];
      }
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let a = xs[k * WY + lid.y]; // tokens 4 ly .. 4 ly + 3 at k
      let b = ws[k * WX + lid.x]; // columns 4 lx .. 4 lx + 3 at k
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }

  let n0 = tileN + lid.x * TN;
  let t0 = tileM + lid.y * TM;
  if (n0 >= tileColumns()) {
    return;
  }
  // A constant trip count keeps acc in registers (a dynamic index would move it to local memory for the whole
  // kernel: measured 10x slower on an H200).
  for (var i = 0u; i < TM; i++) {
    if (t0 + i < p.T) {
      storeQuad(t0 + i, n0, acc[i]);
    }
  }
}
