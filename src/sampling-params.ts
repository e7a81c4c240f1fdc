import { z } from 'zod';
import { repetitionDetectionError, type RepetitionDetection } from './engine/repetition.js';
import { InvalidArgumentError } from './errors.js';
import { structuredSpec, type StructuredOutputsParams, type StructuredSpec } from './sampling/structured/params.js';

export type { StructuredOutputsParams };

/** Temperatures below this mean greedy decoding (vLLM's `_SAMPLING_EPS`). */
export const SAMPLING_EPS = 1e-5;

/** The most ids `logprobTokenIds` may list (vLLM's MAX_LOGPROB_TOKEN_IDS). */
export const MAX_LOGPROB_TOKEN_IDS = 128;

/** A per-request logits processor: receives the output ids so far and the logits row, returns the logits. */
export type LogitsProcessor = (outputTokenIds: readonly number[], logits: Float32Array) => Float32Array;

/** Constructor argument of SamplingParams: every field optional, vLLM's names in camelCase. */
export interface SamplingParamsInit {
  n?: number;
  bestOf?: number | null;
  presencePenalty?: number;
  frequencyPenalty?: number;
  repetitionPenalty?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number | null;
  stop?: string | string[] | null;
  stopTokenIds?: number[] | null;
  includeStopStrInOutput?: boolean;
  ignoreEos?: boolean;
  maxTokens?: number | null;
  minTokens?: number;
  logprobs?: number | null;
  promptLogprobs?: number | null;
  /**
   * vLLM's `logprob_token_ids`: the ids whose logprobs each output position returns, instead of the top-`logprobs`
   * (the sampled token's always comes too). `logprobs` defaults to its length and must equal it when set.
   */
  logprobTokenIds?: number[] | null;
  /**
   * vLLM's `thinking_token_budget`: at most this many tokens inside the reasoning section (between the reasoning
   * parser's start and end tokens); then the end token(s) are forced. -1 or null: no budget. Needs an LLM with a
   * reasoning parser (`reasoningParser`).
   */
  thinkingTokenBudget?: number | null;
  /**
   * vLLM's `repetition_detection`: end the request (finishReason 'repetition', stopReason 'repetition_detected') when
   * the output ends with a pattern of minPatternSize..maxPatternSize tokens repeated minCount times.
   */
  repetitionDetection?: Partial<RepetitionDetection> | null;
  /**
   * vLLM's `stream_interval`: streamed outputs carry this many new tokens each (the first and the last go at once);
   * it raises the engine's `streamInterval`, never lowers it. Null: the engine's.
   */
  streamInterval?: number | null;
  skipSpecialTokens?: boolean;
  spacesBetweenSpecialTokens?: boolean;
  logitBias?: Record<number, number> | Map<number, number> | null;
  allowedTokenIds?: number[] | null;
  badWords?: string[] | null;
  logitsProcessors?: LogitsProcessor[] | null;
  truncatePromptTokens?: number | null;
  detokenize?: boolean;
  /** 'cumulative' (default) or 'delta' (each streamed output carries only the new text and ids). */
  outputKind?: 'cumulative' | 'delta' | 'final';
  /**
   * vLLM's `structured_outputs`: constrain the output to a JSON schema, regex, choice list, EBNF grammar, any JSON
   * object or a structural tag (exactly one), e.g. `{ json: { type: 'object' } }` or `{ choice: ['yes', 'no'] }`.
   */
  structuredOutputs?: StructuredOutputsParams | null;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

// Field types, checked before any range (a string '10' must not read as "at least 1, got 10"). A number may be
// infinite here (the range checks name it); NaN is no number.
const real = z.custom<number>((v) => typeof v === 'number' && !Number.isNaN(v));
const int = z.int();
const ints = z.array(int);
const bool = z.boolean();
const strings = z.array(z.string());
const nullable = <T extends z.ZodType>(t: T) => t.nullable();

/** Each field's schema and the type its error names. */
const FIELD_TYPES: { [K in keyof SamplingParamsInit]-?: [z.ZodType, string] } = {
  n: [int, 'an integer'],
  bestOf: [nullable(int), 'an integer or null'],
  presencePenalty: [real, 'a number'],
  frequencyPenalty: [real, 'a number'],
  repetitionPenalty: [real, 'a number'],
  temperature: [real, 'a number'],
  topP: [real, 'a number'],
  topK: [int, 'an integer'],
  minP: [real, 'a number'],
  seed: [nullable(int), 'an integer or null'],
  stop: [z.union([z.string(), strings, z.null()]), 'a string, a list of strings or null'],
  stopTokenIds: [nullable(ints), 'a list of integers or null'],
  includeStopStrInOutput: [bool, 'a boolean'],
  ignoreEos: [bool, 'a boolean'],
  maxTokens: [nullable(int), 'an integer or null'],
  minTokens: [int, 'an integer'],
  logprobs: [nullable(int), 'an integer or null'],
  promptLogprobs: [nullable(int), 'an integer or null'],
  logprobTokenIds: [nullable(ints), 'a list of integers or null'],
  thinkingTokenBudget: [nullable(int), 'a non-negative integer, -1 (unlimited) or null'],
  streamInterval: [nullable(int), 'an integer or null'],
  repetitionDetection: [
    nullable(z.object({ maxPatternSize: int.optional(), minPatternSize: int.optional(), minCount: int.optional() }).strict()),
    'an object { maxPatternSize, minPatternSize, minCount } of integers, or null',
  ],
  skipSpecialTokens: [bool, 'a boolean'],
  spacesBetweenSpecialTokens: [bool, 'a boolean'],
  logitBias: [
    z.union([z.record(z.string().regex(/^\d+$/), real), z.map(int, real), z.null()]),
    'an object or Map of token id -> number, or null',
  ],
  allowedTokenIds: [nullable(ints), 'a list of integers or null'],
  badWords: [nullable(strings), 'a list of strings or null'],
  logitsProcessors: [nullable(z.array(z.custom<LogitsProcessor>((v) => typeof v === 'function'))), 'a list of functions or null'],
  truncatePromptTokens: [nullable(int), 'an integer or null'],
  detokenize: [bool, 'a boolean'],
  outputKind: [z.enum(['cumulative', 'delta', 'final']), "'cumulative', 'delta' or 'final'"],
  structuredOutputs: [z.union([z.record(z.string(), z.unknown()), z.null()]), 'an object (StructuredOutputsParams) or null'],
};

/** A value as an error message shows it: JSON where it has one, else its kind. */
function shown(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'number' || v === undefined) return String(v);
  if (v instanceof Map) return 'a Map';
  try {
    const j = JSON.stringify(v);
    return j.length > 60 ? `${j.slice(0, 57)}...` : j;
  } catch {
    return typeof v;
  }
}

function check(ok: boolean, field: string, message: string): void {
  if (!ok) throw new InvalidArgumentError(field, `${field} ${message}`);
}

/**
 * Sampling parameters for text generation, with vLLM's defaults and validation (vllm/sampling_params.py).
 * Fields a user did not set are listed in `unsetFields`, so model defaults (generation_config.json) can fill them.
 *
 * @example
 * const params = new SamplingParams({ temperature: 0.8, topP: 0.95, maxTokens: 64, seed: 1 });
 */
export class SamplingParams {
  n = 1;
  bestOf: number | null = null;
  presencePenalty = 0;
  frequencyPenalty = 0;
  repetitionPenalty = 1;
  temperature = 1;
  topP = 1;
  topK = 0;
  minP = 0;
  seed: number | null = null;
  stop: string[] = [];
  stopTokenIds: number[] = [];
  includeStopStrInOutput = false;
  ignoreEos = false;
  maxTokens: number | null = 16;
  minTokens = 0;
  logprobs: number | null = null;
  promptLogprobs: number | null = null;
  logprobTokenIds: number[] | null = null;
  thinkingTokenBudget: number | null = null;
  repetitionDetection: RepetitionDetection | null = null;
  streamInterval: number | null = null;
  skipSpecialTokens = true;
  spacesBetweenSpecialTokens = true;
  logitBias: Map<number, number> | null = null;
  allowedTokenIds: number[] | null = null;
  badWords: string[] | null = null;
  logitsProcessors: LogitsProcessor[] | null = null;
  truncatePromptTokens: number | null = null;
  detokenize = true;
  outputKind: 'cumulative' | 'delta' | 'final' = 'cumulative';
  structuredOutputs: StructuredOutputsParams | null = null;
  /** The fields the caller set explicitly. */
  readonly setFields: ReadonlySet<keyof SamplingParamsInit>;

  constructor(init: SamplingParamsInit = {}) {
    const set = new Set<keyof SamplingParamsInit>();
    for (const [k, v] of Object.entries(init) as [keyof SamplingParamsInit, unknown][]) {
      if (v === undefined) continue;
      if (!Object.hasOwn(FIELD_TYPES, k)) throw new InvalidArgumentError(k, `unknown sampling parameter '${k}'`);
      const [schema, expected] = FIELD_TYPES[k];
      if (!schema.safeParse(v).success) throw new InvalidArgumentError(k, `${k} must be ${expected}, got ${shown(v)}.`);
      set.add(k);
    }
    this.setFields = set;
    Object.assign(this, Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined)));
    if (init.repetitionDetection) {
      const given = Object.entries(init.repetitionDetection).filter(([, x]) => x !== undefined);
      this.repetitionDetection = { maxPatternSize: 0, minPatternSize: 0, minCount: 0, ...Object.fromEntries(given) };
    }
    if (typeof init.stop === 'string') this.stop = [init.stop];
    if (init.stop === null) this.stop = [];
    if (init.stopTokenIds === null) this.stopTokenIds = [];
    if (init.logitBias && !(init.logitBias instanceof Map)) {
      this.logitBias = new Map(Object.entries(init.logitBias).map(([k, v]) => [Number(k), v]));
    }
    this.verify();
    if (this.logitBias) {
      // vLLM clamps biases to [-100, 100].
      for (const [k, v] of this.logitBias) this.logitBias.set(k, Math.min(100, Math.max(-100, v)));
    }
    if (this.temperature < SAMPLING_EPS) {
      // vLLM: n greedy samples would be n copies of one.
      check(this.n === 1, 'n', `must be 1 when using greedy sampling, got ${this.n}.`);
      // Greedy: the filters are meaningless, as in vLLM.
      this.topP = 1;
      this.topK = 0;
      this.minP = 0;
    }
    if (this.topK === -1) this.topK = 0;
    // vLLM: -1 means no budget.
    if (this.thinkingTokenBudget === -1) this.thinkingTokenBudget = null;
    // vLLM's num_logprobs: the requested ids are the logprobs returned when `logprobs` is unset.
    if (this.logprobs === null && this.logprobTokenIds?.length) this.logprobs = this.logprobTokenIds.length;
  }

  /** The validated structured-outputs constraint (kind, canonical spec, cache key), or null. */
  get structuredSpec(): StructuredSpec | null {
    if (!this.structuredOutputs) return null;
    this.#spec ??= structuredSpec(this.structuredOutputs);
    return this.#spec;
  }
  #spec: StructuredSpec | undefined;

  /** Greedy decoding (temperature below 1e-5). */
  get greedy(): boolean {
    return this.temperature < SAMPLING_EPS;
  }

  /** Number of sequences generated before picking the best `n` (`bestOf ?? n`). */
  get numSequences(): number {
    return this.bestOf ?? this.n;
  }

  /** A copy with some fields replaced (validation runs again). */
  clone(changes: SamplingParamsInit = {}): SamplingParams {
    const init: SamplingParamsInit = {};
    for (const k of this.setFields) (init as Record<string, unknown>)[k] = (this as Record<string, unknown>)[k];
    return new SamplingParams({ ...init, ...changes });
  }

  private verify(): void {
    check(isInt(this.n) && this.n >= 1, 'n', `must be an integer >= 1, got ${this.n}.`);
    if (this.bestOf !== null) {
      check(isInt(this.bestOf) && this.bestOf >= this.n, 'bestOf', `must be an integer >= n (${this.n}), got ${this.bestOf}.`);
    }
    check(this.presencePenalty >= -2 && this.presencePenalty <= 2, 'presencePenalty', `must be in [-2, 2], got ${this.presencePenalty}.`);
    check(this.frequencyPenalty >= -2 && this.frequencyPenalty <= 2, 'frequencyPenalty', `must be in [-2, 2], got ${this.frequencyPenalty}.`);
    check(this.repetitionPenalty > 0 && Number.isFinite(this.repetitionPenalty), 'repetitionPenalty', `must be greater than zero, got ${this.repetitionPenalty}.`);
    check(Number.isFinite(this.temperature), 'temperature', `must be a finite number, got ${this.temperature}.`);
    check(this.temperature >= 0, 'temperature', `must be non-negative, got ${this.temperature}.`);
    // vLLM >= 0.24 (PR #44965): OpenAI's range, [0, 2].
    check(this.temperature <= 2, 'temperature', `must be in [0, 2], got ${this.temperature}.`);
    check(this.topP > 0 && this.topP <= 1, 'topP', `must be in (0, 1], got ${this.topP}.`);
    check(isInt(this.topK) && this.topK >= -1, 'topK', `must be -1 (disable), 0 (disable) or at least 1, got ${this.topK}.`);
    check(this.minP >= 0 && this.minP <= 1, 'minP', `must be in [0, 1], got ${this.minP}.`);
    if (this.seed !== null) check(isInt(this.seed), 'seed', `must be an integer, got ${this.seed}.`);
    if (this.maxTokens !== null) check(isInt(this.maxTokens) && this.maxTokens >= 1, 'maxTokens', `must be at least 1, got ${this.maxTokens}.`);
    check(isInt(this.minTokens) && this.minTokens >= 0, 'minTokens', `must be greater than or equal to 0, got ${this.minTokens}.`);
    if (this.maxTokens !== null) {
      check(this.minTokens <= this.maxTokens, 'minTokens', `must be less than or equal to maxTokens=${this.maxTokens}, got ${this.minTokens}.`);
    }
    if (this.logprobs !== null) check(isInt(this.logprobs) && this.logprobs >= -1, 'logprobs', `must be non-negative or -1 (whole vocabulary), got ${this.logprobs}.`);
    if (this.promptLogprobs !== null) check(isInt(this.promptLogprobs) && this.promptLogprobs >= -1, 'promptLogprobs', `must be non-negative or -1 (whole vocabulary), got ${this.promptLogprobs}.`);
    if (this.logprobTokenIds !== null) {
      const n = this.logprobTokenIds.length;
      check(n <= MAX_LOGPROB_TOKEN_IDS, 'logprobTokenIds', `has ${n} ids, which is greater than max allowed: ${MAX_LOGPROB_TOKEN_IDS}.`);
      if (this.logprobs !== null) {
        check(this.logprobs === n, 'logprobTokenIds', `When both logprobs and logprobTokenIds are set, logprobs must equal len(logprobTokenIds). Got logprobs=${this.logprobs}, len(logprobTokenIds)=${n}.`);
      }
    }
    if (this.streamInterval !== null) check(this.streamInterval >= 1, 'streamInterval', `must be at least 1, got ${this.streamInterval}.`);
    if (this.repetitionDetection) {
      const err = repetitionDetectionError(this.repetitionDetection);
      if (err) throw new InvalidArgumentError('repetitionDetection', err);
    }
    if (this.thinkingTokenBudget !== null) {
      check(this.thinkingTokenBudget >= -1, 'thinkingTokenBudget', `must be a non-negative integer or -1 for unlimited, got ${this.thinkingTokenBudget}.`);
    }
    check(Array.isArray(this.stop) && this.stop.every((s) => typeof s === 'string' && s.length > 0), 'stop', 'cannot contain an empty string.');
    check(Array.isArray(this.stopTokenIds) && this.stopTokenIds.every((t) => isInt(t) && t >= 0), 'stopTokenIds', 'must be a list of non-negative integer token ids.');
    if (this.truncatePromptTokens !== null) {
      check(isInt(this.truncatePromptTokens) && (this.truncatePromptTokens >= 1 || this.truncatePromptTokens === -1), 'truncatePromptTokens', `must be -1 or at least 1, got ${this.truncatePromptTokens}.`);
    }
    if (this.allowedTokenIds !== null) {
      check(Array.isArray(this.allowedTokenIds) && this.allowedTokenIds.length > 0 && this.allowedTokenIds.every((t) => isInt(t) && t >= 0), 'allowedTokenIds', 'must be a non-empty list of token ids.');
    }
    if (this.badWords !== null) {
      check(this.badWords.every((w) => w.length > 0), 'badWords', `cannot contain an empty string. Got badWords=${shown(this.badWords)}`);
    }
    if (this.structuredOutputs) this.#spec = structuredSpec(this.structuredOutputs);
    check(['cumulative', 'delta', 'final'].includes(this.outputKind), 'outputKind', `must be 'cumulative', 'delta' or 'final', got ${this.outputKind}.`);
  }

  /** Checks token ids against the model's vocabulary (called when the request reaches the engine). */
  verifyForVocab(vocabSize: number): void {
    const bad = (ids: Iterable<number>) => [...ids].find((t) => t < 0 || t >= vocabSize);
    const fields: [string, Iterable<number> | null][] = [
      ['stopTokenIds', this.stopTokenIds],
      ['allowedTokenIds', this.allowedTokenIds],
      ['logitBias', this.logitBias ? this.logitBias.keys() : null],
    ];
    for (const [field, ids] of fields) {
      if (!ids) continue;
      const b = bad(ids);
      if (b !== undefined) throw new InvalidArgumentError(field, `${field} contains token id ${b}, out of vocabulary [0, ${vocabSize}).`);
    }
    const outside = (this.logprobTokenIds ?? []).filter((t) => t < 0 || t >= vocabSize);
    if (outside.length > 0) {
      // vLLM's message, every bad id listed.
      throw new InvalidArgumentError('logprobTokenIds', `token_id(s) [${outside.join(', ')}] in logprobTokenIds contain out-of-vocab token ids. Vocabulary size: ${vocabSize}`);
    }
  }
}
