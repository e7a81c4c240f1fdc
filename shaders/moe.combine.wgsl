// MoE combine: each token's K weighted expert outputs added into the residual stream, in slot order (no atomics,
// so the sums are deterministic):
//   out[t, n] += sum_k y[t K + k, n]     for t < T, n < H  (y rows already scaled by the routing weights)
//
// Bindings: y    f32 [T K, H]   read as vec4 (H % 4 == 0)
//           out  f32 [T, H]
//
// Dispatch: one thread per 4 outputs: i = threadIndex (lib/thread.wgsl) over T H / 4.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: COMBINE_PARAMS in src/ops/moe.ts
@group(0) @binding(1) var<storage, read> y: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  if (i >= p.n) {
    return;
  }
  let t = i / p.H4;
  let n = i % p.H4;
  var s = out[i];
  for (var k = 0u; k < p.K; k++) {
    s += y[(t * p.K + k) * p.H4 + n];
  }
  out[i] = s;
}
