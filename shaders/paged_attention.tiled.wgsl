// Paged attention for prompts: a workgroup per tile of up to BQ consecutive query tokens of one sequence and group
// of GT q heads of one kv head, so that each key and value of the tile's range is read once (into workgroup
// memory) for all of its BQ GT queries, where the per-token kernels read it once per token. The math, params,
// bindings and keyRow are lib/paged_attention.wgsl's (prepended); no split-K (partials unused).
//
// Prelude: as the lib's (VW = 4: D % 4 == 0), with enable subgroups, and consts R (lanes per query row: a power of two no larger than
// the subgroup), DR4 (vec4s of the head each lane holds: ceil(D / 4 / R)), BQ (queries per tile), BK (keys staged
// per step) and D4C (= D / 4, sizing the staged keys and values).
//
// Bindings (besides the lib's): tiles u32 [2 tiles]: (first token, token count) per tile, the tokens consecutive
// positions of one sequence; a count of 0 marks an unused tile (the dispatch covers a bound on the tile count).
//
// Dispatch: workgroups (kv head groups, tiles) = (wid.x, wid.y). Thread lid serves query row lid / R = qi GT + g
// (query qi of the tile, q head h0 + g), lane r = lid % R of it holding the head's vec4s r DR4 .. r DR4 + DR4 - 1.
// Keys lo(first query) .. position(last query) are walked BK at a time: the workgroup stages their keys and values,
// then each row scores the BK keys one by one (partial dot products added over its R lanes with
// subgroupShuffleXor) and folds those inside its own window lo .. position into its running softmax (m, l, acc).
// (Scoring all BK first and rescaling acc once per step measured the same on an H200.)

@group(0) @binding(9) var<storage, read> tiles: array<u32>;

override WG: u32 = 128;

var<workgroup> kS: array<vec4<f32>, BK * D4C>;
var<workgroup> vS: array<vec4<f32>, BK * D4C>;

/** The first key position a query at `pos` attends to (its sliding window's start, or 0). */
fn windowStart(pos: u32) -> u32 {
  if (p.window > 0u && pos + 1u > p.window) {
    return pos + 1u - p.window;
  }
  return 0u;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t0 = tiles[2u * wid.y];
  let n = tiles[2u * wid.y + 1u];
  if (n == 0u) {
    return; // the whole workgroup: an unused tile
  }
  let G = p.nH / p.nKv;
  let kvh = wid.x / p.groupsPerKv;
  let h0 = kvh * G + (wid.x % p.groupsPerKv) * GT;
  let heads = min(GT, kvh * G + G - h0);
  let row = lid / R;
  let r = lid % R;
  let qi = row / GT;
  let g = row % GT;
  let live = qi < min(n, BQ) && g < heads;
  let t = t0 + min(qi, n - 1u);
  let pos = positions[t];
  let lo = windowStart(pos);
  let first = windowStart(positions[t0]);
  let hi = positions[t0 + n - 1u];
  let pc = Piece(t0, kvh, h0, heads, first, hi, seqIdx[t0] * p.maxBlocksPerSeq);

  // This lane's vec4s of its query, scaled (zeros past D / 4).
  let qAt = (t * p.qkvStride + (h0 + min(g, heads - 1u)) * p.D) / 4u;
  var qv: array<vec4<f32>, DR4>;
  for (var e = 0u; e < DR4; e++) {
    let i = r * DR4 + e;
    qv[e] = select(vec4<f32>(0.0), qkv[qAt + min(i, D4C - 1u)] * p.scale, i < D4C);
  }
  var m = NEG_INF;
  var l = 0.0;
  var acc: array<vec4<f32>, DR4>;
  for (var e = 0u; e < DR4; e++) {
    acc[e] = vec4<f32>(0.0);
  }
  for (var kb = first; kb <= hi; kb += BK) {
    for (var e = lid; e < BK * D4C; e += WG) {
      let at = keyRow(pc, min(kb + e / D4C, hi)) + e % D4C;
      kS[e] = loadK(at);
      vS[e] = loadV(at);
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      var d = 0.0;
      for (var e = 0u; e < DR4; e++) {
        d += dot(qv[e], kS[k * D4C + min(r * DR4 + e, D4C - 1u)]);
      }
      for (var o = R / 2u; o > 0u; o >>= 1u) {
        d += subgroupShuffleXor(d, o);
      }
      d = capped(d);
      let j = kb + k;
      if (live && j >= lo && j <= pos) {
        let mNew = max(m, d);
        let corr = exp(m - mNew);
        let pk = exp(d - mNew);
        l = l * corr + pk;
        m = mNew;
        for (var e = 0u; e < DR4; e++) {
          acc[e] = acc[e] * corr + pk * vS[k * D4C + min(r * DR4 + e, D4C - 1u)];
        }
      }
    }
    workgroupBarrier();
  }
  if (live) {
    for (var e = 0u; e < DR4; e++) {
      let i = r * DR4 + e;
      if (i < D4C) {
        out[(t * p.nH + h0 + g) * D4C + i] = acc[e] / l;
      }
    }
  }
}
