// Rotary embedding fused with the KV-cache write (one dispatch for rope and the cache write):
//   q heads:  rotated in place in qkv (the attention kernel reads q from qkv)
//   k heads:  rotated into kCache[slot] (qkv's own k columns are left unrotated: nothing reads them afterwards)
//   v heads:  copied into vCache[slot]
// for every token t with slot = slotMapping[t] >= 0 (q heads are rotated for every token). Rotation: NeoX/HF
// rotate_half on dims i < R: a = positions[t] invFreq[i mod R/2], c = cos(a) scaling, s = sin(a) scaling,
// x'[i] = x[i] c - x[i + R/2] s (i < R/2), x'[i] = x[i] c + x[i - R/2] s (R/2 <= i < R); dims >= R unchanged.
//
// qkv's values come through qkvAt(i) (element i of qkv [T, (nH + 2 nKv) D]), which the prelude defines: qkv[i]
// itself, or (split-K, see linear's deferSplit) the sum of the tensor-core linear's K splits part[s, t, c] plus
// bias[c]; then the q heads are written whole (their unrotated dims >= R too) and the k and v columns of qkv stay
// unwritten. This saves the linear's reduce dispatch.
//
// Prelude (templated on the cache dtype and the parity of D): KS, storeK, storeV as in cache_kv.wgsl; qkvAt and
// SPLIT (and with split sums, the part and bias bindings 7 and 8). rotation(t, i) comes from lib/rope.wgsl.
//
// Bindings: qkv          f32 [T, (nH + 2 nKv) D]   (q heads written)
//           positions    u32 [T]
//           invFreq      f32 [R / 2]
//           slotMapping  i32 [T]
//           kCache       f32|f16 [numBlocks, blockSize, nKv, D]
//           vCache       f32|f16 [numBlocks, blockSize, nKv, D]
// R is even; D is any (with an odd D, a head's last pair is its last element alone).
//
// Dispatch: one thread per (t, head of nH + 2 nKv, pair j < ceil(D / 2)): index threadIndex (lib/thread.wgsl).
// For a q head the thread rotates the pair (j, j + R/2) (with split sums, threads j >= R/2 write dims
// R + 2 (j - R/2) and the next as they are; otherwise they stay in place); for k and v heads it writes cache
// elements 2j and 2j + 1 (with an even D one u32 word of an f16 cache, so no two threads share a word).

@group(0) @binding(0) var<uniform> p: Params; // struct Params: ROPE_CACHE_PARAMS in src/ops/attention.ts
@group(0) @binding(1) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> invFreq: array<f32>;
@group(0) @binding(4) var<storage, read> slotMapping: array<i32>;
@group(0) @binding(5) var<storage, read_write> kCache: array<KS>;
@group(0) @binding(6) var<storage, read_write> vCache: array<KS>;

override WG: u32 = 256;

/** Element e of the k head starting at `base`, rotated. */
fn rotatedK(t: u32, base: u32, e: u32) -> f32 {
  let x = qkvAt(base + e);
  if (e < p.half) {
    let cs = rotation(t, e);
    return x * cs.x - qkvAt(base + e + p.half) * cs.y;
  }
  if (e < 2u * p.half) {
    let cs = rotation(t, e - p.half);
    return x * cs.x + qkvAt(base + e - p.half) * cs.y;
  }
  return x;
}

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let idx = threadIndex(thread);
  let heads = p.nH + 2u * p.nKv;
  let pairs = (p.D + 1u) / 2u;
  if (idx >= p.T * heads * pairs) {
    return;
  }
  let t = idx / (heads * pairs);
  let h = (idx / pairs) % heads;
  let j = idx % pairs;
  let base = (t * heads + h) * p.D;

  if (h < p.nH) {
    if (j < p.half) {
      let cs = rotation(t, j);
      let x1 = qkvAt(base + j);
      let x2 = qkvAt(base + j + p.half);
      qkv[base + j] = x1 * cs.x - x2 * cs.y;
      qkv[base + j + p.half] = x2 * cs.x + x1 * cs.y;
    } else if (SPLIT) {
      let e = 2u * p.half + 2u * (j - p.half);
      if (e < p.D) {
        qkv[base + e] = qkvAt(base + e);
      }
      if (e + 1u < p.D) {
        qkv[base + e + 1u] = qkvAt(base + e + 1u);
      }
    }
    return;
  }
  let slot = slotMapping[t];
  if (slot < 0) {
    return;
  }
  let e = 2u * j;
  let two = e + 1u < p.D;
  let second = select(e, e + 1u, two); // the pair's second element, or its first again
  let dst = (u32(slot) * p.nKv + (h - p.nH) % p.nKv) * p.D + e; // cache element (slot, kvh, e)
  if (h < p.nH + p.nKv) {
    storeK(dst, vec2<f32>(rotatedK(t, base, e), rotatedK(t, base, second)), two);
  } else {
    storeV(dst, vec2<f32>(qkvAt(base + e), qkvAt(base + second)), two);
  }
}
