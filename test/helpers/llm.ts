import { LLM, type LLMOptions } from '../../bindings/node/index.js';

/**
 * Loads a model for a test; f32 weights by default so that comparisons with the goldens are tight, and no warm-up
 * (kernels compile on first use, as the suite's many loads would otherwise each compile every step size; the
 * warm-up has tests of its own in engine.test.ts).
 */
export function loadLLM(model: string, opts: LLMOptions = {}): Promise<LLM> {
  return LLM.create({ model, dtype: 'float32', kvCacheMemoryBytes: 32 << 20, maxNumSeqs: 16, warmup: false, ...opts });
}
