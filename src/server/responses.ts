/**
 * POST /v1/responses: OpenAI's Responses API as vLLM serves it (vllm/entrypoints/openai/serving_responses.py), on
 * the chat path: the request becomes a chat request (responses-input.ts), runs through runChatCompletion (same
 * template, sampling, structured outputs, tool-call and reasoning parsers), and the assistant message becomes
 * output items: `reasoning` (with a --reasoning-parser), a `message` with one `output_text` part, `function_call`s.
 * Streaming sends OpenAI's typed events (responses-stream.ts). Responses are not stored (vLLM's default without
 * --enable-store), so `previous_response_id` is a 400 and `store` comes back false.
 */
import { runChatCompletion, type ChatStream } from './chat.js';
import type { RequestMeta } from './completions.js';
import { checkModel, type ServerContext } from './context.js';
import type { ChatCompletionResponse } from './protocol.js';
import { responsesError, toChatRequest, wantsLogprobs } from './responses-input.js';
import { finalStatus, itemId, messageItem, outputLogprobs, reasoningItem, responseBase, responseUsage } from './responses-output.js';
import type { FunctionCallItem, OutputItem, ResponseObject, ResponsesRequest } from './responses-protocol.js';
import { responseEvents, responsesSse } from './responses-stream.js';

/** A non-streamed chat completion as the response's output items, status and usage. */
function fromChat(res: ChatCompletionResponse, base: ResponseObject, logprobs: boolean): ResponseObject {
  const choice = res.choices[0];
  const { status, incomplete_details } = finalStatus(choice.finish_reason);
  const itemStatus = status === 'incomplete' ? 'incomplete' : 'completed';
  const m = choice.message;
  const output: OutputItem[] = [];
  const calls: FunctionCallItem[] = (m.tool_calls as { id: string; function: { name: string; arguments: string } }[]).map((c) => ({
    id: itemId('fc'),
    type: 'function_call',
    call_id: c.id,
    name: c.function.name,
    arguments: c.function.arguments,
    status: 'completed',
  }));
  // Reasoning that text or calls followed is complete (as a streamed one is closed when they begin).
  if (m.reasoning) output.push(reasoningItem(m.reasoning, m.content || calls.length > 0 ? 'completed' : itemStatus));
  // A message when there is text, or when nothing else came out (clients read output_text either way).
  if (m.content || (calls.length === 0 && output.length === 0)) {
    output.push(messageItem(m.content ?? '', logprobs ? outputLogprobs(choice.logprobs?.content) : [], itemStatus));
  }
  output.push(...calls);
  return { ...base, status, incomplete_details, output, usage: responseUsage(res.usage) };
}

export async function createResponse(ctx: ServerContext, body: ResponsesRequest, meta: RequestMeta): Promise<ResponseObject | Response> {
  const model = checkModel(ctx, body.model);
  const base = responseBase(body, `resp_${meta.requestId}`, model);
  const logprobs = wantsLogprobs(body);
  let res: ChatCompletionResponse | ChatStream;
  try {
    res = await runChatCompletion(ctx, toChatRequest(body), meta);
  } catch (err) {
    throw responsesError(err);
  }
  if ('chunks' in res) return responsesSse(responseEvents(res.chunks, base, logprobs, meta.stopped), res.abort);
  return fromChat(res, base, logprobs);
}
