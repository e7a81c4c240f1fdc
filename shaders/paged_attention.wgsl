// Paged attention, portable variant (any WebGPU device; paged_attention.subgroup.wgsl is the fast one): the math,
// params, bindings and split-K partials are lib/paged_attention.wgsl's (prepended).
//
// Prelude: as the lib's (VW 4 or 1: this kernel serves any head dim), and DPT = ceil(QN / WG) the output vectors
// per thread per head (a const: it sizes arrays).
//
// Per workgroup (pieceOf): keys are taken WG at a time: thread i scores key lo + c + i for each head, a shared tree
// reduces (max, sum of exp) pairs per head, and each thread accumulates p_j v_j for its output vectors (lid, lid + WG,
// ...) of each head, with the online-softmax rescaling of flash attention between chunks.

/** Threads per workgroup and keys per chunk; a power of two. */
override WG: u32 = 64;

/** Per head and key of the chunk: exp(score - m): prob[g * WG + j]. */
var<workgroup> prob: array<f32, WG * GT>;
/** Per key of the chunk: the vector index of its (slot, kvh) row in the caches. */
var<workgroup> row: array<u32, WG>;
/** (max, sum of exp(score - max)) pairs per head for the tree reduction: red[g * WG + j]. */
var<workgroup> red: array<vec2<f32>, WG * GT>;

fn combine(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let pc = pieceOf(wid);
  let DV = p.D / VW;
  loadQueries(pc, lid);
  workgroupBarrier();

  var m: array<f32, GT>; // running max per head
  var l: array<f32, GT>; // running sum of exp(score - m) per head
  var acc: array<QV, GT * DPT>; // acc[g * DPT + i]: head g, output vector lid + i WG
  for (var g = 0u; g < GT; g++) {
    m[g] = NEG_INF;
  }
  // lo > hi (an empty piece) skips the loop and leaves m = -inf, l = 0, acc = 0.
  for (var c = pc.lo; c <= pc.hi; c += WG) {
    let j = c + lid;
    let valid = j <= pc.hi;
    var s: array<f32, GT>;
    for (var g = 0u; g < GT; g++) {
      s[g] = NEG_INF;
    }
    if (valid) {
      let r = keyRow(pc, j);
      row[lid] = r;
      // Zeroed explicitly: a `var` array declared in a loop came back holding the previous iteration's values on
      // lavapipe (Tint + Mesa 25), despite WGSL's zero-initialisation.
      var d: array<f32, GT>;
      for (var g = 0u; g < GT; g++) {
        d[g] = 0.0;
      }
      for (var i = 0u; i < DV; i++) {
        let k = loadK(r + i);
        for (var g = 0u; g < GT; g++) {
          d[g] += vdot(q[g * QN + i], k);
        }
      }
      for (var g = 0u; g < GT; g++) {
        s[g] = capped(d[g]);
      }
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
    let n = min(WG, pc.hi + 1u - c);
    for (var i = 0u; i < DPT; i++) {
      let dv = lid + i * WG;
      if (dv < DV) {
        var a: array<QV, GT>;
        for (var g = 0u; g < GT; g++) {
          a[g] = acc[g * DPT + i];
        }
        for (var jj = 0u; jj < n; jj++) {
          let v = loadV(row[jj] + dv);
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
    for (var g = 0u; g < pc.heads; g++) {
      let pi = ((pc.t * p.nH + pc.h0 + g) * p.splits + wid.z);
      if (lid == 0u) {
        storeStats(pi, m[g], l[g]);
      }
      for (var i = 0u; i < DPT; i++) {
        let dv = lid + i * WG;
        if (dv < DV) {
          partials[pieces * (4u / VW) + pi * DV + dv] = acc[g * DPT + i];
        }
      }
    }
    return;
  }
  for (var g = 0u; g < pc.heads; g++) {
    for (var i = 0u; i < DPT; i++) {
      let dv = lid + i * WG;
      if (dv < DV) {
        out[(pc.t * p.nH + pc.h0 + g) * DV + dv] = acc[g * DPT + i] / l[g];
      }
    }
  }
}
