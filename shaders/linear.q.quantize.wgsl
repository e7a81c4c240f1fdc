// The activations of the int8 GEMV (linear.q.gemv.i8.wgsl), quantized once per linear as llama.cpp's q8_1 blocks:
//   xin[t, :] = x[t, :]                                       (NORM == 0)
//             = x[t, :] g / sqrt(mean(x[t, :]^2) + eps)       (NORM == 1: the linear's fused RMSNorm)
//   for each block b of 32: d = max |xin| / 127, a = roundf(xin / d) (half away from zero, as C's roundf; 0 when
//   d == 0), xq[t, b] = a packed 4 to a word (element 4 i + e in byte e of word i), xs[t, b] = (d, d sum(a)).
// d sum(a) serves the weights with a block minimum (q4_1, q5_1, q4_k, q5_k: sum(x (d_w q + m)) = ... + m d sum(a)).
//
// Bindings: x   f32 [T, K] as vec4s (K % 32 == 0)
//           g   f32 [K]     (a dummy when NORM == 0)
//           xq  u32 [T, K / 4]: 8 words per block (read by the GEMV as two vec4s)
//           xs  vec2<f32> [T, K / 32]
//
// Dispatch: (ceil(K / 32 / (WG / 8)), T): 8 threads per block, a vec4 each (coalesced loads; the block's max and
// sum over its 8 threads in workgroup memory); with NORM every workgroup first sums its token's squares (K floats,
// from cache; T <= 8 tokens here).

@group(0) @binding(0) var<uniform> p: Params; // QUANTIZE_PARAMS in src/layers/quant/kernels-i8.ts
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> xq: array<u32>;
@group(0) @binding(4) var<storage, read_write> xs: array<vec2<f32>>;

/** Threads per workgroup: a multiple of 8 and a power of two. */
override WG: u32 = 256;
override NORM: u32 = 0;

var<workgroup> red: array<f32, WG>;
var<workgroup> amx: array<f32, WG>;
var<workgroup> isum: array<i32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.y;
  let nb = p.K / 32u;
  let row = t * (p.K / 4u);
  var scale = 1.0;
  if (NORM == 1u) {
    var ss = 0.0;
    for (var i = lid; i < p.K / 4u; i += WG) {
      let v = x[row + i];
      ss += dot(v, v);
    }
    red[lid] = ss;
    workgroupBarrier();
    for (var o = WG / 2u; o > 0u; o >>= 1u) {
      if (lid < o) {
        red[lid] += red[lid + o];
      }
      workgroupBarrier();
    }
    scale = inverseSqrt(red[0] / f32(p.K) + p.eps);
  }
  let b = wid.x * (WG / 8u) + lid / 8u;
  let e = lid % 8u;
  let valid = b < nb;
  var v = vec4<f32>(0.0);
  if (valid) {
    v = x[row + 8u * b + e];
    if (NORM == 1u) {
      v = v * scale * g[8u * b + e];
    }
  }
  let m = abs(v);
  amx[lid] = max(max(m.x, m.y), max(m.z, m.w));
  workgroupBarrier();
  for (var o = 4u; o > 0u; o >>= 1u) {
    if (e < o) {
      amx[lid] = max(amx[lid], amx[lid + o]);
    }
    workgroupBarrier();
  }
  let d = amx[lid - e] / 127.0;
  let id = select(0.0, 1.0 / d, d != 0.0);
  let a = roundI8(v * id);
  isum[lid] = a.x + a.y + a.z + a.w;
  workgroupBarrier();
  for (var o = 4u; o > 0u; o >>= 1u) {
    if (e < o) {
      isum[lid] += isum[lid + o];
    }
    workgroupBarrier();
  }
  if (valid) {
    xq[8u * (t * nb + b) + e] = pack4xI8Clamp(a);
    if (e == 0u) {
      xs[t * nb + b] = vec2<f32>(d, d * f32(isum[lid]));
    }
  }
}
