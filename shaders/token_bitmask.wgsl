// Structured outputs: the tokens a row's grammar does not allow set to -inf before the argmax / top-K (xgrammar's
// bitmask, as vLLM's apply_token_bitmask_inplace):
//   logits[rows[m], t] = -inf   where bit (t % 32) of mask[m, t / 32] is 0,   for m < M, t < V
//
// Bindings: logits  f32 [S, V]    the step's logits rows (read_write)
//           rows    u32 [M]       the logits row of masked row m
//           mask    u32 [M, W]    W = ceil(V / 32) words per row; bit set = allowed
//
// Dispatch: one thread per mask word: i = threadIndex (lib/thread.wgsl), m = i / W, word w = i % W; a word of all
// ones (most of them, inside a JSON string) writes nothing.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: TOKEN_BITMASK_PARAMS in src/ops/token-bitmask.ts
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<u32>;
@group(0) @binding(3) var<storage, read> mask: array<u32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  if (i >= p.M * p.W) {
    return;
  }
  let bits = mask[i];
  if (bits == 0xffffffffu) {
    return;
  }
  let m = i / p.W;
  let t0 = (i % p.W) * 32u;
  let base = rows[m] * p.V;
  let n = min(32u, p.V - t0);
  // -inf as the CPU sampler writes it; WGSL refuses an infinite constant, so the bits go through a runtime value.
  let negInf = bitcast<f32>(0xff800000u | (p.M & 0u));
  for (var b = 0u; b < n; b++) {
    if (((bits >> b) & 1u) == 0u) {
      logits[base + t0 + b] = negInf;
    }
  }
}
