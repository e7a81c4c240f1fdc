// Embedding lookup from llama.cpp block weights (any format of src/layers/quant/formats/), one table part per
// dispatch:
//   out[t, 32 c + e] = W(r, c)[e] * scale   (or += with accumulate)   for r = ids[t] in the part's rows
// (rowStart .. rowStart + rows - 1; other ids are left to the other parts' dispatches), chunks c < K / 32, W(r, c)
// dequantized by the format's qChunk.
//
// Prelude: qChunk(row, c) (the format's). lib/q_block.wgsl and lib/thread.wgsl come along.
//
// Bindings: ids  u32 [T]
//           w    u32 words of the part: rows of p.stride bytes
//           out  f32 [T, K]
//
// Dispatch: one thread per (token, chunk): i = t (K / 32) + b; grid of ceil(T K / 32 / WG) workgroups (2-D).

@group(0) @binding(0) var<uniform> p: Params; // struct Params: EMBED_PARAMS in src/layers/quant/kernels.ts
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let nb = p.K / 32u;
  let i = threadIndex(thread);
  if (i >= p.T * nb) {
    return;
  }
  let t = i / nb;
  let b = i % nb;
  let id = ids[t];
  if (id < p.rowStart || id >= p.rowStart + p.rows) {
    return;
  }
  let qv = qChunk((id - p.rowStart) * p.stride, b);
  let at = t * (p.K / 4u) + 8u * b;
  for (var e = 0u; e < 8u; e++) {
    var v = qv[e] * p.scale;
    if (p.accumulate != 0u) {
      v += out[at + e];
    }
    out[at + e] = v;
  }
}
