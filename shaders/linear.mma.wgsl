// linear, subgroup-matrix path for many tokens (prefill, batched decode; tensor cores):
//   y[t, v] = sum_k f16(x[t, k]) f16(w[row(v), k])   (f16 products accumulated in f32)
// for t < T and tile columns v, written through lib/linear.wgsl's storeColumn (bias, GATED act(gate) * up,
// RESIDUAL add).
//
// Prelude (src/ops/linear-mma.ts): the enables (f16, subgroups, chromium_experimental_subgroup_matrix), the
// uniformity diagnostic turned off (operands derived from the subgroup index are subgroup-uniform, which the
// analysis cannot prove), and the tile shape as consts:
//   WM x WN   16 x 16 result blocks per subgroup
//   SGM x SGN subgroups tiling the workgroup's outputs: BM = 16 WM SGM tokens x BN = 16 WN SGN tile columns
//   SK        subgroups splitting K: each step stages BK = KW SK of K, subgroup kg multiplies its KW of them, and
//             the SK partial sums are added in the epilogue (more warps for few tokens without more outputs)
//   KM        KW = 32 KM: K per subgroup per step (more products and bytes in flight per pair of barriers)
// (DIRECT, the generator's choice, not a const: the weight is not staged; each subgroup loads its own weight
// blocks from memory with subgroupMatrixLoad one step ahead, which measured faster for decode batches; the
// `@staged-w` region below is then replaced by w declared as array<f16>. BLOCKS, likewise: the weight holds rows
// of a block format (src/layers/quant/formats/) whose qChunk comes in the prelude, and the `@staged-q` region,
// which dequantizes whole 32-element chunks as it stages them, takes the place of `@staged-w`.)
// and the generated statements that go where the `@generated` lines stand: subgroup matrices cannot live in
// arrays (an array of them goes to local memory: measured 13x slower on an H200), so every result block is a
// variable of its own (c<i>_<j>), and the loads, products and per-thread staging chunks are unrolled.
// Workgroup: 32 SGM SGN SK threads in subgroups of exactly 32 (which the ops require): subgroup sg is threads
// 32 sg .. 32 sg + 31, sg = (sm SGN + sn) SK + kg.
//
// Tile columns: plain, tile column v of workgroup g is weight row g BN + v of the part. GATED, each subgroup's WN
// blocks are WN / 2 blocks of gate rows and then the WN / 2 blocks of the up rows of the same outputs: subgroup sn
// of workgroup g covers outputs o = g BN / 2 + sn 8 WN + [0, 8 WN).
//
// Bindings: x     f32 [T, K]  read as vec4s (K % 8 == 0)
//           w     f16 [rows, wStride] read as 8-element chunks (one part of the weight; wStride % 8 == 0);
//                 DIRECT: as halves, 16 x 16 blocks (K % BK == 0, rows % 32 == 0: whole blocks of gate and up rows);
//                 BLOCKS: u32 words of rows of wStride bytes (K % 32 == 0)
//           bias  f32 [>= colOffset + rows]  (a dummy when hasBias == 0)
//           out   f32 [T, outStride]
//           part  f32 [splits, T, partialRows()]  (split-K only; a dummy otherwise)
//
// Dispatch: workgroup (g = wid.x + wid.z nwg.x, wid.y = tile splits() + split) computes tokens tile BM .. + BM - 1
// and its BN tile columns over K in [split kSplit, (split + 1) kSplit). Without a split (kSplit >= K) it writes
// the outputs; with one, the raw sums of weight row r (gate and up rows alike) of token t go to
// part[split, t, r], and linear.reduce.wgsl adds the splits and writes the outputs. K is walked BK at a time
// through workgroup memory: x[tokens, k0 .. k0 + BK) (rounded to f16) and (unless DIRECT) the BN weight rows' same
// slice, rows padded to LD halves (fewer bank conflicts); each thread moves whole 8-element
// chunks (chunk e: staged row e / CHUNKS, chunk e % CHUNKS), and loads the next step's chunks into registers
// before the current step's products. Out-of-range tokens and rows are clamped (their results are not written)
// and K past its end reads zeros. Epilogue, one 16 x 16 block position (i, j) at a time: every subgroup stores its
// block (GATED: and the matching up block) to workgroup memory, and the threads add the SK partial sums and write
// the outputs.

@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;

const SG = SGM * SGN * SK;
const THREADS = 32u * SG;
const BM = 16u * WM * SGM;
const BN = 16u * WN * SGN;
/** K per subgroup per step, and per workgroup per step. */
const KW = 32u * KM;
const BK = KW * SK;
/** Halves per staged row: BK plus 8 of padding. */
const LD = BK + 8u;
/** 8-element chunks per staged row. */
const CHUNKS = BK / 8u;

/** Per subgroup, one result block and (GATED) its up block. */
var<workgroup> cs: array<f32, SG * 512u>;

/** Weight row (within the part) behind tile column v of the workgroup whose first output is o0. */
fn stagedRow(o0: u32, v: u32) -> u32 {
  if (GATED == 1u) {
    let half = 8u * WN;
    let within = v % (16u * WN);
    let n = min(o0 + (v / (16u * WN)) * half + within % half, p.N - 1u);
    return select(n, p.upOffset + n, within >= half);
  }
  return min(o0 + v, p.N - 1u);
}

/** Pair j (< 4) of an 8-half chunk held as 4 words (the staging functions store a chunk pair by pair). */
fn chunkPair(v: vec4<u32>, j: u32) -> vec2<f16> {
  return bitcast<vec2<f16>>(select(select(v.x, v.y, j == 1u), select(v.z, v.w, j == 3u), j >= 2u));
}

// @x-f32 {  (x as f32, rounded to f16 when staged; XH 1 replaces this region with @x-f16's)
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
var<workgroup> xs: array<f16, BM * LD>;

/** x chunk e (< BM CHUNKS) of the step at k0: 8 values of a token row (zeros past K). */
fn loadX(tileM: u32, e: u32, k0: u32) -> mat2x4<f32> {
  let chunk = k0 / 8u + e % CHUNKS;
  if (chunk >= p.K / 8u) {
    return mat2x4<f32>();
  }
  let i = (min(tileM + e / CHUNKS, p.T - 1u) * (p.K / 8u) + chunk) * 2u;
  return mat2x4<f32>(x[i], x[i + 1u]);
}

/**
 * Stores x chunk e at its place in xs. A thread's 8 halves go out as 4 pairs, chunk e starting at pair e % 4:
 * stored in order, a subgroup's 32 chunks (rows LD halves apart) start on only 8 banks, 4 chunks each, which would
 * store to the same bank at once (4-way conflicts; H200: an engine prefill chunk 48 -> 44 ms); the 4 chunks
 * sharing a bank have distinct e % 4, so rotated, each store of a subgroup hits distinct banks.
 */
fn stageX(e: u32, v: mat2x4<f32>) {
  let at = (e / CHUNKS) * LD + (e % CHUNKS) * 8u;
  let lo = vec4<f16>(v[0]);
  let hi = vec4<f16>(v[1]);
  for (var i = 0u; i < 4u; i++) {
    let j = (i + e) % 4u;
    let h = select(select(lo.xy, lo.zw, j == 1u), select(hi.xy, hi.zw, j == 3u), j >= 2u);
    xs[at + 2u * j] = h.x;
    xs[at + 2u * j + 1u] = h.y;
  }
}
// @x-f32 }
// @x-f16 {  (XH 1: x as f16 [T, K], staged like the weight)
@group(0) @binding(1) var<storage, read> x: array<vec4<u32>>;
var<workgroup> xs: array<f16, BM * LD>;

/** x chunk e (< BM CHUNKS) of the step at k0: 8 halves of a token row (zeros past K). */
fn loadX(tileM: u32, e: u32, k0: u32) -> vec4<u32> {
  let chunk = k0 / 8u + e % CHUNKS;
  if (chunk >= p.K / 8u) {
    return vec4<u32>();
  }
  return x[min(tileM + e / CHUNKS, p.T - 1u) * (p.K / 8u) + chunk];
}

/** Stores x chunk e at its place in xs, its pairs rotated as in the f32 stageX. */
fn stageX(e: u32, v: vec4<u32>) {
  let at = (e / CHUNKS) * LD + (e % CHUNKS) * 8u;
  for (var i = 0u; i < 4u; i++) {
    let j = (i + e) % 4u;
    let h = chunkPair(v, j);
    xs[at + 2u * j] = h.x;
    xs[at + 2u * j + 1u] = h.y;
  }
}
// @x-f16 }
// @staged-w {  (the weight staged through workgroup memory; DIRECT tiles get w: array<f16> in its place)
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
var<workgroup> ws: array<f16, BN * LD>;

/** Weight chunk e (< BN CHUNKS) of the step at k0: 8 halves of a staged row (zeros past K). */
fn loadW(o0: u32, e: u32, k0: u32) -> vec4<u32> {
  let chunk = k0 / 8u + e % CHUNKS;
  if (chunk >= p.K / 8u) {
    return vec4<u32>();
  }
  return w[stagedRow(o0, e / CHUNKS) * (p.wStride / 8u) + chunk];
}

/** Stores weight chunk e at its place in ws, its pairs rotated as in stageX. */
fn stageW(e: u32, v: vec4<u32>) {
  let at = (e / CHUNKS) * LD + (e % CHUNKS) * 8u;
  for (var i = 0u; i < 4u; i++) {
    let j = (i + e) % 4u;
    let h = chunkPair(v, j);
    ws[at + 2u * j] = h.x;
    ws[at + 2u * j + 1u] = h.y;
  }
}
// @staged-w }
// @staged-q {  (BLOCKS: a block-quantized weight, src/layers/quant/; its rows dequantized as they are staged)
@group(0) @binding(2) var<storage, read> w: array<u32>;
var<workgroup> ws: array<f16, BN * LD>;

/** 32-element chunks of a staged row per step. */
const QCHUNKS = BK / 32u;

/**
 * Weight chunk e (< BN QCHUNKS) of the step at k0: the 32 values of a staged row that the format's qChunk
 * dequantizes (p.wStride: bytes between rows), rounded to f16 and packed in pairs (zeros past K).
 */
fn loadW(o0: u32, e: u32, k0: u32) -> array<vec4<u32>, 4> {
  var r: array<vec4<u32>, 4>;
  let c = k0 / 32u + e % QCHUNKS;
  if (c >= p.K / 32u) {
    return r;
  }
  let v = qChunk(stagedRow(o0, e / QCHUNKS) * p.wStride, c);
  for (var i = 0u; i < 4u; i++) {
    let a = v[2u * i];
    let b = v[2u * i + 1u];
    r[i] = vec4<u32>(pack2x16float(a.xy), pack2x16float(a.zw), pack2x16float(b.xy), pack2x16float(b.zw));
  }
  return r;
}

/**
 * Stores weight chunk e at its place in ws, each 8-half group's pairs starting at pair (e / 8) % 4. In order, the 32
 * chunks of a subgroup (rows LD halves apart, LD / 2 = 4 or 20 words mod 32 for BK = 64 or 32) start on 8 banks,
 * 4 chunks each, and chunks e, e + 8, e + 16, e + 24 (BK 32) or e / 2 = r, r + 4, r + 8, r + 12 (BK 64) share
 * one: rotated, each of a subgroup's stores hits 32 distinct banks.
 */
fn stageW(e: u32, v: array<vec4<u32>, 4>) {
  let at = (e / QCHUNKS) * LD + (e % QCHUNKS) * 32u;
  let r = (e / 8u) % 4u;
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let q = (j + r) % 4u;
      let h = chunkPair(v[i], q);
      ws[at + 8u * i + 2u * q] = h.x;
      ws[at + 8u * i + 2u * q + 1u] = h.y;
    }
  }
}
// @staged-q }

/**
 * Writes result block position (i, j) of every subgroup, stored in cs (block at sg 512, up block at + 256):
 * adds the SK partial sums and writes the outputs.
 */
fn writeBlocks(tid: u32, tileM: u32, o0: u32, split: u32, i: u32, j: u32) {
  workgroupBarrier();
  let nb = select(WN, WN / 2u, GATED == 1u); // output blocks per subgroup
  for (var e = tid; e < SGM * SGN * 256u; e += THREADS) {
    let blk = e / 256u; // = sm SGN + sn
    let q = e % 256u;
    var y = 0.0;
    var up = 0.0;
    for (var g = 0u; g < SK; g++) {
      let at = (blk * SK + g) * 512u + q;
      y += cs[at];
      up += cs[at + 256u];
    }
    let t = tileM + (blk / SGN) * 16u * WM + 16u * i + q / 16u;
    let n = o0 + (blk % SGN) * 16u * nb + 16u * j + q % 16u;
    if (t < p.T && n < p.N) {
      if (p.kSplit >= p.K) {
        storeColumn(t, n, y, up);
      } else {
        let at = (split * p.T + t) * partialRows() + n;
        part[at] = y;
        if (GATED == 1u) {
          part[at + p.upOffset] = up;
        }
      }
    }
  }
  workgroupBarrier();
}

@compute @workgroup_size(THREADS)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let perGroup = select(BN, BN / 2u, GATED == 1u); // outputs per workgroup
  let o0 = (wid.x + wid.z * nwg.x) * perGroup;
  if (o0 >= p.N) {
    return; // the whole workgroup
  }
  let split = wid.y % splits();
  let tileM = (wid.y / splits()) * BM;
  let kBegin = split * p.kSplit; // a multiple of BK
  let kEnd = min(p.K, kBegin + p.kSplit);
  let sg = tid / 32u;
  let kg = sg % SK;
  let aBase = (sg / (SK * SGN)) * 16u * WM * LD + kg * KW; // this subgroup's first x row, its K slice
  let bBase = ((sg / SK) % SGN) * 16u * WN * LD + kg * KW;

  // @generated declarations: c<i>_<j> (result blocks), px<q> / pw<q> (this thread's chunks of the next step)
  for (var k0 = kBegin; k0 < kEnd; k0 += BK) {
    // @generated staging: barrier, stageX(tid + q THREADS, px<q>), stageW(...), barrier
    // @generated current: DIRECT, q<s>_<j> = b<s>_<j> (this step's weight blocks, loaded one step ahead)
    if (k0 + BK < kEnd) {
      // @generated prefetch: px<q> = loadX(tileM, tid + q THREADS, k0 + BK), pw<q> = loadW(...) (DIRECT: b<s>_<j>)
    }
    // @generated products: per 16 of KW, a<i> and b<j> from xs and ws (DIRECT: q<s>_<j>), c<i>_<j> += a<i> b<j>
  }
  // @generated epilogue: per (i, j): subgroupMatrixStore(&cs, sg 512, c<i>_<j>) (GATED: and the up block), writeBlocks
}
