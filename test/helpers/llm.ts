import { LLM, type LLMOptions } from '../../bindings/node/index.js';

/** Loads a model for a test; f32 weights by default so that comparisons with the goldens are tight. */
export function loadLLM(model: string, opts: LLMOptions = {}): Promise<LLM> {
  return LLM.create({ model, dtype: 'float32', kvCacheMemoryBytes: 32 << 20, maxNumSeqs: 16, ...opts });
}
