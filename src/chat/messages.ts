/**
 * Chat messages in OpenAI's wire form (snake_case keys, as the API sends them), and their normalization before a
 * template sees them, as vLLM's `parse_chat_messages` (vllm/entrypoints/chat_utils.py) does:
 *   - content: a string, a list of parts or null. Templates that loop over `message.content` (detected from the
 *     template, see content-format.ts) get `[{type: 'text', text}]` parts ('openai' format); all others get one
 *     string, the text parts joined by '\n' ('string' format). Null content becomes '' or [].
 *   - assistant `tool_calls` are kept, with each `function.arguments` JSON string parsed into an object (HF's
 *     tool-use templates expect a mapping; null or '' becomes {}); `reasoning_content` (or `reasoning`) is kept.
 *   - tool messages keep `tool_call_id`; any message keeps a string `name`. Other keys are dropped.
 */
import { InvalidArgumentError } from '../errors.js';

/** A content part. Only text is supported (these models read text only). */
export type ChatContentPart = { type: 'text'; text: string } | { type: 'refusal'; refusal: string };

/** A tool call made by the assistant (OpenAI's form; `arguments` is a JSON string, or already an object). */
export interface ChatToolCall {
  id?: string;
  type?: 'function';
  function: { name: string; arguments?: string | Record<string, unknown> | null };
}

/**
 * One message of a conversation, as OpenAI's chat API takes it.
 *
 * @example
 * const messages: ChatMessage[] = [
 *   { role: 'system', content: 'You are terse.' },
 *   { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
 *   { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
 *   { role: 'tool', tool_call_id: 'c1', content: '22 C, sunny' },
 * ];
 */
export interface ChatMessage {
  /** 'system', 'user', 'assistant', 'tool', or any role the template knows. */
  role: string;
  content?: string | (ChatContentPart | string)[] | null;
  name?: string;
  tool_calls?: ChatToolCall[] | null;
  tool_call_id?: string;
  reasoning_content?: string | null;
  reasoning?: string | null;
}

/** How message content reaches the template: one string, or OpenAI's list of `{type: 'text', text}` parts. */
export type ChatContentFormat = 'string' | 'openai';

/** A message as the template sees it. */
export interface ConversationMessage {
  role: string;
  content: string | { type: 'text'; text: string }[];
  name?: string;
  tool_calls?: { id?: string; type?: string; function: { name: string; arguments: unknown } }[];
  tool_call_id?: string;
  reasoning_content?: string;
  reasoning?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates and normalizes a conversation for the template. `field` names it in errors (e.g. 'messages'). */
export function normalizeMessages(messages: readonly ChatMessage[], format: ChatContentFormat, field = 'messages'): ConversationMessage[] {
  if (!Array.isArray(messages)) throw new InvalidArgumentError(field, `${field} must be a list of messages ({ role, content })`);
  if (messages.length === 0) throw new InvalidArgumentError(field, `${field} is empty: a conversation needs at least one message`);
  return messages.map((m, i) => normalizeMessage(m, format, `${field}[${i}]`));
}

function normalizeMessage(m: ChatMessage, format: ChatContentFormat, where: string): ConversationMessage {
  if (!isObject(m)) throw new InvalidArgumentError('messages', `${where} must be an object with a role and content`);
  if (typeof m.role !== 'string' || m.role === '') throw new InvalidArgumentError('messages', `${where}.role must be a non-empty string`);
  const texts = contentTexts(m.content, `${where}.content`);
  const out: ConversationMessage = {
    role: m.role,
    content: format === 'openai' ? texts.map((text) => ({ type: 'text' as const, text })) : texts.join('\n'),
  };
  if (m.role === 'assistant') {
    if (m.tool_calls !== undefined && m.tool_calls !== null) out.tool_calls = toolCalls(m.tool_calls, `${where}.tool_calls`);
    const reasoning = m.reasoning ?? m.reasoning_content;
    if (typeof reasoning === 'string') {
      out.reasoning = reasoning;
      out.reasoning_content = reasoning;
    }
  }
  if (m.role === 'tool' && typeof m.tool_call_id === 'string') out.tool_call_id = m.tool_call_id;
  if (typeof m.name === 'string') out.name = m.name;
  return out;
}

// The text pieces of a message's content, in order.
function contentTexts(content: ChatMessage['content'], where: string): string[] {
  if (content === undefined || content === null) return [];
  if (typeof content === 'string') return [content];
  if (!Array.isArray(content)) throw new InvalidArgumentError('messages', `${where} must be a string, a list of content parts or null`);
  return content.map((p: unknown, j) => {
    if (typeof p === 'string') return p;
    const part = p;
    if (isObject(part)) {
      const type = part.type ?? 'text';
      if (type === 'text' && typeof part.text === 'string') return part.text;
      if (type === 'refusal' && typeof part.refusal === 'string') return part.refusal;
      if (type === 'text') throw new InvalidArgumentError('messages', `${where}[${j}] is a text part without a string 'text'`);
      throw new InvalidArgumentError('messages', `${where}[${j}] has type '${String(type)}': only text content parts are supported`);
    }
    throw new InvalidArgumentError('messages', `${where}[${j}] must be a string or a {type: 'text', text} part`);
  });
}

// Copies the calls (the caller's objects stay untouched) with arguments parsed, as vLLM's _postprocess_messages.
function toolCalls(calls: unknown, where: string): NonNullable<ConversationMessage['tool_calls']> {
  if (!Array.isArray(calls)) throw new InvalidArgumentError('messages', `${where} must be a list of tool calls`);
  return calls.map((c, j) => {
    if (!isObject(c) || !isObject(c.function) || typeof c.function.name !== 'string') {
      throw new InvalidArgumentError('messages', `${where}[${j}] must be {type: 'function', function: {name, arguments}}`);
    }
    const raw = c.function.arguments;
    let args: unknown = raw;
    if (raw === undefined || raw === null || raw === '') args = {};
    else if (typeof raw === 'string') {
      try {
        args = JSON.parse(raw);
      } catch (e) {
        throw new InvalidArgumentError('messages', `${where}[${j}].function.arguments is not valid JSON: ${(e as Error).message}`);
      }
    }
    const { function: fn, ...rest } = c;
    return { ...rest, function: { ...fn, name: fn.name as string, arguments: args } };
  });
}
