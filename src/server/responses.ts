/**
 * POST /v1/responses: OpenAI's Responses API as vLLM serves it (vllm/entrypoints/openai/serving_responses.py), on
 * the chat path: the request becomes a chat request (responses-input.ts), runs through runChatCompletion (same
 * template, sampling, structured outputs, tool-call and reasoning parsers), and the assistant message becomes
 * output items: `reasoning` (with a --reasoning-parser), a `message` with one `output_text` part, `function_call`s.
 * Streaming sends OpenAI's typed events (responses-stream.ts).
 *
 * With a store (vLLM's VLLM_ENABLE_RESPONSES_API_STORE=1; responses-store.ts) responses are kept unless a request
 * says `store: false`: `previous_response_id` continues one, GET /v1/responses/{id} reads it, DELETE removes it, and
 * `background: true` answers at once (status 'queued') while it runs, POST .../cancel stopping it. Without a store,
 * as vLLM, `store` is answered false and a previous_response_id is not found.
 */
import { runChatCompletion, type ChatStream } from './chat.js';
import type { RequestMeta } from './completions.js';
import { checkModel, type ServerContext } from './context.js';
import { HttpError } from './errors.js';
import type { ChatCompletionResponse } from './protocol.js';
import { responsesError, toChatRequest, wantsLogprobs, type PreviousTurn } from './responses-input.js';
import { finalStatus, itemId, messageItem, outputLogprobs, reasoningItem, responseBase, responseUsage } from './responses-output.js';
import type { FunctionCallItem, OutputItem, ResponseObject, ResponsesRequest } from './responses-protocol.js';
import { responseEvents, responsesSse, type ResponseEvent } from './responses-stream.js';
import type { ResponseStore } from './responses-store.js';

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

/** vLLM's not-found error (404, param response_id), the id shown at most 128 characters long. */
function notFound(id: string): HttpError {
  const shown = id.length > 128 ? `${id.slice(0, 125)}...` : id;
  return new HttpError(404, `Response with id '${shown}' not found.`, 'response_id');
}

/** The store, or the 404 a server without one gives for any id (vLLM's store is then empty). */
function storeOf(ctx: ServerContext, id: string): ResponseStore {
  if (!ctx.responsesStore) throw notFound(id);
  return ctx.responsesStore;
}

/** vLLM's checks of `store` and `background` (ResponsesRequest's validator, serving_responses' store check). */
function checkStore(ctx: ServerContext, body: ResponsesRequest): boolean {
  const asked = body.store ?? true;
  if (body.background) {
    if (!asked) throw new HttpError(400, 'background can only be used when `store` is true', 'background');
    if (!ctx.responsesStore) {
      throw new HttpError(
        400,
        'This server does not support `store=True` and therefore does not support the background mode. To enable these features, set the environment variable `VLLM_ENABLE_RESPONSES_API_STORE=1` when launching the server (createApp: responsesStore).',
        'background',
      );
    }
    if (body.stream) throw new HttpError(400, 'background responses are not streamed here: poll GET /v1/responses/{id} instead', 'stream');
  }
  // vLLM: a store=True request on a server without a store runs unstored (store is the default, rarely meant).
  return asked && ctx.responsesStore !== null;
}

/** The stored response a request continues (404 when unknown). */
function previousTurn(ctx: ServerContext, id: string | null | undefined): PreviousTurn | null {
  if (id == null) return null;
  const prev = storeOf(ctx, id).get(id);
  if (!prev) throw notFound(id);
  return { messages: prev.messages, output: prev.response.output };
}

export async function createResponse(ctx: ServerContext, body: ResponsesRequest, meta: RequestMeta): Promise<ResponseObject | Response> {
  const model = checkModel(ctx, body.model);
  const stored = checkStore(ctx, body);
  const previous = previousTurn(ctx, body.previous_response_id);
  const base = responseBase(body, itemId('resp'), model, stored);
  const logprobs = wantsLogprobs(body);
  const chatRequest = toChatRequest(body, previous);
  const store = ctx.responsesStore;
  if (body.background && store) return startBackground(ctx, store, body, chatRequest, base, meta);
  let res: ChatCompletionResponse | ChatStream;
  try {
    res = await runChatCompletion(ctx, chatRequest, meta);
  } catch (err) {
    throw responsesError(err);
  }
  const keep = (response: ResponseObject) => stored && store!.put(response, chatRequest.messages);
  if ('chunks' in res) return responsesSse(tapFinal(responseEvents(res.chunks, base, logprobs, meta.stopped), keep), res.abort);
  const response = fromChat(res, base, logprobs);
  keep(response);
  return response;
}

/** The events, passing the finished response (completed, incomplete or failed) to `done` on its way out. */
async function* tapFinal(events: AsyncGenerator<ResponseEvent>, done: (r: ResponseObject) => void): AsyncGenerator<ResponseEvent> {
  for await (const e of events) {
    if (e.type === 'response.completed' || e.type === 'response.incomplete' || e.type === 'response.failed') done(e.response as ResponseObject);
    yield e;
  }
}

/**
 * `background: true`: the response is kept as 'queued' and returned at once; the request runs on, detached from the
 * HTTP request (only a cancel or the server's shutdown stop it), and its result replaces the stored response.
 */
function startBackground(ctx: ServerContext, store: ResponseStore, body: ResponsesRequest, chatRequest: ReturnType<typeof toChatRequest>, base: ResponseObject, meta: RequestMeta): ResponseObject {
  const controller = new AbortController();
  const signal = meta.shutdown ? AbortSignal.any([controller.signal, meta.shutdown]) : controller.signal;
  const queued: ResponseObject = { ...base, status: 'queued' };
  store.put(queued, chatRequest.messages, () => controller.abort());
  const finish = (response: ResponseObject) => {
    // A cancelled response stays cancelled (vLLM); one evicted meanwhile is not brought back.
    if (store.get(base.id)?.response.status === 'cancelled') return;
    store.update(response);
  };
  const run = async () => {
    store.update({ ...base, status: 'in_progress' });
    const entry = store.get(base.id); // evicted already when the store is full of newer responses
    if (entry) entry.cancel = () => controller.abort();
    const res = await runChatCompletion(ctx, { ...chatRequest, stream: false, stream_options: null }, { ...meta, signal, stopped: () => null });
    finish(fromChat(res as ChatCompletionResponse, base, wantsLogprobs(body)));
  };
  run().catch((err) => {
    const e = responsesError(err);
    finish({ ...base, status: 'failed', error: { code: e.status >= 500 ? 'server_error' : 'invalid_request', message: e.message } });
  });
  return queued;
}

/** GET /v1/responses/{id}. */
export function retrieveResponse(ctx: ServerContext, id: string, stream: boolean): ResponseObject {
  // vLLM replays a background stream's events; background responses are not streamed here.
  if (stream) throw new HttpError(400, 'stream=true is not supported: background responses are not streamed here', 'stream');
  const found = storeOf(ctx, id).get(id);
  if (!found) throw notFound(id);
  return found.response;
}

/** POST /v1/responses/{id}/cancel: only a background response still queued or running can be cancelled. */
export function cancelResponse(ctx: ServerContext, id: string): ResponseObject {
  const store = storeOf(ctx, id);
  const found = store.get(id);
  if (!found) throw notFound(id);
  const status = found.response.status;
  if (status !== 'queued' && status !== 'in_progress') throw new HttpError(400, 'Cannot cancel a synchronous response.', 'response_id');
  const cancelled: ResponseObject = { ...found.response, status: 'cancelled' };
  const cancel = found.cancel;
  store.update(cancelled);
  cancel?.();
  return cancelled;
}

/** DELETE /v1/responses/{id} (OpenAI's; vLLM has no delete route): `{ id, object: 'response', deleted: true }`. */
export function deleteResponse(ctx: ServerContext, id: string): { id: string; object: 'response'; deleted: true } {
  if (!storeOf(ctx, id).delete(id)) throw notFound(id);
  return { id, object: 'response', deleted: true };
}
