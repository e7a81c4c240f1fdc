// linear, shared-memory tiled path for many tokens on GPUs (prefill; compute bound):
//   out[t, colOffset + n] = dot(x[t, :], w[n, :]) + (hasBias ? bias[colOffset + n] : 0)   for t < T, n < N
// where w is one part of a weight (N of its rows) and colOffset the part's first row.
//
// Prelude (templated): XV = vec4<f32>, VW = 4, WS, loadW as in linear.gemv.wgsl (this kernel needs K % 4 == 0).
//
// Bindings: as linear.gemv.wgsl.
//
// Dispatch: workgroup (WX, WY) threads computes a tile of BM = 4 WY tokens x BN = 4 WX columns: tokens
// wid.y * BM .., columns g * BN .. with g = wid.x + wid.z * nwg.x. K is walked BK at a time: the workgroup stages
// the x tile [BM, BK] and the w tile [BN, BK] in shared memory, transposed to [BK, BM] and [BK, BN] and held as
// vec4s; then thread (tx, ty) accumulates the outer products of xs[k, 4 ty .. 4 ty + 3] and ws[k, 4 tx .. 4 tx + 3]
// into its 4 x 4 block (two vec4 shared loads per 16 FMAs). Grid: ceil(N / BN) x ceil(T / BM).

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
  if (tileN >= p.N) {
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
        v = loadW(min(tileN + n, p.N - 1u) * wsv + k);
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
  var bv = vec4<f32>(0.0);
  if (p.hasBias != 0u) {
    for (var c = 0u; c < TN; c++) {
      bv[c] = bias[p.colOffset + min(n0 + c, p.N - 1u)];
    }
  }
  for (var i = 0u; i < TM; i++) {
    let t = t0 + i;
    if (t >= p.T) {
      break;
    }
    let y = acc[i] + bv;
    let o = t * p.outStride + p.colOffset + n0;
    for (var c = 0u; c < TN; c++) {
      if (n0 + c < p.N) {
        out[o + c] = y[c];
      }
    }
  }
}
