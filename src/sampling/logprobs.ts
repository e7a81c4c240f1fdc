/**
 * Log-probabilities of one logits row in plain TS, for callers outside the batched sampler (prompt logprobs,
 * tests). Same conventions as the sampler's stage 5 (vLLM's `gather_logprobs`): logprobs of the raw row; a
 * token's rank is the number of tokens whose logprob is >= its own (ties rank it last); the top-k are ordered by
 * logprob, ties to the lower id, and take ranks 1..k.
 *
 * @example
 *   const lp = topLogprobs(row, nextTokenId, 5);
 *   lp.sampled;          // log p(nextTokenId)
 *   [...lp.top.keys()];  // the 5 most likely ids
 *   lp.ranks.get(nextTokenId);
 */

/** The logprobs of one position: the chosen token's, and the top-k with their ranks. */
export interface TokenLogprobs {
  /** log p of the sampled (or given) token under the raw distribution. */
  sampled: number;
  /** The top-k ids -> logprob, most likely first (k = -1: the whole vocabulary). */
  top: Map<number, number>;
  /** 1-based ranks: the sampled token's, then each top-k id's (k-th = k), overriding it when it is among them. */
  ranks: Map<number, number>;
}

/** argmax with ties to the lowest id (torch.argmax). */
export function argmax(row: Float32Array): number {
  let best = 0;
  let bv = row[0];
  for (let i = 1; i < row.length; i++) if (row[i] > bv) (bv = row[i]), (best = i);
  return best;
}

/** log-sum-exp of a row, accumulated in float64. */
export function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return max + Math.log(sum);
}

/** log_softmax of a row. */
export function logSoftmax(row: Float32Array): Float32Array {
  const lse = logSumExp(row);
  const out = new Float32Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i] - lse;
  return out;
}

/** The given token's logprob and rank, plus the top-k (k = -1: the whole vocabulary; 0: none). */
export function topLogprobs(logits: Float32Array, tokenId: number, k: number): TokenLogprobs {
  const lse = logSumExp(logits);
  const x = logits[tokenId];
  let rank = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] >= x) rank++;
  const top = new Map<number, number>();
  const ranks = new Map<number, number>([[tokenId, rank]]);
  topIds(logits, k < 0 ? logits.length : Math.min(k, logits.length)).forEach((id, i) => {
    top.set(id, logits[id] - lse);
    ranks.set(id, i + 1);
  });
  return { sampled: x - lse, top, ranks };
}

/** Ids of the k largest values, descending, ties to the lower id. */
function topIds(values: Float32Array, k: number): number[] {
  if (k <= 0) return [];
  if (k > 64) {
    return Array.from({ length: values.length }, (_, i) => i)
      .sort((a, b) => values[b] - values[a] || a - b)
      .slice(0, k);
  }
  // A short sorted list: a later id enters only with a strictly larger value.
  const ids: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (ids.length === k) {
      if (!(v > values[ids[k - 1]])) continue;
      ids.pop();
    }
    let j = ids.length;
    while (j > 0 && !(values[ids[j - 1]] >= v)) j--;
    ids.splice(j, 0, i);
  }
  return ids;
}
