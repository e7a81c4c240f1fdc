// Final logit scaling and soft-capping, in place over S rows of V logits:
//   x[i] = softcap(x[i] / divisor, cap)  (cap > 0; lib/softcap.wgsl: cap tanh(s / cap), Gemma 2
//                                          final_logit_softcapping),  or  x[i] / divisor  (cap == 0)
// for i < n = S V. divisor is Granite's logits_scaling (1 for others: exact).
//
// Bindings: x  f32 [n], read and written
//
// Dispatch: one thread per element: i = threadIndex (lib/thread.wgsl).

@group(0) @binding(0) var<uniform> p: Params; // struct Params: SCALE_SOFTCAP_PARAMS in src/ops/elementwise.ts
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  if (i >= p.n) {
    return;
  }
  let s = x[i] / p.divisor;
  x[i] = select(s, softcap(s, p.cap), p.cap > 0.0);
}
