// Shared by paged_attention.wgsl (portable) and paged_attention.subgroup.wgsl (included by prepending): the math,
// params, bindings and split-K partials below, the queries in workgroup memory, and which piece of work a
// workgroup has.
//
// Paged attention over a flat batch of tokens (prefill and decode mixed), causal, optional sliding window, GQA:
//   out[t, h, :] = sum_j softmax_j(scale * q[t, h, :] . k[j, kvh, :]) v[j, kvh, :]
// for the keys j of token t's sequence s = seqIdx[t] at positions lo .. p (p = positions[t],
// lo = window > 0 ? max(0, p - window + 1) : 0: the window counts the current token, as in HF/Mistral), where
// kvh = h / G (G = nH / nKv q heads share a kv head) and key j lives in cache slot
// blockTables[s, j / blockSize] * blockSize + j % blockSize.
//
// with the scores soft-capped (Gemma 2) when softcap > 0: scale q.k becomes softcap(scale q.k, softcap)
// (lib/softcap.wgsl, prepended) before the softmax.
//
// Prelude (templated on the cache dtype, the vector width and the head group): QV the vector of VW f32 that heads
// are read in (vec4<f32> when D % 4 == 0, else f32: any head dim), vdot(a, b), QN = 256 / VW the vectors of the
// largest head, storeStats(pi, m, l) (a piece's split-K record); KS the cache storage word and loadK(i) / loadV(i)
// -> QV, the i-th vector of a cache; GT the q heads per workgroup (a const: it sizes arrays).
//
// Bindings: qkv         f32     [T, (nH + 2 nKv) D]   q heads first (k, v columns unread: the cache holds them)
//           kCache      f32|f16 [numBlocks, blockSize, nKv, D]
//           vCache      f32|f16 [numBlocks, blockSize, nKv, D]
//           seqIdx      u32     [T]
//           positions   u32     [T]
//           blockTables u32     [S, maxBlocksPerSeq]
//           out         f32     [T, nH D]
//           partials    f32     [T nH splits (4 + D)] (split-K only; see below)
// D is at most 256 (DV = D / VW vectors per head).
//
// Split-K (flash decoding): with splits > 1 the keys lo .. p are cut into pieces of partLen keys, piece wid.z per
// workgroup, so a few long sequences still fill the GPU. Each workgroup then writes its unnormalised partial
// (m, l, acc) for paged_attention.combine.wgsl to merge, instead of out: with piece index
// pi = (t nH + h) splits + wid.z, f32 words 4 pi .. 4 pi + 3 hold (m, l, 0, 0) (storeStats) and vector
// T nH splits 4 / VW + pi DV + dv of partials holds vector dv of acc (whatever VW, the same bytes).
//
// Dispatch (both kernels): one workgroup per (group of GT q heads sharing a kv head, token, piece) = (wid.x, wid.y,
// wid.z), so each key and value is read once for GT heads.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: ATTENTION_PARAMS in src/ops/attention.ts
@group(0) @binding(1) var<storage, read> qkv: array<QV>;
@group(0) @binding(2) var<storage, read> kCache: array<KS>;
@group(0) @binding(3) var<storage, read> vCache: array<KS>;
@group(0) @binding(4) var<storage, read> seqIdx: array<u32>;
@group(0) @binding(5) var<storage, read> positions: array<u32>;
@group(0) @binding(6) var<storage, read> blockTables: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<QV>;
@group(0) @binding(8) var<storage, read_write> partials: array<QV>;

/** The GT queries, scaled: q[g * QN + i] (DV <= QN vectors per head). */
var<workgroup> q: array<QV, QN * GT>;

const NEG_INF = -3.0e38;

/** A workgroup's work: token t, kv head kvh, its q heads h0 .. h0 + heads - 1, keys lo .. hi, block table at table. */
struct Piece {
  t: u32,
  kvh: u32,
  h0: u32,
  heads: u32,
  lo: u32,
  hi: u32,
  table: u32,
}

fn pieceOf(wid: vec3<u32>) -> Piece {
  let t = wid.y;
  let G = p.nH / p.nKv;
  let kvh = wid.x / p.groupsPerKv;
  let h0 = kvh * G + (wid.x % p.groupsPerKv) * GT;
  let heads = min(GT, kvh * G + G - h0); // the last group of a kv head may be partial
  let pos = positions[t];
  var lo = 0u;
  if (p.window > 0u && pos + 1u > p.window) {
    lo = pos + 1u - p.window;
  }
  var hi = pos; // last key of this workgroup's piece
  if (p.splits > 1u) {
    lo += wid.z * p.partLen;
    hi = min(pos, lo + p.partLen - 1u);
  }
  return Piece(t, kvh, h0, heads, lo, hi, seqIdx[t] * p.maxBlocksPerSeq);
}

/** Stages the piece's scaled queries in q (the caller then waits at a barrier). */
fn loadQueries(pc: Piece, lid: u32) {
  let DV = p.D / VW;
  for (var e = lid; e < pc.heads * DV; e += WG) {
    let g = e / DV;
    let i = e % DV;
    q[g * QN + i] = qkv[(pc.t * p.qkvStride + (pc.h0 + g) * p.D) / VW + i] * p.scale;
  }
}

/** The vector index of key j's (cache slot, kv head) row in the caches, through the sequence's block table. */
fn keyRow(pc: Piece, j: u32) -> u32 {
  let block = blockTables[pc.table + j / p.blockSize];
  return ((block * p.blockSize + j % p.blockSize) * p.nKv + pc.kvh) * (p.D / VW);
}

/** A score (scale q.k) as the softmax takes it: soft-capped when p.softcap > 0. */
fn capped(s: f32) -> f32 {
  if (p.softcap > 0.0) {
    return softcap(s, p.softcap);
  }
  return s;
}
