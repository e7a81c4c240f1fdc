/**
 * Request body -> SamplingParams: OpenAI's and vLLM's snake_case fields to SamplingParams' camelCase ones. Only the
 * fields the client sent are set, so the model's generation_config.json fills the rest (as vLLM does).
 */
import type { SamplingParamsInit } from '../sampling-params.js';
import { HttpError } from './errors.js';
import { structuredOutputsOf } from './structured.js';
import type { ChatCompletionRequest, CompletionRequest } from './protocol.js';

const v = <T>(x: T | null | undefined): T | undefined => (x === null ? undefined : x);

/** The sampling fields both endpoints share. */
function common(req: CompletionRequest | ChatCompletionRequest): SamplingParamsInit {
  const structured = structuredOutputsOf(req);
  if (req.guided_whitespace_pattern != null) throw new HttpError(400, 'guided_whitespace_pattern is not supported (xgrammar has no whitespace pattern)', 'guided_whitespace_pattern');
  if (req.stream_options && !req.stream) {
    throw new HttpError(400, 'stream_options can only be given when stream is true', 'stream_options');
  }
  // logprobs and prompt_logprobs are checked against the engine's maxLogprobs when the request is prepared.
  // vLLM's protocol checks (completion and chat protocol.py model validators).
  const pl = req.prompt_logprobs;
  if (req.stream && pl != null && (pl > 0 || pl === -1)) {
    throw new HttpError(400, '`prompt_logprobs` are not available when `stream=True`.', 'prompt_logprobs');
  }
  if (req.use_beam_search && req.logprob_token_ids?.length) {
    throw new HttpError(400, '`logprob_token_ids` is not supported with beam search (use_beam_search).', 'logprob_token_ids');
  }
  if (req.stream && req.use_beam_search) throw new HttpError(400, 'Streaming is not supported with beam search (use_beam_search).', 'stream');
  const bias = req.logit_bias ? Object.entries(req.logit_bias) : undefined;
  // vLLM names every key that is not a token id, not only the first.
  const badKeys = bias?.filter(([k]) => !/^\d+$/.test(k)).map(([k]) => k) ?? [];
  if (badKeys.length > 0) {
    throw new HttpError(400, `logit_bias contains key(s) that cannot be converted to integer token IDs: ${JSON.stringify(badKeys)}`, 'logit_bias');
  }
  const logitBias = bias ? Object.fromEntries(bias.map(([k, b]) => [Number(k), b])) : undefined;
  return {
    n: v(req.n),
    bestOf: v(req.best_of),
    presencePenalty: v(req.presence_penalty),
    frequencyPenalty: v(req.frequency_penalty),
    repetitionPenalty: v(req.repetition_penalty),
    temperature: v(req.temperature),
    topP: v(req.top_p),
    topK: v(req.top_k),
    minP: v(req.min_p),
    seed: v(req.seed),
    stop: v(req.stop),
    stopTokenIds: v(req.stop_token_ids),
    includeStopStrInOutput: v(req.include_stop_str_in_output),
    ignoreEos: v(req.ignore_eos),
    minTokens: v(req.min_tokens),
    promptLogprobs: v(req.prompt_logprobs),
    skipSpecialTokens: v(req.skip_special_tokens),
    spacesBetweenSpecialTokens: v(req.spaces_between_special_tokens),
    logitBias,
    allowedTokenIds: v(req.allowed_token_ids),
    badWords: v(req.bad_words),
    truncatePromptTokens: v(req.truncate_prompt_tokens),
    thinkingTokenBudget: v(req.thinking_token_budget),
    streamInterval: v(req.stream_interval),
    repetitionDetection: req.repetition_detection
      ? { maxPatternSize: v(req.repetition_detection.max_pattern_size), minPatternSize: v(req.repetition_detection.min_pattern_size), minCount: v(req.repetition_detection.min_count) }
      : undefined,
    structuredOutputs: structured?.params,
    // The server consumes every request as deltas: it streams them, or joins them.
    outputKind: 'delta',
  };
}

/** /v1/completions: OpenAI's `max_tokens` defaults to 16; `logprobs` is the number of top tokens (0..20). */
export function completionSamplingInit(req: CompletionRequest): SamplingParamsInit {
  if (req.suffix !== undefined && req.suffix !== null) {
    throw new HttpError(400, 'suffix is not supported: this server does not do fill-in-the-middle', 'suffix');
  }
  const init = common(req);
  const ids = req.logprob_token_ids;
  if (ids?.length && echoOnly(req)) {
    throw new HttpError(400, '`logprob_token_ids` needs generated positions: echo with max_tokens 0 generates none (the prompt uses prompt_logprobs).', 'logprob_token_ids');
  }
  // vLLM: absent or null, max_tokens is 16; echo with max_tokens 0 returns the prompt alone (one token is
  // computed, for the prompt's logprobs, and not shown).
  init.maxTokens = echoOnly(req) ? 1 : (req.max_tokens ?? 16);
  init.logprobs = v(req.logprobs);
  // vLLM: with `logprobs` on, non-empty ids replace the top-k (the count then is theirs); an empty list changes nothing.
  if (ids?.length && req.logprobs != null) Object.assign(init, { logprobs: ids.length, logprobTokenIds: ids });
  // vLLM: echo with logprobs also returns the prompt's logprobs.
  if (req.echo && req.logprobs != null && init.promptLogprobs === undefined) init.promptLogprobs = req.logprobs;
  return init;
}

/** A completion request that only echoes its prompt (`echo` with `max_tokens: 0`). */
export function echoOnly(req: CompletionRequest): boolean {
  return req.echo === true && req.max_tokens === 0;
}

/** /v1/chat/completions: `max_completion_tokens` wins over `max_tokens`; `logprobs` is a flag, `top_logprobs` the count. */
export function chatSamplingInit(req: ChatCompletionRequest, maxLogprobs: number): SamplingParamsInit {
  const top = req.top_logprobs;
  // Checked here, not by the engine: it becomes the engine's `logprobs`, and the error must name top_logprobs.
  if (top != null && (top < 0 || top > maxLogprobs)) {
    throw new HttpError(400, `top_logprobs must be in [0, ${maxLogprobs}], got ${top}`, 'top_logprobs');
  }
  if (top != null && top > 0 && !req.logprobs) {
    throw new HttpError(400, 'top_logprobs needs logprobs set to true', 'top_logprobs');
  }
  const init = common(req);
  init.maxTokens = v(req.max_completion_tokens) ?? v(req.max_tokens);
  if (req.logprobs) init.logprobs = top ?? 0;
  // vLLM: with `logprobs` on, non-empty ids replace the top_logprobs (their count no longer has to match).
  if (req.logprobs && req.logprob_token_ids?.length) Object.assign(init, { logprobs: req.logprob_token_ids.length, logprobTokenIds: req.logprob_token_ids });
  return init;
}
