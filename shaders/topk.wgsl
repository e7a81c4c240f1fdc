// Top-K candidates, step 1 of 4 (src/ops/topk.ts): the K largest logits of each chunk of a row.
//   cand[s, c, 0 .. n) = (sortKey(logits[s, i]), i) for the n = min(K, chunk length) largest (logit, -i) of chunk c
//   (logits c * CH .. c * CH + CH - 1 of row s, CH = WG * EPT), in no particular order; cand[s, c, n .. K) =
//   (0, 0xffffffff), below every real item. The row's top K is then within these NC lists (step 2).
//
// Bindings: logits f32 [S, V]
//           cand   vec2<u32> [S, NC, K] (key, id)
//
// Dispatch: one workgroup of WG threads per (row, chunk), index g = wid.x + wid.y * nwg.x = s * NC + c. Thread t
// holds logits c * CH + t + e * WG for e < EPT (coalesced loads) as keys in registers; the radix select of
// lib/topk.wgsl takes the K largest composites (key, ~id) in at most 8 rounds over those registers.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: TOPK_PARAMS in src/ops/topk.ts
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> cand: array<vec2<u32>>;

/** Threads per workgroup: a power of two, at most 256. */
override WG: u32 = 256;
/** Logits per thread, at most MAX_EPT. */
override EPT: u32 = 16;
/** Candidates per chunk (and per row). */
override K: u32 = 64;
const MAX_EPT = 16u;

var<workgroup> taken: atomic<u32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.S * p.NC) {
    return;
  }
  let s = g / p.NC;
  let start = (g % p.NC) * WG * EPT;
  let len = min(WG * EPT, p.V - start);
  let row = s * p.V + start;
  var keys: array<u32, MAX_EPT>;
  for (var e = 0u; e < EPT; e++) {
    let i = lid + e * WG;
    if (i < len) {
      keys[e] = sortKey(logits[row + i]);
    }
  }

  let need = min(K, len);
  if (lid == 0u) {
    atomicStore(&taken, 0u);
  }
  selBegin(lid, need, len);
  for (var r = 0u; r < 8u; r++) {
    let st = workgroupUniformLoad(&sel);
    if (st.done != 0u) {
      break;
    }
    selClear(lid);
    workgroupBarrier();
    for (var e = 0u; e < EPT; e++) {
      let i = lid + e * WG;
      if (i < len) {
        selOffer(keys[e], ~(start + i), st);
      }
    }
    workgroupBarrier();
    selPick(lid, st);
  }
  let st = workgroupUniformLoad(&sel);

  let out = g * K;
  for (var e = 0u; e < EPT; e++) {
    let i = lid + e * WG;
    if (i < len && selTaken(keys[e], ~(start + i), st)) {
      cand[out + atomicAdd(&taken, 1u)] = vec2<u32>(keys[e], start + i);
    }
  }
  for (var j = need + lid; j < K; j += WG) {
    cand[out + j] = vec2<u32>(0u, 0xffffffffu);
  }
}
