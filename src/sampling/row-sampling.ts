/**
 * How a logits row is sampled: the one place that decides it (the runner reads back what it says, the engine runs a
 * step ahead only when every row is 'argmax').
 * - 'argmax': plain greedy with nothing that edits the row: the GPU's argmax is the token.
 * - 'candidates': random sampling whose only stage is the filters (temperature, top-k/p, min-p): the GPU's top-K
 *   candidates, and the whole row only when they cannot prove the token (sampling/candidates.ts).
 * - 'full': the whole row to the CPU sampler (penalties, logit bias, logprobs, allowed/banned tokens, processors).
 * A structured-outputs row is 'full' (masked by the CPU sampler). With `maskedOnGpu` (the runner applied its bitmask
 * to the logits, ops.tokenBitmask, before the argmax) a greedy one is 'argmax'; a random one stays 'full': on rows
 * mostly -inf the candidates decline and fall back to a second readback (lavapipe, qwen3-rand: 8x slower per step).
 */
import { candidatesEligible } from './candidates.js';
import { needsLogitsRow, type MaskPlace, type SamplerRequest } from './sampler.js';

export type RowSampling = 'argmax' | 'candidates' | 'full';

/**
 * @param o.candidates  whether the executor can sample from GPU candidates this step
 * @example
 *   rowSampling({ params: new SamplingParams({ temperature: 0 }), outputTokenIds: [], ... }, { candidates: true }); // 'argmax'
 */
export function rowSampling(req: Pick<SamplerRequest, 'params' | 'outputTokenIds' | 'forcedTokenId'>, o: { candidates: boolean } & MaskPlace): RowSampling {
  // A forced token is set on the whole row by the CPU sampler (its logprobs and generator draw stay as vLLM's).
  if (req.forcedTokenId != null) return 'full';
  const n = req.outputTokenIds.length;
  if (!needsLogitsRow(req.params, n, o)) return 'argmax';
  return o.candidates && candidatesEligible(req.params, n) ? 'candidates' : 'full';
}
