// MoE router: each token's top-K experts and their weights, from the router logits.
//   p[t, e]       = softmax_e(logits[t, :])
//   ids[t, k]     = the expert with the k-th largest logit, k = 0 .. K-1 (descending; ties: the lower index first)
//   weights[t, k] = p[t, ids[t, k]]                                        norm == 0 (Qwen2-MoE's default)
//                 = p[t, ids[t, k]] / sum_j p[t, ids[t, j]]                norm == 1 (Mixtral, Qwen3-MoE)
// Logits must be finite. Selection walks (logit desc, index asc) order: pass k takes the first expert after the
// one pass k - 1 took, so no "taken" mask is needed and equal logits come out by index.
//
// Bindings: logits   f32 [T, E]
//           ids      u32 [T, K]
//           weights  f32 [T, K]
//
// Dispatch: one thread per token: t = threadIndex (lib/thread.wgsl); O(K E) per thread (E <= a few hundred).

@group(0) @binding(0) var<uniform> p: Params; // struct Params: ROUTE_PARAMS in src/ops/moe.ts
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;

override WG: u32 = 64;

/** Whether expert (la, a) comes before (lb, b) in top-k order. */
fn before(la: f32, a: u32, lb: f32, b: u32) -> bool {
  return la > lb || (la == lb && a < b);
}

@compute @workgroup_size(WG)
fn main(thread: Thread) {
  let t = threadIndex(thread);
  if (t >= p.T) {
    return;
  }
  let row = t * p.E;
  var m = logits[row];
  for (var e = 1u; e < p.E; e++) {
    m = max(m, logits[row + e]);
  }
  var total = 0.0;
  for (var e = 0u; e < p.E; e++) {
    total += exp(logits[row + e] - m);
  }
  // Pass k: the first expert after (prevL, prev) in top-k order; pass 0 starts before every expert.
  var prev = p.E;
  var prevL = 0.0;
  var picked = 0.0;
  for (var k = 0u; k < p.K; k++) {
    var best = p.E;
    var bestL = 0.0;
    for (var e = 0u; e < p.E; e++) {
      let l = logits[row + e];
      let after = prev == p.E || before(prevL, prev, l, e);
      if (after && (best == p.E || before(l, e, bestL, best))) {
        best = e;
        bestL = l;
      }
    }
    let q = exp(bestL - m);
    ids[t * p.K + k] = best;
    weights[t * p.K + k] = q;
    picked += q;
    prev = best;
    prevL = bestL;
  }
  let scale = select(1.0 / total, 1.0 / picked, p.norm == 1u);
  for (var k = 0u; k < p.K; k++) {
    weights[t * p.K + k] *= scale;
  }
}
