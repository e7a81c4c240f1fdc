// Writes this step's keys and values into the paged KV cache:
//   kCache[slot, kvh, d] = qkv[t, (nH + kvh) D + d],  vCache[slot, kvh, d] = qkv[t, (nH + nKv + kvh) D + d]
// for slot = slotMapping[t] >= 0 (slot = block * blockSize + offset; negative slots are padding, skipped).
//
// Prelude (templated on the cache dtype): KS the cache storage word, EPW elements per word (f32: 1; f16: 2, packed
// with pack2x16float, so no shader-f16 is needed), pack(vec2<f32>) -> KS.
//
// Bindings: qkv          f32     [T, (nH + 2 nKv) D]
//           slotMapping  i32     [T]
//           kCache       f32|f16 [numBlocks, blockSize, nKv, D]
//           vCache       f32|f16 [numBlocks, blockSize, nKv, D]
// D is even (two halves per word never straddle heads).
//
// Dispatch: one thread per cache word of (t, kvh, d .. d + EPW - 1): index i = threadIndex (lib/thread.wgsl)
// over T nKv D / EPW, in a grid wrapped to stay within the per-dimension limit.

struct Params {
  T: u32,
  nH: u32,
  nKv: u32,
  D: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> slotMapping: array<i32>;
@group(0) @binding(3) var<storage, read_write> kCache: array<KS>;
@group(0) @binding(4) var<storage, read_write> vCache: array<KS>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  let kvw = p.nKv * p.D / EPW; // words of one token's k (or v)
  if (i >= p.T * kvw) {
    return;
  }
  let t = i / kvw;
  let e = (i % kvw) * EPW; // element kvh * D + d
  let slot = slotMapping[t];
  if (slot < 0) {
    return;
  }
  let kvd = p.nKv * p.D;
  let src = t * (p.nH + 2u * p.nKv) * p.D + p.nH * p.D + e;
  let dst = u32(slot) * kvw + i % kvw;
  kCache[dst] = pack(vec2<f32>(qkv[src], qkv[src + EPW - 1u]));
  vCache[dst] = pack(vec2<f32>(qkv[src + kvd], qkv[src + kvd + EPW - 1u]));
}
