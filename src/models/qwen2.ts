/** Qwen2 (Qwen2ForCausalLM): Llama with q/k/v biases. */
import type { JsonFields } from '../config/json-fields.js';
import type { ModelFamily } from './family.js';
import { llamaWeights, readLlamaLike } from './llama.js';

/**
 * Qwen configs carry a sliding_window value that only applies when use_sliding_window is set, and then only to layers
 * >= max_window_layers: a per-layer mix this engine does not implement.
 */
export function qwenSlidingWindow(f: JsonFields): null {
  if (f.bool('use_sliding_window', false)) f.fail('use_sliding_window', 'is true; per-layer sliding windows are not supported');
  return null;
}

export const qwen2: ModelFamily = {
  name: 'qwen2',
  architectures: ['Qwen2ForCausalLM'],
  modelTypes: ['qwen2'],
  readConfig: (f) => readLlamaLike(f, { maxPos: 32768, eps: 1e-6, theta: 10000, qkvBias: 'always', slidingWindow: qwenSlidingWindow }),
  weights: (cfg) => llamaWeights(cfg),
};
