// The GEMV's fused rope and KV-cache write (included after lib/rope.wgsl by the qkv projection's GEMV at decode,
// one dispatch for the projection, rope and the cache write, where rope_cache_kv.wgsl was a second one):
//   q heads:  rotated into out (the attention kernel reads q from qkv)
//   k heads:  rotated into kCache[slot]
//   v heads:  into vCache[slot]
// for every token t with slot = slotMapping[t] >= 0 (q heads for every token); the k and v columns of out stay
// unwritten, as rope_cache_kv.wgsl leaves them for the split-K sums. Rotation as rope_cache_kv.wgsl's: NeoX / HF
// rotate_half on dims i < 2 half, x'[i] = x[i] c - x[i + half] s, x'[i + half] = x[i + half] c + x[i] s.
//
// The row groups' output columns are rotary pairs of the part's rows (lib/gemv.wgsl): pair u (u < N, N = the part's
// rows / 2) is pair i = u % (D / 2) of the part's head u / (D / 2), whose dims are (i, i + half) for i < half, and
// for the rest (the unrotated dims 2 half .. D - 1 of a partial rotary) (2 half + k, 2 half + k + (D - 2 half) / 2)
// with k = i - half. So both factors of a rotation are in one row group, and the epilogue writes whole pairs.
// The part's first row colOffset is a multiple of D (whole heads); D is even.
//
// Params (ROPE_LINEAR_PARAMS in src/ops/linear.ts): LINEAR_PARAMS's, then nH, nKv, D, half, scaling (the cos / sin
// multiplier). Prelude: KS, storeKElem(e, x), storeVElem(e, x) (cacheElementPrelude in src/ops/attention.ts).
//
// Bindings (after the GEMV's 1-5): positions    u32 [T]
//                                  invFreq      f32 [half]
//                                  slotMapping  i32 [T]
//                                  kCache       f32|f16 [numBlocks, blockSize, nKv, D]
//                                  vCache       f32|f16 [numBlocks, blockSize, nKv, D]

@group(0) @binding(6) var<storage, read> positions: array<u32>;
@group(0) @binding(7) var<storage, read> invFreq: array<f32>;
@group(0) @binding(8) var<storage, read> slotMapping: array<i32>;
@group(0) @binding(9) var<storage, read_write> kCache: array<KS>;
@group(0) @binding(10) var<storage, read_write> vCache: array<KS>;

const ROPE = true;

/** Dims (within its head) of rotary pair i < D / 2. */
fn ropePairDims(i: u32) -> vec2<u32> {
  if (i < p.half) {
    return vec2<u32>(i, i + p.half);
  }
  let k = 2u * p.half + (i - p.half);
  return vec2<u32>(k, k + (p.D - 2u * p.half) / 2u);
}

/** The part's weight row of pair u's first (or `second`) factor. */
fn ropePairRow(u: u32, second: bool) -> u32 {
  let pairs = p.D / 2u;
  let d = ropePairDims(u % pairs);
  return (u / pairs) * p.D + select(d.x, d.y, second);
}

/** Writes pair u of token t from its raw dot products a (first row) and b (second row). */
fn storeRopePair(t: u32, u: u32, a: f32, b: f32) {
  let pairs = p.D / 2u;
  let i = u % pairs;
  let d = ropePairDims(i);
  let c = p.colOffset + (u / pairs) * p.D; // first column of the pair's head
  var x1 = a;
  var x2 = b;
  if (p.hasBias != 0u) {
    x1 += bias[c + d.x];
    x2 += bias[c + d.y];
  }
  let h = c / p.D;
  if (h < p.nH + p.nKv && i < p.half) {
    let cs = rotation(t, i);
    let r1 = x1 * cs.x - x2 * cs.y;
    let r2 = x2 * cs.x + x1 * cs.y;
    x1 = r1;
    x2 = r2;
  }
  if (h < p.nH) {
    let o = t * p.outStride + c;
    out[o + d.x] = x1;
    out[o + d.y] = x2;
    return;
  }
  let slot = slotMapping[t];
  if (slot < 0) {
    return;
  }
  let e = (u32(slot) * p.nKv + (h - p.nH) % p.nKv) * p.D; // cache element (slot, kv head, 0)
  if (h < p.nH + p.nKv) {
    storeKElem(e + d.x, x1);
    storeKElem(e + d.y, x2);
  } else {
    storeVElem(e + d.x, x1);
    storeVElem(e + d.y, x2);
  }
}
