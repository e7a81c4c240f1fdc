// Sandwich norm (Gemma 2/3 post_attention_layernorm / post_feedforward_layernorm, OLMo 2's post norms): the block's
// output h normalised, then added to the residual stream x, in place:
//   x[r, :] += h[r, :] / sqrt(mean(h[r, :]^2) + eps) * weight   for r < rows
// and with NEXT, the next block's pre-norm of the new x in the same pass (Gemma's next input_layernorm):
//   out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + nextEps) * nextWeight
//
// Prelude: NEXT (a const bool) and writeNext(e, i, v), which sets out[e] = v nextWeight[i] (with NEXT: bindings 4
// nextWeight and 5 out; without: nothing, and no bindings).
//
// Bindings: x           f32 [rows, H], read and written
//           h           f32 [rows, H]
//           weight      f32 [H]
//           nextWeight  f32 [H]       (NEXT)
//           out         f32 [rows, H] (NEXT)
//
// Dispatch: one workgroup of WG threads per row r = wid.x + wid.y * nwg.x; workgroupSum (lib/workgroup_sum.wgsl)
// sums the squares. Each thread touches only elements i = lid, lid + WG, ... of its row, so the in-place update
// needs no other barrier.

@group(0) @binding(0) var<uniform> p: Params; // struct Params: POST_ADD_PARAMS in src/ops/norm.ts
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> h: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;

/** Threads per workgroup; a power of two. */
override WG: u32 = 128;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) {
    return;
  }
  let base = r * p.H;
  var ss = 0.0;
  for (var i = lid; i < p.H; i += WG) {
    let v = h[base + i];
    ss += v * v;
  }
  let inv = inverseSqrt(workgroupSum(ss, lid) / f32(p.H) + p.eps);
  var sx = 0.0;
  for (var i = lid; i < p.H; i += WG) {
    let v = x[base + i] + h[base + i] * inv * weight[i];
    x[base + i] = v;
    sx += v * v;
  }
  if (NEXT) {
    let invX = inverseSqrt(workgroupSum(sx, lid) / f32(p.H) + p.nextEps);
    for (var i = lid; i < p.H; i += WG) {
      writeNext(base + i, i, x[base + i] * invX);
    }
  }
}
