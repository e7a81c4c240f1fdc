// Paged attention, subgroup variant (the fast one; paged_attention.wgsl is the portable one): the math, params,
// bindings and split-K partials are lib/paged_attention.wgsl's (prepended).
//
// Prelude: as the lib's (VW = 4: D % 4 == 0), with enable subgroups, and EPL the vec4s of a head each lane holds
// (a const: it sizes arrays).
//
// Per workgroup (pieceOf): thread lid = kl DL + dl: DL lanes (a power of two no larger than the subgroup) share a
// key, each holding vec4s dl, dl + DL, ... (EPL of them) of its k and v rows, so a key's row is read by consecutive
// lanes in one go; KL = WG / DL key lanes take keys lo + kl, lo + kl + KL, ... (two per iteration). Each key lane
// runs its own online softmax over its keys (scores summed over the DL lanes with subgroupShuffleXor, no
// barriers); at the end the KL running states (m, l, acc) of each head are merged through workgroup memory, as
// flash decoding merges pieces.

/** Threads per workgroup; a multiple of DL. */
override WG: u32 = 128;
/** Lanes per key; a power of two no larger than the subgroup, with DL EPL >= D / 4. */
override DL: u32 = 16;

/** Merge of one head's key-lane states: (m, l) per key lane, and acc per key lane and vec4. */
var<workgroup> mlS: array<vec2<f32>, WG / DL>;
var<workgroup> accS: array<vec4<f32>, WG * EPL>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let KL = WG / DL;
  let kl = lid / DL;
  let dl = lid % DL;
  let pc = pieceOf(wid);
  let D4 = p.D / 4u;
  loadQueries(pc, lid);
  workgroupBarrier();
  // This lane's query vec4s (zero past D / 4, so idle lanes add nothing).
  var ql: array<vec4<f32>, GT * EPL>;
  for (var g = 0u; g < GT; g++) {
    for (var e = 0u; e < EPL; e++) {
      let i = dl + e * DL;
      ql[g * EPL + e] = select(vec4<f32>(0.0), q[g * QN + min(i, QN - 1u)], i < D4 && g < pc.heads);
    }
  }

  var m: array<f32, GT>;
  var l: array<f32, GT>;
  var acc: array<vec4<f32>, GT * EPL>;
  for (var g = 0u; g < GT; g++) {
    m[g] = NEG_INF;
  }
  // Keys are taken 2 KL at a time, key lane kl taking keys j0 + kl and j0 + KL + kl (both loaded before either is
  // scored: twice the loads in flight); the trip count is the workgroup's, so the shuffles run in uniform control
  // flow (a lane past hi loads key hi and skips its update). lo > hi (an empty piece) skips the loop and leaves
  // m = -inf, l = 0, acc = 0.
  for (var j0 = pc.lo; j0 <= pc.hi; j0 += 2u * KL) {
    let ka = keyRow(pc, min(j0 + kl, pc.hi));
    let kb = keyRow(pc, min(j0 + KL + kl, pc.hi));
    let validA = j0 + kl <= pc.hi;
    let validB = j0 + KL + kl <= pc.hi;
    var kA: array<vec4<f32>, EPL>;
    var vA: array<vec4<f32>, EPL>;
    var kB: array<vec4<f32>, EPL>;
    var vB: array<vec4<f32>, EPL>;
    for (var e = 0u; e < EPL; e++) {
      let i = min(dl + e * DL, D4 - 1u); // lanes past D / 4 read a valid vec4 and weigh it by a zero query
      kA[e] = loadK(ka + i);
      vA[e] = loadV(ka + i);
      kB[e] = loadK(kb + i);
      vB[e] = loadV(kb + i);
    }
    for (var g = 0u; g < GT; g++) {
      var sa = 0.0;
      var sb = 0.0;
      for (var e = 0u; e < EPL; e++) {
        sa += dot(ql[g * EPL + e], kA[e]);
        sb += dot(ql[g * EPL + e], kB[e]);
      }
      for (var o = DL / 2u; o > 0u; o >>= 1u) {
        sa += subgroupShuffleXor(sa, o);
        sb += subgroupShuffleXor(sb, o);
      }
      sa = capped(sa);
      sb = capped(sb);
      var mNew = m[g];
      if (validA) {
        mNew = max(mNew, sa);
      }
      if (validB) {
        mNew = max(mNew, sb);
      }
      let corr = exp(m[g] - mNew);
      let pa = select(0.0, exp(sa - mNew), validA);
      let pb = select(0.0, exp(sb - mNew), validB);
      l[g] = l[g] * corr + pa + pb;
      m[g] = mNew;
      for (var e = 0u; e < EPL; e++) {
        acc[g * EPL + e] = acc[g * EPL + e] * corr + pa * vA[e] + pb * vB[e];
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
    if (g < pc.heads) {
      var M = NEG_INF;
      for (var k = 0u; k < KL; k++) {
        M = max(M, mlS[k].x);
      }
      var Ls = 0.0;
      for (var k = 0u; k < KL; k++) {
        Ls += mlS[k].y * exp(mlS[k].x - M);
      }
      let h = pc.h0 + g;
      let pi = (pc.t * p.nH + h) * p.splits + wid.z;
      for (var i = lid; i < D4; i += WG) {
        // vec4 i of the head is lane i % DL's element i / DL: accS[kl DL EPL + i].
        var a = vec4<f32>(0.0);
        for (var k = 0u; k < KL; k++) {
          a += accS[k * DL * EPL + i] * exp(mlS[k].x - M);
        }
        if (p.splits > 1u) {
          partials[pieces + pi * D4 + i] = a;
        } else {
          out[(pc.t * p.nH + h) * D4 + i] = a / Ls;
        }
      }
      if (p.splits > 1u && lid == 0u) {
        storeStats(pi, M, Ls);
      }
    }
    workgroupBarrier();
  }
}
