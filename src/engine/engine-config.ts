/** The sampling defaults a model's generation_config.json implies. */
import type { GenerationConfig } from '../config/generation-config.js';
import type { SamplingParamsInit } from '../sampling-params.js';

/** generation_config.json -> SamplingParams defaults (vLLM's `get_diff_sampling_param`). */
export function defaultGenerationParams(g: GenerationConfig): SamplingParamsInit {
  const init: SamplingParamsInit = {};
  if (g.temperature !== undefined) init.temperature = g.temperature;
  if (g.topP !== undefined) init.topP = g.topP;
  if (g.topK !== undefined) init.topK = g.topK;
  if (g.minP !== undefined) init.minP = g.minP;
  if (g.repetitionPenalty !== undefined) init.repetitionPenalty = g.repetitionPenalty;
  if (g.maxNewTokens !== undefined) init.maxTokens = g.maxNewTokens;
  return init;
}
