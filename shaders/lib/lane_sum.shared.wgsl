// laneSum(v, lid): the sum of v over the LANES threads of lid's row group (threads lid - lid % LANES .. + LANES - 1),
// returned to every one of them, by a tree in workgroup memory (log2(LANES) barriers). Included (prepended) by
// kernels that declare `override WG` and `override LANES` (a power of two dividing WG). Every thread of the
// workgroup must call it (it has barriers); lane_sum.subgroup.wgsl is the faster variant.

var<workgroup> laneRed: array<vec4<f32>, WG>;

fn laneSum(v: vec4<f32>, lid: u32) -> vec4<f32> {
  let lane = lid % LANES;
  laneRed[lid] = v;
  workgroupBarrier();
  for (var o = LANES / 2u; o > 0u; o >>= 1u) {
    if (lane < o) {
      laneRed[lid] += laneRed[lid + o];
    }
    workgroupBarrier();
  }
  let s = laneRed[lid - lane];
  workgroupBarrier(); // the next call overwrites laneRed
  return s;
}
