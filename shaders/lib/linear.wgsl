// Shared by the linear kernels (linear.gemv, linear.gemm, linear.tiled, linear.mma; included by prepending): the
// params struct, the fused-epilogue switches, the weight row behind a tile column and the epilogue that writes the
// outputs of one token for a quad of tile columns. The including kernel declares `bias: array<f32>` and
// `out: array<f32>` bindings, and lib/activation.wgsl comes along (ACT).
//
// Epilogue, for token t and output column n < N, with y(r) = dot(x[t, :], w[r, :]) + (hasBias ? bias[colOffset + r] : 0):
//   out[t, colOffset + n] (+)= y(n)                               GATED == 0 (+= when RESIDUAL == 1)
//   out[t, n]             (+)= act(y(n)) y(upOffset + n)          GATED == 1 (w holds gate rows, then up rows)
//
// Tile columns: with GATED == 0, tile column v is weight row v of the part (N columns). With GATED == 1 they come
// in quads, v = 4 b + c: gate rows 2 b, 2 b + 1, then up rows upOffset + 2 b, upOffset + 2 b + 1, so a vec4 of
// results holds both factors of output columns 2 b and 2 b + 1 (2 N tile columns; needs one weight part).

/** linear.mma split-K: the number of K splits, and the rows of one split's partial sums per token. */
fn splits() -> u32 {
  return (p.K + p.kSplit - 1u) / p.kSplit;
}

fn partialRows() -> u32 {
  return select(p.N, p.upOffset + p.N, GATED == 1u);
}

@group(0) @binding(0) var<uniform> p: Params; // struct Params: LINEAR_PARAMS in src/ops/linear.ts

override GATED: u32 = 0;
override RESIDUAL: u32 = 0;

/** Tile columns of the dispatch: N, or 2 N when GATED. */
fn tileColumns() -> u32 {
  return select(p.N, 2u * p.N, GATED == 1u);
}

/** Weight row (within the part) behind tile column v, clamped to a valid row. */
fn weightRow(v: u32) -> u32 {
  if (GATED == 1u) {
    let n = min(2u * (v / 4u) + v % 2u, p.N - 1u);
    return select(n, p.upOffset + n, v % 4u >= 2u);
  }
  return min(v, p.N - 1u);
}

/**
 * Writes output column n < N of token t from its raw dot products (no bias yet): y with weight row n, and (GATED)
 * yUp with the up row upOffset + n.
 */
fn storeColumn(t: u32, n: u32, y: f32, yUp: f32) {
  let o = t * p.outStride + p.colOffset + n; // colOffset is 0 when GATED
  var v = y;
  if (p.hasBias != 0u) {
    v += bias[p.colOffset + n];
  }
  if (GATED == 1u) {
    var u = yUp;
    if (p.hasBias != 0u) {
      u += bias[p.upOffset + n];
    }
    v = activation(v) * u;
  }
  if (RESIDUAL == 1u) {
    v += out[o];
  }
  out[o] = v;
}

/** Writes token t's outputs for tile columns v0 .. v0 + 3 (v0 % 4 == 0), whose raw dot products are y. */
fn storeQuad(t: u32, v0: u32, y: vec4<f32>) {
  if (GATED == 1u) {
    let n = v0 / 2u;
    if (n < p.N) {
      storeColumn(t, n, y.x, y.z);
    }
    if (n + 1u < p.N) {
      storeColumn(t, n + 1u, y.y, y.w);
    }
    return;
  }
  // Constant indices only (see linear.gemm.wgsl's epilogue).
  if (v0 < p.N) {
    storeColumn(t, v0, y.x, 0.0);
  }
  if (v0 + 1u < p.N) {
    storeColumn(t, v0 + 1u, y.y, 0.0);
  }
  if (v0 + 2u < p.N) {
    storeColumn(t, v0 + 2u, y.z, 0.0);
  }
  if (v0 + 3u < p.N) {
    storeColumn(t, v0 + 3u, y.w, 0.0);
  }
}
