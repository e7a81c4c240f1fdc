// Top-K candidates, step 2 of 4 (src/ops/topk.ts): per row, the K largest of the chunks' NC * K candidates,
// sorted, with the row max and the min-p floor. Row s's record out[s * R ..], R = 4 + 3K words:
//   [0] max = the largest logit (f32 bits)      [1] floor = max + off if off <= 0 (min-p), clamped at -FLT_MAX;
//                                                   -FLT_MAX when off > 0 (no min-p)
//   [4 + j]      ids[j]    } j < K, logit descending, ties to the lower id (key desc, id asc)
//   [4 + K + j]  logits[j] }
//   [4 + 2K + j] prefix[j] = 0 (steps 3 and 4 fill it); [2], [3] are step 4's.
// f32(max + off) is one correctly rounded add, as the CPU sampler's m + f32(T * ln(minP)) once the facade passes
// off = f32(T * f32(ln(minP))) (src/sampling/candidates.ts candidateRowParams).
//
// Bindings: cand      vec2<u32> [S, NC, K] (step 1)
//           rowParams vec2<f32> [S]: (1 / T, off)
//           out       u32 [S, R]
//
// Dispatch: one workgroup of WG threads per row s = wid.x + wid.y * nwg.x. The radix select of lib/topk.wgsl
// reads the row's NC * K items from cand each round (L2-resident, NC * K * 8 bytes), the K taken go to
// workgroup memory in any order, and a bitonic network (K a power of two) sorts them descending.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: TOPK_PARAMS in src/ops/topk.ts
@group(0) @binding(1) var<storage, read> cand: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> rowParams: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

/** Threads per workgroup: a power of two, at most 256. */
override WG: u32 = 256;
/** Candidates per row: a power of two, at most 256. */
override K: u32 = 64;
const LOWEST = bitcast<f32>(0xff7fffffu); // -FLT_MAX

var<workgroup> taken: atomic<u32>;
var<workgroup> top: array<vec2<u32>, K>;

/** a before b in the output order: key descending, then id ascending. */
fn before(a: vec2<u32>, b: vec2<u32>) -> bool {
  return a.x > b.x || (a.x == b.x && a.y < b.y);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let s = wid.x + wid.y * nwg.x;
  if (s >= p.S) {
    return;
  }
  let count = p.NC * K;
  let items = s * count;
  if (lid == 0u) {
    atomicStore(&taken, 0u);
  }
  selBegin(lid, K, count);
  for (var r = 0u; r < 8u; r++) {
    let st = workgroupUniformLoad(&sel);
    if (st.done != 0u) {
      break;
    }
    selClear(lid);
    workgroupBarrier();
    for (var i = lid; i < count; i += WG) {
      let c = cand[items + i];
      selOffer(c.x, ~c.y, st);
    }
    workgroupBarrier();
    selPick(lid, st);
  }
  let st = workgroupUniformLoad(&sel);
  for (var i = lid; i < count; i += WG) {
    let c = cand[items + i];
    if (selTaken(c.x, ~c.y, st)) {
      top[atomicAdd(&taken, 1u)] = c;
    }
  }
  workgroupBarrier();

  // Bitonic sort of top[0, K) into `before` order: blocks of size k, merged by strides j.
  for (var k = 2u; k <= K; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      for (var i = lid; i < K; i += WG) {
        let l = i ^ j;
        if (l > i) {
          let a = top[i];
          let b = top[l];
          if (before(a, b) != ((i & k) == 0u)) {
            top[i] = b;
            top[l] = a;
          }
        }
      }
      workgroupBarrier();
    }
  }

  let rec = s * (4u + 3u * K);
  if (lid == 0u) {
    let m = keyValue(top[0].x);
    let off = rowParams[s].y;
    var minFloor = LOWEST; // without min-p every finite logit survives
    if (off <= 0.0) {
      minFloor = max(LOWEST, m + off);
    }
    out[rec] = bitcast<u32>(m);
    out[rec + 1u] = bitcast<u32>(minFloor);
  }
  for (var j = lid; j < K; j += WG) {
    out[rec + 4u + j] = top[j].y;
    out[rec + 4u + K + j] = bitcast<u32>(keyValue(top[j].x));
    out[rec + 4u + 2u * K + j] = 0u;
  }
}
