import { LLM, type LLMOptions } from '../../bindings/node/index.js';

/**
 * Loads a model for a test; f32 weights by default so that comparisons with the goldens are tight, and no warm-up
 * (kernels compile on first use, as the suite's many loads would otherwise each compile every step size; the
 * warm-up has tests of its own in engine.test.ts).
 */
export function loadLLM(model: string, opts: LLMOptions = {}): Promise<LLM> {
  return LLM.create({ model, dtype: 'float32', kvCacheMemoryBytes: 32 << 20, maxNumSeqs: 16, warmup: false, ...opts });
}

/** Steps the engine planned ahead of their predecessor's tokens (async scheduling), counted from now on. */
export function countRunAhead(llm: LLM): { n: number } {
  const scheduler = (llm.engine as unknown as { scheduler: { markPlaceholders: (...a: unknown[]) => void } }).scheduler;
  const counter = { n: 0 };
  const mark = scheduler.markPlaceholders.bind(scheduler);
  scheduler.markPlaceholders = (...a: unknown[]) => {
    counter.n++;
    mark(...a);
  };
  return counter;
}
