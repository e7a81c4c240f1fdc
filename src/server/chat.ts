/**
 * POST /v1/chat/completions: the messages rendered by the chat template (the request's, the server's, else the
 * model's), then generation as for completions. Streaming sends each choice's role delta first, then content
 * deltas, the finish reason on the last, and usage (when asked) in a chunk with no choices.
 */
import { applyChatTemplate, type ChatMessage, type ChatTool } from '../chat/index.js';
import { InvalidArgumentError } from '../errors.js';
import { checkModel, checkPromptChars, stringChars, unixTime, type ServerContext } from './context.js';
import type { RequestMeta } from './completions.js';
import { HttpError } from './errors.js';
import { compileGrammars, prepareBatch, runBatch, type TaggedOutput } from './generate.js';
import { chatLogprobs, promptLogprobsWire, requestTokenTexts } from './logprobs.js';
import type {
  ChatChoiceLogprobs,
  ChatCompletionChoice,
  ChatCompletionChunkChoice,
  ChatCompletionRequest,
  ChatCompletionResponse,
  ChatLogprobContent,
  ChatMessageIn,
} from './protocol.js';
import { chatSamplingInit } from './sampling.js';
import { sseResponse } from './sse.js';
import { MessageBuilder, type MessageOptions } from './chat-message.js';
import { forcedTools, hasKind, structuredOutputsOf, withOptions } from './structured.js';

/** The template's options as a chat request (or a chat-form /tokenize) gives them. */
export interface TemplateRequest {
  messages: ChatMessageIn[];
  chat_template?: string | null;
  chat_template_kwargs?: Record<string, unknown> | null;
  add_generation_prompt?: boolean | null;
  continue_final_message?: boolean | null;
  add_special_tokens?: boolean | null;
  tools?: unknown[] | null;
  documents?: Record<string, string>[] | null;
}

/** Renders and tokenizes the conversation; template problems are the client's (400). */
export function renderChat(ctx: ServerContext, req: TemplateRequest): { prompt: string; promptTokenIds: number[] } {
  const addGenerationPrompt = req.add_generation_prompt ?? true;
  const continueFinalMessage = req.continue_final_message ?? false;
  if (addGenerationPrompt && continueFinalMessage) {
    throw new HttpError(400, 'Cannot set both `continue_final_message` and `add_generation_prompt` to true.', 'continue_final_message');
  }
  checkPromptChars(ctx, stringChars(req.messages) + stringChars(req.tools) + stringChars(req.documents), 'messages');
  // vLLM: a template is code; a request's runs only on a server that trusts requests with it.
  const requestTemplate = req.chat_template ?? req.chat_template_kwargs?.chat_template;
  if (requestTemplate !== undefined && requestTemplate !== null && !ctx.trustRequestChatTemplate) {
    throw new HttpError(
      400,
      'Chat template is passed with request, but --trust-request-chat-template is not set. Refused request with untrusted chat template.',
      'chat_template',
    );
  }
  // Absent and null are the same to a client; the template module validates roles and content parts.
  const messages = req.messages.map((m) => Object.fromEntries(Object.entries(m).filter(([, v]) => v !== null)) as unknown as ChatMessage);
  try {
    return applyChatTemplate(ctx.tokenizer, messages, {
      chatTemplate: req.chat_template ?? ctx.chatTemplate ?? undefined,
      addGenerationPrompt,
      continueFinalMessage,
      tools: (req.tools ?? undefined) as ChatTool[] | undefined,
      documents: req.documents ?? undefined,
      chatTemplateKwargs: req.chat_template_kwargs ?? undefined,
      addSpecialTokens: req.add_special_tokens ?? false,
      renderBudget: ctx.templateBudget,
    });
  } catch (err) {
    if (err instanceof InvalidArgumentError || err instanceof HttpError) throw err;
    throw new HttpError(400, `the chat template failed: ${err instanceof Error ? err.message : String(err)}`, 'messages');
  }
}

/** One choice being assembled from deltas. */
interface ChoiceState {
  content: string;
  numTokens: number;
  logprobs: ChatLogprobContent[] | null;
  finishReason: string | null;
  stopReason: string | number | null;
  /** The last token so far (context for the next token's string). */
  prev: number | null;
  /** The assistant message: content, tool calls, reasoning. */
  builder: MessageBuilder;
  /** Generated ids (return_token_ids). */
  tokenIds: number[];
}

/**
 * vLLM's tool checks (protocol.py check_tool_usage, serving_chat): `tools: []` is refused; tools without a
 * tool_choice mean 'auto'; a tool_choice other than 'none' needs tools; 'auto' needs a server that parses calls
 * (--enable-auto-tool-choice --tool-call-parser), or the client would silently get no calls.
 */
function checkToolUsage(ctx: ServerContext, body: ChatCompletionRequest): void {
  if (body.tools && body.tools.length === 0) {
    throw new HttpError(400, '`tools` must not be an empty array. Either provide at least one tool or omit the field entirely.', 'tools');
  }
  const choice = body.tool_choice ?? (body.tools ? 'auto' : 'none');
  if (choice === 'none') return;
  if (!body.tools) throw new HttpError(400, 'When using `tool_choice`, `tools` must be set.', 'tool_choice');
  if (choice === 'auto' && !ctx.toolParser) {
    throw new HttpError(400, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', 'tool_choice');
  }
}

/** A streamed chat completion before it becomes SSE: its chunk objects, and how to abort its requests. */
export interface ChatStream {
  chunks: AsyncGenerator<Record<string, unknown>>;
  abort: () => void;
}

export async function createChatCompletion(ctx: ServerContext, body: ChatCompletionRequest, meta: RequestMeta): Promise<ChatCompletionResponse | Response> {
  const res = await runChatCompletion(ctx, body, meta);
  return 'chunks' in res ? sseResponse(res.chunks, res.abort, meta.stopped) : res;
}

/**
 * The chat path itself: the whole response, or (`stream`) the chunks unsent. POST /v1/responses runs on it too, so
 * both routes render, sample and parse tool calls and reasoning the same way.
 */
export async function runChatCompletion(ctx: ServerContext, body: ChatCompletionRequest, meta: RequestMeta): Promise<ChatCompletionResponse | ChatStream> {
  const model = checkModel(ctx, body.model);
  checkToolUsage(ctx, body);
  const init = chatSamplingInit(body, ctx.engine.maxLogprobs);
  // tool_choice 'required' or a named function: the output is constrained to valid calls (vLLM does the same).
  const forced = forcedTools(body);
  if (forced) {
    if (init.structuredOutputs && hasKind(init.structuredOutputs)) {
      throw new HttpError(400, `tool_choice ${JSON.stringify(body.tool_choice)} cannot be combined with ${structuredOutputsOf(body)!.param}`, 'tool_choice');
    }
    init.structuredOutputs = withOptions(body, forced.structured).params;
  }
  // tool_choice 'auto' (the default with tools) parses calls out of the text when the server has a tool-call parser.
  const toolParser = !forced && ctx.toolParser && body.tools?.length && (body.tool_choice ?? 'auto') === 'auto' ? ctx.toolParser : null;
  if (toolParser?.needsSpecialTokens && init.skipSpecialTokens === undefined) init.skipSpecialTokens = false;
  const messageOptions: MessageOptions = { forced: forced && { ...forced, structured: forced.structured.params }, toolParser, reasoning: ctx.reasoningParser };
  const rendered = renderChat(ctx, body);
  const id = `chatcmpl-${meta.requestId}`;
  const batch = prepareBatch(ctx, [{ prompt: rendered, init, maxTokensExplicit: body.max_completion_tokens != null || body.max_tokens != null }], `${id}-${ctx.nextSeq()}`, {
    useBeamSearch: body.use_beam_search ?? false,
    lengthPenalty: body.length_penalty ?? null,
    priority: body.priority ?? 0,
    truncationSide: body.truncation_side,
  });
  await compileGrammars(ctx, batch, forced?.structured.param ?? structuredOutputsOf(body)?.param ?? 'structured_outputs');
  const n = batch.beam ? batch.beam.beamWidth : batch.prepared[0].params.n;
  const promptTokens = batch.prepared[0].promptTokenIds.length;
  const topLogprobs = body.logprobs ? (body.top_logprobs ?? 0) : null;
  const text = requestTokenTexts(ctx.tokenizer, body.return_tokens_as_token_ids ?? ctx.returnTokensAsTokenIds);
  let promptLogprobs: TaggedOutput['out']['promptLogprobs'] = null;
  // vLLM's chat `echo`: the final assistant message (being continued) comes back before the new text.
  const last = body.messages[body.messages.length - 1];
  const echo = body.echo && last.role === 'assistant' && typeof last.content === 'string' ? last.content : '';
  const created = unixTime();
  const controller = new AbortController();
  const abort = () => controller.abort();
  if (meta.signal.aborted) abort();
  meta.signal.addEventListener('abort', abort, { once: true });
  const outputs = runBatch(ctx, batch, controller.signal);

  const states = new Map<number, ChoiceState>();
  /** The delta of each choice that `t` advanced. */
  function* deltas(t: TaggedOutput): Generator<{ index: number; s: ChoiceState; text: string; ids: number[]; logprobs: ChatChoiceLogprobs | null; finish: string | null; stop: string | number | null }> {
    for (const o of t.out.outputs) {
      let s = states.get(o.index);
      if (!s) {
        s = {
          content: '',
          numTokens: 0,
          logprobs: topLogprobs !== null ? [] : null,
          finishReason: null,
          stopReason: null,
          prev: t.out.promptTokenIds.at(-1) ?? null,
          builder: new MessageBuilder(messageOptions),
          tokenIds: [],
        };
        states.set(o.index, s);
      }
      const lp = topLogprobs !== null && o.logprobs ? chatLogprobs(o.tokenIds, o.logprobs, topLogprobs, text, s.prev, body.logprob_token_ids) : null;
      s.prev = o.tokenIds.at(-1) ?? s.prev;
      s.content += o.text;
      s.numTokens += o.tokenIds.length;
      s.tokenIds.push(...o.tokenIds);
      if (t.out.promptLogprobs) promptLogprobs = t.out.promptLogprobs;
      if (lp) s.logprobs!.push(...lp);
      if (o.finishReason !== null) {
        s.finishReason = o.finishReason;
        s.stopReason = o.stopReason;
      }
      yield { index: o.index, s, text: o.text, ids: o.tokenIds, logprobs: lp ? { content: lp } : null, finish: o.finishReason, stop: o.stopReason };
    }
  }
  const usage = () => {
    const completion = [...states.values()].reduce((k, s) => k + s.numTokens, 0);
    return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
  };

  if (!body.stream) {
    try {
      for await (const t of outputs) for (const _ of deltas(t));
    } finally {
      meta.signal.removeEventListener('abort', abort);
    }
    const stopped = meta.stopped?.();
    if (stopped) throw stopped;
    const choices: ChatCompletionChoice[] = [...states.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([index, s]) => {
        s.builder.text = s.content;
        const { message, finishReason } = s.builder.message(s.finishReason, echo);
        const choice: ChatCompletionChoice = { index, message, logprobs: s.logprobs ? { content: s.logprobs } : null, finish_reason: finishReason, stop_reason: s.stopReason };
        if (body.return_token_ids) choice.token_ids = s.tokenIds;
        return choice;
      });
    const res: ChatCompletionResponse = { id, object: 'chat.completion', created, model, choices, usage: usage() };
    // vLLM's extras, on the response (one prompt per chat request).
    if (promptLogprobs) res.prompt_logprobs = promptLogprobsWire(promptLogprobs);
    if (body.return_token_ids) res.prompt_token_ids = batch.prepared[0].promptTokenIds;
    return res;
  }

  const includeUsage = body.stream_options?.include_usage ?? false;
  const continuousUsage = includeUsage && (body.stream_options?.continuous_usage_stats ?? false);
  const chunk = (choices: ChatCompletionChunkChoice[], usageOf?: () => unknown) => {
    const c: Record<string, unknown> = { id, object: 'chat.completion.chunk', created, model, choices };
    if (usageOf) c.usage = usageOf();
    return c;
  };
  const running = (s: ChoiceState | undefined) => {
    const k = s?.numTokens ?? 0;
    return () => ({ prompt_tokens: promptTokens, completion_tokens: k, total_tokens: promptTokens + k });
  };
  async function* chunks(): AsyncGenerator<Record<string, unknown>> {
    try {
      for (let i = 0; i < n; i++) {
        const role = chunk([{ index: i, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], continuousUsage ? running(undefined) : undefined);
        // vLLM's return_token_ids: the prompt's ids on the first chunk.
        if (body.return_token_ids && i === 0) role.prompt_token_ids = batch.prepared[0].promptTokenIds;
        yield role;
        if (echo) yield chunk([{ index: i, delta: { content: echo }, logprobs: null, finish_reason: null }], continuousUsage ? running(undefined) : undefined);
      }
      for await (const t of outputs) {
        for (const d of deltas(t)) {
          const m = d.s.builder.delta(d.text, d.finish);
          if (m.delta === null && d.finish === null && d.logprobs === null) continue;
          const c: ChatCompletionChunkChoice = { index: d.index, delta: m.delta ?? {}, logprobs: d.logprobs, finish_reason: m.finishReason };
          if (d.finish !== null) c.stop_reason = d.stop;
          if (body.return_token_ids) c.token_ids = d.ids;
          yield chunk([c], continuousUsage ? running(d.s) : undefined);
        }
      }
      if (includeUsage) yield chunk([], usage);
    } finally {
      meta.signal.removeEventListener('abort', abort);
      await outputs.return(undefined);
    }
  }
  return { chunks: chunks(), abort };
}
