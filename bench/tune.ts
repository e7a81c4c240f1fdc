/**
 * --tune for the benchmarks: `key=value,...` overrides fields of a KernelTuning (numbers, true/false, or a:b:c
 * lists of numbers); --mma-tiles replaces tuning.mmaTiles with a JSON table (maxTokens null: Infinity).
 */
import type { KernelTuning } from '../src/gpu/tuning.js';

export function applyTune(tuning: KernelTuning, spec: string, mmaTiles = ''): void {
  if (mmaTiles) {
    const table = JSON.parse(mmaTiles) as (Omit<KernelTuning['mmaTiles'][number], 'maxTokens'> & { maxTokens: number | null })[];
    tuning.mmaTiles = table.map((t) => ({ ...t, maxTokens: t.maxTokens ?? Infinity }));
  }
  for (const kv of spec.split(',').filter(Boolean)) {
    const [k, v] = kv.split('=');
    const value = v.includes(':') ? v.split(':').map(Number) : v === 'true' || v === 'false' ? v === 'true' : Number(v);
    (tuning as unknown as Record<string, unknown>)[k] = value;
  }
}
