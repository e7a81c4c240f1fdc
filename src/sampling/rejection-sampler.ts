/**
 * The rejection sampler of speculative decoding (vLLM V1's `spec_decode/rejection_sampler.py`): given k draft
 * tokens and the target model's verdict at the k + 1 positions a verification step computed, it returns the tokens
 * the request gains this step (1 .. k + 1 of them), distributed exactly as the target model alone would give.
 *   1. greedy: accept drafts while each equals the target's argmax at its position; then append the target's argmax
 *      at the first mismatch, or the bonus token (the argmax after the last draft) when all were accepted.
 *   2. random: draft x at position j, drawn from the proposer's distribution q_j, is accepted with probability
 *      min(1, p_j(x) / q_j(x)); on rejection the token is drawn from the residual norm(max(p_j - q_j, 0)); all
 *      accepted: a bonus token is drawn from p_k (Leviathan et al. 2023, Chen et al. 2023; vLLM's
 *      rejection_sample). An n-gram or greedy draft is a point mass q = 1{x}: accepted with probability p_j(x),
 *      the residual being p_j with x removed. One uniform per accept test and one per draw, all from the request's
 *      own generator, so seeded requests reproduce.
 * p_j is the target's distribution after temperature and the top-k / top-p / min-p filters (targetProbs below).
 *
 * @example
 *   rejectGreedy([5, 7, 9], [5, 7, 2, 4]); // [5, 7, 2]: the third draft was rejected, 2 is the target's token
 */
import type { Generator } from './generator.js';

/** Greedy verification: `targets` are the argmaxes at the k + 1 positions (length drafts.length + 1). */
export function rejectGreedy(drafts: readonly number[], targets: readonly number[]): number[] {
  if (targets.length !== drafts.length + 1) throw new Error(`rejectGreedy: ${drafts.length} drafts need ${drafts.length + 1} targets, got ${targets.length}`);
  const out: number[] = [];
  for (let j = 0; j < drafts.length; j++) {
    out.push(targets[j]);
    if (targets[j] !== drafts[j]) return out;
  }
  out.push(targets[drafts.length]);
  return out;
}

/**
 * Random verification: `probs[j]` is the target distribution at position j (k + 1 rows of V probabilities summing
 * to 1); `draftProbs[j]` the distribution draft j was drawn from (absent: point masses).
 */
export function rejectRandom(
  drafts: readonly number[],
  probs: readonly Float32Array[] | readonly Float64Array[],
  generator: Generator,
  draftProbs?: readonly Float64Array[],
): number[] {
  if (probs.length !== drafts.length + 1) throw new Error(`rejectRandom: ${drafts.length} drafts need ${drafts.length + 1} distributions, got ${probs.length}`);
  if (draftProbs && draftProbs.length < drafts.length) throw new Error(`rejectRandom: ${drafts.length} drafts need ${drafts.length} draft distributions, got ${draftProbs.length}`);
  const out: number[] = [];
  for (let j = 0; j < drafts.length; j++) {
    const x = drafts[j];
    const p = probs[j];
    const q = draftProbs?.[j];
    const px = x >= 0 && x < p.length ? p[x] : 0;
    const qx = q ? q[x] : 1;
    // u * q(x) < p(x) accepts: probability min(1, p(x) / q(x)) for u in [0, 1) (p(x) = 0 never accepts).
    if (generator.uniform() * qx < px) {
      out.push(x);
      continue;
    }
    out.push(q ? drawResidual(p, q, generator.uniform()) : drawExcluding(p, x, 1 - px, generator.uniform()));
    return out;
  }
  out.push(drawExcluding(probs[drafts.length], -1, 1, generator.uniform()));
  return out;
}

// Inverse-CDF draw from norm(max(p - q, 0)); u in [0, 1). A rejection implies p(x) < q(x) for the draft x, so
// some token has p > q and the residual has mass (rounding aside: then p itself).
function drawResidual(p: ArrayLike<number>, q: ArrayLike<number>, u: number): number {
  let mass = 0;
  for (let t = 0; t < p.length; t++) if (p[t] > q[t]) mass += p[t] - q[t];
  if (!(mass > 1e-12)) return drawExcluding(p, -1, 1, u);
  const target = u * mass;
  let acc = 0;
  let last = -1;
  for (let t = 0; t < p.length; t++) {
    if (!(p[t] > q[t])) continue;
    acc += p[t] - q[t];
    last = t;
    if (acc > target) return t;
  }
  return last;
}

// Inverse-CDF draw from p without token `skip`, whose remaining mass is `mass`; u in [0, 1).
function drawExcluding(p: ArrayLike<number>, skip: number, mass: number, u: number): number {
  const target = u * mass;
  let acc = 0;
  let last = -1;
  for (let t = 0; t < p.length; t++) {
    if (t === skip || !(p[t] > 0)) continue;
    acc += p[t];
    last = t;
    if (acc > target) return t;
  }
  // Rounding left the sum just under target: the last token with mass.
  if (last < 0) throw new Error('rejection sampler: the residual distribution is empty');
  return last;
}

/** The filters random sampling applies (SamplingParams' fields). */
export interface TargetFilters {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

/**
 * The target distribution of a logits row as the sampler draws from it (assembly/sampler.ts stage 4): softmax of
 * logits / T, then min-p (tokens below minP * the top probability dropped), top-k (every token >= the k-th largest
 * logit, ties kept), top-p (descending order, a token kept while the mass before it is < p), renormalized.
 */
export function targetProbs(logits: Float32Array, f: TargetFilters): Float64Array {
  const V = logits.length;
  let max = -Infinity;
  for (let t = 0; t < V; t++) if (logits[t] > max) max = logits[t];
  const p = new Float64Array(V);
  let sum = 0;
  for (let t = 0; t < V; t++) sum += p[t] = Math.exp((logits[t] - max) / f.temperature);
  for (let t = 0; t < V; t++) p[t] /= sum;
  // min-p: relative to the top probability (which is 1 / sum after the shift).
  if (f.minP > 0) {
    const floor = f.minP / sum;
    for (let t = 0; t < V; t++) if (p[t] < floor) p[t] = 0;
  }
  const needOrder = (f.topK > 0 && f.topK < V) || f.topP < 1;
  if (needOrder) {
    const order = Array.from({ length: V }, (_, t) => t).filter((t) => p[t] > 0).sort((a, b) => logits[b] - logits[a] || a - b);
    if (f.topK > 0 && f.topK < order.length) {
      const kth = logits[order[f.topK - 1]];
      for (const t of order) if (logits[t] < kth) p[t] = 0;
    }
    if (f.topP < 1) {
      let total = 0;
      for (const t of order) total += p[t];
      let before = 0;
      for (const t of order) {
        if (p[t] === 0) continue;
        if (before >= f.topP * total) p[t] = 0;
        else before += p[t];
      }
    }
  }
  let kept = 0;
  for (let t = 0; t < V; t++) kept += p[t];
  for (let t = 0; t < V; t++) p[t] /= kept;
  return p;
}
