// Sum of one f32 per thread over a workgroup of WG threads (WG a power of two, declared by the including kernel
// as `override WG`), by a shared-memory tree. Every thread gets the total. Call it in uniform control flow.

var<workgroup> red: array<f32, WG>;

fn workgroupSum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] += red[lid + s];
    }
    workgroupBarrier();
  }
  let total = red[0];
  // Everyone has read red[0] before it is reused.
  workgroupBarrier();
  return total;
}
