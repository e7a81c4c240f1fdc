/**
 * The pieces of a Responses API response, shared by the whole response (responses.ts) and the streamed one
 * (responses-stream.ts): the response object echoing the request, output items, usage and the final status.
 */
import { unixTime } from './context.js';
import type { ChatLogprobContent } from './protocol.js';
import type { OutputMessage, ReasoningItem, ResponseLogprob, ResponseObject, ResponsesRequest, ResponseUsage } from './responses-protocol.js';

/** A fresh item id: OpenAI's prefix (msg, fc, rs) and 32 hex digits. */
export function itemId(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replaceAll('-', '')}`;
}

/**
 * The response object's fields that do not change while it runs (the request's, echoed); `stored`: whether the
 * server keeps it (vLLM answers `store: false` when its store is off, whatever the request said).
 */
export function responseBase(body: ResponsesRequest, id: string, model: string, stored = false): ResponseObject {
  return {
    id,
    object: 'response',
    created_at: unixTime(),
    status: 'in_progress',
    background: body.background ?? false,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: body.max_tool_calls ?? null,
    metadata: body.metadata ?? {},
    model,
    output: [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: body.reasoning ? { effort: body.reasoning.effort ?? null, summary: body.reasoning.summary ?? null } : null,
    service_tier: body.service_tier ?? 'auto',
    store: stored,
    temperature: body.temperature ?? null,
    text: { format: body.text?.format ?? { type: 'text' } },
    tool_choice: body.tool_choice ?? (body.tools?.length ? 'auto' : 'none'),
    tools: body.tools ?? [],
    top_logprobs: body.top_logprobs ?? null,
    top_p: body.top_p ?? null,
    truncation: 'disabled',
    usage: null,
    user: body.user ?? null,
  };
}

/** Chat's usage in the Responses form. Cached and reasoning token counts are not tracked per request: 0. */
export function responseUsage(u: { prompt_tokens: number; completion_tokens: number }): ResponseUsage {
  return {
    input_tokens: u.prompt_tokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: u.completion_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: u.prompt_tokens + u.completion_tokens,
  };
}

/** Chat's logprobs entries as output_text logprobs (same fields, nested the Responses way). */
export function outputLogprobs(content: ChatLogprobContent[] | null | undefined): ResponseLogprob[] {
  return (content ?? []).map((c) => ({ token: c.token, logprob: c.logprob, bytes: c.bytes, top_logprobs: c.top_logprobs }));
}

/** The finished state: 'length' (max_output_tokens or the model length) leaves the response incomplete. */
export function finalStatus(finishReason: string | null): Pick<ResponseObject, 'status' | 'incomplete_details'> {
  return finishReason === 'length' ? { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } } : { status: 'completed', incomplete_details: null };
}

export const reasoningItem = (text: string, status: ReasoningItem['status']): ReasoningItem => ({
  id: itemId('rs'),
  type: 'reasoning',
  summary: [],
  content: [{ type: 'reasoning_text', text }],
  encrypted_content: null,
  status,
});

export const messageItem = (text: string, logprobs: ResponseLogprob[], status: OutputMessage['status']): OutputMessage => ({
  id: itemId('msg'),
  type: 'message',
  role: 'assistant',
  status,
  content: [{ type: 'output_text', text, annotations: [], logprobs }],
});
