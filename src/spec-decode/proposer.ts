/**
 * The proposer seam of speculative decoding (vLLM V1's drafters: NgramProposer, DraftModelProposer): after each
 * step the engine hands the proposer the sequences that may speculate, and gets back up to k draft tokens each, to
 * be verified by the target in the next step's forward. The engine knows only this interface; how drafts are found
 * (prompt lookup, a draft model with its own KV cache) stays behind it.
 *
 * @example
 *   const drafts = await proposer.propose([{ requestId: 'r', promptTokenIds, outputTokenIds, maxTokens: 4, sample }]);
 *   drafts.get('r'); // { tokenIds: [17, 4, 9] } (n-gram) or { tokenIds, probs } (a draft model sampling from q)
 */
import type { SamplerRequest } from '../sampling/sampler.js';

/** One sequence that may speculate this step. */
export interface ProposeRequest {
  requestId: string;
  /** The sequence's prompt (read only). */
  promptTokenIds: readonly number[];
  /** Its output so far, the last token being the one the next step computes first (read only). */
  outputTokenIds: readonly number[];
  /** The most draft tokens worth proposing (k, or fewer near max_tokens / the model length). */
  maxTokens: number;
  /** How the target samples it: greedy rows get argmax drafts; the generator draws sampled drafts. */
  sample: SamplerRequest;
}

/** A proposal for one sequence. */
export interface Draft {
  tokenIds: number[];
  /**
   * The draft distribution q each token was drawn from ([tokenIds.length][V], summing to 1), for the rejection
   * sampler's min(1, p / q) test; absent: each draft is a point mass (n-gram, greedy drafts).
   */
  probs?: Float64Array[];
}

export interface Proposer {
  /** Drafts for the sequences (requestId -> draft); a sequence left out, or given [], verifies nothing. */
  propose(requests: readonly ProposeRequest[]): Promise<Map<string, Draft>>;
  /** The sequences ended (finished, aborted): whatever the proposer keeps for them is freed. */
  release(requestIds: readonly string[]): void;
  /** Frees the proposer's resources (a draft model's executor). */
  dispose(): void;
}
