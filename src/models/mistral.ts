/** Mistral (MistralForCausalLM): Llama with a sliding attention window over every layer. */
import type { JsonFields } from '../config/json-fields.js';
import type { ModelFamily } from './family.js';
import { llamaWeights, readLlamaLike } from './llama.js';

/** MistralConfig defaults to a 4096 window when the key is absent (Mistral-7B-v0.1); null disables it (v0.2+). */
function slidingWindow(f: JsonFields): number | null {
  if (!('sliding_window' in f.obj)) return 4096;
  return f.has('sliding_window') ? f.int('sliding_window') : null;
}

export const mistral: ModelFamily = {
  name: 'mistral',
  architectures: ['MistralForCausalLM'],
  modelTypes: ['mistral'],
  readConfig: (f) => readLlamaLike(f, { maxPos: 4096 * 32, eps: 1e-6, theta: 10000, qkvBias: 'never', slidingWindow }),
  weights: (cfg) => llamaWeights(cfg),
};
