// MoE grouped GEMM over expert tiles, shared-memory tiled (prefill: many pairs per expert; compute bound). The
// math of moe.gemv.wgsl, on tiles of BM = 4 WY pairs of one expert x BN = 4 WX tile columns:
//   GATED == 1 (gate|up, w_e [2N, K]):  h[s, n]    = act(x[token(s), :] . w_e[n, :]) (x[token(s), :] . w_e[N + n, :])
//   GATED == 0 (down,    w_e [N, K]):   y[pair, n] = scale[pair] (h[s, :] . w_e[n, :]),  pair = sorted[s]
// for sorted positions s of the pairs routed to expert e (moe.group.wgsl lays out `groups`, with tiles of BM
// pairs), token(s) = sorted[s] / topK; act from lib/activation.wgsl (ACT).
//
// Tile columns: GATED == 0: tile column v is the expert's weight row v (N columns). GATED == 1: quads v = 4 b + c
// hold gate rows 2 b, 2 b + 1, then up rows N + 2 b, N + 2 b + 1, so a thread's vec4 holds both factors of output
// columns 2 b and 2 b + 1 (2 N tile columns; N even).
//
// Prelude (templated): XV = vec4<f32>, VW = 4, WS, loadW(i) -> vec4<f32>, the i-th 4 elements of w
// (src/ops/common.ts weightPrelude).
//
// Bindings: x       f32 [rows, K]    GATED: tokens [T, K]; else h [P, K] by sorted position; K % 4 == 0
//           w       f32|f16 [experts, rows, wStride]  one part of the expert weights (experts expertStart ..
//                   expertEnd - 1, eStride elements apart; wStride and eStride multiples of 4)
//           groups  u32 (moe.group.wgsl)
//           scale   f32 [P]          routing weights by pair (read when GATED == 0)
//           out     f32 [P, N]       GATED: h by sorted position; else y by pair
//
// Dispatch: workgroup (WX, WY) threads; (x, z) column tiles (g = wid.x + wid.z nwg.x), y expert tiles: workgroup y
// serves tile tileOffsets[expertStart] + wid.y and exits past tileOffsets[expertEnd] (the grid is an upper bound
// that depends on T only). As linear.gemm.wgsl: K is walked BK at a time, the x rows of the tile's pairs (gathered
// through the sorted list) and the w tile staged transposed in shared memory as vec4s; thread (tx, ty) accumulates
// a 4 x 4 block: pairs 4 ty .., tile columns 4 tx ... Pairs past the expert's are clamped (computed, never written).

@group(0) @binding(0) var<uniform> p: Params; // struct Params: EXPERT_PARAMS in src/ops/moe.ts
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<WS>;
@group(0) @binding(3) var<storage, read> groups: array<u32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

override WX: u32 = 16;
override WY: u32 = 16;
/** K per stage; a multiple of 4. */
override BK: u32 = 16;
override GATED: u32 = 1;

/** x tile, transposed, in vec4s of 4 pairs: xs[k * WY + m / 4][m % 4]. */
var<workgroup> xs: array<vec4<f32>, BK * WY>;
/** w tile, transposed, in vec4s of 4 tile columns: ws[k * WX + n / 4][n % 4]. */
var<workgroup> ws: array<vec4<f32>, BK * WX>;

/** The expert's weight row behind tile column v, clamped to a valid row. */
fn weightRow(v: u32) -> u32 {
  if (GATED == 1u) {
    let n = min(2u * (v / 4u) + v % 2u, p.N - 1u);
    return select(n, p.N + n, v % 4u >= 2u);
  }
  return min(v, p.N - 1u);
}

@compute @workgroup_size(WX, WY)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let BM = 4u * WY;
  let BN = 4u * WX;
  let columns = select(p.N, 2u * p.N, GATED == 1u);
  let tileN = (wid.x + wid.z * nwg.x) * BN;
  let tileOffsets = 2u * p.E + 1u;
  let tile = groups[tileOffsets + p.expertStart] + wid.y;
  if (tileN >= columns || tile >= groups[tileOffsets + p.expertEnd]) {
    return; // the whole workgroup: the barriers below stay in uniform control flow
  }
  let e = groups[p.tilesAt + 2u * tile];
  let s0 = groups[p.tilesAt + 2u * tile + 1u];
  let end = groups[p.E + e + 1u];
  let tid = lid.y * WX + lid.x;
  let threads = WX * WY;
  let kv = p.K / 4u;
  let wsv = p.wStride / 4u;
  let base = (e - p.expertStart) * (p.eStride / 4u);
  let k4s = BK / 4u;

  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    for (var i = tid; i < BM * k4s; i += threads) {
      let m = i / k4s;
      let kq = i % k4s;
      let k = k0 / 4u + kq;
      var v = vec4<f32>(0.0);
      if (k < kv) {
        let s = min(s0 + m, end - 1u);
        let src = select(s, groups[p.sortedAt + s] / p.topK, GATED == 1u);
        v = x[src * kv + k];
      }
      for (var j = 0u; j < 4u; j++) {
        xs[(kq * 4u + j) * WY + m / 4u][m % 4u] = v[j];
      }
    }
    for (var i = tid; i < BN * k4s; i += threads) {
      let n = i / k4s;
      let kq = i % k4s;
      let k = k0 / 4u + kq;
      var v = vec4<f32>(0.0);
      if (k < kv) {
        v = loadW(base + weightRow(tileN + n) * wsv + k);
      }
      for (var j = 0u; j < 4u; j++) {
        ws[(kq * 4u + j) * WX + n / 4u][n % 4u] = v[j];
      }
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let a = xs[k * WY + lid.y];
      let b = ws[k * WX + lid.x];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }

  let v0 = tileN + lid.x * 4u;
  if (v0 >= columns) {
    return;
  }
  // Constant trip counts keep acc in registers (see linear.tiled.wgsl).
  for (var i = 0u; i < 4u; i++) {
    let s = s0 + lid.y * 4u + i;
    if (s < end) {
      let y = acc[i];
      if (GATED == 1u) {
        let n = v0 / 2u;
        if (n < p.N) {
          out[s * p.N + n] = activation(y.x) * y.z;
        }
        if (n + 1u < p.N) {
          out[s * p.N + n + 1u] = activation(y.y) * y.w;
        }
      } else {
        let pair = groups[p.sortedAt + s];
        for (var c = 0u; c < 4u; c++) {
          if (v0 + c < p.N) {
            out[pair * p.N + v0 + c] = scale[pair] * y[c];
          }
        }
      }
    }
  }
}
