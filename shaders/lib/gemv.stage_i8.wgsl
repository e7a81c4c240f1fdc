// linear.q.gemv.wgsl's int8 staging (I8, with STAGE): the workgroup quantizes its inputs itself as it stages them,
// to blocks of 32 int8 with a scale as linear.q.quantize.wgsl does (d = max |xin| / 127, a = roundf(xin / d), half
// away from zero), so that the weights' chunks are dotted with 8 dot4I8Packed each (the format's qChunkI8, as
// linear.q.gemv.i8.wgsl) and no quantize dispatch runs. With NORM, xin = x g (the norm weight; the row's
// 1 / sqrt(mean(x^2) + eps) scales the sums at the end, which d's definition makes equivalent); its sum of squares
// is taken here. Four threads quantize a chunk (two vec4s each), its max and sum over the four by subgroup shuffles
// (subgroups following local_invocation_index, as lib/lane_sum.subgroup.wgsl assumes): on the H100 a step's kernels
// took 1.79 ms this way against 1.97 with one thread a chunk (eight vec4 loads and the chunk's arithmetic in one
// chain), and reading the lanes' first weight chunks before the staging was slower still (tuning.ts).
// Prelude: TT, R, SEGC, NORM, QI8 / qChunkI8 / dotI8 (src/layers/quant/formats/int8.ts); bindings x, g; LANES, WG
// (linear.q.gemv.wgsl).

/** Token i's staged chunk c: its quants as four vec2<u32> from xq8[4 (i SEGC + c)], (d, d sum(a)) at xd8[i SEGC + c]. */
var<workgroup> xq8: array<vec2<u32>, TT * SEGC * 4u>;
var<workgroup> xd8: array<vec2<f32>, TT * SEGC>;

/**
 * Quarter e (two vec4s: x[xk + 2 e], + 1) of token i's chunk c into xq8 / xd8, the chunk's max and sum over
 * its four threads (lid e .. lid e + 3, e = lid % 4) by shuffles; returns the quarter's sum of squares (0 without NORM).
 * Call it from uniform control flow, with `valid` false for threads past the segment's chunks.
 */
fn stageQuarterI8(i: u32, c: u32, e: u32, valid: bool, xk: u32, gk: u32) -> f32 {
  var v0 = vec4<f32>(0.0);
  var v1 = vec4<f32>(0.0);
  var ss = 0.0;
  if (valid) {
    v0 = x[xk + 2u * e];
    v1 = x[xk + 2u * e + 1u];
    if (NORM == 1u) {
      ss = dot(v0, v0) + dot(v1, v1);
      v0 *= g[gk + 2u * e];
      v1 *= g[gk + 2u * e + 1u];
    }
  }
  let m = max(abs(v0), abs(v1));
  var mx = max(max(m.x, m.y), max(m.z, m.w));
  mx = max(mx, subgroupShuffleXor(mx, 1u));
  mx = max(mx, subgroupShuffleXor(mx, 2u));
  let d = mx / 127.0;
  let id = select(0.0, 1.0 / d, d != 0.0);
  let a0 = roundI8(v0 * id);
  let a1 = roundI8(v1 * id);
  var sa = a0.x + a0.y + a0.z + a0.w + (a1.x + a1.y + a1.z + a1.w);
  sa += subgroupShuffleXor(sa, 1u);
  sa += subgroupShuffleXor(sa, 2u);
  if (valid) {
    let o = i * SEGC + c;
    xq8[4u * o + e] = vec2<u32>(pack4xI8Clamp(a0), pack4xI8Clamp(a1));
    if (e == 0u) {
      xd8[o] = vec2<f32>(d, d * f32(sa));
    }
  }
  return ss;
}

/**
 * The segment of `nc` chunks from chunk s0 for the workgroup (call it from uniform control flow): its inputs staged
 * (tokens' rows at x[xr[i]]; their sums of squares added to ss), then each lane's chunks s0 + lane, + LANES, ...
 * dotted into acc; workgroup memory is free again on return.
 */
fn segmentI8(acc: ptr<function, array<array<f32, R>, TT>>, ss: ptr<function, array<f32, TT>>, s0: u32, nc: u32, row: array<u32, R>, xr: array<u32, TT>, lid: u32, lane: u32) {
  for (var i = 0u; i < TT; i++) {
    for (var u0 = 0u; u0 < 4u * nc; u0 += WG) { // uniform trips (shuffles)
      let u = u0 + lid;
      let c = u / 4u;
      (*ss)[i] += stageQuarterI8(i, c, u % 4u, u < 4u * nc, xr[i] + 8u * (s0 + c), 8u * (s0 + c));
    }
  }
  workgroupBarrier();
  for (var c = lane; c < nc; c += LANES) {
    dotStagedI8(acc, c, row, s0 + c);
  }
  workgroupBarrier();
}

/** acc[i][j] += token i's staged chunk sc (of the segment) . chunk b of accumulator j's weight row, in int8. */
fn dotStagedI8(acc: ptr<function, array<array<f32, R>, TT>>, sc: u32, row: array<u32, R>, b: u32) {
  var xa: array<array<vec4<u32>, 2>, TT>;
  var xd: array<vec2<f32>, TT>;
  for (var i = 0u; i < TT; i++) {
    let o = 4u * (i * SEGC + sc);
    xa[i][0] = vec4<u32>(xq8[o], xq8[o + 1u]);
    xa[i][1] = vec4<u32>(xq8[o + 2u], xq8[o + 3u]);
    xd[i] = xd8[i * SEGC + sc];
  }
  for (var j = 0u; j < R; j++) {
    let wq = qChunkI8(row[j], b);
    for (var i = 0u; i < TT; i++) {
      (*acc)[i][j] += dotI8(xa[i], xd[i], wq);
    }
  }
}
