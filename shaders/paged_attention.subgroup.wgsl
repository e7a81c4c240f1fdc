// Paged attention, subgroup variant (the fast one; paged_attention.wgsl is the portable one and states the same
// math, inputs and split-K partials): for token t of sequence s, q head h (kv head kvh = h / G),
//   out[t, h, :] = sum_j softmax_j(scale q[t, h, :] . k[j, kvh, :]) v[j, kvh, :]   over keys j = lo .. p
// read through blockTables[s].
//
// Prelude (templated on the cache dtype and head group): enable subgroups; KS and loadK(i) / loadV(i) ->
// vec4<f32>, the i-th vec4 of a cache; GT the q heads per workgroup; EPL the vec4s of a head each lane holds (consts:
// they size arrays).
//
// Bindings: as paged_attention.wgsl.
//
// Dispatch: one workgroup of WG threads per (group of GT q heads sharing a kv head, token, piece) = (wid.x, wid.y,
// wid.z); pieces (split-K) are written as partials for paged_attention.combine.wgsl. Thread lid = kl DL + dl: DL lanes (a power of two no larger than the subgroup) share a key, each holding
// vec4s dl, dl + DL, ... (EPL of them) of its k and v rows, so a key's row is read by consecutive lanes in one go;
// KL = WG / DL key lanes take keys lo + kl, lo + kl + KL, ... Each key lane runs its own online softmax over its
// keys (scores summed over the DL lanes with subgroupShuffleXor, no barriers); at the end the KL running states
// (m, l, acc) of each head are merged through workgroup memory, as flash decoding merges pieces.

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> kCache: array<KS>;
@group(0) @binding(3) var<storage, read> vCache: array<KS>;
@group(0) @binding(4) var<storage, read> seqIdx: array<u32>;
@group(0) @binding(5) var<storage, read> positions: array<u32>;
@group(0) @binding(6) var<storage, read> blockTables: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> partials: array<vec4<f32>>;

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

/** Threads per workgroup; a multiple of DL. */
override WG: u32 = 128;
/** Lanes per key; a power of two no larger than the subgroup, with DL EPL >= D / 4. */
override DL: u32 = 16;

/** The GT queries, scaled: q[g * 64 + i] (D / 4 <= 64 vec4s per head). */
var<workgroup> q: array<vec4<f32>, 64 * GT>;
/** Merge of one head's key-lane states: (m, l) per key lane, and acc per key lane and vec4. */
var<workgroup> mlS: array<vec2<f32>, WG / DL>;
var<workgroup> accS: array<vec4<f32>, WG * EPL>;

const NEG_INF = -3.0e38;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let KL = WG / DL;
  let kl = lid / DL;
  let dl = lid % DL;
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
  // This lane's query vec4s (zero past D / 4, so idle lanes add nothing).
  var ql: array<vec4<f32>, GT * EPL>;
  for (var g = 0u; g < GT; g++) {
    for (var e = 0u; e < EPL; e++) {
      let i = dl + e * DL;
      ql[g * EPL + e] = select(vec4<f32>(0.0), q[g * 64u + min(i, 63u)], i < D4 && g < heads);
    }
  }

  var m: array<f32, GT>;
  var l: array<f32, GT>;
  var acc: array<vec4<f32>, GT * EPL>;
  for (var g = 0u; g < GT; g++) {
    m[g] = NEG_INF;
  }
  // Keys are taken KL at a time, key lane kl taking key j0 + kl; the trip count is the workgroup's, so the shuffles
  // run in uniform control flow (a lane past hi loads key hi and skips the update). lo > hi (an empty piece) skips
  // the loop and leaves m = -inf, l = 0, acc = 0.
  for (var j0 = lo; j0 <= hi; j0 += KL) {
    let j = min(j0 + kl, hi);
    let valid = j0 + kl <= hi;
    let block = blockTables[table + j / p.blockSize];
    let r = ((block * p.blockSize + j % p.blockSize) * p.nKv + kvh) * D4;
    var kv: array<vec4<f32>, EPL>;
    var vv: array<vec4<f32>, EPL>;
    for (var e = 0u; e < EPL; e++) {
      let i = min(dl + e * DL, D4 - 1u); // lanes past D / 4 read a valid vec4 and weigh it by a zero query
      kv[e] = loadK(r + i);
      vv[e] = loadV(r + i);
    }
    for (var g = 0u; g < GT; g++) {
      var s = 0.0;
      for (var e = 0u; e < EPL; e++) {
        s += dot(ql[g * EPL + e], kv[e]);
      }
      for (var o = DL / 2u; o > 0u; o >>= 1u) {
        s += subgroupShuffleXor(s, o);
      }
      if (valid) {
        let mNew = max(m[g], s);
        let corr = exp(m[g] - mNew);
        let pj = exp(s - mNew);
        l[g] = l[g] * corr + pj;
        m[g] = mNew;
        for (var e = 0u; e < EPL; e++) {
          acc[g * EPL + e] = acc[g * EPL + e] * corr + pj * vv[e];
        }
      }
    }
  }

  // Merge the key lanes, one head at a time.
  let pieces = p.T * p.nH * p.splits;
  for (var g = 0u; g < GT; g++) {
    if (dl == 0u) {
      mlS[kl] = vec2<f32>(m[g], l[g]);
    }
    for (var e = 0u; e < EPL; e++) {
      accS[kl * DL * EPL + e * DL + dl] = acc[g * EPL + e];
    }
    workgroupBarrier();
    if (g < heads) {
      var M = NEG_INF;
      for (var k = 0u; k < KL; k++) {
        M = max(M, mlS[k].x);
      }
      var Ls = 0.0;
      for (var k = 0u; k < KL; k++) {
        Ls += mlS[k].y * exp(mlS[k].x - M);
      }
      let h = h0 + g;
      let pi = (t * p.nH + h) * p.splits + wid.z;
      for (var i = lid; i < D4; i += WG) {
        // vec4 i of the head is lane i % DL's element i / DL: accS[kl DL EPL + i].
        var a = vec4<f32>(0.0);
        for (var k = 0u; k < KL; k++) {
          a += accS[k * DL * EPL + i] * exp(mlS[k].x - M);
        }
        if (p.splits > 1u) {
          partials[pieces + pi * D4 + i] = a;
        } else {
          out[(t * p.nH + h) * D4 + i] = a / Ls;
        }
      }
      if (p.splits > 1u && lid == 0u) {
        partials[pi] = vec4<f32>(M, Ls, 0.0, 0.0);
      }
    }
    workgroupBarrier();
  }
}
