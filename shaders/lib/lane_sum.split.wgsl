// laneSum(v, lid): the sum of v over the LANES threads of lid's row group, returned to every one of them, for row
// groups that span several subgroups of exactly SG threads (SG, a const of the prelude, divides LANES; subgroup
// lanes follow local_invocation_index): each subgroup's sum by subgroupAdd, then the row group's LANES / SG
// subgroup sums through workgroup memory (2 barriers, against log2(LANES) for lane_sum.shared.wgsl). Included
// (prepended) by kernels that declare `override WG` and `override LANES`; every thread of the workgroup must call
// it. Needs the `subgroups` feature (the `enable subgroups;` comes with the prelude).

var<workgroup> laneRed: array<vec4<f32>, WG / SG>;

fn laneSum(v: vec4<f32>, lid: u32) -> vec4<f32> {
  let s = subgroupAdd(v);
  if (lid % SG == 0u) {
    laneRed[lid / SG] = s;
  }
  workgroupBarrier();
  let first = (lid / LANES) * (LANES / SG);
  var t = laneRed[first];
  for (var i = 1u; i < LANES / SG; i++) {
    t += laneRed[first + i];
  }
  workgroupBarrier(); // the next call overwrites laneRed
  return t;
}
