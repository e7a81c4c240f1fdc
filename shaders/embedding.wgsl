// Embedding lookup for the ids that fall in one part of the table (rows rowStart .. rowStart + rows - 1):
//   out[t, :] (=|+=) table[ids[t] - rowStart, :] scale   for t < T with rowStart <= ids[t] < rowStart + rows
// `accumulate` adds into out (learned position embeddings on top of token embeddings); `scale` is the model's
// embedding multiplier (Gemma: sqrt(H); Granite: embedding_multiplier; 1 for most, which is exact).
//
// Prelude (templated on the table dtype): WS the storage word and loadW(i) -> f32, the i-th element (f16 tables are
// u32 words of two halves; see weightPrelude in src/ops/common.ts).
//
// Bindings: ids    u32     [T]
//           w      f32|f16 [rows, stride]  (one part of the table)
//           out    f32 [T, H]
//
// Dispatch: one thread per output element: e = threadIndex (lib/thread.wgsl) over T H.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: EMBED_PARAMS in src/ops/embedding.ts
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<WS>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let e = threadIndex(thread);
  if (e >= p.T * p.H) {
    return;
  }
  let t = e / p.H;
  let c = e % p.H;
  let id = ids[t];
  if (id < p.rowStart || id - p.rowStart >= p.rows) {
    return;
  }
  let v = loadW((id - p.rowStart) * p.stride + c) * p.scale;
  if (p.accumulate != 0u) {
    out[e] += v;
  } else {
    out[e] = v;
  }
}
