// Greedy pick per row, torch.argmax semantics (the first index of the maximum):
//   out[s] = min { i : logits[s, i] = max_j logits[s, j] }   for s < S
//
// Bindings: logits  f32 [S, V]
//           out     u32 [S]
//
// Dispatch: one workgroup of WG threads per row s = wid.x + wid.y * nwg.x; thread i scans i, i + WG, ... keeping
// its first maximum, then a shared tree keeps the larger value, or on ties the smaller index.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: ARGMAX_PARAMS in src/ops/argmax.ts
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

/** Threads per workgroup; a power of two. */
override WG: u32 = 256;

var<workgroup> bestValue: array<f32, WG>;
var<workgroup> bestIndex: array<u32, WG>;

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
  let base = s * p.V;
  var bv = -3.4e38;
  var bi = 0xffffffffu;
  for (var i = lid; i < p.V; i += WG) {
    let v = logits[base + i];
    if (v > bv || bi == 0xffffffffu) {
      bv = v;
      bi = i;
    }
  }
  bestValue[lid] = bv;
  bestIndex[lid] = bi;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) {
      let v = bestValue[lid + k];
      let i = bestIndex[lid + k];
      let mine = bestValue[lid];
      let mi = bestIndex[lid];
      // 0xffffffff marks a thread that saw no element (V < WG): it loses to any real one.
      if (i != 0xffffffffu && (mi == 0xffffffffu || v > mine || (v == mine && i < mi))) {
        bestValue[lid] = v;
        bestIndex[lid] = i;
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[s] = bestIndex[0];
  }
}
