// Gated activation (SwiGLU / GeGLU MLPs):  out[t, i] = act(x[t, i]) * x[t, I + i]  for t < T, i < I
// (x is the fused gate | up projection; act from lib/activation.wgsl: ACT).
//
// Bindings: x    f32 [T, 2 I]
//           out  f32 [T, I]
//
// Dispatch: one thread per output element: e = threadIndex (lib/thread.wgsl) over T I.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: GATED_PARAMS in src/ops/elementwise.ts
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let e = threadIndex(thread);
  if (e >= p.n) {
    return;
  }
  let t = e / p.I;
  let i = e % p.I;
  let g = x[t * 2u * p.I + i];
  let u = x[t * 2u * p.I + p.I + i];
  out[e] = activation(g) * u;
}
