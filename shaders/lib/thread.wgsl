// One thread per item of a 1-D dispatch that src/ops/common.ts grid() wraps into x-y workgroups of WG threads:
// the entry point takes `thread: Thread`, and threadIndex(thread) = (wid.x + wid.y nwg.x) WG + lid is its item.
// The including kernel declares `override WG`.

struct Thread {
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
}

fn threadIndex(t: Thread) -> u32 {
  return (t.wid.x + t.wid.y * t.nwg.x) * WG + t.lid;
}
