// linear split-K: adds the partial sums of linear.mma.wgsl's K splits and writes the outputs through
// lib/linear.wgsl's storeColumn (bias, GATED act(gate) * up, RESIDUAL add):
//   out[t, n] (+)= f(sum_s part[s, t, n], sum_s part[s, t, upOffset + n])   for t < T, n < N
// with the same params as the linear.mma dispatch it follows.
//
// Bindings: part  f32 [splits(), T, partialRows()]
//           bias  f32 [>= colOffset + rows]  (a dummy when hasBias == 0)
//           out   f32 [T, outStride]
//
// Dispatch: one thread per output, i = threadIndex (lib/thread.wgsl) = t N + n.

@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let i = threadIndex(thread);
  if (i >= p.T * p.N) {
    return;
  }
  let t = i / p.N;
  let n = i % p.N;
  let rows = partialRows();
  var y = 0.0;
  var up = 0.0;
  for (var s = 0u; s < splits(); s++) {
    let at = (s * p.T + t) * rows + n;
    y += part[at];
    if (GATED == 1u) {
      up += part[at + p.upOffset];
    }
  }
  storeColumn(t, n, y, up);
}
