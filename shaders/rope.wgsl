// Rotary position embedding, NeoX/HF style (rotate_half), in place on the q and k heads of a fused qkv:
//   for every token t, head h < nH + nKv (q heads then k heads) and i < R / 2 (R = rotaryDim):
//     a = positions[t] * invFreq[i],  c = cos(a) * scaling,  s = sin(a) * scaling
//     x1 = x[i], x2 = x[i + R/2]  ->  x[i] = x1 c - x2 s,  x[i + R/2] = x2 c + x1 s
//   dims R .. D - 1 are left alone (partial rotary).
// The angle is the f32 product HF computes; it is reduced to [-pi, pi] with a three-part 2 pi (Cody-Waite)
// because GPU sin/cos are only accurate on that range.
//
// Bindings: qkv        f32 [T, (nH + 2 nKv) D]   (in place)
//           positions  u32 [T]
//           invFreq    f32 [R / 2]
//
// Dispatch: one thread per (t, h, i): index = threadIndex (lib/thread.wgsl) over T (nH + nKv) R/2.

struct Params {
  T: u32,
  heads: u32, // nH + nKv: the rotated heads
  D: u32,
  stride: u32, // (nH + 2 nKv) D
  half: u32, // R / 2
  scaling: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> invFreq: array<f32>;

override WG: u32 = 256;

// 2 pi = C1 + C2 + C3, where C1 and C2 have few enough significant bits that k * C1 and k * C2 are exact for
// k < 2^15 (angles up to ~200k radians).
const INV_TWO_PI = 0.15915494309189535;
const C1 = 6.28125;
const C2 = 0.0019378662109375;
const C3 = -2.5590313512680040e-6;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let idx = threadIndex(thread);
  let perToken = p.heads * p.half;
  if (idx >= p.T * perToken) {
    return;
  }
  let t = idx / perToken;
  let r = idx % perToken;
  let h = r / p.half;
  let i = r % p.half;

  let a = f32(positions[t]) * invFreq[i];
  let k = round(a * INV_TWO_PI);
  let reduced = ((a - k * C1) - k * C2) - k * C3;
  let c = cos(reduced) * p.scaling;
  let s = sin(reduced) * p.scaling;

  let base = t * p.stride + h * p.D + i;
  let x1 = qkv[base];
  let x2 = qkv[base + p.half];
  qkv[base] = x1 * c - x2 * s;
  qkv[base + p.half] = x2 * c + x1 * s;
}
