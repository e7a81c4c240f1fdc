/**
 * One chat choice's assistant message, built from the generated text: tool calls forced by tool_choice (the text
 * is their JSON), tool calls a --tool-call-parser finds (tool_choice 'auto'), and the think block a
 * --reasoning-parser splits off. The same builder gives the whole message (non-streaming) and OpenAI's streamed
 * deltas: content and reasoning as they come, holding back only what may still become a marker or a call; calls
 * once whole (a named function's arguments stream as they come, as vLLM streams them).
 *
 * @example
 *   const b = new MessageBuilder({ forced: null, toolParser: TOOL_PARSERS.hermes, reasoning: null });
 *   b.delta('<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>', 'stop'); // { tool_calls: [...] }, 'tool_calls'
 */
import { parseAssistant, reasoningSplit, type AssistantParsing } from '../tool-calls/assistant-message.js';
import { forcedToolCalls, toolCallId, type ToolCall } from '../tool-calls/forced-tools.js';

/** tool_choice 'required' / named (forced), --tool-call-parser with 'auto', --reasoning-parser. */
export type MessageOptions = AssistantParsing;

/** The assistant message of a non-streamed response. */
export interface AssistantMessage {
  role: 'assistant';
  content: string | null;
  tool_calls: ToolCall[];
  reasoning?: string | null;
  reasoning_content?: string | null;
}

/** A streamed delta (OpenAI's chunk `delta`, with vLLM's reasoning fields). */
export interface MessageDelta {
  content?: string;
  tool_calls?: unknown[];
  reasoning?: string;
  reasoning_content?: string;
}

export class MessageBuilder {
  /** All generated text so far. */
  text = '';
  private sentReasoning = 0;
  private sentContent = 0;
  private namedId: string | null = null;

  constructor(private readonly o: MessageOptions) {}

  /** The finish reason as vLLM reports it: 'tool_calls' when calls were made ('required' or 'auto'), else as given. */
  private finishReason(reason: string | null, called: boolean): string | null {
    if (!called || reason !== 'stop') return reason;
    return this.o.forced?.mode === 'named' ? reason : 'tool_calls';
  }

  private split(final: boolean): { reasoning: string | null; body: string } {
    return reasoningSplit(this.o, this.text, final);
  }

  /** The whole message once generation ended with `reason`; `echo` goes before the content. */
  message(reason: string | null, echo = ''): { message: AssistantMessage; finishReason: string | null } {
    const { content, toolCalls, reasoning } = parseAssistant(this.text, this.o, echo);
    const m: AssistantMessage = { role: 'assistant', content, tool_calls: toolCalls ?? [] };
    const message = this.o.reasoning ? { ...m, reasoning, reasoning_content: reasoning } : m;
    return { message, finishReason: this.finishReason(reason, toolCalls !== null) };
  }

  /**
   * Adds `text` (one engine delta) and returns what to stream for it, null when nothing is to be sent yet; `finish`
   * is the finish reason when this delta ends the choice.
   */
  delta(text: string, finish: string | null): { delta: MessageDelta | null; finishReason: string | null } {
    this.text += text;
    const final = finish !== null;
    const forced = this.o.forced;
    if (forced?.mode === 'named') {
      if (text === '') return { delta: null, finishReason: finish };
      const first = this.namedId === null;
      this.namedId ??= toolCallId();
      const call = first ? { index: 0, id: this.namedId, type: 'function', function: { name: forced.name, arguments: text } } : { index: 0, function: { arguments: text } };
      return { delta: { tool_calls: [call] }, finishReason: finish };
    }
    if (forced) {
      if (!final) return { delta: null, finishReason: null };
      const calls = forcedToolCalls(forced, this.text);
      const delta = calls ? { tool_calls: calls.map((c, i) => ({ index: i, ...c })) } : { content: this.text };
      return { delta, finishReason: this.finishReason(finish, calls !== null) };
    }
    const out: MessageDelta = {};
    const { reasoning, body } = this.split(final);
    if (reasoning !== null && reasoning.length > this.sentReasoning) {
      out.reasoning = out.reasoning_content = reasoning.slice(this.sentReasoning);
      this.sentReasoning = reasoning.length;
    }
    let called = false;
    const parser = this.o.toolParser;
    let streamable = body;
    if (parser) {
      if (final) {
        const ex = parser.extract(body);
        if (ex.calls.length > 0) {
          called = true;
          streamable = ex.content ?? '';
          out.tool_calls = ex.calls.map((c, i) => ({ index: i, id: toolCallId(), type: 'function', function: c }));
        }
      } else {
        const at = parser.start(body);
        if (at >= 0) streamable = body.slice(0, at);
      }
    }
    if (streamable.length > this.sentContent) {
      out.content = streamable.slice(this.sentContent);
      this.sentContent = streamable.length;
    }
    const empty = Object.keys(out).length === 0;
    return { delta: empty ? null : out, finishReason: this.finishReason(finish, called) };
  }
}
