// Row gather (the last token of each sequence before the LM head):  out[s, :] = x[rows[s], :]  for s < S.
//
// Bindings: x     f32 [T, H]
//           rows  u32 [S]
//           out   f32 [S, H]
//
// Dispatch: one thread per output element: e = threadIndex (lib/thread.wgsl) over S H.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: GATHER_PARAMS in src/ops/embedding.ts
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let e = threadIndex(thread);
  if (e >= p.S * p.H) {
    return;
  }
  let s = e / p.H;
  out[e] = x[rows[s] * p.H + e % p.H];
}
