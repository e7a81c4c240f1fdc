/**
 * vLLM's `speculative_config` (LLM.create({ speculativeConfig }), `serve --speculative-config JSON`): checked once,
 * where it enters. Only the 'ngram' method (prompt lookup) is implemented; a draft model is refused by name.
 *
 * @example
 *   parseSpeculativeConfig({ method: 'ngram', numSpeculativeTokens: 4, promptLookupMax: 4 });
 *   // { method: 'ngram', numSpeculativeTokens: 4, promptLookupMin: 4, promptLookupMax: 4 }
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

export type SpeculativeConfig = NgramConfig;

/** The most draft tokens a step may verify per request (bounds the work one request adds to a step). */
export const MAX_SPECULATIVE_TOKENS = 16;
/** The longest n-gram looked up (each step scans the lookback once per n). */
export const MAX_PROMPT_LOOKUP = 32;

/** Accepts vLLM's snake_case keys too (the JSON of `--speculative-config`). */
const ALIASES: Record<string, string> = {
  num_speculative_tokens: 'numSpeculativeTokens',
  prompt_lookup_min: 'promptLookupMin',
  prompt_lookup_max: 'promptLookupMax',
};

/** Validates a speculative config; null / undefined: speculation off. */
export function parseSpeculativeConfig(given: unknown): SpeculativeConfig | null {
  if (given === null || given === undefined) return null;
  if (typeof given !== 'object' || Array.isArray(given)) throw new InvalidArgumentError('speculativeConfig', 'speculativeConfig must be an object like { "method": "ngram", "numSpeculativeTokens": 4 }.');
  const c: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(given)) c[ALIASES[key] ?? key] = v;
  const known = new Set(['method', 'numSpeculativeTokens', 'promptLookupMin', 'promptLookupMax', 'model']);
  const unknown = Object.keys(c).filter((key) => !known.has(key));
  if (unknown.length > 0) throw new InvalidArgumentError('speculativeConfig', `speculativeConfig has unknown field(s): ${unknown.join(', ')}.`);
  const method = c.method ?? (c.model === undefined ? undefined : 'draft_model');
  if (method !== 'ngram') {
    throw new InvalidArgumentError('speculativeConfig.method', `speculativeConfig.method must be 'ngram' (the only method implemented; draft models are not), got ${JSON.stringify(method)}.`);
  }
  if (c.model !== undefined) throw new InvalidArgumentError('speculativeConfig.model', "speculativeConfig.model is not used by method 'ngram'.");
  const int = (key: string, v: unknown, min: number, max: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new InvalidArgumentError(`speculativeConfig.${key}`, `speculativeConfig.${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}.`);
    }
    return v;
  };
  if (c.numSpeculativeTokens === undefined) throw new InvalidArgumentError('speculativeConfig.numSpeculativeTokens', 'speculativeConfig.numSpeculativeTokens is required.');
  const k = int('numSpeculativeTokens', c.numSpeculativeTokens, 1, MAX_SPECULATIVE_TOKENS);
  // As vLLM's SpeculativeConfig: neither bound given -> both 5; one given -> the other equals it.
  const givenMin = c.promptLookupMin === undefined ? undefined : int('promptLookupMin', c.promptLookupMin, 1, MAX_PROMPT_LOOKUP);
  const givenMax = c.promptLookupMax === undefined ? undefined : int('promptLookupMax', c.promptLookupMax, 1, MAX_PROMPT_LOOKUP);
  const min = givenMin ?? givenMax ?? 5;
  const max = givenMax ?? givenMin ?? 5;
  if (min > max) throw new InvalidArgumentError('speculativeConfig.promptLookupMin', `speculativeConfig.promptLookupMin (${min}) must not exceed promptLookupMax (${max}).`);
  return { method: 'ngram', numSpeculativeTokens: k, promptLookupMin: min, promptLookupMax: max };
}
