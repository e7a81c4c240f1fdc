// The int8 quantization's rounding (linear.q.quantize.wgsl, lib/gemv.stage_i8.wgsl): roundf(s) as C's, halves away
// from zero, as integers. s - trunc(s) is exact (floor(|s| + 0.5) would round 0.49999997 up).
fn roundI8(s: vec4<f32>) -> vec4<i32> {
  let r = trunc(s);
  return vec4<i32>(r + select(vec4<f32>(0.0), sign(s), abs(s - r) >= vec4<f32>(0.5)));
}
