// Sum of one f32 per thread over a workgroup of WG threads, by subgroups (the prelude enables subgroups and sets
// SG, the subgroup size, which divides WG; the subgroups are runs of consecutive lids): each subgroup adds its
// lanes with subgroupAdd, its first lane stores the sum, and every thread adds the WG / SG sums. Two barriers,
// where lib/workgroup_sum.wgsl's tree takes log2(WG) + 2. Every thread gets the total. Call it in uniform control
// flow.

var<workgroup> red: array<f32, WG / SG>;

fn workgroupSum(v: f32, lid: u32) -> f32 {
  let s = subgroupAdd(v);
  if (lid % SG == 0u) {
    red[lid / SG] = s;
  }
  workgroupBarrier();
  var total = 0.0;
  for (var i = 0u; i < WG / SG; i++) {
    total += red[i];
  }
  // Everyone has read red before it is reused.
  workgroupBarrier();
  return total;
}
