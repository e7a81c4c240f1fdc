// linear, subgroup-matrix path for many tokens (prefill, batched decode; tensor cores):
//   y[t, v] = sum_k f16(x[t, k]) w[row(v), k]   (f16 products accumulated in f32)
// for t < T and tile columns v, written through lib/linear.wgsl's storeColumn (bias, GATED act(gate) * up,
// RESIDUAL add). Tile columns: plain, v = weight row v of the part (N columns); GATED, the WN blocks of 16 columns
// of a workgroup are WN / 2 blocks of gate rows and then the WN / 2 blocks of the up rows of the same outputs.
//
// Prelude (templated): the enables (f16, subgroups, chromium_experimental_subgroup_matrix), and the tile shape as
// consts (subgroup-matrix dimensions must be const-expressions): WM x WN result blocks of 16 x 16 per workgroup
// (GATED: WN even). Tile: BM = 16 WM tokens x BN = 16 WN tile columns.
//
// Bindings: x16   f16 [>= ceil(T / BM) BM, K]  (the input rounded to f16 by cast_f16.wgsl; K % 32 == 0)
//           w     f16 [rows, wStride]        (one part of the weight; rows >= 16; wStride % 8 == 0)
//           bias  f32 [>= colOffset + rows]  (a dummy when hasBias == 0)
//           out   f32 [T, outStride]
//
// Dispatch: one subgroup of 32 threads per workgroup (the ops require 32-wide subgroups), so that every
// subgroup-matrix operand, derived from the workgroup id alone, is uniform. Workgroup (g = wid.x + wid.z nwg.x,
// wid.y) computes tokens wid.y BM .. + BM - 1 and output columns g OPW .. + OPW - 1 (OPW = BN, GATED: BN / 2). K is
// walked 32 at a time with no workgroup memory and no barriers: the A blocks come straight from x16 (row-major,
// stride K; rows past T are whatever the scratch holds there and only feed rows that are not written) and the B
// blocks straight from w (column-major: B[k, n] = w[n, k], stride wStride), all loads of a step issued before its
// products. A block's 16 weight rows start at min(n0, N - 16), so loads stay inside the part; the columns it covers
// below n0 belong to the previous block and are not written twice. Epilogue: each result block (GATED: a gate
// block and its up block) goes through workgroup scratch, from which the lanes write the outputs.

@group(0) @binding(1) var<storage, read> x16: array<f16>;
@group(0) @binding(2) var<storage, read> w: array<f16>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const BM = 16u * WM;
const BK = 32u;

/** Two 16 x 16 result blocks for the epilogue. */
var<workgroup> cs: array<f32, 512>;

@compute @workgroup_size(32)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let gated = GATED == 1u;
  let nb = select(WN, WN / 2u, gated); // output blocks
  let o0 = (wid.x + wid.z * nwg.x) * 16u * nb; // first output column
  if (o0 >= p.N) {
    return; // the whole workgroup
  }
  let tileM = wid.y * BM;

  // First weight row of each B block (clamped into the part), and its nominal first output column.
  var rowStart: array<u32, WN>;
  for (var j = 0u; j < WN; j++) {
    let jo = j % nb;
    let nominal = o0 + 16u * jo;
    var r = min(nominal, p.N - 16u);
    if (gated && j >= nb) {
      r += p.upOffset;
    }
    rowStart[j] = r * p.wStride;
  }

  var acc: array<array<subgroup_matrix_result<f32, 16, 16>, WN>, WM>;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    var a: array<array<subgroup_matrix_left<f16, 16, 16>, WM>, 2>;
    var b: array<array<subgroup_matrix_right<f16, 16, 16>, WN>, 2>;
    for (var s = 0u; s < 2u; s++) {
      for (var i = 0u; i < WM; i++) {
        a[s][i] = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&x16, (tileM + 16u * i) * p.K + k0 + 16u * s, false, p.K);
      }
      for (var j = 0u; j < WN; j++) {
        b[s][j] = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&w, rowStart[j] + k0 + 16u * s, true, p.wStride);
      }
    }
    for (var s = 0u; s < 2u; s++) {
      for (var i = 0u; i < WM; i++) {
        for (var j = 0u; j < WN; j++) {
          acc[i][j] = subgroupMatrixMultiplyAccumulate(a[s][i], b[s][j], acc[i][j]);
        }
      }
    }
  }

  for (var i = 0u; i < WM; i++) {
    for (var j = 0u; j < nb; j++) {
      subgroupMatrixStore(&cs, 0u, acc[i][j], false, 16u);
      if (gated) {
        subgroupMatrixStore(&cs, 256u, acc[i][j + nb], false, 16u);
      }
      workgroupBarrier();
      let nominal = o0 + 16u * j;
      let start = min(nominal, p.N - 16u);
      for (var e = lane; e < 256u; e += 32u) {
        let r = e / 16u;
        let c = e % 16u;
        let t = tileM + i * 16u + r;
        let n = start + c;
        if (t < p.T && n >= nominal && n < p.N) {
          storeColumn(t, n, cs[e], cs[256u + e]);
        }
      }
      workgroupBarrier();
    }
  }
}
