/**
 * generation_config.json -> the checkpoint's generation defaults. vLLM applies temperature, top_p, top_k, min_p,
 * repetition_penalty and max_new_tokens from here as sampling defaults, and stops at every EOS id listed.
 */
import { JsonFields } from './json-fields.js';

export interface GenerationConfig {
  /** Stop token ids (`eos_token_id`: one id or a list; [] when absent). */
  eosTokenIds: number[];
  bosTokenId: number | null;
  /** Sampling defaults, present only when the file sets them. */
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
  /** The parsed file, for anything not normalized here (e.g. `do_sample`, which vLLM ignores). */
  raw: Record<string, unknown>;
}

/**
 * Parses generation_config.json (text or parsed JSON). Throws ModelFileError naming the file and the bad key.
 *
 * @example
 *   const gen = parseGenerationConfig(await source.readText('generation_config.json'));
 *   gen.eosTokenIds; // [128001, 128008, 128009] for Llama 3.1
 */
export function parseGenerationConfig(json: unknown, file = 'generation_config.json'): GenerationConfig {
  const f = JsonFields.parse(json, file);
  const out: GenerationConfig = { eosTokenIds: f.tokenIds('eos_token_id'), bosTokenId: f.tokenId('bos_token_id'), raw: f.obj };
  const nonNeg = (key: string) => {
    const v = f.optNum(key);
    if (v !== undefined && v < 0) f.fail(key, `must be >= 0, got ${v}`);
    return v;
  };
  const temperature = nonNeg('temperature');
  if (temperature !== undefined) out.temperature = temperature;
  const topP = f.optNum('top_p');
  if (topP !== undefined) {
    if (!(topP > 0 && topP <= 1)) f.fail('top_p', `must be in (0, 1], got ${topP}`);
    out.topP = topP;
  }
  if (f.has('top_k')) {
    // HF uses 0 for "disabled" where vLLM uses -1 (or 0); both mean "no top-k" here.
    const v = f.obj.top_k;
    if (!Number.isSafeInteger(v) || (v as number) < -1) f.fail('top_k', `must be an integer >= -1, got ${JSON.stringify(v)}`);
    out.topK = v as number;
  }
  const minP = f.optNum('min_p');
  if (minP !== undefined) {
    if (!(minP >= 0 && minP <= 1)) f.fail('min_p', `must be in [0, 1], got ${minP}`);
    out.minP = minP;
  }
  const rep = f.optNum('repetition_penalty');
  if (rep !== undefined) {
    if (!(rep > 0)) f.fail('repetition_penalty', `must be > 0, got ${rep}`);
    out.repetitionPenalty = rep;
  }
  if (f.has('max_new_tokens')) out.maxNewTokens = f.int('max_new_tokens');
  return out;
}
