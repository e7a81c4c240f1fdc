/**
 * Beam search with vLLM's algorithm (vllm/entrypoints/llm.py `beam_search`, vllm/beam_search.py). Per step:
 *   1. every live beam of every prompt becomes one request for 1 token with `logprobs: 2 * beamWidth`, all
 *      submitted together so they batch in one engine step; the engine's prefix caching finds the beams' common
 *      prefixes (the prompt, and output the beams share) already in the KV cache, so each beam computes only its
 *      last, partly filled block and shared blocks are held once;
 *   2. each beam grows by each token of its logprobs entry (the top 2 * beamWidth and the sampled token);
 *   3. a candidate ending in EOS (unless ignoreEos) moves to the prompt's completed list, the others are ranked by
 *      score and the best beamWidth live on.
 * At the end the live beams join the completed ones and the best beamWidth by score are returned.
 * score = cumulativeLogprob / seqLen ** lengthPenalty, where seqLen counts the prompt and the output but not a final
 * EOS (vLLM's get_beam_search_score, after transformers' BeamHypotheses).
 *
 * @example
 * const [out] = await llm.beamSearch(['Once upon a time'], new BeamSearchParams({ beamWidth: 4, maxTokens: 16 }));
 * for (const s of out.sequences) console.log(s.cumulativeLogprob, s.text);
 */
import type { LLMEngine, PromptInput } from './engine/llm-engine.js';
import { InvalidArgumentError } from './errors.js';
import type { Logprob } from './outputs.js';
import { SamplingParams } from './sampling-params.js';

/** Constructor argument of BeamSearchParams, vLLM's fields in camelCase. */
export interface BeamSearchParamsInit {
  /** Beams kept per prompt (and sequences returned). */
  beamWidth: number;
  /** Output tokens per beam at most. */
  maxTokens: number;
  /** Keep expanding past EOS instead of completing the beam (default false). */
  ignoreEos?: boolean;
  /** Temperature of the one sampled candidate each beam adds to its top-2k (default 0: greedy, no extra). */
  temperature?: number;
  /** Exponent of the length normalization (default 1; 0 ranks by cumulative logprob alone). */
  lengthPenalty?: number;
  /**
   * Accepted for parity with vLLM's BeamSearchParams. vLLM's offline beam search ignores it, as this one does
   * (sequences keep their final EOS); its OpenAI server drops a final EOS from the returned text unless it is set.
   */
  includeStopStrInOutput?: boolean;
}

const FIELDS = ['beamWidth', 'maxTokens', 'ignoreEos', 'temperature', 'lengthPenalty', 'includeStopStrInOutput'];

/**
 * Beam search parameters (vLLM's `BeamSearchParams`), validated like SamplingParams.
 *
 * @example
 * const params = new BeamSearchParams({ beamWidth: 4, maxTokens: 32, lengthPenalty: 0.8 });
 */
export class BeamSearchParams {
  readonly beamWidth: number;
  readonly maxTokens: number;
  readonly ignoreEos: boolean;
  readonly temperature: number;
  readonly lengthPenalty: number;
  readonly includeStopStrInOutput: boolean;

  constructor(init: BeamSearchParamsInit) {
    if (typeof init !== 'object' || init === null) throw new InvalidArgumentError('params', 'BeamSearchParams needs { beamWidth, maxTokens, ... }');
    for (const k of Object.keys(init)) {
      if (!FIELDS.includes(k)) throw new InvalidArgumentError(k, `unknown beam search parameter '${k}'`);
    }
    const { beamWidth, maxTokens, ignoreEos = false, temperature = 0, lengthPenalty = 1, includeStopStrInOutput = false } = init;
    const check = (ok: boolean, field: string, message: string) => {
      if (!ok) throw new InvalidArgumentError(field, `${field} ${message}`);
    };
    check(Number.isInteger(beamWidth) && beamWidth >= 1, 'beamWidth', `must be an integer >= 1, got ${beamWidth}.`);
    check(Number.isInteger(maxTokens) && maxTokens >= 1, 'maxTokens', `must be an integer >= 1, got ${maxTokens}.`);
    check(typeof ignoreEos === 'boolean', 'ignoreEos', `must be a boolean, got ${ignoreEos}.`);
    check(typeof temperature === 'number' && Number.isFinite(temperature) && temperature >= 0, 'temperature', `must be non-negative, got ${temperature}.`);
    check(typeof lengthPenalty === 'number' && Number.isFinite(lengthPenalty), 'lengthPenalty', `must be a finite number, got ${lengthPenalty}.`);
    check(typeof includeStopStrInOutput === 'boolean', 'includeStopStrInOutput', `must be a boolean, got ${includeStopStrInOutput}.`);
    this.beamWidth = beamWidth;
    this.maxTokens = maxTokens;
    this.ignoreEos = ignoreEos;
    this.temperature = temperature;
    this.lengthPenalty = lengthPenalty;
    this.includeStopStrInOutput = includeStopStrInOutput;
  }
}

/** One finished beam (vLLM's BeamSearchSequence). */
export interface BeamSearchSequence {
  /** Prompt and output ids, with a final EOS if the beam ended on one (vLLM's `tokens`). */
  tokenIds: number[];
  /** `tokenizer.decode(tokenIds)`: prompt and output, special tokens kept, as vLLM's offline beam search. */
  text: string;
  /** Sum of the output tokens' log-probabilities (raw model distribution). */
  cumulativeLogprob: number;
  /** Per output token, the candidates it was chosen among (the top 2 * beamWidth and the sampled one). */
  logprobs: Map<number, Logprob>[];
  /** 'stop': ended on EOS; 'length': reached maxTokens or the model length. */
  finishReason: 'stop' | 'length';
}

/** The result for one prompt (vLLM's BeamSearchOutput): the best beams, best first. */
export interface BeamSearchOutput {
  sequences: BeamSearchSequence[];
  /** The prompt's ids, so `tokenIds.slice(promptTokenIds.length)` is a sequence's output. */
  promptTokenIds: number[];
}

interface Beam {
  tokens: number[];
  logprobs: Map<number, Logprob>[];
  cum: number;
}

/**
 * vLLM's get_beam_search_score: `cumulativeLogprob / seqLen ** lengthPenalty`, seqLen without a final EOS.
 *
 * @example
 * beamSearchScore([1, 5, 6, 2], -3, 2, 1); // -1: three tokens count (EOS = 2 does not)
 */
export function beamSearchScore(tokens: readonly number[], cumulativeLogprob: number, eosTokenId: number | null, lengthPenalty: number): number {
  const seqLen = tokens.length - (tokens[tokens.length - 1] === eosTokenId ? 1 : 0);
  return cumulativeLogprob / seqLen ** lengthPenalty;
}

/**
 * Runs beam search for each prompt on the engine, all prompts' beams batched in each step (see the top of the file).
 *
 * @example
 * const outs = await beamSearch(llm.engine, ['Once upon a time', { promptTokenIds: [1, 80] }], new BeamSearchParams({ beamWidth: 2, maxTokens: 8 }));
 */
export async function beamSearch(
  engine: LLMEngine,
  prompts: readonly PromptInput[],
  params: BeamSearchParams,
  opts: { signal?: AbortSignal } = {},
): Promise<BeamSearchOutput[]> {
  if (!(params instanceof BeamSearchParams)) throw new InvalidArgumentError('params', 'params must be a BeamSearchParams');
  const { beamWidth, maxTokens, ignoreEos, lengthPenalty } = params;
  const eos = engine.tokenizer.eosTokenId;
  const maxModelLen = engine.runner.limits.maxModelLen;
  // Each step asks for 2 x beamWidth logprobs, which the engine's maxLogprobs caps (as vLLM): say so in beamWidth's terms.
  if (2 * beamWidth > engine.maxLogprobs) {
    throw new InvalidArgumentError('beamWidth', `beamWidth must be at most ${Math.floor(engine.maxLogprobs / 2)}: each step takes 2 x beamWidth logprobs and maxLogprobs (--max-logprobs) is ${engine.maxLogprobs}, got ${beamWidth}.`);
  }
  // Every field the model's generation_config could fill is set, so each step sees exactly these (as vLLM, whose
  // beam search passes its own SamplingParams). Logprobs are the raw distribution's: temperature only changes
  // which extra token gets sampled.
  const step = new SamplingParams({
    maxTokens: 1,
    logprobs: 2 * beamWidth,
    temperature: params.temperature,
    topP: 1,
    topK: 0,
    minP: 0,
    repetitionPenalty: 1,
    detokenize: false,
  });
  // Tokenize and validate every prompt before any step runs.
  const instances = prompts.map((prompt) => {
    const tokens = engine.prepareRequest({ prompt, params: step }).promptTokenIds;
    return { promptTokenIds: tokens, beams: [{ tokens, logprobs: [], cum: 0 }] as Beam[], completed: [] as Beam[] };
  });
  const score = (b: Beam) => beamSearchScore(b.tokens, b.cum, eos, lengthPenalty);
  const byScore = (a: Beam, b: Beam) => score(b) - score(a) || 0; // stable: ties keep candidate order, as Python's sorted

  for (let t = 0; t < maxTokens; t++) {
    // A beam as long as the model allows cannot grow: it is complete (vLLM would silently drop it).
    for (const inst of instances) {
      inst.completed.push(...inst.beams.filter((b) => b.tokens.length >= maxModelLen));
      inst.beams = inst.beams.filter((b) => b.tokens.length < maxModelLen);
    }
    const live = instances.flatMap((inst) => inst.beams.map((beam) => ({ inst, beam })));
    if (live.length === 0) break;
    // An abort stops at the next step boundary; the beams so far are returned.
    if (opts.signal?.aborted) break;
    const requests = live.map(({ beam }) => engine.prepareRequest({ prompt: { promptTokenIds: beam.tokens }, params: step }));
    const abort = () => requests.forEach((r) => engine.abort(r.requestId));
    opts.signal?.addEventListener('abort', abort, { once: true });
    const outputs = await Promise.all(requests.map((r) => engine.submit(r).final()));
    opts.signal?.removeEventListener('abort', abort);
    // Aborted mid-step, some beams have no candidates: keep the beams the step started from.
    if (opts.signal?.aborted) break;
    const candidates = new Map(instances.map((inst) => [inst, [] as Beam[]]));
    live.forEach(({ inst, beam }, i) => {
      const entry = outputs[i].outputs[0].logprobs?.[0];
      if (!entry) return; // no candidates
      for (const [tokenId, lp] of entry) {
        const next: Beam = { tokens: [...beam.tokens, tokenId], logprobs: [...beam.logprobs, entry], cum: beam.cum + lp.logprob };
        if (tokenId === eos && !ignoreEos) inst.completed.push(next);
        else candidates.get(inst)!.push(next);
      }
    });
    for (const inst of instances) inst.beams = candidates.get(inst)!.sort(byScore).slice(0, beamWidth);
  }

  return instances.map((inst) => ({
    promptTokenIds: inst.promptTokenIds,
    sequences: [...inst.completed, ...inst.beams]
      .sort(byScore)
      .slice(0, beamWidth)
      .map((b) => ({
        tokenIds: b.tokens,
        text: engine.tokenizer.decode(b.tokens),
        cumulativeLogprob: b.cum,
        logprobs: b.logprobs,
        finishReason: b.tokens.length > inst.promptTokenIds.length && b.tokens[b.tokens.length - 1] === eos && !ignoreEos ? 'stop' : 'length',
      })),
  }));
}
