// MoE grouped GEMV over expert tiles: each workgroup multiplies up to TT pairs routed to one expert by that
// expert's weight rows, so each chosen expert's rows are read once per tile of TT pairs (decode: once per step).
//   GATED == 1 (gate|up, w_e [2N, K]):  h[s, n]    = act(x[token(s), :] . w_e[n, :]) (x[token(s), :] . w_e[N + n, :])
//   GATED == 0 (down,    w_e [N, K]):   y[pair, n] = scale[pair] (h[s, :] . w_e[n, :]),  pair = sorted[s]
// for sorted positions s of the pairs routed to expert e (src/ops/moe.ts; moe.group.wgsl lays out `groups`),
// token(s) = sorted[s] / topK, output columns n < N; act from lib/activation.wgsl (ACT). h rows follow the sorted
// order so that the down GEMV reads its tile's inputs contiguously; y rows follow the pair order for the combine.
//
// Prelude (templated on the weight dtype): WS the weight word and loadW8(c) -> array<vec4<f32>, 2>, the c-th
// 8-element chunk of w (f16: one vec4<u32>, 16 bytes); laneSum (lib/lane_sum.*.wgsl, for lib/gemv.wgsl); TT pairs
// per tile and R weight rows per row group (consts: they size the accumulators).
//
// Bindings: x       f32 [rows, K]    GATED: tokens [T, K]; else h [P, K] by sorted position; K % 8 == 0
//           w       f32|f16 [experts, rows, wStride]  one part of the expert weights: experts
//                   expertStart .. expertEnd - 1, eStride elements apart; wStride % 8 == 0, eStride % 8 == 0
//           groups  u32 (moe.group.wgsl)
//           scale   f32 [P]          routing weights by pair (read when GATED == 0)
//           out     f32 [P, N]       GATED: h by sorted position; else y by pair
//
// Dispatch: (x, z) column blocks (g = wid.x + wid.z nwg.x), y tiles. Workgroup y serves tile
// tileOffsets[expertStart] + wid.y (and exits past tileOffsets[expertEnd]: the grid is an upper bound that depends
// on T only, so a recorded step replays whatever the routing). Within it, as linear.gemv.wgsl: row group
// q = lid / LANES owns OPR = R (GATED: R / 2) output columns n0 = (g WG / LANES + q) OPR .., i.e. R weight rows
// (GATED: the gate rows, then the up rows); its LANES threads split K into 16-byte chunks and keep TT x R
// partial dots, which lib/gemv.wgsl adds up and writes through storeColumn. Tile rows past the expert's pairs are clamped (computed, never written).

@group(0) @binding(0) var<uniform> p: Params; // struct Params: EXPERT_PARAMS in src/ops/moe.ts
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<WS>;
@group(0) @binding(3) var<storage, read> groups: array<u32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

/** Threads per workgroup; a multiple of LANES. */
override WG: u32 = 128;
/** Threads per row group (splitting K); a power of two. */
override LANES: u32 = 32;
override GATED: u32 = 1;

/** The epilogue's writer (lib/gemv.wgsl) for sorted position s: h by position (GATED), else y by pair. */
fn storeColumn(s: u32, n: u32, y: f32, yUp: f32) {
  if (GATED == 1u) {
    out[s * p.N + n] = activation(y) * yUp;
    return;
  }
  let pair = groups[p.sortedAt + s];
  out[pair * p.N + n] = scale[pair] * y;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let opr = outputsPerRowGroup();
  let first = (wid.x + wid.z * nwg.x) * (WG / LANES) * opr;
  let tileOffsets = 2u * p.E + 1u;
  let tile = groups[tileOffsets + p.expertStart] + wid.y;
  if (first >= p.N || tile >= groups[tileOffsets + p.expertEnd]) {
    return; // the whole workgroup: the reductions below stay in uniform control flow
  }
  let e = groups[p.tilesAt + 2u * tile];
  let s0 = groups[p.tilesAt + 2u * tile + 1u];
  let end = groups[p.E + e + 1u]; // one past the expert's last sorted position
  let q = lid / LANES;
  let lane = lid % LANES;
  let n0 = first + q * opr;
  let kc = p.K / 8u;
  let wc = p.wStride / 8u;
  let base = (e - p.expertStart) * (p.eStride / 8u);
  var row: array<u32, R>;
  for (var j = 0u; j < R; j++) {
    row[j] = base + rowGroupWeightRow(n0, j, p.N) * wc;
  }
  var xr: array<u32, TT>;
  for (var i = 0u; i < TT; i++) {
    let s = min(s0 + i, end - 1u);
    let src = select(s, groups[p.sortedAt + s] / p.topK, GATED == 1u);
    xr[i] = src * (p.K / 4u);
  }

  var acc: array<array<f32, R>, TT>;
  for (var c = lane; c < kc; c += LANES) {
    var wv: array<array<vec4<f32>, 2>, R>;
    for (var j = 0u; j < R; j++) {
      wv[j] = loadW8(row[j] + c);
    }
    for (var i = 0u; i < TT; i++) {
      let xa = x[xr[i] + 2u * c];
      let xb = x[xr[i] + 2u * c + 1u];
      for (var j = 0u; j < R; j++) {
        acc[i][j] += dot(xa, wv[j][0]) + dot(xb, wv[j][1]);
      }
    }
  }

  for (var i = 0u; i < TT; i++) {
    let y = rowGroupSum(acc[i], lid);
    let s = s0 + i;
    if (lane == 0u && s < end) {
      storeRowGroup(s, n0, y);
    }
  }
}
