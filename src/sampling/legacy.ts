/**
 * @deprecated The per-row TS placeholders (sampleRow: temperature, top-k, top-p, min-p; applyPenalties), kept so
 * that the model runner works until it calls `Sampler.sample` for the whole batch. Delete with the re-export in
 * sampler.ts.
 */
import type { SamplingParams } from '../sampling-params.js';
import type { Generator } from './generator.js';
import { argmax } from './logprobs.js';

/** @deprecated Use `Sampler.sample`. */
export function sampleRow(row: Float32Array, params: SamplingParams, gen: Generator): number {
  if (params.greedy) return argmax(row);
  const V = row.length;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (row[i] > max) max = row[i];
  const topK = params.topK > 0 ? Math.min(params.topK, V) : V;
  const ids = Array.from({ length: V }, (_, i) => i);
  if (topK < V || params.topP < 1 || params.minP > 0) ids.sort((a, b) => row[b] - row[a] || a - b).length = topK;
  const probs = ids.map((i) => Math.exp((row[i] - max) / params.temperature));
  const keep = (n: number) => ((ids.length = probs.length = Math.max(1, n)), probs.reduce((a, b) => a + b, 0));
  let total = probs.reduce((a, b) => a + b, 0);
  if (params.topP < 1) {
    let acc = 0;
    let n = probs.length;
    for (let j = 0; j < probs.length; j++) if ((acc += probs[j] / total) >= params.topP) (n = j + 1), (j = probs.length);
    total = keep(n);
  }
  if (params.minP > 0) {
    let n = 0;
    while (n < probs.length && probs[n] / total >= (probs[0] / total) * params.minP) n++;
    total = keep(n);
  }
  let u = gen.uniform() * total;
  for (let j = 0; j < probs.length; j++) if ((u -= probs[j]) < 0) return ids[j];
  return ids[ids.length - 1];
}

/** @deprecated Use `needsLogitsRow`. Whether the row must be processed on the CPU before sampling (penalties). */
export function needsProcessing(p: SamplingParams): boolean {
  return p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0;
}

/**
 * @deprecated `Sampler.sample` applies them. vLLM's penalties, in place: repetition over prompt and output
 * tokens (positive logits divided, negative multiplied), then presence and frequency over output tokens.
 */
export function applyPenalties(row: Float32Array, p: SamplingParams, prompt: readonly number[], output: readonly number[]): void {
  if (p.repetitionPenalty !== 1) {
    const seen = new Set<number>([...prompt, ...output]);
    for (const id of seen) row[id] = row[id] > 0 ? row[id] / p.repetitionPenalty : row[id] * p.repetitionPenalty;
  }
  if (p.presencePenalty !== 0 || p.frequencyPenalty !== 0) {
    const counts = new Map<number, number>();
    for (const id of output) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, c] of counts) row[id] -= p.frequencyPenalty * c + p.presencePenalty;
  }
}
