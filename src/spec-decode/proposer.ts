/**
 * The proposer port of speculative decoding: what the engine asks, after each step, for a running request's draft
 * tokens (vLLM V1's proposers: ngram, EAGLE, a draft model). The engine verifies whatever it is given, so a proposer
 * decides only the speed-up, never the output. NgramProposer (ngram-proposer.ts) is the implementation
 * speculativeConfig makes; EngineOptions.proposer puts another in its place.
 *
 * @example
 *   // Always proposes a repeat of the last token.
 *   const repeat: Proposer = { propose: (tokens, maxTokens) => new Array(maxTokens).fill(tokens[tokens.length - 1]) };
 *   await LLM.create({ model, speculativeConfig: { method: 'ngram', numSpeculativeTokens: 2 }, proposer: repeat });
 */
export interface Proposer {
  /**
   * Draft tokens to follow `tokens`, the request's prompt + output so far (its last MAX_LOOKBACK tokens at most):
   * at most `maxTokens` of them (the engine keeps no more); [] for none.
   */
  propose(tokens: ArrayLike<number>, maxTokens: number): number[];
}
