// Top-K candidates, step 4 of 4 (src/ops/topk.ts): per row, the whole row's sum from the chunk partials, and each
// candidate's prefix completed with the chunks before its own. Row s's record out[s * R], R = 4 + 3K:
//   [2] sumExp = sum over c < NC of partial[s, c].x (f32)     [3] NaN count (u32)
//   [4 + 2K + j] += sum over c < ids[j] / CH of partial[s, c].x    (j < K, ids[j] < V)
//
// Bindings: partial vec2<f32> [S, NC] (step 3)
//           out     u32 [S, R]
//
// Dispatch: one workgroup of WG threads per row s = wid.x + wid.y * nwg.x. Thread t sums the chunks
// [t * per, (t + 1) * per), per = ceil(NC / WG); an inclusive scan over threads gives block prefixes; a
// candidate's chunk prefix is its block's exclusive prefix plus the chunks before it in the block (< per adds).

@group(0) @binding(0) var<uniform> p: Params; // struct Params: TOPK_COMBINE_PARAMS in src/ops/topk.ts
@group(0) @binding(1) var<storage, read> partial: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

/** Threads per workgroup: a power of two. */
override WG: u32 = 256;
/** Candidates per row. */
override K: u32 = 64;

var<workgroup> scan: array<f32, WG>;
var<workgroup> nans: atomic<u32>;

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
  let per = (p.NC + WG - 1u) / WG;
  let base = s * p.NC;
  if (lid == 0u) {
    atomicStore(&nans, 0u);
  }
  var sum = 0.0;
  var nan = 0u;
  for (var c = lid * per; c < min(p.NC, lid * per + per); c++) {
    let v = partial[base + c];
    sum += v.x;
    nan += u32(v.y);
  }
  scan[lid] = sum;
  workgroupBarrier();
  atomicAdd(&nans, nan);
  for (var o = 1u; o < WG; o <<= 1u) {
    var v = 0.0;
    if (lid >= o) {
      v = scan[lid - o];
    }
    workgroupBarrier();
    scan[lid] += v;
    workgroupBarrier();
  }

  let rec = s * (4u + 3u * K);
  if (lid == 0u) {
    out[rec + 2u] = bitcast<u32>(scan[WG - 1u]);
    out[rec + 3u] = atomicLoad(&nans);
  }
  for (var j = lid; j < K; j += WG) {
    let id = out[rec + 4u + j];
    if (id < p.V) {
      let ch = id / p.CH;
      let blk = ch / per;
      var pre = 0.0;
      if (blk > 0u) {
        pre = scan[blk - 1u];
      }
      for (var c = blk * per; c < ch; c++) {
        pre += partial[base + c].x;
      }
      let at = rec + 4u + 2u * K + j;
      out[at] = bitcast<u32>(pre + bitcast<f32>(out[at]));
    }
  }
}
