// laneSum(v, lid): the sum of v over the LANES threads of lid's row group (threads lid - lid % LANES .. + LANES - 1),
// returned to every one of them, by a subgroupShuffleXor butterfly. Included (prepended) by kernels that declare
// `override LANES` (a power of two); valid when each subgroup holds whole row groups (subgroup size >= LANES and
// subgroup lanes following local_invocation_index, as on NVIDIA, AMD, Intel and Apple GPUs): the ops choose
// lane_sum.shared.wgsl otherwise. Needs the `subgroups` feature (the `enable subgroups;` comes with the prelude).

fn laneSum(v: vec4<f32>, lid: u32) -> vec4<f32> {
  var s = v;
  for (var o = LANES / 2u; o > 0u; o >>= 1u) {
    s += subgroupShuffleXor(s, o);
  }
  return s;
}
