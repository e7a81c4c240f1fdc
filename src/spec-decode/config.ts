/**
 * vLLM's `speculative_config` (LLM.create({ speculativeConfig }), `serve --speculative-config JSON`): checked once,
 * where it enters. Two methods, as vLLM's vllm/config/speculative.py names them:
 *   - 'ngram': prompt lookup (ngram-proposer.ts), no second model;
 *   - 'draft_model': a smaller model with the target's vocabulary proposes k tokens autoregressively
 *     (draft-model-proposer.ts). As vLLM, a config with `model` and no `method` is a draft model.
 *
 * @example
 *   parseSpeculativeConfig({ method: 'ngram', numSpeculativeTokens: 4, promptLookupMax: 4 });
 *   // { method: 'ngram', numSpeculativeTokens: 4, promptLookupMin: 4, promptLookupMax: 4 }
 *   parseSpeculativeConfig({ model: './tiny-draft', num_speculative_tokens: 3 });
 *   // { method: 'draft_model', model: './tiny-draft', numSpeculativeTokens: 3, draftSampleMethod: 'greedy', ... }
 */
import { InvalidArgumentError } from '../errors.js';

export interface NgramConfig {
  method: 'ngram';
  /** Draft tokens proposed (and verified) per step, k. */
  numSpeculativeTokens: number;
  /** Shortest suffix looked up (default: promptLookupMax, or 5 when neither is set, as vLLM). */
  promptLookupMin: number;
  /** Longest suffix looked up, tried first (default: promptLookupMin, or 5). */
  promptLookupMax: number;
}

export interface DraftModelConfig {
  method: 'draft_model';
  /** Draft tokens proposed (and verified) per step, k: the draft model runs k forwards a step. */
  numSpeculativeTokens: number;
  /** The draft model: a folder, URL or hub repo id, as LLMOptions.model (its vocabulary must be the target's). */
  model: string;
  /**
   * vLLM's draft_sample_method. 'greedy' (default): drafts are the draft model's argmax, a point mass for the
   * rejection sampler. 'probabilistic': a request that samples draws its drafts from the draft model's distribution
   * q (the request's temperature and top-k / top-p / min-p applied), and the rejection sampler accepts with
   * min(1, p / q); greedy requests still take the argmax.
   */
  draftSampleMethod: 'greedy' | 'probabilistic';
  /** The draft model's revision on the hub (vLLM's `revision`); null: the default branch. */
  revision: string | null;
  /** The draft model's weight format (vLLM's `quantization`, as EngineOptions.quantization); null: its dtype. */
  quantization: string | null;
}

export type SpeculativeConfig = NgramConfig | DraftModelConfig;

/** The most draft tokens a step may verify per request (bounds the work one request adds to a step). */
export const MAX_SPECULATIVE_TOKENS = 16;
/** The longest n-gram looked up (each step scans the lookback once per n). */
export const MAX_PROMPT_LOOKUP = 32;

/** Accepts vLLM's snake_case keys too (the JSON of `--speculative-config`). */
const ALIASES: Record<string, string> = {
  num_speculative_tokens: 'numSpeculativeTokens',
  prompt_lookup_min: 'promptLookupMin',
  prompt_lookup_max: 'promptLookupMax',
  draft_sample_method: 'draftSampleMethod',
};
const FIELDS: Record<SpeculativeConfig['method'], string[]> = {
  ngram: ['method', 'numSpeculativeTokens', 'promptLookupMin', 'promptLookupMax'],
  draft_model: ['method', 'numSpeculativeTokens', 'model', 'draftSampleMethod', 'revision', 'quantization'],
};
const EXAMPLE = 'like { "method": "ngram", "numSpeculativeTokens": 4 } or { "method": "draft_model", "model": "<path or repo id>", "numSpeculativeTokens": 4 }';

/** Validates a speculative config; null / undefined: speculation off. */
export function parseSpeculativeConfig(given: unknown): SpeculativeConfig | null {
  if (given === null || given === undefined) return null;
  if (typeof given !== 'object' || Array.isArray(given)) throw new InvalidArgumentError('speculativeConfig', `speculativeConfig must be an object ${EXAMPLE}.`);
  const c: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(given)) c[ALIASES[key] ?? key] = v;
  // As vLLM: no method but a model means a draft model.
  const method = c.method ?? (c.model === undefined ? undefined : 'draft_model');
  if (method !== 'ngram' && method !== 'draft_model') {
    throw new InvalidArgumentError('speculativeConfig.method', `speculativeConfig.method must be 'ngram' or 'draft_model' (the methods implemented), got ${JSON.stringify(method)}.`);
  }
  const unknown = Object.keys(c).filter((key) => !FIELDS[method].includes(key));
  if (unknown.length > 0) throw new InvalidArgumentError('speculativeConfig', `speculativeConfig has field(s) method '${method}' does not take: ${unknown.join(', ')}.`);
  const int = (key: string, v: unknown, min: number, max: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new InvalidArgumentError(`speculativeConfig.${key}`, `speculativeConfig.${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}.`);
    }
    return v;
  };
  if (c.numSpeculativeTokens === undefined) throw new InvalidArgumentError('speculativeConfig.numSpeculativeTokens', 'speculativeConfig.numSpeculativeTokens is required.');
  const k = int('numSpeculativeTokens', c.numSpeculativeTokens, 1, MAX_SPECULATIVE_TOKENS);
  if (method === 'draft_model') return draftModelConfig(c, k);
  // As vLLM's SpeculativeConfig: neither bound given -> both 5; one given -> the other equals it.
  const givenMin = c.promptLookupMin === undefined ? undefined : int('promptLookupMin', c.promptLookupMin, 1, MAX_PROMPT_LOOKUP);
  const givenMax = c.promptLookupMax === undefined ? undefined : int('promptLookupMax', c.promptLookupMax, 1, MAX_PROMPT_LOOKUP);
  const min = givenMin ?? givenMax ?? 5;
  const max = givenMax ?? givenMin ?? 5;
  if (min > max) throw new InvalidArgumentError('speculativeConfig.promptLookupMin', `speculativeConfig.promptLookupMin (${min}) must not exceed promptLookupMax (${max}).`);
  return { method: 'ngram', numSpeculativeTokens: k, promptLookupMin: min, promptLookupMax: max };
}

function draftModelConfig(c: Record<string, unknown>, k: number): DraftModelConfig {
  const model = c.model;
  if (typeof model !== 'string' || model.trim() === '') {
    throw new InvalidArgumentError('speculativeConfig.model', `speculativeConfig.model must name the draft model (a folder, URL or hub repo id) for method 'draft_model', got ${JSON.stringify(model)}.`);
  }
  const sample = c.draftSampleMethod ?? 'greedy';
  if (sample !== 'greedy' && sample !== 'probabilistic') {
    throw new InvalidArgumentError('speculativeConfig.draftSampleMethod', `speculativeConfig.draftSampleMethod must be 'greedy' or 'probabilistic', got ${JSON.stringify(sample)}.`);
  }
  const str = (key: 'revision' | 'quantization'): string | null => {
    const v = c[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(`speculativeConfig.${key}`, `speculativeConfig.${key} must be a non-empty string, got ${JSON.stringify(v)}.`);
    return v;
  };
  return { method: 'draft_model', numSpeculativeTokens: k, model, draftSampleMethod: sample, revision: str('revision'), quantization: str('quantization') };
}
