/**
 * POST /v1/responses on the wire: the request as a zod schema (OpenAI's Responses API fields and the extras vLLM's
 * ResponsesRequest takes, vllm/entrypoints/openai/responses/protocol.py) and the response object, output items,
 * usage and stream events as types. Keys keep OpenAI's snake_case. Input items, tools and `text.format` are kept
 * loose here and checked field by field in responses-input.ts, so a bad one gets a message naming it
 * (`input[2].content[0].type`) instead of a union's "invalid input".
 */
import { z } from 'zod';

/** Bounds on what one request may carry (the body limit bounds bytes; these bound the work per item). */
export const RESPONSES_LIMITS = {
  /** Input items (messages, function calls and outputs) in one request. */
  inputItems: 4096,
  /** Content parts in one message item. */
  contentParts: 1024,
  /** Function tools (OpenAI allows 128 as well). */
  tools: 128,
  /** OpenAI's metadata limits: 16 pairs, keys up to 64 characters, values up to 512. */
  metadataPairs: 16,
  metadataKey: 64,
  metadataValue: 512,
} as const;

const int = z.number().int();
const loose = z.object({}).loose();

export const ResponsesRequest = z.object({
  model: z.string().nullish(),
  input: z.union([z.string(), z.array(loose)]),
  instructions: z.string().nullish(),
  max_output_tokens: int.nullish(),
  max_tool_calls: int.nullish(),
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  top_logprobs: int.nullish(),
  stream: z.boolean().nullish(),
  stream_options: loose.nullish(),
  tools: z.array(z.object({ type: z.string() }).loose()).max(RESPONSES_LIMITS.tools).nullish(),
  tool_choice: z.union([z.string(), z.object({ type: z.string() }).loose()]).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  text: z.object({ format: z.object({ type: z.string() }).loose().nullish(), verbosity: z.string().nullish() }).loose().nullish(),
  reasoning: z.object({ effort: z.string().nullish(), summary: z.string().nullish(), generate_summary: z.string().nullish() }).loose().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  user: z.string().nullish(),
  store: z.boolean().nullish(),
  previous_response_id: z.string().nullish(),
  background: z.boolean().nullish(),
  include: z.array(z.string()).max(16).nullish(),
  truncation: z.enum(['auto', 'disabled']).nullish(),
  service_tier: z.string().nullish(),
  prompt_cache_key: z.string().nullish(),
  safety_identifier: z.string().nullish(),
  // Fields vLLM refuses or we cannot serve: present (not null) -> 400 naming them (responses-input.ts).
  prompt: z.unknown().optional(),
  conversation: z.unknown().optional(),
  // vLLM's extras (its ResponsesRequest), passed to the chat path as they are.
  top_k: int.nullish(),
  seed: int.nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  presence_penalty: z.number().nullish(),
  frequency_penalty: z.number().nullish(),
  repetition_penalty: z.number().nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
  ignore_eos: z.boolean().nullish(),
  skip_special_tokens: z.boolean().nullish(),
  include_stop_str_in_output: z.boolean().nullish(),
  structured_outputs: z.record(z.string(), z.unknown()).nullish(),
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  priority: int.nullish(),
});
export type ResponsesRequest = z.infer<typeof ResponsesRequest>;

// ---- The response object ----------------------------------------------------------------------------------------

export interface ResponseLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
  top_logprobs: { token: string; logprob: number; bytes: number[] | null }[];
}

export interface OutputText {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs: ResponseLogprob[];
}

export interface ReasoningText {
  type: 'reasoning_text';
  text: string;
}

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete';

export interface OutputMessage {
  id: string;
  type: 'message';
  role: 'assistant';
  status: ItemStatus;
  content: OutputText[];
}

export interface FunctionCallItem {
  id: string;
  type: 'function_call';
  call_id: string;
  name: string;
  arguments: string;
  status: ItemStatus;
}

export interface ReasoningItem {
  id: string;
  type: 'reasoning';
  summary: unknown[];
  content: ReasoningText[];
  encrypted_content: null;
  status: ItemStatus;
}

export type OutputItem = OutputMessage | FunctionCallItem | ReasoningItem;

export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export type ResponseStatus = 'completed' | 'incomplete' | 'in_progress' | 'failed' | 'queued' | 'cancelled';

/** OpenAI's Response object; request fields are echoed as the client sent them (null when absent). */
export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  status: ResponseStatus;
  background: boolean;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: 'max_output_tokens' } | null;
  instructions: string | null;
  max_output_tokens: number | null;
  max_tool_calls: number | null;
  metadata: Record<string, string>;
  model: string;
  output: OutputItem[];
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  reasoning: { effort: string | null; summary: string | null } | null;
  service_tier: string;
  store: boolean;
  temperature: number | null;
  text: { format: Record<string, unknown> };
  tool_choice: unknown;
  tools: unknown[];
  top_logprobs: number | null;
  top_p: number | null;
  truncation: 'disabled';
  usage: ResponseUsage | null;
  user: string | null;
}
