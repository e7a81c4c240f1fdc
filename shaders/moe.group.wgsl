// MoE grouping: a stable counting sort of the P = T K (token, slot) pairs by expert, and the tile list the
// grouped GEMVs (moe.gemv.wgsl) walk. Pair i = t K + k is token t's k-th choice, expert ids[i].
//
// Output `groups`, u32 words (layout also in src/ops/moe.ts moeGroupLayout):
//   [0, E)                    counts[e]       pairs routed to expert e
//   [E, 2E + 1)               offsets[e]      first sorted position of expert e (offsets[E] = P)
//   [2E + 1, 3E + 2)          tileOffsets[e]  first tile of expert e (tileOffsets[E] = the number of tiles)
//   [sortedAt, sortedAt + P)  sorted[s]       pair indices by expert, ascending within an expert
//   [tilesAt, + 2 tiles)      tiles[j]        (expert, first sorted position) of tile j: expert e's pairs in
//                                             runs of TR, ceil(counts[e] / TR) tiles, ordered by expert
//
// Bindings: ids     u32 [P]   (each < E; larger ids are clamped to E - 1)
//           groups  u32 [see above]
//
// Dispatch: one workgroup of WG threads (a power of two). Counts by workgroup atomics; prefix sums by a scan over
// the threads; then blocks of WG pairs are scattered, pair i at cursor[e] + (the pairs of e before i in its
// block), which keeps the order. Cost: P / WG blocks of up to WG shared-memory reads per thread.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: GROUP_PARAMS in src/ops/moe.ts
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> groups: array<u32>;

override WG: u32 = 256;
/** Room for the experts in workgroup memory: EMAX >= E. */
override EMAX: u32 = 256;

var<workgroup> counts: array<atomic<u32>, EMAX>;
var<workgroup> cursor: array<atomic<u32>, EMAX>;
var<workgroup> tileStart: array<u32, EMAX>;
var<workgroup> block: array<u32, WG>;
var<workgroup> scan: array<vec2<u32>, WG>;

fn expertOf(i: u32) -> u32 {
  return min(ids[i], p.E - 1u);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  for (var e = lid; e < p.E; e += WG) {
    atomicStore(&counts[e], 0u);
  }
  workgroupBarrier();
  for (var i = lid; i < p.P; i += WG) {
    atomicAdd(&counts[expertOf(i)], 1u);
  }
  workgroupBarrier();
  // Exclusive prefix sums of the counts and tile counts: thread lid takes experts lid per .. + per - 1 (a run, so
  // one scan over the threads' totals orders them), then a Hillis-Steele scan over the WG totals.
  let per = (p.E + WG - 1u) / WG;
  let e0 = min(lid * per, p.E);
  let e1 = min(e0 + per, p.E);
  var own = vec2<u32>(0u);
  for (var e = e0; e < e1; e++) {
    let c = atomicLoad(&counts[e]);
    own += vec2<u32>(c, (c + p.TR - 1u) / p.TR);
  }
  scan[lid] = own;
  workgroupBarrier();
  for (var o = 1u; o < WG; o <<= 1u) {
    var left = vec2<u32>(0u);
    if (lid >= o) {
      left = scan[lid - o];
    }
    workgroupBarrier();
    scan[lid] += left;
    workgroupBarrier();
  }
  var run = scan[lid] - own; // pairs and tiles of the experts before e0
  for (var e = e0; e < e1; e++) {
    let c = atomicLoad(&counts[e]);
    groups[e] = c;
    groups[p.E + e] = run.x;
    groups[2u * p.E + 1u + e] = run.y;
    atomicStore(&cursor[e], run.x);
    tileStart[e] = run.y;
    run += vec2<u32>(c, (c + p.TR - 1u) / p.TR);
  }
  if (lid == WG - 1u) {
    groups[2u * p.E] = scan[lid].x;
    groups[3u * p.E + 1u] = scan[lid].y;
  }
  workgroupBarrier();
  for (var e = lid; e < p.E; e += WG) {
    let c = atomicLoad(&counts[e]);
    let first = atomicLoad(&cursor[e]);
    for (var j = 0u; j * p.TR < c; j++) {
      let at = p.tilesAt + 2u * (tileStart[e] + j);
      groups[at] = e;
      groups[at + 1u] = first + j * p.TR;
    }
  }
  workgroupBarrier(); // cursor is read above before the scatter moves it
  for (var base = 0u; base < p.P; base += WG) {
    let i = base + lid;
    let valid = i < p.P;
    var e = 0xffffffffu;
    if (valid) {
      e = expertOf(i);
    }
    block[lid] = e;
    workgroupBarrier();
    if (valid) {
      var rank = 0u;
      for (var j = 0u; j < lid; j++) {
        rank += select(0u, 1u, block[j] == e);
      }
      groups[p.sortedAt + atomicLoad(&cursor[e]) + rank] = i;
    }
    workgroupBarrier(); // every thread has read cursor before it moves
    if (valid) {
      atomicAdd(&cursor[e], 1u);
    }
    workgroupBarrier();
  }
}
