/**
 * The wire protocol: request bodies as zod schemas (OpenAI's fields plus vLLM's extras, vllm/entrypoints/openai/
 * protocol.py) and response bodies as types. Keys keep OpenAI's snake_case. Types and shapes are checked here;
 * value ranges are SamplingParams' job (its InvalidArgumentError names the field). Unknown fields are ignored, as
 * vLLM does, except the few that would silently change the meaning of a request (`suffix`).
 */
import { z } from 'zod';

const int = z.number().int();
const tokenIds = z.array(int.nonnegative());

/** Sampling fields shared by completions and chat: OpenAI's, then vLLM's extras. */
const samplingFields = {
  model: z.string().nullish(),
  n: int.nullish(),
  best_of: int.nullish(),
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  seed: int.nullish(),
  presence_penalty: z.number().nullish(),
  frequency_penalty: z.number().nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
  user: z.string().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z
    .object({ include_usage: z.boolean().nullish(), continuous_usage_stats: z.boolean().nullish() })
    .nullish(),
  response_format: z.object({ type: z.string() }).loose().nullish(),
  // vLLM's extras.
  top_k: int.nullish(),
  min_p: z.number().nullish(),
  repetition_penalty: z.number().nullish(),
  min_tokens: int.nullish(),
  ignore_eos: z.boolean().nullish(),
  stop_token_ids: tokenIds.nullish(),
  include_stop_str_in_output: z.boolean().nullish(),
  skip_special_tokens: z.boolean().nullish(),
  spaces_between_special_tokens: z.boolean().nullish(),
  allowed_token_ids: tokenIds.nullish(),
  bad_words: z.array(z.string()).nullish(),
  prompt_logprobs: int.nullish(),
  logprob_token_ids: z.array(int).nullish(),
  thinking_token_budget: int.nullish(),
  stream_interval: int.nullish(),
  repetition_detection: z.object({ max_pattern_size: int.nullish(), min_pattern_size: int.nullish(), min_count: int.nullish() }).strict().nullish(),
  truncate_prompt_tokens: int.nullish(),
  truncation_side: z.enum(['left', 'right']).nullish(),
  return_token_ids: z.boolean().nullish(),
  return_tokens_as_token_ids: z.boolean().nullish(),
  use_beam_search: z.boolean().nullish(),
  length_penalty: z.number().nullish(),
  add_special_tokens: z.boolean().nullish(),
  priority: int.nullish(),
  // Structured outputs (src/server/structured.ts): vLLM's extra body, and its older guided_* names.
  structured_outputs: z.record(z.string(), z.unknown()).nullish(),
  guided_json: z.union([z.string(), z.record(z.string(), z.unknown())]).nullish(),
  guided_regex: z.string().nullish(),
  guided_choice: z.array(z.string()).nullish(),
  guided_grammar: z.string().nullish(),
  guided_whitespace_pattern: z.string().nullish(),
  guided_decoding_backend: z.string().nullish(),
};

/** POST /v1/completions. */
export const CompletionRequest = z.object({
  ...samplingFields,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1),
    tokenIds.min(1),
    z.array(tokenIds.min(1)).min(1),
  ]),
  max_tokens: int.nullish(),
  logprobs: int.nullish(),
  echo: z.boolean().nullish(),
  suffix: z.unknown().optional(),
});
export type CompletionRequest = z.infer<typeof CompletionRequest>;

const ContentPart = z.object({ type: z.string(), text: z.string().optional() }).loose();

const ChatMessage = z
  .object({
    role: z.string(),
    content: z.union([z.string(), z.array(ContentPart)]).nullish(),
    name: z.string().nullish(),
    tool_call_id: z.string().nullish(),
    tool_calls: z.array(z.unknown()).nullish(),
  })
  .loose();
export type ChatMessageIn = z.infer<typeof ChatMessage>;

/** POST /v1/chat/completions. */
export const ChatCompletionRequest = z.object({
  ...samplingFields,
  messages: z.array(ChatMessage).min(1),
  max_tokens: int.nullish(),
  max_completion_tokens: int.nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: int.nullish(),
  tools: z.array(z.object({ type: z.string(), function: z.object({ name: z.string() }).loose() }).loose()).nullish(),
  tool_choice: z
    .union([z.enum(['none', 'auto', 'required']), z.object({ type: z.string(), function: z.object({ name: z.string() }) })])
    .nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  documents: z.array(z.record(z.string(), z.string())).nullish(),
  chat_template: z.string().nullish(),
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  add_generation_prompt: z.boolean().nullish(),
  continue_final_message: z.boolean().nullish(),
  echo: z.boolean().nullish(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** POST /tokenize: vLLM's completion form or chat form. */
export const TokenizeRequest = z.union([
  z.object({
    model: z.string().nullish(),
    prompt: z.string(),
    add_special_tokens: z.boolean().nullish(),
    return_token_strs: z.boolean().nullish(),
  }),
  z.object({
    model: z.string().nullish(),
    messages: z.array(ChatMessage).min(1),
    add_generation_prompt: z.boolean().nullish(),
    continue_final_message: z.boolean().nullish(),
    add_special_tokens: z.boolean().nullish(),
    return_token_strs: z.boolean().nullish(),
    chat_template: z.string().nullish(),
    chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
    tools: z.array(z.object({ type: z.string() }).loose()).nullish(),
  }),
]);
export type TokenizeRequest = z.infer<typeof TokenizeRequest>;

/** POST /detokenize. */
export const DetokenizeRequest = z.object({ model: z.string().nullish(), tokens: tokenIds });
export type DetokenizeRequest = z.infer<typeof DetokenizeRequest>;

/** SamplingParams field -> the request field that sets it (for error messages). */
const WIRE: Record<string, string> = {
  n: 'n',
  bestOf: 'best_of',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
  repetitionPenalty: 'repetition_penalty',
  temperature: 'temperature',
  topP: 'top_p',
  topK: 'top_k',
  minP: 'min_p',
  seed: 'seed',
  stop: 'stop',
  stopTokenIds: 'stop_token_ids',
  includeStopStrInOutput: 'include_stop_str_in_output',
  ignoreEos: 'ignore_eos',
  maxTokens: 'max_tokens',
  minTokens: 'min_tokens',
  logprobs: 'logprobs',
  promptLogprobs: 'prompt_logprobs',
  logprobTokenIds: 'logprob_token_ids',
  thinkingTokenBudget: 'thinking_token_budget',
  repetitionDetection: 'repetition_detection',
  streamInterval: 'stream_interval',
  skipSpecialTokens: 'skip_special_tokens',
  spacesBetweenSpecialTokens: 'spaces_between_special_tokens',
  logitBias: 'logit_bias',
  allowedTokenIds: 'allowed_token_ids',
  badWords: 'bad_words',
  truncatePromptTokens: 'truncate_prompt_tokens',
  structuredOutputs: 'structured_outputs',
  promptTokenIds: 'prompt',
  chatTemplate: 'chat_template',
  chatTemplateKwargs: 'chat_template_kwargs',
  addGenerationPrompt: 'add_generation_prompt',
  continueFinalMessage: 'continue_final_message',
  beamWidth: 'n',
  lengthPenalty: 'length_penalty',
};

/** The wire name of a SamplingParams / engine field (`topP` -> `top_p`); other names pass through. */
export function wireName(field: string): string {
  return WIRE[field] ?? field;
}

// ---- Responses -------------------------------------------------------------------------------------------------

export interface UsageInfo {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** Completions' logprobs (OpenAI's legacy shape), one entry per token. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  finish_reason: string | null;
  /** vLLM's extra: the stop string or token id that ended the choice. */
  stop_reason: string | number | null;
  /** vLLM's extras: the prompt's logprobs (with prompt_logprobs), its ids and the choice's (with return_token_ids). */
  prompt_logprobs?: PromptLogprobsWire | null;
  prompt_token_ids?: number[] | null;
  token_ids?: number[] | null;
}

/** vLLM's Logprob as JSON. */
export interface LogprobWire {
  logprob: number;
  rank: number | null;
  decoded_token: string | null;
}
/** Prompt logprobs on the wire: per prompt position, token id -> Logprob (null for the first position). */
export type PromptLogprobsWire = (Record<string, LogprobWire> | null)[];

export interface CompletionResponse {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage: UsageInfo | null;
}

export interface ChatLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}
export interface ChatLogprobContent extends ChatLogprob {
  top_logprobs: ChatLogprob[];
}
export interface ChatChoiceLogprobs {
  content: ChatLogprobContent[] | null;
}

export interface ChatCompletionChoice {
  index: number;
  /** content is null when the message is tool calls (OpenAI's shape); reasoning with a --reasoning-parser. */
  message: { role: 'assistant'; content: string | null; tool_calls: unknown[]; reasoning?: string | null; reasoning_content?: string | null };
  logprobs: ChatChoiceLogprobs | null;
  finish_reason: string | null;
  stop_reason: string | number | null;
  /** vLLM's extra with return_token_ids: the choice's generated ids. */
  token_ids?: number[] | null;
}

export interface ChatCompletionResponse {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage: UsageInfo;
  /** vLLM's extras: the rendered prompt's logprobs (prompt_logprobs) and ids (return_token_ids). */
  prompt_logprobs?: PromptLogprobsWire | null;
  prompt_token_ids?: number[] | null;
}

export interface ChatCompletionChunkChoice {
  index: number;
  delta: { role?: 'assistant'; content?: string; tool_calls?: unknown[]; reasoning?: string; reasoning_content?: string };
  logprobs: ChatChoiceLogprobs | null;
  finish_reason: string | null;
  stop_reason?: string | number | null;
  token_ids?: number[] | null;
}
