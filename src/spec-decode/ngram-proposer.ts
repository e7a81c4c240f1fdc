/**
 * The n-gram proposer (vLLM V1's `spec_decode/ngram_proposer.py`, prompt lookup decoding): the draft for a request
 * is what followed the last occurrence of its current suffix earlier in prompt + output. For n from
 * promptLookupMax down to promptLookupMin, the last n tokens are searched for in the earlier tokens; at the first n
 * with a match, the (up to) k tokens after the earliest such match are the proposal (vLLM V1 takes the earliest
 * too: it leaves the most tokens to propose, where a match just before the suffix leaves only a few).
 *
 * Bounded work: each n scans the sequence once (O(len * n) comparisons), and the scan looks at most
 * MAX_LOOKBACK tokens back, so a 100k-token prompt costs the same per step as a 4k one.
 *
 * @example
 *   const p = new NgramProposer({ method: 'ngram', numSpeculativeTokens: 3, promptLookupMin: 1, promptLookupMax: 3 });
 *   p.propose([1, 2, 3, 4, 1, 2]); // [3, 4, 1]: "1 2" occurred before, followed by 3 4 1
 */
import type { NgramConfig } from './config.js';
import type { Proposer } from './proposer.js';

/** Tokens the proposer looks back over (vLLM scans the whole sequence; this bounds a step's host work). */
export const MAX_LOOKBACK = 4096;

export class NgramProposer implements Proposer {
  constructor(readonly config: Readonly<NgramConfig>) {}

  /**
   * The draft tokens for a sequence `tokens` (prompt + output), at most `maxTokens` of them (default
   * numSpeculativeTokens); [] when no suffix of length promptLookupMin..promptLookupMax occurred before.
   */
  propose(tokens: ArrayLike<number>, maxTokens = this.config.numSpeculativeTokens): number[] {
    const { promptLookupMin: lo, promptLookupMax: hi } = this.config;
    const k = Math.min(maxTokens, this.config.numSpeculativeTokens);
    const L = tokens.length;
    if (k <= 0) return [];
    const from = Math.max(0, L - MAX_LOOKBACK);
    for (let n = Math.min(hi, L - 1); n >= lo; n--) {
      // The suffix is tokens[L-n, L); a match starts at i < L - n, earliest first.
      for (let i = from; i < L - n; i++) {
        let j = 0;
        while (j < n && tokens[i + j] === tokens[L - n + j]) j++;
        if (j < n) continue;
        const out: number[] = [];
        for (let t = i + n; t < L && out.length < k; t++) out.push(tokens[t]);
        return out;
      }
    }
    return [];
  }
}
