/**
 * A Responses API request as the chat request it means, the way vLLM's serving_responses.py builds its chat
 * messages: `instructions` becomes a leading system message; `input` (a string, or items) becomes the conversation;
 * function tools take chat's nested form; `text.format` becomes `response_format`; `max_output_tokens` becomes
 * `max_tokens`; `reasoning.effort` reaches the chat template as `reasoning_effort` (and `enable_thinking`, as vLLM
 * sets it); with previous_response_id, the stored conversation and output come first (`conversation`). What this
 * server cannot do (built-in tools, files, images, conversations) is a 400 naming the field.
 *
 * @example
 *   toChatRequest({ input: [{ role: 'user', content: [{ type: 'input_text', text: 'Hi' }] }], instructions: 'Be terse.' })
 *   // { messages: [{ role: 'system', content: 'Be terse.' }, { role: 'user', content: [{ type: 'text', text: 'Hi' }] }], ... }
 */
import type { ChatCompletionRequest, ChatMessageIn } from './protocol.js';
import { HttpError, toHttpError } from './errors.js';
import { RESPONSES_LIMITS, type ResponsesRequest } from './responses-protocol.js';

const bad = (param: string, message: string) => new HttpError(400, `${param}: ${message}`, param);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Message roles an input item may have; 'developer' is OpenAI's newer name for the system role. */
const ROLES = new Set(['user', 'system', 'developer', 'assistant']);

/** `include` values this server honours; others name what it cannot return. */
const INCLUDES = new Set([
  'message.output_text.logprobs',
  // No encrypted reasoning exists here: reasoning items carry their text and `encrypted_content: null`.
  'reasoning.encrypted_content',
]);

/** Text of one content part: input_text / output_text (and refusal, kept as text, as the chat path does). */
function partText(p: unknown, where: string): string {
  if (!isObject(p)) throw bad(where, 'must be a content part object ({ type: "input_text", text })');
  const type = p.type;
  if (type === 'input_text' || type === 'output_text' || type === 'text') {
    if (typeof p.text !== 'string') throw bad(`${where}.text`, `a ${type} part needs a string 'text'`);
    return p.text;
  }
  if (type === 'refusal' && typeof p.refusal === 'string') return p.refusal;
  throw bad(`${where}.type`, `content part type '${String(type)}' is not supported: this server reads text only (input_text, output_text)`);
}

/** A message item's content as chat content: a string stays one; parts become `{type: 'text'}` parts. */
function messageContent(content: unknown, where: string): ChatMessageIn['content'] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw bad(where, 'must be a string or a list of content parts');
  if (content.length > RESPONSES_LIMITS.contentParts) throw bad(where, `has ${content.length} parts, more than ${RESPONSES_LIMITS.contentParts}`);
  return content.map((p, j) => ({ type: 'text', text: partText(p, `${where}[${j}]`) }));
}

/** A function_call_output's output: a string, or text parts joined. */
function toolOutput(output: unknown, where: string): string {
  if (typeof output === 'string') return output;
  if (!Array.isArray(output)) throw bad(where, 'must be a string or a list of input_text parts');
  return output.map((p, j) => partText(p, `${where}[${j}]`)).join('');
}

/**
 * The input items as chat messages. A function_call joins the assistant message just before it (text, reasoning
 * or other calls of the same turn), as one assistant turn with `tool_calls`; a reasoning item starts that turn.
 */
export function inputMessages(input: ResponsesRequest['input']): ChatMessageIn[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  if (input.length === 0) throw bad('input', 'is empty: give a string or at least one item');
  const max = RESPONSES_LIMITS.inputItems;
  if (input.length > max) throw bad('input', `has ${input.length} items, more than this server's limit of ${max}`);
  const messages: ChatMessageIn[] = [];
  /** The assistant turn later items of the same turn join (null after any other message). */
  let turn: ChatMessageIn | null = null;
  const assistantTurn = (): ChatMessageIn => {
    if (turn) return turn;
    turn = { role: 'assistant', content: null };
    messages.push(turn);
    return turn;
  };
  input.forEach((item: Record<string, unknown>, i) => {
    const where = `input[${i}]`;
    const type = item.type ?? 'message';
    switch (type) {
      case 'message': {
        const role = item.role;
        if (typeof role !== 'string' || !ROLES.has(role)) {
          throw bad(`${where}.role`, `must be one of user, system, developer, assistant (got ${JSON.stringify(role)})`);
        }
        const content = messageContent(item.content, `${where}.content`);
        if (role === 'assistant') {
          const t = assistantTurn();
          // Text after the turn's calls would be out of order in one chat message: it starts a new turn.
          if (t.tool_calls?.length) {
            turn = null;
            assistantTurn().content = content;
          } else t.content = joinContent(t.content, content);
          return;
        }
        turn = null;
        // Chat templates know 'system', not 'developer' (Qwen's and Llama's drop unknown roles silently).
        messages.push({ role: role === 'developer' ? 'system' : role, content });
        return;
      }
      case 'function_call': {
        for (const k of ['call_id', 'name', 'arguments'] as const) {
          if (typeof item[k] !== 'string') throw bad(`${where}.${k}`, `a function_call item needs a string '${k}'`);
        }
        const t = assistantTurn();
        t.tool_calls = [...(t.tool_calls ?? []), { id: item.call_id, type: 'function', function: { name: item.name, arguments: item.arguments } }];
        return;
      }
      case 'function_call_output': {
        if (typeof item.call_id !== 'string') throw bad(`${where}.call_id`, "a function_call_output item needs a string 'call_id'");
        turn = null;
        messages.push({ role: 'tool', tool_call_id: item.call_id, content: toolOutput(item.output, `${where}.output`) });
        return;
      }
      case 'reasoning': {
        const parts = Array.isArray(item.content) ? item.content : [];
        const text = parts.map((p, j) => {
          if (!isObject(p) || p.type !== 'reasoning_text' || typeof p.text !== 'string') throw bad(`${where}.content[${j}]`, "must be a { type: 'reasoning_text', text } part");
          return p.text;
        });
        turn = null;
        assistantTurn().reasoning_content = text.join('');
        return;
      }
      default:
        throw bad(`${where}.type`, `input item type '${String(type)}' is not supported (message, function_call, function_call_output, reasoning)`);
    }
  });
  return messages;
}

/** Two pieces of one assistant turn's content (null: none yet). */
function joinContent(a: ChatMessageIn['content'], b: ChatMessageIn['content']): ChatMessageIn['content'] {
  if (a === null || a === undefined) return b;
  const parts = (c: NonNullable<ChatMessageIn['content']>) => (typeof c === 'string' ? [{ type: 'text', text: c }] : c);
  return [...parts(a), ...parts(b ?? '')];
}

/** Function tools in chat's form; built-in tools (web_search, file_search, mcp, ...) are 400s. */
function chatTools(tools: NonNullable<ResponsesRequest['tools']>): NonNullable<ChatCompletionRequest['tools']> {
  return tools.map((t, i) => {
    const where = `tools[${i}]`;
    if (t.type !== 'function') throw bad(`${where}.type`, `tool type '${t.type}' is not supported: this server runs function tools only`);
    if (typeof t.name !== 'string' || t.name === '') throw bad(`${where}.name`, 'a function tool needs a non-empty string name');
    if (t.parameters !== undefined && t.parameters !== null && !isObject(t.parameters)) throw bad(`${where}.parameters`, 'must be a JSON Schema object');
    const fn: Record<string, unknown> = { name: t.name };
    if (typeof t.description === 'string') fn.description = t.description;
    if (isObject(t.parameters)) fn.parameters = t.parameters;
    if (typeof t.strict === 'boolean') fn.strict = t.strict;
    return { type: 'function', function: fn as { name: string } };
  });
}

/** tool_choice in chat's form: 'none' / 'auto' / 'required', or `{type: 'function', name}`. */
function chatToolChoice(choice: NonNullable<ResponsesRequest['tool_choice']>): NonNullable<ChatCompletionRequest['tool_choice']> {
  if (typeof choice === 'string') {
    if (choice === 'none' || choice === 'auto' || choice === 'required') return choice;
    throw bad('tool_choice', `'${choice}' is not one of none, auto, required`);
  }
  if (choice.type !== 'function') throw bad('tool_choice.type', `tool_choice type '${choice.type}' is not supported: name a function tool ({ type: 'function', name })`);
  if (typeof choice.name !== 'string') throw bad('tool_choice.name', 'a function tool_choice needs a string name');
  return { type: 'function', function: { name: choice.name } };
}

/** `text.format` as chat's response_format (null for 'text'). */
function responseFormat(format: Record<string, unknown> & { type: string }): ChatCompletionRequest['response_format'] {
  switch (format.type) {
    case 'text':
      return null;
    case 'json_object':
      return { type: 'json_object' };
    case 'json_schema': {
      if (!isObject(format.schema)) throw bad('text.format.schema', "a 'json_schema' format needs a JSON Schema object in 'schema'");
      return { type: 'json_schema', json_schema: { name: format.name ?? 'response', schema: format.schema, strict: format.strict ?? null } };
    }
    default:
      throw bad('text.format.type', `'${format.type}' is not supported: use 'text', 'json_object' or 'json_schema'`);
  }
}

/** Refuses what this server cannot serve, each with the field named. */
function checkUnsupported(body: ResponsesRequest): void {
  if (body.prompt != null) throw bad('prompt', 'prompt templates are not supported (vLLM refuses them too)');
  if (body.conversation != null) throw bad('conversation', 'conversations need a store, which this server does not keep: send the whole conversation in `input`');
  if (body.truncation === 'auto') throw bad('truncation', "'auto' is not supported: prompts past the model length are refused, not cut");
  for (const inc of body.include ?? []) if (!INCLUDES.has(inc)) throw bad('include', `'${inc}' is not supported (${[...INCLUDES].join(', ')})`);
  const meta = Object.entries(body.metadata ?? {});
  const L = RESPONSES_LIMITS;
  if (meta.length > L.metadataPairs) throw bad('metadata', `has ${meta.length} pairs, more than ${L.metadataPairs}`);
  for (const [k, v] of meta) {
    if (k.length > L.metadataKey || v.length > L.metadataValue) throw bad('metadata', `keys may have ${L.metadataKey} characters and values ${L.metadataValue} ('${k.slice(0, 80)}')`);
  }
  // text.format with structured_outputs: as on the chat route, its options (disable_any_whitespace, ...) apply to
  // the format and a second constraint kind is a 400 (vLLM refuses any structured_outputs next to text.format).
}

/** Whether the response should carry output_text logprobs (OpenAI: `include`, with `top_logprobs` alternatives). */
export function wantsLogprobs(body: ResponsesRequest): boolean {
  return body.include?.includes('message.output_text.logprobs') ?? false;
}

/** The chat request that runs a Responses request. */
export function toChatRequest(body: ResponsesRequest, previous: PreviousTurn | null = null): ChatCompletionRequest {
  checkUnsupported(body);
  const messages = conversation(body, previous);
  const tools = body.tools?.length ? chatTools(body.tools) : null;
  // vLLM: without tools, 'auto' and 'none' mean no tool use; 'required' or a named function is a 400 (chat's).
  const toolChoice = body.tool_choice != null ? chatToolChoice(body.tool_choice) : null;
  let kwargs = body.chat_template_kwargs ?? null;
  const effort = body.reasoning?.effort;
  if (effort != null) {
    kwargs = { reasoning_effort: effort, ...kwargs };
    if (!('enable_thinking' in kwargs)) kwargs.enable_thinking = effort !== 'none';
  }
  const logprobs = wantsLogprobs(body);
  return {
    model: body.model,
    messages,
    max_tokens: body.max_output_tokens,
    temperature: body.temperature,
    top_p: body.top_p,
    top_k: body.top_k,
    seed: body.seed,
    stop: body.stop,
    presence_penalty: body.presence_penalty,
    frequency_penalty: body.frequency_penalty,
    repetition_penalty: body.repetition_penalty,
    logit_bias: body.logit_bias,
    ignore_eos: body.ignore_eos,
    skip_special_tokens: body.skip_special_tokens,
    include_stop_str_in_output: body.include_stop_str_in_output,
    structured_outputs: body.structured_outputs,
    priority: body.priority,
    user: body.user,
    logprobs,
    top_logprobs: logprobs ? (body.top_logprobs ?? 0) : null,
    tools,
    tool_choice: tools || (toolChoice !== 'auto' && toolChoice !== 'none') ? toolChoice : null,
    parallel_tool_calls: body.parallel_tool_calls,
    response_format: body.text?.format ? responseFormat(body.text.format) : null,
    chat_template_kwargs: kwargs,
    stream: body.stream,
    // The usage chunk gives the streamed response its usage.
    stream_options: body.stream ? { include_usage: true } : null,
  };
}

/** A stored response a request continues (previous_response_id): its conversation and its output. */
export interface PreviousTurn {
  messages: ChatMessageIn[];
  output: readonly object[];
}

/**
 * The chat messages of a request, as vLLM's construct_input_messages builds them: the instructions (a system
 * message), the previous response's conversation and its output, then the new input. The output goes in as the
 * input items it is (message, reasoning, function calls), so a function_call_output can answer a stored call.
 */
export function conversation(body: ResponsesRequest, previous: PreviousTurn | null): ChatMessageIn[] {
  const messages: ChatMessageIn[] = body.instructions != null ? [{ role: 'system', content: body.instructions }] : [];
  if (previous) {
    messages.push(...previous.messages);
    if (previous.output.length > 0) messages.push(...inputMessages(previous.output as Record<string, unknown>[]));
  }
  messages.push(...inputMessages(body.input));
  return messages;
}

/** Chat's field names in errors, as the Responses request spells them. */
const PARAMS: Record<string, string> = {
  max_tokens: 'max_output_tokens',
  max_completion_tokens: 'max_output_tokens',
  response_format: 'text.format',
  messages: 'input',
};

/** An error of the chat path, naming the Responses field the client sent (in `param` and in the message). */
export function responsesError(err: unknown): HttpError {
  const e = toHttpError(err);
  // 'messages' stays in messages: its indices count the chat conversation, not the input items.
  const message = e.message.replace(/\b(max_completion_tokens|max_tokens|response_format)\b/g, (name) => PARAMS[name]);
  const param = e.param !== null ? (PARAMS[e.param] ?? e.param) : null;
  return message === e.message && param === e.param ? e : new HttpError(e.status, message, param);
}
