/**
 * Tool calls forced by tool_choice, as vLLM builds them (`_get_json_schema_from_tool`): 'required' constrains the
 * output to a JSON array of `{name, parameters}` objects, one per call, each valid for its tool's parameters schema;
 * a named function constrains it to that function's arguments. The text that comes out is then read back into
 * OpenAI-shaped tool calls. The library's `llm.chat(..., { tools, toolChoice })` and the server share this.
 *
 * @example
 *   const f = forcedTools(tools, 'required', true);   // { mode: 'required', name: null, structured: { json: {...} } }
 *   forcedToolCalls(f!, '[{"name": "get_weather", "parameters": {"city": "Paris"}}]');
 *   // [{ id: 'chatcmpl-tool-…', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]
 */
import { InvalidArgumentError } from '../errors.js';
import type { StructuredOutputsParams } from '../sampling/structured/params.js';

/** An OpenAI tool as chat requests give them: `{type: 'function', function: {name, description?, parameters?}}`. */
export interface ChatToolDefinition {
  type: string;
  function?: unknown;
}

/** tool_choice: none, auto (the default with tools), required, or one named function. */
export type ToolChoice = 'none' | 'auto' | 'required' | { type: string; function: { name: string } };

/** A function tool's definition. */
export interface FunctionTool {
  name: string;
  parameters?: Record<string, unknown>;
}

/** How tool_choice shapes the output: 'named' (one call's arguments) or 'required' (a JSON array of calls). */
export interface ForcedTools {
  mode: 'named' | 'required';
  /** The named function (mode 'named'). */
  name: string | null;
  /** The constraint on the output. */
  structured: StructuredOutputsParams;
}

/** OpenAI's tool call (an assistant message's `tool_calls[i]`); give it back in the next request's messages as is. */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** vLLM's tool call ids: `chatcmpl-tool-` and 32 hex digits. */
export function toolCallId(): string {
  return `chatcmpl-tool-${crypto.randomUUID().replaceAll('-', '')}`;
}

/** The tools' function definitions, checked (InvalidArgumentError naming `tools`). */
export function functionTools(tools: readonly ChatToolDefinition[] | null | undefined): FunctionTool[] {
  return (tools ?? []).map((t, i) => {
    const f = t?.function as FunctionTool | undefined;
    if (t?.type !== 'function' || typeof f !== 'object' || f === null || typeof f.name !== 'string') {
      throw new InvalidArgumentError('tools', `tools[${i}] must be {type: 'function', function: {name, parameters}}`);
    }
    return f;
  });
}

/** A tool's parameters schema (none: any object). */
const paramsSchema = (f: FunctionTool) => f.parameters ?? { type: 'object', properties: {} };

/**
 * The constraint tool_choice forces, or null for 'none' / 'auto' / absent. 'required': an array of at least one
 * `{name, parameters}` object, each one of the tools (anyOf); `parallelToolCalls: false` allows exactly one.
 * Errors are InvalidArgumentErrors naming `toolChoice` or `tools`.
 */
export function forcedTools(tools: readonly ChatToolDefinition[] | null | undefined, choice: ToolChoice | null | undefined, parallelToolCalls: boolean | null | undefined): ForcedTools | null {
  if (!choice || choice === 'none' || choice === 'auto') return null;
  const fns = functionTools(tools);
  if (fns.length === 0) throw new InvalidArgumentError('toolChoice', `toolChoice ${JSON.stringify(choice)} needs tools`);
  if (choice === 'required') {
    const schema = {
      type: 'array',
      minItems: 1,
      ...(parallelToolCalls === false ? { maxItems: 1 } : {}),
      items: {
        type: 'object',
        anyOf: fns.map((f) => ({
          properties: { name: { type: 'string', enum: [f.name] }, parameters: paramsSchema(f) },
          required: ['name', 'parameters'],
        })),
      },
    };
    return { mode: 'required', name: null, structured: { json: schema } };
  }
  if (typeof choice !== 'object' || choice === null || choice.type !== 'function' || typeof choice.function?.name !== 'string') {
    throw new InvalidArgumentError('toolChoice', `toolChoice must be 'none', 'auto', 'required' or {type: 'function', function: {name}}, got ${JSON.stringify(choice)}`);
  }
  const f = fns.find((t) => t.name === choice.function.name);
  if (!f) throw new InvalidArgumentError('toolChoice', `toolChoice names function '${choice.function.name}', which is not among the tools`);
  return { mode: 'named', name: f.name, structured: { json: paramsSchema(f) } };
}

/**
 * The tool calls of a forced output: 'named' -> one call whose arguments are the text; 'required' -> one call per
 * array element. Text that does not parse (cut by max_tokens) gives no calls: the caller sees the raw text.
 */
export function forcedToolCalls(forced: ForcedTools, text: string): ToolCall[] | null {
  if (forced.mode === 'named') return [{ id: toolCallId(), type: 'function', function: { name: forced.name!, arguments: text } }];
  let calls: unknown;
  try {
    calls = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(calls)) return null;
  return calls.map((c: { name: string; parameters: unknown }) => ({
    id: toolCallId(),
    type: 'function',
    function: { name: c.name, arguments: JSON.stringify(c.parameters) },
  }));
}
