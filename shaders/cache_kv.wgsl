// Writes this step's keys and values into the paged KV cache:
//   kCache[slot, kvh, d] = qkv[t, (nH + kvh) D + d],  vCache[slot, kvh, d] = qkv[t, (nH + nKv + kvh) D + d]
// for slot = slotMapping[t] >= 0 (slot = block * blockSize + offset; negative slots are padding, skipped).
//
// Prelude (templated on the cache dtype and the parity of D): KS the cache storage word, storeK / storeV(e, v, two)
// writing cache element e and, when two, e + 1 (f16 pairs packed with pack2x16float, so no shader-f16 is needed;
// an odd D sets halves of words atomically: see cacheWritePrelude in src/ops/attention.ts).
//
// Bindings: qkv          f32     [T, (nH + 2 nKv) D]
//           slotMapping  i32     [T]
//           kCache       f32|f16 [numBlocks, blockSize, nKv, D]
//           vCache       f32|f16 [numBlocks, blockSize, nKv, D]
//
// Dispatch: one thread per pair of elements (d, d + 1), d = 2 j, of a (t, kvh) head: index threadIndex
// (lib/thread.wgsl) over T nKv ceil(D / 2), in a grid wrapped to stay within the per-dimension limit; with an odd
// D the last pair of a head is its last element alone.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: CACHE_PARAMS in src/ops/attention.ts
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> slotMapping: array<i32>;
@group(0) @binding(3) var<storage, read_write> kCache: array<KS>;
@group(0) @binding(4) var<storage, read_write> vCache: array<KS>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  let pairs = (p.D + 1u) / 2u;
  if (i >= p.T * p.nKv * pairs) {
    return;
  }
  let t = i / (p.nKv * pairs);
  let slot = slotMapping[t];
  if (slot < 0) {
    return;
  }
  let kvh = (i / pairs) % p.nKv;
  let d = 2u * (i % pairs);
  let two = d + 1u < p.D;
  let second = select(0u, 1u, two); // the pair's second element, or its first again
  let kvd = p.nKv * p.D;
  let src = t * (p.nH + 2u * p.nKv) * p.D + (p.nH + kvh) * p.D + d;
  let dst = (u32(slot) * p.nKv + kvh) * p.D + d;
  storeK(dst, vec2<f32>(qkv[src], qkv[src + second]), two);
  storeV(dst, vec2<f32>(qkv[src + kvd], qkv[src + kvd + second]), two);
}
