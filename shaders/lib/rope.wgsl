// Rotary angles, shared by rope_cache_kv.wgsl and the GEMV's fused rope (lib/gemv.rope.wgsl), so that both rotate
// by the same cos and sin. The including kernel declares `positions: array<u32>`, `invFreq: array<f32>` and a
// params struct with `scaling: f32` (the cos / sin multiplier, HF's attention_scaling).

// 2 pi = C1 + C2 + C3, where C1 and C2 have few enough significant bits that k * C1 and k * C2 are exact for
// k < 2^15 (angles up to ~200k radians): the angle is reduced to [-pi, pi] before cos and sin.
const INV_TWO_PI = 0.15915494309189535;
const C1 = 6.28125;
const C2 = 0.0019378662109375;
const C3 = -2.5590313512680040e-6;

/** cos and sin of positions[t] invFreq[i], times the attention scaling. */
fn rotation(t: u32, i: u32) -> vec2<f32> {
  let a = f32(positions[t]) * invFreq[i];
  let k = round(a * INV_TWO_PI);
  let r = ((a - k * C1) - k * C2) - k * C3;
  return vec2<f32>(cos(r), sin(r)) * p.scaling;
}
