/**
 * Structured outputs on the wire, as vLLM's server takes them (vllm/entrypoints/openai/protocol.py): OpenAI's
 * `response_format` (`json_object`, `json_schema`, vLLM's `structural_tag`), vLLM's extra body `structured_outputs`
 * (snake_case StructuredOutputsParams) and the older `guided_json` / `guided_regex` / `guided_choice` /
 * `guided_grammar` / `guided_whitespace_pattern` names, which vLLM still maps onto structured_outputs; and tool
 * calls forced with `tool_choice` ('required' or a named function; the constraint is built by
 * src/tool-calls/forced-tools.ts, which the library's llm.chat shares). One request names at most one of these.
 *
 * @example
 *   structuredOutputsOf({ response_format: { type: 'json_schema', json_schema: { name: 'p', schema } } }); // { json: schema }
 */
import { InvalidArgumentError } from '../errors.js';
import { STRUCTURED_KINDS, type StructuredOutputsParams } from '../sampling/structured/params.js';
import { forcedTools as forcedToolsOf, type ChatToolDefinition, type ForcedTools, type ToolChoice } from '../tool-calls/forced-tools.js';
import { HttpError } from './errors.js';

/** The request fields this module reads (completions and chat share them). */
export interface StructuredRequest {
  response_format?: { type: string; [k: string]: unknown } | null;
  structured_outputs?: Record<string, unknown> | null;
  guided_json?: unknown;
  guided_regex?: string | null;
  guided_choice?: string[] | null;
  guided_grammar?: string | null;
  guided_whitespace_pattern?: string | null;
  guided_decoding_backend?: string | null;
}

/** A constraint and the request field it came from (errors name it). */
export interface StructuredFromRequest {
  params: StructuredOutputsParams;
  param: string;
}

/** snake_case structured_outputs -> StructuredOutputsParams. */
const SNAKE: Record<string, keyof StructuredOutputsParams> = {
  json: 'json',
  regex: 'regex',
  choice: 'choice',
  grammar: 'grammar',
  json_object: 'jsonObject',
  structural_tag: 'structuralTag',
  disable_any_whitespace: 'disableAnyWhitespace',
  disable_additional_properties: 'disableAdditionalProperties',
  disable_fallback: 'disableFallback',
  whitespace_pattern: 'whitespacePattern',
};

function fromSnake(o: Record<string, unknown>): StructuredOutputsParams {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    const name = SNAKE[k];
    if (!name) throw new HttpError(400, `structured_outputs: unknown field '${k}' (expected one of ${Object.keys(SNAKE).join(', ')})`, 'structured_outputs');
    if (v !== null && v !== undefined) out[name] = v;
  }
  return out as StructuredOutputsParams;
}

/** The response_format's constraint (null for 'text'). */
function fromResponseFormat(rf: NonNullable<StructuredRequest['response_format']>): StructuredOutputsParams | null {
  switch (rf.type) {
    case 'text':
      return null;
    case 'json_object':
      return { jsonObject: true };
    case 'json_schema': {
      const js = rf.json_schema as { name?: unknown; schema?: unknown; strict?: unknown } | undefined;
      if (typeof js !== 'object' || js === null) throw new HttpError(400, "response_format: type 'json_schema' needs a json_schema object", 'response_format');
      // OpenAI: the schema is optional (then any JSON object); strict or not, the output follows it (as vLLM).
      const schema = js.schema ?? { type: 'object' };
      if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new HttpError(400, 'response_format.json_schema.schema must be a JSON Schema object', 'response_format');
      return { json: schema as Record<string, unknown> };
    }
    case 'structural_tag': {
      const { type: _, ...tag } = rf;
      return { structuralTag: 'format' in tag ? { type: 'structural_tag', ...tag } : tag };
    }
    default:
      throw new HttpError(400, `response_format type '${rf.type}' is not supported: use 'text', 'json_object', 'json_schema' or 'structural_tag'`, 'response_format');
  }
}

/** Whether a StructuredOutputsParams names a constraint kind (not only options). */
export const hasKind = (p: StructuredOutputsParams): boolean => STRUCTURED_KINDS.some((k) => p[k] !== undefined && p[k] !== null && p[k] !== false);

/**
 * The request's structured-outputs constraint, or null; a 400 if it names more than one. As vLLM, the options of
 * `structured_outputs` (`disable_any_whitespace`, ...) apply to a constraint from response_format or tool_choice:
 * `{response_format: {type: 'json_object'}, structured_outputs: {disable_any_whitespace: true}}`.
 */
export function structuredOutputsOf(req: StructuredRequest): StructuredFromRequest | null {
  const found: StructuredFromRequest[] = [];
  const options = req.structured_outputs ? fromSnake(req.structured_outputs) : null;
  if (req.response_format) {
    const p = fromResponseFormat(req.response_format);
    if (p) found.push({ params: p, param: 'response_format' });
  }
  if (options && hasKind(options)) found.push({ params: options, param: 'structured_outputs' });
  const guided: [string, StructuredOutputsParams | null][] = [
    ['guided_json', req.guided_json != null ? { json: req.guided_json as StructuredOutputsParams['json'] } : null],
    ['guided_regex', req.guided_regex != null ? { regex: req.guided_regex } : null],
    ['guided_choice', req.guided_choice != null ? { choice: req.guided_choice } : null],
    ['guided_grammar', req.guided_grammar != null ? { grammar: req.guided_grammar } : null],
  ];
  for (const [param, p] of guided) if (p) found.push({ params: p, param });
  if (found.length > 1) {
    throw new HttpError(400, `only one kind of structured outputs constraint can be given, got ${found.map((f) => f.param).join(', ')}`, found[1].param);
  }
  const f = found[0];
  // Options alone constrain nothing (they may serve a tool_choice constraint: withOptions).
  if (!f) return null;
  return options && f.param !== 'structured_outputs' ? { ...f, params: { ...options, ...f.params } } : f;
}

/** A forced-tools constraint with the request's structured_outputs options applied. */
export function withOptions(req: StructuredRequest, forced: StructuredFromRequest): StructuredFromRequest {
  const options = req.structured_outputs ? fromSnake(req.structured_outputs) : null;
  return options ? { ...forced, params: { ...options, ...forced.params } } : forced;
}

/** A forced-tools constraint and the request field it came from. */
export interface ForcedToolsRequest extends Omit<ForcedTools, 'structured'> {
  structured: StructuredFromRequest;
}

/**
 * The constraint tool_choice forces (src/tool-calls/forced-tools.ts), or null for 'none' / 'auto' / absent; errors
 * name `tool_choice` or `tools`.
 */
export function forcedTools(req: {
  tools?: readonly ChatToolDefinition[] | null;
  tool_choice?: ToolChoice | null;
  parallel_tool_calls?: boolean | null;
}): ForcedToolsRequest | null {
  let f: ForcedTools | null;
  try {
    f = forcedToolsOf(req.tools, req.tool_choice, req.parallel_tool_calls);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    const param = err.field === 'toolChoice' ? 'tool_choice' : err.field;
    throw new HttpError(400, err.message.replace(/^toolChoice/, 'tool_choice'), param);
  }
  return f && { ...f, structured: { params: f.structured, param: 'tool_choice' } };
}
