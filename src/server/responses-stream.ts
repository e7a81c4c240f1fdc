/**
 * A streamed response: the chat path's chunks as OpenAI's Responses events, each `event: <type>` with a `data` of
 * `{type, sequence_number, ...}` (numbers from 0, one per event), and no `[DONE]` (OpenAI sends none):
 *
 *   response.created, response.in_progress                      (the response, status in_progress, no output)
 *   per output item, in order (reasoning, then the message, then each function call):
 *     response.output_item.added
 *     reasoning:  content_part.added, reasoning_text.delta..., reasoning_text.done, content_part.done
 *     message:    content_part.added, output_text.delta...,   output_text.done,   content_part.done
 *     call:       function_call_arguments.delta...,            function_call_arguments.done
 *     response.output_item.done
 *   response.completed (or response.incomplete at max_output_tokens) with the whole response and usage.
 *
 * A failure after the stream began (the request timed out, the server shut down, an engine error) cannot change
 * the status line: it comes as an `error` event, then `response.failed` with the response so far.
 */
import { HttpError, toHttpError } from './errors.js';
import type { ChatLogprobContent } from './protocol.js';
import { finalStatus, itemId, messageItem, outputLogprobs, reasoningItem, responseUsage } from './responses-output.js';
import type { FunctionCallItem, OutputItem, OutputMessage, ReasoningItem, ResponseLogprob, ResponseObject } from './responses-protocol.js';

export type ResponseEvent = { type: string; sequence_number: number } & Record<string, unknown>;

/** The parts of a chat chunk read here (chat.ts builds them). */
interface ChatChunk {
  choices: {
    delta: { content?: string; reasoning?: string; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] };
    logprobs: { content: ChatLogprobContent[] | null } | null;
    finish_reason: string | null;
  }[];
  usage?: { prompt_tokens: number; completion_tokens: number };
}

/** The item being streamed: where it is in `output`, and (message, reasoning) its text so far. */
type Open = { kind: 'reasoning'; index: number; item: ReasoningItem } | { kind: 'message'; index: number; item: OutputMessage } | { kind: 'call'; index: number; item: FunctionCallItem };

export async function* responseEvents(
  chunks: AsyncGenerator<Record<string, unknown>>,
  base: ResponseObject,
  logprobs: boolean,
  stopped: () => HttpError | null = () => null,
): AsyncGenerator<ResponseEvent> {
  let seq = 0;
  const ev = (type: string, fields: Record<string, unknown>): ResponseEvent => ({ type, sequence_number: seq++, ...fields });
  const output: OutputItem[] = [];
  const snapshot = (fields: Partial<ResponseObject>): ResponseObject => ({ ...base, output: structuredClone(output), ...fields });
  let open: Open | null = null;
  // A function, not `open?.kind`: TS cannot see that the helper generators below reassign `open`.
  const openKind = (): Open['kind'] | undefined => open?.kind;
  /** Logprobs of tokens whose text the chat path still holds back: they go with the next text delta. */
  let pendingLogprobs: ResponseLogprob[] = [];

  function* close(status: 'completed' | 'incomplete'): Generator<ResponseEvent> {
    if (!open) return;
    const { index: output_index } = open;
    const item_id = open.item.id;
    if (open.kind === 'call') {
      open.item.status = 'completed';
      yield ev('response.function_call_arguments.done', { item_id, output_index, name: open.item.name, arguments: open.item.arguments });
    } else {
      open.item.status = status;
      const part = structuredClone(open.item.content[0]);
      const text = part.text;
      if (open.kind === 'message') yield ev('response.output_text.done', { item_id, output_index, content_index: 0, text, logprobs: (part as OutputMessage['content'][0]).logprobs });
      else yield ev('response.reasoning_text.done', { item_id, output_index, content_index: 0, text });
      yield ev('response.content_part.done', { item_id, output_index, content_index: 0, part });
    }
    yield ev('response.output_item.done', { output_index, item: structuredClone(open.item) });
    open = null;
  }

  /** Opens a reasoning or message item: its added events, with the part empty. */
  function* openText(kind: 'reasoning' | 'message'): Generator<ResponseEvent> {
    const item = kind === 'message' ? messageItem('', [], 'in_progress') : reasoningItem('', 'in_progress');
    const index = output.push(item) - 1;
    open = kind === 'message' ? { kind, index, item: item as OutputMessage } : { kind, index, item: item as ReasoningItem };
    const empty = structuredClone(item.content[0]);
    yield ev('response.output_item.added', { output_index: index, item: { ...structuredClone(item), content: [] } });
    yield ev('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: empty });
  }

  try {
    yield ev('response.created', { response: snapshot({}) });
    yield ev('response.in_progress', { response: snapshot({}) });
    let finishReason: string | null = null;
    let usage: ChatChunk['usage'] = undefined;
    for await (const raw of chunks) {
      const chunk = raw as unknown as ChatChunk;
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices[0];
      if (!c) continue;
      const d = c.delta;
      if (logprobs && c.logprobs?.content) pendingLogprobs.push(...outputLogprobs(c.logprobs.content));
      if (d.reasoning) {
        if (openKind() !== 'reasoning') {
          yield* close('completed');
          yield* openText('reasoning');
        }
        const o = open as unknown as Extract<Open, { kind: 'reasoning' }>;
        o.item.content[0].text += d.reasoning;
        yield ev('response.reasoning_text.delta', { item_id: o.item.id, output_index: o.index, content_index: 0, delta: d.reasoning });
      }
      if (d.content) {
        if (openKind() !== 'message') {
          yield* close('completed');
          yield* openText('message');
        }
        const o = open as unknown as Extract<Open, { kind: 'message' }>;
        const part = o.item.content[0];
        part.text += d.content;
        part.logprobs.push(...pendingLogprobs);
        yield ev('response.output_text.delta', { item_id: o.item.id, output_index: o.index, content_index: 0, delta: d.content, logprobs: pendingLogprobs });
        pendingLogprobs = [];
      }
      for (const tc of d.tool_calls ?? []) {
        // A call's first delta carries its id and name; later ones (a named tool_choice) add arguments.
        if (tc.id !== undefined) {
          yield* close('completed');
          const item: FunctionCallItem = { id: itemId('fc'), type: 'function_call', call_id: tc.id, name: tc.function?.name ?? '', arguments: '', status: 'in_progress' };
          open = { kind: 'call', index: output.push(item) - 1, item };
          yield ev('response.output_item.added', { output_index: open.index, item: structuredClone(item) });
        }
        const args = tc.function?.arguments;
        if (open !== null && (open as Open).kind === 'call' && args) {
          open.item.arguments += args;
          yield ev('response.function_call_arguments.delta', { item_id: open.item.id, output_index: open.index, delta: args });
        }
      }
      if (c.finish_reason !== null) finishReason = c.finish_reason;
    }
    const stop = stopped();
    if (stop) throw stop;
    const { status, incomplete_details } = finalStatus(finishReason);
    const itemStatus = status === 'incomplete' ? 'incomplete' : 'completed';
    // Nothing came out (no text, reasoning or call): an empty message, as the non-streamed response has.
    if (output.length === 0) yield* openText('message');
    yield* close(itemStatus);
    const final = snapshot({ status, incomplete_details, usage: usage ? responseUsage(usage) : null });
    yield ev(status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final });
  } catch (err) {
    // An aborted request's error is its reason (408 timeout, 503 shutdown), not the abort itself.
    const e = stopped() ?? toHttpError(err);
    // OpenAI's error codes are strings; a server-side failure is 'server_error'.
    const code = e.status >= 500 || e.status === 408 ? 'server_error' : 'invalid_request';
    yield ev('error', { code, message: e.message, param: e.param });
    yield ev('response.failed', { response: snapshot({ status: 'failed', error: { code, message: e.message } }) });
  }
}

const encoder = new TextEncoder();

/**
 * The events as server-sent events, pulled one at a time (a slow client slows its request); a client that goes
 * away cancels the stream and `onCancel` aborts the request.
 */
export function responsesSse(events: AsyncGenerator<ResponseEvent>, onCancel: () => void): Response {
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const r = await events.next();
      if (r.done) {
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(`event: ${r.value.type}\ndata: ${JSON.stringify(r.value)}\n\n`));
    },
    cancel() {
      onCancel();
      events.return(undefined).catch(() => {});
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' } });
}
