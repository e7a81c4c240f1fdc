/**
 * An assistant reply read out of its generated text: tool calls forced by tool_choice (the text is their JSON),
 * tool calls a tool-call parser finds (tool_choice 'auto'), and the think block a reasoning parser splits off.
 * The library's chat outputs (CompletionOutput.toolCalls / reasoning / content) and the server's non-streamed
 * messages both come from here; the server's streamed deltas (server/chat-message.ts) follow the same rules.
 *
 * @example
 *   parseAssistant('<think>hm</think>\n\nHi', { forced: null, toolParser: null, reasoning: REASONING_PARSERS.qwen3 });
 *   // { content: 'Hi', toolCalls: null, reasoning: 'hm' }
 */
import { forcedToolCalls, toolCallId, type ForcedTools, type ToolCall } from './forced-tools.js';
import { splitStreaming, type ReasoningParser } from './reasoning-parsers.js';
import type { ToolParser } from './tool-parsers.js';

export interface AssistantParsing {
  /** tool_choice 'required' / named: the text is the calls' JSON. */
  forced: ForcedTools | null;
  /** tool_choice 'auto' with a tool-call parser: the parser that finds calls in the text. */
  toolParser: ToolParser | null;
  /** Splits the think block off (not with forced calls: their text is JSON). */
  reasoning: ReasoningParser | null;
}

export interface ParsedAssistant {
  /** The reply's text without the calls and the think block; null when nothing is left. */
  content: string | null;
  /** The calls made; null when none were (the text did not parse as calls, or none were asked for). */
  toolCalls: ToolCall[] | null;
  /** The think block; null without a reasoning parser or without reasoning. */
  reasoning: string | null;
}

/** The split of a whole (or, with `final` false, a partial) reply; `echo` goes before the content. */
export function reasoningSplit(o: AssistantParsing, text: string, final: boolean): { reasoning: string | null; body: string } {
  if (!o.reasoning || o.forced) return { reasoning: null, body: text };
  const s = splitStreaming(o.reasoning, text, final);
  return { reasoning: s.reasoning, body: s.content ?? '' };
}

/** Reads a finished reply. */
export function parseAssistant(text: string, o: AssistantParsing, echo = ''): ParsedAssistant {
  const { reasoning, body } = reasoningSplit(o, text, true);
  let calls: ToolCall[] | null = null;
  let content: string | null = echo + body;
  if (o.forced) {
    calls = forcedToolCalls(o.forced, body);
    if (calls) content = null;
  } else if (o.toolParser) {
    const ex = o.toolParser.extract(body);
    if (ex.calls.length > 0) {
      calls = ex.calls.map((c) => ({ id: toolCallId(), type: 'function', function: c }));
      content = ex.content === null ? null : echo + ex.content;
    }
  }
  return { content, toolCalls: calls, reasoning };
}
