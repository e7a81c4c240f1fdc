/**
 * `SamplingParams.structuredOutputs`: vLLM's StructuredOutputsParams (vllm/sampling_params.py) in camelCase. Exactly
 * one constraint kind per request (`json`, `regex`, `choice`, `grammar`, `jsonObject`, `structuralTag`), as vLLM
 * checks; the options (`disableAnyWhitespace`, `disableAdditionalProperties`) shape the JSON kinds.
 *
 * @example
 *   new SamplingParams({ structuredOutputs: { json: { type: 'object', properties: { a: { type: 'integer' } } } } });
 *   new SamplingParams({ structuredOutputs: { choice: ['yes', 'no'] } });
 *   new SamplingParams({ structuredOutputs: { regex: '[0-9]{3}-[a-z]+' } });
 */
import { z } from 'zod';
import { InvalidArgumentError } from '../../errors.js';

/** A JSON Schema: an object (or `true`/`false`), or its JSON text. */
export type JsonSchema = Record<string, unknown> | boolean;

export interface StructuredOutputsParams {
  /** Output is JSON valid for this JSON Schema (object or JSON text). */
  json?: JsonSchema | string | null;
  /** Output matches this regular expression in full (xgrammar's regex dialect: ECMAScript-like). */
  regex?: string | null;
  /** Output is exactly one of these strings. */
  choice?: string[] | null;
  /** Output is in the language of this EBNF grammar (xgrammar's / GBNF syntax, root rule `root`). */
  grammar?: string | null;
  /** Output is any JSON object/value (OpenAI's `response_format: json_object`). */
  jsonObject?: boolean | null;
  /**
   * xgrammar's structural tag, as JSON text or object: `{"type": "structural_tag", "format": {...}}`, or vLLM's legacy
   * `{"structures": [{"begin", "schema", "end"}], "triggers": [...]}` (free text, constrained after a trigger).
   */
  structuralTag?: string | Record<string, unknown> | null;
  /** JSON without optional whitespace (vLLM's disable_any_whitespace). Default false. */
  disableAnyWhitespace?: boolean;
  /**
   * Objects take no properties beyond those the schema lists (vLLM's disable_additional_properties). xgrammar's strict
   * mode, vLLM's default for xgrammar, already does; accepted for API parity. Default false.
   */
  disableAdditionalProperties?: boolean;
  /** vLLM's deprecated `disable_fallback` (one backend here: nothing to fall back to). */
  disableFallback?: boolean;
  /** vLLM's `whitespace_pattern`: accepted only as null (xgrammar ignores it too). */
  whitespacePattern?: string | null;
}

/** The constraint kinds, one of which a request names. */
export const STRUCTURED_KINDS = ['json', 'regex', 'choice', 'grammar', 'jsonObject', 'structuralTag'] as const;
export type StructuredKind = (typeof STRUCTURED_KINDS)[number];

/** A validated constraint: its kind, its spec as canonical text, and the options that change the grammar. */
export interface StructuredSpec {
  kind: StructuredKind;
  /** The schema / regex / grammar / structural tag as text; choices as a JSON array; '' for jsonObject. */
  spec: string;
  anyWhitespace: boolean;
  /** The compiled-grammar cache key: equal keys give the same grammar. */
  key: string;
}

const fields = z
  .object({
    json: z.union([z.string(), z.boolean(), z.record(z.string(), z.unknown())]).nullish(),
    regex: z.string().nullish(),
    choice: z.array(z.string()).nullish(),
    grammar: z.string().nullish(),
    jsonObject: z.boolean().nullish(),
    structuralTag: z.union([z.string(), z.record(z.string(), z.unknown())]).nullish(),
    disableAnyWhitespace: z.boolean().optional(),
    disableAdditionalProperties: z.boolean().optional(),
    disableFallback: z.boolean().optional(),
    whitespacePattern: z.null().optional(),
  })
  .strict();

const FIELD = 'structuredOutputs';
const fail = (message: string): never => {
  throw new InvalidArgumentError(FIELD, `${FIELD}: ${message}`);
};

/** Parses JSON text, naming `what` in the error. */
function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(`${what} is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/**
 * Validates a StructuredOutputsParams (types, exactly one kind, JSON parses, non-empty choices) and returns its
 * canonical spec; throws InvalidArgumentError('structuredOutputs') naming what is wrong. What only the grammar
 * engine can judge (schema features, regex and EBNF syntax) is checked when the grammar compiles.
 */
export function structuredSpec(p: StructuredOutputsParams): StructuredSpec {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) fail('must be an object');
  const r = fields.safeParse(p);
  if (!r.success) {
    const issue = r.error.issues[0];
    const at = issue.path.length ? `${issue.path.join('.')}: ` : '';
    fail(`${at}${issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}` : issue.message}`);
  }
  const set = STRUCTURED_KINDS.filter((k) => p[k] !== undefined && p[k] !== null && p[k] !== false);
  if (set.length > 1) fail(`you can only use one kind of structured outputs constraint, but several are given: ${set.join(', ')}`);
  if (set.length === 0) fail(`you must use one kind of structured outputs constraint (${STRUCTURED_KINDS.join(', ')}), but none is given`);
  const kind = set[0];
  let spec: string;
  switch (kind) {
    case 'json': {
      const schema = typeof p.json === 'string' ? parseJson(p.json, 'json') : p.json;
      if (typeof schema !== 'boolean' && (typeof schema !== 'object' || schema === null || Array.isArray(schema))) fail('json must be a JSON Schema (an object or a boolean)');
      spec = JSON.stringify(schema);
      break;
    }
    case 'regex':
      if (p.regex === '') fail('regex must not be empty');
      spec = p.regex!;
      break;
    case 'choice':
      if (p.choice!.length === 0) fail('choice must list at least one string');
      if (p.choice!.some((c) => c === '')) fail('choice cannot contain an empty string');
      spec = JSON.stringify(p.choice);
      break;
    case 'grammar':
      if (p.grammar!.trim() === '') fail('grammar must not be empty');
      spec = p.grammar!;
      break;
    case 'jsonObject':
      spec = '';
      break;
    case 'structuralTag': {
      const tag = typeof p.structuralTag === 'string' ? parseJson(p.structuralTag, 'structuralTag') : p.structuralTag;
      if (typeof tag !== 'object' || tag === null || Array.isArray(tag)) fail('structuralTag must be a JSON object');
      spec = JSON.stringify(tag);
      break;
    }
  }
  const anyWhitespace = !p.disableAnyWhitespace;
  const jsonKind = kind === 'json' || kind === 'jsonObject' || kind === 'structuralTag';
  return { kind, spec, anyWhitespace, key: `${kind}:${jsonKind && !anyWhitespace ? 'compact:' : ''}${spec}` };
}

/** An EBNF string literal for `s` (xgrammar reads JSON-style escapes). */
export function ebnfString(s: string): string {
  return JSON.stringify(s);
}

/** vLLM's choice grammar: `root ::= "a" | "b"`. */
export function choiceGrammar(choices: readonly string[]): string {
  return `root ::= ${choices.map(ebnfString).join(' | ')}`;
}
