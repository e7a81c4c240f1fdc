// Fills a weight part (dummy weights for fast loading of large shapes):
//   random:   w[e] = lo + (hi - lo) u(seed, first + e),  u uniform in [0, 1) from a PCG hash (reproducible,
//             independent of how the weight is split: `first` is the part's first element in the whole weight)
//   constant: w[e] = lo
// written as 32-bit words: one f32, or two f16 (pack2x16float) per word.
//
// Bindings: w  u32 [words]
//
// Dispatch: one thread per word: i = threadIndex (lib/thread.wgsl).

@group(0) @binding(0) var<uniform> p: Params; // struct Params: FILL_PARAMS in src/ops/fill.ts
@group(0) @binding(1) var<storage, read_write> w: array<u32>;

override WG: u32 = 256;

// PCG hash (Jarzynski and Olano, "Hash Functions for GPU Rendering", 2020).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn value(e: u32) -> f32 {
  if (p.random == 0u) {
    return p.lo;
  }
  let u = f32(pcg(e ^ pcg(p.seed)) >> 8u) * (1.0 / 16777216.0);
  return p.lo + (p.hi - p.lo) * u;
}

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  if (i >= p.words) {
    return;
  }
  if (p.halfs != 0u) {
    let e = p.first + 2u * i;
    w[i] = pack2x16float(vec2<f32>(value(e), value(e + 1u)));
  } else {
    w[i] = bitcast<u32>(value(p.first + i));
  }
}
