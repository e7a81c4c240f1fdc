// Qwen2-MoE's shared expert, gated by a sigmoid of the token, added into the residual stream:
//   out[t, n] += sigmoid(x[t, :] . g) y[t, n]     for t < T, n < H
// (y = the shared expert's gated MLP of x, computed by the model with linear; g the shared_expert_gate row).
//
// Prelude (templated on the gate's dtype): WS and loadW(i) -> f32 (src/ops/common.ts weightPrelude, width 1).
//
// Bindings: x    f32 [T, H]
//           g    f32|f16 [H]   (a weight [1, H])
//           y    f32 [T, H]
//           out  f32 [T, H]
//
// Dispatch: one workgroup of WG threads per token t = wid.x + wid.y nwg.x; workgroupSum (lib/workgroup_sum.wgsl)
// adds the dot product.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: SHARED_GATE_PARAMS in src/ops/moe.ts
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WS>;
@group(0) @binding(3) var<storage, read> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

/** Threads per workgroup; a power of two. */
override WG: u32 = 128;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= p.T) {
    return;
  }
  let base = t * p.H;
  var d = 0.0;
  for (var i = lid; i < p.H; i += WG) {
    d += x[base + i] * loadW(i);
  }
  let gate = 1.0 / (1.0 + exp(-workgroupSum(d, lid)));
  for (var i = lid; i < p.H; i += WG) {
    out[base + i] += gate * y[base + i];
  }
}
