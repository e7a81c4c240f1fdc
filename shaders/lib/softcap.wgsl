// Logit soft-capping (Gemma 2), shared by the attention kernels (scores, after the softmax scale) and
// scale_softcap.wgsl (final logits): softcap(s, cap) = cap tanh(s / cap), which bounds s to (-cap, cap).
// tanh(y) is computed as sign(y) (1 - e) / (1 + e) with e = exp(-2 |y|) <= 1, so it never overflows (the builtin
// may, as (e^y - e^-y) / (e^y + e^-y) on some drivers); its absolute error stays near one f32 ulp of 1.

fn softcap(s: f32, cap: f32) -> f32 {
  let y = s / cap;
  let e = exp(-2.0 * abs(y));
  return cap * sign(y) * ((1.0 - e) / (1.0 + e));
}
