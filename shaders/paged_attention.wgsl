// Paged attention over a flat batch of tokens (prefill and decode mixed), causal, optional sliding window, GQA:
//   out[t, h, :] = sum_j softmax_j(scale * q[t, h, :] . k[j, kvh, :]) v[j, kvh, :]
// for the keys j of token t's sequence s = seqIdx[t] at positions lo .. p (p = positions[t],
// lo = window > 0 ? max(0, p - window + 1) : 0: the window counts the current token, as in HF/Mistral), where
// kvh = h / G (G = nH / nKv q heads share a kv head) and key j lives in cache slot
// blockTables[s, j / blockSize] * blockSize + j % blockSize.
//
// Prelude (templated on the cache dtype and the head group): KS the cache storage word and loadK(i) / loadV(i) ->
// vec4<f32>, the i-th vec4 of a cache (f16 caches are u32 pairs, unpacked with unpack2x16float: no shader-f16
// needed); GT the q heads per workgroup; DPT = ceil(64 / WG) the output vec4s per thread per head (consts: they
// size arrays).
//
// Bindings: qkv         f32     [T, (nH + 2 nKv) D]   q heads first (k, v columns unread: the cache holds them)
//           kCache      f32|f16 [numBlocks, blockSize, nKv, D]
//           vCache      f32|f16 [numBlocks, blockSize, nKv, D]
//           seqIdx      u32     [T]
//           positions   u32     [T]
//           blockTables u32     [S, maxBlocksPerSeq]
//           out         f32     [T, nH D]
//           partials    f32     [T nH splits (4 + D)] (split-K only; see below)
// D is a multiple of 4 and at most 256.
//
// Split-K (flash decoding): with splits > 1 the keys lo .. p are cut into pieces of partLen keys, piece wid.z per
// workgroup, so a few long sequences still fill the GPU. Each workgroup then writes its unnormalised partial
// (m, l, acc) for paged_attention.combine.wgsl to merge, instead of out: with piece index
// pi = (t nH + h) splits + wid.z, partials[pi] = (m, l, 0, 0) and partials[T nH splits + pi D / 4 + d4] = acc.
//
// Dispatch: one workgroup of WG threads per (group of GT q heads sharing a kv head, token, piece) = (wid.x, wid.y,
// wid.z), so each key and value is read once for GT heads. Keys are taken WG at a time: thread i scores key lo + c + i for
// each head, a shared tree reduces (max, sum of exp) pairs per head, and each thread accumulates p_j v_j for its
// output vec4s (lid, lid + WG, ...) of each head, with the online-softmax rescaling of flash attention between
// chunks.

struct Params {
  T: u32,
  nH: u32,
  nKv: u32,
  D: u32,
  qkvStride: u32,
  blockSize: u32,
  maxBlocksPerSeq: u32,
  window: u32,
  scale: f32,
  groupsPerKv: u32, // workgroups per kv head: ceil(G / GT)
  splits: u32, // pieces of the key range (1: write out directly)
  partLen: u32, // keys per piece when splits > 1
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> kCache: array<KS>;
@group(0) @binding(3) var<storage, read> vCache: array<KS>;
@group(0) @binding(4) var<storage, read> seqIdx: array<u32>;
@group(0) @binding(5) var<storage, read> positions: array<u32>;
@group(0) @binding(6) var<storage, read> blockTables: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> partials: array<vec4<f32>>;

/** Threads per workgroup and keys per chunk; a power of two. */
override WG: u32 = 64;

/** The GT queries, scaled: q[g * 64 + i] (D / 4 <= 64 vec4s per head). */
var<workgroup> q: array<vec4<f32>, 64 * GT>;
/** Per head and key of the chunk: exp(score - m): prob[g * WG + j]. */
var<workgroup> prob: array<f32, WG * GT>;
/** Per key of the chunk: the vec4 index of its (slot, kvh) row in the caches. */
var<workgroup> row: array<u32, WG>;
/** (max, sum of exp(score - max)) pairs per head for the tree reduction: red[g * WG + j]. */
var<workgroup> red: array<vec2<f32>, WG * GT>;

const NEG_INF = -3.0e38;

fn combine(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let t = wid.y;
  let D4 = p.D / 4u;
  let G = p.nH / p.nKv;
  let kvh = wid.x / p.groupsPerKv;
  let h0 = kvh * G + (wid.x % p.groupsPerKv) * GT; // first q head of this workgroup
  let heads = min(GT, kvh * G + G - h0); // its q heads (the last group of a kv head may be partial)
  let seq = seqIdx[t];
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
  let table = seq * p.maxBlocksPerSeq;

  for (var e = lid; e < heads * D4; e += WG) {
    let g = e / D4;
    let i = e % D4;
    q[g * 64u + i] = qkv[(t * p.qkvStride + (h0 + g) * p.D) / 4u + i] * p.scale;
  }
  workgroupBarrier();

  var m: array<f32, GT>; // running max per head
  var l: array<f32, GT>; // running sum of exp(score - m) per head
  var acc: array<vec4<f32>, GT * DPT>; // acc[g * DPT + i]: head g, output vec4 lid + i WG
  for (var g = 0u; g < GT; g++) {
    m[g] = NEG_INF;
  }
  // lo > hi (an empty piece) skips the loop and leaves m = -inf, l = 0, acc = 0.
  for (var c = lo; c <= hi; c += WG) {
    let j = c + lid;
    let valid = j <= hi;
    var s: array<f32, GT>;
    for (var g = 0u; g < GT; g++) {
      s[g] = NEG_INF;
    }
    if (valid) {
      let block = blockTables[table + j / p.blockSize];
      let r = ((block * p.blockSize + j % p.blockSize) * p.nKv + kvh) * D4;
      row[lid] = r;
      // Zeroed explicitly: a `var` array declared in a loop came back holding the previous iteration's values on
      // lavapipe (Tint + Mesa 25), despite WGSL's zero-initialisation.
      var d: array<f32, GT>;
      for (var g = 0u; g < GT; g++) {
        d[g] = 0.0;
      }
      for (var i = 0u; i < D4; i++) {
        let k = loadK(r + i);
        for (var g = 0u; g < GT; g++) {
          d[g] += dot(q[g * 64u + i], k);
        }
      }
      s = d;
    }
    for (var g = 0u; g < GT; g++) {
      red[g * WG + lid] = vec2<f32>(s[g], select(0.0, 1.0, valid));
    }
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
      if (lid < k) {
        for (var g = 0u; g < GT; g++) {
          red[g * WG + lid] = combine(red[g * WG + lid], red[g * WG + lid + k]);
        }
      }
      workgroupBarrier();
    }
    for (var g = 0u; g < GT; g++) {
      let chunk = red[g * WG];
      let mNew = max(m[g], chunk.x);
      let corr = exp(m[g] - mNew);
      l[g] = l[g] * corr + chunk.y * exp(chunk.x - mNew);
      m[g] = mNew;
      for (var i = 0u; i < DPT; i++) {
        acc[g * DPT + i] *= corr;
      }
      prob[g * WG + lid] = select(0.0, exp(s[g] - mNew), valid);
    }
    workgroupBarrier();
    let n = min(WG, hi + 1u - c);
    for (var i = 0u; i < DPT; i++) {
      let d4 = lid + i * WG;
      if (d4 < D4) {
        var a: array<vec4<f32>, GT>;
        for (var g = 0u; g < GT; g++) {
          a[g] = acc[g * DPT + i];
        }
        for (var jj = 0u; jj < n; jj++) {
          let v = loadV(row[jj] + d4);
          for (var g = 0u; g < GT; g++) {
            a[g] += prob[g * WG + jj] * v;
          }
        }
        for (var g = 0u; g < GT; g++) {
          acc[g * DPT + i] = a[g];
        }
      }
    }
    // The next chunk overwrites red, prob and row.
    workgroupBarrier();
  }

  if (p.splits > 1u) {
    let pieces = p.T * p.nH * p.splits;
    for (var g = 0u; g < heads; g++) {
      let pi = ((t * p.nH + h0 + g) * p.splits + wid.z);
      if (lid == 0u) {
        partials[pi] = vec4<f32>(m[g], l[g], 0.0, 0.0);
      }
      for (var i = 0u; i < DPT; i++) {
        let d4 = lid + i * WG;
        if (d4 < D4) {
          partials[pieces + pi * D4 + d4] = acc[g * DPT + i];
        }
      }
    }
    return;
  }
  for (var g = 0u; g < heads; g++) {
    for (var i = 0u; i < DPT; i++) {
      let d4 = lid + i * WG;
      if (d4 < D4) {
        out[(t * p.nH + h0 + g) * D4 + d4] = acc[g * DPT + i] / l[g];
      }
    }
  }
}
